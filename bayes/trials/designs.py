"""Dose-escalation designs: 3+3, BOIN and BLRM with escalation with overdose control.

Each design is compiled once from its (immutable) configuration into an object whose
``run(truth)`` is a pure function of the trial truth: it treats cohorts with the truth's
pre-generated patient outcomes and returns a :class:`TrialRecord`. Dose levels are 0-based
inside the code; configuration files use 1-based levels.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from bayes.trials.blrm import BlrmGrid
from bayes.trials.config import BlrmConfig, BoinConfig, ThreePlusThreeConfig
from bayes.trials.truths import TrialTruth

NO_DOSE = -1
BOIN_ESTIMATE_PRIOR = 0.05
"""Beta(0.05, 0.05) pseudo-counts of BOIN's MTD selection (R package ``BOIN``, select.mtd)."""


@dataclass
class TrialRecord:
    """What happened in one simulated escalation.

    Attributes
    ----------
    selected : int
        Selected dose level (0-based), or ``-1`` when no dose was selected.
    n, dlt, response : ndarray of int, shape (dose,)
        Patients, DLTs and responses per dose level.
    stopped_for_toxicity : bool
        The trial stopped because even the lowest dose was too toxic.
    reached_max_patients : bool
        The maximum sample size was used up.

    """

    selected: int
    n: np.ndarray
    dlt: np.ndarray
    response: np.ndarray
    stopped_for_toxicity: bool
    reached_max_patients: bool


class _Cohorts:
    """Treat cohorts with a truth's patient streams; keep per-dose counts (plain ints: fast)."""

    def __init__(self, truth: TrialTruth, max_patients: int) -> None:
        self.max_patients = max_patients
        n_doses, self.stream_length = truth.dlt.shape
        self.dlt_cumulative = truth.dlt_cumulative
        self.response_cumulative = truth.response_cumulative
        self.n = [0] * n_doses
        self.dlt = [0] * n_doses
        self.total = 0

    def room(self, size: int) -> int:
        """Return how many of a cohort of ``size`` still fit under the maximum sample size."""
        return max(0, min(size, self.max_patients - self.total))

    def treat(self, level: int, size: int) -> int:
        """Treat ``size`` patients at ``level``; return the number of DLTs among them."""
        start = self.n[level]
        stop = start + size
        if stop > self.stream_length:
            raise ValueError(f"patient stream too short: {stop} patients at one dose level")
        dlts = int(self.dlt_cumulative[level, stop] - self.dlt_cumulative[level, start])
        self.n[level] = stop
        self.dlt[level] += dlts
        self.total += size
        return dlts

    def record(self, selected: int, stopped_for_toxicity: bool) -> TrialRecord:
        n = np.array(self.n, dtype=np.int64)
        rows = np.arange(n.size)
        return TrialRecord(
            selected=selected,
            n=n,
            dlt=np.array(self.dlt, dtype=np.int64),
            response=self.response_cumulative[rows, n].astype(np.int64),
            stopped_for_toxicity=stopped_for_toxicity,
            reached_max_patients=self.total >= self.max_patients,
        )


@dataclass(frozen=True)
class ThreePlusThree:
    """The traditional 3+3 design with de-escalation and six patients at the MTD."""

    config: ThreePlusThreeConfig
    n_doses: int

    def run(self, truth: TrialTruth) -> TrialRecord:
        """Run one trial on ``truth``."""
        cohorts = _Cohorts(truth, self.config.max_patients)
        level = min(self.config.start_dose, self.n_doses) - 1
        ceiling = self.n_doses  # lowest level known to be too toxic
        while True:
            n, dlt = cohorts.n[level], cohorts.dlt[level]
            if n >= 3 and dlt >= 2:  # too toxic: 2+ of 3 or of 6
                ceiling = level
                level -= 1
                if level < 0:
                    return cohorts.record(NO_DOSE, stopped_for_toxicity=True)
                continue
            needs_cohort = n == 0 or (n == 3 and dlt == 1)
            if not needs_cohort and level + 1 < ceiling:
                level += 1
                continue
            if not needs_cohort and n >= 6:
                return cohorts.record(level, stopped_for_toxicity=False)
            if cohorts.room(3) < 3:  # out of patients before the rule finished
                selected = level if not needs_cohort and n >= 3 else level - 1
                return cohorts.record(max(selected, NO_DOSE), stopped_for_toxicity=False)
            cohorts.treat(level, 3)


def boin_interval(target: float, p_saf: float, p_tox: float) -> tuple[float, float]:
    """Return BOIN's escalation and de-escalation boundaries (Liu and Yuan 2015, eq. 2).

    Parameters
    ----------
    target : float
        Target DLT rate phi.
    p_saf, p_tox : float
        Highest rate deemed sub-therapeutic and lowest deemed overly toxic
        (defaults in the design: 0.6 and 1.4 x target).

    Returns
    -------
    (lambda_e, lambda_d) : tuple of float

    """
    lambda_e = np.log((1 - p_saf) / (1 - target)) / np.log(
        target * (1 - p_saf) / (p_saf * (1 - target))
    )
    lambda_d = np.log((1 - target) / (1 - p_tox)) / np.log(
        p_tox * (1 - target) / (target * (1 - p_tox))
    )
    return float(lambda_e), float(lambda_d)


def boin_elimination(target: float, cutoff: float, max_n: int) -> np.ndarray:
    """Return the smallest DLT count that eliminates a dose, for n = 0..max_n patients.

    A dose (and all higher ones) is eliminated when ``P(p > target | y, n) > cutoff`` under a
    Beta(1, 1) prior and ``n >= 3``; entries for ``n < 3`` (or with no such count) are
    ``n + 1`` (never).
    """
    from scipy.stats import beta as beta_distribution  # lazy: keeps worker start-up light

    smallest = np.arange(max_n + 1) + 1
    for n in range(3, max_n + 1):
        counts = np.arange(n + 1)
        exceed = beta_distribution.sf(target, counts + 1, n - counts + 1) > cutoff
        if exceed.any():
            smallest[n] = int(counts[exceed][0])
    return smallest


def isotonic_regression(values: np.ndarray, weights: np.ndarray) -> np.ndarray:
    """Return the weighted non-decreasing least-squares fit (pool-adjacent-violators)."""
    blocks: list[list[float]] = []  # [mean, weight, count]
    for value, weight in zip(values, weights, strict=True):
        blocks.append([float(value), float(weight), 1])
        while len(blocks) > 1 and blocks[-2][0] > blocks[-1][0]:
            mean2, weight2, count2 = blocks.pop()
            mean1, weight1, count1 = blocks[-1]
            total = weight1 + weight2
            blocks[-1] = [(mean1 * weight1 + mean2 * weight2) / total, total, count1 + count2]
    return np.concatenate([np.full(int(count), mean) for mean, _, count in blocks])


@dataclass(frozen=True)
class Boin:
    """The BOIN design with its elimination rule and isotonic MTD selection."""

    config: BoinConfig
    n_doses: int
    lambda_e: float = field(init=False)
    lambda_d: float = field(init=False)
    eliminate_at: np.ndarray = field(init=False, repr=False)

    def __post_init__(self) -> None:
        target = self.config.target
        lambda_e, lambda_d = boin_interval(
            target, self.config.p_saf_ratio * target, self.config.p_tox_ratio * target
        )
        object.__setattr__(self, "lambda_e", lambda_e)
        object.__setattr__(self, "lambda_d", lambda_d)
        eliminate = boin_elimination(
            target, self.config.elimination_cutoff, self.config.max_patients
        )
        object.__setattr__(self, "eliminate_at", eliminate)

    def run(self, truth: TrialTruth) -> TrialRecord:
        """Run one trial on ``truth``."""
        config = self.config
        cohorts = _Cohorts(truth, config.max_patients)
        level = min(config.start_dose, self.n_doses) - 1
        eliminated_from = self.n_doses
        while (size := cohorts.room(config.cohort_size)) > 0:
            cohorts.treat(level, size)
            n, dlt = cohorts.n[level], cohorts.dlt[level]
            if dlt >= self.eliminate_at[n]:
                eliminated_from = min(eliminated_from, level)
                if level == 0:
                    return cohorts.record(NO_DOSE, stopped_for_toxicity=True)
                level -= 1
                continue
            if n >= config.n_earlystop:
                break
            rate = dlt / n
            if rate <= self.lambda_e and level + 1 < eliminated_from:
                level += 1
            elif rate >= self.lambda_d and level > 0:
                level -= 1
        return cohorts.record(self.select(cohorts, eliminated_from), stopped_for_toxicity=False)

    def select(self, cohorts: _Cohorts, eliminated_from: int) -> int:
        """Select the MTD: isotonic estimates of treated, non-eliminated doses, closest to target.

        Follows ``select.mtd`` of the R package ``BOIN``: estimates (y + 0.05) / (n + 0.1)
        pooled with inverse-variance weights; ties broken towards the lower dose when the
        estimate is above the target and towards the higher dose otherwise.
        """
        tried = [level for level in range(eliminated_from) if cohorts.n[level] > 0]
        if not tried:
            return NO_DOSE
        n = np.array([cohorts.n[level] for level in tried], dtype=float)
        y = np.array([cohorts.dlt[level] for level in tried], dtype=float)
        prior = BOIN_ESTIMATE_PRIOR
        estimate = (y + prior) / (n + 2 * prior)
        variance = (y + prior) * (n - y + prior) / ((n + 2 * prior) ** 2 * (n + 2 * prior + 1))
        pooled = isotonic_regression(estimate, 1.0 / variance)
        pooled = pooled + np.arange(pooled.size) * 1e-10  # R package: strictly increasing
        distance = np.abs(pooled - self.config.target)
        closest = np.flatnonzero(distance <= distance.min() + 1e-8)
        best = closest[0] if pooled[closest[0]] > self.config.target else closest[-1]
        return int(tried[best])


@dataclass(frozen=True)
class BlrmEwoc:
    """BLRM-EWOC: grid posterior after every cohort; next dose maximises P(target) under EWOC."""

    config: BlrmConfig
    grid: BlrmGrid

    @property
    def n_doses(self) -> int:
        """Return the number of dose levels."""
        return self.grid.n_doses

    def run(self, truth: TrialTruth) -> TrialRecord:
        """Run one trial on ``truth``."""
        config = self.config
        cohorts = _Cohorts(truth, config.max_patients)
        level = min(config.start_dose, self.n_doses) - 1
        highest_tried = level
        while (size := cohorts.room(config.cohort_size)) > 0:
            cohorts.treat(level, size)
            highest_tried = max(highest_tried, level)
            summary = self.grid.interval_probabilities(cohorts.n, cohorts.dlt)
            allowed = summary.overdose < config.overdose_threshold
            if not allowed[0]:
                if cohorts.n[0] >= config.min_patients_before_stopping:
                    return cohorts.record(NO_DOSE, stopped_for_toxicity=True)
                level = 0  # too few patients at the lowest dose to stop: treat it again
                continue
            ceiling = min(highest_tried + config.max_escalation_steps, self.n_doses - 1)
            allowed[ceiling + 1 :] = False  # no skipping of untried doses
            level = _best_target(summary.target, allowed)
            if (
                cohorts.n[level] >= config.min_patients_at_mtd
                and summary.target[level] >= config.min_prob_target
                and cohorts.total >= config.min_total_patients
            ):
                return cohorts.record(level, stopped_for_toxicity=False)
        summary = self.grid.interval_probabilities(cohorts.n, cohorts.dlt)
        allowed = (summary.overdose < config.overdose_threshold) & (np.array(cohorts.n) > 0)
        if not allowed.any():
            return cohorts.record(NO_DOSE, stopped_for_toxicity=False)
        return cohorts.record(_best_target(summary.target, allowed), stopped_for_toxicity=False)


def _best_target(prob_target: np.ndarray, allowed: np.ndarray) -> int:
    """Return the allowed dose with the highest P(target); the higher dose on ties."""
    masked = np.where(allowed, prob_target, -np.inf)
    best = np.flatnonzero(masked >= masked.max() - 1e-12)
    return int(best[-1])


Design = ThreePlusThree | Boin | BlrmEwoc
