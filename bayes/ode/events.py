"""Dosing events: bolus doses and zero-order (constant-rate) inputs, batched over subjects.

Event *times* are numeric data known when the graph is built; event *amounts* and *rates* may
be symbolic PyTensor tensors (e.g. ``dose * bioavailability[subject_idx]``), so gradients flow
through them.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import pytensor.tensor as pt
from numpy.typing import ArrayLike
from pytensor.tensor.variable import TensorVariable

__all__ = ["Events"]


def _as_names(state_names: str | Sequence[str], n_events: int) -> tuple[str, ...]:
    if isinstance(state_names, str):
        return (state_names,) * n_events
    names = tuple(state_names)
    if len(names) != n_events:
        raise ValueError(f"got {len(names)} state names for {n_events} events")
    return names


def _as_subjects(subject_idx: ArrayLike, n_subjects: int) -> np.ndarray:
    idx = np.atleast_1d(np.asarray(subject_idx))
    if idx.ndim != 1 or not np.issubdtype(idx.dtype, np.integer):
        raise ValueError("subject_idx must be a 1-d integer array")
    if idx.size and (idx.min() < 0 or idx.max() >= n_subjects):
        raise ValueError(f"subject_idx must lie in [0, {n_subjects})")
    return idx.astype(np.int64)


def _as_times(times: ArrayLike, n_events: int, what: str) -> np.ndarray:
    arr = np.broadcast_to(np.asarray(times, dtype=np.float64), (n_events,)).copy()
    if not np.all(np.isfinite(arr)):
        raise ValueError(f"{what} must be finite")
    return arr


def _as_values(values: ArrayLike | TensorVariable, n_events: int) -> TensorVariable:
    tensor = pt.as_tensor_variable(values)
    if tensor.ndim > 1:
        raise ValueError("event amounts/rates must be a scalar or a 1-d tensor (one per event)")
    tensor = pt.cast(tensor, "float64")
    return pt.broadcast_to(tensor, (n_events,)) if tensor.ndim == 0 else tensor


@dataclass(frozen=True)
class Events:
    """Bolus doses and zero-order inputs for a batch of subjects, stored as flat event tables.

    Build instances with :meth:`bolus`, :meth:`infusion`, :meth:`combine` or :meth:`empty`
    rather than calling the constructor.

    Conventions
    -----------
    * A bolus at time ``t`` adds ``amount`` to the state at ``t``. An observation at the same
      time sees the **pre-dose** value (NONMEM convention for an observation record sorted
      before the dose record); the dose acts on every later time.
    * A zero-order input adds ``rate`` to ``d(state)/dt`` on ``[start, stop)``.
    * Events after a subject's last observation cannot change any output and are ignored.
      Events before ``t0`` are an error.

    Attributes
    ----------
    n_subjects : int
        Number of subjects in the batch.
    bolus_subject, bolus_time : numpy.ndarray
        Subject index and time of each bolus, shape ``(n_bolus,)``.
    bolus_state : tuple of str
        Target state of each bolus.
    bolus_amount : TensorVariable
        Amount of each bolus, shape ``(n_bolus,)``; may be symbolic.
    infusion_subject, infusion_start, infusion_stop : numpy.ndarray
        Subject index, start and stop time of each zero-order input, shape ``(n_infusion,)``.
    infusion_state : tuple of str
        Target state of each zero-order input.
    infusion_rate : TensorVariable
        Rate (amount per time) of each input, shape ``(n_infusion,)``; may be symbolic.
    """

    n_subjects: int
    bolus_subject: np.ndarray
    bolus_time: np.ndarray
    bolus_state: tuple[str, ...]
    bolus_amount: TensorVariable
    infusion_subject: np.ndarray
    infusion_start: np.ndarray
    infusion_stop: np.ndarray
    infusion_state: tuple[str, ...]
    infusion_rate: TensorVariable

    @classmethod
    def empty(cls, n_subjects: int) -> Events:
        """Return an event set without any event."""
        no_int = np.zeros(0, dtype=np.int64)
        no_float = np.zeros(0, dtype=np.float64)
        no_value = pt.as_tensor_variable(no_float)
        return cls(
            n_subjects, no_int, no_float, (), no_value, no_int, no_float, no_float, (), no_value
        )

    @classmethod
    def bolus(
        cls,
        subject_idx: ArrayLike,
        times: ArrayLike,
        state_names: str | Sequence[str],
        amounts: ArrayLike | TensorVariable,
        n_subjects: int,
    ) -> Events:
        """Create bolus doses.

        Parameters
        ----------
        subject_idx : array_like of int, shape (n_bolus,)
            Subject (row of ``params``/``y0``) receiving each dose.
        times : array_like of float, shape (n_bolus,) or scalar
            Dose times.
        state_names : str or sequence of str
            Target state of each dose (one name for all, or one per dose).
        amounts : array_like or TensorVariable, shape (n_bolus,) or scalar
            Dose amounts; may be symbolic, e.g. ``dose * F[subject_idx]``.
        n_subjects : int
            Number of subjects in the batch.

        Returns
        -------
        Events
        """
        subjects = _as_subjects(subject_idx, n_subjects)
        n_events = subjects.size
        empty = cls.empty(n_subjects)
        return cls(
            n_subjects,
            subjects,
            _as_times(times, n_events, "bolus times"),
            _as_names(state_names, n_events),
            _as_values(amounts, n_events),
            empty.infusion_subject,
            empty.infusion_start,
            empty.infusion_stop,
            (),
            empty.infusion_rate,
        )

    @classmethod
    def infusion(
        cls,
        subject_idx: ArrayLike,
        starts: ArrayLike,
        stops: ArrayLike,
        state_names: str | Sequence[str],
        rates: ArrayLike | TensorVariable,
        n_subjects: int,
    ) -> Events:
        """Create zero-order inputs (constant rate on ``[start, stop)``).

        Parameters
        ----------
        subject_idx : array_like of int, shape (n_infusion,)
            Subject receiving each input.
        starts, stops : array_like of float, shape (n_infusion,) or scalar
            Start and stop times, ``stop >= start``; ``stop`` may be ``numpy.inf``.
        state_names : str or sequence of str
            Target state of each input.
        rates : array_like or TensorVariable, shape (n_infusion,) or scalar
            Input rates (amount per time unit); may be symbolic.
        n_subjects : int
            Number of subjects in the batch.

        Returns
        -------
        Events
        """
        subjects = _as_subjects(subject_idx, n_subjects)
        n_events = subjects.size
        start = _as_times(starts, n_events, "infusion starts")
        stop = np.broadcast_to(np.asarray(stops, dtype=np.float64), (n_events,)).copy()
        if np.any(np.isnan(stop)) or np.any(stop < start):
            raise ValueError("infusion stops must be >= starts")
        empty = cls.empty(n_subjects)
        return cls(
            n_subjects,
            empty.bolus_subject,
            empty.bolus_time,
            (),
            empty.bolus_amount,
            subjects,
            start,
            stop,
            _as_names(state_names, n_events),
            _as_values(rates, n_events),
        )

    @classmethod
    def combine(cls, *events: Events) -> Events:
        """Concatenate several event sets for the same batch of subjects."""
        if not events:
            raise ValueError("combine needs at least one Events object")
        n_subjects = events[0].n_subjects
        if any(e.n_subjects != n_subjects for e in events):
            raise ValueError("all Events must have the same n_subjects")

        def cat_values(values: list[TensorVariable]) -> TensorVariable:
            return pt.concatenate(values) if len(values) > 1 else values[0]

        return cls(
            n_subjects,
            np.concatenate([e.bolus_subject for e in events]),
            np.concatenate([e.bolus_time for e in events]),
            sum((e.bolus_state for e in events), ()),
            cat_values([e.bolus_amount for e in events]),
            np.concatenate([e.infusion_subject for e in events]),
            np.concatenate([e.infusion_start for e in events]),
            np.concatenate([e.infusion_stop for e in events]),
            sum((e.infusion_state for e in events), ()),
            cat_values([e.infusion_rate for e in events]),
        )

    @property
    def n_bolus(self) -> int:
        """Number of bolus events."""
        return int(self.bolus_subject.size)

    @property
    def n_infusion(self) -> int:
        """Number of zero-order input events."""
        return int(self.infusion_subject.size)
