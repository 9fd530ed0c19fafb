"""Integration methods: small immutable configuration objects plus their step functions.

Each method exposes a step function that acts on a whole batch of subjects at once:
``f(t, y)`` is the batched right-hand side, ``t`` and ``h`` (time and per-subject step length)
have shape ``(subject,)`` and the state ``y`` is a list with one ``(subject,)`` vector per
state. Keeping states as separate vectors makes every explicit step purely elementwise, so
PyTensor fuses it into a few loops (fast to run and to compile on C and numba back-ends).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from fractions import Fraction as Fr
from typing import ClassVar

import numpy as np
import pytensor.tensor as pt
from pytensor.gradient import grad, pushforward
from pytensor.tensor.variable import TensorVariable

__all__ = ["RK4", "AdaptiveMethod", "Dopri5", "Rosenbrock"]

States = list[TensorVariable]
BatchRhs = Callable[[TensorVariable, States], States]


def _combine(
    y: Sequence[TensorVariable],
    h: TensorVariable,
    coefs: Sequence[Fr | float],
    ks: Sequence[Sequence[TensorVariable]],
) -> list[TensorVariable]:
    """Return ``y + h * sum_j coefs[j] * ks[j]`` state by state, skipping zero coefficients."""
    used = [(float(c), k) for c, k in zip(coefs, ks, strict=False) if c != 0]
    if not used:
        return list(y)
    out = []
    for i, y_i in enumerate(y):
        total = used[0][0] * used[0][1][i]
        for c, k in used[1:]:
            total = total + c * k[i]
        out.append(y_i + h * total)
    return out


@dataclass(frozen=True)
class RK4:
    """Classic fourth-order Runge-Kutta with a fixed step.

    Every segment between consecutive breakpoints (observation and event times) is split
    into ``ceil(length / step)`` equal sub-steps, so short segments use few steps and event
    times are hit exactly. The global error is ``O(step**4)`` and is **not** estimated or
    controlled: choose ``step`` well below the fastest time scale of the system (explicit
    stability needs ``step * |lambda_max| < 2.78``).

    Parameters
    ----------
    step : float
        Largest step length, in the time unit of the system (default 0.01, i.e. ~15 min
        when time is in days).
    """

    step: float = 0.01

    def __post_init__(self) -> None:
        """Validate the step."""
        if not self.step > 0:
            raise ValueError("RK4 step must be positive")

    @staticmethod
    def advance(f: BatchRhs, t: TensorVariable, y: States, h: TensorVariable) -> States:
        """Take one RK4 step of length ``h`` (per subject) from ``(t, y)``."""
        half = 0.5 * h
        k1 = f(t, y)
        k2 = f(t + half, [y_i + half * k for y_i, k in zip(y, k1, strict=True)])
        k3 = f(t + half, [y_i + half * k for y_i, k in zip(y, k2, strict=True)])
        k4 = f(t + h, [y_i + h * k for y_i, k in zip(y, k3, strict=True)])
        sixth = h / 6.0
        return [
            y_i + sixth * (a + 2.0 * (b + c) + d)
            for y_i, a, b, c, d in zip(y, k1, k2, k3, k4, strict=True)
        ]


@dataclass(frozen=True)
class AdaptiveMethod:
    """Common settings of the error-controlled methods.

    The step size of every subject is controlled independently: a step is accepted when the
    RMS norm of the embedded error estimate, scaled by ``atol + rtol * max(|y_old|, |y_new|)``
    per state, is <= 1. Steps end exactly at breakpoints (observation and event times).
    The solver stops when every subject has reached its last observation; if that takes more
    than ``max_steps`` attempts the unreached outputs are NaN (so a log-density becomes NaN
    and the sampler rejects the point rather than using a wrong value).

    Gradients are exact derivatives of the numerical solution with the accepted step sequence
    held fixed (step-size decisions are wrapped in ``disconnected_grad``). By default the
    controller watches the states, not their sensitivities: a stiff subsystem that sits
    exactly at zero (e.g. a PK chain before its first dose) has a zero error estimate, so an
    explicit method takes long steps there and the gradient with respect to that subsystem's
    *initial state* is inaccurate (unstable for explicit methods). In
    tests/ode/test_ode_pkpd.py (a dormant mode of 35/day) Dopri5's y0 gradient is off by
    2.5e9 with the defaults, 0.56 with ``max_step=0.05`` and 2e-5 with ``max_step=0.01``
    (``gradient_error`` against a converged RK4). Parameter, dose-amount and infusion-rate
    gradients are unaffected in the tests.

    ``sensitivity_control=True`` fixes this: each subject also carries a tangent ``v`` of
    the solution, stepped with the same Runge-Kutta stages (the Jacobian-vector product of
    the step, i.e. ``dv/dt = J(t, y) v``), and a step is accepted only if the embedded error
    of ``v``, scaled by ``atol + rtol * max(|v_old|, |v_new|)`` per state, also has RMS
    <= 1. The tangent starts at ``v_i = 100 * atol_i / rtol`` in every state (all ones with
    the default tolerances) and is not reset at doses. Seeding in proportion to ``atol``
    keeps the control independent of each state's unit (given an ``atol`` in that unit);
    since ``v`` is linear, only its size relative to ``atol / rtol`` matters: the tangent is
    controlled to relative accuracy ``rtol`` until it has decayed 100-fold and then to an
    absolute ``rtol / 100`` of its seed (a seed of ``atol / rtol`` leaves 2.4e-5 below). The
    tangent only steers the step sizes: the values and gradients are still those of the
    states' solution and its discrete adjoint. Measured: the dormant-state y0 gradient above
    drops to 6e-7 (196 -> 260 step attempts, within the default ``max_steps``); states and
    parameter gradients move by 1e-8 and 3e-6 (tolerance level). :class:`Rosenbrock`
    (damped but not resolved fast modes): 0.55 -> 1.6e-5. Cost: every attempt computes the
    tangent stages as well, and the extra control adds steps; on the 24-mouse benchmark
    problem (``rtol = atol = 1e-6``, benchmarks/sensitivity_cost.py) logp+gradient takes
    about 1.46x as long (56% more accepted steps), so the option is off by default.

    Parameters
    ----------
    rtol : float
        Relative tolerance of the local error.
    atol : float or tuple of float
        Absolute tolerance, scalar or one per state (in the units of the states).
    max_steps : int
        Maximum number of step attempts (accepted + rejected) for the whole batch.
    first_step : float or None
        Initial step length; ``None`` picks it from ``|y0|`` and ``|f(t0, y0)|``.
    max_step : float
        Largest step length.
    safety, min_factor, max_factor : float
        Step-size controller constants: ``h_new = h * clip(safety * err**(-1/order),
        min_factor, max_factor)``.
    engine : {"auto", "compiled", "scan"}
        ``"compiled"``: the forward solve and its discrete adjoint run as two numba-compiled
        Ops around PyTensor-compiled step kernels (:mod:`bayes.ode.compiled`; fast, linear
        in subjects). ``"scan"``: a PyTensor while-scan differentiated by autodiff (works on
        every back-end, including JAX). ``"auto"`` (default): compiled unless the
        right-hand side captures symbolic inputs other than states, parameters and time.
    sensitivity_control : bool
        Also control the local error of a tangent (variational) solution, so that
        gradients with respect to initial states of subsystems that sit at zero are
        accurate (see above). Both engines support it. Default False.
    """

    rtol: float = 1e-8
    atol: float | tuple[float, ...] = 1e-10
    max_steps: int = 2000
    first_step: float | None = None
    max_step: float = float("inf")
    safety: float = 0.9
    min_factor: float = 0.2
    max_factor: float = 5.0
    engine: str = "auto"
    sensitivity_control: bool = False

    def __post_init__(self) -> None:
        """Validate settings."""
        if not (self.rtol > 0 and self.max_steps > 0 and self.max_step > 0):
            raise ValueError("rtol, max_steps and max_step must be positive")
        if self.engine not in ("auto", "compiled", "scan"):
            raise ValueError(f"engine must be 'auto', 'compiled' or 'scan', got {self.engine!r}")
        if isinstance(self.atol, Sequence):
            object.__setattr__(self, "atol", tuple(float(a) for a in self.atol))

    #: exponent of the step-size controller, 1 / (order of the error estimate + 1)
    error_exponent: ClassVar[float] = 0.2
    #: ``sensitivity_control`` seeds the tangent with ``tangent_seed_factor * atol / rtol``
    tangent_seed_factor: ClassVar[float] = 100.0

    def attempt(
        self, f: BatchRhs, t: TensorVariable, y: States, h: TensorVariable
    ) -> tuple[States, States]:
        """Return ``(y_new, error_estimate)`` for a step of length ``h``."""
        raise NotImplementedError

    def attempt_with_tangent(
        self, f: BatchRhs, t: TensorVariable, y: States, v: States, h: TensorVariable
    ) -> tuple[States, States, States, States]:
        """Return ``(y_new, error, v_new, v_error)``: a step and its tangent along ``v``.

        ``v_new`` and ``v_error`` are the Jacobian-vector products of ``y_new`` and of the
        error estimate with respect to ``y`` (step length held fixed). For an explicit
        Runge-Kutta pair this is the same pair applied to the variational equation
        ``dv/dt = J(t, y) v`` with the same stages.
        """
        y_new, error = self.attempt(f, t, y, h)
        tangent = pushforward([*y_new, *error], list(y), list(v), disconnected_outputs="ignore")
        n = len(y)
        return y_new, error, list(tangent[:n]), list(tangent[n:])

    def atol_per_state(self, n_states: int) -> np.ndarray:
        """Absolute tolerance broadcast to one value per state."""
        return np.broadcast_to(np.asarray(self.atol, float), (n_states,)).copy()

    def tangent_seed(self, n_states: int) -> np.ndarray:
        """Return the initial tangent of ``sensitivity_control``, one value per state."""
        return self.tangent_seed_factor * self.atol_per_state(n_states) / self.rtol

    def error_norm(self, error: States, y: States, y_new: States) -> TensorVariable:
        """RMS over states of ``error / (atol + rtol * max(|y|, |y_new|))``."""
        atol = self.atol_per_state(len(y))
        total = None
        for e, a, y_i, y_n in zip(error, atol, y, y_new, strict=True):
            scaled = e / (float(a) + self.rtol * pt.maximum(pt.abs(y_i), pt.abs(y_n)))
            total = pt.sqr(scaled) if total is None else total + pt.sqr(scaled)
        return pt.sqrt(total / len(y))


_DP_C = [Fr(0), Fr(1, 5), Fr(3, 10), Fr(4, 5), Fr(8, 9), Fr(1), Fr(1)]
_DP_A = [
    [],
    [Fr(1, 5)],
    [Fr(3, 40), Fr(9, 40)],
    [Fr(44, 45), Fr(-56, 15), Fr(32, 9)],
    [Fr(19372, 6561), Fr(-25360, 2187), Fr(64448, 6561), Fr(-212, 729)],
    [Fr(9017, 3168), Fr(-355, 33), Fr(46732, 5247), Fr(49, 176), Fr(-5103, 18656)],
    [Fr(35, 384), Fr(0), Fr(500, 1113), Fr(125, 192), Fr(-2187, 6784), Fr(11, 84)],
]
_DP_B5 = _DP_A[6] + [Fr(0)]
_DP_B4 = [
    Fr(5179, 57600),
    Fr(0),
    Fr(7571, 16695),
    Fr(393, 640),
    Fr(-92097, 339200),
    Fr(187, 2100),
    Fr(1, 40),
]
_DP_E = [b5 - b4 for b5, b4 in zip(_DP_B5, _DP_B4, strict=True)]


@dataclass(frozen=True)
class Dopri5(AdaptiveMethod):
    """Dormand-Prince 5(4) explicit Runge-Kutta pair with per-subject step-size control.

    Seven right-hand-side evaluations per attempted step; the fifth-order solution is
    propagated (local extrapolation). Defaults ``rtol=1e-8, atol=1e-10`` give a global
    relative error below 1e-6 on the test problems (see ``tests/ode``). For sampling,
    ``rtol=1e-6`` is usually sufficient and about 2.5x cheaper. Not suited to stiff systems
    (use :class:`Rosenbrock`).
    """

    error_exponent: ClassVar[float] = 0.2

    def attempt(
        self, f: BatchRhs, t: TensorVariable, y: States, h: TensorVariable
    ) -> tuple[States, States]:
        """Return the fifth-order solution and the embedded error estimate."""
        ks: list[States] = []
        for c, a_row in zip(_DP_C, _DP_A, strict=True):
            y_stage = _combine(y, h, a_row, ks) if a_row else list(y)
            ks.append(f(t + float(c) * h if c else t, y_stage))
        y_new = _combine(y, h, _DP_A[6], ks)
        error = _combine([pt.zeros_like(t)] * len(y), h, _DP_E, ks)
        return y_new, error


def batched_jacobian(
    f_value: States, y: States, t: TensorVariable
) -> tuple[TensorVariable, TensorVariable]:
    """Jacobian ``J[s, i, j] = d f_i / d y_j`` (subject ``s``) and ``df/dt`` for a batch.

    Subjects do not interact, so ``d (sum_s f_i[s]) / d y_j`` is the vector of ``J[:, i, j]``
    over subjects; ``n_state`` reverse-mode gradients give the whole batch.

    Parameters
    ----------
    f_value : list of TensorVariable
        ``f(t, y)``, one ``(subject,)`` vector per state.
    y : list of TensorVariable
        States, one ``(subject,)`` vector per state.
    t : TensorVariable
        Times, shape ``(subject,)``.

    Returns
    -------
    jac : TensorVariable, shape (subject, state, state)
    dfdt : TensorVariable, shape (subject, state)
    """
    rows, time_derivs = [], []
    for f_i in f_value:
        derivs = grad(f_i.sum(), [*y, t], disconnected_inputs="ignore")
        rows.append(pt.stack(derivs[:-1], axis=1))
        time_derivs.append(derivs[-1])
    return pt.stack(rows, axis=1), pt.stack(time_derivs, axis=1)


def _solve_with(inverse: TensorVariable, vector: TensorVariable) -> TensorVariable:
    """Batched ``inverse[s] @ vector[s]`` as a broadcast product (fast for tiny systems)."""
    return (inverse * vector[:, None, :]).sum(axis=2)


@dataclass(frozen=True)
class Rosenbrock(AdaptiveMethod):
    """RODAS3: L-stable, stiffly accurate 4-stage Rosenbrock method of order 3 (embedded 2).

    Uses the exact PyTensor Jacobian of the right-hand side (one batched ``state x state``
    inverse per attempted step, three right-hand-side evaluations). L-stability lets the step
    follow the slow dynamics, e.g. IL-2 elimination at 300/day beside tumour growth at
    0.3/day. Coefficients: Sandu et al., Atmos. Environ. 31 (1997) 3459 (KPP ``Rodas3``).
    Defaults ``rtol=5e-8, atol=1e-10`` (tighter than the local error one would set for a
    fifth-order method, because the method is only third order) give a global relative error
    of about 3e-7 on the stiff test problem (tests/ode/test_ode_stiff.py); ``rtol=1e-7``
    gives 7e-7, ``1e-6`` about 7e-6.
    """

    rtol: float = 5e-8
    atol: float | tuple[float, ...] = 1e-10
    max_steps: int = 10000
    error_exponent: ClassVar[float] = 1.0 / 3.0

    def attempt(
        self, f: BatchRhs, t: TensorVariable, y: States, h: TensorVariable
    ) -> tuple[States, States]:
        """Return the third-order solution and the embedded error estimate."""
        f0_list = f(t, y)
        jac, dfdt = batched_jacobian(f0_list, y, t)
        f0 = pt.stack(f0_list, axis=1)
        y_mat = pt.stack(y, axis=1)
        active = pt.gt(h, 0)
        step = pt.switch(active, h, 1.0)[:, None]
        eye = pt.eye(len(y))[None]
        g_inv = pt.linalg.inv(eye / (0.5 * step[:, :, None]) - jac)
        k1 = _solve_with(g_inv, f0 + 0.5 * step * dfdt)
        k2 = _solve_with(g_inv, f0 + (4.0 / step) * k1 + 1.5 * step * dfdt)
        f3 = pt.stack(f(t + h, _columns(y_mat + 2.0 * k1)), axis=1)
        k3 = _solve_with(g_inv, f3 + (k1 - k2) / step)
        f4 = pt.stack(f(t + h, _columns(y_mat + 2.0 * k1 + k3)), axis=1)
        k4 = _solve_with(g_inv, f4 + (k1 - k2 - (8.0 / 3.0) * k3) / step)
        y_new = pt.switch(active[:, None], y_mat + 2.0 * k1 + k3 + k4, y_mat)
        error = pt.switch(active[:, None], k4, 0.0)
        return _columns(y_new), _columns(error)


def _columns(matrix: TensorVariable) -> States:
    return [matrix[:, i] for i in range(matrix.type.shape[1])]
