"""Published cytokine-factory results as data (``datasets/published_results.csv``).

Every row names its source and an evidence grade: ``primary_abstract`` (the paper's abstract) or
``secondary_report`` (a news or blog account of the paper: weaker evidence). Later layers calibrate
synthetic cohorts and check predictions against this table.
"""

from __future__ import annotations

from pathlib import Path

import pandas as pd

PUBLISHED_RESULTS_PATH = Path(__file__).resolve().parents[2] / "datasets" / "published_results.csv"
EVIDENCE_GRADES = ("primary_abstract", "secondary_report")
RELATIONS = ("approx", "greater_than", "count")
_REQUIRED = ("id", "quantity", "relation", "value", "unit", "source", "evidence")


def load_published_results(path: Path | str = PUBLISHED_RESULTS_PATH) -> pd.DataFrame:
    """Load and check the table of published results.

    Parameters
    ----------
    path
        CSV file; defaults to the table shipped in ``datasets/``.

    Returns
    -------
    pandas.DataFrame
        One row per published figure, indexed by ``id``.

    Raises
    ------
    ValueError
        If a required column is missing, a value is not numeric, an id repeats, or an evidence
        grade or relation is unknown; the message names the file, row and column.
    """
    path = Path(path)
    table = pd.read_csv(path, dtype={"dose_group": "string"})
    missing = [column for column in _REQUIRED if column not in table.columns]
    if missing:
        raise ValueError(f"{path}: missing column(s) {', '.join(missing)}")
    problems = []
    numeric = pd.to_numeric(table["value"], errors="coerce")
    for index, row in table.iterrows():
        line = index + 2  # header is line 1
        if row["evidence"] not in EVIDENCE_GRADES:
            problems.append(f"{path}:{line}:evidence: unknown grade {row['evidence']!r}")
        if row["relation"] not in RELATIONS:
            problems.append(f"{path}:{line}:relation: unknown relation {row['relation']!r}")
        if pd.isna(numeric[index]):
            problems.append(f"{path}:{line}:value: not a number: {row['value']!r}")
        if pd.isna(row["source"]) or not str(row["source"]).strip():
            problems.append(f"{path}:{line}:source: every published figure needs its source")
    duplicated = table["id"][table["id"].duplicated()].tolist()
    if duplicated:
        problems.append(f"{path}:id: repeated id(s) {', '.join(duplicated)}")
    if problems:
        raise ValueError("\n".join(problems))
    return table.assign(value=numeric).set_index("id")
