"""Truths, distributed execution (identical on 1 or 2 workers, retries, resume), CLI, errors."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import xarray as xr

from bayes.cli import main
from bayes.data import DataError
from bayes.parallel import BatchFailureError, CheckpointStore, dask_client, map_batches
from bayes.trials.oc import true_mtd
from bayes.trials.run import prepare, simulate
from bayes.trials.simulate import simulate_batch
from bayes.trials.truths import draw_truth, load_exposure


def test_truth_rates_are_patient_averages_and_outcomes_follow_them(translation_dir, small_design):
    study = prepare(small_design, translation_dir)
    model = study.model
    truth = draw_truth(model, seed=3, trial=7)
    intercept, slope = truth.link_parameters[:2]
    exposure = load_exposure(translation_dir)["cmax_serum"].isel(draw=truth.draw).values
    reference = study.config.toxicity.reference
    expected = 1 / (1 + np.exp(-(intercept + slope * np.log(exposure / reference))))
    assert truth.true_dlt == pytest.approx(expected.mean(axis=1), rel=1e-5)
    assert np.all(np.diff(truth.true_dlt) > 0)  # exposure rises with capsules
    again = draw_truth(model, seed=3, trial=7)
    assert np.array_equal(truth.dlt, again.dlt) and truth.draw == again.draw
    # many patients: observed DLT frequency per dose ~ the population rate
    big = type(model)(**{**model.__dict__, "n_stream": 20000})
    stream = draw_truth(big, seed=3, trial=7)
    assert stream.dlt.mean(axis=1) == pytest.approx(stream.true_dlt, abs=0.015)


def test_batches_do_not_change_results(translation_dir, small_design):
    study = prepare(small_design, translation_dir)
    whole = simulate_batch(study.model, study.designs, 5, range(12), study.config.expansion)
    first = simulate_batch(study.model, study.designs, 5, range(5), study.config.expansion)
    second = simulate_batch(study.model, study.designs, 5, range(5, 12), study.config.expansion)
    assert np.array_equal(
        whole["selected"], np.concatenate([first["selected"], second["selected"]], axis=1)
    )
    assert np.array_equal(whole["n"][:, 5:], second["n"])


def test_identical_results_on_one_and_two_workers(translation_dir, small_design):
    study = prepare(small_design, translation_dir)
    runs = []
    for workers in (1, 2):
        with dask_client(n_workers=workers, processes=False) as client:
            runs.append(simulate(study, client, n_trials=60))
    one, two = runs
    xr.testing.assert_identical(one.trials, two.trials)
    xr.testing.assert_identical(one.summary, two.summary)
    assert one.trials.sizes["trial"] == 60


def test_true_mtd_definition():
    rates = np.array([[0.1, 0.2, 0.4], [0.5, 0.6, 0.7], [0.1, 0.2, 0.3]])
    assert true_mtd(rates, 0.33).tolist() == [1, -1, 2]


def _flaky(marker_dir, key, fail_times):
    """Fail the first ``fail_times`` calls for ``key`` (counted with marker files)."""
    calls = len(list(Path(marker_dir).glob(f"{key}-*")))
    (Path(marker_dir) / f"{key}-{calls}").touch()
    if calls < fail_times:
        raise RuntimeError(f"injected failure {calls} of {key}")
    return {"trial": np.array([int(key[1:])]), "value": np.array([int(key[1:]) ** 2])}


def test_failed_batches_are_retried(tmp_path):
    batches = {f"b{i}": (str(tmp_path), f"b{i}", 1 if i == 2 else 0) for i in range(4)}
    with dask_client(n_workers=2, processes=False) as client:
        results = map_batches(client, _flaky, batches, retries=2)
    assert sorted(int(r["value"][0]) for r in results.values()) == [0, 1, 4, 9]
    assert len(list(tmp_path.glob("b2-*"))) == 2  # failed once, succeeded on the retry


def test_finished_batches_survive_a_failure_and_the_run_resumes(tmp_path):
    markers = tmp_path / "markers"
    markers.mkdir()
    store_dir = tmp_path / "store"
    batches = {f"b{i}": (str(markers), f"b{i}", 5 if i == 1 else 0) for i in range(3)}
    with dask_client(n_workers=2, processes=False) as client:
        with pytest.raises(BatchFailureError) as failure:
            map_batches(
                client, _flaky, batches, retries=0, store=CheckpointStore(store_dir, {"a": 1})
            )
        assert failure.value.completed == 2 and list(failure.value.failed) == ["b1"]
        assert sorted(p.name for p in store_dir.glob("*.npz")) == ["b0.npz", "b2.npz"]
        fixed = {**batches, "b1": (str(markers), "b1", 0)}
        results = map_batches(client, _flaky, fixed, store=CheckpointStore(store_dir, {"a": 1}))
    assert len(list(markers.glob("b0-*"))) == 1  # not recomputed on resume
    assert int(results["b1"]["value"][0]) == 1
    CheckpointStore(store_dir, {"a": 2})  # other inputs: the stale store is emptied
    assert not list(store_dir.glob("*.npz"))


def test_cli_on_two_process_workers_matches_one_thread_worker(
    translation_dir, small_design, tmp_path
):
    out = tmp_path / "out"
    args = ["trial", str(small_design), "--translation", str(translation_dir), "--out", str(out)]
    assert main([*args, "--n-trials", "40", "--workers", "2"]) == 0
    for name in ("oc.nc", "oc.csv", "report.html", "selection.png", "true_rates.png"):
        assert (out / name).stat().st_size > 0, name
    assert not (out / ".trial-checkpoint").exists()
    table = pd.read_csv(out / "oc.csv")
    assert list(table["design"]) == [
        "3+3",
        "BOIN",
        "BLRM-EWOC (translational prior)",
        "BLRM-EWOC (weakly informative)",
    ]
    selection = table.filter(like="p_select[").to_numpy()
    assert selection.sum(axis=1) == pytest.approx(np.ones(4))
    with xr.open_datatree(out / "oc.nc") as tree:
        assert set(tree["summary"].data_vars) >= {"p_select", "assurance", "mean_dlts"}
        from_cli = tree["trials"].to_dataset().load()
    study = prepare(small_design, translation_dir)
    with dask_client(n_workers=1, processes=False) as client:
        in_process = simulate(study, client, n_trials=40).trials
    for name in in_process.data_vars:
        np.testing.assert_array_equal(from_cli[name].values, in_process[name].values, name)


def test_bad_inputs_name_file_and_key(translation_dir, small_design, tmp_path, capsys):
    bad = tmp_path / "bad.toml"
    bad.write_text(small_design.read_text().replace('rule = "boin"', 'rule = "boinn"'))
    args = ["--translation", str(translation_dir), "--out", str(tmp_path / "o")]
    assert main(["trial", str(bad), *args]) == 2
    assert "bad.toml" in capsys.readouterr().err
    wrong = tmp_path / "wrong.toml"
    wrong.write_text(small_design.read_text().replace('cavity = "peritoneal"', 'scenarios = ["x"]'))
    assert main(["trial", str(wrong), *args]) == 2
    assert "doses.scenarios" in capsys.readouterr().err
    broken = tmp_path / "broken"
    broken.mkdir()
    with xr.open_datatree(translation_dir / "predictions.nc") as tree:
        exposure = tree["exposure"].to_dataset().load().drop_vars("cmax_serum")
    xr.DataTree.from_dict({"/exposure": exposure}).to_netcdf(broken / "predictions.nc")
    with pytest.raises(DataError, match="cmax_serum"):
        load_exposure(broken)
    assert (
        main(
            [
                "trial",
                str(small_design),
                "--translation",
                str(tmp_path / "none"),
                "--out",
                str(tmp_path / "o"),
            ]
        )
        == 2
    )


def test_operating_characteristics_by_hand(translation_dir, small_design):
    from bayes.trials.oc import summarise, trial_dataset

    study = prepare(small_design, translation_dir)
    config = study.config
    raw = simulate_batch(study.model, study.designs, 2, range(50), config.expansion)
    trials = trial_dataset(raw, config, study.model)
    summary = summarise(trials)
    limit, active = config.evaluation.max_acceptable_dlt, config.evaluation.min_response
    for d in range(len(config.designs)):
        picks, patients = raw["selected"][d], raw["n"][d]
        good, above, success = [], [], []
        for t in range(50):
            rates, responses = raw["true_dlt"][t], raw["true_response"][t]
            ok = [i for i in range(len(rates)) if rates[i] <= limit]
            mtd = max(ok) if ok else -1
            above.append(patients[t][mtd + 1 :].sum())
            pick = picks[t]
            good.append(pick >= 0 and rates[pick] <= limit and responses[pick] >= active)
            success.append(
                pick >= 0
                and raw["expansion_responses"][d, t] >= config.expansion.min_responses
                and raw["expansion_dlts"][d, t] <= config.expansion.max_dlts
            )
        one = summary.isel(design=d)
        assert float(one["p_select_safe_and_active"]) == pytest.approx(np.mean(good))
        assert float(one["mean_patients_above_true_mtd"]) == pytest.approx(np.mean(above))
        assert float(one["assurance"]) == pytest.approx(np.mean(success))
        assert float(one["p_select"].sum()) == pytest.approx(1.0)
        assert float(one["mean_patients"]) == pytest.approx(patients.sum(axis=1).mean())
