"""PSIS-LOO over several observed variables and comparisons, on synthetic log-likelihoods."""

import numpy as np
import pytest
import xarray as xr
from scipy import stats

from bayes.inference.loo import compare_fits, joined_log_likelihood, loo_table


def fit(y_a, y_b, mu_shift=0.0, sd=1.0, seed=0, chains=2, draws=300):
    """A normal model's posterior draws of the mean and the pointwise log-likelihood."""
    rng = np.random.default_rng(seed)
    mu = rng.normal(mu_shift, 0.05, size=(chains, draws))
    ll_a = stats.norm.logpdf(y_a[None, None, :], mu[..., None], sd)
    ll_b = stats.norm.logpdf(y_b[None, None, :], mu[..., None], sd)
    coords = {"chain": np.arange(chains), "draw": np.arange(draws)}
    return xr.DataTree.from_dict(
        {
            "posterior": xr.Dataset({"mu": (("chain", "draw"), mu)}, coords=coords),
            "log_likelihood": xr.Dataset(
                {
                    "obs_a": (("chain", "draw", "a_obs"), ll_a),
                    "obs_b": (("chain", "draw", "b_obs"), ll_b),
                },
                coords=coords,
            ),
        }
    )


@pytest.fixture
def data():
    rng = np.random.default_rng(1)
    return rng.normal(0, 1, 40), rng.normal(0, 1, 25)


def test_joined_log_likelihood_concatenates_observations(data):
    tree = fit(*data)
    joined = joined_log_likelihood(tree)["log_likelihood"]["joined"]
    assert joined.shape == (2, 300, 65)
    np.testing.assert_array_equal(joined.values[..., 40:], tree["log_likelihood"]["obs_b"].values)


def test_loo_of_all_variables_is_the_sum_of_the_parts(data):
    tree = fit(*data)
    whole = loo_table(tree)
    parts = loo_table(tree, ["obs_a"])["elpd_loo"] + loo_table(tree, ["obs_b"])["elpd_loo"]
    assert whole["n_observations"] == 65
    assert whole["elpd_loo"] == pytest.approx(parts, rel=1e-9)
    # a well-specified model: ELPD close to the sum of log densities at the truth
    truth = stats.norm.logpdf(np.concatenate(data)).sum()
    assert abs(whole["elpd_loo"] - truth) < 3 * whole["se"]
    assert whole["n_pareto_k_above_0.7"] == 0


def test_compare_ranks_the_right_model_first(data):
    good, bad = fit(*data, seed=2), fit(*data, mu_shift=1.5, seed=3)
    table = compare_fits({"good": good, "bad": bad})
    assert list(table.index) == ["good", "bad"]
    assert abs(table.loc["bad", "elpd_diff"]) > 2 * table.loc["bad", "dse"]
    assert table.attrs["variables"] == ["obs_a", "obs_b"]
    only_a = compare_fits({"good": good, "bad": bad}, var_names=["obs_a"])
    assert only_a.loc["good", "elpd"] == pytest.approx(loo_table(good, ["obs_a"])["elpd_loo"])


def test_compare_refuses_fits_of_other_data(data):
    other = fit(data[0][:30], data[1])
    with pytest.raises(ValueError, match="not to the same observations"):
        compare_fits({"a": fit(*data), "b": other})
    with pytest.raises(ValueError, match="at least two"):
        compare_fits({"a": fit(*data)})


def test_observations_with_a_constant_log_likelihood_enter_loo_exactly(data):
    tree = fit(*data)
    varying = loo_table(tree)
    ll = tree["log_likelihood"].to_dataset()
    constant = ll["obs_b"].copy(data=np.broadcast_to(-0.25, ll["obs_b"].shape).copy())
    tree["log_likelihood"] = xr.DataTree(ll.assign(obs_b=constant))
    table = loo_table(tree)  # PSIS alone refuses flat weights ("All tail values are the same")
    only_a = loo_table(tree, ["obs_a"])
    assert table["n_constant_log_likelihood"] == 25
    assert table["n_observations"] == varying["n_observations"] == 65
    assert table["elpd_loo"] == pytest.approx(only_a["elpd_loo"] - 0.25 * 25, rel=1e-12)
    assert table["p_loo"] == pytest.approx(only_a["p_loo"], rel=1e-12)
