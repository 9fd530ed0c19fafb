"""Shared helpers for the ODE engine tests: scipy references and error measures."""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
from scipy.integrate import solve_ivp

#: Relative errors are measured as |a - b| / max(|b|, FLOOR * scale_of_state), where the state
#: scale is max |b| over all subjects and times; tiny values (e.g. a washed-out drug at 1e-19)
#: are thus compared in absolute terms relative to the state's magnitude.
RELATIVE_FLOOR = 1e-3


def relative_error(actual: np.ndarray, reference: np.ndarray, mask: np.ndarray | None = None):
    """Max relative error over (subject, obs, state) arrays with a per-state floor."""
    if mask is not None:
        actual, reference = actual[mask], reference[mask]
    scale = np.max(np.abs(reference.reshape(-1, reference.shape[-1])), axis=0)
    denominator = np.maximum(np.abs(reference), RELATIVE_FLOOR * np.maximum(scale, 1e-300))
    return float(np.max(np.abs(actual - reference) / denominator))


def reference_solution(
    rhs: Callable[[float, np.ndarray], np.ndarray],
    y0: np.ndarray,
    obs_times: np.ndarray,
    boluses: list[tuple[float, int, float]] = (),
    infusions: list[tuple[float, float, int, float]] = (),
    t0: float = 0.0,
    rtol: float = 1e-10,
    atol: float = 1e-14,
) -> np.ndarray:
    """Solve one subject with scipy Radau, restarting at every event time.

    A bolus at an observation time is applied after that observation (pre-dose convention).
    Returns the states at ``obs_times``, shape ``(n_obs, n_states)``.
    """
    obs_times = np.asarray(obs_times, dtype=float)
    cuts = {t0, *(b[0] for b in boluses)}
    for start, stop, _, _ in infusions:
        cuts |= {start, stop}
    t_end = obs_times.max()
    cuts = sorted(c for c in cuts if c <= t_end) + [t_end]
    out = np.full((obs_times.size, len(y0)), np.nan)
    y = np.asarray(y0, dtype=float).copy()
    for left, right in zip(cuts[:-1], cuts[1:], strict=True):
        for time, state, amount in boluses:
            if time == left:
                y[state] += amount
        if right <= left:
            continue
        u = np.zeros(len(y))
        for start, stop, state, rate in infusions:
            if start <= left and right <= stop:
                u[state] += rate
        sol = solve_ivp(
            lambda t, x, u=u: np.asarray(rhs(t, x)) + u,
            (left, right),
            y,
            method="Radau",
            rtol=rtol,
            atol=atol,
            dense_output=True,
        )
        assert sol.success, sol.message
        inside = (obs_times > left) & (obs_times <= right)
        if inside.any():
            out[inside] = sol.sol(obs_times[inside]).T
        y = sol.y[:, -1].copy()
    out[obs_times == t0] = np.asarray(y0, dtype=float)
    return out


def central_difference(function: Callable[[np.ndarray], float], x: np.ndarray, rel_step=1e-4):
    """Central finite-difference gradient; step ``rel_step * max(|x|, 1)`` (truncation ~1e-8)."""
    grad = np.zeros_like(x, dtype=float)
    for idx in np.ndindex(x.shape):
        step = rel_step * max(abs(x[idx]), 1.0)
        plus, minus = x.copy(), x.copy()
        plus[idx] += step
        minus[idx] -= step
        grad[idx] = (function(plus) - function(minus)) / (2 * step)
    return grad


def gradient_error(analytic: np.ndarray, numeric: np.ndarray) -> float:
    """Max relative gradient error; components below 1e-5 of the largest are compared at that floor.

    The floor keeps finite-difference round-off on near-zero components from dominating.
    """
    floor = 1e-5 * max(np.max(np.abs(numeric)), 1e-300)
    return float(np.max(np.abs(analytic - numeric) / np.maximum(np.abs(numeric), floor)))
