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
import inspect
import textwrap
from collections.abc import Callable
from functools import lru_cache, partial

import numba
import numpy as np
import pytensor
import pytensor.tensor as pt
from pytensor.compile.mode import Mode
from pytensor.gradient import DisconnectedType
from pytensor.graph.basic import Apply, Constant
from pytensor.graph.op import Op
from pytensor.graph.traversal import graph_inputs
from pytensor.link.numba.cache import compile_numba_function_src
from pytensor.link.numba.dispatch.basic import (
    numba_funcify_ensure_cache,
    register_funcify_and_cache_key,
)
from pytensor.tensor.variable import TensorVariable

from bayes.ode.grid import BreakpointGrid
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
        ``step(t, h, y, p, u) -> (y_new, error_norm)`` with ``t, h`` of shape ``(S,)``, ``y``
        ``(S, N + T)`` (the states, then the ``T`` tangent components, ``T = N`` with
        ``sensitivity_control`` and 0 otherwise), ``u`` ``(S, N)`` (the zero-order input
        rates) and ``p`` ``(S, P)``.
    step_vjp : callable
        ``step_vjp(t, h, y, p, u, lam) -> (lam_y, lam_p, lam_u)``: ``lam`` contracted with the
        Jacobians of ``y_new`` with respect to ``y``, ``p`` and ``u``.
    n_states : int
        Number of states.
    n_tangent : int
        Number of tangent components carried after the states (``N`` or 0).
    kind : {"scalar", "array"}
        ``"scalar"``: one scalar function per subject, generated from an elementwise
        right-hand side (no temporary arrays); ``"array"``: PyTensor graphs over the whole
        batch (any right-hand side, e.g. one that sums over an implant axis).
    key : str or None
        Cache key of the compiled kernels (None: not cacheable on disk).
    """

    def __init__(
        self,
        step: Callable,
        step_vjp: Callable,
        n_states: int,
        kind: str,
        key: str | None,
        n_tangent: int = 0,
    ) -> None:
        self.step = step
        self.step_vjp = step_vjp
        self.n_states = n_states
        self.n_tangent = n_tangent
        self.kind = kind
        self.key = key


def _free_inputs(outputs: list[TensorVariable], allowed: list[TensorVariable]) -> list:
    allowed_ids = {id(v) for v in allowed}
    return [
        v for v in graph_inputs(outputs) if id(v) not in allowed_ids and not isinstance(v, Constant)
    ]


def _step_graph(system, method, t, h, y_columns, p_columns, u_columns, v_columns=None):
    """One attempted step on per-state columns: ``(y_new columns, error norm, v_new columns)``.

    With ``v_columns`` (``method.sensitivity_control``) the tangent along ``v`` is stepped too
    and the error norm is the larger of the states' and the tangent's scaled RMS errors;
    otherwise ``v_new columns`` is empty.
    """

    def rhs(time, states):
        dydt = system.derivatives(time, states, p_columns)
        return [d + u_i for d, u_i in zip(dydt, u_columns, strict=True)]

    if v_columns is None:
        new_columns, error = method.attempt(rhs, t, list(y_columns), h)
        return new_columns, method.error_norm(error, y_columns, new_columns), []
    new_columns, error, v_new, v_error = method.attempt_with_tangent(
        rhs, t, list(y_columns), list(v_columns), h
    )
    err_norm = pt.maximum(
        method.error_norm(error, y_columns, new_columns),
        method.error_norm(v_error, v_columns, v_new),
    )
    return new_columns, err_norm, v_new


def _check_free(outputs, allowed) -> None:
    free = _free_inputs(outputs, allowed)
    if free:
        raise UnsupportedSystemError(
            f"the right-hand side depends on symbolic inputs {free} other than time, states "
            "and parameters; pass them as parameters"
        )


def _columns(matrix: TensorVariable, count: int, start: int = 0) -> list[TensorVariable]:
    """Columns ``start .. start + count - 1`` of a ``(subject, k)`` matrix."""
    return [matrix[:, start + i] for i in range(count)]


def _vector_kernels(system: ODESystem, method: AdaptiveMethod, n_subjects: int) -> StepKernels:
    """Kernels acting on whole ``(subject, ...)`` arrays (any right-hand side)."""
    s, n, n_p = n_subjects, system.n_states, system.n_parameters
    n_t = n if method.sensitivity_control else 0
    t = pt.tensor("t", shape=(s,), dtype="float64")
    h = pt.tensor("h", shape=(s,), dtype="float64")
    y = pt.tensor("y", shape=(s, n + n_t), dtype="float64")
    p = pt.tensor("p", shape=(s, n_p), dtype="float64")
    u = pt.tensor("u", shape=(s, n), dtype="float64")
    lam = pt.tensor("lam", shape=(s, n), dtype="float64")
    new_columns, err_norm, v_new = _step_graph(
        system,
        method,
        t,
        h,
        _columns(y, n),
        _columns(p, n_p),
        _columns(u, n),
        _columns(y, n, start=n) if n_t else None,
    )
    y_new = pt.stack([*new_columns, *v_new], axis=1)
    _check_free([y_new, err_norm], [t, h, y, p, u])
    step = pytensor.function([t, h, y, p, u], [y_new, err_norm], mode=_KERNEL_MODE)
    # The adjoint differentiates the states' step only: the tangent just steers step sizes.
    y_states, states_new = y, pt.stack(new_columns, axis=1)
    if n_t:
        y_states = pt.tensor("y_states", shape=(s, n), dtype="float64")
        plain_columns, _, _ = _step_graph(
            system, method, t, h, _columns(y_states, n), _columns(p, n_p), _columns(u, n)
        )
        states_new = pt.stack(plain_columns, axis=1)
    grads = pt.grad(
        pt.sum(lam * states_new),
        [y_states, p, u],
        disconnected_inputs="ignore",
        return_disconnected="zero",
    )
    step_vjp = pytensor.function([t, h, y_states, p, u, lam], grads, mode=_KERNEL_MODE)
    step_fn, step_key = numba_funcify_ensure_cache(step.maker.fgraph)
    vjp_fn, vjp_key = numba_funcify_ensure_cache(step_vjp.maker.fgraph)
    key = _derived_key("array", step_key, vjp_key)
    return StepKernels(step_fn, vjp_fn, n, "array", key, n_tangent=n_t)


def _to_scalar_graph(inputs, outputs):
    """Rewrite a graph of 0-d tensors made only of elementwise Ops as a scalar graph."""
    from pytensor import scalar as ps
    from pytensor.graph.fg import FunctionGraph
    from pytensor.tensor.elemwise import DimShuffle, Elemwise

    fgraph = FunctionGraph(inputs, outputs, clone=True)
    mapping = {v: ps.float64(v.name) for v in fgraph.inputs}
    for node in fgraph.toposort():
        args = []
        for var in node.inputs:
            if var not in mapping:
                if not isinstance(var, Constant) or var.data.size != 1:
                    raise UnsupportedSystemError(f"non-scalar input {var}")
                mapping[var] = ps.constant(var.data.item(), dtype=var.dtype)
            args.append(mapping[var])
        if isinstance(node.op, Elemwise):
            results = node.op.scalar_op.make_node(*args).outputs
        elif isinstance(node.op, DimShuffle) and node.outputs[0].ndim == 0:
            results = args
        else:
            raise UnsupportedSystemError(f"{node.op} is not elementwise")
        mapping.update(zip(node.outputs, results, strict=True))
    scalar_outputs = []
    for var in fgraph.outputs:
        if var not in mapping:  # an output that is an input or a constant
            mapping[var] = ps.constant(var.data.item(), dtype=var.dtype)
        scalar_outputs.append(ps.cast(mapping[var], "float64"))
    return FunctionGraph([mapping[v] for v in fgraph.inputs], scalar_outputs, clone=False)


def _scalar_function(inputs, outputs) -> tuple[Callable, str | None]:
    from pytensor.graph.rewriting.utils import rewrite_graph

    outputs = rewrite_graph(outputs, include=("canonicalize",))
    fgraph = _to_scalar_graph(inputs, outputs)
    return numba_funcify_ensure_cache(fgraph, fgraph_name="ode_scalar_kernel")


def _per_subject_wrapper(
    name: str, kernel: tuple[Callable, str | None], signature: str, body: str
) -> Callable:
    src = f"def {name}({signature}):\n{body}"
    key = _derived_key(name, _DRIVER_VERSION, src, kernel[1])
    return _jit_from_source(src, name, {"kernel": kernel[0]}, key)


def _scalar_kernels(system: ODESystem, method: AdaptiveMethod) -> StepKernels:
    """Kernels that loop over subjects calling one scalar function (elementwise systems).

    Raises :class:`UnsupportedSystemError` when the right-hand side is not elementwise
    (e.g. it sums over an implant axis); the caller then uses :func:`_vector_kernels`.
    """
    n, n_p = system.n_states, system.n_parameters
    n_t = n if method.sensitivity_control else 0
    scalar = partial(pt.tensor, dtype="float64", shape=())
    t, h = scalar(name="t"), scalar(name="h")
    y = [scalar(name=f"y{i}") for i in range(n)]
    v = [scalar(name=f"v{i}") for i in range(n_t)]
    p = [scalar(name=f"p{j}") for j in range(n_p)]
    u = [scalar(name=f"u{i}") for i in range(n)]
    lam = [scalar(name=f"lam{i}") for i in range(n)]
    try:
        new_columns, err_norm, v_new = _step_graph(
            system, method, t, h, y, p, u, v if n_t else None
        )
    except UnsupportedSystemError:
        raise
    except Exception as exc:  # noqa: BLE001 - any shape error means "not elementwise"
        raise UnsupportedSystemError(f"right-hand side is not elementwise: {exc}") from exc
    if any(x.ndim for x in [*new_columns, *v_new, err_norm]):  # broadcast against a constant
        raise UnsupportedSystemError("right-hand side is not elementwise (non-scalar result)")
    _check_free([*new_columns, *v_new, err_norm], [t, h, *y, *v, *p, *u])
    # The adjoint differentiates the states' step only: the tangent just steers step sizes.
    contraction = sum(l_i * y_i for l_i, y_i in zip(lam, new_columns, strict=True))
    grads = pt.grad(
        contraction, [*y, *p, *u], disconnected_inputs="ignore", return_disconnected="zero"
    )
    step_scalar = _scalar_function([t, h, *y, *v, *p, *u], [*new_columns, *v_new, err_norm])
    vjp_scalar = _scalar_function([t, h, *y, *p, *u, *lam], grads)

    def call_args(n_y):
        return ", ".join(
            ["t[s]", "h[s]"]
            + [f"y[s, {i}]" for i in range(n_y)]
            + [f"p[s, {j}]" for j in range(n_p)]
            + [f"u[s, {i}]" for i in range(n)]
        )

    args = call_args(n)
    lam_args = ", ".join(f"lam[s, {i}]" for i in range(n))
    step_body = (
        "    n_subjects = t.shape[0]\n"
        f"    y_new = y.copy()\n    err = np.zeros(n_subjects)\n"
        "    for s in range(n_subjects):\n"
        "        if h[s] == 0.0:\n            continue\n"
        f"        r = kernel({call_args(n + n_t)})\n"
        + "".join(f"        y_new[s, {i}] = r[{i}]\n" for i in range(n + n_t))
        + f"        err[s] = r[{n + n_t}]\n"
        "    return y_new, err\n"
    )
    vjp_body = (
        "    n_subjects = t.shape[0]\n"
        "    gy = lam.copy()\n    gp = np.zeros(p.shape)\n    gu = np.zeros(u.shape)\n"
        "    for s in range(n_subjects):\n"
        "        if h[s] == 0.0:\n            continue\n"
        f"        r = kernel({args}, {lam_args})\n"
        + "".join(f"        gy[s, {i}] = r[{i}]\n" for i in range(n))
        + "".join(f"        gp[s, {j}] = r[{n + j}]\n" for j in range(n_p))
        + "".join(f"        gu[s, {i}] = r[{n + n_p + i}]\n" for i in range(n))
        + "    return gy, gp, gu\n"
    )
    step = _per_subject_wrapper("ode_step", step_scalar, "t, h, y, p, u", step_body)
    step_vjp = _per_subject_wrapper("ode_step_vjp", vjp_scalar, "t, h, y, p, u, lam", vjp_body)
    key = _derived_key("scalar", step_scalar[1], vjp_scalar[1])
    return StepKernels(step, step_vjp, n, "scalar", key, n_tangent=n_t)


@lru_cache(maxsize=32)
def build_step_kernels(system: ODESystem, method: AdaptiveMethod, n_subjects: int) -> StepKernels:
    """Compile the step and its vector-Jacobian product for ``system`` and ``method``.

    Elementwise right-hand sides get per-subject scalar kernels (no temporary arrays);
    others get kernels over whole ``(subject, ...)`` arrays.

    Raises
    ------
    UnsupportedSystemError
        If the right-hand side uses symbolic variables that are not states, parameters or
        time (e.g. a model tensor captured in a closure); such systems need the scan path.
    """
    try:
        return _scalar_kernels(system, method)
    except UnsupportedSystemError as exc:
        if "symbolic inputs" in str(exc):
            raise
    return _vector_kernels(system, method, n_subjects)


# ----------------------------------------------------------------------------- drivers


@numba.njit(cache=True)
def _grown(array, capacity, fill):  # pragma: no cover - compiled
    shape = (capacity,) + array.shape[1:]
    out = np.full(shape, fill, array.dtype)
    out[: array.shape[0]] = array
    return out


def _forward_template(
    params, y0, bolus, inputs, h0, times, n_segments, atol, tangent0, settings, max_steps
):  # pragma: no cover - compiled by numba with ``ode_step`` bound to a step kernel
    rtol, safety, min_factor, max_factor, exponent, max_step = settings
    n_subjects, n_points, n_states = bolus.shape
    n_carried = n_states + tangent0.shape[0]  # states, then the tangent (if any)
    last_segment = max(n_points - 1, 1)
    # errors beyond which safety * err ** -exponent is clipped to max/min_factor
    clip_high = (safety / max_factor) ** (1.0 / exponent)
    clip_low = (safety / min_factor) ** (1.0 / exponent)
    y = np.empty((n_subjects, n_carried))
    y[:, :n_states] = y0 + bolus[:, 0, :]
    for s in range(n_subjects):
        y[s, n_states:] = tangent0
    t = times[:, 0].copy()
    h = h0.copy()
    segment = np.zeros(n_subjects, np.int64)
    states = np.zeros((n_subjects, n_points, n_states))
    reached_all = np.zeros((n_subjects, n_points), np.bool_)
    states[:, 0, :] = y0
    reached_all[:, 0] = True
    capacity = min(max_steps, 64)
    record_y = np.empty((capacity, n_subjects, n_states))
    record_t = np.empty((capacity, n_subjects))
    record_h = np.zeros((capacity, n_subjects))
    record_segment = np.zeros((capacity, n_subjects), np.int64)
    record_reached = np.full((capacity, n_subjects), -1, np.int64)
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
        if attempt == capacity:  # grow the attempt record geometrically
            capacity = min(2 * capacity, max_steps)
            record_y = _grown(record_y, capacity, 0.0)
            record_t = _grown(record_t, capacity, 0.0)
            record_h = _grown(record_h, capacity, 0.0)
            record_segment = _grown(record_segment, capacity, 0)
            record_reached = _grown(record_reached, capacity, -1)
        for s in range(n_subjects):
            current = min(segment[s], last_segment - 1)
            t_end[s] = times[s, min(segment[s] + 1, last_segment)]
            for i in range(n_states):
                u[s, i] = inputs[s, current, i]
            if segment[s] < n_segments[s]:
                remaining = t_end[s] - t[s]
                h_try[s] = remaining if 1.01 * h[s] >= remaining else h[s]
            else:
                h_try[s] = 0.0
        y_new, err_norm = ode_step(t, h_try, y, params, u)  # noqa: F821
        record_y[attempt] = y[:, :n_states]
        record_t[attempt] = t
        for s in range(n_subjects):
            record_segment[attempt, s] = min(segment[s], last_segment - 1)
        for s in range(n_subjects):
            if segment[s] >= n_segments[s]:
                continue
            err = err_norm[s]
            ok = err <= 1.0
            remaining = t_end[s] - t[s]
            to_end = 1.01 * h[s] >= remaining
            floored = max(err, 1e-10)
            if np.isnan(err) or floored >= clip_low:
                factor = min_factor
            elif floored <= clip_high:  # the power would be clipped: skip it
                factor = max_factor
            else:
                factor = min(max(safety * floored ** (-exponent), min_factor), max_factor)
            if not ok:
                factor = min(factor, 1.0)
            h_next = h_try[s] * factor
            if ok:
                record_h[attempt, s] = h_try[s]
                for i in range(n_carried):
                    y[s, i] = y_new[s, i]
                if to_end:
                    point = segment[s] + 1
                    for i in range(n_states):
                        states[s, point, i] = y[s, i]
                        y[s, i] += bolus[s, point, i]
                    reached_all[s, point] = True
                    record_reached[attempt, s] = point
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


def _adjoint_template(
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
    n_params = params.shape[1]
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
                for i in range(n_states):
                    grad_bolus[s, point, i] = lam[s, i]
                    lam[s, i] += state_cotangent[s, point, i]
            if record_h[attempt, s] > 0.0:
                any_step = True
            segment = record_segment[attempt, s]
            for i in range(n_states):
                u[s, i] = inputs[s, segment, i]
        if not any_step:
            continue
        lam_y, lam_p, lam_u = ode_step_vjp(  # noqa: F821
            record_t[attempt], record_h[attempt], record_y[attempt], params, u, lam
        )
        for s in range(n_subjects):
            if record_h[attempt, s] > 0.0:
                segment = record_segment[attempt, s]
                for i in range(n_states):
                    lam[s, i] = lam_y[s, i]
                    grad_inputs[s, segment, i] += lam_u[s, i]
                for j in range(n_params):
                    grad_params[s, j] += lam_p[s, j]
    grad_bolus[:, 0, :] = lam
    grad_y0 = lam + state_cotangent[:, 0, :]
    return grad_params, grad_y0, grad_bolus, grad_inputs


#: bump when the driver templates change, so numba's on-disk cache is not reused
_DRIVER_VERSION = 4
#: driver sources, read once at import (numba compiles them with the kernels bound)
_FORWARD_SRC = textwrap.dedent(inspect.getsource(_forward_template))
_ADJOINT_SRC = textwrap.dedent(inspect.getsource(_adjoint_template))


def _jit_from_source(src: str, name: str, global_env: dict, key: str | None) -> Callable:
    """``numba.njit`` a function compiled from ``src``, cached on disk when ``key`` is set."""
    function = compile_numba_function_src(
        src, name, global_env=globals() | global_env, cache_key=key
    )
    return numba.njit(function, cache=key is not None)


def _derived_key(*parts) -> str | None:
    if any(part is None for part in parts):
        return None
    return hashlib.sha256(repr(parts).encode()).hexdigest()


@lru_cache(maxsize=64)
def _drivers(kernels: StepKernels) -> tuple[Callable, Callable]:
    forward = _jit_from_source(
        _FORWARD_SRC,
        "_forward_template",
        {"ode_step": kernels.step, "_grown": _grown},
        _derived_key("ode_forward", _DRIVER_VERSION, _FORWARD_SRC, kernels.key),
    )
    adjoint = _jit_from_source(
        _ADJOINT_SRC,
        "_adjoint_template",
        {"ode_step_vjp": kernels.step_vjp},
        _derived_key("ode_adjoint", _DRIVER_VERSION, _ADJOINT_SRC, kernels.key),
    )
    return forward, adjoint


# ----------------------------------------------------------------------------- Ops


class AdaptiveSolveOp(Op):
    """Forward adaptive solve: states at every breakpoint plus the attempt record.

    Inputs: ``params (S, P)``, ``y0 (S, N)``, ``bolus (S, B, N)`` (dose added at each
    breakpoint), ``rates (S, B - 1, N)`` (zero-order input on each segment), ``h0 (S,)``
    (first step), then the constants ``times (S, B)`` (breakpoints), ``n_segments (S,)``,
    ``atol (N,)`` and ``tangent0 (T,)`` (initial tangent of ``sensitivity_control``, empty
    without it; it only steers the step sizes and gets no gradient). Outputs:
    ``states (S, B, N)`` (pre-dose state at each breakpoint, NaN if ``max_steps`` ran out
    first), then the attempt record ``y (A, S, N)``, ``t (A, S)``,
    ``h (A, S)`` (0 when rejected or finished), ``segment (A, S)`` and ``reached (A, S)``
    (breakpoint reached at the end of the attempt, -1 if none), consumed by
    :class:`AdaptiveAdjointOp`.
    """

    __props__ = ("kernels", "settings", "max_steps")

    def __init__(self, kernels: StepKernels, method: AdaptiveMethod) -> None:
        self.kernels = kernels
        self.settings = (
            float(method.rtol),
            float(method.safety),
            float(method.min_factor),
            float(method.max_factor),
            float(method.error_exponent),
            float(method.max_step),
        )
        self.max_steps = int(method.max_steps)

    def make_node(self, params, y0, bolus, rates, h0, times, n_segments, atol, tangent0):
        """Build the node; see the class docstring for the inputs and outputs."""
        inputs = [pt.as_tensor_variable(v) for v in (params, y0, bolus, rates, h0, times)]
        inputs += [pt.as_tensor_variable(n_segments, dtype="int64")]
        inputs += [pt.as_tensor_variable(np.asarray(v, float)) for v in (atol, tangent0)]
        outputs = [
            pt.tensor(dtype="float64", shape=(None, None, None)),
            pt.tensor(dtype="float64", shape=(None, None, None)),
            pt.dmatrix(),
            pt.dmatrix(),
            pt.lmatrix(),
            pt.lmatrix(),
        ]
        return Apply(self, inputs, outputs)

    def perform(self, node, inputs, output_storage):
        """Run the numba forward driver (C and Python back-ends)."""
        forward, _ = _drivers(self.kernels)
        results = forward(*inputs, self.settings, self.max_steps)
        for storage, value in zip(output_storage, results, strict=True):
            storage[0] = value

    def pullback(self, inputs, outputs, output_grads):
        """Gradients through :class:`AdaptiveAdjointOp`; steps and constants get none."""
        params, _, bolus, rates = inputs[:4]
        cotangent = output_grads[0]
        if isinstance(cotangent.type, DisconnectedType):
            cotangent = pt.zeros_like(outputs[0])
        adjoint = AdaptiveAdjointOp(self.kernels)(params, bolus, rates, *outputs[1:], cotangent)
        return [*adjoint, *(DisconnectedType()() for _ in range(5))]

    def connection_pattern(self, node):
        """Only the states depend (differentiably) on params, y0, bolus and rates."""
        return [[True] + [False] * 5] * 4 + [[False] * 6] * 5


class AdaptiveAdjointOp(Op):
    """Discrete adjoint of :class:`AdaptiveSolveOp` (see the module docstring).

    Inputs: ``params, bolus, rates``, the five attempt-record outputs of the forward Op and
    the cotangent of its states. Outputs: gradients with respect to ``params``, ``y0``,
    ``bolus`` and ``rates``.
    """

    __props__ = ("kernels",)

    def __init__(self, kernels: StepKernels) -> None:
        self.kernels = kernels

    def make_node(self, params, bolus, rates, rec_y, rec_t, rec_h, rec_segment, rec_reached, cot):
        """Build the node; see the class docstring for the inputs and outputs."""
        inputs = [
            pt.as_tensor_variable(v)
            for v in (params, bolus, rates, rec_y, rec_t, rec_h, rec_segment, rec_reached, cot)
        ]
        outputs = [inputs[0].type(), pt.dmatrix(), inputs[1].type(), inputs[2].type()]
        return Apply(self, inputs, outputs)

    def perform(self, node, inputs, output_storage):
        """Run the numba adjoint driver (C and Python back-ends)."""
        _, adjoint = _drivers(self.kernels)
        for storage, value in zip(output_storage, adjoint(*inputs), strict=True):
            storage[0] = value


def _literal(value: float) -> str:
    return "np.inf" if value == np.inf else repr(float(value))


@register_funcify_and_cache_key(AdaptiveSolveOp)
def _numba_adaptive_solve(op, node=None, **kwargs):
    forward, _ = _drivers(op.kernels)
    settings = "(" + ", ".join(_literal(v) for v in op.settings) + ",)"
    src = (
        "def adaptive_solve(params, y0, bolus, rates, h0, times, n_segments, atol, tangent0):\n"
        "    return forward(params, y0, bolus, rates, h0, times, n_segments, atol, tangent0, "
        f"{settings}, {op.max_steps})\n"
    )
    key = _derived_key("ode_adaptive_solve", _DRIVER_VERSION, src, op.kernels.key)
    return _jit_from_source(src, "adaptive_solve", {"forward": forward}, key), key


@register_funcify_and_cache_key(AdaptiveAdjointOp)
def _numba_adaptive_adjoint(op, node=None, **kwargs):
    _, adjoint = _drivers(op.kernels)
    return adjoint, _derived_key("ode_adjoint", _DRIVER_VERSION, op.kernels.key)


def adaptive_solve(
    kernels: StepKernels,
    grid: BreakpointGrid,
    method: AdaptiveMethod,
    params: TensorVariable,
    y0: TensorVariable,
    bolus: TensorVariable,
    rates: TensorVariable,
    h0: TensorVariable,
) -> TensorVariable:
    """States at every breakpoint, shape ``(S, B, N)``, through the compiled Ops.

    Parameters
    ----------
    kernels : StepKernels
        From :func:`build_step_kernels` for the same system, method and batch size.
    grid : BreakpointGrid
        Breakpoints of every subject.
    method : AdaptiveMethod
        Tolerances and controller settings.
    params, y0, bolus, rates, h0 : TensorVariable
        See :class:`AdaptiveSolveOp`.
    """
    atol = method.atol_per_state(kernels.n_states)
    tangent0 = method.tangent_seed(kernels.n_states)[: kernels.n_tangent]
    op = AdaptiveSolveOp(kernels, method)
    return op(params, y0, bolus, rates, h0, grid.times, grid.n_segments, atol, tangent0)[0]
