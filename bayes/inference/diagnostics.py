"""The convergence gate: R-hat, bulk and tail ESS, divergences and E-BFMI from ArviZ.

Default thresholds follow Vehtari et al. (2021, Bayesian Analysis 16:667, "Rank-normalization,
folding, and localization"): rank-normalised split R-hat <= 1.01 and bulk/tail ESS >= 400
(100 per chain for 4 chains); no divergent transitions (Betancourt 2017, arXiv:1701.02434); E-BFMI
>= 0.3 (Betancourt 2016, arXiv:1604.00695, the threshold ArviZ and Stan warn at).
"""

from __future__ import annotations

import math
from typing import Annotated, Any

import arviz as az
import numpy as np
import xarray as xr
from pydantic import BaseModel, ConfigDict, Field


class GateThresholds(BaseModel):
    """Pass criteria of the convergence gate (see module docstring for the sources)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    max_rhat: Annotated[float, Field(ge=1.0)] = 1.01
    min_ess_bulk: Annotated[float, Field(ge=0)] = 400.0
    min_ess_tail: Annotated[float, Field(ge=0)] = 400.0
    max_divergences: Annotated[int, Field(ge=0)] = 0
    min_bfmi: Annotated[float, Field(ge=0)] = 0.3


class Diagnostics(BaseModel):
    """What the gate measured and whether each criterion passed."""

    model_config = ConfigDict(frozen=True)

    max_rhat: float
    min_ess_bulk: float
    min_ess_tail: float
    divergences: int
    min_bfmi: float
    worst_rhat_variable: str
    worst_ess_bulk_variable: str
    worst_ess_tail_variable: str
    checks: dict[str, bool]
    failures: list[str]
    passed: bool
    thresholds: GateThresholds
    n_chains: int
    n_draws: int

    def to_json_dict(self) -> dict[str, Any]:
        """Return a JSON-safe dict (NaN -> None)."""
        data = self.model_dump()
        for key, value in list(data.items()):
            if isinstance(value, float) and not math.isfinite(value):
                data[key] = None
        return data


def _extreme(values: xr.Dataset, largest: bool) -> tuple[float, str]:
    best_value, best_name = (-np.inf if largest else np.inf), ""
    for name, array in values.data_vars.items():
        data = np.asarray(array.values, dtype=float)
        if data.size == 0:
            continue
        # A NaN statistic (e.g. a constant variable) counts as the worst possible value.
        candidate = np.inf if largest else -np.inf
        if not np.isnan(data).any():
            candidate = float(data.max() if largest else data.min())
        if (candidate > best_value) if largest else (candidate < best_value):
            best_value, best_name = candidate, str(name)
    return best_value, best_name


def check_gate(
    tree: xr.DataTree,
    thresholds: GateThresholds | None = None,
    var_names: list[str] | None = None,
) -> Diagnostics:
    """Compute the convergence diagnostics of ``tree`` and apply the gate.

    Parameters
    ----------
    tree : xarray.DataTree
        Needs ``posterior`` and ``sample_stats`` (``diverging``, ``energy``).
    thresholds : GateThresholds, optional
        Pass criteria (default: the module's).
    var_names : list of str, optional
        Posterior variables to check (default: all); pass the free parameters to leave out
        deterministic transforms.

    Returns
    -------
    Diagnostics
    """
    thresholds = thresholds or GateThresholds()
    posterior = tree["posterior"].to_dataset()
    if var_names is not None:
        posterior = posterior[var_names]
    rhat = az.rhat(posterior)
    ess_bulk = az.ess(posterior, method="bulk")
    ess_tail = az.ess(posterior, method="tail")
    max_rhat, rhat_name = _extreme(rhat, largest=True)
    min_bulk, bulk_name = _extreme(ess_bulk, largest=False)
    min_tail, tail_name = _extreme(ess_tail, largest=False)
    stats = tree["sample_stats"].to_dataset()
    divergences = int(np.asarray(stats["diverging"].values, dtype=bool).sum())
    min_bfmi = float(np.min(az.bfmi(stats[["energy"]])["energy"].values))
    checks = {
        "rhat": max_rhat <= thresholds.max_rhat,
        "ess_bulk": min_bulk >= thresholds.min_ess_bulk,
        "ess_tail": min_tail >= thresholds.min_ess_tail,
        "divergences": divergences <= thresholds.max_divergences,
        "bfmi": bool(min_bfmi >= thresholds.min_bfmi),
    }
    failures = _failure_messages(
        checks,
        thresholds,
        max_rhat,
        rhat_name,
        min_bulk,
        bulk_name,
        min_tail,
        tail_name,
        divergences,
        min_bfmi,
    )
    return Diagnostics(
        max_rhat=max_rhat,
        min_ess_bulk=min_bulk,
        min_ess_tail=min_tail,
        divergences=divergences,
        min_bfmi=min_bfmi,
        worst_rhat_variable=rhat_name,
        worst_ess_bulk_variable=bulk_name,
        worst_ess_tail_variable=tail_name,
        checks=checks,
        failures=failures,
        passed=all(checks.values()),
        thresholds=thresholds,
        n_chains=int(posterior.sizes["chain"]),
        n_draws=int(posterior.sizes["draw"]),
    )


def _failure_messages(
    checks: dict[str, bool],
    t: GateThresholds,
    max_rhat: float,
    rhat_name: str,
    min_bulk: float,
    bulk_name: str,
    min_tail: float,
    tail_name: str,
    divergences: int,
    min_bfmi: float,
) -> list[str]:
    messages = {
        "rhat": f"R-hat {max_rhat:.3f} > {t.max_rhat} (worst: {rhat_name})",
        "ess_bulk": f"bulk ESS {min_bulk:.0f} < {t.min_ess_bulk:g} (worst: {bulk_name})",
        "ess_tail": f"tail ESS {min_tail:.0f} < {t.min_ess_tail:g} (worst: {tail_name})",
        "divergences": f"{divergences} divergent transitions (allowed: {t.max_divergences})",
        "bfmi": f"E-BFMI {min_bfmi:.2f} < {t.min_bfmi} in at least one chain",
    }
    return [messages[name] for name, ok in checks.items() if not ok]
