"""Compiled adaptive driver: the whole error-controlled solve as one Op with a discrete adjoint.

The while-scan of :func:`bayes.ode.solve._solve_adaptive` is exact but slow to differentiate:
PyTensor's scan gradient stores every attempt, runs a generic backward scan and gathers the
observations out of an ``(attempt, subject, observation)`` table. Here the same algorithm
(same controller, same per-subject steps, same breakpoints) runs as two small numba loops:

* :class:`AdaptiveSolveOp` integrates all subjects forward and records, for every attempt,
  the start state, time and accepted step (0 when rejected or finished);
* :class:`AdaptiveAdjointOp` walks that record backwards and applies the vector-Jacobian
  product of one Runge-Kutta step per attempt (the *discrete adjoint*): the exact gradient of
  the numerical solution with the step sequence held fixed, as the scan path computes it.

Only the parts that depend on the model are PyTensor graphs, compiled once per model with the
numba back-end and fused into a few loops over subjects: one step ``(t, h, y, p, u) ->
(y_new, error_norm)`` and its vector-Jacobian product ``(t, h, y, p, u, lam) -> (lam^T dy_new/dy,
lam^T dy_new/dp, lam^T dy_new/du)``, obtained by PyTensor autodiff of the step graph. The
drivers are plain numba functions, so the Ops run unchanged in the C (``perform``) and numba
back-ends. Cost is linear in the number of subjects and in the number of attempts.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable
from functools import lru_cache

import numba
import numpy as np
import pytensor
import pytensor.tensor as pt
from pytensor.compile.mode import Mode
from pytensor.gradient import DisconnectedType
from pytensor.graph.basic import Apply, Constant
from pytensor.graph.op import Op
from pytensor.graph.traversal import graph_inputs
from pytensor.link.numba.dispatch import numba_funcify
from pytensor.tensor.variable import TensorVariable

from bayes.ode.methods import AdaptiveMethod
from bayes.ode.system import ODESystem

__all__ = ["AdaptiveAdjointOp", "AdaptiveSolveOp", "StepKernels", "build_step_kernels"]

_KERNEL_MODE = Mode(linker="numba", optimizer="fast_run")


class UnsupportedSystemError(ValueError):
    """The right-hand side depends on symbolic inputs other than states, parameters and time."""


class StepKernels:
    """Numba-compiled step and step-VJP of one adaptive method for one system and batch size.

    Attributes
    ----------
    step : callable
        ``step(t, h, y, p, u) -> (y_new, error_norm)`` with ``t, h`` of shape ``(S,)``, ``y, u``
        ``(S, N)`` (``u`` the zero-order input rates) and ``p`` ``(S, P)``.
    step_vjp : callable
        ``step_vjp(t, h, y, p, u, lam) -> (lam_y, lam_p, lam_u)``: ``lam`` contracted with the
        Jacobians of ``y_new`` with respect to ``y``, ``p`` and ``u``.
    """

    def __init__(self, step: Callable, step_vjp: Callable, n_states: int) -> None:
        self.step = step
        self.step_vjp = step_vjp
        self.n_states = n_states


def _free_inputs(outputs: list[TensorVariable], allowed: list[TensorVariable]) -> list:
    allowed_ids = {id(v) for v in allowed}
    return [
        v for v in graph_inputs(outputs) if id(v) not in allowed_ids and not isinstance(v, Constant)
    ]


@lru_cache(maxsize=32)
def build_step_kernels(system: ODESystem, method: AdaptiveMethod, n_subjects: int) -> StepKernels:
    """Compile the step and its vector-Jacobian product for ``system`` and ``method``.

    Raises
    ------
    UnsupportedSystemError
        If the right-hand side uses symbolic variables that are not states, parameters or
        time (e.g. a model tensor captured in a closure); such systems need the scan path.
    """
    s, n, n_p = n_subjects, system.n_states, system.n_parameters
    t = pt.tensor("t", shape=(s,), dtype="float64")
    h = pt.tensor("h", shape=(s,), dtype="float64")
    y = pt.tensor("y", shape=(s, n), dtype="float64")
    p = pt.tensor("p", shape=(s, n_p), dtype="float64")
    u = pt.tensor("u", shape=(s, n), dtype="float64")
    lam = pt.tensor("lam", shape=(s, n), dtype="float64")
    p_columns = [p[:, j] for j in range(n_p)]

    def rhs(time, states):
        dydt = system.derivatives(time, states, p_columns)
        return [d + u[:, i] for i, d in enumerate(dydt)]

    y_columns = [y[:, i] for i in range(n)]
    new_columns, error = method.attempt(rhs, t, y_columns, h)
    atol = np.broadcast_to(np.asarray(method.atol, float), (n,))
    scaled = [
        e / (float(a) + method.rtol * pt.maximum(pt.abs(y_i), pt.abs(y_n)))
        for e, a, y_i, y_n in zip(error, atol, y_columns, new_columns, strict=True)
    ]
    err_norm = pt.sqrt(sum(pt.sqr(v) for v in scaled) / n)
    y_new = pt.stack(new_columns, axis=1)
    free = _free_inputs([y_new, err_norm], [t, h, y, p, u])
    if free:
        raise UnsupportedSystemError(
            f"the right-hand side depends on symbolic inputs {free} other than time, states "
            "and parameters; pass them as parameters"
        )
    step = pytensor.function([t, h, y, p, u], [y_new, err_norm], mode=_KERNEL_MODE)
    grads = pt.grad(
        pt.sum(lam * y_new), [y, p, u], disconnected_inputs="ignore", return_disconnected="zero"
    )
    step_vjp = pytensor.function([t, h, y, p, u, lam], grads, mode=_KERNEL_MODE)
    return StepKernels(step.vm.jit_fn, step_vjp.vm.jit_fn, n)


# ----------------------------------------------------------------------------- drivers


def _make_forward(step: Callable) -> Callable:
    @numba.njit(cache=False)
    def forward(
        params, y0, bolus, inputs, h0, times, n_segments, atol, settings, max_steps
    ):  # pragma: no cover - compiled
        rtol, safety, min_factor, max_factor, exponent, max_step = settings
        n_subjects, n_points, n_states = bolus.shape
        last_segment = max(n_points - 1, 1)
        y = y0 + bolus[:, 0, :]
        t = times[:, 0].copy()
        h = h0.copy()
        segment = np.zeros(n_subjects, np.int64)
        states = np.zeros((n_subjects, n_points, n_states))
        reached_all = np.zeros((n_subjects, n_points), np.bool_)
        states[:, 0, :] = y0
        reached_all[:, 0] = True
        record_y = np.empty((max_steps, n_subjects, n_states))
        record_t = np.empty((max_steps, n_subjects))
        record_h = np.zeros((max_steps, n_subjects))
        record_segment = np.zeros((max_steps, n_subjects), np.int64)
        record_reached = np.full((max_steps, n_subjects), -1, np.int64)
        h_try = np.zeros(n_subjects)
        t_end = np.zeros(n_subjects)
        u = np.zeros((n_subjects, n_states))
        n_attempts = 0
        for attempt in range(max_steps):
            done = True
            for s in range(n_subjects):
                if segment[s] < n_segments[s]:
                    done = False
            if done:
                break
            n_attempts = attempt + 1
            for s in range(n_subjects):
                current = min(segment[s], last_segment - 1)
                t_end[s] = times[s, min(segment[s] + 1, last_segment)]
                u[s, :] = inputs[s, current, :]
                if segment[s] < n_segments[s]:
                    remaining = t_end[s] - t[s]
                    h_try[s] = remaining if 1.01 * h[s] >= remaining else h[s]
                else:
                    h_try[s] = 0.0
            y_new, err_norm = step(t, h_try, y, params, u)
            record_y[attempt] = y
            record_t[attempt] = t
            record_segment[attempt] = np.minimum(segment, last_segment - 1)
            for s in range(n_subjects):
                if segment[s] >= n_segments[s]:
                    continue
                err = err_norm[s]
                ok = err <= 1.0
                remaining = t_end[s] - t[s]
                to_end = 1.01 * h[s] >= remaining
                if np.isnan(err):
                    factor = min_factor
                else:
                    raw = safety * max(err, 1e-10) ** (-exponent)
                    factor = min(max(raw, min_factor), max_factor)
                if not ok:
                    factor = min(factor, 1.0)
                h_next = h_try[s] * factor
                if ok:
                    record_h[attempt, s] = h_try[s]
                    y[s, :] = y_new[s, :]
                    if to_end:
                        point = segment[s] + 1
                        states[s, point, :] = y[s, :]
                        reached_all[s, point] = True
                        record_reached[attempt, s] = point
                        y[s, :] += bolus[s, point, :]
                        t[s] = t_end[s]
                        segment[s] = point
                        h_next = max(h_next, h[s])
                    else:
                        t[s] = t[s] + h_try[s]
                h[s] = min(h_next, max_step)
        for s in range(n_subjects):
            for k in range(n_points):
                if k <= n_segments[s] and not reached_all[s, k]:
                    states[s, k, :] = np.nan
        return (
            states,
            record_y[:n_attempts].copy(),
            record_t[:n_attempts].copy(),
            record_h[:n_attempts].copy(),
            record_segment[:n_attempts].copy(),
            record_reached[:n_attempts].copy(),
        )

    return forward


def _make_adjoint(step_vjp: Callable) -> Callable:
    @numba.njit(cache=False)
    def adjoint(
        params,
        bolus,
        inputs,
        record_y,
        record_t,
        record_h,
        record_segment,
        record_reached,
        state_cotangent,
    ):  # pragma: no cover - compiled
        n_subjects, n_points, n_states = bolus.shape
        n_segments_max = inputs.shape[1]
        lam = np.zeros((n_subjects, n_states))
        grad_params = np.zeros(params.shape)
        grad_bolus = np.zeros(bolus.shape)
        grad_inputs = np.zeros(inputs.shape)
        u = np.zeros((n_subjects, n_states))
        for attempt in range(record_y.shape[0] - 1, -1, -1):
            any_step = False
            for s in range(n_subjects):
                point = record_reached[attempt, s]
                if point >= 0:
                    grad_bolus[s, point, :] = lam[s, :]
                    lam[s, :] += state_cotangent[s, point, :]
                if record_h[attempt, s] > 0.0:
                    any_step = True
                u[s, :] = inputs[s, record_segment[attempt, s], :]
            if not any_step:
                continue
            lam_y, lam_p, lam_u = step_vjp(
                record_t[attempt], record_h[attempt], record_y[attempt], params, u, lam
            )
            for s in range(n_subjects):
                if record_h[attempt, s] > 0.0:
                    lam[s, :] = lam_y[s, :]
                    grad_params[s, :] += lam_p[s, :]
                    segment = record_segment[attempt, s]
                    if segment < n_segments_max:
                        grad_inputs[s, segment, :] += lam_u[s, :]
        grad_bolus[:, 0, :] = lam
        grad_y0 = lam + state_cotangent[:, 0, :]
        return grad_params, grad_y0, grad_bolus, grad_inputs

    return adjoint


@lru_cache(maxsize=64)
def _drivers(kernels: StepKernels) -> tuple[Callable, Callable]:
    return _make_forward(kernels.step), _make_adjoint(kernels.step_vjp)


# ----------------------------------------------------------------------------- Ops


class AdaptiveSolveOp(Op):
    """Forward adaptive solve: states at every breakpoint plus the attempt record.

    Inputs: ``params (S, P)``, ``y0 (S, N)``, ``bolus (S, B, N)`` (dose added at each
    breakpoint), ``inputs (S, B - 1, N)`` (zero-order rate on each segment), ``h0 (S,)``.
    Outputs: ``states (S, B, N)`` (pre-dose state at each breakpoint, NaN if not reached),
    then the attempt record ``y (A, S, N)``, ``t (A, S)``, ``h (A, S)``, ``segment (A, S)``,
    ``reached (A, S)`` consumed by :class:`AdaptiveAdjointOp`.
    """

    __props__ = ("kernels", "grid_key", "settings", "max_steps")

    def __init__(self, kernels: StepKernels, grid, method: AdaptiveMethod) -> None:
        self.kernels = kernels
        self.grid = grid
        self.grid_key = hashlib.sha256(
            grid.times.tobytes() + grid.n_segments.tobytes() + str(grid.times.shape).encode()
        ).hexdigest()
        self.settings = (
            float(method.rtol),
            float(method.safety),
            float(method.min_factor),
            float(method.max_factor),
            float(method.error_exponent),
            float(method.max_step),
        )
        self.atol = np.ascontiguousarray(
            np.broadcast_to(np.asarray(method.atol, float), (kernels.n_states,))
        )
        self.max_steps = int(method.max_steps)

    def make_node(self, params, y0, bolus, inputs, h0):
        inputs_ = [pt.as_tensor_variable(v) for v in (params, y0, bolus, inputs, h0)]
        outputs = [
            pt.tensor(dtype="float64", shape=(None, None, None)),
            pt.tensor(dtype="float64", shape=(None, None, None)),
            pt.dmatrix(),
            pt.dmatrix(),
            pt.lmatrix(),
            pt.lmatrix(),
        ]
        return Apply(self, inputs_, outputs)

    def _run(self, params, y0, bolus, inputs, h0):
        forward, _ = _drivers(self.kernels)
        return forward(
            params,
            y0,
            bolus,
            inputs,
            h0,
            self.grid.times,
            self.grid.n_segments,
            self.atol,
            self.settings,
            self.max_steps,
        )

    def perform(self, node, inputs, output_storage):
        for storage, value in zip(output_storage, self._run(*inputs), strict=True):
            storage[0] = value

    def pullback(self, inputs, outputs, output_grads):
        params, y0, bolus, rates, h0 = inputs
        cotangent = output_grads[0]
        if isinstance(cotangent.type, DisconnectedType):
            cotangent = pt.zeros_like(outputs[0])
        adjoint = AdaptiveAdjointOp(self.kernels)(params, bolus, rates, *outputs[1:], cotangent)
        grad_params, grad_y0, grad_bolus, grad_rates = adjoint
        return [grad_params, grad_y0, grad_bolus, grad_rates, DisconnectedType()()]

    def connection_pattern(self, node):
        return [[True] + [False] * 5] * 4 + [[False] * 6]


class AdaptiveAdjointOp(Op):
    """Discrete adjoint of :class:`AdaptiveSolveOp` (see the module docstring)."""

    __props__ = ("kernels",)

    def __init__(self, kernels: StepKernels) -> None:
        self.kernels = kernels

    def make_node(self, params, bolus, rates, rec_y, rec_t, rec_h, rec_segment, rec_reached, cot):
        inputs_ = [
            pt.as_tensor_variable(v)
            for v in (params, bolus, rates, rec_y, rec_t, rec_h, rec_segment, rec_reached, cot)
        ]
        outputs = [inputs_[0].type(), pt.dmatrix(), inputs_[1].type(), inputs_[2].type()]
        return Apply(self, inputs_, outputs)

    def perform(self, node, inputs, output_storage):
        _, adjoint = _drivers(self.kernels)
        for storage, value in zip(output_storage, adjoint(*inputs), strict=True):
            storage[0] = value


@numba_funcify.register(AdaptiveSolveOp)
def _numba_adaptive_solve(op, node=None, **kwargs):
    forward, _ = _drivers(op.kernels)
    times, n_segments = op.grid.times, op.grid.n_segments
    atol, settings, max_steps = op.atol, op.settings, op.max_steps

    @numba.njit
    def adaptive_solve(params, y0, bolus, inputs, h0):  # pragma: no cover - compiled
        return forward(params, y0, bolus, inputs, h0, times, n_segments, atol, settings, max_steps)

    return adaptive_solve


@numba_funcify.register(AdaptiveAdjointOp)
def _numba_adaptive_adjoint(op, node=None, **kwargs):
    _, adjoint = _drivers(op.kernels)
    return adjoint


def adaptive_solve(
    kernels: StepKernels,
    grid,
    method: AdaptiveMethod,
    params: TensorVariable,
    y0: TensorVariable,
    bolus: TensorVariable,
    rates: TensorVariable,
    h0: TensorVariable,
) -> TensorVariable:
    """States at every breakpoint, shape ``(S, B, N)``, through the compiled Ops."""
    return AdaptiveSolveOp(kernels, grid, method)(params, y0, bolus, rates, h0)[0]
