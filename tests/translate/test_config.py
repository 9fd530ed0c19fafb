import pytest
from translate_helpers import ROOT, SMALL_SCENARIOS

from bayes.cli import main
from bayes.data import DataError
from bayes.translate.config import (
    load_scenarios,
    load_translation_priors,
    resolve_scenarios,
)


def _problems(tmp_path, text, resolve=True) -> list[str]:
    path = tmp_path / "bad.toml"
    path.write_text(text)
    with pytest.raises(DataError) as info:
        file = load_scenarios(path)
        if resolve:
            resolve_scenarios(file, load_translation_priors(), str(path))
    return [str(issue) for issue in info.value.issues]


def test_shipped_files_load_and_every_prior_names_a_source():
    priors = load_translation_priors()
    scenarios = resolve_scenarios(load_scenarios(ROOT / "workflows/human_dosing.toml"), priors)
    assert len(scenarios) == 10
    assert {s.cavity for s in scenarios} == {"peritoneal", "pleural"}
    for row in priors.table():
        assert row["source"].startswith(("LITERATURE.md: ", "rationale: ")), row["key"]


def test_toxicity_references_are_converted_with_18_miu_per_1_1_mg():
    references = {r.name: r for r in load_translation_priors().toxicity}
    assert references["sc_peak_low"].value_ng == pytest.approx(21.9 * 1.1e6 / 18e6)
    assert references["high_dose_iv_peak"].value_ng == pytest.approx(15000 * 1.1e6 / 18e6)
    assert references["high_dose_iv_daily_auc"].unit_ng == "ng*day/mL"


def test_scenario_with_capsules_and_total_output_names_the_scenario(tmp_path):
    text = SMALL_SCENARIOS.replace(
        "capsules = 200", "capsules = 200\ntotal_output_ug_per_day = 3.0"
    )
    problems = _problems(tmp_path, text, resolve=False)
    assert any("scenario.1" in p and "exactly one of capsules" in p for p in problems), problems


def test_typo_negative_value_and_duplicate_name_are_all_reported(tmp_path):
    text = (
        SMALL_SCENARIOS.replace("capsules = 100", "capsuls = 100")
        .replace("capsules = 200", "capsules = -2")
        .replace('name = "pleural_total_50"', 'name = "peritoneal_100"')
    )
    problems = _problems(tmp_path, text, resolve=False)
    assert any("scenario.0.capsuls" in p and "Extra inputs" in p for p in problems), problems
    assert any("scenario.1.capsules" in p and "greater than 0" in p for p in problems), problems


def test_unknown_cavity_and_late_reference_day_name_their_keys(tmp_path):
    text = SMALL_SCENARIOS.replace('cavity = "pleural"', 'cavity = "pericardial"').replace(
        "capsules = 200", "capsules = 200\nreference_day = 40.0"
    )
    problems = _problems(tmp_path, text)
    assert any("scenario.2.cavity" in p and "pericardial" in p for p in problems), problems
    assert any("scenario.1.reference_day" in p and "beyond horizon" in p for p in problems)


def test_cli_exits_2_with_the_key_on_a_bad_scenario_file(tmp_path, run_folder, capsys):
    path = tmp_path / "bad.toml"
    path.write_text(SMALL_SCENARIOS.replace("horizon_days = 21.0", "horizon_days = -1.0"))
    code = main(
        ["translate", str(path), "--posterior", str(run_folder), "--out", str(tmp_path / "out")]
    )
    assert code == 2
    assert "defaults.horizon_days" in capsys.readouterr().err


def test_posterior_without_a_required_parameter_is_refused(tmp_path, scenario_file, run_folder):
    import xarray as xr

    tree = xr.open_datatree(run_folder / "results.nc").load()
    posterior = tree["posterior"].to_dataset().drop_vars("k_sys")
    broken = tmp_path / "results.nc"
    xr.DataTree.from_dict({"/posterior": posterior}).to_netcdf(broken)
    code = main(
        [
            "translate",
            str(scenario_file),
            "--posterior",
            str(broken),
            "--out",
            str(tmp_path / "out"),
        ]
    )
    assert code == 2
