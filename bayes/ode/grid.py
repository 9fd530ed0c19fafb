"""Build-time (numpy) segmentation of the time axis at observation and event times.

Every subject's time axis is cut at ``t0``, its observation times and its event times into
*segments*; discontinuities (bolus jumps, input switches) therefore fall exactly on segment
boundaries. Subjects are padded to a common number of breakpoints so that all subjects are
integrated together.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from bayes.ode.events import Events

__all__ = ["BreakpointGrid", "FixedStepGrid", "build_breakpoints", "build_fixed_steps"]


@dataclass(frozen=True)
class BreakpointGrid:
    """Per-subject sorted breakpoints and the position of observations and events on them.

    Attributes
    ----------
    times : numpy.ndarray, shape (subject, n_breakpoints)
        Sorted unique breakpoints; padded by repeating the last one.
    n_segments : numpy.ndarray of int, shape (subject,)
        Number of real segments (``breakpoints - 1``) per subject.
    obs_index : numpy.ndarray of int, shape (subject, n_obs)
        Breakpoint index of each observation (0 for padded observations).
    bolus_index : numpy.ndarray of int, shape (n_bolus,)
        Breakpoint at which each bolus is applied, -1 if it cannot affect any observation.
    infusion_event, infusion_segment : numpy.ndarray of int
        Pairs (event, segment) meaning that zero-order input ``event`` is active on ``segment``.
    """

    times: np.ndarray
    n_segments: np.ndarray
    obs_index: np.ndarray
    bolus_index: np.ndarray
    infusion_event: np.ndarray
    infusion_segment: np.ndarray

    @property
    def n_subjects(self) -> int:
        """Number of subjects."""
        return self.times.shape[0]

    @property
    def max_segments(self) -> int:
        """Padded number of segments (at least 1)."""
        return max(self.times.shape[1] - 1, 1)


def _subject_breakpoints(
    t0: float, obs: np.ndarray, bolus_times: np.ndarray, infusion_times: np.ndarray
) -> np.ndarray:
    t_end = obs.max() if obs.size else t0
    candidates = np.concatenate([[t0], obs, bolus_times, infusion_times])
    candidates = candidates[np.isfinite(candidates) & (candidates <= t_end)]
    return np.unique(candidates)


def _check_inputs(
    obs_times: np.ndarray, obs_mask: np.ndarray, t0: np.ndarray, events: Events
) -> None:
    if obs_times.ndim != 2:
        raise ValueError("obs_times must have shape (subject, n_obs)")
    if obs_mask.shape != obs_times.shape:
        raise ValueError("obs_mask must have the shape of obs_times")
    if not np.all(np.isfinite(obs_times[obs_mask])):
        raise ValueError("observed times must be finite")
    if np.any(obs_times[obs_mask] < np.broadcast_to(t0[:, None], obs_times.shape)[obs_mask]):
        raise ValueError("observation times must be >= t0")
    if events.n_subjects != obs_times.shape[0]:
        raise ValueError(
            f"events are for {events.n_subjects} subjects, data for {obs_times.shape[0]}"
        )
    if np.any(events.bolus_time < t0[events.bolus_subject]):
        raise ValueError("bolus times must be >= t0")
    if np.any(events.infusion_start < t0[events.infusion_subject]):
        raise ValueError("infusion starts must be >= t0")


def build_breakpoints(
    obs_times: np.ndarray, obs_mask: np.ndarray, t0: np.ndarray, events: Events
) -> BreakpointGrid:
    """Merge observation and event times into per-subject breakpoints.

    Parameters
    ----------
    obs_times : numpy.ndarray, shape (subject, n_obs)
        Observation times (padded entries arbitrary).
    obs_mask : numpy.ndarray of bool, shape (subject, n_obs)
        True for real observations.
    t0 : numpy.ndarray, shape (subject,)
        Initial time of each subject.
    events : Events
        Dosing events.

    Returns
    -------
    BreakpointGrid
    """
    _check_inputs(obs_times, obs_mask, t0, events)
    n_subjects = obs_times.shape[0]
    per_subject = []
    for s in range(n_subjects):
        inf = events.infusion_subject == s
        per_subject.append(
            _subject_breakpoints(
                t0[s],
                obs_times[s, obs_mask[s]],
                events.bolus_time[events.bolus_subject == s],
                np.concatenate([events.infusion_start[inf], events.infusion_stop[inf]]),
            )
        )
    n_points = max(max(len(p) for p in per_subject), 2)
    times = np.stack([np.pad(p, (0, n_points - len(p)), mode="edge") for p in per_subject])
    n_segments = np.array([len(p) - 1 for p in per_subject], dtype=np.int64)

    obs_index = np.zeros(obs_times.shape, dtype=np.int64)
    for s, points in enumerate(per_subject):
        obs_index[s, obs_mask[s]] = np.searchsorted(points, obs_times[s, obs_mask[s]])

    bolus_index = np.full(events.n_bolus, -1, dtype=np.int64)
    for e, (s, t) in enumerate(zip(events.bolus_subject, events.bolus_time, strict=True)):
        k = int(np.searchsorted(per_subject[s], t))
        if k < n_segments[s]:  # a dose at or after the last breakpoint changes nothing
            bolus_index[e] = k

    pairs = [
        (e, k)
        for e, (s, start, stop) in enumerate(
            zip(events.infusion_subject, events.infusion_start, events.infusion_stop, strict=True)
        )
        for k in range(n_segments[s])
        if start <= per_subject[s][k] and per_subject[s][k + 1] <= stop
    ]
    pair_array = np.array(pairs, dtype=np.int64).reshape(-1, 2)
    return BreakpointGrid(
        times, n_segments, obs_index, bolus_index, pair_array[:, 0], pair_array[:, 1]
    )


@dataclass(frozen=True)
class FixedStepGrid:
    """Fixed sub-steps of every segment, flattened per subject and padded with empty steps.

    Attributes
    ----------
    step_time, step_size : numpy.ndarray, shape (n_steps, subject)
        Start time and length of each step (0 for padding steps).
    step_segment : numpy.ndarray of int, shape (n_steps, subject)
        Segment that each step belongs to.
    breakpoint_step : numpy.ndarray of int, shape (subject, n_breakpoints)
        Number of steps taken when a breakpoint is reached; the state after that many steps
        is the (pre-dose) state at the breakpoint.
    """

    step_time: np.ndarray
    step_size: np.ndarray
    step_segment: np.ndarray
    breakpoint_step: np.ndarray

    @property
    def n_steps(self) -> int:
        """Padded number of steps."""
        return self.step_size.shape[0]


def build_fixed_steps(grid: BreakpointGrid, max_step: float) -> FixedStepGrid:
    """Split every segment into ``ceil(length / max_step)`` equal sub-steps.

    Short segments thus get few steps, and every step length is ``<= max_step``.

    Parameters
    ----------
    grid : BreakpointGrid
        Segmentation from :func:`build_breakpoints`.
    max_step : float
        Largest allowed step length.

    Returns
    -------
    FixedStepGrid
    """
    if not max_step > 0:
        raise ValueError("step must be positive")
    lengths = np.diff(grid.times, axis=1)
    n_sub = np.where(lengths > 0, np.ceil(lengths / max_step - 1e-9), 0).astype(np.int64)
    n_sub = np.maximum(n_sub, (lengths > 0).astype(np.int64))
    breakpoint_step = np.concatenate(
        [np.zeros((grid.n_subjects, 1), dtype=np.int64), np.cumsum(n_sub, axis=1)], axis=1
    )
    n_steps = max(int(breakpoint_step[:, -1].max()), 1)
    step_time = np.zeros((n_steps, grid.n_subjects))
    step_size = np.zeros((n_steps, grid.n_subjects))
    step_segment = np.zeros((n_steps, grid.n_subjects), dtype=np.int64)
    for s in range(grid.n_subjects):
        seg = np.repeat(np.arange(lengths.shape[1]), n_sub[s])
        within = np.arange(seg.size) - breakpoint_step[s, seg]
        h = lengths[s, seg] / n_sub[s, seg]
        step_segment[: seg.size, s] = seg
        step_size[: seg.size, s] = h
        step_time[: seg.size, s] = grid.times[s, seg] + within * h
        step_time[seg.size :, s] = grid.times[s, -1]
    return FixedStepGrid(step_time, step_size, step_segment, breakpoint_step)
