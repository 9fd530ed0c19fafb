"""Parameter recovery: a fit's posterior intervals against the values that generated its data.

Used for synthetic cohorts (:mod:`bayes.models.virtual_cohort`), whose recipe holds every
generating population parameter: ``cytofactory cohort recovery RUN_DIR --recipe RECIPE``.
"""

from __future__ import annotations

from collections.abc import Mapping

import numpy as np
import pandas as pd
import pytensor.tensor as pt
import xarray as xr

from bayes.models.spec import IdentifiedScale

SAMPLE_DIMS = ("chain", "draw")


def recovery_table(
    posterior: xr.Dataset,
    truths: Mapping[str, float],
    identified: Mapping[str, IdentifiedScale] | None = None,
    prob: float = 0.9,
) -> pd.DataFrame:
    """Compare each generating value with its posterior median and central interval.

    Parameters
    ----------
    posterior : xarray.Dataset
        Posterior draws with dimensions ``chain`` and ``draw`` (a run's ``posterior`` group).
    truths : mapping
        Generating value of each population parameter (a cohort recipe's ``parameters``).
        Names without a scalar posterior variable are skipped.
    identified : mapping, optional
        Parameters sampled through an :class:`~bayes.models.spec.IdentifiedScale` (parameter
        name -> scale); for each, the identified quantity ``exp(ln theta + shift)`` gets a row
        whose true value is computed from ``truths``.
    prob : float
        Probability mass of the central interval.

    Returns
    -------
    pandas.DataFrame
        One row per parameter: ``parameter``, ``true``, ``median``, ``low``, ``high``,
        ``inside`` (the true value lies in the interval).

    Raises
    ------
    ValueError
        If ``prob`` is not in (0, 1) or no generating value has a posterior variable.
    """
    if not 0.0 < prob < 1.0:
        raise ValueError(f"prob must be in (0, 1), got {prob}")
    rows = [
        _row(name, float(value), posterior[name].values, prob)
        for name, value in truths.items()
        if name in posterior and set(posterior[name].dims) == set(SAMPLE_DIMS)
    ]
    for theta, scale in (identified or {}).items():
        variable = f"log_{scale.name}"
        if variable in posterior and theta in truths:
            truth = _identified_truth(theta, scale, truths)
            rows.append(_row(scale.name, truth, np.exp(posterior[variable].values), prob))
    if not rows:
        raise ValueError(
            "none of the generating values has a scalar posterior variable "
            f"(values: {sorted(truths)}; posterior: {sorted(posterior.data_vars)})"
        )
    return pd.DataFrame(rows)


def _row(name: str, truth: float, draws: np.ndarray, prob: float) -> dict[str, object]:
    tail = (1.0 - prob) / 2.0
    low, median, high = np.quantile(draws.ravel(), [tail, 0.5, 1.0 - tail])
    return {
        "parameter": name,
        "true": truth,
        "median": float(median),
        "low": float(low),
        "high": float(high),
        "inside": bool(low <= truth <= high),
    }


def _identified_truth(theta: str, scale: IdentifiedScale, truths: Mapping[str, float]) -> float:
    constants = {name: pt.constant(float(value)) for name, value in truths.items()}
    shift = float(scale.log_shift(constants).eval())
    return float(np.exp(np.log(truths[theta]) + shift))


def format_recovery(table: pd.DataFrame, prob: float = 0.9) -> str:
    """Return ``table`` as aligned text lines, with the count of values inside the intervals."""
    lines = [f"{'parameter':32s} {'true':>10s} {'median':>10s}  {prob:.0%} interval"]
    for row in table.itertuples():
        mark = "" if row.inside else "   OUTSIDE"
        lines.append(
            f"{row.parameter:32s} {row.true:10.4g} {row.median:10.4g}  "
            f"{row.low:.4g} - {row.high:.4g}{mark}"
        )
    lines.append(
        f"{int(table['inside'].sum())} of {len(table)} generating values inside their "
        f"{prob:.0%} intervals"
    )
    return "\n".join(lines)
