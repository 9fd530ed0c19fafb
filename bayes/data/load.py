"""Read any supported input, choosing the reader from the file (used by the command line).

Detection when ``format`` is not given: ``.toml`` -> mapped; ``.nc`` -> a saved study NetCDF;
a CSV whose header has ``ID``, ``TIME`` and ``DV`` -> NONMEM-style; any other CSV -> tidy.
A NONMEM file without an explicit mapping uses ``<same name>.toml`` next to it if present.
"""

from __future__ import annotations

import csv
from pathlib import Path
from typing import Literal

from bayes.data.dataset import from_dataset, load_netcdf
from bayes.data.errors import DataError, DataIssue
from bayes.data.mapped import read_mapped
from bayes.data.nonmem import read_nonmem
from bayes.data.study import Study
from bayes.data.tidy import read_tidy

Format = Literal["tidy", "nonmem", "mapped", "netcdf"]
FORMATS: tuple[str, ...] = ("tidy", "nonmem", "mapped", "netcdf")


def _header(path: Path) -> list[str]:
    try:
        with open(path, encoding="utf-8-sig", newline="") as handle:
            for line in handle:
                if line.strip() and not line.lstrip().startswith("#"):
                    return [c.strip() for c in next(csv.reader([line]))]
    except (OSError, UnicodeDecodeError, csv.Error):
        return []
    return []


def detect_format(path: str | Path) -> Format:
    """Guess the format of ``path`` from its extension and header (see module docstring)."""
    path = Path(path)
    suffix = path.suffix.lower()
    if suffix == ".toml":
        return "mapped"
    if suffix in {".nc", ".netcdf", ".nc4"}:
        return "netcdf"
    header = set(_header(path))
    return "nonmem" if {"ID", "TIME", "DV"} <= header else "tidy"


def load_study(
    path: str | Path,
    format: Format | None = None,
    *,
    mapping: str | Path | None = None,
    events: str | Path | None = None,
    data_root: str | Path | None = None,
) -> Study:
    """Read one study from ``path`` with the reader for ``format`` (auto-detected if None).

    Parameters
    ----------
    path : str or Path
        Data file, or a mapping TOML for the mapped format.
    format : {"tidy", "nonmem", "mapped", "netcdf"}, optional
        Reader to use.
    mapping : str or Path, optional
        NONMEM compartment mapping TOML (nonmem), or the mapping TOML (mapped, if ``path`` is
        not it).
    events : str or Path, optional
        Events CSV (tidy only).
    data_root : str or Path, optional
        Data folder overriding the mapping's ``root`` (mapped only).

    Returns
    -------
    Study

    Raises
    ------
    DataError
        For any problem with the input, including a missing file.

    """
    path = Path(path)
    if not path.exists():
        raise DataError([DataIssue(str(path), None, None, "file not found")])
    fmt = format or detect_format(path)
    if fmt == "mapped":
        return read_mapped(mapping or path, data_root=data_root)
    if fmt == "nonmem":
        sibling = path.with_suffix(".toml")
        mapping = mapping or (sibling if sibling.exists() else None)
        return read_nonmem(path, mapping=mapping)
    if fmt == "netcdf":
        return _load_netcdf(path)
    return read_tidy(path, events)


def _load_netcdf(path: Path) -> Study:
    try:
        return from_dataset(load_netcdf(path))
    except (OSError, ValueError, KeyError) as exc:
        raise DataError([DataIssue(str(path), None, None, f"not a study NetCDF: {exc}")]) from exc
