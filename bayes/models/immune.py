"""Immune effect: a Hill function of local IL-2 drives an effect compartment; anti-PD-1 enhances.

``dE/dt = k_effect (S(C_L) - E)`` with ``S(C) = C^h / (EC50^h + C^h)`` (DESIGN section 4): ``E`` is
the fraction of maximal immune kill, lagging local exposure by ``1/k_effect`` days. Anti-PD-1
exposure ``P`` (in units of one standard dose, decaying at ``k_pd1``) multiplies killing by
``1 + pd1_enhancement * P`` while it lasts.
"""

from __future__ import annotations

import pytensor.tensor as pt
from pytensor.tensor.variable import TensorVariable


def hill_stimulus(concentration: TensorVariable, ec50: TensorVariable, hill: TensorVariable):
    """Return ``C^h / (EC50^h + C^h)``, computed as a logistic of ``h (ln C - ln EC50)``.

    The logistic form is exact, stays in [0, 1] and has finite gradients at ``C = 0``.
    """
    log_ratio = pt.log(pt.maximum(concentration, 1e-300)) - pt.log(ec50)
    return pt.sigmoid(hill * log_ratio)


def effect_derivative(
    effect: TensorVariable, stimulus: TensorVariable, k_effect: TensorVariable
) -> TensorVariable:
    """Return ``dE/dt = k_effect (S - E)``."""
    return k_effect * (stimulus - effect)


def pd1_factor(exposure: TensorVariable, enhancement: TensorVariable) -> TensorVariable:
    """Return the multiplicative enhancement of killing ``1 + delta * P``."""
    return 1.0 + enhancement * exposure
