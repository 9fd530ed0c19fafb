"""Tumour burden in log space, ``y = ln(burden)``, with selectable growth laws and eradication.

``dy/dt = growth(y) * alive(y) - kill * killable(y)``, where the growth laws are written relative
to each subject's reference log burden ``y_ref`` (its first observation), so ``growth_rate`` is
the specific growth rate at the start for every law:

- exponential: ``growth_rate``;
- Gompertz: ``growth_rate - gompertz_beta (y - y_ref)`` (Benzekry 2014: describes mouse growth
  best among classical laws);
- logistic: ``growth_rate (1 - exp(y - y_K)) / (1 - exp(y_ref - y_K))`` with the log capacity
  ``y_K`` (``carrying_log_capacity``, whose prior is an offset above ``y_ref``).

Eradication: below the extinction threshold ``y_ext`` (``extinction_log_burden``, whose prior is an
offset below ``y_ref``; about 1-100 cells left) a tumour cannot regrow: ``alive(y)`` is a steep
logistic step from 1 to 0 around ``y_ext``. Killing stops a little lower (``killable(y)``, the
same step ``KILL_FLOOR`` ln units below), so the log burden of an eradicated tumour comes to rest
there, where growth is ~1e-5 of its rate: it stays eradicated after the immune effect has faded
("cured without recurrence"), while a regression that stops short of the threshold regrows.
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
"""Width (ln units) of the step from growing to extinct around the extinction threshold."""
KILL_FLOOR = 10 * EXTINCTION_WIDTH
"""How far (ln units) below the extinction threshold killing stops."""


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
        Reference log burden ``y_ref`` (subject's first observation).
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


def alive_fraction(log_burden: TensorVariable, extinction_log_burden: TensorVariable):
    """Return a smooth step: 1 well above the extinction threshold, 0 below it."""
    return pt.sigmoid((log_burden - extinction_log_burden) / EXTINCTION_WIDTH)


def killable_fraction(log_burden: TensorVariable, extinction_log_burden: TensorVariable):
    """Return a smooth step that ends killing ``KILL_FLOOR`` below the extinction threshold."""
    return pt.sigmoid((log_burden - extinction_log_burden + KILL_FLOOR) / EXTINCTION_WIDTH)
