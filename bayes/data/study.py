"""The in-memory study: validated, unit-converted tables of one experiment.

A :class:`Study` is immutable and always canonical: columns in a fixed order with fixed dtypes,
subjects in order of first appearance, rows within a subject sorted by time. Two studies built
from the same data are therefore ``equals`` exactly, which is what the NetCDF round trip tests.

Tables
------
observations
    ``subject, group, time [day], analyte, value, unit, censored, limit, source_row,
    source_file``. ``censored`` means left-censored: the true value is below ``limit`` (same unit
    as ``value``). For censored rows ``value`` keeps what the file held (often the limit itself,
    or NaN if blank); models must use ``limit``. A zero value is a real measurement, not censored.
events
    ``subject, time [day], kind, amount, unit, duration [day], source_row, source_file``;
    ``duration`` NaN means a bolus (or, for rate units such as ug/day, a constant input).
covariates
    ``subject`` plus one column per subject-level covariate (numeric where every value parses).
groups
    ``group, dose, dose_unit``: the group's nominal dose (NaN and ``""`` if none).
excluded
    ``source_file, source_row, subject, reason``: rows deliberately left out, for the report.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np
import pandas as pd

from bayes.data.errors import DataError, DataIssue

OBSERVATION_COLUMNS: dict[str, str] = {
    "subject": "str",
    "group": "str",
    "time": "float64",
    "analyte": "str",
    "value": "float64",
    "unit": "str",
    "censored": "bool",
    "limit": "float64",
    "source_row": "int64",
    "source_file": "str",
}
EVENT_COLUMNS: dict[str, str] = {
    "subject": "str",
    "time": "float64",
    "kind": "str",
    "amount": "float64",
    "unit": "str",
    "duration": "float64",
    "source_row": "int64",
    "source_file": "str",
}
GROUP_COLUMNS: dict[str, str] = {"group": "str", "dose": "float64", "dose_unit": "str"}
EXCLUDED_COLUMNS: dict[str, str] = {
    "source_file": "str",
    "source_row": "int64",
    "subject": "str",
    "reason": "str",
}


def empty_frame(columns: dict[str, str]) -> pd.DataFrame:
    """Return an empty DataFrame with the given columns and dtypes."""
    return pd.DataFrame({name: pd.Series(dtype=dtype) for name, dtype in columns.items()})


def _typed(frame: pd.DataFrame, columns: dict[str, str], what: str) -> pd.DataFrame:
    missing = [name for name in columns if name not in frame.columns]
    if missing:
        raise ValueError(f"{what} table lacks columns {missing}")
    out = frame.loc[:, list(columns)].copy()
    for name, dtype in columns.items():
        if dtype == "str":
            out[name] = out[name].fillna("").astype(str)
        else:
            out[name] = out[name].astype(dtype)
    return out.reset_index(drop=True)


def _covariates_typed(frame: pd.DataFrame) -> pd.DataFrame:
    out = frame.copy()
    out["subject"] = out["subject"].astype(str)
    for name in out.columns.drop("subject"):
        if pd.api.types.is_numeric_dtype(out[name]) and not pd.api.types.is_bool_dtype(out[name]):
            out[name] = out[name].astype("float64")
        else:
            out[name] = out[name].astype(object).fillna("").astype(str)
    return out.reset_index(drop=True)


def _sort_by_subject(frame: pd.DataFrame, rank: dict[str, int], keys: list[str]) -> pd.DataFrame:
    order = frame.assign(_rank=frame["subject"].map(rank).fillna(len(rank)).astype("int64"))
    order = order.sort_values(["_rank", *keys], kind="stable")
    return order.drop(columns="_rank").reset_index(drop=True)


@dataclass(frozen=True, eq=False)
class Study:
    """One experiment's data, validated and in canonical units.

    Build it with a reader (:func:`bayes.data.read_tidy`, :func:`bayes.data.read_nonmem`,
    :func:`bayes.data.read_mapped`) rather than by hand; the constructor only fixes column order,
    dtypes and row order (see module docstring for the tables).
    """

    observations: pd.DataFrame
    events: pd.DataFrame = field(default_factory=lambda: empty_frame(EVENT_COLUMNS))
    covariates: pd.DataFrame | None = None
    groups: pd.DataFrame | None = None
    excluded: pd.DataFrame = field(default_factory=lambda: empty_frame(EXCLUDED_COLUMNS))
    source: str = ""
    name: str = "study"

    def __post_init__(self) -> None:
        """Bring every table into canonical column order, dtypes and row order."""
        obs = _typed(self.observations, OBSERVATION_COLUMNS, "observations")
        subjects = list(dict.fromkeys(obs["subject"]))
        rank = {s: i for i, s in enumerate(subjects)}
        obs = _sort_by_subject(obs, rank, ["time", "analyte"])
        events = _typed(self.events, EVENT_COLUMNS, "events")
        events = _sort_by_subject(events, rank, ["time", "kind"])
        covariates = self.covariates
        if covariates is None:
            covariates = pd.DataFrame({"subject": subjects})
        covariates = _sort_by_subject(_covariates_typed(covariates), rank, [])
        groups = self.groups if self.groups is not None else empty_frame(GROUP_COLUMNS)
        groups = _typed(groups, GROUP_COLUMNS, "groups")
        group_rank = {g: i for i, g in enumerate(dict.fromkeys(obs["group"]))}
        groups = groups.assign(_r=groups["group"].map(group_rank)).sort_values("_r", kind="stable")
        groups = groups.drop(columns="_r").reset_index(drop=True)
        excluded = _typed(self.excluded, EXCLUDED_COLUMNS, "excluded")
        for name, value in [
            ("observations", obs),
            ("events", events),
            ("covariates", covariates),
            ("groups", groups),
            ("excluded", excluded),
        ]:
            object.__setattr__(self, name, value)

    @property
    def subjects(self) -> list[str]:
        """Subject ids in order of first appearance."""
        return list(dict.fromkeys(self.observations["subject"]))

    @property
    def units(self) -> dict[str, str]:
        """Canonical unit of each analyte."""
        first = self.observations.drop_duplicates("analyte")
        return dict(zip(first["analyte"], first["unit"], strict=True))

    def summary(self) -> dict[str, int]:
        """Return counts: subjects, groups, observations, events, censored, excluded."""
        obs = self.observations
        return {
            "subjects": obs["subject"].nunique(),
            "groups": obs["group"].nunique(),
            "observations": len(obs),
            "events": len(self.events),
            "censored": int(obs["censored"].sum()),
            "excluded": len(self.excluded),
        }

    def summary_line(self) -> str:
        """Return the counts as one line of text."""
        counts = ", ".join(f"{v} {k}" for k, v in self.summary().items())
        return f"{self.name}: {counts}"

    def equals(self, other: object) -> bool:
        """Return True if every table (values and dtypes), the name and source are equal."""
        if not isinstance(other, Study):
            return False
        tables = ["observations", "events", "covariates", "groups", "excluded"]
        same_tables = all(_frames_equal(getattr(self, t), getattr(other, t)) for t in tables)
        return same_tables and self.source == other.source and self.name == other.name


def _frames_equal(a: pd.DataFrame, b: pd.DataFrame) -> bool:
    if list(a.columns) != list(b.columns) or list(a.dtypes) != list(b.dtypes):
        return False
    return a.equals(b)


def prefix_subjects(study: Study, prefix: str) -> Study:
    """Return ``study`` with every subject id written as ``<prefix>:<id>``."""

    def renamed(frame: pd.DataFrame) -> pd.DataFrame:
        return frame.assign(subject=[f"{prefix}:{s}" if s else s for s in frame["subject"]])

    return Study(
        observations=renamed(study.observations),
        events=renamed(study.events),
        covariates=renamed(study.covariates),
        groups=study.groups,
        excluded=renamed(study.excluded),
        source=study.source,
        name=study.name,
    )


def combine_studies(
    studies: Sequence[Study], name: str | None = None, prefix: bool = False
) -> Study:
    """Combine studies into one; subject ids must not collide across them.

    With ``prefix=True`` each subject id becomes ``<study name>:<id>`` first, so ids from
    different studies cannot collide.

    Raises
    ------
    DataError
        If a subject id or a group name (with a different dose) occurs in more than one study.

    """
    if prefix:
        studies = [prefix_subjects(s, s.name) for s in studies]
    if len(studies) == 1:
        return studies[0]
    issues = []
    seen: dict[str, str] = {}
    for study in studies:
        for subject in study.subjects:
            if subject in seen:
                message = f"subject id {subject!r} occurs in study {seen[subject]!r} too"
                issues.append(DataIssue(study.name, None, "subject", message))
            seen.setdefault(subject, study.name)
    groups = pd.concat([s.groups for s in studies], ignore_index=True).drop_duplicates()
    clash = groups.duplicated("group", keep=False)
    for group in groups.loc[clash, "group"].unique():
        message = f"group {group!r} has different nominal doses in the combined studies"
        issues.append(DataIssue("(combined)", None, "group", message))
    if issues:
        raise DataError(issues[:50], max(0, len(issues) - 50))
    return Study(
        observations=pd.concat([s.observations for s in studies], ignore_index=True),
        events=pd.concat([s.events for s in studies], ignore_index=True),
        covariates=pd.concat([s.covariates for s in studies], ignore_index=True),
        groups=groups.reset_index(drop=True),
        excluded=pd.concat([s.excluded for s in studies], ignore_index=True),
        source="; ".join(s.source for s in studies),
        name=name or "+".join(s.name for s in studies),
    )


def nan_to_none(value: float) -> float | None:
    """Return None for NaN (for JSON), the float otherwise."""
    return None if np.isnan(value) else float(value)
