"""The "your own model" path: a user-defined ODE model through the shared hierarchical machinery.

Same code as the README example: one-compartment oral PK from the bundled NONMEM-style CSV.
"""

from pathlib import Path

import numpy as np
import pymc as pm
import pytest

from bayes.data import read_nonmem
from bayes.models import DoseRoute, ErrorModel, HierarchicalModel, ModelSpec, Observable, PriorSet
from bayes.ode import ODESystem

ROOT = Path(__file__).resolve().parents[2]
DATA = ROOT / "datasets" / "examples" / "oral_pk_nonmem.csv"


def one_compartment_oral() -> ModelSpec:
    system = ODESystem(
        states=("gut", "central"),
        parameters=("ka", "cl", "v"),
        rhs=lambda t, y, p: {
            "gut": -p["ka"] * y["gut"],
            "central": p["ka"] * y["gut"] - p["cl"] / p["v"] * y["central"],
        },
    )
    return ModelSpec(
        name="oral_1cpt",
        system=system,
        observables={
            "concentration": Observable(
                predict=lambda t, y, p: y["central"] / p["v"], error=ErrorModel(sigma="sigma")
            )
        },
        doses={"dose": DoseRoute("gut")},
    )


@pytest.fixture(scope="module")
def model() -> HierarchicalModel:
    study = read_nonmem(DATA, mapping=DATA.with_suffix(".toml"))
    priors = PriorSet.load(ROOT / "priors" / "oral_1cpt.toml")
    return HierarchicalModel(one_compartment_oral(), priors, study)


def test_design_keeps_censored_rows_and_routes_doses(model):
    rows = model.design.rows
    assert len(rows) == 110 and rows["censored"].sum() == 21
    assert model.design.events["amount"].tolist() == [10_000.0] * 10  # 10 mg in ug
    assert model.design.left_out.empty
    assert model.model.named_vars_to_dims["obs_concentration"] == ("concentration_obs",)


def test_likelihood_matches_bateman_closed_form(model):
    # Population values, no random deviations: the ODE solution must equal the Bateman function.
    point = {"ka": 24.0, "cl": 240.0, "v": 50.0, "sigma": 0.15}
    zeros = {f"z_{name}": np.zeros(10) for name in ("ka", "cl", "v")}
    fixed = pm.do(model.model, {**point, **zeros})
    prediction = pm.draw(fixed["pred_concentration"], random_seed=0)
    t = model.design.rows["time"].to_numpy()
    k = point["cl"] / point["v"]
    bateman = 10_000.0 * 24.0 / (50.0 * (24.0 - k)) * (np.exp(-k * t) - np.exp(-24.0 * t))
    np.testing.assert_allclose(np.exp(prediction), bateman, rtol=1e-5)


def test_simulate_uses_the_design_and_censors_at_the_limit(model):
    truth = {"ka": 24.0, "cl": 240.0, "v": 50.0, "sigma": 0.15, "omega_ka": 0.3, "omega_cl": 0.3}
    simulated = model.simulate({**truth, "omega_v": 0.2}, seed=3)
    observed = simulated.observations
    assert len(observed) == 110
    censored = observed["censored"].to_numpy()
    assert censored.any() and not censored.all()
    assert np.all(observed.loc[censored, "value"] == 1.0)  # censored rows carry the LLOQ
    assert np.all(observed.loc[~censored, "value"] > 1.0)
    again = model.simulate({**truth, "omega_v": 0.2}, seed=3)
    assert again.equals(simulated)


def test_save_load_round_trip_refuses_another_configuration(model, tmp_path):
    with model.model:
        tree = pm.sample_prior_predictive(draws=5, random_seed=1, var_names=["ka", "cl"])
    path = model.save(tree, tmp_path / "fitted.nc")
    loaded = model.load(path)
    np.testing.assert_array_equal(loaded["prior"]["cl"].values, tree["prior"]["cl"].values)
    assert '"model": "oral_1cpt"' in loaded.attrs["model_config"]
    assert not list(tmp_path.glob("*.tmp"))  # atomic write leaves no partial file

    other_priors = PriorSet.load(ROOT / "priors" / "oral_1cpt.toml").to_dict()
    other_priors["parameters"]["cl"]["params"]["mu"] = 4.0
    other = HierarchicalModel(model.spec, PriorSet.from_dict(other_priors), model.study)
    with pytest.raises(ValueError, match="different model configuration.*priors"):
        other.load(path)
