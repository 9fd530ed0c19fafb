"""The convergence gate on synthetic posteriors and sample stats (no sampling)."""

import numpy as np
import pytest
import xarray as xr

from bayes.inference.diagnostics import GateThresholds, check_gate


def make_tree(
    chains=4, draws=500, seed=0, shift_chain=0.0, divergences=0, energy_scale=1.0, sticky=False
):
    rng = np.random.default_rng(seed)
    a = rng.normal(size=(chains, draws))
    a[0] += shift_chain  # one chain elsewhere: R-hat rises
    b = rng.normal(size=(chains, draws, 3))
    if sticky:  # a random walk: strongly autocorrelated, tiny ESS
        b = np.cumsum(rng.normal(scale=0.05, size=(chains, draws, 3)), axis=1)
    diverging = np.zeros((chains, draws), dtype=bool)
    diverging.flat[:divergences] = True
    # E-BFMI = mean(diff(E)^2) / var(E): white noise gives ~2, a slow random walk ~0.
    energy = rng.normal(size=(chains, draws)) * energy_scale
    if energy_scale == 0:
        energy = np.cumsum(rng.normal(size=(chains, draws)), axis=1)
    posterior = xr.Dataset(
        {"a": (("chain", "draw"), a), "b": (("chain", "draw", "k"), b)},
        coords={"chain": np.arange(chains), "draw": np.arange(draws)},
    )
    stats = xr.Dataset(
        {"diverging": (("chain", "draw"), diverging), "energy": (("chain", "draw"), energy)},
        coords={"chain": np.arange(chains), "draw": np.arange(draws)},
    )
    return xr.DataTree.from_dict({"posterior": posterior, "sample_stats": stats})


def test_well_mixed_chains_pass():
    result = check_gate(make_tree())
    assert result.passed and result.failures == []
    assert result.max_rhat < 1.01 and result.min_ess_bulk > 1000 and result.divergences == 0
    assert result.n_chains == 4 and result.n_draws == 500


def test_a_stuck_chain_fails_on_rhat_and_names_the_variable():
    result = check_gate(make_tree(shift_chain=3.0))
    assert not result.passed and not result.checks["rhat"]
    assert result.worst_rhat_variable == "a"
    assert any("R-hat" in message and "(worst: a)" in message for message in result.failures)


def test_divergences_fail_unless_allowed():
    tree = make_tree(divergences=3)
    result = check_gate(tree)
    assert result.divergences == 3 and not result.checks["divergences"] and not result.passed
    assert check_gate(tree, GateThresholds(max_divergences=3)).passed


def test_low_ess_and_low_bfmi_fail():
    sticky = check_gate(make_tree(sticky=True))
    assert not sticky.checks["ess_bulk"] and sticky.worst_ess_bulk_variable == "b"
    assert sticky.min_ess_bulk < 400
    slow_energy = check_gate(make_tree(energy_scale=0))
    assert slow_energy.min_bfmi < 0.3 and not slow_energy.checks["bfmi"]


def test_var_names_restrict_the_check():
    tree = make_tree(shift_chain=3.0)
    assert check_gate(tree, var_names=["b"]).checks["rhat"]


def test_thresholds_are_validated():
    with pytest.raises(ValueError):
        GateThresholds(max_rhat=0.9)
    with pytest.raises(ValueError):
        GateThresholds(min_bfmi=-1)


def test_json_dict_has_the_required_keys():
    data = check_gate(make_tree()).to_json_dict()
    for key in ("max_rhat", "min_ess_bulk", "min_ess_tail", "divergences", "min_bfmi", "passed"):
        assert key in data
