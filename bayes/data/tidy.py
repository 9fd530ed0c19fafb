"""Tidy long CSV format (the project's own format).

Observations file (one row per measurement):

==========  ========  ==============================================================
column      required  meaning
==========  ========  ==============================================================
subject     yes       animal id (any text; unique within the study)
group       yes       treatment group / arm (constant per subject)
time        yes       time since study start, >= 0
analyte     yes       what was measured, e.g. ``tumour_volume``, ``il2_serum``
value       yes       the measurement; may be blank only on censored rows
unit        yes       unit of ``value`` and ``limit``, e.g. ``mm^3``, ``pg/mL``, ``IU/mL``
time_unit   no        unit of ``time`` (default ``day``; ``h``, ``min``, ``week`` ... accepted)
censored    no        ``1``/``true``: value is below ``limit`` (left-censored, e.g. < LLOQ)
limit       no        limit of quantification/detection, in ``unit``; required when censored
dose        no        the group's nominal dose (constant per group), e.g. ``25``
dose_unit   no        unit of ``dose``, e.g. ``mg/kg``, ``ug/day``
(other)     no        subject-level covariates; must be constant per subject, else an error
==========  ========  ==============================================================

Events file (optional; one row per dose or implant): ``subject, time, kind, amount, unit``
plus optional ``time_unit`` (default day) and ``duration`` (zero-order input length, in
``time_unit``; blank = bolus). ``kind`` is free text such as ``capsule_implant``,
``antibody_dose`` or ``dose``. Other columns are an error.

Rows with a blank ``value`` that are not censored are excluded and listed with the reason
(``missing_value="error"`` makes them errors instead). A value of 0 is kept as a measurement.
Row numbers in messages are file lines: header = line 1, first data row = line 2.
"""

from __future__ import annotations

from collections.abc import Iterable
from pathlib import Path

from bayes.data.build import (
    MissingValue,
    Parsed,
    RawPart,
    assemble,
    parse_events,
    parse_observations,
)
from bayes.data.csvio import RawTable, check_columns, read_csv_strings
from bayes.data.errors import IssueCollector
from bayes.data.study import Study

OBSERVATION_REQUIRED = ["subject", "group", "time", "analyte", "value", "unit"]
OBSERVATION_OPTIONAL = {"time_unit": "day", "censored": "", "limit": ""}
GROUP_DOSE_COLUMNS = {"dose": "group_dose", "dose_unit": "group_dose_unit"}
EVENT_REQUIRED = ["subject", "time", "kind", "amount", "unit"]
EVENT_OPTIONAL = {"time_unit": "day", "duration": ""}


def _part(table: RawTable, fields: list[str], defaults: dict[str, str], rename=None) -> RawPart:
    frame = table.frame.rename(columns=rename or {})
    for name, default in defaults.items():
        if name not in frame:
            frame[name] = default
    columns = {name: name for name in [*fields, *defaults]}
    columns.update({new: old for old, new in (rename or {}).items()})
    return RawPart(frame=frame, lines=table.lines, file=table.label, columns=columns)


def _observations(table: RawTable, parsed: Parsed, issues: IssueCollector, **options) -> None:
    if not check_columns(table, OBSERVATION_REQUIRED, issues):
        return
    known = {*OBSERVATION_REQUIRED, *OBSERVATION_OPTIONAL, *GROUP_DOSE_COLUMNS}
    part = _part(table, OBSERVATION_REQUIRED, OBSERVATION_OPTIONAL, GROUP_DOSE_COLUMNS)
    part.covariates = [c for c in table.frame.columns if c not in known]
    parsed.add_part(part)
    obs, excluded = parse_observations(part, issues, **options)
    parsed.observations.append(obs)
    parsed.excluded.append(excluded)


def _events(table: RawTable, parsed: Parsed, issues: IssueCollector, il2_names) -> None:
    allowed = [*EVENT_REQUIRED, *EVENT_OPTIONAL]
    if not check_columns(table, EVENT_REQUIRED, issues, allowed=allowed):
        return
    part = _part(table, EVENT_REQUIRED, EVENT_OPTIONAL)
    parsed.add_part(part)
    parsed.events.append(parse_events(part, issues, il2_names))


def read_tidy(
    observations_path: str | Path,
    events_path: str | Path | None = None,
    *,
    groups: dict[str, tuple[float, str]] | None = None,
    il2_names: Iterable[str] = (),
    missing_value: MissingValue = "exclude",
    name: str | None = None,
) -> Study:
    """Read a tidy long observations CSV (and optionally an events CSV) into a :class:`Study`.

    Parameters
    ----------
    observations_path : str or Path
        Observations CSV (columns: see module docstring).
    events_path : str or Path, optional
        Events CSV.
    groups : dict, optional
        Group name -> (nominal dose, unit); overrides ``dose``/``dose_unit`` columns.
    il2_names : iterable of str
        Extra analyte/event-kind names whose IU may be converted to mass as IL-2.
    missing_value : {"exclude", "error"}
        What to do with uncensored rows without a value.
    name : str, optional
        Study name (default: the observations file's stem).

    Returns
    -------
    Study

    Raises
    ------
    DataError
        Listing every problem found, each with file, line and column.

    """
    issues = IssueCollector()
    parsed = Parsed()
    il2_names = tuple(il2_names)
    table = read_csv_strings(observations_path, issues)
    if table is not None:
        _observations(table, parsed, issues, il2_names=il2_names, missing_value=missing_value)
    if events_path is not None:
        events = read_csv_strings(events_path, issues)
        if events is not None:
            _events(events, parsed, issues, il2_names)
    source = f"tidy CSV {observations_path}" + (f" + events {events_path}" if events_path else "")
    return assemble(
        parsed, issues, groups=groups, source=source, name=name or Path(observations_path).stem
    )
