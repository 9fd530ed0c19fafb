"""Workflow files: every shipped one validates; broken ones give one clear error per key path."""

import shutil
from pathlib import Path

import pytest

from bayes.cli import main
from bayes.workflow import WorkflowError, load_workflow
from bayes.workflow.inputs import build_model, load_data

ROOT = Path(__file__).resolve().parents[2]
WORKFLOWS = ROOT / "workflows"
SHARED = ROOT.parent / "shared" / "data"
REAL = {"inspectumours_growth_treatment.toml", "eigenmann2016_pk_tgi.toml"}

ORAL = """
name = "oral"
priors = "{root}/priors/oral_1cpt.toml"
[[data.sources]]
path = "{root}/datasets/examples/oral_pk_nonmem.csv"
mapping = "{root}/datasets/examples/oral_pk_nonmem.toml"
[model]
kind = "{root}/workflows/models/oral_1cpt.py:oral_one_compartment"
"""


def write(tmp_path: Path, text: str, name: str = "wf.toml") -> Path:
    path = tmp_path / name
    path.write_text(text.replace("{root}", str(ROOT)), encoding="utf-8")
    return path


def problems(path: Path) -> dict[str, str]:
    with pytest.raises(WorkflowError) as info:
        loaded = load_workflow(path)
        build_model(loaded, load_data(loaded))
    return dict(info.value.problems)


@pytest.mark.parametrize(
    "name",
    sorted(
        p.name
        for p in WORKFLOWS.glob("*.toml")
        if p.name not in {"human_dosing.toml", "trial_design.toml"}
    ),
)
def test_shipped_workflows_validate(name):
    if name in REAL and not SHARED.is_dir():
        pytest.skip("real data in ../shared/data is absent")
    loaded = load_workflow(WORKFLOWS / name)
    assert loaded.workflow.name
    assert loaded.resolve(loaded.workflow.priors).is_file()


def test_quickstart_defaults_match_the_issue():
    workflow = load_workflow(WORKFLOWS / "quickstart.toml").workflow
    assert workflow.model.kind == "cf_il2" and workflow.sampler.backend == "nutpie"
    assert (workflow.sampler.chains, workflow.sampler.draws) == (4, 1000)
    gate = workflow.checks.gate
    assert (gate.max_rhat, gate.min_ess_bulk, gate.min_ess_tail) == (1.01, 400, 400)
    assert (gate.max_divergences, gate.min_bfmi) == (0, 0.3)


def test_misspelled_key_is_named_with_its_path_and_a_suggestion(tmp_path):
    path = write(tmp_path, ORAL + "[sampler]\nchians = 4\n")
    found = problems(path)
    assert "sampler.chians" in found
    assert "did you mean 'chains'" in found["sampler.chians"]


def test_unknown_top_level_and_nested_list_keys(tmp_path):
    text = ORAL.replace("[[data.sources]]\n", '[[data.sources]]\nformt = "tidy"\n')
    found = problems(write(tmp_path, "outptu = 1\n" + text))
    assert (
        "data.sources[0].formt" in found
        and "did you mean 'format'" in found["data.sources[0].formt"]
    )
    assert "outptu" in found and "did you mean 'output'" in found["outptu"]


def test_wrong_type_is_named(tmp_path):
    found = problems(write(tmp_path, ORAL + '[sampler]\ndraws = "many"\ntarget_accept = 1.5\n'))
    assert "integer" in found["sampler.draws"]
    assert "less than 1" in found["sampler.target_accept"]


def test_low_rank_mass_matrix_is_nutpie_only(tmp_path):
    text = ORAL + '[sampler]\nbackend = "pymc"\nmass_matrix = "low_rank"\neigval_cutoff = 0.5\n'
    found = problems(write(tmp_path, text))
    assert "greater than 1" in found["sampler.eigval_cutoff"]
    found = problems(write(tmp_path, text.replace("eigval_cutoff = 0.5", "eigval_cutoff = 3")))
    assert found == {"sampler.mass_matrix": "'low_rank' needs backend 'nutpie'"}


def test_centred_parameter_without_random_effect_is_named(tmp_path):
    text = ORAL.replace("[model]\n", '[model]\ncentred = ["no_such"]\n')
    found = problems(write(tmp_path, text))
    assert "'no_such' has no random effect" in found["model.centred[0]"]


def test_missing_required_key(tmp_path):
    found = problems(write(tmp_path, ORAL.replace('name = "oral"\n', "")))
    assert found == {"name": "required key missing"}


def test_missing_files_are_named_by_key(tmp_path):
    text = ORAL.replace("oral_pk_nonmem.csv", "nope.csv").replace("oral_1cpt.toml", "nope.toml")
    found = problems(write(tmp_path, text))
    assert set(found) == {"priors", "data.sources[0].path"}
    assert "file not found" in found["data.sources[0].path"]


def test_paths_are_relative_to_the_workflow_file(tmp_path):
    (tmp_path / "sub").mkdir()
    shutil.copy(ROOT / "datasets/examples/oral_pk_nonmem.csv", tmp_path / "data.csv")
    text = ORAL.replace("{root}/datasets/examples/oral_pk_nonmem.csv", "../data.csv")
    loaded = load_workflow(write(tmp_path / "sub", text))
    assert loaded.resolve(loaded.workflow.data.sources[0].path) == tmp_path / "sub" / "../data.csv"
    assert load_data(loaded).summary()["subjects"] == 10


def test_unknown_group_is_named_with_a_suggestion(tmp_path):
    text = f"""
name = "q"
priors = "{ROOT}/priors/cf_il2_mouse.toml"
[data]
groups = ["cf_low", "cf_hihg"]
[[data.sources]]
path = "{ROOT}/datasets/examples/example_observations.csv"
events = "{ROOT}/datasets/examples/example_events.csv"
"""
    found = problems(write(tmp_path, text))
    assert list(found) == ["data.groups[1]"]
    assert "'cf_hihg' is not in the data" in found["data.groups[1]"]
    assert "did you mean 'cf_high'" in found["data.groups[1]"]


def test_group_selection_lists_the_rest_as_excluded(tmp_path):
    text = f"""
name = "q"
priors = "{ROOT}/priors/cf_il2_mouse.toml"
[data]
exclude_groups = ["empty_capsules"]
[[data.sources]]
path = "{ROOT}/datasets/examples/example_observations.csv"
events = "{ROOT}/datasets/examples/example_events.csv"
"""
    study = load_data(load_workflow(write(tmp_path, text)))
    assert set(study.observations["group"]) == {"cf_low", "cf_high"}
    assert study.summary()["subjects"] == 8
    reasons = set(study.excluded["reason"])
    assert reasons == {"group not selected by the workflow: empty_capsules"}
    assert set(study.events["subject"]) <= set(study.observations["subject"])


def test_bad_model_options_and_effects_are_named(tmp_path):
    text = ORAL + 'options = { dose_kind = "x" }\n'
    assert "model.options.dose_kind" in problems(write(tmp_path, text))
    text = f"""
name = "q"
priors = "{ROOT}/priors/cf_il2_mouse.toml"
[[data.sources]]
path = "{ROOT}/datasets/examples/example_observations.csv"
events = "{ROOT}/datasets/examples/example_events.csv"
[model]
options = {{ growht = "gompertz" }}
"""
    found = problems(write(tmp_path, text, "b.toml"))
    assert "did you mean 'growth'" in found["model.options.growht"]
    text = text.replace("growht", "growth").replace('"gompertz"', '"linear"')
    assert "model.options.growth" in problems(write(tmp_path, text, "c.toml"))


def test_unresolvable_model_kind(tmp_path):
    text = ORAL.replace("oral_1cpt.py:oral_one_compartment", "oral_1cpt.py:nothing")
    assert "has no function 'nothing'" in problems(write(tmp_path, text))["model.kind"]
    text = ORAL.replace(
        "{root}/workflows/models/oral_1cpt.py:oral_one_compartment", "no_such_mod:f"
    )
    assert "cannot import" in problems(write(tmp_path, text, "b.toml"))["model.kind"]


def test_cli_reports_problems_with_exit_code_2(tmp_path, capsys):
    path = write(tmp_path, ORAL + "[sampler]\nchians = 4\n")
    assert main(["run", str(path), "--out", str(tmp_path / "run")]) == 2
    err = capsys.readouterr().err
    assert f"{path}: sampler.chians: unknown key (did you mean 'chains'?)" in err
    assert not (tmp_path / "run").exists()
    assert main(["run", str(tmp_path / "absent.toml")]) == 2


def test_data_level_problem_leaves_no_folder(tmp_path, capsys):
    text = ORAL.replace("[[data.sources]]", '[data]\ngroups = ["nope"]\n[[data.sources]]', 1)
    path = write(tmp_path, text)
    assert main(["run", str(path), "--out", str(tmp_path / "run")]) == 2
    assert "data.groups[0]: group 'nope' is not in the data" in capsys.readouterr().err
    assert sorted(p.name for p in tmp_path.iterdir()) == ["wf.toml"]


def test_run_data_override_replaces_the_sources(tmp_path, capsys):
    """`run --data FILE --events FILE` fits another data file with the same workflow."""
    quickstart = WORKFLOWS / "quickstart.toml"
    obs = ROOT / "datasets" / "cohorts" / "reference" / "observations.csv"
    keep = {"control-1", "control-2", "cf_5ug-1", "cf_5ug-2"}  # 4 mice: a stand-in cohort
    few, events = (
        subset_csv(source, tmp_path / source.name, keep)
        for source in (obs, obs.with_name("events.csv"))
    )
    argv = ["run", str(quickstart), "--check", "--data", str(few), "--events", str(events)]
    assert main(argv) == 0
    out = capsys.readouterr().out
    assert f"data: {few}" in out and "4 subjects" in out
    assert main(["run", str(quickstart), "--data", str(tmp_path / "none.csv"), "--check"]) == 2
    assert f"{quickstart}: --data: file not found" in capsys.readouterr().err
    assert main(["run", str(quickstart), "--events", str(events), "--check"]) == 2
    assert "--events needs --data" in capsys.readouterr().err


def subset_csv(source: Path, target: Path, subjects: set[str]) -> Path:
    """Copy a tidy CSV (comment line, header) keeping the rows of ``subjects``."""
    lines = source.read_text(encoding="utf-8").splitlines()
    body = [line for line in lines[2:] if line.split(",")[0] in subjects]
    target.write_text("\n".join(lines[:2] + body) + "\n", encoding="utf-8")
    return target
