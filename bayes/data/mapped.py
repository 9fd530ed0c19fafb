"""Column-mapping reader: read someone else's CSV files through a small TOML mapping.

The mapping says which files to read, which of their columns hold the canonical fields, which
fields are fixed per file, how to rename analytes, which columns hold dose amounts and what each
group's nominal dose is. It is validated with pydantic; problems are reported as ``DataError``.

Schema (all column names are as written in the data files)::

    name = "eigenmann2016"             # study name
    description = "..."                # free text; source = "citation"
    root = "../../../shared/data/x"    # data folder, relative to this TOML (default ".");
                                       # overridden by read_mapped(data_root=...) / --data-root
    separator = "-"                    # joins multi-column subject / group ids
    missing_value = "exclude"          # rows without a value: "exclude" (listed) or "error"
    subject_collision = "error"        # same subject id in two files: "error"|"prefix"|"merge"
    il2_names = []                     # extra analyte/kind names treated as IL-2 for IU
    detection_limits = { tumour_volume = 15.0 }  # analyte (after renaming) -> limit in the
                                       # file's unit: values at or below it become censored
                                       # rows (M3) with this limit, e.g. a placeholder for
                                       # "not measurable"; the value itself is not used

    [columns]                          # field -> column (or list of columns, joined)
    subject = ["study", "animal_id"]   # required
    group = "arm"                      # column(s), or fixed per file (below)
    time = "day"                       # required
    time_unit = "Time unit"            # column, or fixed.time_unit (default: day)
    analyte = "Observable"             # column, or fixed.analyte
    value = "Value"                    # required
    unit = "Observable unit"           # column, or fixed.unit
    censored = "BLQ"                   # optional 0/1 column; limit = "LLOQ" optional
    covariates = ["sex"]               # optional subject-level columns

    [fixed]                            # constant values: group, time_unit, analyte, unit
    unit = "mm^3"

    [[doses]]                          # columns holding dose amounts -> events
    amount = "Dose"                    # rows with a non-empty amount become events
    unit_column = "Dose unit"          # or unit = "mg"
    kind = "dose"                      # event kind; duration = "Duration" optional column

    [analytes]                         # rename analyte values
    "Tumour volume" = "tumour_volume"

    [group_names]                      # rename group values (after joining)

    [groups.control]                   # nominal dose per group
    dose = 0.0
    dose_unit = "mg/kg"

    [[files]]
    path = "lxf_control_growth.csv"    # relative to root
    group = "control"                  # shortcut for fixed.group; per-file [files.columns],
                                       # [files.fixed] and [[files.doses]] override the top level
    [[files.exclude]]                  # leave out one observation row, listed with the reason
    line = 934                         # line number in the file (the header is line 1)
    reason = "transcription error: ..."

A row is an observation if it has an analyte; if its value is blank (and it is not censored)
it is excluded with a reason. A row with a dose amount also yields an event. A row with neither
is excluded with the reason ``no analyte and no dose``. Nothing is dropped silently.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Literal

import pandas as pd
from pydantic import BaseModel, ConfigDict, Field, PositiveFloat

from bayes.data.build import (
    Parsed,
    RawPart,
    assemble,
    excluded_rows,
    missing,
    parse_events,
    parse_observations,
)
from bayes.data.csvio import RawTable, check_columns, read_csv_strings
from bayes.data.errors import IssueCollector
from bayes.data.nonmem import load_toml_config
from bayes.data.study import Study


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid")


class ColumnSpec(_Strict):
    """Which file column holds each field (lists are joined with the separator)."""

    subject: str | list[str] | None = None
    group: str | list[str] | None = None
    time: str | None = None
    time_unit: str | None = None
    analyte: str | None = None
    value: str | None = None
    unit: str | None = None
    censored: str | None = None
    limit: str | None = None
    covariates: list[str] | None = None


class FixedSpec(_Strict):
    """Fields with one value for a whole file."""

    group: str | None = None
    time_unit: str | None = None
    analyte: str | None = None
    unit: str | None = None


class DoseSpec(_Strict):
    """A column of dose amounts; rows where it is filled become events."""

    amount: str
    unit: str | None = None
    unit_column: str | None = None
    kind: str = "dose"
    duration: str | None = None


class GroupSpec(_Strict):
    """A group's nominal dose."""

    dose: float | None = None
    dose_unit: str = ""
    description: str = ""


class ExcludeSpec(_Strict):
    """An observation row left out on purpose, with the reason (listed, never silent)."""

    line: int = Field(ge=2)
    reason: str = Field(min_length=1)


class FileSpec(_Strict):
    """One data file and its per-file overrides."""

    path: str
    exclude: list[ExcludeSpec] = []
    group: str | None = None
    columns: ColumnSpec = ColumnSpec()
    fixed: FixedSpec = FixedSpec()
    doses: list[DoseSpec] | None = None


class Mapping(_Strict):
    """A validated mapping TOML (see module docstring)."""

    name: str
    description: str = ""
    source: str = ""
    root: str = "."
    separator: str = "-"
    missing_value: Literal["exclude", "error"] = "exclude"
    subject_collision: Literal["error", "prefix", "merge"] = "error"
    il2_names: list[str] = []
    detection_limits: dict[str, PositiveFloat] = {}
    columns: ColumnSpec = ColumnSpec()
    fixed: FixedSpec = FixedSpec()
    doses: list[DoseSpec] = []
    analytes: dict[str, str] = {}
    group_names: dict[str, str] = {}
    groups: dict[str, GroupSpec] = {}
    files: list[FileSpec] = Field(min_length=1)


def load_mapping(path: str | Path) -> Mapping:
    """Read and validate a mapping TOML; raise ``DataError`` naming the bad keys."""
    return load_toml_config(path, Mapping)


def _merged(mapping: Mapping, file: FileSpec) -> tuple[ColumnSpec, FixedSpec, list[DoseSpec]]:
    columns = mapping.columns.model_copy(update=file.columns.model_dump(exclude_unset=True))
    fixed = mapping.fixed.model_copy(update=file.fixed.model_dump(exclude_unset=True))
    if file.group is not None:
        fixed = fixed.model_copy(update={"group": file.group})
    return columns, fixed, mapping.doses if file.doses is None else file.doses


def _as_list(value: str | list[str] | None) -> list[str]:
    if value is None:
        return []
    return [value] if isinstance(value, str) else list(value)


def _referenced(columns: ColumnSpec, doses: list[DoseSpec]) -> list[str]:
    names = _as_list(columns.subject) + _as_list(columns.group) + (columns.covariates or [])
    for field in ["time", "time_unit", "analyte", "value", "unit", "censored", "limit"]:
        names += _as_list(getattr(columns, field))
    for dose in doses:
        names += [n for n in [dose.amount, dose.unit_column, dose.duration] if n]
    return list(dict.fromkeys(names))


def _check_spec(label: str, columns: ColumnSpec, fixed: FixedSpec, issues: IssueCollector) -> None:
    for field in ["subject", "time", "value"]:
        if getattr(columns, field) is None:
            issues.add(label, None, field, f"mapping gives no column for {field!r}")
    for field in ["group", "analyte", "unit", "time_unit"]:
        has_column, has_fixed = getattr(columns, field) is not None, getattr(fixed, field)
        if has_column and has_fixed:
            issues.add(label, None, field, f"{field!r} is both a column and fixed in the mapping")
        if not has_column and not has_fixed and field != "time_unit":
            issues.add(label, None, field, f"mapping gives neither a column nor a fixed {field!r}")


def _field(table: RawTable, spec: str | list[str] | None, fixed: str | None, sep: str):
    """Return (values, display column name) for a field given by column(s) or a fixed value."""
    if spec is None:
        return pd.Series(fixed or "", index=table.frame.index, dtype=str), f"(fixed {fixed!r})"
    names = _as_list(spec)
    values = table.frame[names[0]]
    for name in names[1:]:
        values = values + sep + table.frame[name]
    return values, "+".join(names)


def _raw_part(table: RawTable, mapping: Mapping, columns: ColumnSpec, fixed: FixedSpec) -> RawPart:
    sep = mapping.separator
    frame, names = pd.DataFrame(index=table.frame.index), {}
    specs = {
        "subject": (columns.subject, None),
        "group": (columns.group, fixed.group),
        "time": (columns.time, None),
        "time_unit": (columns.time_unit, fixed.time_unit or "day"),
        "analyte": (columns.analyte, fixed.analyte),
        "value": (columns.value, None),
        "unit": (columns.unit, fixed.unit),
        "censored": (columns.censored, "0"),
        "limit": (columns.limit, ""),
    }
    for field, (spec, constant) in specs.items():
        frame[field], names[field] = _field(table, spec, constant, sep)
    frame["analyte"] = frame["analyte"].map(lambda a: mapping.analytes.get(a, a))
    frame["group"] = frame["group"].map(lambda g: mapping.group_names.get(g, g))
    _censor_at_detection_limits(frame, mapping.detection_limits)
    covariates = columns.covariates or []
    for name in covariates:
        frame[name] = table.frame[name]
    return RawPart(frame, table.lines, table.label, names, list(covariates))


def _censor_at_detection_limits(frame: pd.DataFrame, limits: dict[str, float]) -> None:
    """Mark values at or below their analyte's detection limit as censored at that limit."""
    for analyte, limit in limits.items():
        value = pd.to_numeric(frame["value"], errors="coerce")
        already = frame["censored"].str.strip().str.lower().isin(["1", "true"])
        below = (frame["analyte"] == analyte) & (value <= limit) & ~already
        frame.loc[below, "censored"] = "1"
        frame.loc[below, "limit"] = repr(float(limit))


def _dose_part(part: RawPart, table: RawTable, dose: DoseSpec) -> RawPart:
    f = table.frame
    frame = part.frame[["subject", "time", "time_unit"]].copy()
    frame["amount"] = f[dose.amount]
    frame["unit"] = f[dose.unit_column] if dose.unit_column else (dose.unit or "")
    frame["kind"] = dose.kind
    frame["duration"] = f[dose.duration] if dose.duration else ""
    keep = (~missing(frame["amount"])).to_numpy()
    names = dict(part.columns, amount=dose.amount, kind=f"(kind {dose.kind!r})")
    names.update(unit=dose.unit_column or f"(fixed {dose.unit!r})", duration=dose.duration or "-")
    lines = part.lines[keep].reset_index(drop=True)
    return RawPart(frame[keep].reset_index(drop=True), lines, part.file, names)


def read_mapped(
    mapping_path: str | Path, data_root: str | Path | None = None, name: str | None = None
) -> Study:
    """Read the files named in a mapping TOML into one :class:`Study`.

    Parameters
    ----------
    mapping_path : str or Path
        The mapping TOML (schema in the module docstring).
    data_root : str or Path, optional
        Folder holding the data files; overrides the mapping's ``root`` (which is relative to the
        mapping file).
    name : str, optional
        Study name (default: the mapping's ``name``).

    Returns
    -------
    Study

    Raises
    ------
    DataError
        For mapping errors and every data problem, each with file, line and column.

    """
    mapping_path = Path(mapping_path)
    mapping = load_mapping(mapping_path)
    root = Path(data_root) if data_root is not None else mapping_path.parent / mapping.root
    issues = IssueCollector()
    loaded = [_load_file(mapping, spec, root, issues, str(mapping_path)) for spec in mapping.files]
    loaded = [item for item in loaded if item is not None]
    _resolve_collisions(mapping, loaded, issues, str(mapping_path))
    parsed = Parsed()
    for part, table, doses, exclude in loaded:
        _parse_file(mapping, part, table, doses, parsed, issues)
        _exclude_lines(parsed, part, exclude, issues)
    groups = {
        g: (s.dose if s.dose is not None else float("nan"), s.dose_unit)
        for g, s in mapping.groups.items()
    }
    source = f"mapping {mapping_path} ({mapping.source or mapping.description})".strip()
    return assemble(parsed, issues, groups=groups, source=source, name=name or mapping.name)


def _load_file(mapping: Mapping, spec: FileSpec, root: Path, issues, mapping_label: str):
    columns, fixed, doses = _merged(mapping, spec)
    n_before = len(issues.issues)
    _check_spec(f"{mapping_label} [files] {spec.path}", columns, fixed, issues)
    table = read_csv_strings(os.path.normpath(root / spec.path), issues)
    if table is None or len(issues.issues) > n_before:
        return None
    if not check_columns(table, _referenced(columns, doses), issues):
        return None
    return _raw_part(table, mapping, columns, fixed), table, doses, spec.exclude


def _resolve_collisions(mapping: Mapping, loaded: list, issues, label: str) -> None:
    owner: dict[str, str] = {}
    for part, *_ in loaded:
        subjects = set(part.frame["subject"])
        clash = sorted(s for s in subjects if s in owner)
        if clash and mapping.subject_collision == "error":
            message = (
                f"subject ids {clash[:5]} also occur in {owner[clash[0]]}; set "
                "subject_collision = 'prefix' (or 'merge' if they are the same animals)"
            )
            issues.add(part.file, None, part.columns["subject"], message)
        if mapping.subject_collision == "prefix" and len(loaded) > 1:
            part.frame["subject"] = Path(part.file).stem + mapping.separator + part.frame["subject"]
        owner.update({s: part.file for s in subjects})


def _exclude_lines(parsed: Parsed, part: RawPart, exclude: list[ExcludeSpec], issues) -> None:
    """Move the observation rows named in ``[[files.exclude]]`` to the excluded table."""
    if not exclude:
        return
    obs = parsed.observations[-1] if parsed.observations else pd.DataFrame(columns=["source_file"])
    here = obs["source_file"] == part.file
    reasons = {item.line: f"excluded by the mapping: {item.reason}" for item in exclude}
    found = set(obs.loc[here, "source_row"]) if here.any() else set()
    for line in sorted(set(reasons) - found):
        issues.add(part.file, line, None, "[[files.exclude]]: no observation on this line")
    if not found:
        return
    drop = here & obs["source_row"].isin(reasons)
    rows = obs.loc[drop, ["source_file", "source_row", "subject"]].copy()
    rows["reason"] = rows["source_row"].map(reasons)
    parsed.observations[-1] = obs[~drop].reset_index(drop=True)
    parsed.excluded.append(rows.reset_index(drop=True))


def _parse_file(mapping: Mapping, part: RawPart, table: RawTable, doses, parsed, issues) -> None:
    parsed.add_part(part)
    is_obs = ~missing(part.frame["analyte"])
    has_dose = pd.Series(False, index=part.frame.index)
    for dose in doses:
        has_dose |= ~missing(table.frame[dose.amount])
        events_part = _dose_part(part, table, dose)
        if len(events_part.frame):
            parsed.events.append(parse_events(events_part, issues, mapping.il2_names))
    neither = ~is_obs & ~has_dose
    parsed.excluded.append(excluded_rows(part, neither, "no analyte and no dose"))
    keep = is_obs.to_numpy()
    obs_part = RawPart(
        part.frame[keep].reset_index(drop=True),
        part.lines[keep].reset_index(drop=True),
        part.file,
        part.columns,
        part.covariates,
    )
    if len(obs_part.frame):
        obs, excluded = parse_observations(
            obs_part, issues, il2_names=mapping.il2_names, missing_value=mapping.missing_value
        )
        parsed.observations.append(obs)
        parsed.excluded.append(excluded)
