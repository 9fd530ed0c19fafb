"""SBC statistics on an exactly solvable model: the normal mean with known variance.

With ``theta ~ N(0, 1)`` and ``n`` observations ``y ~ N(theta, 1)`` the posterior is
``N(sum(y) / (n + 1), 1 / (n + 1))``; exact posterior draws must pass the uniformity and coverage
checks, and a posterior computed with a too-narrow prior must fail them.
"""

import numpy as np
import pandas as pd
import pytest
import xarray as xr

from bayes.inference.sbc import (
    chi_square_p,
    coverage_table,
    element_labels,
    quantile_key,
    randomized_pit,
    rank_bins,
    recovery_table,
    replicate_statistics,
    thinned_positions,
    uniformity_table,
)

N_REPLICATES = 200
N_OBSERVATIONS = 5
L = 99


def _conjugate_replicates(fit_prior_sd: float, seed: int = 7) -> pd.DataFrame:
    """Simulate from N(0, 1) priors; 'fit' with a N(0, fit_prior_sd) prior (exact draws)."""
    rng = np.random.default_rng(seed)
    frames = []
    for replicate in range(N_REPLICATES):
        theta = rng.normal(0.0, 1.0, size=2)  # two parameters, one per subject
        y = rng.normal(theta, 1.0, size=(N_OBSERVATIONS, 2))
        precision = N_OBSERVATIONS + 1 / fit_prior_sd**2
        mean, sd = y.sum(axis=0) / precision, 1 / np.sqrt(precision)
        draws = rng.normal(mean, sd, size=(1, 400, 2))
        posterior = xr.Dataset(
            {"theta": (("chain", "draw", "subject"), draws)}, coords={"subject": ["a", "b"]}
        )
        stats = replicate_statistics(posterior, {"theta": theta}, n_rank_draws=L)
        frame = pd.DataFrame(stats)
        frame["replicate"] = replicate
        frames.append(frame)
    return pd.concat(frames, ignore_index=True)


@pytest.fixture(scope="module")
def calibrated():
    return _conjugate_replicates(fit_prior_sd=1.0)


@pytest.fixture(scope="module")
def too_narrow_prior():
    return _conjugate_replicates(fit_prior_sd=0.3)


def test_exact_posterior_passes(calibrated):
    uniformity = uniformity_table(calibrated, L, {"theta": "population"})
    assert list(uniformity["parameter"]) == ["theta[a]", "theta[b]"]
    assert not uniformity["flagged"].any(), uniformity
    assert (uniformity["p_pot_c"] > 0.01).all()
    coverage = coverage_table(calibrated)
    assert not coverage["flagged"].any(), coverage
    assert np.allclose(coverage["coverage"], coverage["level"], atol=0.08)


def test_narrow_fit_prior_is_flagged(too_narrow_prior):
    uniformity = uniformity_table(too_narrow_prior, L, {"theta": "population"})
    assert uniformity["flagged"].all()
    assert (uniformity["p_pot_c"] < 1e-6).all()
    coverage = coverage_table(too_narrow_prior)
    assert coverage["flagged"].all()
    assert (coverage["coverage"] < coverage["level"]).all()  # over-confident intervals


def test_recovery_table_bias_and_verdict(calibrated):
    prior_width = 2 * 1.6449  # 90% width of N(0, 1)
    table = recovery_table(
        calibrated, {"theta[a]": prior_width, "theta[b]": prior_width}, {"theta[a]": False}
    )
    posterior_width = 2 * 1.6449 / np.sqrt(N_OBSERVATIONS + 1)
    assert np.allclose(table["width_ratio"], posterior_width / prior_width, rtol=0.05)
    assert set(table["verdict"]) == {"estimable"}  # ratio 0.41 < 0.5
    assert (table["bias"].abs() < 0.1).all()
    assert np.allclose(table["rmse"], 1 / np.sqrt(N_OBSERVATIONS + 1), rtol=0.15)


def test_ranks_count_draws_below_truth():
    posterior = xr.Dataset({"mu": (("chain", "draw"), np.arange(200.0).reshape(2, 100))})
    stats = replicate_statistics(posterior, {"mu": np.asarray(50.5)}, n_rank_draws=100)
    # ranks count the 100 evenly spread draws (of 200) below the true value
    assert stats["rank"][0] == np.sum(np.linspace(0, 199, 100).round() < 50.5)
    assert stats[quantile_key(0.025)][0] == pytest.approx(np.quantile(np.arange(200.0), 0.025))


def test_too_few_draws_for_ranks_is_an_error():
    with pytest.raises(ValueError, match="ranks need 100 posterior draws but the fit kept 50"):
        thinned_positions(50, 100)


def test_labels_use_coordinates():
    array = xr.DataArray(np.zeros((2, 3)), dims=("s", "k"), coords={"s": ["x", "y"]})
    assert element_labels("v", array)[:4] == ["v[x,0]", "v[x,1]", "v[x,2]", "v[y,0]"]
    assert element_labels("v", xr.DataArray(0.0)) == ["v"]


def test_bins_and_chi_square():
    assert rank_bins(200, 99) == 20
    assert rank_bins(50, 99) == 10
    assert rank_bins(12, 99) == 2
    uniform = np.repeat(np.arange(100), 2)
    assert chi_square_p(uniform, 99, 10)[1] == pytest.approx(1.0)
    assert chi_square_p(np.zeros(40), 99, 10)[1] < 1e-10


def test_randomized_pit_stays_in_rank_cell():
    ranks = np.array([0, 5, 99])
    pit = randomized_pit(ranks, 99)
    assert np.all((pit >= ranks / 100) & (pit < (ranks + 1) / 100))
    assert np.array_equal(pit, randomized_pit(ranks, 99))  # fixed seed
