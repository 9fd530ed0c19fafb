"""The per-replicate gate: a single chain is split in halves so that R-hat is defined."""

import numpy as np
import xarray as xr

from bayes.inference.diagnostics import GateThresholds
from bayes.inference.repeated import fit_diagnostics


def _tree(values: np.ndarray, diverging: int = 0) -> xr.DataTree:
    draws = values.shape[1]
    flags = np.zeros((1, draws), dtype=bool)
    flags[0, :diverging] = True
    energy = np.random.default_rng(1).normal(size=(1, draws))
    return xr.DataTree.from_dict(
        {
            "posterior": xr.Dataset({"mu": (("chain", "draw"), values)}),
            "sample_stats": xr.Dataset(
                {"diverging": (("chain", "draw"), flags), "energy": (("chain", "draw"), energy)}
            ),
        }
    )


def test_single_stationary_chain_passes():
    values = np.random.default_rng(0).normal(size=(1, 400))
    found = fit_diagnostics(_tree(values), GateThresholds(min_ess_bulk=0, min_ess_tail=0), ["mu"])
    assert np.isfinite(found.max_rhat) and found.max_rhat < 1.01
    assert found.passed


def test_single_drifting_chain_fails_on_rhat_and_divergences():
    values = np.linspace(0, 5, 400)[None, :] + np.random.default_rng(0).normal(size=(1, 400))
    thresholds = GateThresholds(min_ess_bulk=0, min_ess_tail=0)
    found = fit_diagnostics(_tree(values, diverging=3), thresholds, ["mu"])
    assert found.max_rhat > 1.5
    assert found.divergences == 3
    assert not found.passed
    assert any(message.startswith("R-hat") for message in found.failures)
