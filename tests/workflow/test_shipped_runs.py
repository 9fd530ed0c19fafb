"""Full runs of the shipped workflows (slow: minutes each on 2 cores).

The quickstart must pass the diagnostics gate. The real-data workflows need ../shared/data;
they run at their shipped settings (the gate needs them: 4 x 1000 draws) and are checked for
what the README promises: a complete run folder, a passed gate, posterior predictive bands
that cover the data, and the treatment effects the data show.
"""

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import xarray as xr

from bayes.cli import main

pytestmark = pytest.mark.slow

ROOT = Path(__file__).resolve().parents[2]
SHARED = ROOT.parent / "shared" / "data"
needs_shared_data = pytest.mark.skipif(not SHARED.is_dir(), reason="../shared/data absent")
RUN_FILES = ("results.nc", "summary.csv", "diagnostics.json", "loo.csv", "excluded.csv")
RUN_FILES += ("config.json", "workflow.toml", "report.html", "run.log")


def run(name: str, out: Path) -> dict:
    assert main(["run", str(ROOT / "workflows" / name), "--out", str(out), "--strict"]) == 0
    for file in RUN_FILES:
        assert (out / file).is_file(), file
    return json.loads((out / "diagnostics.json").read_text())


def coverage_90(out: Path, analyte: str) -> float:
    """Fraction of measured (uncensored) observations inside their 90% predictive band."""
    tree = xr.open_datatree(out / "results.nc")
    name = f"obs_{analyte}"
    draws = tree["posterior_predictive"][name].stack(sample=("chain", "draw"))
    low, high = draws.quantile([0.05, 0.95], dim="sample").values
    observed = tree["observed_data"][name].values
    censored = tree["constant_data"][f"{name}_censored"].values.astype(bool)
    inside = (observed >= low) & (observed <= high)
    return float(inside[~censored].mean())


def summary(out: Path) -> pd.DataFrame:
    return pd.read_csv(out / "summary.csv").set_index("parameter")


def test_quickstart_passes_the_gate(tmp_path):
    diagnostics = run("quickstart.toml", tmp_path / "quickstart")
    assert diagnostics["passed"] and diagnostics["divergences"] == 0


@needs_shared_data
def test_inspectumours_run_follows_the_data(tmp_path):
    out = tmp_path / "inspectumours"
    diagnostics = run("inspectumours_growth_treatment.toml", out)
    assert diagnostics["passed"], diagnostics["failures"]
    assert sorted(p.name for p in (out / "figures").glob("ppc_*.png"))
    assert coverage_90(out, "tumour_volume") >= 0.85
    table = summary(out)
    # both drugs slow growth; Drug B (regressions in the data) more than Drug A
    assert table.loc["treatment_effect", "q5"] > 0.02
    assert table.loc["beta_treatment_effect_drug_b", "q5"] > 0


@needs_shared_data
def test_eigenmann2016_run_follows_the_data(tmp_path):
    out = tmp_path / "eigenmann2016"
    diagnostics = run("eigenmann2016_pk_tgi.toml", out)
    assert diagnostics["passed"], diagnostics["failures"]
    assert coverage_90(out, "tumour_volume") >= 0.85
    assert coverage_90(out, "plasma_concentration") >= 0.80
    table = summary(out)
    # the 100 mg/kg arm regresses: the maximal kill exceeds the growth rate
    assert table.loc["drug_kmax", "q5"] > table.loc["growth_rate", "q95"]
