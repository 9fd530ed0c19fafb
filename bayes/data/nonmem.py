"""NONMEM-style CSV reader.

Columns (upper case): ``ID, TIME, DV`` required; ``AMT, EVID, CMT, MDV, CENS`` (or ``BLQ``),
``LIMIT`` (or ``LLOQ``), ``RATE``, ``DUR``, ``ADDL``, ``II`` optional; a group column (``GROUP``
or ``ARM`` by default, configurable); every other column is a subject-level covariate (must be
constant per subject) unless listed in ``ignore``.

Row rules:

- ``EVID=0, MDV=0``: observation of the compartment ``CMT``, mapped to ``(analyte, unit)``.
- ``EVID=0, MDV=1``: excluded, recorded with the reason.
- ``EVID=1``: dose event of ``AMT``; kind and amount unit from the compartment's dose mapping
  (default kind ``dose``). ``RATE>0`` gives a zero-order input of duration ``AMT/RATE``;
  ``RATE=-2`` takes the duration from ``DUR``. ``ADDL``/``II`` are expanded into single events.
- ``EVID=2``: excluded (other event); ``EVID=3/4`` (resets): an error.
- ``CENS=1`` (or ``BLQ=1``): left-censored at ``LIMIT``; without a ``LIMIT`` value, ``DV`` is
  taken as the limit (NONMEM M3 convention). ``CENS=-1`` (right-censoring) is an error.
- Missing ``EVID``: 1 where ``AMT`` > 0, else 0. Missing ``MDV``: 0 for observations.

The compartment mapping, time unit and group doses come from keyword arguments or a small TOML
file (see ``datasets/examples/example_nonmem.toml``)::

    time_unit = "day"
    group_column = "GROUP"
    [cmt.1]
    kind = "capsule_implant"
    amount_unit = "ug/day"
    [cmt.2]
    analyte = "tumour_volume"
    unit = "mm^3"
"""

from __future__ import annotations

import tomllib
from collections.abc import Iterable
from pathlib import Path

import numpy as np
import pandas as pd
from pydantic import BaseModel, ConfigDict, ValidationError

from bayes.data.build import (
    Parsed,
    RawPart,
    assemble,
    excluded_rows,
    missing,
    parse_events,
    parse_number,
    parse_observations,
)
from bayes.data.csvio import RawTable, check_columns, read_csv_strings
from bayes.data.errors import IssueCollector
from bayes.data.study import Study

RESERVED = ["ID", "TIME", "DV", "AMT", "EVID", "CMT", "MDV", "CENS", "BLQ", "LIMIT", "LLOQ"]
RESERVED += ["RATE", "DUR", "ADDL", "II"]
INVALID = -999_999  # marks an unparseable integer cell (already reported)


class CompartmentSpec(BaseModel):
    """What a compartment number means: an observed analyte and/or a dosing target."""

    model_config = ConfigDict(extra="forbid")
    analyte: str | None = None
    unit: str | None = None
    kind: str | None = None
    amount_unit: str | None = None


class GroupSpec(BaseModel):
    """A group's nominal dose."""

    model_config = ConfigDict(extra="forbid")
    dose: float
    dose_unit: str


class NonmemMapping(BaseModel):
    """Contents of a NONMEM mapping TOML file."""

    model_config = ConfigDict(extra="forbid")
    description: str = ""
    time_unit: str = "day"
    group_column: str | None = None
    amount_unit: str | None = None
    ignore: list[str] = []
    il2_names: list[str] = []
    cmt: dict[int, CompartmentSpec]
    groups: dict[str, GroupSpec] = {}


def load_nonmem_mapping(path: str | Path) -> NonmemMapping:
    """Read and validate a NONMEM mapping TOML (raises ``DataError`` with the problems)."""
    return load_toml_config(path, NonmemMapping)


def load_toml_config[ConfigT: BaseModel](path: str | Path, schema: type[ConfigT]) -> ConfigT:
    """Read a TOML file into a pydantic ``schema``; raise ``DataError`` naming the bad keys."""
    issues = IssueCollector()
    try:
        with open(path, "rb") as handle:
            return schema.model_validate(tomllib.load(handle))
    except OSError as exc:
        issues.add(str(path), None, None, f"cannot read mapping: {exc.strerror or exc}")
    except tomllib.TOMLDecodeError as exc:
        issues.add(str(path), getattr(exc, "lineno", None), None, f"invalid TOML: {exc}")
    except ValidationError as exc:
        add_validation_issues(str(path), exc, issues)
    issues.raise_if_any()
    raise AssertionError("unreachable")  # pragma: no cover


def add_validation_issues(label: str, exc: ValidationError, issues: IssueCollector) -> None:
    """Turn pydantic errors into issues (column = dotted TOML key)."""
    for error in exc.errors():
        key = ".".join(str(p) for p in error["loc"]) or None
        issues.add(label, None, key, error["msg"])


def _int_column(part: RawPart, name: str, default: int, issues: IssueCollector) -> pd.Series:
    if name not in part.frame:
        return pd.Series(default, index=part.frame.index, dtype="int64")
    number = parse_number(part, name, issues)
    fraction = number.notna() & (number % 1 != 0)
    part.flag(issues, fraction, name, "expected a whole number")
    invalid = fraction | (number.isna() & ~missing(part.frame[name]))
    return number.fillna(default).where(~invalid, INVALID).round().astype("int64")


def _mapping_from_kwargs(
    mapping: str | Path | NonmemMapping | None,
    cmt_analytes: dict[int, tuple[str, str]] | None,
    cmt_doses: dict[int, tuple[str, str]] | None,
    overrides: dict,
) -> NonmemMapping:
    if isinstance(mapping, NonmemMapping):
        spec = mapping
    elif mapping is not None:
        spec = load_nonmem_mapping(mapping)
    else:
        spec = NonmemMapping(cmt={})
    cmt = {k: v.model_copy() for k, v in spec.cmt.items()}
    for number, (analyte, unit) in (cmt_analytes or {}).items():
        cmt.setdefault(number, CompartmentSpec())
        cmt[number] = cmt[number].model_copy(update={"analyte": analyte, "unit": unit})
    for number, (kind, unit) in (cmt_doses or {}).items():
        cmt.setdefault(number, CompartmentSpec())
        cmt[number] = cmt[number].model_copy(update={"kind": kind, "amount_unit": unit})
    update = {k: v for k, v in overrides.items() if v is not None}
    return spec.model_copy(update={"cmt": cmt, **update})


def read_nonmem(
    path: str | Path,
    cmt_analytes: dict[int, tuple[str, str]] | None = None,
    *,
    mapping: str | Path | NonmemMapping | None = None,
    cmt_doses: dict[int, tuple[str, str]] | None = None,
    time_unit: str | None = None,
    amount_unit: str | None = None,
    group_column: str | None = None,
    groups: dict[str, tuple[float, str]] | None = None,
    ignore: Iterable[str] | None = None,
    il2_names: Iterable[str] | None = None,
    name: str | None = None,
) -> Study:
    """Read a NONMEM-style CSV into a :class:`Study`.

    Parameters
    ----------
    path : str or Path
        The data file.
    cmt_analytes : dict, optional
        Compartment -> (analyte, unit) for observation rows; adds to/overrides ``mapping``.
    mapping : str, Path or NonmemMapping, optional
        TOML mapping file (see module docstring) or a parsed one.
    cmt_doses : dict, optional
        Compartment -> (event kind, amount unit) for dose rows.
    time_unit : str, optional
        Unit of TIME, DUR and II (default from mapping, else day).
    amount_unit : str, optional
        Unit of AMT for compartments without their own ``amount_unit``.
    group_column : str, optional
        Column naming the group (default: ``GROUP`` or ``ARM`` if present, else all in "all").
    groups : dict, optional
        Group -> (nominal dose, unit).
    ignore : iterable of str, optional
        Columns to ignore (neither covariates nor checked).
    il2_names : iterable of str, optional
        Extra analyte / kind names treated as IL-2 for IU conversion.
    name : str, optional
        Study name (default: file stem).

    Returns
    -------
    Study

    Raises
    ------
    DataError
        Listing every problem with file, line and column.

    """
    spec = _mapping_from_kwargs(
        mapping,
        cmt_analytes,
        cmt_doses,
        {"time_unit": time_unit, "amount_unit": amount_unit, "group_column": group_column},
    )
    ignore_set = set(spec.ignore) | set(ignore or ())
    il2 = tuple(spec.il2_names) + tuple(il2_names or ())
    declared = {g: (s.dose, s.dose_unit) for g, s in spec.groups.items()}
    declared.update(groups or {})
    issues = IssueCollector()
    parsed = Parsed()
    table = read_csv_strings(path, issues)
    if table is not None and check_columns(table, ["ID", "TIME", "DV"], issues):
        _split_rows(table, spec, ignore_set, il2, parsed, issues)
    return assemble(
        parsed, issues, groups=declared, source=f"NONMEM CSV {path}", name=name or Path(path).stem
    )


def _group_name(table: RawTable, spec: NonmemMapping, issues: IssueCollector) -> str | None:
    if spec.group_column is not None:
        if spec.group_column not in table.frame:
            issues.add(table.label, table.header_line, spec.group_column, "missing group column")
        return spec.group_column
    return next((c for c in ["GROUP", "ARM"] if c in table.frame), None)


def _split_rows(
    table: RawTable,
    spec: NonmemMapping,
    ignore: set[str],
    il2_names: tuple[str, ...],
    parsed: Parsed,
    issues: IssueCollector,
) -> None:
    group = _group_name(table, spec, issues)
    frame = table.frame.rename(columns={"ID": "subject", "TIME": "time"})
    frame["group"] = frame[group] if group in frame else "all"
    frame["time_unit"] = spec.time_unit
    columns = {"subject": "ID", "time": "TIME", "group": group or "GROUP", "time_unit": "TIME"}
    part = RawPart(frame=frame, lines=table.lines, file=table.label, columns=columns)
    skip = {*RESERVED, *ignore, group}
    part.covariates = [c for c in table.frame.columns if c not in skip]
    parsed.add_part(part)
    amt = _optional_number(part, "AMT", issues)
    evid = _int_column(part, "EVID", -9, issues)
    evid = evid.where(evid != -9, np.where(amt.fillna(0) > 0, 1, 0))
    mdv = _int_column(part, "MDV", 0, issues)
    cmt = _int_column(part, "CMT", 1, issues)
    part.flag(issues, evid.isin([3, 4]), "EVID", "EVID 3/4 (system reset) is not supported")
    part.flag(issues, ~evid.isin([0, 1, 2, 3, 4]), "EVID", "EVID must be 0, 1, 2, 3 or 4")
    is_obs = (evid == 0) & (mdv == 0)
    parsed.excluded.append(excluded_rows(part, (evid == 0) & (mdv != 0), "MDV=1 (no observation)"))
    parsed.excluded.append(excluded_rows(part, evid == 2, "EVID=2 (other event) ignored"))
    if is_obs.any():
        _observations(part, is_obs, cmt, spec, il2_names, parsed, issues)
    if (evid == 1).any():
        _doses(part, evid == 1, cmt, spec, il2_names, parsed, issues)


def _optional_number(part: RawPart, name: str, issues: IssueCollector) -> pd.Series:
    if name not in part.frame:
        return pd.Series(np.nan, index=part.frame.index)
    return parse_number(part, name, issues)


def _subset(part: RawPart, mask: pd.Series) -> RawPart:
    keep = mask.to_numpy()
    return RawPart(
        frame=part.frame[keep].reset_index(drop=True),
        lines=part.lines[keep].reset_index(drop=True),
        file=part.file,
        columns=dict(part.columns),
        covariates=list(part.covariates),
    )


def _observations(part, mask, cmt, spec, il2_names, parsed, issues) -> None:
    lookup = {n: c for n, c in spec.cmt.items() if c.analyte is not None}
    unknown = mask & ~cmt.isin(list(lookup)) & (cmt != INVALID)
    part.flag(issues, unknown, "CMT", lambda i: f"no analyte mapped for CMT {cmt.iloc[i]}")
    mask = mask & cmt.isin(list(lookup))
    if not mask.any():
        return
    sub = _subset(part, mask)
    numbers = cmt[mask.to_numpy()].reset_index(drop=True)
    f = sub.frame
    censor_col = "CENS" if "CENS" in f else ("BLQ" if "BLQ" in f else None)
    limit_col = "LIMIT" if "LIMIT" in f else ("LLOQ" if "LLOQ" in f else None)
    sub.columns.update(analyte="CMT", unit="CMT", value="DV", limit=limit_col or "LIMIT")
    sub.columns.update(censored=censor_col or "CENS")
    f["analyte"] = numbers.map(lambda n: lookup[n].analyte)
    f["unit"] = numbers.map(lambda n: lookup[n].unit or "")
    f["value"] = f["DV"]
    f["censored"] = f[censor_col] if censor_col else "0"
    sub.flag(issues, f["censored"] == "-1", "censored", "right-censoring (CENS=-1) not supported")
    f.loc[f["censored"] == "-1", "censored"] = "0"
    f["limit"] = f[limit_col] if limit_col else ""
    use_dv = f["censored"].str.lower().isin(["1", "true"]) & missing(f["limit"])
    f.loc[use_dv, "limit"] = f.loc[use_dv, "DV"]
    obs, excluded = parse_observations(sub, issues, il2_names=il2_names)
    parsed.observations.append(obs)
    parsed.excluded.append(excluded)


def _doses(part, mask, cmt, spec, il2_names, parsed, issues) -> None:
    sub = _subset(part, mask)
    numbers = cmt[mask.to_numpy()].reset_index(drop=True)
    f = sub.frame
    f["kind"] = numbers.map(lambda n: (spec.cmt.get(n) or CompartmentSpec()).kind or "dose")
    default_unit = spec.amount_unit or ""
    f["unit"] = numbers.map(
        lambda n: (spec.cmt.get(n) or CompartmentSpec()).amount_unit or default_unit
    )
    no_unit = f["unit"] == ""
    sub.flag(issues, no_unit, "AMT", lambda i: f"no amount unit for CMT {numbers.iloc[i]}")
    f["amount"] = f["AMT"] if "AMT" in f else ""
    f["duration"] = _durations(sub, issues)
    sub.columns.update(kind="CMT", unit="AMT", amount="AMT", duration="RATE")
    sub = _expand_additional(sub, issues)
    parsed.events.append(parse_events(sub, issues, il2_names))


def _durations(part: RawPart, issues: IssueCollector) -> pd.Series:
    amount = _optional_number(part, "AMT", IssueCollector())
    rate = _optional_number(part, "RATE", issues)
    dur = _optional_number(part, "DUR", issues)
    duration = pd.Series(np.nan, index=part.frame.index)
    duration = duration.where(~(rate > 0), amount / rate)
    duration = duration.where(rate != -2, dur)
    part.flag(issues, (rate == -2) & dur.isna(), "DUR", "RATE=-2 needs a DUR value")
    return duration.map(lambda x: "" if np.isnan(x) else repr(float(x)))


def _expand_additional(part: RawPart, issues: IssueCollector) -> RawPart:
    """Expand ADDL/II into one row per dose (same source line)."""
    if "ADDL" not in part.frame:
        return part
    addl = _int_column(part, "ADDL", 0, issues)
    interval = _optional_number(part, "II", issues)
    part.flag(issues, (addl > 0) & ~(interval > 0), "II", "ADDL > 0 needs II > 0")
    addl = addl.where(interval > 0, 0).clip(lower=0)
    repeat = np.repeat(np.arange(len(addl)), addl.to_numpy() + 1)
    offset = pd.Series(np.concatenate([np.arange(n + 1) for n in addl]), dtype="float64")
    frame = part.frame.iloc[repeat].reset_index(drop=True)
    time = pd.to_numeric(frame["time"], errors="coerce") + offset * interval.iloc[repeat].to_numpy()
    frame["time"] = frame["time"].where(offset == 0, time.map(repr))
    lines = part.lines.iloc[repeat].reset_index(drop=True)
    return RawPart(frame, lines, part.file, part.columns, part.covariates)
