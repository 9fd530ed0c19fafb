"""The compiled prior simulator and the data containers a simulated data set fills.

Uses the decay model of decay.toml; compiling its forward function takes a few seconds
(no sampler is compiled here).
"""

from pathlib import Path

import numpy as np
import pymc as pm
import pytest

from bayes.calibrate.replicate import build_fit_model
from bayes.inference.repeated import ForwardSimulator
from bayes.models.observation import censoring_limit_name, observed_data_name

WORKFLOW = str(Path(__file__).resolve().parent / "decay.toml")
FIXED = {"k": 0.3, "a0": 100.0, "omega_k": 0.2, "z_k": np.zeros(6), "sigma": 0.2}
LIMIT = 10.0  # the LLOQ of decay_observations.csv


@pytest.fixture(scope="module")
def model():
    return build_fit_model(WORKFLOW)


@pytest.fixture(scope="module")
def prediction(model):
    names = ["k", "a0", "omega_k", "z_k"]
    function = pm.compile(
        [model.model[n] for n in names],
        [model.model["pred_concentration"]],
        on_unused_input="ignore",
    )
    return function(*[FIXED[n] for n in names])[0]


def test_fixed_values_are_used_and_noise_has_their_sigma(model, prediction):
    simulator = ForwardSimulator(model.model, FIXED)
    assert simulator.drawn == []  # nothing left to draw, z_k included
    residuals = []
    for seed in range(300):
        parameters, observations = simulator.draw(seed)
        assert np.array_equal(parameters["z_k"], FIXED["z_k"])
        residuals.append(observations["obs_concentration"] - prediction)
    early = np.array(residuals).reshape(300, 6, 5)[:, :, :3]  # never clipped at the LLOQ
    assert early.std() == pytest.approx(FIXED["sigma"], rel=0.05)
    assert abs(early.mean()) < 0.01


def test_draws_depend_on_the_seed_only(model):
    simulator = ForwardSimulator(model.model, {"k": 0.3})
    first = simulator.draw(11)
    simulator.draw(12)
    again = simulator.draw(11)
    for name in first[0]:
        assert np.array_equal(first[0][name], again[0][name])
    assert np.array_equal(first[1]["obs_concentration"], again[1]["obs_concentration"])
    assert first[0]["k"] == 0.3 and first[0]["sigma"] != simulator.draw(12)[0]["sigma"]


def test_unknown_fixed_name_is_refused(model):
    with pytest.raises(KeyError, match="not free variables of the model: \\['kk'\\]"):
        ForwardSimulator(model.model, {"kk": 1.0})


def test_values_at_or_below_the_limit_are_censored(model):
    simulator = ForwardSimulator(model.model, {**FIXED, "k": 3.0, "sigma": 0.05})
    _, observations = simulator.draw(5)
    containers = model.observation_data({"concentration": observations["obs_concentration"]})
    data = containers[observed_data_name("obs_concentration")]
    lower = containers[censoring_limit_name("obs_concentration")]
    censored = np.isfinite(lower)
    # k = 3/day from 100 ng/mL: below 10 ng/mL after 0.77 days; draws clipped at the M3 bound
    # (log 10 exactly) must count as censored, not as measurements equal to the limit
    assert censored.reshape(6, 5)[:, 1:].all() and not censored.reshape(6, 5)[:, 0].any()
    assert np.allclose(data[censored], np.log(LIMIT))
    assert not np.any(np.isclose(data[~censored], np.log(LIMIT)))
