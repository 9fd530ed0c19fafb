"""Checks of the human PK part against published human IL-2 data.

:func:`iv_bolus_check` simulates an aldesleukin i.v. bolus through the human systemic
disposition of every draw (typical 70 kg patient) and analyses the simulated curve the way the
published studies did: terminal half-life by log-linear regression over 4-12 h, distribution
half-life by curve stripping (residuals over the first 30 min), clearance as dose / AUC(0-inf).
The medians must lie in the published ranges (``[[human_pk.check]]`` of the translation priors:
Konrad 1990, aldesleukin label).

:func:`intracavitary_check` compares the predicted peritoneal local/systemic ratio and the
local elimination half-life after an i.p. instillation with the published human i.p. data
(Konrad 1990: serum ~430-fold below peritoneal fluid, serum t1/2 6.3 h after i.p.; phase I
ovarian: > 100x at 1e6 U/m2, > 500x at 1e7 U/m2). These are reported, not used as inputs.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from bayes.translate.config import BodyWeight, Scenario, TranslationPriors
from bayes.translate.scaling import LN2, MINUTES_PER_DAY, human_parameters
from bayes.translate.uncertainty import TranslationDraws

__all__ = ["INTRACAVITARY_REFERENCES", "bolus_curve", "intracavitary_check", "iv_bolus_check"]

_BOLUS_MINUTES = np.arange(0.0, 12 * 60 + 1.0, 1.0)
_TERMINAL_WINDOW = (240.0, 720.0)
_STRIP_WINDOW = (2.0, 30.0)
_INSTILLED_ML = 1750.0
"""Clinical i.p. instillation volume 1.5-2 L (LITERATURE.md: Scaling and physiology)."""

INTRACAVITARY_REFERENCES = (
    {
        "quantity": "peritoneal_local_systemic_ratio",
        "low": 100.0,
        "high": 500.0,
        "published": "430-fold (Konrad 1990 i.p. infusion); > 100x at 1e6 U/m2, > 500x at 1e7 U/m2 "
        "(phase I ovarian)",
        "source": "LITERATURE.md: IL-2 pharmacokinetics / human i.p. infusion and human i.p. "
        "1e6 U/m2",
    },
    {
        "quantity": "peritoneal_local_half_life_h",
        "low": 6.3,
        "high": 24.0,
        "published": "serum t1/2 after i.p. 6.3 h (Konrad 1990); peritoneal IL-2 persists > 24 h "
        "(phase I ovarian)",
        "source": "LITERATURE.md: IL-2 pharmacokinetics / human i.p. infusion and human i.p. "
        "1e6 U/m2",
    },
)
"""Published human intracavitary IL-2 data used as a check (not as inputs)."""


def _typical_patient(cavity: str, effusion: bool = False) -> Scenario:
    return Scenario(
        name="typical",
        cavity=cavity,
        effusion=effusion,
        body_weight=BodyWeight(median_kg=70.0, cv=0.0),
        capsules=1.0,
        output_per_capsule_ug_per_day=1.0,
        total_output_ug_per_day=1.0,
        implant_days=(0.0,),
        anti_pd1_days=(),
        horizon_days=1.0,
        reference_day=1.0,
    )


def bolus_curve(params: dict[str, np.ndarray], dose_ng: float, minutes: np.ndarray) -> np.ndarray:
    """Serum concentration (ng/mL) after an i.v. bolus, shape ``(*batch, time)``."""
    t_days = minutes / MINUTES_PER_DAY
    fraction = params["alpha_fraction"][..., None]
    alpha, beta = params["alpha"][..., None], params["beta"][..., None]
    return (
        dose_ng
        / params["v_central"][..., None]
        * (fraction * np.exp(-alpha * t_days) + (1.0 - fraction) * np.exp(-beta * t_days))
    )


def _log_linear_slope(minutes: np.ndarray, values: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Least-squares slope and intercept of ln(values) on minutes, per row."""
    logs = np.log(np.maximum(values, 1e-300))
    centred = minutes - minutes.mean()
    slope = (logs * centred).sum(axis=-1) / (centred**2).sum()
    intercept = logs.mean(axis=-1) - slope * minutes.mean()
    return slope, intercept


def analyse_bolus(minutes: np.ndarray, concentration: np.ndarray, dose_ng: float) -> dict:
    """Non-compartmental analysis of bolus curves: half-lives (min) and clearance (mL/min)."""
    terminal = (minutes >= _TERMINAL_WINDOW[0]) & (minutes <= _TERMINAL_WINDOW[1])
    slope_terminal, intercept = _log_linear_slope(minutes[terminal], concentration[..., terminal])
    early = (minutes >= _STRIP_WINDOW[0]) & (minutes <= _STRIP_WINDOW[1])
    residual = concentration[..., early] - np.exp(
        intercept[..., None] + slope_terminal[..., None] * minutes[early]
    )
    slope_alpha, _ = _log_linear_slope(minutes[early], residual)
    auc = np.trapezoid(concentration, minutes, axis=-1)
    auc_inf = auc + concentration[..., -1] / -slope_terminal
    return {
        "half_life_alpha_min": LN2 / -slope_alpha,
        "half_life_beta_min": LN2 / -slope_terminal,
        "clearance_ml_per_min": dose_ng / auc_inf,
        "central_volume_ml": dose_ng / concentration[..., 0],
    }


def iv_bolus_check(
    draws: TranslationDraws, priors: TranslationPriors, dose_ug: float = 1000.0
) -> pd.DataFrame:
    """Compare the simulated aldesleukin i.v. bolus PK with published values.

    Parameters
    ----------
    draws : TranslationDraws
        Translation inputs; patients are set to the typical 70 kg patient.
    priors : TranslationPriors
        Give the published ranges (``[[human_pk.check]]``).
    dose_ug : float
        Bolus dose (linear PK: the half-lives and clearance do not depend on it).

    Returns
    -------
    pandas.DataFrame
        One row per quantity: median, q05, q95 over draws, published low/high, source and
        ``within`` (median inside the published range). The central volume is reported
        without a range.
    """
    typical = draws.fixed(["between_patient"]).subset(draws.shape[0], 1)
    params = human_parameters(typical, priors, _typical_patient(priors.scaling.mouse_cavity))
    params = {k: v[:, 0] for k, v in params.items()}
    curve = bolus_curve(params, dose_ug * 1000.0, _BOLUS_MINUTES)
    analysed = analyse_bolus(_BOLUS_MINUTES, curve, dose_ug * 1000.0)
    allometric = params["clearance_sys_allometric"] / MINUTES_PER_DAY
    analysed["allometric_clearance_ml_per_min"] = allometric
    ranges = {c.quantity: c for c in priors.human_pk.check}
    rows = []
    for quantity, values in analysed.items():
        q05, median, q95 = np.quantile(values, [0.05, 0.5, 0.95])
        published = ranges.get(quantity)
        low, high = (published.low, published.high) if published else (np.nan, np.nan)
        rows.append(
            {
                "quantity": quantity,
                "median": median,
                "q05": q05,
                "q95": q95,
                "published_low": low,
                "published_high": high,
                "within": bool(low <= median <= high) if published else None,
                "source": published.source if published else _unranged_note(quantity),
            }
        )
    return pd.DataFrame(rows)


def _unranged_note(quantity: str) -> str:
    if quantity == "allometric_clearance_ml_per_min":
        return "allometric prediction from the mouse posterior alone (weight^b), for comparison"
    return "implied by the combined clearance and the published half-lives; no published range"


def intracavitary_check(draws: TranslationDraws, priors: TranslationPriors) -> pd.DataFrame:
    """Compare predicted peritoneal ratio and local half-life with human i.p. data.

    The ratio is the quasi-steady-state ``C_L / C_S = CL_S / CL_a`` of a typical 70 kg patient;
    the half-life is ``ln 2 / ((CL_a + CL_loss) / V)`` with the clinically instilled volume
    (1.75 L) added to the local volume. Returns one row per reference with the predicted median
    and 90% interval and ``within`` (median inside the published range).
    """
    if "peritoneal" not in priors.scaling.cavity:
        return pd.DataFrame()
    typical = draws.fixed(["between_patient"]).subset(draws.shape[0], 1)
    params = human_parameters(typical, priors, _typical_patient("peritoneal"))
    params = {k: v[:, 0] for k, v in params.items()}
    ratio = params["clearance_sys"] / params["clearance_abs"]
    volume = params["v_local"] + _INSTILLED_ML
    half_life_h = LN2 / ((params["clearance_abs"] + params["clearance_loss"]) / volume) * 24.0
    rows = []
    for reference, values in zip(INTRACAVITARY_REFERENCES, (ratio, half_life_h), strict=True):
        q05, median, q95 = np.quantile(values, [0.05, 0.5, 0.95])
        rows.append(
            {
                **reference,
                "median": median,
                "q05": q05,
                "q95": q95,
                "within": bool(reference["low"] <= median <= reference["high"]),
            }
        )
    return pd.DataFrame(rows)
