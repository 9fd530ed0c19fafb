import subprocess
import sys
from pathlib import Path

import pytest

from bayes import __version__
from bayes.cli import main

REPO = Path(__file__).resolve().parents[1]
EXAMPLES = REPO / "datasets" / "examples"
MAPPINGS = REPO / "datasets" / "mappings"
OBS = str(EXAMPLES / "example_observations.csv")
EVENTS = str(EXAMPLES / "example_events.csv")
BAD = (
    "subject,group,time,analyte,value,unit\n"
    "m1,a,0,tumour_volume,abc,mm^3\n"
    "m1,a,-1,tumour_volume,5,parsec\n"
)


def run(capsys, *argv):
    code = main(list(argv))
    out, err = capsys.readouterr()
    return code, out, err


def test_validate_example_prints_one_line_summary(capsys):
    code, out, err = run(capsys, "data", "validate", OBS, "--events", EVENTS)
    assert code == 0 and err == ""
    assert out.strip() == (
        "valid: example_observations: 12 subjects, 3 groups, 180 observations, 12 events, "
        "22 censored, 0 excluded"
    )


def test_validate_detects_nonmem_and_uses_sibling_mapping(capsys):
    code, out, _ = run(capsys, "data", "validate", str(EXAMPLES / "example_nonmem.csv"))
    assert code == 0 and "12 subjects" in out and "12 events" in out


def test_validate_bad_file_lists_every_problem(capsys, tmp_path):
    path = tmp_path / "bad.csv"
    path.write_text(BAD)
    code, out, err = run(capsys, "data", "validate", str(path))
    assert code == 2 and out == ""
    lines = err.strip().splitlines()
    assert lines[0] == f"{path}:2:value: not a number: 'abc'"
    assert lines[1] == f"{path}:3:time: negative time -1"
    assert lines[2] == f"{path}:3:unit: unit 'parsec' ([length]) has no canonical unit here"
    assert lines[-1] == "error: 3 problems in the input data"
    assert "Traceback" not in err


def test_validate_bad_file_subprocess_has_no_traceback(tmp_path):
    path = tmp_path / "bad.csv"
    path.write_text("subject,group\n1,2,3\n")
    result = subprocess.run(
        [sys.executable, "-m", "bayes", "data", "validate", str(path)],
        capture_output=True,
        text=True,
        check=False,
    )
    assert result.returncode == 2
    assert "Traceback" not in result.stderr
    assert f"{path}:2:-: row has 3 fields but the header has 2" in result.stderr


@pytest.mark.parametrize(
    "argv",
    [
        ["data", "validate", "does/not/exist.csv"],
        ["data", "validate", OBS, "--format", "nonmem"],
        ["data", "validate", str(MAPPINGS / "eigenmann2016.toml"), "--data-root", "/nonexistent"],
        ["data", "validate", OBS, OBS],  # subject ids collide across studies
        ["data", "validate", OBS, OBS, "--events", EVENTS],  # --events needs one PATH
        ["data", "validate", "--format", "xml", OBS],  # usage error
        ["data"],
        [],
    ],
)
def test_bad_input_and_usage_exit_2_without_traceback(capsys, argv):
    code, _, err = run(capsys, *argv)
    assert code == 2
    assert "Traceback" not in err and err.strip()


def test_empty_and_directory_inputs(capsys, tmp_path):
    empty = tmp_path / "empty.csv"
    empty.write_text("")
    code, _, err = run(capsys, "data", "validate", str(empty))
    assert code == 2 and f"{empty}:-:-: empty file (no header row)" in err
    code, _, err = run(capsys, "data", "validate", str(tmp_path), "--format", "tidy")
    assert code == 2 and "is a directory" in err


def test_several_paths_collide_or_are_prefixed(capsys):
    nonmem = str(EXAMPLES / "example_nonmem.csv")
    code, _, err = run(capsys, "data", "validate", OBS, nonmem)
    assert code == 2 and "example_nonmem:-:subject: subject id '1' occurs in study" in err
    code, out, _ = run(capsys, "data", "validate", OBS, nonmem, "--prefix-subjects")
    assert code == 0 and "24 subjects, 3 groups" in out


def test_summarize_writes_tables_and_figures(capsys, tmp_path):
    out_dir = tmp_path / "summary"
    code, out, _ = run(capsys, "data", "summarize", OBS, "--events", EVENTS, "--out", str(out_dir))
    assert code == 0
    for name in [
        "summary.md",
        "subjects_per_group.csv",
        "analytes.csv",
        "censored.csv",
        "excluded.csv",
        "trajectories.png",
        "trajectories_il2_serum.png",
    ]:
        assert (out_dir / name).is_file(), name
        assert f"wrote {out_dir / name}" in out
    assert (out_dir / "trajectories.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    groups = (out_dir / "subjects_per_group.csv").read_text().splitlines()
    assert groups[0] == "group,dose,dose_unit,subjects"
    assert groups[1] == "empty_capsules,0.0,ug/day,4"
    analytes = (out_dir / "analytes.csv").read_text()
    assert "il2_serum,ng/mL,36,12,14" in analytes


def test_version_and_help(capsys):
    code, out, _ = run(capsys, "--version")
    assert code == 0 and out.strip() == f"cytofactory {__version__}"
    code, out, _ = run(capsys, "--help")
    assert code == 0 and "data" in out
    code, out, _ = run(capsys, "data", "validate", "--help")
    assert code == 0 and "--data-root" in out


def test_internal_error_exit_1_and_debug(capsys, monkeypatch):
    import bayes.cli

    def boom(*args, **kwargs):
        raise RuntimeError("kaput")

    monkeypatch.setattr(bayes.cli, "load_study", boom)
    code, _, err = run(capsys, "data", "validate", OBS)
    assert code == 1
    assert "internal error: RuntimeError: kaput" in err and "--debug" in err
    assert "Traceback" not in err
    code, _, err = run(capsys, "--debug", "data", "validate", OBS)
    assert code == 1 and "Traceback" in err


def test_interrupt_exit_130_without_traceback(capsys, monkeypatch):
    import bayes.cli

    def interrupted(*args, **kwargs):
        raise KeyboardInterrupt

    monkeypatch.setattr(bayes.cli, "load_study", interrupted)
    code, _, err = run(capsys, "data", "validate", OBS)
    assert code == 130
    assert err.strip() == "interrupted" and "Traceback" not in err
