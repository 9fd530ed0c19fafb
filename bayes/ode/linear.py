"""Closed-form amounts for the linear release -> cavity -> blood chain (CF-IL2 PK).

Model (time since implant ``tau >= 0``; all rates >= 0)::

    R(tau)     = R0 * exp(-k_fade * tau)                      release rate
    dA_L/dtau  = R - (k_absorb + k_out_local) * A_L            local (cavity) amount
    dA_S/dtau  = k_absorb * A_L - k_sys * A_S                  systemic amount

With ``g(x) = exp(-x * tau)`` and divided differences ``g[.]`` the solution from zero amounts is

    A_L = R0 * phi(k_fade, k_L_total)                 phi = -g[p, q]
    A_S = R0 * k_absorb * psi(k_fade, k_L_total, k_sys)   psi = g[p, q, r]

Both are symmetric in their rate arguments. They are evaluated after sorting the rates
(``a <= b <= c``) in the forms ``phi = tau exp(-a tau) E1((b - a) tau)`` and
``psi = tau**2 exp(-a tau) H(u, v)`` with ``E1(z) = (1 - exp(-z)) / z`` and ``H`` the second
divided difference of ``exp(-x)`` at ``0, u, v``; series expansions take over when the rate
differences times ``tau`` are small, so equal rates (e.g. ``k_sys == k_absorb + k_out_local``)
need no special casing, never divide by zero and keep full precision; gradients are finite
there as well (the formula branches are fed safe dummy arguments, "double-where" trick, and
the sort uses ``switch`` so a tie never double-counts a gradient).

A constant-rate (zero-order) input is the case ``k_fade = 0``; an input that stops at ``t_stop``
is the superposition of ``+R0`` from ``t_start`` and ``-R0`` from ``t_stop``.
"""

from __future__ import annotations

import pytensor.tensor as pt
from numpy.typing import ArrayLike
from pytensor.tensor.variable import TensorVariable

__all__ = ["chain_amounts", "exp_divided_difference_1", "exp_divided_difference_2", "exprel_neg"]

_SERIES_LIMIT = 1e-3


def exprel_neg(z: TensorVariable) -> TensorVariable:
    """Return ``(1 - exp(-z)) / z`` for ``z >= 0``, equal to 1 at ``z = 0``.

    Uses ``expm1`` and, for ``z < 1e-3``, the series ``1 - z/2 + z^2/6 - z^3/24 + z^4/120``
    (truncation error < 2e-18); both value and gradient are finite everywhere.
    """
    z = pt.as_tensor_variable(z)
    small = pt.lt(z, _SERIES_LIMIT)
    z_safe = pt.switch(small, 1.0, z)
    exact = -pt.expm1(-z_safe) / z_safe
    series = 1.0 - z / 2.0 * (1.0 - z / 3.0 * (1.0 - z / 4.0 * (1.0 - z / 5.0)))
    return pt.switch(small, series, exact)


def _sort2(p: TensorVariable, q: TensorVariable) -> tuple[TensorVariable, TensorVariable]:
    first = pt.le(p, q)
    return pt.switch(first, p, q), pt.switch(first, q, p)


def _sort3(p, q, r) -> tuple[TensorVariable, TensorVariable, TensorVariable]:
    low, high = _sort2(p, q)
    a, rest = _sort2(low, r)
    b, c = _sort2(high, rest)
    b, c = _sort2(b, c)
    return a, b, c


def exp_divided_difference_1(p, q, tau) -> TensorVariable:
    """Return ``phi = (exp(-p tau) - exp(-q tau)) / (q - p)`` (``tau exp(-p tau)`` if ``p == q``).

    ``phi`` is the response at time ``tau`` of a compartment with elimination rate ``q`` to a
    unit input decaying at rate ``p`` (and vice versa). Symmetric in ``p`` and ``q``.

    Parameters
    ----------
    p, q : TensorVariable
        Non-negative rate constants (broadcastable).
    tau : TensorVariable
        Non-negative elapsed times (broadcastable).

    Returns
    -------
    TensorVariable
    """
    a, b = _sort2(pt.as_tensor_variable(p), pt.as_tensor_variable(q))
    return tau * pt.exp(-a * tau) * exprel_neg((b - a) * tau)


def _second_difference_series(u: TensorVariable, v: TensorVariable) -> TensorVariable:
    """Divided difference of exp(-x) at (0, u, v) by the complete-homogeneous-polynomial series."""
    h1 = u + v
    h2 = u * u + u * v + v * v
    h3 = h2 * h1 - u * v * h1  # u^3 + u^2 v + u v^2 + v^3
    return 0.5 - h1 / 6.0 + h2 / 24.0 - h3 / 120.0


def exp_divided_difference_2(p, q, r, tau) -> TensorVariable:
    """Second divided difference ``psi = g[p, q, r]`` of ``g(x) = exp(-x tau)``.

    ``psi = sum_i exp(-x_i tau) / prod_{j != i} (x_j - x_i)`` for distinct rates, continued
    smoothly to equal rates (e.g. ``tau**2 exp(-p tau) / 2`` when all three are equal). It is
    the response of the second compartment of a two-compartment chain to a decaying input.

    Parameters
    ----------
    p, q, r : TensorVariable
        Non-negative rate constants (broadcastable).
    tau : TensorVariable
        Non-negative elapsed times (broadcastable).

    Returns
    -------
    TensorVariable
    """
    a, b, c = _sort3(*(pt.as_tensor_variable(x) for x in (p, q, r)))
    u, v = (b - a) * tau, (c - a) * tau  # 0 <= u <= v
    small = pt.lt(v, _SERIES_LIMIT)
    v_safe = pt.switch(small, 1.0, v)
    u_safe = pt.switch(small, 0.5, u)
    # H(0, u, v) = (h[u, v] - h[0, u]) / v with h[x, y] = -exp(-x) E1(y - x); no cancellation
    # because the largest spread v is the denominator.
    exact = (exprel_neg(u_safe) - pt.exp(-u_safe) * exprel_neg(v_safe - u_safe)) / v_safe
    scaled = pt.switch(small, _second_difference_series(u, v), exact)
    return tau * tau * pt.exp(-a * tau) * scaled


def chain_amounts(
    t: ArrayLike | TensorVariable,
    implant_times: ArrayLike | TensorVariable,
    release_rate: ArrayLike | TensorVariable,
    k_fade: ArrayLike | TensorVariable,
    k_out_local: ArrayLike | TensorVariable,
    k_absorb: ArrayLike | TensorVariable,
    k_sys: ArrayLike | TensorVariable,
) -> tuple[TensorVariable, TensorVariable]:
    """Local and systemic amounts of the release -> cavity -> blood chain, summed over implants.

    Parameters
    ----------
    t : array_like or TensorVariable, shape (subject, n_times)
        Times at which the amounts are wanted.
    implant_times : array_like or TensorVariable, shape (subject, n_implants)
        Implant times; pad missing implants with ``numpy.inf`` (or a zero ``release_rate``).
    release_rate : array_like or TensorVariable, shape (subject, n_implants)
        Initial release rate ``R0`` of each implant (amount per time), e.g. ``D_g * rho_i``.
    k_fade : array_like or TensorVariable, shape (subject,)
        Decline rate of the release (0 for a constant-rate input).
    k_out_local : array_like or TensorVariable, shape (subject,)
        Local loss rate ``k_L`` from the cavity other than absorption.
    k_absorb : array_like or TensorVariable, shape (subject,)
        Absorption rate ``k_a`` from cavity to blood.
    k_sys : array_like or TensorVariable, shape (subject,)
        Systemic elimination rate ``k_S``.

    Returns
    -------
    amount_local, amount_systemic : TensorVariable, shape (subject, n_times)
        ``A_L(t)`` and ``A_S(t)``; zero before the first implant.

    Examples
    --------
    >>> import numpy as np
    >>> a_l, a_s = chain_amounts(
    ...     np.array([[1.0, 2.0]]), np.array([[0.0]]), np.array([[10.0]]),
    ...     np.array([0.1]), np.array([1.0]), np.array([2.0]), np.array([3.0]),
    ... )
    """
    t = pt.as_tensor_variable(t)[:, :, None]
    implant = pt.as_tensor_variable(implant_times)[:, None, :]
    rate0 = pt.as_tensor_variable(release_rate)[:, None, :]
    k_fade, k_out_local, k_absorb, k_sys = (
        pt.as_tensor_variable(k)[:, None, None] for k in (k_fade, k_out_local, k_absorb, k_sys)
    )
    elapsed = t - implant
    started = pt.gt(elapsed, 0.0)
    tau = pt.switch(started, elapsed, 0.0)
    k_local = k_absorb + k_out_local
    local = rate0 * exp_divided_difference_1(k_fade, k_local, tau)
    systemic = rate0 * k_absorb * exp_divided_difference_2(k_fade, k_local, k_sys, tau)
    amount_local = pt.switch(started, local, 0.0).sum(axis=-1)
    amount_systemic = pt.switch(started, systemic, 0.0).sum(axis=-1)
    return amount_local, amount_systemic
