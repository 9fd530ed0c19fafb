"""The run folder: built in a staging folder and moved into place only when complete.

A run writes everything to ``<out>.incomplete/`` (each file itself written to a temporary name
and renamed, so no file is ever half-written under its final name). Only when every output is
written is the staging folder renamed to ``<out>``: a folder named ``<out>`` is therefore always a
complete run. An interrupted run (Ctrl-C, a crash) leaves ``<out>.incomplete/`` with its log for
inspection; the next run of the same output replaces it. An existing ``<out>`` is replaced only
with ``overwrite=True``.
"""

from __future__ import annotations

import os
import shutil
from pathlib import Path

INCOMPLETE_SUFFIX = ".incomplete"


class RunFolderExistsError(FileExistsError):
    """The output folder exists and overwriting was not asked for."""


def atomic_write_bytes(path: Path, data: bytes) -> Path:
    """Write ``data`` to ``path`` through a temporary file and an atomic rename."""
    tmp = path.with_name(f".{path.name}.tmp")
    with open(tmp, "wb") as handle:
        handle.write(data)
        handle.flush()
        os.fsync(handle.fileno())
    os.replace(tmp, path)
    return path


def atomic_write_text(path: Path, text: str) -> Path:
    """Write ``text`` (UTF-8) to ``path`` atomically."""
    return atomic_write_bytes(path, text.encode("utf-8"))


class RunFolder:
    """A run folder under construction.

    Parameters
    ----------
    final : Path
        Where the finished run goes.
    overwrite : bool
        Replace an existing finished run at ``final``.

    Raises
    ------
    RunFolderExistsError
        If ``final`` exists and ``overwrite`` is false (checked before any work starts).
    """

    def __init__(self, final: Path, overwrite: bool = False) -> None:
        self.final = Path(final)
        self.overwrite = overwrite
        if self.final.exists() and not overwrite:
            raise RunFolderExistsError(
                f"{self.final} exists; choose another --out or pass --overwrite to replace it"
            )
        self.staging = self.final.with_name(self.final.name + INCOMPLETE_SUFFIX)

    def open(self) -> Path:
        """Create a fresh staging folder (removing a stale one) and return it."""
        if self.staging.exists():
            shutil.rmtree(self.staging)
        self.staging.mkdir(parents=True)
        return self.staging

    def path(self, name: str) -> Path:
        """Return the staging path of an output file (sub-folders are created)."""
        target = self.staging / name
        target.parent.mkdir(parents=True, exist_ok=True)
        return target

    def commit(self) -> Path:
        """Move the complete staging folder to its final place and return it."""
        if self.final.exists():
            if not self.overwrite:
                raise RunFolderExistsError(f"{self.final} appeared while running; not replacing it")
            old = self.final.with_name(self.final.name + ".replaced")
            if old.exists():
                shutil.rmtree(old)
            os.replace(self.final, old)
            os.replace(self.staging, self.final)
            shutil.rmtree(old)
        else:
            os.replace(self.staging, self.final)
        return self.final
