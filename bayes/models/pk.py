"""Local (cavity) and systemic (blood) IL-2 in closed form, parameterised by their ratio.

``dA_L/dt = R(t) - (k_abs + k_local_loss) A_L``, ``dA_S/dt = k_abs A_L - k_sys A_S``,
``C_L = A_L / v_local``, ``C_S = A_S / v_sys`` (DESIGN section 4). Instead of the absorption rate,
the model names the interpretable ratio of clearances ``local_systemic_ratio = CL_S / CL_a
= (k_sys v_sys) / (k_abs v_local)``, which is ``C_L / C_S`` at quasi-steady state (~150 in
mesothelioma mice, Nash 2022), so ``k_abs = k_sys v_sys / (local_systemic_ratio v_local)``.
Instead of the local loss rate, it names the ``absorbed_fraction`` ``f = CL_a / (CL_a +
CL_loss)`` of local IL-2 that leaves the cavity into blood (the rest is consumed locally), so
``k_local_loss = k_abs (1 - f) / f``.

Why these two: with IL-2 measured days after implant, the data identify the steady-state cavity
concentration per unit output, ``rho f / CL_a``, and the ratio; they do not identify the volumes
or ``k_sys`` alone. Written with ``k_local_loss`` the identified combination is a curved ridge
in ``(k_sys, v_sys, v_local, k_local_loss)`` (a sum of clearances), which NUTS crosses only with
tiny steps; with ``f`` it is a plane in log space, and ``v_local`` drops out of it.

Release is a sum of decaying exponentials per implant (:mod:`bayes.models.release`), so both
amounts are sums of closed-form chain solutions (:func:`bayes.ode.linear.chain_amounts`), exact
when rate constants coincide.
"""

from __future__ import annotations

from collections.abc import Mapping

import numpy as np
import pytensor.tensor as pt
from pytensor.tensor.variable import TensorVariable

from bayes.models.release import ReleaseShape, release_terms
from bayes.ode.linear import chain_amounts, exp_divided_difference_1

PK_PARAMETERS = ("k_sys", "v_sys", "v_local", "local_systemic_ratio", "absorbed_fraction")
NG_PER_UG = 1000.0


def absorption_rate(p: Mapping[str, TensorVariable]) -> TensorVariable:
    """Return ``k_abs = k_sys v_sys / (local_systemic_ratio v_local)`` (1/day)."""
    return p["k_sys"] * p["v_sys"] / (p["local_systemic_ratio"] * p["v_local"])


def local_loss_rate(p: Mapping[str, TensorVariable]) -> TensorVariable:
    """Return ``k_local_loss = k_abs (1 - f) / f`` (1/day), ``f`` the absorbed fraction."""
    fraction = p["absorbed_fraction"]
    return absorption_rate(p) * (1.0 - fraction) / fraction


def local_elimination_rate(p: Mapping[str, TensorVariable]) -> TensorVariable:
    """Return ``k_abs + k_local_loss = k_abs / f`` (1/day)."""
    return absorption_rate(p) / p["absorbed_fraction"]


def log_exposure_shift(p: Mapping[str, TensorVariable]) -> TensorVariable:
    """Return ``ln(1000 f / CL_a)``, the shift from ``ln rho`` to the identified log exposure.

    ``ln rho`` plus this is the log steady-state cavity IL-2 per ug/day of measured capsule
    output (ng/mL per ug/day), which the data identify;
    ``CL_a = k_sys v_sys / local_systemic_ratio`` (mL/day). Used to sample ``rho`` through
    ``local_exposure`` (:class:`bayes.models.spec.IdentifiedScale`).
    """
    clearance_abs = p["k_sys"] * p["v_sys"] / p["local_systemic_ratio"]
    return pt.log(NG_PER_UG * p["absorbed_fraction"] / clearance_abs)


def il2_concentrations(
    t: TensorVariable,
    implant_times: TensorVariable,
    implant_outputs: TensorVariable,
    p: Mapping[str, TensorVariable],
    shape: ReleaseShape = "exponential",
) -> tuple[TensorVariable, TensorVariable]:
    """Return local and systemic IL-2 concentrations (ng/mL) at times ``t``.

    Parameters
    ----------
    t : TensorVariable, shape (n,)
        Times (day), one per row (subject or observation).
    implant_times, implant_outputs : TensorVariable, shape (n, n_implant)
        Implant times (day) and measured capsule outputs (ug/day) of each row's subject; padded
        implants have output 0.
    p : mapping
        Per-row parameters (shape ``(n,)``): release (``rho``, ``k_fade``...) and PK.
    shape : {"exponential", "biphasic"}
        Release shape.

    Returns
    -------
    tuple of TensorVariable
        ``(C_L, C_S)``, each shape ``(n,)``.
    """
    k_abs = absorption_rate(p)
    k_local_loss = local_loss_rate(p)
    rate0 = implant_outputs * p["rho"][:, None] * NG_PER_UG
    local = systemic = 0.0
    for weight, k_release in release_terms(shape, p):
        weight = pt.as_tensor_variable(weight)
        weighted = rate0 * (weight[:, None] if weight.ndim == 1 else weight)
        a_local, a_sys = chain_amounts(
            t[:, None], implant_times, weighted, k_release, k_local_loss, k_abs, p["k_sys"]
        )
        local = local + a_local[:, 0]
        systemic = systemic + a_sys[:, 0]
    return local / p["v_local"], systemic / p["v_sys"]


def local_concentration_grid(
    times: np.ndarray,
    implant_times: np.ndarray,
    implant_outputs: np.ndarray,
    p: Mapping[str, TensorVariable],
    shape: ReleaseShape = "exponential",
) -> TensorVariable:
    """Return local IL-2 (ng/mL) of every subject at shared ``times``, shape ``(subject, G)``.

    The same closed form as :func:`il2_concentrations`, broadcast over a time grid instead of
    one time per row (no systemic amount, no per-row copies of the parameters).

    Parameters
    ----------
    times : numpy.ndarray, shape (G,)
        Grid times (day).
    implant_times, implant_outputs : numpy.ndarray, shape (subject, n_implant)
        Implant times (day) and capsule outputs (ug/day), zero-padded.
    p : mapping
        Per-subject parameters (shape ``(subject,)``).
    shape : {"exponential", "biphasic"}
        Release shape.
    """
    elapsed = times[None, :, None] - implant_times[:, None, :]
    started = (elapsed > 0) * implant_outputs[:, None, :] * NG_PER_UG
    tau = _distinct_rows(np.maximum(elapsed, 0.0))
    k_local = local_elimination_rate(p)[:, None, None]
    rho = p["rho"][:, None, None]
    amount = 0.0
    for weight, k_release in release_terms(shape, p):
        weight = pt.as_tensor_variable(weight)
        weight = weight[:, None, None] if weight.ndim == 1 else weight
        response = exp_divided_difference_1(k_release[:, None, None], k_local, tau)
        amount = amount + (weight * rho * started * response).sum(axis=-1)
    return amount / p["v_local"][:, None]


def _distinct_rows(elapsed: np.ndarray) -> np.ndarray:
    """``elapsed`` with one row if all subjects share one implant schedule, else unchanged.

    With population-level release and PK rates (shape ``(1,)``), the response to a shared
    schedule is then computed once for the grid instead of once per subject.
    """
    return elapsed[:1] if np.all(elapsed == elapsed[:1]) else elapsed
