"""Batched ODE solution at observation times: one graph, one scan, all subjects together."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pytensor
import pytensor.tensor as pt
from numpy.typing import ArrayLike
from pytensor.gradient import disconnected_grad
from pytensor.scan.utils import until
from pytensor.tensor.variable import TensorVariable

from bayes.ode.events import Events
from bayes.ode.grid import BreakpointGrid, build_breakpoints, build_fixed_steps
from bayes.ode.methods import RK4, AdaptiveMethod, Dopri5
from bayes.ode.system import ODESystem

__all__ = ["solve"]


StateTables = dict[int, TensorVariable]


@dataclass(frozen=True)
class _Problem:
    """Everything the drivers need, with symbolic event tables placed on the breakpoints.

    ``bolus_tables[i]`` (shape ``(subject, n_breakpoints)``) holds the dose added to state ``i``
    at each breakpoint and ``input_tables[i]`` (shape ``(subject, n_segments)``) the zero-order
    input rate into state ``i`` on each segment; states without events have no table.
    """

    system: ODESystem
    parameter_columns: list[TensorVariable]
    y0: list[TensorVariable]
    grid: BreakpointGrid
    bolus_tables: StateTables
    input_tables: StateTables

    @property
    def n_subjects(self) -> int:
        return self.grid.n_subjects

    def rhs(self, inputs: StateTables, parameter_columns: list[TensorVariable]):
        """Batched right-hand side with the zero-order inputs (per state) added."""

        def f(t: TensorVariable, y: list[TensorVariable]) -> list[TensorVariable]:
            dydt = self.system.derivatives(t, y, parameter_columns)
            return [d + inputs[i] if i in inputs else d for i, d in enumerate(dydt)]

        return f


def _state_tables(
    system: ODESystem,
    shape: tuple[int, int],
    subjects: np.ndarray,
    positions: np.ndarray,
    state_names: list[str],
    values: TensorVariable,
) -> StateTables:
    """Scatter event values into one ``shape`` table per targeted state."""
    states = np.array([system.state_index(name) for name in state_names], dtype=np.int64)
    tables = {}
    for state in np.unique(states):
        chosen = np.flatnonzero(states == state)
        table = pt.zeros(shape)
        index = (subjects[chosen], positions[chosen])
        tables[int(state)] = pt.inc_subtensor(table[index], values[chosen])
    return tables


def _bolus_tables(system: ODESystem, events: Events, grid: BreakpointGrid) -> StateTables:
    keep = np.flatnonzero(grid.bolus_index >= 0)
    return _state_tables(
        system,
        grid.times.shape,
        events.bolus_subject[keep],
        grid.bolus_index[keep],
        [events.bolus_state[e] for e in keep],
        events.bolus_amount[keep],
    )


def _input_tables(system: ODESystem, events: Events, grid: BreakpointGrid) -> StateTables:
    event = grid.infusion_event
    return _state_tables(
        system,
        (grid.n_subjects, grid.max_segments),
        events.infusion_subject[event],
        grid.infusion_segment,
        [events.infusion_state[e] for e in event],
        events.infusion_rate[event],
    )


def _solve_fixed(problem: _Problem, method: RK4) -> list[TensorVariable]:
    """Fixed-step driver: one scan over the flattened, padded sub-steps of all segments.

    Returns one ``(subject, n_obs)`` tensor per state.
    """
    grid = problem.grid
    steps = build_fixed_steps(grid, method.step)
    subject_row = np.arange(problem.n_subjects)[None, :]
    # Step at which each breakpoint's dose is given: the step that starts at that breakpoint.
    point_step = np.minimum(steps.breakpoint_step, steps.n_steps - 1)
    point_subject = np.broadcast_to(np.arange(problem.n_subjects)[:, None], point_step.shape)
    bolus_states = sorted(problem.bolus_tables)
    input_states = sorted(problem.input_tables)
    sequences = [pt.as_tensor_variable(steps.step_time), pt.as_tensor_variable(steps.step_size)]
    for i in bolus_states:
        table = pt.zeros((steps.n_steps, problem.n_subjects))
        sequences.append(
            pt.inc_subtensor(table[point_step, point_subject], problem.bolus_tables[i])
        )
    for i in input_states:
        sequences.append(problem.input_tables[i][subject_row, steps.step_segment])
    n_states = problem.system.n_states

    def one_step(t, h, *args):
        doses = dict(zip(bolus_states, args[: len(bolus_states)], strict=True))
        args = args[len(bolus_states) :]
        inputs = dict(zip(input_states, args[: len(input_states)], strict=True))
        args = args[len(input_states) :]
        y, parameter_columns = list(args[:n_states]), list(args[n_states:])
        y = [y_i + doses[i] if i in doses else y_i for i, y_i in enumerate(y)]
        return method.advance(problem.rhs(inputs, parameter_columns), t, y, h)

    ys = pytensor.scan(
        one_step,
        sequences=sequences,
        outputs_info=problem.y0,
        non_sequences=problem.parameter_columns,
        return_updates=False,
        return_list=True,
        name="ode_fixed_step",
    )
    rows = np.take_along_axis(steps.breakpoint_step, grid.obs_index, axis=1)
    subject_col = np.arange(problem.n_subjects)[:, None]
    return [
        pt.concatenate([y0_i[None], y_i], axis=0)[rows, subject_col]
        for y0_i, y_i in zip(problem.y0, ys, strict=True)
    ]


def _rms(values: list[TensorVariable]) -> TensorVariable:
    total = pt.sqr(values[0])
    for v in values[1:]:
        total = total + pt.sqr(v)
    return pt.sqrt(total / len(values))


def _atol(method: AdaptiveMethod, n_states: int) -> list[float]:
    return [float(a) for a in np.broadcast_to(np.asarray(method.atol, float), (n_states,))]


def _initial_step(problem: _Problem, method: AdaptiveMethod, y_start) -> TensorVariable:
    """Hairer-Wanner style first step ``0.01 |y0| / |f(t0, y0)|`` (in tolerance-scaled norms)."""
    t_start = pt.as_tensor_variable(problem.grid.times[:, 0])
    if method.first_step is not None:
        return pt.full_like(t_start, min(method.first_step, method.max_step))
    inputs = {i: table[:, 0] for i, table in problem.input_tables.items()}
    f0 = problem.rhs(inputs, problem.parameter_columns)(t_start, y_start)
    atol = _atol(method, len(y_start))
    scale = [a + method.rtol * pt.abs(y_i) for a, y_i in zip(atol, y_start, strict=True)]
    d0 = _rms([y_i / s for y_i, s in zip(y_start, scale, strict=True)])
    d1 = _rms([f_i / s for f_i, s in zip(f0, scale, strict=True)])
    h0 = pt.switch(pt.lt(d0, 1e-5) | pt.lt(d1, 1e-5), 1e-6, 0.01 * d0 / d1)
    return disconnected_grad(pt.minimum(h0, method.max_step))


def _step_factor(method: AdaptiveMethod, err_norm: TensorVariable, accepted) -> TensorVariable:
    raw = method.safety * pt.power(pt.maximum(err_norm, 1e-10), -method.error_exponent)
    factor = pt.clip(raw, method.min_factor, method.max_factor)
    factor = pt.switch(pt.isnan(err_norm), method.min_factor, factor)
    return pt.switch(accepted, factor, pt.minimum(factor, 1.0))


def _dense_tables(problem: _Problem, tables: StateTables, shape: tuple[int, int]):
    """Stack per-state event tables into one ``shape + (n_states,)`` tensor (zeros elsewhere).

    Without any event the table is a numeric constant, so the compiled graph has no node for it.
    """
    if not tables:
        return pt.as_tensor_variable(np.zeros((*shape, problem.system.n_states)))
    columns = [
        tables[i] if i in tables else pt.zeros(shape) for i in range(problem.system.n_states)
    ]
    return pt.stack(columns, axis=-1)


def _at_observations(at_points: TensorVariable, obs_index: np.ndarray) -> TensorVariable:
    """Rows ``obs_index`` of ``(subject, breakpoint, state)`` states, by a slice when possible.

    When every subject observes the same consecutive breakpoints (the usual design) a basic
    slice replaces the gather, and its gradient is a slice update instead of a scatter.
    """
    first = obs_index[0]
    shared = bool(np.all(obs_index == first))
    if shared and first.size and np.all(np.diff(first) == 1):
        return at_points[:, int(first[0]) : int(first[-1]) + 1]
    if shared:
        return at_points[:, first]
    return at_points[np.arange(obs_index.shape[0])[:, None], obs_index]


def _solve_compiled(
    problem: _Problem,
    method: AdaptiveMethod,
    kernels,
    params: TensorVariable,
    y0: TensorVariable,
) -> TensorVariable:
    """Adaptive solve through the compiled Ops of :mod:`bayes.ode.compiled`.

    Returns the states at the observation times, shape ``(subject, n_obs, n_states)``.
    """
    from bayes.ode.compiled import adaptive_solve

    grid = problem.grid
    bolus = _dense_tables(problem, problem.bolus_tables, grid.times.shape)
    rates = _dense_tables(problem, problem.input_tables, (problem.n_subjects, grid.max_segments))
    y_start = [
        y_i + problem.bolus_tables[i][:, 0] if i in problem.bolus_tables else y_i
        for i, y_i in enumerate(problem.y0)
    ]
    h0 = _initial_step(problem, method, y_start)
    at_points = adaptive_solve(kernels, grid, method, params, y0, bolus, rates, h0)
    return _at_observations(at_points, grid.obs_index)


def _compiled_kernels(problem: _Problem, method: AdaptiveMethod):
    """Step kernels for the compiled path, or ``None`` when the scan path must be used."""
    if method.engine == "scan":
        return None
    from bayes.ode.compiled import UnsupportedSystemError, build_step_kernels

    try:
        return build_step_kernels(problem.system, method, problem.n_subjects)
    except UnsupportedSystemError:
        if method.engine == "compiled":
            raise
        return None


def _solve_adaptive(problem: _Problem, method: AdaptiveMethod) -> list[TensorVariable]:
    """Error-controlled driver: per-subject step sizes inside one while-scan.

    Returns one ``(subject, n_obs)`` tensor per state (NaN where ``max_steps`` was too small).
    """
    grid = problem.grid
    n_subjects, n_states = problem.n_subjects, problem.system.n_states
    last_segment = grid.max_segments
    subjects = np.arange(n_subjects)
    breakpoints = pt.as_tensor_variable(grid.times)
    n_segments = pt.as_tensor_variable(grid.n_segments)
    y_start = [
        y_i + problem.bolus_tables[i][:, 0] if i in problem.bolus_tables else y_i
        for i, y_i in enumerate(problem.y0)
    ]
    h0 = _initial_step(problem, method, y_start)
    # sensitivity_control: a tangent carried after the states that only steers step sizes
    n_tangent = n_states if method.sensitivity_control else 0
    v_start = [pt.full((n_subjects,), v0) for v0 in method.tangent_seed(n_states)[:n_tangent]]

    def one_attempt(t, h, segment, *args):
        y = list(args[:n_states])
        v = list(args[n_states : n_states + n_tangent])
        parameter_columns = list(args[n_states + n_tangent :])
        next_point = pt.minimum(segment + 1, last_segment)
        t_end = breakpoints[subjects, next_point]
        remaining = t_end - t
        active = pt.lt(segment, n_segments)
        to_end = pt.ge(1.01 * h, remaining)
        h_try = pt.switch(active, pt.switch(to_end, remaining, h), 0.0)
        current = pt.minimum(segment, last_segment - 1)
        inputs = {i: table[subjects, current] for i, table in problem.input_tables.items()}
        rhs = problem.rhs(inputs, parameter_columns)
        if n_tangent:
            y_new, error, v_new, v_error = method.attempt_with_tangent(rhs, t, y, v, h_try)
            err_norm = pt.maximum(
                method.error_norm(error, y, y_new), method.error_norm(v_error, v, v_new)
            )
        else:
            y_new, error = method.attempt(rhs, t, y, h_try)
            err_norm = method.error_norm(error, y, y_new)
        err_norm = disconnected_grad(err_norm)
        ok = pt.le(err_norm, 1.0)
        reached = ok & to_end & active
        keep_new = ok | ~active
        y_accepted = [pt.switch(keep_new, y_n, y_i) for y_n, y_i in zip(y_new, y, strict=True)]
        v_next = (
            [
                disconnected_grad(pt.switch(keep_new, v_n, v_i))
                for v_n, v_i in zip(v_new, v, strict=True)
            ]
            if n_tangent
            else []
        )
        y_next = [
            y_a + pt.switch(reached, problem.bolus_tables[i][subjects, next_point], 0.0)
            if i in problem.bolus_tables
            else y_a
            for i, y_a in enumerate(y_accepted)
        ]
        t_next = pt.switch(reached, t_end, pt.switch(ok, t + h_try, t))
        h_next = h_try * _step_factor(method, err_norm, ok)
        h_next = pt.switch(reached, pt.maximum(h_next, h), h_next)
        h_next = disconnected_grad(pt.switch(active, pt.minimum(h_next, method.max_step), h))
        segment_next = segment + pt.cast(reached, "int64")
        hit = pt.switch(reached, segment + 1, -1)
        outputs = [t_next, h_next, segment_next, *y_next, *v_next, *y_accepted, hit]
        return outputs, until(pt.all(pt.ge(segment_next, n_segments)))

    t_init = pt.as_tensor_variable(grid.times[:, 0])
    segment_init = pt.zeros((n_subjects,), dtype="int64")
    outputs = pytensor.scan(
        one_attempt,
        outputs_info=[t_init, h0, segment_init, *y_start, *v_start, *([None] * (n_states + 1))],
        non_sequences=problem.parameter_columns,
        n_steps=method.max_steps,
        return_updates=False,
        return_list=True,
        name="ode_adaptive",
    )
    y_points, hits = outputs[3 + n_states + n_tangent : 3 + 2 * n_states + n_tangent], outputs[-1]
    hit_all = pt.concatenate([pt.zeros((1, n_subjects), dtype="int64"), hits], axis=0)
    match = pt.eq(hit_all[:, :, None], grid.obs_index[None])
    rows = pt.argmax(match, axis=0)
    found = pt.any(match, axis=0)
    subject_col = subjects[:, None]
    return [
        pt.switch(found, pt.concatenate([y0_i[None], y_i], axis=0)[rows, subject_col], np.nan)
        for y0_i, y_i in zip(problem.y0, y_points, strict=True)
    ]


def _as_float_tensor(value, shape: tuple[int, int], name: str) -> TensorVariable:
    tensor = pt.as_tensor_variable(value)
    if tensor.ndim != 2:
        raise ValueError(f"{name} must have shape {shape}, got ndim={tensor.ndim}")
    return pt.specify_shape(pt.cast(tensor, "float64"), shape)


def solve(
    system: ODESystem,
    params: TensorVariable | ArrayLike,
    y0: TensorVariable | ArrayLike,
    obs_times: ArrayLike,
    obs_mask: ArrayLike | None = None,
    events: Events | None = None,
    method: RK4 | AdaptiveMethod | None = None,
    t0: float | ArrayLike = 0.0,
) -> TensorVariable:
    """Solve an ODE system for a batch of subjects and return the states at observation times.

    All subjects are integrated together (state arrays ``(subject, state)``) in a single
    ``pytensor.scan``; each subject's time axis is cut at its observation and event times so
    bolus jumps and input switches are exact.

    Parameters
    ----------
    system : ODESystem
        States, parameters and right-hand side.
    params : TensorVariable or array_like, shape (subject, n_parameters)
        Parameters, columns in ``system.parameters`` order.
    y0 : TensorVariable or array_like, shape (subject, n_states)
        States at ``t0`` (before any dose given at ``t0``).
    obs_times : array_like, shape (subject, n_obs)
        Observation times (numeric, padded for ragged schedules); need not be sorted.
    obs_mask : array_like of bool, shape (subject, n_obs), optional
        True for real observations; padded entries are returned as ``y0`` (finite, meaningless).
    events : Events, optional
        Bolus doses and zero-order inputs.
    method : RK4, Dopri5 or Rosenbrock, optional
        Integration method; default ``Dopri5()``.
    t0 : float or array_like, shape (subject,)
        Initial time, common or per subject.

    Returns
    -------
    TensorVariable, shape (subject, n_obs, n_states)
        States at the observation times. An observation at a dose time sees the pre-dose
        value. With an adaptive method, outputs are NaN if ``max_steps`` was exhausted.
    """
    obs_times = np.asarray(obs_times, dtype=np.float64)
    if obs_times.ndim != 2:
        raise ValueError("obs_times must have shape (subject, n_obs)")
    n_subjects = obs_times.shape[0]
    obs_mask = (
        np.ones(obs_times.shape, dtype=bool) if obs_mask is None else np.asarray(obs_mask, bool)
    )
    t0_array = np.broadcast_to(np.asarray(t0, dtype=np.float64), (n_subjects,)).copy()
    events = Events.empty(n_subjects) if events is None else events
    method = Dopri5() if method is None else method

    params = _as_float_tensor(params, (n_subjects, system.n_parameters), "params")
    y0 = _as_float_tensor(y0, (n_subjects, system.n_states), "y0")
    grid = build_breakpoints(obs_times, obs_mask, t0_array, events)
    problem = _Problem(
        system=system,
        parameter_columns=[params[:, j] for j in range(system.n_parameters)],
        y0=[y0[:, i] for i in range(system.n_states)],
        grid=grid,
        bolus_tables=_bolus_tables(system, events, grid),
        input_tables=_input_tables(system, events, grid),
    )
    if isinstance(method, RK4):
        columns = _solve_fixed(problem, method)
    elif isinstance(method, AdaptiveMethod):
        kernels = _compiled_kernels(problem, method)
        if kernels is not None:
            return _solve_compiled(problem, method, kernels, params, y0)
        columns = _solve_adaptive(problem, method)
    else:
        raise TypeError(f"unknown method {method!r}")
    return pt.stack(columns, axis=-1)
