"""Recovery tables: generating values against posterior intervals (``cohort recovery``)."""

import json

import numpy as np
import pandas as pd
import pytest
import xarray as xr

from bayes.cli import main
from bayes.models.cf_il2 import LOCAL_EXPOSURE
from bayes.models.recovery import recovery_table

RECIPE_PARAMETERS = {
    "k_sys": 263.0,
    "v_sys": 1.03,
    "local_systemic_ratio": 150.0,
    "absorbed_fraction": 0.8,
    "rho": 0.8,
}


def posterior(**draws: np.ndarray) -> xr.Dataset:
    return xr.Dataset({k: (("chain", "draw"), v.reshape(2, -1)) for k, v in draws.items()})


def test_intervals_medians_and_coverage_flags():
    rng = np.random.default_rng(0)
    post = posterior(a=rng.normal(1.0, 1.0, 20_000), b=rng.normal(0.0, 0.1, 20_000))
    table = recovery_table(post, {"a": 0.0, "b": 1.0, "not_in_posterior": 3.0}).set_index(
        "parameter"
    )
    assert list(table.index) == ["a", "b"]
    assert table.loc["a", "low"] == pytest.approx(1.0 - 1.645, abs=0.05)
    assert table.loc["a", "high"] == pytest.approx(1.0 + 1.645, abs=0.05)
    assert table.loc["a", "median"] == pytest.approx(1.0, abs=0.03)
    assert bool(table.loc["a", "inside"]) and not bool(table.loc["b", "inside"])
    narrow = recovery_table(post, {"a": 0.0}, prob=0.5).set_index("parameter")
    assert not bool(narrow.loc["a", "inside"])  # 50% interval is 1 +- 0.67


def test_identified_quantity_gets_its_derived_truth():
    p = RECIPE_PARAMETERS
    exposure = 1000 * p["rho"] * p["absorbed_fraction"] / (p["k_sys"] * p["v_sys"] / 150.0)
    draws = np.log(exposure) + np.random.default_rng(1).normal(0.0, 0.05, 4000)
    table = recovery_table(posterior(log_local_exposure=draws), p, {"rho": LOCAL_EXPOSURE})
    row = table.set_index("parameter").loc["local_exposure"]
    assert row["true"] == pytest.approx(exposure, rel=1e-12)
    assert row["median"] == pytest.approx(exposure, rel=0.01) and row["inside"]


def test_bad_requests_are_errors():
    post = posterior(a=np.zeros(10))
    with pytest.raises(ValueError, match="prob"):
        recovery_table(post, {"a": 0.0}, prob=1.5)
    with pytest.raises(ValueError, match="none of the generating values"):
        recovery_table(post, {"b": 0.0})


def test_cohort_recovery_command_writes_the_table(tmp_path, capsys):
    recipe = "datasets/cohorts/reference/recipe.toml"
    run = tmp_path / "run"
    run.mkdir()
    rng = np.random.default_rng(2)
    post = posterior(kill_rate=rng.normal(0.9, 0.05, 2000), hill=rng.normal(5.0, 0.1, 2000))
    xr.DataTree.from_dict({"posterior": post}).to_netcdf(run / "results.nc", engine="netcdf4")
    assert main(["cohort", "recovery", str(run), "--recipe", recipe]) == 0
    out = capsys.readouterr().out
    assert "1 of 2 generating values inside their 90% intervals" in out
    table = pd.read_csv(run / "recovery.csv").set_index("parameter")
    assert table.loc["kill_rate", "inside"] and not table.loc["hill", "inside"]
    assert main(["cohort", "recovery", str(tmp_path), "--recipe", recipe]) == 2
    assert "no results.nc" in capsys.readouterr().err


def test_cohort_recovery_refuses_a_fit_on_another_burden_reference(tmp_path, capsys):
    """Burden offsets are compared with the recipe only on the reference they were made on."""
    recipe = "datasets/cohorts/reference/recipe.toml"
    post = posterior(log_burden0=np.random.default_rng(3).normal(0.0, 0.05, 2000))
    for name, options, code in (
        ("other", {"burden_reference": 1e6}, 2),
        ("default", {}, 2),
        ("same", {"burden_reference": 5.0e6}, 0),
    ):
        run = tmp_path / name
        run.mkdir()
        config = json.dumps({"model": {"kind": "cf_il2", "options": options}})
        tree = xr.DataTree.from_dict({"posterior": post})
        tree.attrs["config"] = config
        tree.to_netcdf(run / "results.nc", engine="netcdf4")
        assert main(["cohort", "recovery", str(run), "--recipe", recipe]) == code, name
        if code:
            assert "burden_reference = 5e+06" in capsys.readouterr().err
