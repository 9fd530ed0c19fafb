"""CF-IL2 through the shared machinery: structure, closed-form PK, eradication, prior check."""

import dataclasses

import numpy as np
import pymc as pm
import pytest

from bayes.cli import main
from bayes.models.cf_il2 import CFIL2Config, cf_il2_spec
from bayes.models.cohorts import mouse_design
from bayes.models.hierarchical import HierarchicalModel
from bayes.models.priors import PriorSet, shipped_prior_sets

PRIORS = PriorSet.load(shipped_prior_sets()["cf_il2_mouse"])


@pytest.fixture(scope="module")
def design():
    groups = {"control": (0.0, False), "cf_5ug": (5.0, False), "cf_5ug_pd1": (5.0, True)}
    return mouse_design(groups=groups, mice_per_group=2, burden_days=(0, 3, 7, 14, 28))


@pytest.fixture(scope="module")
def model(design):
    return HierarchicalModel(cf_il2_spec(design), PRIORS, design)


def _medians(model) -> dict:
    values = {k: float(PRIORS[k].to_scipy().median()) for k in model.spec.parameters}
    n = model.design.n_subjects
    zeros = {name: np.zeros(n) for name in model.model.named_vars if name.startswith("z_")}
    return {**values, **zeros}


def test_every_variant_names_its_parameters_and_observables(design):
    for growth in ("gompertz", "logistic", "exponential"):
        for release in ("exponential", "biphasic"):
            spec = cf_il2_spec(design, CFIL2Config(growth=growth, release=release))
            assert set(spec.required_priors) <= set(PRIORS.parameters)
            assert set(spec.observables) == {"tumour_volume", "il2_local", "il2_serum"}
    with pytest.raises(ValueError, match="no 'bioluminescence' observations"):
        cf_il2_spec(design, CFIL2Config(burden_analyte="bioluminescence"))


def test_burden_reference_is_one_study_level_value(design):
    """Growth, extinction and the initial-burden prior share one reference for every mouse."""
    observations = design.observations.copy()
    burden = observations["analyte"] == "tumour_volume"
    first = burden & (observations["time"] == 0)
    # first images differ between mice; later images must not move the reference
    observations.loc[first, "value"] = np.linspace(50.0, 400.0, int(first.sum()))
    observations.loc[burden & ~first, "value"] = 1e4
    study = dataclasses.replace(design, observations=observations)
    references = cf_il2_spec(study).references
    median_first = np.median(np.log(np.linspace(50.0, 400.0, int(first.sum()))))
    np.testing.assert_allclose(references["study_log_burden_reference"], median_first)
    np.testing.assert_allclose(
        references["first_log_burden_observation"], np.log(observations.loc[first, "value"])
    )
    stated = cf_il2_spec(study, CFIL2Config(burden_reference=5e6)).references
    np.testing.assert_allclose(stated["study_log_burden_reference"], np.log(5e6))
    assert PRIORS["log_burden0"].offset_from == "study_log_burden_reference"
    with pytest.raises(ValueError, match="burden_reference"):
        CFIL2Config(burden_reference=-1.0)


def test_median_prior_mouse_shows_ratio_dose_effect_and_synergy(model):
    fixed = pm.do(model.model, _medians(model))
    names = ["pred_tumour_volume", "pred_il2_local", "pred_il2_serum"]
    log_burden, log_local, log_serum = pm.draw([fixed[n] for n in names], random_seed=0)
    rows = model.design.rows
    il2 = rows[rows["analyte"] == "il2_local"].assign(local=np.exp(log_local))
    il2 = il2.assign(serum=np.exp(log_serum))
    treated = il2[il2["subject"].str.startswith("cf_5ug-")]
    ratio = (treated["local"] / treated["serum"]).to_numpy()
    # Quasi-steady state: C_L / C_S = CL_S / CL_a = local_systemic_ratio (150 at the median).
    np.testing.assert_allclose(ratio, 150.0, rtol=0.05)
    assert np.all(il2.loc[il2["subject"].str.startswith("control"), "local"] < 1e-200)  # no IL-2
    burden = rows[rows["analyte"] == "tumour_volume"].assign(v=np.exp(log_burden))
    day28 = burden[burden["time"] == 28].groupby("group")["v"].mean()
    assert day28["control"] > 100.0 > day28["cf_5ug"] > day28["cf_5ug_pd1"]


def test_eradicated_tumour_stays_eradicated(model):
    point = _medians(model)
    point.update(kill_rate=3.0, pd1_enhancement=3.0, k_fade=0.3)  # strong, then fading release
    fixed = pm.do(model.model, point)
    log_burden = pm.draw(fixed["pred_tumour_volume"], random_seed=0)
    rows = model.design.rows
    burden = rows[rows["analyte"] == "tumour_volume"].assign(y=log_burden)
    combo = burden[burden["group"] == "cf_5ug_pd1"].groupby("time")["y"].mean()
    threshold = np.log(100.0) + point["extinction_log_burden"]
    assert combo[14.0] < threshold and combo[28.0] < threshold
    assert combo[28.0] <= combo[14.0] + 1e-3  # no regrowth after the release has faded


def test_priors_check_command_writes_figures_and_table(tmp_path, capsys):
    out = tmp_path / "check"
    code = main(
        [
            "priors",
            "check",
            str(shipped_prior_sets()["cf_il2_mouse"]),
            "--out",
            str(out),
            "--draws",
            "20",
            "--seed",
            "1",
        ]
    )
    assert code == 0
    table = (out / "plausibility.csv").read_text()
    assert "untreated doubling time" in table and "local/systemic IL-2 ratio" in table
    for name in ("burden", "il2_local", "il2_serum"):
        assert (out / f"prior_predictive_{name}.png").stat().st_size > 10_000
    assert "in [1, 10] day: untreated doubling time" in capsys.readouterr().out
