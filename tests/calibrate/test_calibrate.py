"""Calibration end to end on the cheap decay model (tests/calibrate/decay.toml).

All tests share one in-process dask cluster, so the sampler is compiled once for the module
(30-90 s on 2 shared cores); each replicate then takes about a second. Marked slow for the
compilation.
"""

from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from bayes.calibrate import CalibrationSettings, calibrate, load_fixed
from bayes.calibrate.outputs import write_outputs
from bayes.calibrate.replicate import build_fit_model
from bayes.calibrate.summary import summary_markdown, verdict
from bayes.parallel import dask_client

pytestmark = pytest.mark.slow

HERE = Path(__file__).resolve().parent
WORKFLOW = str(HERE / "decay.toml")
N_SIMS = 16


def settings(**changes) -> CalibrationSettings:
    base = {
        "workflow": WORKFLOW,
        "seed": 5,
        "draws": 200,
        "tune": 200,
        "chains": 1,
        "target_accept": 0.9,
        "max_rhat": 1.1,
    }
    return CalibrationSettings(**{**base, **changes})


@pytest.fixture(scope="module")
def client():
    with dask_client(n_workers=1, processes=False) as client:
        yield client


@pytest.fixture(scope="module")
def uninterrupted(client, tmp_path_factory):
    out = tmp_path_factory.mktemp("uninterrupted")
    return calibrate(settings(), N_SIMS, out, client), out


def test_calibrated_setup_is_not_flagged(uninterrupted):
    result, out = uninterrupted
    assert len(result.replicates) == N_SIMS
    assert set(result.population) == {"k", "a0", "omega_k", "sigma"}
    assert not verdict(result).miscalibrated, result.uniformity
    coverage = result.coverage[result.coverage["fits"] == "all"]
    assert sorted(coverage["level"].unique()) == [0.5, 0.8, 0.9, 0.95]
    assert (coverage["n"] == N_SIMS).all()
    ranks = result.statistics
    assert ranks["rank"].between(0, 99).all()
    assert set(ranks.loc[ranks["family"] == "subject", "variable"]) == {"z_k"}


def test_outputs_are_written(uninterrupted, monkeypatch):
    result, out = uninterrupted
    monkeypatch.chdir(HERE.parent)  # the summary names the workflow as the user would
    paths = write_outputs(result, out, "cytofactory calibrate decay.toml --n-sims 16")
    names = {p.name for p in paths}
    assert {"ranks.csv", "coverage.csv", "uniformity.csv", "summary.md"} <= names
    assert {"rank_histograms.png", "ecdf_difference.png"} <= names
    assert len(list((out / "replicates").glob("rep-*.npz"))) == N_SIMS
    summary = (out / "summary.md").read_text()
    assert "no miscalibration detected" in summary
    assert "--n-sims 16" in summary
    assert summary.startswith("# Calibration of `calibrate/decay.toml`")
    assert f"- this run: {N_SIMS} new replicates in" in summary
    replicates = pd.read_csv(out / "replicates.csv")
    assert set(replicates["status"]) <= {"ok", "failed_gate"}
    assert (replicates["n_observations"] == 30).all()


def test_interrupted_run_resumes_to_the_same_tables(uninterrupted, client, tmp_path):
    full, _ = uninterrupted
    first = calibrate(settings(), 5, tmp_path, client)  # "interrupted" after 5 replicates
    assert first.new_replicates == 5
    resumed = calibrate(settings(), N_SIMS, tmp_path, client)
    assert resumed.new_replicates == N_SIMS - 5
    pd.testing.assert_frame_equal(resumed.statistics, full.statistics)
    pd.testing.assert_frame_equal(resumed.uniformity, full.uniformity)
    pd.testing.assert_frame_equal(resumed.coverage, full.coverage)
    columns = ["replicate", "status", "simulation_seed", "fit_seed", "max_rhat"]
    pd.testing.assert_frame_equal(resumed.replicates[columns], full.replicates[columns])
    interim = calibrate(settings(), 3, tmp_path, client)  # fewer: the first 3, nothing rerun
    assert interim.new_replicates == 0
    timing = summary_markdown(interim, "interim").split("## Time")[1]
    assert "this run: no new fits; all 3 replicates were loaded from checkpoints" in timing
    first_three = full.statistics[full.statistics["replicate"] < 3].reset_index(drop=True)
    pd.testing.assert_frame_equal(interim.statistics.reset_index(drop=True), first_three)


def test_other_settings_in_the_same_folder_are_refused(uninterrupted, client):
    from bayes.calibrate import CalibrationInputError

    _, out = uninterrupted
    with pytest.raises(CalibrationInputError, match="differs in: settings.seed"):
        calibrate(settings(seed=4), 2, out, client)


def test_simulation_prior_different_from_the_fit_prior_is_flagged(client, tmp_path):
    shifted = str(HERE / "decay_priors_shifted.toml")
    result = calibrate(settings(simulation_priors=shifted), 12, tmp_path, client)
    found = verdict(result)
    assert found.miscalibrated
    assert "omega_k" in found.uniformity_flagged
    coverage = result.coverage[(result.coverage["fits"] == "all")]
    omega = coverage[coverage["parameter"] == "omega_k"]
    assert (omega["coverage"] < omega["level"]).all()
    truths = result.statistics.query("parameter == 'omega_k'")["truth"]
    assert truths.min() > 0.8  # drawn from the shifted prior (about 1.2), not HalfNormal(0.3)


def test_fixed_parameters_give_a_recovery_report(client, tmp_path):
    fixed_file = HERE / "decay_fixed.toml"
    fixed = load_fixed(fixed_file, build_fit_model(WORKFLOW).model)
    result = calibrate(settings(fixed=fixed, fixed_file=str(fixed_file)), 6, tmp_path, client)
    truth = result.statistics.pivot(index="replicate", columns="parameter", values="truth")
    assert np.allclose(truth["k"], 0.5) and np.allclose(truth["a0"], 100.0)
    assert truth["sigma"].nunique() == 6  # not fixed: drawn from its prior
    recovery = result.recovery[result.recovery["fits"] == "all"].set_index("parameter")
    assert recovery.loc["k", "truth_mean"] == pytest.approx(0.5)
    assert recovery.loc["k", "verdict"] == "estimable"
    assert abs(recovery.loc["k", "relative_bias"]) < 0.2
