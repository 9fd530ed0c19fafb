"""From a study to the arrays a model needs: time grids, observation rows and dosing events.

A :class:`Design` is pure numpy: per-subject observation time grids (padded, with a mask), one row
per modelled observation (subject index, time index, analyte, value, censoring, limit) and the
dose events routed to ODE states. It is what the likelihood and :meth:`simulate` share.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import pandas as pd

from bayes.data import Study


@dataclass(frozen=True)
class Design:
    """Numeric design of a study for one model.

    Attributes
    ----------
    subjects, groups : numpy.ndarray of str
        Subject ids and their groups, shape ``(subject,)``.
    obs_times, obs_mask : numpy.ndarray
        Per-subject unique observation times (padded) and validity mask, ``(subject, n_time)``.
    rows : pandas.DataFrame
        One row per modelled observation: ``subject_index, time_index, time, analyte, value,
        censored, limit`` plus ``source_file, source_row`` for tracing.
    events : pandas.DataFrame
        Dose events of modelled kinds: ``subject_index, time, kind, amount, duration``.
    left_out : pandas.DataFrame
        Observations and events present in the data but not used by the model, with a reason.
    """

    subjects: np.ndarray
    groups: np.ndarray
    obs_times: np.ndarray
    obs_mask: np.ndarray
    rows: pd.DataFrame
    events: pd.DataFrame
    left_out: pd.DataFrame

    @property
    def n_subjects(self) -> int:
        """Number of subjects."""
        return len(self.subjects)


def build_design(study: Study, analytes: Sequence[str], dose_kinds: Sequence[str]) -> Design:
    """Build the numeric design of ``study`` for a model observing ``analytes``.

    Parameters
    ----------
    study : Study
        Validated data in canonical units.
    analytes : sequence of str
        Analytes the model predicts; other observations are listed in ``left_out``.
    dose_kinds : sequence of str
        Event kinds the model doses; other events are listed in ``left_out``.

    Returns
    -------
    Design

    Raises
    ------
    ValueError
        If no observation of a modelled analyte exists, or a subject has none.
    """
    observations = study.observations
    used = observations["analyte"].isin(list(analytes))
    if not used.any():
        present = sorted(observations["analyte"].unique())
        raise ValueError(f"the data hold none of the modelled analytes {list(analytes)}: {present}")
    rows = observations[used].reset_index(drop=True)
    subjects = np.array(study.subjects, dtype=str)
    index = {subject: i for i, subject in enumerate(subjects)}
    missing = [s for s in subjects if s not in set(rows["subject"])]
    if missing:
        raise ValueError(f"subjects without any modelled observation: {missing[:10]}")
    obs_times, obs_mask, time_index = _time_grid(rows, subjects)
    rows = rows.assign(subject_index=rows["subject"].map(index), time_index=time_index)
    events = study.events[study.events["kind"].isin(list(dose_kinds))]
    events = events.assign(subject_index=events["subject"].map(index)).reset_index(drop=True)
    groups = observations.drop_duplicates("subject").set_index("subject")["group"]
    return Design(
        subjects=subjects,
        groups=groups.reindex(subjects).to_numpy(dtype=str),
        obs_times=obs_times,
        obs_mask=obs_mask,
        rows=rows,
        events=events,
        left_out=_left_out(study, used, dose_kinds),
    )


def _time_grid(rows: pd.DataFrame, subjects: np.ndarray) -> tuple[np.ndarray, np.ndarray, list]:
    per_subject = {s: np.unique(t.to_numpy()) for s, t in rows.groupby("subject")["time"]}
    width = max(len(times) for times in per_subject.values())
    obs_times = np.zeros((len(subjects), width))
    obs_mask = np.zeros((len(subjects), width), dtype=bool)
    for i, subject in enumerate(subjects):
        times = per_subject[subject]
        obs_times[i, : len(times)] = times
        obs_times[i, len(times) :] = times[-1]
        obs_mask[i, : len(times)] = True
    pairs = zip(rows["subject"], rows["time"], strict=True)
    time_index = [int(np.searchsorted(per_subject[s], t)) for s, t in pairs]
    return obs_times, obs_mask, time_index


def _left_out(study: Study, used: pd.Series, dose_kinds: Sequence[str]) -> pd.DataFrame:
    unused_obs = study.observations[~used]
    unused_events = study.events[~study.events["kind"].isin(list(dose_kinds))]
    parts = [
        pd.DataFrame(
            {
                "source_file": frame["source_file"],
                "source_row": frame["source_row"],
                "subject": frame["subject"],
                "reason": reason_prefix + frame[column].astype(str),
            }
        )
        for frame, column, reason_prefix in (
            (unused_obs, "analyte", "analyte not in the model: "),
            (unused_events, "kind", "event kind not dosed by the model: "),
        )
    ]
    return pd.concat(parts, ignore_index=True)


def first_log_observation(study: Study, analyte: str) -> np.ndarray:
    """Return each subject's first observed log value of ``analyte`` (censored: log limit).

    Zero or missing values fall back to the subject's first positive value, then to the
    analyte's overall median, so every subject gets a finite reference. Shape ``(subject,)`` in
    ``study.subjects`` order.
    """
    rows = study.observations[study.observations["analyte"] == analyte]
    values = np.where(rows["censored"], rows["limit"], rows["value"])
    rows = rows.assign(_v=values)[values > 0].sort_values(["subject", "time"], kind="stable")
    first = rows.groupby("subject")["_v"].first()
    fallback = float(np.median(rows["_v"])) if len(rows) else 1.0
    return np.log(first.reindex(study.subjects).fillna(fallback).to_numpy(dtype=float))


def study_log_reference(study: Study, analyte: str, burden: float | None = None) -> np.ndarray:
    """Return one reference log value of ``analyte`` for the whole study, repeated per subject.

    Parameters
    ----------
    study : Study
        The data.
    analyte : str
        Burden analyte.
    burden : float, optional
        Reference on the data's scale (e.g. a design's nominal day-0 burden); default the median
        over subjects of the first observed value (:func:`first_log_observation`).

    Returns
    -------
    numpy.ndarray
        Shape ``(subject,)``, every entry the same.

    Raises
    ------
    ValueError
        If ``burden`` is not a positive finite number.
    """
    if burden is None:
        value = float(np.median(first_log_observation(study, analyte)))
    elif np.isfinite(burden) and burden > 0:
        value = float(np.log(burden))
    else:
        raise ValueError(f"the reference burden must be positive and finite, got {burden!r}")
    return np.full(len(study.subjects), value)
