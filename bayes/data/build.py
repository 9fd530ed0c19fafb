"""Shared validation pipeline: string tables from any reader -> a :class:`Study`.

Readers rename their columns to canonical *fields* and hand over a :class:`RawPart` per file
(all cells strings, plus the line number of each row). Here every field is parsed, converted to
canonical units and checked; every problem becomes a :class:`~bayes.data.errors.DataIssue`
naming the file, line and the column as the user wrote it.

Observation fields: ``subject, group, time, time_unit, analyte, value, unit, censored, limit``
and optionally ``group_dose, group_dose_unit``; event fields: ``subject, time, time_unit, kind,
amount, unit, duration``.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Literal

import numpy as np
import pandas as pd

from bayes.data import units
from bayes.data.csvio import MISSING_TOKENS
from bayes.data.errors import IssueCollector
from bayes.data.study import EVENT_COLUMNS, EXCLUDED_COLUMNS, Study, empty_frame

MissingValue = Literal["exclude", "error"]
_TRUE = {"1", "true", "yes", "y", "t"}
_FALSE = {"0", "false", "no", "n", "f", ""}


@dataclass
class RawPart:
    """One input file's rows with canonical field names (all cells strings).

    Attributes
    ----------
    frame : pandas.DataFrame
        Canonical fields as columns, plus covariate columns under their own names.
    lines : pandas.Series
        Line number of each row in the file.
    file : str
        File name for messages.
    columns : dict
        Field -> column name as the user wrote it (for messages).
    covariates : list of str
        Covariate columns in ``frame``.

    """

    frame: pd.DataFrame
    lines: pd.Series
    file: str
    columns: dict[str, str]
    covariates: list[str] = field(default_factory=list)

    def col(self, name: str) -> str:
        """Return the user's name of field ``name``."""
        return self.columns.get(name, name)

    def flag(self, issues: IssueCollector, mask: pd.Series, name: str, message) -> None:
        """Record an issue for every row in ``mask``; ``message`` may be a row -> str function."""
        for position in np.flatnonzero(mask.to_numpy()):
            text = message(position) if callable(message) else message
            issues.add(self.file, int(self.lines.iloc[position]), self.col(name), text)


def missing(values: pd.Series) -> pd.Series:
    """Return the mask of missing cells."""
    return values.isin(MISSING_TOKENS)


def parse_number(part: RawPart, name: str, issues: IssueCollector) -> pd.Series:
    """Parse field ``name`` as floats (NaN where missing); flag unparseable cells."""
    raw = part.frame[name]
    numbers = pd.to_numeric(raw.where(~missing(raw)), errors="coerce").astype("float64")
    bad = numbers.isna() & ~missing(raw)
    part.flag(issues, bad, name, lambda i: f"not a number: {raw.iloc[i]!r}")
    return numbers


def parse_flag(part: RawPart, name: str, issues: IssueCollector) -> pd.Series:
    """Parse a 0/1 or true/false field (missing = False)."""
    raw = part.frame[name].str.lower()
    bad = ~raw.isin(_TRUE | _FALSE)
    part.flag(issues, bad, name, lambda i: f"expected 0/1 or true/false, got {raw.iloc[i]!r}")
    return raw.isin(_TRUE)


def _factors(
    part: RawPart,
    keys: pd.DataFrame,
    name: str,
    lookup: Callable[..., float | units.Conversion],
    issues: IssueCollector,
) -> pd.Series:
    """Evaluate ``lookup`` once per distinct key row; flag rows whose key fails."""
    results: dict[tuple, object] = {}
    for key in keys.drop_duplicates().itertuples(index=False, name=None):
        try:
            results[key] = lookup(*key)
        except units.UnitError as exc:
            results[key] = exc
    found = pd.Series([results[k] for k in keys.itertuples(index=False, name=None)], dtype=object)
    failed = found.map(lambda r: isinstance(r, units.UnitError))
    part.flag(issues, failed, name, lambda i: str(found.iloc[i]))
    return found.where(~failed, None)


def time_in_days(part: RawPart, issues: IssueCollector) -> pd.Series:
    """Parse ``time`` and ``time_unit``; return days. Flags missing, negative and non-finite."""
    time = parse_number(part, "time", issues)
    part.flag(issues, missing(part.frame["time"]), "time", "missing time")
    part.flag(issues, time < 0, "time", lambda i: f"negative time {time.iloc[i]:g}")
    part.flag(issues, np.isinf(time), "time", "time is not finite")
    factor = _factors(part, part.frame[["time_unit"]], "time_unit", units.time_factor, issues)
    return scale(time, factor.astype("float64"))


def round_significant(values: np.ndarray, digits: int = 12) -> np.ndarray:
    """Round to ``digits`` significant digits (removes float noise such as 0.5000000000000004)."""
    x = np.asarray(values, dtype="float64")
    with np.errstate(divide="ignore", invalid="ignore"):
        magnitude = np.floor(np.log10(np.abs(x)))
    magnitude = np.where(np.isfinite(magnitude), magnitude, 0.0)
    factor = 10.0 ** (digits - 1 - magnitude)
    with np.errstate(invalid="ignore", over="ignore"):
        rounded = np.round(x * factor) / factor
    return np.where(np.isfinite(rounded), rounded, x)


def scale(values: pd.Series, factor: pd.Series) -> pd.Series:
    """Multiply by a unit factor; where the factor is not 1, round away the float noise."""
    product = values.to_numpy(dtype="float64") * factor.to_numpy(dtype="float64")
    exact = factor.to_numpy() == 1.0
    out = np.where(exact, product, round_significant(product))
    return pd.Series(out, index=values.index, dtype="float64")


def _required_text(part: RawPart, names: Iterable[str], issues: IssueCollector) -> None:
    for name in names:
        part.flag(issues, missing(part.frame[name]), name, f"missing {name}")


def parse_observations(
    part: RawPart,
    issues: IssueCollector,
    il2_names: Iterable[str] = (),
    missing_value: MissingValue = "exclude",
) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Parse and convert one file's observations.

    Returns
    -------
    observations : DataFrame
        Parsed rows (rows excluded by rule removed), with covariate columns kept as strings.
    excluded : DataFrame
        Rows left out with the reason (empty value and not censored).

    """
    f = part.frame
    _required_text(part, ["subject", "group", "analyte"], issues)
    time = time_in_days(part, issues)
    censored = parse_flag(part, "censored", issues)
    value = parse_number(part, "value", issues)
    limit = parse_number(part, "limit", issues)
    no_value = missing(f["value"]) & ~censored
    if missing_value == "error":
        part.flag(issues, no_value, "value", "missing value")
    keys = f[["unit", "analyte"]]
    conv = _factors(
        part, keys, "unit", lambda u, a: units.observation_conversion(u, a, il2_names), issues
    )
    factor = conv.map(lambda c: c.factor if c is not None else np.nan).astype("float64")
    unit = conv.map(lambda c: c.unit if c is not None else "")
    _check_values(part, value, limit, censored, unit, issues)
    value, limit = scale(value, factor), scale(limit, factor)
    obs = pd.DataFrame(
        {
            "subject": f["subject"],
            "group": f["group"],
            "time": time,
            "analyte": f["analyte"],
            "value": value,
            "unit": unit,
            "censored": censored,
            "limit": limit,
            "source_row": part.lines.to_numpy(),
            "source_file": part.file,
        }
    )
    for extra in ["group_dose", "group_dose_unit", *part.covariates]:
        if extra in f:
            obs[extra] = f[extra].to_numpy()
    drop = no_value if missing_value == "exclude" else pd.Series(False, index=f.index)
    excluded = _excluded(obs[drop], "empty value (no measurement)")
    return obs[~drop].reset_index(drop=True), excluded


def _check_values(
    part: RawPart,
    value: pd.Series,
    limit: pd.Series,
    censored: pd.Series,
    unit: pd.Series,
    issues: IssueCollector,
) -> None:
    dimensionless = unit == "1"
    part.flag(issues, np.isinf(value), "value", "value is not finite")
    negative = (value < 0) & ~dimensionless
    part.flag(issues, negative, "value", lambda i: f"negative value {value.iloc[i]:g}")
    no_limit = censored & missing(part.frame["limit"])
    part.flag(issues, no_limit, "censored", "censored row without a limit (fill the limit column)")
    bad_limit = (limit <= 0) | np.isinf(limit)
    part.flag(
        issues,
        bad_limit,
        "limit",
        lambda i: f"limit must be positive and finite, got {limit.iloc[i]:g}",
    )


def _excluded(rows: pd.DataFrame, reason: str) -> pd.DataFrame:
    if rows.empty:
        return empty_frame(EXCLUDED_COLUMNS)
    out = rows.loc[:, ["source_file", "source_row", "subject"]].copy()
    out["reason"] = reason
    return out.reset_index(drop=True)


def excluded_rows(part: RawPart, mask: pd.Series, reason: str) -> pd.DataFrame:
    """Return the rows of ``part`` in ``mask`` as an excluded table with ``reason``."""
    rows = pd.DataFrame(
        {
            "source_file": part.file,
            "source_row": part.lines.to_numpy(),
            "subject": part.frame["subject"].to_numpy() if "subject" in part.frame else "",
        }
    )
    return _excluded(rows[mask.to_numpy()], reason)


def parse_events(
    part: RawPart, issues: IssueCollector, il2_names: Iterable[str] = ()
) -> pd.DataFrame:
    """Parse and convert one file's events (doses, implants)."""
    f = part.frame
    _required_text(part, ["subject", "kind", "unit"], issues)
    time = time_in_days(part, issues)
    amount = parse_number(part, "amount", issues)
    part.flag(issues, missing(f["amount"]), "amount", "missing amount")
    part.flag(issues, (amount < 0) | np.isinf(amount), "amount", "amount must be >= 0 and finite")
    keys = f[["unit", "kind"]]
    conv = _factors(
        part, keys, "unit", lambda u, k: units.amount_conversion(u, k, il2_names), issues
    )
    factor = conv.map(lambda c: c.factor if c is not None else np.nan).astype("float64")
    duration = parse_number(part, "duration", issues)
    part.flag(issues, (duration < 0) | np.isinf(duration), "duration", "duration must be >= 0")
    return pd.DataFrame(
        {
            "subject": f["subject"],
            "time": time,
            "kind": f["kind"],
            "amount": scale(amount, factor),
            "unit": conv.map(lambda c: c.unit if c is not None else ""),
            "duration": scale(duration, _duration_factor(part)),
            "source_row": part.lines.to_numpy(),
            "source_file": part.file,
        }
    )


def _duration_factor(part: RawPart) -> pd.Series:
    """Durations are in the row's time unit: reuse its factor to days."""
    factors = {}
    for unit in part.frame["time_unit"].unique():
        try:
            factors[unit] = units.time_factor(unit)
        except units.UnitError:
            factors[unit] = np.nan
    return part.frame["time_unit"].map(factors).astype("float64")


@dataclass
class Parsed:
    """Everything parsed from one or more files, before the cross-row checks."""

    observations: list[pd.DataFrame] = field(default_factory=list)
    events: list[pd.DataFrame] = field(default_factory=list)
    excluded: list[pd.DataFrame] = field(default_factory=list)
    columns: dict[str, dict[str, str]] = field(default_factory=dict)
    covariates: list[str] = field(default_factory=list)

    def add_part(self, part: RawPart) -> None:
        """Remember the column names of a file and its covariates."""
        self.columns[part.file] = part.columns
        self.covariates.extend(c for c in part.covariates if c not in self.covariates)


class _RowIssues:
    """Issue helper for concatenated tables that carry source_file / source_row."""

    def __init__(self, parsed: Parsed, issues: IssueCollector) -> None:
        self.parsed = parsed
        self.issues = issues

    def add(self, row: pd.Series, name: str, message: str) -> None:
        column = self.parsed.columns.get(row["source_file"], {}).get(name, name)
        self.issues.add(row["source_file"], int(row["source_row"]), column, message)


def assemble(
    parsed: Parsed,
    issues: IssueCollector,
    groups: dict[str, tuple[float, str]] | None = None,
    source: str = "",
    name: str = "study",
) -> Study:
    """Run the cross-row checks and build the :class:`Study` (or raise ``DataError``).

    Cross-row checks run even when rows had problems, so one pass reports everything; rows
    whose own fields failed to parse are left out of them.
    """
    if not parsed.observations:
        if not issues:  # otherwise the file-level problems explain it
            issues.add(next(iter(parsed.columns), name), None, None, "no observations to use")
        issues.raise_if_any()
    obs = pd.concat(parsed.observations, ignore_index=True)
    events = pd.concat(parsed.events, ignore_index=True) if parsed.events else None
    rows = _RowIssues(parsed, issues)
    if obs.empty and not issues:
        issues.add(next(iter(parsed.columns), name), None, None, "no observations left to use")
    if obs.empty:
        issues.raise_if_any()
    _check_units(obs, rows)
    _check_duplicates(obs, rows)
    _check_constant(obs, "group", rows)
    covariates = _covariate_table(obs, parsed.covariates, rows)
    group_table = _group_table(obs, groups or {}, rows, issues)
    if events is not None:
        _check_event_subjects(events, set(obs["subject"]), rows)
    issues.raise_if_any()
    excluded = [e for e in parsed.excluded if not e.empty]
    return Study(
        observations=obs,
        events=events if events is not None else empty_frame(EVENT_COLUMNS),
        covariates=covariates,
        groups=group_table,
        excluded=pd.concat(excluded, ignore_index=True)
        if excluded
        else empty_frame(EXCLUDED_COLUMNS),
        source=source,
        name=name,
    )


def _check_units(obs: pd.DataFrame, rows: _RowIssues) -> None:
    obs = obs[obs["unit"] != ""]
    first = obs.drop_duplicates("analyte").set_index("analyte")["unit"]
    clash = obs["unit"] != obs["analyte"].map(first)
    for _, row in obs[clash].iterrows():
        message = (
            f"analyte {row['analyte']!r} is in {row['unit']} here but in "
            f"{first[row['analyte']]} elsewhere (different dimensions)"
        )
        rows.add(row, "unit", message)


def _check_duplicates(obs: pd.DataFrame, rows: _RowIssues) -> None:
    keys = ["subject", "time", "analyte"]
    obs = obs[obs["time"].notna() & ~missing(obs["subject"])]
    dup = obs.duplicated(keys, keep="first")
    if not dup.any():
        return
    first = obs[~dup].set_index(keys)
    for _, row in obs[dup].iterrows():
        origin = first.loc[tuple(row[k] for k in keys)]
        message = (
            f"duplicate (subject, time, analyte) = ({row['subject']}, {row['time']:g} day, "
            f"{row['analyte']}); first at {origin['source_file']} line {origin['source_row']}"
        )
        rows.add(row, "time", message)


def _check_constant(
    frame: pd.DataFrame, column: str, rows: _RowIssues, by: str = "subject"
) -> None:
    """Flag each ``by`` value (subject or group) whose ``column`` takes more than one value."""
    values = frame[column].astype(str)
    first = values.groupby(frame[by]).transform("first")
    seen: set[str] = set()
    for index in np.flatnonzero((values != first).to_numpy()):
        row = frame.iloc[index]
        if row[by] in seen:
            continue
        seen.add(row[by])
        message = (
            f"{column} must be constant per {by}: {by} {row[by]!r} has "
            f"{values.iloc[index]!r} here and {first.iloc[index]!r} earlier"
        )
        rows.add(row, column, message)


def _covariate_table(obs: pd.DataFrame, names: list[str], rows: _RowIssues) -> pd.DataFrame:
    table = obs.drop_duplicates("subject")[["subject"]].reset_index(drop=True)
    for name in names:
        if name not in obs:
            continue
        _check_constant(obs, name, rows)
        raw = obs.drop_duplicates("subject")[name].reset_index(drop=True)
        values = raw.where(~missing(raw))
        numbers = pd.to_numeric(values, errors="coerce")
        parses = (numbers.notna() | values.isna()).all()
        table[name] = numbers.astype("float64") if parses else values.fillna("").astype(str)
    return table


def _group_table(
    obs: pd.DataFrame,
    declared: dict[str, tuple[float, str]],
    rows: _RowIssues,
    issues: IssueCollector,
) -> pd.DataFrame:
    doses = dict(declared)
    if "group_dose" in obs:
        doses.update(_doses_from_rows(obs, rows))
    records = []
    for group in dict.fromkeys(obs["group"]):
        dose, unit = doses.get(group, (np.nan, ""))
        if unit and not np.isnan(dose):
            try:
                conv = units.conversion(unit, "amount")
            except units.UnitError as exc:
                issues.add("(groups)", None, "dose_unit", f"group {group!r}: {exc}")
                continue
            dose, unit = dose * conv.factor, conv.unit
        records.append({"group": group, "dose": float(dose), "dose_unit": unit or ""})
    for group in sorted(set(declared) - set(obs["group"])):
        issues.add("(groups)", None, "group", f"group {group!r} is declared but has no subjects")
    return pd.DataFrame(records)


def _doses_from_rows(obs: pd.DataFrame, rows: _RowIssues) -> dict[str, tuple[float, str]]:
    """Group doses given per row (tidy ``dose``/``dose_unit`` columns): one per group."""
    unit = obs["group_dose_unit"] if "group_dose_unit" in obs else pd.Series("", index=obs.index)
    keyed = obs.assign(group_dose=obs["group_dose"].astype(str) + " " + unit.astype(str))
    _check_constant(keyed, "group_dose", rows, by="group")
    out = {}
    for _, row in obs.assign(group_dose_unit=unit).drop_duplicates("group").iterrows():
        text = str(row["group_dose"])
        if text in MISSING_TOKENS:
            continue
        try:
            dose = float(text)
            units.conversion(str(row["group_dose_unit"]), "amount")
        except (ValueError, units.UnitError) as exc:
            rows.add(
                row, "group_dose", f"bad group dose {text!r} {row['group_dose_unit']!r}: {exc}"
            )
            continue
        out[str(row["group"])] = (dose, str(row["group_dose_unit"]))
    return out


def _check_event_subjects(events: pd.DataFrame, subjects: set[str], rows: _RowIssues) -> None:
    orphan = ~events["subject"].isin(subjects)
    for _, row in events[orphan].iterrows():
        rows.add(row, "subject", f"event for subject {row['subject']!r}, which has no observations")
