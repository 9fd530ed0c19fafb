"""Compare a mouse cohort's observed data with the published cytokine-factory figures.

Each :class:`CohortCheck` turns one row of ``datasets/published_results.csv`` into a statistic of
the observed data (never of model parameters) and an acceptance range. The ranges encode how
precisely the public accounts state each figure: "~" figures get a band, "more than" figures a
one-sided bound, counts the observed fraction give or take about one binomial standard deviation.

Definitions (burden = the burden analyte, relative to each mouse's day-0 value):

- reduction at day ``d``: ``1 - burden(d) / burden(0)``; a value below the detection limit counts
  as the limit, so the reduction is a lower bound;
- cured: below the detection limit at every imaging session from day ``CURE_FROM_DAY`` on, and
  followed to the last scheduled session (no recurrence);
- survival: day of the session at which a mouse reached the humane end point (it is then
  euthanised: it has no later observations); mice that never reached it survive past their last
  session.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
import pandas as pd

from bayes.data import Study
from bayes.data.published import load_published_results

CURE_FROM_DAY = 28.0
"""Cure needs non-detection from this day to the end of follow-up (at least two weeks)."""


@dataclass(frozen=True)
class CohortDesignInfo:
    """Which groups play which role in the published figures."""

    burden_analyte: str
    monotherapy: dict[str, float]
    combination: tuple[str, ...]
    control: tuple[str, ...]
    il2_local: str = "il2_local"
    il2_serum: str = "il2_serum"


@dataclass(frozen=True)
class CohortCheck:
    """A published figure, its statistic on the cohort and the accepted range."""

    published_id: str
    definition: str
    statistic: Callable[[Study, CohortDesignInfo], tuple[float, str]]
    low: float
    high: float
    tolerance: str


def burden_table(study: Study, analyte: str) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Return (values, censored) tables of the burden analyte, subject x day."""
    burden = study.observations[study.observations["analyte"] == analyte]
    values = burden.pivot(index="subject", columns="time", values="value")
    censored = burden.pivot(index="subject", columns="time", values="censored")
    return values, censored.astype("boolean")


def _group_of(study: Study) -> pd.Series:
    return study.observations.drop_duplicates("subject").set_index("subject")["group"]


def reduction_at(study: Study, info: CohortDesignInfo, day: float) -> pd.Series:
    """Per-mouse fractional burden reduction at ``day`` (NaN if not imaged that day)."""
    values, _ = burden_table(study, info.burden_analyte)
    first = values.iloc[:, 0]
    return 1.0 - values.get(day, pd.Series(np.nan, index=values.index)) / first


def cured(study: Study, info: CohortDesignInfo) -> pd.Series:
    """Per-mouse cure flag (see module docstring)."""
    values, censored = burden_table(study, info.burden_analyte)
    last_day = values.columns.max()
    late = censored.loc[:, values.columns >= CURE_FROM_DAY]
    followed = values[last_day].notna()
    return (late.fillna(False).all(axis=1) & followed).astype(bool)


def survival_days(study: Study, info: CohortDesignInfo) -> tuple[pd.Series, pd.Series]:
    """Return per-mouse (last imaging day, whether the mouse reached the end point)."""
    values, _ = burden_table(study, info.burden_analyte)
    last_scheduled = values.columns.max()
    last_seen = values.apply(lambda row: row.last_valid_index(), axis=1).astype(float)
    return last_seen, last_seen < last_scheduled


def _mice(study: Study, groups) -> pd.Index:
    group = _group_of(study)
    return group.index[group.isin(list(groups))]


def _local_systemic_ratio(study: Study, info: CohortDesignInfo) -> tuple[float, str]:
    obs = study.observations
    quantified = obs[~obs["censored"].astype(bool)]
    local = quantified[quantified["analyte"] == info.il2_local].set_index(["subject", "time"])
    serum = quantified[quantified["analyte"] == info.il2_serum].set_index(["subject", "time"])
    ratio = (local["value"] / serum["value"]).dropna()
    return float(np.median(ratio)), f"median of {len(ratio)} paired samples"


def _mean_reduction(study: Study, info: CohortDesignInfo) -> tuple[float, str]:
    red = reduction_at(study, info, 7.0).loc[_mice(study, info.monotherapy)].dropna()
    geometric = 1.0 - float(np.exp(np.mean(np.log(1.0 - red))))
    return geometric, f"geometric mean over {len(red)} monotherapy mice"


def _responders(study: Study, info: CohortDesignInfo) -> tuple[float, str]:
    red = reduction_at(study, info, 7.0).loc[_mice(study, info.monotherapy)]
    hits = int((red > 0.45).sum())
    return hits / len(red), f"{hits} of {len(red)} mice"


def _deep_high_dose(study: Study, info: CohortDesignInfo) -> tuple[float, str]:
    high = [g for g, dose in info.monotherapy.items() if dose >= 2.5]
    red = reduction_at(study, info, 7.0).loc[_mice(study, high)]
    hits = int((red > 0.75).sum())
    return hits / len(red), f"{hits} of {len(red)} mice"


def _reduction_top_dose(study: Study, info: CohortDesignInfo) -> tuple[float, str]:
    top = max(info.monotherapy, key=info.monotherapy.get)
    red = reduction_at(study, info, 7.0).loc[_mice(study, [top])]
    return float(red.median()), f"median of {len(red)} mice ({top}); min {red.min():.2f}"


def _survival_low_dose(study: Study, info: CohortDesignInfo) -> tuple[float, str]:
    low = min(info.monotherapy, key=info.monotherapy.get)
    last_seen, reached = survival_days(study, info)
    controls = last_seen.loc[_mice(study, info.control)]
    control_median = float(controls.median())
    mice = last_seen.loc[_mice(study, [low])]
    long = int((mice >= 2 * control_median).sum())
    note = f"{long} of {len(mice)} mice ({low}) past 2 x control median {control_median:g} days"
    return long / len(mice), note


def _monotherapy_cures(study: Study, info: CohortDesignInfo) -> tuple[float, str]:
    flags = cured(study, info).loc[_mice(study, info.monotherapy)]
    return float(flags.mean()), f"{int(flags.sum())} of {len(flags)} mice"


def _combination_cures(study: Study, info: CohortDesignInfo) -> tuple[float, str]:
    flags = cured(study, info).loc[_mice(study, info.combination)]
    return float(flags.mean()), f"{int(flags.sum())} of {len(flags)} mice"


CHECKS: tuple[CohortCheck, ...] = (
    CohortCheck(
        "local_systemic_ratio_meso",
        "median il2_local / il2_serum over paired quantified samples of treated mice",
        _local_systemic_ratio,
        100.0,
        225.0,
        "within 1.5-fold of ~150",
    ),
    CohortCheck(
        "burden_reduction_week1",
        "day-7 reduction of the geometric mean burden ratio, monotherapy groups",
        _mean_reduction,
        0.70,
        0.90,
        "80% +/- 10 points ('reduced by 80%')",
    ),
    CohortCheck(
        "responders_week1",
        "fraction of monotherapy mice with > 45% reduction at day 7",
        _responders,
        19 / 26 - 0.12,
        19 / 26 + 0.12,
        "19/26 +/- 0.12 (about 1.4 binomial SD with 26 mice)",
    ),
    CohortCheck(
        "deep_response_high_dose",
        "fraction of mice at >= 2.5 ug/day with > 75% reduction at day 7",
        _deep_high_dose,
        0.91,
        1.0,
        "more than 91%",
    ),
    CohortCheck(
        "reduction_5ug",
        "median day-7 burden reduction at the top monotherapy dose",
        _reduction_top_dose,
        0.85,
        0.99,
        "'all mice ~90% decrease' (news account) read as at least 85%; deeper is consistent",
    ),
    CohortCheck(
        "survival_1p5ug",
        "fraction of lowest-dose mice surviving twice the control median (humane end point)",
        _survival_low_dose,
        0.75,
        1.0,
        "~90%, -15 points",
    ),
    CohortCheck(
        "monotherapy_cures",
        f"fraction of monotherapy mice cured (undetectable from day {CURE_FROM_DAY:g} to the end)",
        _monotherapy_cures,
        0.5,
        0.85,
        "more than half (and not nearly all)",
    ),
    CohortCheck(
        "eradication_with_pd1",
        "fraction of combination (capsule + anti-PD-1) mice cured, no recurrence",
        _combination_cures,
        1.0,
        1.0,
        "all (7 of 7)",
    ),
)


def compare_with_published(study: Study, info: CohortDesignInfo) -> pd.DataFrame:
    """Return the table "published figure vs this cohort", one row per :data:`CHECKS` entry.

    Columns: ``id, quantity, published, source, evidence, definition, cohort_value, detail,
    accepted_low, accepted_high, tolerance, within``.
    """
    published = load_published_results()
    rows = []
    for check in CHECKS:
        row = published.loc[check.published_id]
        value, detail = check.statistic(study, info)
        rows.append(
            {
                "id": check.published_id,
                "quantity": row["quantity"],
                "published": row["note"],
                "source": row["source"],
                "evidence": row["evidence"],
                "definition": check.definition,
                "cohort_value": round(value, 4),
                "detail": detail,
                "accepted_low": round(check.low, 4),
                "accepted_high": round(check.high, 4),
                "tolerance": check.tolerance,
                "within": bool(check.low - 1e-12 <= value <= check.high + 1e-12),
            }
        )
    return pd.DataFrame(rows)
