"""Closed-form IL-2 amounts and concentrations in NumPy for many draws and patients at once.

The human model is the mouse chain of :mod:`bayes.ode.linear` with a multi-exponential systemic
disposition: release ``R(tau) = R0 exp(-k_release tau)`` into the cavity (local amount ``A_L``,
total local loss rate ``k_L = k_abs + k_local_loss``), absorption at ``k_abs`` into blood whose
concentration response to a unit amount is ``h(t) = sum_j c_j exp(-lambda_j t)`` (1/mL). Then::

    C_L(tau) = R0 phi(k_release, k_L, tau) / V_L
    C_S(tau) = R0 k_abs sum_j c_j psi(k_release, k_L, lambda_j, tau)

with ``phi`` and ``psi`` the first and second divided differences of ``exp(-x tau)``, exactly as
in :mod:`bayes.ode.linear` (the triple convolution of exponentials). A one-compartment
disposition (the mouse model) is the case ``c = 1/V_S``, ``lambda = k_sys``. These NumPy versions
follow the PyTensor ones line by line (same sorting, same series near equal rates); the tests
compare both.
"""

from __future__ import annotations

import numpy as np

__all__ = [
    "exp_divided_difference_1",
    "exp_divided_difference_2",
    "exprel_neg",
    "il2_profiles",
]

_SERIES_LIMIT = 1e-3


def exprel_neg(z: np.ndarray) -> np.ndarray:
    """Return ``(1 - exp(-z)) / z`` for ``z >= 0`` (1 at ``z = 0``; series below 1e-3)."""
    z = np.asarray(z, dtype=float)
    small = z < _SERIES_LIMIT
    z_safe = np.where(small, 1.0, z)
    exact = -np.expm1(-z_safe) / z_safe
    series = 1.0 - z / 2.0 * (1.0 - z / 3.0 * (1.0 - z / 4.0 * (1.0 - z / 5.0)))
    return np.where(small, series, exact)


def exp_divided_difference_1(p, q, tau) -> np.ndarray:
    """Return ``(exp(-p tau) - exp(-q tau)) / (q - p)``, ``tau exp(-p tau)`` when ``p == q``."""
    a, b = np.minimum(p, q), np.maximum(p, q)
    return tau * np.exp(-a * tau) * exprel_neg((b - a) * tau)


def _second_difference_series(u: np.ndarray, v: np.ndarray) -> np.ndarray:
    h1 = u + v
    h2 = u * u + u * v + v * v
    h3 = h2 * h1 - u * v * h1
    return 0.5 - h1 / 6.0 + h2 / 24.0 - h3 / 120.0


def exp_divided_difference_2(p, q, r, tau) -> np.ndarray:
    """Second divided difference of ``exp(-x tau)`` at ``p, q, r`` (smooth at equal rates).

    Parameters
    ----------
    p, q, r : array_like
        Non-negative rate constants (broadcastable).
    tau : array_like
        Non-negative elapsed times (broadcastable).

    Returns
    -------
    numpy.ndarray
        ``sum_i exp(-x_i tau) / prod_{j != i} (x_j - x_i)``, continued to equal rates.
    """
    low, high = np.minimum(p, q), np.maximum(p, q)
    a = np.minimum(low, r)
    rest = np.maximum(low, r)
    b, c = np.minimum(high, rest), np.maximum(high, rest)
    u, v = (b - a) * tau, (c - a) * tau
    small = v < _SERIES_LIMIT
    v_safe = np.where(small, 1.0, v)
    u_safe = np.where(small, 0.5, u)
    exact = (exprel_neg(u_safe) - np.exp(-u_safe) * exprel_neg(v_safe - u_safe)) / v_safe
    scaled = np.where(small, _second_difference_series(u, v), exact)
    return tau * tau * np.exp(-a * tau) * scaled


def il2_profiles(
    times: np.ndarray,
    implant_days: np.ndarray,
    release_terms: list[tuple[np.ndarray | float, np.ndarray]],
    release_rate0: np.ndarray,
    k_abs: np.ndarray,
    k_local_loss: np.ndarray,
    v_local: np.ndarray,
    disposition: list[tuple[np.ndarray, np.ndarray]],
) -> tuple[np.ndarray, np.ndarray]:
    """Return local and systemic IL-2 concentrations (ng/mL), shape ``(*batch, time)``.

    Rows whose rate constants are well separated (every pairwise gap >= ``gap_limit`` = 1e-3
    /day) use the partial-fraction form (one exponential per distinct rate and time; the
    coefficients depend on the row only); the other rows use the divided differences above,
    which are exact at equal rates. Both give the same values to ~1e-10 relative.

    Parameters
    ----------
    times : numpy.ndarray, shape (time,)
        Days since the first implant.
    implant_days : numpy.ndarray, shape (implant,)
        Implant days; every implant releases ``release_rate0`` at its start.
    release_terms : list of (weight, rate)
        Release shape ``sum_k w_k exp(-r_k tau)`` (weights sum to 1), each broadcastable to
        the batch shape.
    release_rate0 : numpy.ndarray
        Initial release rate of one implant (ng/day), batch shape.
    k_abs, k_local_loss : numpy.ndarray
        Absorption and other local loss rates (1/day), batch shape.
    v_local : numpy.ndarray
        Local distribution volume (mL), batch shape.
    disposition : list of (coefficient, rate)
        Systemic concentration response to a unit amount ``sum_j c_j exp(-lambda_j t)``
        (``c_j`` in 1/mL, ``lambda_j`` in 1/day), batch shape.

    Returns
    -------
    tuple of numpy.ndarray
        ``(C_L, C_S)``, each of shape ``(*batch, time)``; zero before the first implant.
    """
    shape = np.shape(release_rate0)
    args = [
        np.broadcast_to(np.asarray(a, dtype=float), shape)
        for a in (release_rate0, k_abs, k_local_loss, v_local)
    ]
    terms = [
        (np.broadcast_to(np.asarray(w, float), shape), np.broadcast_to(r, shape))
        for w, r in release_terms
    ]
    phases = [(np.broadcast_to(c, shape), np.broadcast_to(r, shape)) for c, r in disposition]
    local_total = args[1] + args[2]
    rates = [r for _, r in terms] + [local_total] + [r for _, r in phases]
    degenerate = np.zeros(shape, dtype=bool)
    for i, first in enumerate(rates):
        for second in rates[i + 1 :]:
            degenerate |= np.abs(first - second) < GAP_LIMIT
    times = np.asarray(times, dtype=float)
    local = np.empty(shape + times.shape)
    systemic = np.empty(shape + times.shape)
    for mask, solver in ((~degenerate, _profiles_separated), (degenerate, _profiles_divided)):
        if mask.any():

            def pick(a, mask=mask):
                return a[mask] if mask.ndim else a

            local_rows, systemic_rows = solver(
                times,
                np.atleast_1d(implant_days),
                [(pick(w), pick(r)) for w, r in terms],
                *(pick(a) for a in args),
                [(pick(c), pick(r)) for c, r in phases],
            )
            local[mask] = local_rows
            systemic[mask] = systemic_rows
    return local, systemic


GAP_LIMIT = 1e-3
"""Rate constants closer than this (1/day) are treated by the divided-difference form."""


def _profiles_divided(times, implant_days, terms, rate0, k_abs, k_loss, v_local, phases):
    k_local_total = (k_abs + k_loss)[..., None]
    amount_local = np.zeros(rate0.shape + times.shape)
    concentration_sys = np.zeros(rate0.shape + times.shape)
    for implant in implant_days:
        elapsed = times - implant
        started = elapsed > 0.0
        tau = np.where(started, elapsed, 0.0)
        for weight, rate in terms:
            rate = rate[..., None]
            scale = (weight * rate0)[..., None]
            amount_local += scale * started * exp_divided_difference_1(rate, k_local_total, tau)
            for coefficient, elimination in phases:
                psi = exp_divided_difference_2(rate, k_local_total, elimination[..., None], tau)
                concentration_sys += scale * (k_abs * coefficient)[..., None] * started * psi
    return amount_local / v_local[..., None], concentration_sys


def _profiles_separated(times, implant_days, terms, rate0, k_abs, k_loss, v_local, phases):
    """Partial fractions: phi = (E_p - E_q)/(q - p), psi = sum_i E_i / prod_j (x_j - x_i).

    The coefficients of each distinct exponential ``E_x = exp(-x tau)`` are summed per row
    first, so each time point costs one exponential per distinct rate and one multiply-add.
    """
    k_local_total = k_abs + k_loss
    local_coefficients = []  # (coefficient, rate) pairs of C_L * V_L
    systemic_coefficients = []
    local_of_local = np.zeros_like(rate0)
    systemic_of_local = np.zeros_like(rate0)
    systemic_of_phase = [np.zeros_like(rate0) for _ in phases]
    for weight, rate in terms:
        scale = weight * rate0
        local_coefficients.append((scale / (k_local_total - rate), rate))
        local_of_local -= scale / (k_local_total - rate)
        systemic_of_release = np.zeros_like(rate0)
        for index, (coefficient, elimination) in enumerate(phases):
            factor = scale * k_abs * coefficient
            systemic_of_release += factor / ((k_local_total - rate) * (elimination - rate))
            systemic_of_local += factor / ((rate - k_local_total) * (elimination - k_local_total))
            systemic_of_phase[index] += factor / (
                (rate - elimination) * (k_local_total - elimination)
            )
        systemic_coefficients.append((systemic_of_release, rate))
    local_coefficients.append((local_of_local, k_local_total))
    systemic_coefficients.append((systemic_of_local, k_local_total))
    systemic_coefficients += [
        (c, elimination) for c, (_, elimination) in zip(systemic_of_phase, phases, strict=True)
    ]
    zero = np.zeros_like(rate0)
    # one exponential per distinct rate, feeding both curves: (rate, local coef, systemic coef)
    exponentials = [
        (rate, local_c, systemic_c)
        for (local_c, rate), (systemic_c, _) in zip(
            local_coefficients, systemic_coefficients, strict=False
        )
    ] + [(rate, zero, c) for c, rate in systemic_coefficients[len(local_coefficients) :]]
    local = np.zeros(rate0.shape + times.shape)
    systemic = np.zeros(rate0.shape + times.shape)
    for implant in implant_days:
        start = int(np.searchsorted(times, implant, side="right"))
        if start == times.size:
            continue
        tau = times[start:] - implant
        _accumulate(local[..., start:], systemic[..., start:], exponentials, tau)
    local /= v_local[..., None]
    return local, systemic


def _accumulate(local: np.ndarray, systemic: np.ndarray, exponentials, tau: np.ndarray) -> None:
    """Add ``sum_k a_k exp(-x_k tau)`` to both curves in place (coefficients per row)."""
    decay = np.empty(local.shape)
    term = np.empty(local.shape)
    for rate, local_coefficient, systemic_coefficient in exponentials:
        np.multiply(rate[..., None], -tau, out=decay)
        np.exp(decay, out=decay)
        if np.any(local_coefficient):
            np.multiply(decay, local_coefficient[..., None], out=term)
            local += term
        np.multiply(decay, systemic_coefficient[..., None], out=term)
        systemic += term
