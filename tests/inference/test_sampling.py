"""Sampling: the sampler's pointwise log-likelihood equals PyMC's, timings are recorded."""

import numpy as np
import pymc as pm
import pytest

from bayes.inference.sampling import POINTWISE_PREFIX, sample


@pytest.fixture(scope="module")
def censored_model():
    rng = np.random.default_rng(0)
    y = rng.normal(1.0, 2.0, 30)
    with pm.Model(coords={"o": range(30)}) as model:
        mu = pm.Normal("mu", 0, 5)
        sd = pm.HalfNormal("sd", 3)  # log-transformed: the value -> RV replacement is exercised
        pm.Censored(
            "obs",
            pm.Normal.dist(mu, sd),
            lower=np.where(y < 0, 0.0, -np.inf),
            upper=None,
            observed=np.where(y < 0, 0.0, y),
            dims="o",
        )
    return model


def test_pointwise_log_likelihood_matches_pymc(censored_model):
    calls = []
    tree = sample(
        censored_model,
        draws=100,
        tune=100,
        chains=2,
        seed=1,
        progress=lambda *args: calls.append(args),
    )
    ours = tree["log_likelihood"]["obs"]
    assert ours.dims == ("chain", "draw", "o")
    reference = pm.compute_log_likelihood(
        tree, model=censored_model, extend_inferencedata=False, progressbar=False
    )["obs"]
    np.testing.assert_allclose(ours.values, reference.values, rtol=1e-10, atol=1e-12)
    assert not any(name.startswith(POINTWISE_PREFIX) for name in tree["posterior"].data_vars)
    stats = tree["sample_stats"].attrs
    assert stats["compile_seconds"] > 0 and stats["sampling_seconds"] > 0
    assert stats["tune_chain_seconds"] >= 0 and stats["draw_chain_seconds"] >= 0
    assert calls[0][0] == "compiling" and calls[-1][0] == "sampling"
    assert calls[-1][1] <= calls[-1][2] == 2 * 200
    again = sample(censored_model, draws=100, tune=100, chains=2, seed=1, progress=lambda *a: None)
    np.testing.assert_array_equal(again["posterior"]["mu"].values, tree["posterior"]["mu"].values)


def test_an_interrupted_nutpie_trace_is_not_taken_as_complete():
    import xarray as xr

    from bayes.inference.sampling import _raise_if_interrupted

    def tree(chains, draws, energy=0.0):
        dims = ("chain", "draw")
        return xr.DataTree.from_dict(
            {
                "posterior": xr.Dataset({"mu": (dims, np.zeros((chains, draws)))}),
                "sample_stats": xr.Dataset({"energy": (dims, np.full((chains, draws), energy))}),
            }
        )

    _raise_if_interrupted(tree(2, 100), 2, 100)  # complete: no error
    with pytest.raises(KeyboardInterrupt, match="2 chains x 40 draws of 2 x 100"):
        _raise_if_interrupted(tree(2, 40), 2, 100)
    with pytest.raises(KeyboardInterrupt):
        _raise_if_interrupted(tree(2, 100, energy=np.nan), 2, 100)


def test_low_rank_mass_matrix_reaches_nutpie_and_removes_a_ridge():
    """Only ``a + b`` is identified: a diagonal mass matrix needs long trajectories along the
    ridge, the low-rank correction learns it (same seed, same model, same draws)."""
    with pm.Model() as model:
        a = pm.Normal("a", 0, 1)
        b = pm.Normal("b", 0, 1)
        pm.Normal("y", a + b, 0.01, observed=0.5)
    steps = {}
    for mass_matrix in ("diag", "low_rank"):
        tree = sample(
            model,
            draws=200,
            tune=300,
            chains=1,
            seed=3,
            progress=lambda *_: None,
            mass_matrix=mass_matrix,
            eigval_cutoff=3.0,
            log_likelihood=False,
        )
        steps[mass_matrix] = float(tree["sample_stats"]["n_steps"].mean())
        total = tree["posterior"]["a"] + tree["posterior"]["b"]
        assert abs(float(total.mean()) - 0.5) < 0.01
    assert steps["low_rank"] < steps["diag"] / 4, steps


def test_low_rank_needs_nutpie():
    with pm.Model() as model:
        pm.Normal("a", 0, 1)
    with pytest.raises(ValueError, match="needs the nutpie sampler"):
        sample(model, draws=10, tune=10, chains=1, sampler="pymc", mass_matrix="low_rank")
