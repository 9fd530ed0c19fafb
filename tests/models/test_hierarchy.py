"""Random effects: the centred and non-centred parameterisations define the same prior."""

from pathlib import Path

import numpy as np
import pymc as pm
import pytest
from scipy import stats

from bayes.models.hierarchy import SUBJECT_DIM, subject_parameters
from bayes.models.priors import PriorSet

PRIORS = PriorSet.load(Path(__file__).resolve().parents[2] / "priors" / "cf_il2_mouse.toml")
N = 6
# references are one value per subject; distinct values show that each subject's is added
REFERENCE = {
    key: np.linspace(10.0, 12.0, N)
    for key in ("first_log_burden_observation", "study_log_burden_reference")
}


def build(centred=(), correlated=()):
    with pm.Model(coords={SUBJECT_DIM: range(N)}) as model:
        values = subject_parameters(
            PRIORS,
            ["rho", "kill_rate", "log_burden0"],
            N,
            references=REFERENCE,
            correlated=correlated,
            centred=centred,
        )
    return model, values


@pytest.mark.parametrize("name", ["rho", "log_burden0"])
def test_centred_and_non_centred_subject_values_have_the_same_prior(name):
    draws = {}
    for centred in ((), (name,)):
        model, values = build(centred)
        draws[centred] = pm.draw(values[name], draws=4000, random_seed=11)
    non_centred, centred = draws[()], draws[(name,)]
    for column in (0, N - 1):
        assert stats.ks_2samp(non_centred[:, column], centred[:, column]).pvalue > 0.01
    if name == "log_burden0":  # the data reference is added in both
        assert abs(np.median(centred[:, -1]) - np.median(centred[:, 0]) - 2.0) < 0.1


def test_centred_effects_sample_the_subject_values_not_z():
    model, _ = build(centred=("rho", "log_burden0"))
    free = {rv.name for rv in model.free_RVs}
    assert {"log_rho_subject", "log_burden0_centred", "z_kill_rate"} <= free
    assert not {"z_rho", "z_log_burden0"} & free


@pytest.mark.parametrize(
    ("centred", "correlated", "message"),
    [
        (("hill",), (), "'hill' has no random effect"),
        (("rho",), ("rho", "kill_rate"), "both centred and LKJ-correlated"),
    ],
)
def test_bad_centred_choices_are_named(centred, correlated, message):
    with pytest.raises(ValueError, match=message):
        with pm.Model(coords={SUBJECT_DIM: range(N)}):
            subject_parameters(
                PRIORS, ["rho", "kill_rate", "hill"], N, correlated=correlated, centred=centred
            )


def test_identified_scale_is_an_exact_change_of_variables():
    """Sampling rho through the cavity exposure leaves the joint prior of (rho, PK) unchanged."""
    from bayes.models.cf_il2 import LOCAL_EXPOSURE

    names = ["rho", "k_sys", "v_sys", "local_systemic_ratio", "absorbed_fraction"]
    with pm.Model(coords={SUBJECT_DIM: range(N)}) as model:
        subject_parameters(PRIORS, names, N, identified={"rho": LOCAL_EXPOSURE})
    assert "log_local_exposure" in {rv.name for rv in model.free_RVs}
    assert "rho" not in {rv.name for rv in model.free_RVs}
    rho, k_sys = pm.draw([model["rho"], model["k_sys"]], draws=4000, random_seed=5)
    expected = PRIORS["rho"].to_scipy()
    assert stats.kstest(rho, expected.cdf).pvalue > 0.01
    assert abs(np.corrcoef(np.log(rho), np.log(k_sys))[0, 1]) < 0.05


def test_identified_scale_needs_a_lognormal_prior():
    from bayes.models.spec import IdentifiedScale

    scale = IdentifiedScale("x", lambda p: p["k_sys"] * 0.0)
    with pytest.raises(ValueError, match="needs a LogNormal prior"):
        with pm.Model(coords={SUBJECT_DIM: range(N)}):
            subject_parameters(
                PRIORS,
                ["log_burden0", "k_sys"],
                N,
                references=REFERENCE,
                identified={"log_burden0": scale},
            )
