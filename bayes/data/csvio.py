"""Read a CSV file into strings, keeping the line number of every row.

Parsing numbers, units and flags is left to the readers so that every problem can be reported
with its file, line and column. Leading lines starting with ``#`` are comments (used, e.g., to
label a synthetic data set); completely blank lines are skipped. The delimiter is a comma, a tab
or a semicolon, whichever splits the header line into the most fields.
"""

from __future__ import annotations

import csv
from dataclasses import dataclass
from pathlib import Path

import pandas as pd

from bayes.data.errors import IssueCollector

MISSING_TOKENS = frozenset({"", "NA", "NaN", "nan", "N/A", "n/a", ".", "NULL", "null"})
"""Cell contents read as missing (``.`` is NONMEM's missing value)."""


@dataclass(frozen=True)
class RawTable:
    """A CSV file as strings.

    Attributes
    ----------
    frame : pandas.DataFrame
        All cells as stripped strings (missing cells are ``""``), original column names.
    lines : pandas.Series
        Physical line number of each row (header = line 1 unless comments precede it).
    label : str
        File name used in error messages.
    header_line : int
        Line number of the header row.

    """

    frame: pd.DataFrame
    lines: pd.Series
    label: str
    header_line: int = 1


def _delimiter(header: str) -> str:
    return max([",", "\t", ";"], key=header.count)


def _read_text(path: Path, label: str, issues: IssueCollector) -> str | None:
    if not path.exists():
        issues.add(label, None, None, "file not found")
        return None
    if path.is_dir():
        issues.add(label, None, None, "is a directory, expected a CSV file")
        return None
    try:
        return path.read_text(encoding="utf-8-sig")
    except UnicodeDecodeError as exc:
        issues.add(label, None, None, f"not UTF-8 text ({exc.reason} at byte {exc.start})")
    except OSError as exc:
        issues.add(label, None, None, f"cannot read file: {exc.strerror or exc}")
    return None


def _records(text: str) -> tuple[list[list[str]], list[int], int]:
    """Split text into rows; return rows, their line numbers and the header line."""
    lines = text.splitlines(keepends=True)
    n_comment = 0
    while n_comment < len(lines) and lines[n_comment].lstrip().startswith("#"):
        n_comment += 1
    body = lines[n_comment:]
    header_line = body[0] if body else ""
    reader = csv.reader(body, delimiter=_delimiter(header_line))
    rows, numbers = [], []
    start = 1
    for row in reader:
        if any(cell.strip() for cell in row):
            rows.append([cell.strip() for cell in row])
            numbers.append(start + n_comment)
        start = reader.line_num + 1
    return rows, numbers, n_comment + 1


def read_csv_strings(path: str | Path, issues: IssueCollector, label: str | None = None):
    """Read ``path`` as strings; record problems in ``issues`` and return None if unreadable.

    Parameters
    ----------
    path : str or Path
        CSV file.
    issues : IssueCollector
        Receives file-level problems (not found, empty, ragged rows, bad header).
    label : str, optional
        Name used in messages (default: ``str(path)``).

    Returns
    -------
    RawTable or None

    """
    label = label or str(path)
    text = _read_text(Path(path), label, issues)
    if text is None:
        return None
    try:
        rows, numbers, _ = _records(text)
    except csv.Error as exc:
        issues.add(label, None, None, f"unreadable CSV: {exc}")
        return None
    if not rows:
        issues.add(label, None, None, "empty file (no header row)")
        return None
    header, body, body_lines = rows[0], rows[1:], numbers[1:]
    n_before = len(issues.issues) + issues.n_more
    _check_header(header, numbers[0], label, issues)
    for row, line in zip(body, body_lines, strict=True):
        if len(row) != len(header):
            issues.add(
                label, line, None, f"row has {len(row)} fields but the header has {len(header)}"
            )
    if not body:
        issues.add(label, None, None, "no data rows (only a header)")
    if len(issues.issues) + issues.n_more > n_before:
        return None
    frame = pd.DataFrame(body, columns=header, dtype=str)
    lines = pd.Series(body_lines, dtype="int64")
    return RawTable(frame=frame, lines=lines, label=label, header_line=numbers[0])


def _check_header(header: list[str], line: int, label: str, issues: IssueCollector) -> None:
    seen: set[str] = set()
    for position, name in enumerate(header, start=1):
        if not name:
            issues.add(label, line, None, f"column {position} has an empty name")
        elif name in seen:
            issues.add(label, line, name, "duplicate column name")
        seen.add(name)


def is_missing(values: pd.Series) -> pd.Series:
    """Return a boolean mask of cells that count as missing (see :data:`MISSING_TOKENS`)."""
    return values.isin(MISSING_TOKENS)


def check_columns(
    table: RawTable, required: list[str], issues: IssueCollector, allowed: list[str] | None = None
) -> bool:
    """Flag missing required columns (and, if ``allowed`` is given, unknown ones).

    Returns
    -------
    bool
        True if all required columns are present.

    """
    present = list(table.frame.columns)
    for name in required:
        if name not in present:
            issues.add(table.label, table.header_line, name, "missing required column")
    if allowed is not None:
        for name in present:
            if name not in allowed:
                message = f"unknown column (allowed: {', '.join(allowed)})"
                issues.add(table.label, table.header_line, name, message)
    return all(name in present for name in required)
