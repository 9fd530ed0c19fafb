"""``cytofactory calibrate`` bad input: exit code 2 and a message naming the file and key.

Every case fails before a cluster starts or anything compiles.
"""

import json
import shutil
from pathlib import Path

import pytest

from bayes.calibrate import CalibrationInputError, CalibrationSettings
from bayes.calibrate.run import open_store
from bayes.cli import main

HERE = Path(__file__).resolve().parent
WORKFLOW = str(HERE / "decay.toml")


def _run(capsys, *extra: str, out: Path) -> tuple[int, str]:
    code = main(["calibrate", WORKFLOW, "--n-sims", "2", "--out", str(out), *extra])
    return code, capsys.readouterr().err


def test_unknown_fixed_parameter_names_file_and_key(tmp_path, capsys):
    fixed = tmp_path / "fixed.toml"
    fixed.write_text("[parameters]\nkk = 0.5\nsigma = -1.0\n")
    code, err = _run(capsys, "--fixed", str(fixed), out=tmp_path / "out")
    assert code == 2
    assert f"{fixed}" in err
    assert "parameters.kk: not a free parameter of the model (did you mean 'k'?)" in err
    assert "parameters.sigma: value outside the support of its prior" in err
    assert not (tmp_path / "out").exists()


def test_unknown_top_level_key_in_fixed_file(tmp_path, capsys):
    fixed = tmp_path / "fixed.toml"
    fixed.write_text("note = 'x'\n[parameters]\nk = 0.5\n")
    code, err = _run(capsys, "--fixed", str(fixed), out=tmp_path / "out")
    assert code == 2
    assert "note" in err and "Extra inputs are not permitted" in err


def test_fixed_per_subject_shape_is_checked(tmp_path, capsys):
    fixed = tmp_path / "fixed.toml"
    fixed.write_text("[parameters]\nz_k = [0.0, 1.0]\n")
    code, err = _run(capsys, "--fixed", str(fixed), out=tmp_path / "out")
    assert code == 2
    assert "parameters.z_k: expected shape (6,), got (2,)" in err


def test_rank_draws_above_kept_draws_is_a_usage_error(tmp_path, capsys):
    code, err = _run(capsys, "--draws", "50", "--rank-draws", "99", out=tmp_path / "out")
    assert code == 2
    assert "--rank-draws 99 exceeds the draws kept per fit (1 chains x 50 draws)" in err


@pytest.mark.parametrize(
    ("options", "message"),
    [
        (["--n-sims", "0"], "--n-sims must be at least 1"),
        (["--target-accept", "1.5"], "--target-accept must be between 0 and 1"),
        (["--max-rhat", "0.9"], "--max-rhat must be at least 1"),
    ],
)
def test_bad_options(tmp_path, capsys, options, message):
    code, err = _run(capsys, *options, out=tmp_path / "out")
    assert code == 2
    assert message in err


def test_simulation_priors_missing_a_parameter(tmp_path, capsys):
    priors = tmp_path / "priors.toml"
    text = (HERE / "decay_priors.toml").read_text()
    priors.write_text(text[: text.index("[parameters.sigma]")])
    code, err = _run(capsys, "--simulation-priors", str(priors), out=tmp_path / "out")
    assert code == 2
    assert "sigma" in err


def test_missing_workflow_file(tmp_path, capsys):
    code = main(["calibrate", str(tmp_path / "no.toml"), "--n-sims", "2", "--out", "x"])
    assert code == 2
    assert "no.toml" in capsys.readouterr().err


def test_folder_with_replicates_of_other_settings_is_refused(tmp_path):
    base = {"workflow": WORKFLOW, "draws": 100, "tune": 100, "chains": 1, "target_accept": 0.9}
    open_store(tmp_path, CalibrationSettings(seed=1, **base), overwrite=False)
    manifest = json.loads((tmp_path / "replicates" / "manifest.json").read_text())
    assert manifest["inputs"]["settings"]["seed"] == 1
    with pytest.raises(CalibrationInputError, match="differs in: settings.seed"):
        open_store(tmp_path, CalibrationSettings(seed=2, **base), overwrite=False)
    open_store(tmp_path, CalibrationSettings(seed=2, **base), overwrite=True)  # discards


def test_store_resumes_from_another_checkout_but_not_other_contents(tmp_path):
    """The fingerprint holds file contents, not paths: a moved checkout resumes."""
    moved = tmp_path / "elsewhere"
    shutil.copytree(HERE, moved, ignore=shutil.ignore_patterns("__pycache__"))
    base = {"seed": 1, "draws": 100, "tune": 100, "chains": 1, "target_accept": 0.9}
    out = tmp_path / "out"
    open_store(out, CalibrationSettings(workflow=WORKFLOW, **base), overwrite=False)
    moved_workflow = str(moved / "decay.toml")
    open_store(out, CalibrationSettings(workflow=moved_workflow, **base), overwrite=False)
    priors = moved / "decay_priors.toml"
    priors.write_text(priors.read_text() + "\n# edited\n")
    with pytest.raises(CalibrationInputError, match="differs in: inputs.priors"):
        open_store(out, CalibrationSettings(workflow=moved_workflow, **base), overwrite=False)


def test_replicate_seeds_depend_on_seed_and_index_only():
    base = {"workflow": WORKFLOW, "draws": 100, "tune": 100, "chains": 1, "target_accept": 0.9}
    first = CalibrationSettings(seed=1, **base)
    other_draws = CalibrationSettings(seed=1, **{**base, "draws": 300})
    assert first.replicate_seeds(7) == other_draws.replicate_seeds(7)
    assert first.replicate_seeds(7) != first.replicate_seeds(8)
    assert first.replicate_seeds(7) != CalibrationSettings(seed=2, **base).replicate_seeds(7)
