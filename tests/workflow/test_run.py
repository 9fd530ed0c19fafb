"""``cytofactory run`` and ``compare`` end to end on the cheap oral-PK model (few draws).

One module-scoped run (2 chains x 150 draws) and a second one with another seed feed every
test; the compiled model is cached by PyTensor/numba between the two. Marked slow: the first
compilation of the ODE graph takes minutes on 2 cores.
"""

import json
from pathlib import Path

import arviz as az
import numpy as np
import pandas as pd
import pytest
import xarray as xr

from bayes.cli import main

pytestmark = pytest.mark.slow

ROOT = Path(__file__).resolve().parents[2]

TINY = """
name = "{name}"
priors = "{root}/priors/oral_1cpt.toml"
[[data.sources]]
path = "{root}/datasets/examples/oral_pk_nonmem.csv"
mapping = "{root}/datasets/examples/oral_pk_nonmem.toml"
[model]
kind = "{root}/workflows/models/oral_1cpt.py:oral_one_compartment"
[sampler]
chains = 2
tune = 150
draws = 150
target_accept = 0.9
seed = {seed}
[checks]
dose_response_day = 0.5
[checks.gate]
min_ess_bulk = 50
min_ess_tail = 50
max_rhat = 1.05
"""


def tiny_workflow(folder: Path, name: str, seed: int) -> Path:
    path = folder / f"{name}.toml"
    path.write_text(TINY.format(root=ROOT, name=name, seed=seed), encoding="utf-8")
    return path


@pytest.fixture(scope="module")
def runs(tmp_path_factory):
    base = tmp_path_factory.mktemp("runs")
    out = {}
    for name, seed in (("first", 1), ("second", 2)):
        workflow = tiny_workflow(base, name, seed)
        assert main(["run", str(workflow), "--out", str(base / name)]) == 0
        out[name] = base / name
    return out


def test_run_folder_is_complete(runs):
    folder = runs["first"]
    for name in (
        "results.nc",
        "summary.csv",
        "diagnostics.json",
        "loo.csv",
        "excluded.csv",
        "config.json",
        "workflow.toml",
        "report.html",
        "run.log",
    ):
        assert (folder / name).is_file(), name
    figures = {p.name for p in (folder / "figures").glob("*.png")}
    assert {
        "rank.png",
        "trace.png",
        "ppc_concentration.png",
        "trajectories_concentration.png",
        "dose_response.png",
    } <= figures
    assert not list(folder.parent.glob("*.incomplete"))


def test_results_open_with_xarray_and_work_with_arviz(runs):
    tree = xr.open_datatree(runs["first"] / "results.nc", engine="netcdf4")
    groups = set(tree.children)
    assert {
        "posterior",
        "sample_stats",
        "log_likelihood",
        "posterior_predictive",
        "observed_data",
        "constant_data",
    } <= groups or {
        "posterior",
        "sample_stats",
        "log_likelihood",
        "posterior_predictive",
        "observed_data",
    } <= groups
    assert tree["posterior"].sizes["chain"] == 2 and tree["posterior"].sizes["draw"] == 150
    assert tree["observed_data"]["obs_concentration"].size == 110
    loo = az.loo(tree, var_name="obs_concentration")
    assert np.isfinite(loo.elpd) and loo.se > 0
    summary = az.summary(tree, var_names=["cl", "v", "ka"])
    assert len(summary) == 3
    attrs = tree.attrs
    assert attrs["seed"] == 1 and attrs["sampler"] == "nutpie"
    config = json.loads(attrs["config"])
    assert config["sampler"]["draws"] == 150 and config["name"] == "first"
    hashes = json.loads(attrs["data_hashes"])
    assert set(hashes) >= {"priors", "data.sources[0].path", "data.sources[0].mapping"}
    assert all(len(h) == 64 for h in hashes.values())
    assert "pymc" in json.loads(attrs["package_versions"])


def test_summary_and_diagnostics_agree_with_the_posterior(runs):
    folder = runs["first"]
    summary = pd.read_csv(folder / "summary.csv").set_index("parameter")
    tree = xr.open_datatree(folder / "results.nc", engine="netcdf4")
    cl = tree["posterior"]["cl"].values.reshape(-1)
    assert summary.loc["cl", "median"] == pytest.approx(np.median(cl))
    assert summary.loc["cl", "q5"] < summary.loc["cl", "median"] < summary.loc["cl", "q95"]
    assert {"ka", "cl", "v", "sigma", "omega_cl"} <= set(summary.index)
    diagnostics = json.loads((folder / "diagnostics.json").read_text())
    divergences = int(tree["sample_stats"]["diverging"].values.sum())
    assert diagnostics["divergences"] == divergences
    for key in ("max_rhat", "min_ess_bulk", "min_ess_tail", "min_bfmi", "passed"):
        assert key in diagnostics
    assert diagnostics["thresholds"]["min_ess_bulk"] == 50


def test_report_is_self_contained_and_has_every_section(runs):
    html = (runs["first"] / "report.html").read_text()
    for heading in (
        "Data",
        "Model",
        "Priors",
        "Sampling and diagnostics",
        "Population parameters",
        "Leave-one-out",
        "Posterior predictive",
        "Excluded data",
        "Provenance",
    ):
        assert f"<h2>{heading}" in html, heading
    assert "Diagnostics gate PASSED" in html or "Diagnostics gate FAILED" in html
    assert html.count("data:image/png;base64,") >= 5
    assert "src='http" not in html and 'src="http' not in html
    assert "rationale: weakly informative" in html  # priors with sources


def test_runs_are_reproducible_with_a_seed(runs, tmp_path):
    workflow = tiny_workflow(tmp_path, "first", 1)
    assert main(["run", str(workflow), "--out", str(tmp_path / "again")]) == 0
    a = xr.open_datatree(runs["first"] / "results.nc", engine="netcdf4")
    b = xr.open_datatree(tmp_path / "again" / "results.nc", engine="netcdf4")
    np.testing.assert_array_equal(a["posterior"]["cl"].values, b["posterior"]["cl"].values)


def test_existing_folder_needs_overwrite(runs, capsys):
    folder = runs["first"]
    before = (folder / "results.nc").stat().st_mtime_ns
    workflow = folder / "workflow.toml"
    assert main(["run", str(workflow), "--out", str(folder)]) == 2
    assert "--overwrite" in capsys.readouterr().err
    assert (folder / "results.nc").stat().st_mtime_ns == before


def test_strict_exits_1_when_the_gate_fails(tmp_path, capsys):
    workflow = tiny_workflow(tmp_path, "strict", 1)
    text = workflow.read_text().replace("min_ess_bulk = 50", "min_ess_bulk = 100000")
    workflow.write_text(text)
    assert main(["run", str(workflow), "--out", str(tmp_path / "s"), "--strict"]) == 1
    captured = capsys.readouterr()
    assert "diagnostics gate FAILED" in captured.out and "bulk ESS" in captured.out
    assert "Diagnostics gate FAILED" in (tmp_path / "s" / "report.html").read_text()
    diagnostics = json.loads((tmp_path / "s" / "diagnostics.json").read_text())
    assert diagnostics["passed"] is False and diagnostics["checks"]["ess_bulk"] is False


def test_interrupted_run_leaves_no_complete_looking_folder(tmp_path, monkeypatch, capsys):
    import bayes.workflow.run as run_module

    def interrupt(*args, **kwargs):
        raise KeyboardInterrupt

    monkeypatch.setattr(run_module, "check_gate", interrupt)
    workflow = tiny_workflow(tmp_path, "stopped", 1)
    assert main(["run", str(workflow), "--out", str(tmp_path / "stopped")]) == 130
    assert not (tmp_path / "stopped").exists()
    staging = tmp_path / "stopped.incomplete"
    assert (staging / "run.log").is_file() and not (staging / "results.nc").exists()
    assert "interrupted" in capsys.readouterr().err


def test_compare_two_runs(runs, tmp_path):
    out = tmp_path / "cmp"
    assert main(["compare", str(runs["first"]), str(runs["second"]), "--out", str(out)]) == 0
    table = pd.read_csv(out / "compare.csv", index_col=0)
    assert set(table.index) == {"first", "second"}
    assert {"elpd", "se", "elpd_diff", "dse", "weight", "n_pareto_k_above_0.7"} <= set(
        table.columns
    )
    # the same model and data with another seed: ELPDs agree within Monte Carlo error
    assert abs(table["elpd"].iloc[0] - table["elpd"].iloc[1]) < 2.0
    assert (out / "compare.png").stat().st_size > 1000


def test_compare_refuses_a_folder_that_is_not_a_run(runs, tmp_path, capsys):
    assert main(["compare", str(runs["first"]), str(tmp_path)]) == 2
    assert "not a complete run folder" in capsys.readouterr().err
