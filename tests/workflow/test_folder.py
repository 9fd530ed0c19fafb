"""Run folders appear only when complete; an existing one is replaced only when asked."""

import os

import pytest

from bayes.workflow.folder import (
    INCOMPLETE_SUFFIX,
    RunFolder,
    RunFolderExistsError,
    atomic_write_text,
)


def test_folder_appears_only_on_commit(tmp_path):
    final = tmp_path / "runs" / "a"
    folder = RunFolder(final)
    staging = folder.open()
    atomic_write_text(folder.path("summary.csv"), "x\n1\n")
    assert not final.exists() and staging.name == "a" + INCOMPLETE_SUFFIX
    assert folder.commit() == final
    assert (final / "summary.csv").read_text() == "x\n1\n"
    assert not staging.exists()


def test_existing_run_is_refused_before_any_work(tmp_path):
    final = tmp_path / "a"
    final.mkdir()
    (final / "results.nc").write_text("old")
    with pytest.raises(RunFolderExistsError, match="--overwrite"):
        RunFolder(final)
    assert (final / "results.nc").read_text() == "old"


def test_overwrite_replaces_the_old_run_whole(tmp_path):
    final = tmp_path / "a"
    final.mkdir()
    (final / "stale.png").write_text("old")
    folder = RunFolder(final, overwrite=True)
    folder.open()
    atomic_write_text(folder.path("results.nc"), "new")
    assert (final / "stale.png").exists()  # the old run stays until the new one is complete
    folder.commit()
    assert sorted(os.listdir(final)) == ["results.nc"]
    assert not list(tmp_path.glob("*.replaced"))


def test_interrupted_run_leaves_only_an_incomplete_folder(tmp_path):
    final = tmp_path / "a"
    folder = RunFolder(final)
    folder.open()
    atomic_write_text(folder.path("log.txt"), "started")
    # ... KeyboardInterrupt here: commit never happens
    assert not final.exists()
    assert (tmp_path / ("a" + INCOMPLETE_SUFFIX) / "log.txt").exists()
    again = RunFolder(final)  # a new run clears the stale staging folder
    again.open()
    assert not (again.staging / "log.txt").exists()


def test_atomic_write_leaves_no_temporary_file(tmp_path):
    path = atomic_write_text(tmp_path / "x.json", "{}")
    assert path.read_text() == "{}"
    assert [p.name for p in tmp_path.iterdir()] == ["x.json"]
