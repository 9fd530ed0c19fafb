"""BLRM grid posterior against independent Monte Carlo and MCMC; EWOC behaviour."""

from __future__ import annotations

import numpy as np
import pymc as pm
import pytest
from scipy.special import expit

from bayes.trials.blrm import BlrmGrid, fit_blrm_curves
from bayes.trials.config import BlrmConfig
from bayes.trials.designs import BlrmEwoc
from bayes.trials.truths import fixed_truth

DOSES = np.array([1.0, 2.0, 4.0, 8.0])
REFERENCE = 4.0
PRIOR_MEAN = np.array([-0.85, 0.0])
PRIOR_COVARIANCE = np.array([[4.0, 0.6], [0.6, 1.0]])
N = np.array([3, 6, 6, 3])
DLT = np.array([0, 1, 2, 2])


def grid():
    return BlrmGrid(DOSES, REFERENCE, PRIOR_MEAN, PRIOR_COVARIANCE)


def test_grid_matches_importance_sampling_from_the_prior():
    rng = np.random.default_rng(5)
    theta = rng.multivariate_normal(PRIOR_MEAN, PRIOR_COVARIANCE, size=400_000)
    p = np.clip(
        expit(theta[:, :1] + np.exp(theta[:, 1:]) * np.log(DOSES / REFERENCE)), 1e-300, 1 - 1e-16
    )
    log_weight = (DLT * np.log(p) + (N - DLT) * np.log1p(-p)).sum(axis=1)
    weight = np.exp(log_weight - log_weight.max())
    weight /= weight.sum()
    summary = grid().interval_probabilities(N, DLT)
    for exact, values in ((summary.mean, p), (summary.overdose, (p >= 0.33).astype(float))):
        estimate = weight @ values
        mcse = np.sqrt((weight[:, None] ** 2 * (values - estimate) ** 2).sum(axis=0))
        assert np.all(np.abs(exact - estimate) < 5 * mcse + 1e-3), (exact, estimate, mcse)
    mean, _ = grid().posterior_moments(N, DLT)
    assert mean == pytest.approx(weight @ theta, abs=0.02)


def test_grid_prior_moments_and_resolution():
    coarse = BlrmGrid(DOSES, REFERENCE, PRIOR_MEAN, PRIOR_COVARIANCE, grid_points=61)
    fine = BlrmGrid(DOSES, REFERENCE, PRIOR_MEAN, PRIOR_COVARIANCE, grid_points=121)
    zero = np.zeros(4)
    mean, covariance = fine.posterior_moments(zero, zero)
    assert mean == pytest.approx(PRIOR_MEAN, abs=1e-8)
    assert covariance == pytest.approx(PRIOR_COVARIANCE, rel=1e-6)
    assert coarse.interval_probabilities(N, DLT).overdose == pytest.approx(
        fine.interval_probabilities(N, DLT).overdose, abs=4e-3
    )


@pytest.mark.slow
def test_grid_matches_pymc_nuts():
    with pm.Model():
        theta = pm.MvNormal("theta", mu=PRIOR_MEAN, cov=PRIOR_COVARIANCE)
        p = pm.math.sigmoid(theta[0] + pm.math.exp(theta[1]) * np.log(DOSES / REFERENCE))
        pm.Deterministic("p", p)
        pm.Binomial("y", n=N, p=p, observed=DLT)
        idata = pm.sample(draws=3000, tune=1000, chains=2, random_seed=3, progressbar=False)
    draws = idata.posterior["p"].values.reshape(-1, len(DOSES))
    summary = grid().interval_probabilities(N, DLT)
    assert summary.mean == pytest.approx(draws.mean(axis=0), abs=0.01)
    assert summary.overdose == pytest.approx((draws >= 0.33).mean(axis=0), abs=0.03)


def test_fit_blrm_curves_recovers_parameters():
    parameters = np.array([[-1.0, 0.2], [0.5, -0.3]])
    curves = expit(parameters[:, :1] + np.exp(parameters[:, 1:]) * np.log(DOSES / REFERENCE))
    assert fit_blrm_curves(DOSES, REFERENCE, curves) == pytest.approx(parameters, abs=1e-8)


def ewoc_design(**overrides):
    config = BlrmConfig(
        name="blrm",
        rule="blrm-ewoc",
        weak_log_alpha={"mean": -0.85, "sd": 2.0, "source": "test"},
        weak_log_beta={"mean": 0.0, "sd": 1.0, "source": "test"},
        **overrides,
    )
    return BlrmEwoc(config, BlrmGrid(DOSES, REFERENCE, PRIOR_MEAN, np.diag([4.0, 1.0])))


def test_ewoc_never_skips_doses_and_stops_when_lowest_dose_is_toxic():
    design = ewoc_design(max_patients=30)
    safe = design.run(fixed_truth(np.zeros(4), 60, 0, 0))
    assert safe.selected == 3 and safe.n[:3].min() >= 3  # climbed one level at a time
    toxic = design.run(fixed_truth(np.ones(4), 60, 0, 0))
    assert toxic.selected == -1 and toxic.stopped_for_toxicity
    assert toxic.n.tolist() == [6, 0, 0, 0]  # min_patients_before_stopping = 6


def test_ewoc_controls_overdosing_and_stops_with_enough_patients():
    design = ewoc_design(max_patients=24)
    p = np.array([0.05, 0.15, 0.3, 0.55])
    records = [design.run(fixed_truth(p, 60, 9, trial)) for trial in range(150)]
    picks = np.bincount([record.selected + 1 for record in records], minlength=5) / 150
    patients = np.mean([record.n for record in records], axis=0)
    assert picks[4] < 0.05  # the overly toxic level (0.55) is almost never selected
    assert picks[2] + picks[3] > 0.8  # levels with rates 0.15 and 0.30 are selected
    assert patients[3] < 1.0  # EWOC: few patients at the overly toxic level
    early = [r for r in records if not r.reached_max_patients and r.selected >= 0]
    assert early and all(r.n.sum() >= 15 and r.n[r.selected] >= 6 for r in early)
