"""Validation problems and the exception that carries them.

Every reader collects *all* problems it finds (up to :data:`MAX_ISSUES`) before raising one
:class:`DataError`, so a user can fix a file in one pass. Each problem is a :class:`DataIssue`
naming the file, the row and the column.

Row numbers are physical line numbers as an editor shows them: the header is line 1 and the
first data row is line 2 (leading ``#`` comment lines shift both down by their count). A row
of ``None`` means the problem concerns the whole file (shown as ``-``).
"""

from __future__ import annotations

from dataclasses import dataclass, field

MAX_ISSUES = 50


@dataclass(frozen=True)
class DataIssue:
    """One problem found in an input file.

    Parameters
    ----------
    file : str
        File the problem is in (as the user named it).
    row : int or None
        Line number in the file (header = 1, first data row = 2); ``None`` for the whole file.
    column : str or None
        Column name as written in the file; ``None`` when no single column is at fault.
    message : str
        What is wrong, in words a user can act on.

    """

    file: str
    row: int | None
    column: str | None
    message: str

    def __str__(self) -> str:
        """Format as ``file:row:column: message`` (``-`` for a missing row or column)."""
        row = "-" if self.row is None else str(self.row)
        column = self.column or "-"
        return f"{self.file}:{row}:{column}: {self.message}"


class DataError(ValueError):
    """Input data are invalid; ``issues`` lists every problem found (up to a cap).

    Parameters
    ----------
    issues : list of DataIssue
        The problems, in the order they were found.
    n_more : int, optional
        How many further problems were found but not kept.

    """

    def __init__(self, issues: list[DataIssue], n_more: int = 0) -> None:
        self.issues = list(issues)
        self.n_more = n_more
        super().__init__(self.format())

    def lines(self) -> list[str]:
        """Return one line per problem, plus ``... and N more`` when the cap was hit."""
        out = [str(issue) for issue in self.issues]
        if self.n_more:
            out.append(f"... and {self.n_more} more")
        return out

    def format(self) -> str:
        """Return all problems as one multi-line string."""
        n = len(self.issues) + self.n_more
        head = f"{n} problem{'s' if n != 1 else ''} in the input data:"
        return "\n".join([head, *self.lines()])


@dataclass
class IssueCollector:
    """Accumulate :class:`DataIssue` objects and raise them together.

    Parameters
    ----------
    cap : int
        Keep at most this many issues; count the rest.

    """

    cap: int = MAX_ISSUES
    issues: list[DataIssue] = field(default_factory=list)
    n_more: int = 0

    def add(self, file: str, row: int | None, column: str | None, message: str) -> None:
        """Record one problem."""
        if len(self.issues) < self.cap:
            self.issues.append(DataIssue(file, row, column, message))
        else:
            self.n_more += 1

    def extend(self, other: IssueCollector) -> None:
        """Append the problems of another collector."""
        for issue in other.issues:
            self.add(issue.file, issue.row, issue.column, issue.message)
        self.n_more += other.n_more

    def __bool__(self) -> bool:
        """Return True when at least one problem was recorded."""
        return bool(self.issues) or self.n_more > 0

    def raise_if_any(self) -> None:
        """Raise :class:`DataError` if any problem was recorded (sorted by file, then row)."""
        if self:
            files = {name: i for i, name in enumerate(dict.fromkeys(x.file for x in self.issues))}
            ordered = sorted(self.issues, key=lambda x: (files[x.file], x.row or 0))
            raise DataError(ordered, self.n_more)
