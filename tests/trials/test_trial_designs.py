"""Escalation rules against exact probabilities and published boundaries."""

from __future__ import annotations

import numpy as np
import pytest
from scipy.stats import binom

from bayes.trials.config import BoinConfig, ThreePlusThreeConfig
from bayes.trials.designs import Boin, ThreePlusThree, boin_elimination, isotonic_regression
from bayes.trials.truths import fixed_truth

# BOIN R package, get.boundary(target = 0.3, ncohort = 12, cohortsize = 3): elimination row
# for n = 3, 6, ..., 36 (Liu and Yuan 2015; Yuan, Hess, Hilsenbeck, Gilbert 2016 Clin Cancer Res).
PUBLISHED_ELIMINATION_03 = [3, 4, 5, 7, 8, 9, 10, 11, 12, 14, 15, 16]
# Same source, cohort size 1, n = 3..12 ("Eliminate if # of DLT >=").
PUBLISHED_ELIMINATION_03_BY_PATIENT = [3, 3, 4, 4, 5, 5, 5, 6, 6, 7]


def three_plus_three_exact(p: np.ndarray) -> np.ndarray:
    """Exact P(select level) (index 0 = no dose) of 3+3 with de-escalation, start at level 1.

    Closed form, independent of the simulator: a level "passes" with 0/3 (prob t) or 1/3 then
    0/3 (prob s); it fails with probability 1 - s - t. The first failing level is f (or none:
    f = K). Going down from f - 1, a level passed with 0/3 is expanded by 3 and is selected if
    that expansion has <= 1 DLT (prob e), else de-escalation goes on; a level passed with 6 is
    selected.
    """
    k = len(p)
    t = binom.pmf(0, 3, p)
    s = binom.pmf(1, 3, p) * binom.pmf(0, 3, p)
    e = binom.cdf(1, 3, p)
    fail = np.append(1 - s - t, 1.0)  # "level K" = all passed
    select = np.zeros(k + 1)
    for f in range(k + 1):
        reach = np.prod(s[:f] + t[:f]) * fail[f]  # pass 0..f-1, fail f
        below = 1.0
        for i in range(f - 1, -1, -1):  # de-escalate from f - 1
            passed = s[i] + t[i]
            select[i + 1] += reach / passed * (s[i] + t[i] * e[i]) * below
            below *= t[i] * (1 - e[i]) / passed
        select[0] += reach * below
    return select


def simulate_selection(design, p, n_trials, seed=11):
    counts = np.zeros(len(p) + 1)
    patients = 0
    for trial in range(n_trials):
        record = design.run(fixed_truth(p, 60, seed, trial))
        counts[record.selected + 1] += 1
        patients += record.n.sum()
    return counts / n_trials, patients / n_trials


def test_exact_formula_sums_to_one_and_matches_a_hand_case():
    p = np.array([0.1, 0.25, 0.5])
    exact = three_plus_three_exact(p)
    assert exact.sum() == pytest.approx(1.0)
    # no dose: level 1 fails directly (0/3 then expansion of 1 is impossible) or 1/3 -> >= 1/3
    q = 0.9
    p0, p1 = q**3, 3 * 0.1 * q**2
    fail_first = 1 - p0 - p1 * p0
    # ... or passes with 0/3, a higher level fails, and the expansion of level 1 gets >= 2/3
    later = (
        p0
        * (1 - binom.cdf(1, 3, 0.1))
        * (
            (1 - three_plus_three_pass(0.25))
            + binom.pmf(0, 3, 0.25)
            * (1 - binom.cdf(1, 3, 0.25))
            * three_plus_three_pass_fail_chain(0.5)
        )
    )
    assert exact[0] == pytest.approx(fail_first + later)


def three_plus_three_pass(p):
    return binom.pmf(0, 3, p) + binom.pmf(1, 3, p) * binom.pmf(0, 3, p)


def three_plus_three_pass_fail_chain(p_top):
    # level 3 (top) fails, or passes with 0/3 and its expansion fails (it needs 6 at the MTD)
    return (1 - three_plus_three_pass(p_top)) + binom.pmf(0, 3, p_top) * (
        1 - binom.cdf(1, 3, p_top)
    )


@pytest.mark.parametrize("p", [np.array([0.05, 0.1, 0.2, 0.35, 0.5]), np.array([0.3, 0.45, 0.6])])
def test_three_plus_three_matches_exact_probabilities(p):
    design = ThreePlusThree(ThreePlusThreeConfig(name="3+3", rule="3+3"), len(p))
    n_trials = 6000
    simulated, _ = simulate_selection(design, p, n_trials)
    exact = three_plus_three_exact(p)
    mcse = np.sqrt(exact * (1 - exact) / n_trials)
    assert np.all(np.abs(simulated - exact) < 4.5 * mcse + 1e-9), (simulated, exact)


def test_three_plus_three_deterministic_paths():
    design = ThreePlusThree(ThreePlusThreeConfig(name="3+3", rule="3+3"), 3)
    record = design.run(fixed_truth(np.array([0.0, 0.0, 1.0]), 60, 0, 0))
    assert record.selected == 1 and record.n.tolist() == [3, 6, 3]  # level 2 expanded to 6
    record = design.run(fixed_truth(np.zeros(3), 60, 0, 0))
    assert record.selected == 2 and record.n.tolist() == [3, 3, 6]  # six at the top dose
    record = design.run(fixed_truth(np.ones(3), 60, 0, 0))
    assert record.selected == -1 and record.stopped_for_toxicity and record.n.tolist() == [3, 0, 0]
    started_high = ThreePlusThree(
        ThreePlusThreeConfig(name="3+3", rule="3+3", start_dose=3), 3
    ).run(fixed_truth(np.array([0.0, 1.0, 1.0]), 60, 0, 0))
    assert started_high.selected == 0 and started_high.n.tolist() == [6, 3, 3]


def test_boin_boundaries_match_published_values():
    design = Boin(BoinConfig(name="BOIN", rule="boin", target=0.3, max_patients=36), 5)
    # published to three decimals (0.2365 and 0.3585, printed 0.236 and 0.358)
    assert design.lambda_e == pytest.approx(0.236, abs=1e-3)
    assert design.lambda_d == pytest.approx(0.358, abs=1e-3)
    assert design.eliminate_at[3:37:3].tolist() == PUBLISHED_ELIMINATION_03
    assert design.eliminate_at[3:13].tolist() == PUBLISHED_ELIMINATION_03_BY_PATIENT


@pytest.mark.parametrize("target", [0.2, 0.25, 0.3, 0.33])
def test_boin_elimination_rule_by_binomial_identity(target):
    # P(p > target | y DLTs of n, Beta(1,1)) = P(Binomial(n + 1, target) <= y)
    eliminate = boin_elimination(target, 0.95, 30)
    for n in range(3, 31):
        posterior_exceeds = binom.cdf(np.arange(n + 1), n + 1, target)
        first = (
            int(np.argmax(posterior_exceeds > 0.95)) if (posterior_exceeds > 0.95).any() else n + 1
        )
        assert eliminate[n] == first
    assert eliminate[:3].tolist() == [1, 2, 3]  # never below 3 patients


def test_isotonic_regression_pools_violators():
    fitted = isotonic_regression(np.array([1.0, 3.0, 2.0, 4.0]), np.ones(4))
    assert fitted.tolist() == [1.0, 2.5, 2.5, 4.0]
    weighted = isotonic_regression(np.array([0.5, 0.1]), np.array([1.0, 3.0]))
    assert np.allclose(weighted, [0.2, 0.2])


def test_boin_stops_when_lowest_dose_is_eliminated_and_selects_by_isotonic_estimate():
    design = Boin(BoinConfig(name="BOIN", rule="boin", max_patients=30), 4)
    record = design.run(fixed_truth(np.ones(4), 60, 0, 0))
    assert (
        record.selected == -1 and record.stopped_for_toxicity and record.n.tolist() == [3, 0, 0, 0]
    )
    # zero toxicity up to level 3, certain toxicity at 4: never selects the eliminated level
    record = design.run(fixed_truth(np.array([0.0, 0.0, 0.0, 1.0]), 60, 0, 0))
    assert record.selected == 2 and record.n[3] == 3 and record.n.sum() == 30


def test_boin_selection_probabilities_reasonable_and_reproducible():
    design = Boin(BoinConfig(name="BOIN", rule="boin", max_patients=30), 5)
    p = np.array([0.05, 0.1, 0.3, 0.5, 0.6])
    first, mean_n = simulate_selection(design, p, 1500)
    again, _ = simulate_selection(design, p, 1500)
    assert np.array_equal(first, again)
    assert np.argmax(first) == 3  # level 3 (1-based) has the target rate 0.30
    assert first[3] > 0.45 and mean_n == pytest.approx(30, abs=0.5)
