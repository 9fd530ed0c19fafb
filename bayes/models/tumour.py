"""Tumour burden in log space, ``y = ln(burden)``, with selectable growth laws and eradication.

``dy/dt = growth(y) - kill``, where the growth laws are written relative to a reference log
burden ``y_ref`` (CF-IL2: one value for the whole study, the model's ``burden_reference`` or the
median first observation), so ``growth_rate`` is the specific growth rate at that burden for
every law:

- exponential: ``growth_rate``;
- Gompertz: ``growth_rate - gompertz_beta (y - y_ref)`` (Benzekry 2014: describes mouse growth
  best among classical laws);
- logistic: ``growth_rate (1 - exp(y - y_K)) / (1 - exp(y_ref - y_K))`` with the log capacity
  ``y_K`` (``carrying_log_capacity``, whose prior is an offset above ``y_ref``).

Eradication (extinction threshold): the free log burden ``y`` (growth and kill only) is what a
tumour would do if it could not die out. Below the extinction threshold ``y_ext``
(``extinction_log_burden``, whose prior is an offset below ``y_ref``; about 1-100 cells left) a
tumour goes extinct at the hazard ``EXTINCTION_RATE * sigmoid((y_ext - y) / EXTINCTION_WIDTH)``;
its cumulative hazard ``H`` is a state. The observed log burden is
``y_floor + exp(-H) (y - y_floor)`` with ``y_floor = y_ext - KILL_FLOOR``: an eradicated tumour
rests at the floor, below any detection limit, and stays there after the immune effect fades
("cured without recurrence"), while a regression that stops short of the threshold regrows.
Every state obeys a linear ODE given the states above it, so the CF-IL2 model solves exactly
on a time grid (:mod:`bayes.models.cf_il2_solution`).
"""

from __future__ import annotations

from typing import Literal

import pytensor.tensor as pt
from pytensor.tensor.variable import TensorVariable

GrowthLaw = Literal["exponential", "gompertz", "logistic"]
GROWTH_PARAMETERS: dict[str, tuple[str, ...]] = {
    "exponential": ("growth_rate",),
    "gompertz": ("growth_rate", "gompertz_beta"),
    "logistic": ("growth_rate", "carrying_log_capacity"),
}
EXTINCTION_WIDTH = 0.25
"""Width (ln units) of the step of the extinction hazard around the threshold."""
KILL_FLOOR = 10 * EXTINCTION_WIDTH
"""How far (ln units) below the extinction threshold an eradicated tumour's log burden rests."""
EXTINCTION_RATE = 5.0
"""Extinction hazard (1/day) well below the threshold: a tumour whose free burden stays below it
for a day is gone (rationale: with 1-100 cells left, the immune attack that drove the burden
there clears the rest within hours to a day)."""


def growth_rate_at(
    law: GrowthLaw, log_burden: TensorVariable, reference: TensorVariable, p
) -> TensorVariable:
    """Return the specific growth rate ``d ln N / dt`` of an untreated tumour.

    Parameters
    ----------
    law : {"exponential", "gompertz", "logistic"}
        Growth law.
    log_burden : TensorVariable
        Current log burden ``y``.
    reference : TensorVariable
        Reference log burden ``y_ref``, one per subject (see the module docstring).
    p : mapping
        Parameters: ``growth_rate`` and ``gompertz_beta`` or the absolute log capacity
        ``carrying_log_capacity``.
    """
    if law == "exponential":
        return p["growth_rate"] * pt.ones_like(log_burden)
    if law == "gompertz":
        return p["growth_rate"] - p["gompertz_beta"] * (log_burden - reference)
    if law == "logistic":
        capacity = p["carrying_log_capacity"]
        scale = -pt.expm1(reference - capacity)
        return p["growth_rate"] * (-pt.expm1(log_burden - capacity)) / scale
    raise ValueError(f"unknown growth law {law!r}; choose from {sorted(GROWTH_PARAMETERS)}")


def extinction_hazard(log_burden: TensorVariable, extinction_log_burden: TensorVariable):
    """Return the hazard (1/day) of extinction: ``EXTINCTION_RATE`` well below the threshold."""
    return EXTINCTION_RATE * pt.sigmoid((extinction_log_burden - log_burden) / EXTINCTION_WIDTH)


def observed_log_burden(
    free_log_burden: TensorVariable, hazard: TensorVariable, extinction_log_burden: TensorVariable
) -> TensorVariable:
    """Return the log burden of a tumour that survived with probability ``exp(-hazard)``."""
    floor = extinction_log_burden - KILL_FLOOR
    return floor + pt.exp(-hazard) * (free_log_burden - floor)
