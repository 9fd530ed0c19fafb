"""The CF-IL2 cascade solution against scipy's Radau on the same right-hand side."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytensor
import pytensor.tensor as pt
import pytest
from scipy.integrate import solve_ivp

from bayes.models.cf_il2_solution import cascade_solution
from bayes.models.design import Design
from bayes.models.tumour import EXTINCTION_RATE, EXTINCTION_WIDTH, KILL_FLOOR, observed_log_burden

REFERENCE = 15.4
BASE = dict(
    rho=0.8,
    k_fade=0.015,
    k_sys=263.0,
    v_sys=1.03,
    v_local=0.2,
    local_systemic_ratio=150.0,
    absorbed_fraction=0.8186708573846293,  # k_local_loss = 2 /day
    ec50=520.0,
    hill=3.0,
    k_effect=1.0,
    kill_rate=1.05,
    pd1_enhancement=2.5,
    k_pd1=0.15,
    growth_rate=0.25,
    gompertz_beta=0.03,
    carrying_log_capacity=REFERENCE + 4.0,
    extinction_log_burden=REFERENCE - 8.0,
    log_burden0=REFERENCE,
)  # the reference cohort's generating values (datasets/cohorts/reference/recipe.toml)
OBS_TIMES = np.arange(0.0, 43.0, 1.0)
DOSES = (0.0, 3.0, 6.0)
OUTPUT_UG_PER_DAY = 2.5


@pytest.fixture(autouse=True)
def _python_mode():
    """One small graph evaluated once: the Python linker avoids a numba compile."""
    with pytensor.config.change_flags(mode="FAST_COMPILE"):
        yield


def _design() -> Design:
    events = pd.DataFrame(
        {"subject_index": 0, "time": DOSES, "kind": "antibody_dose", "amount": 200.0}
    )
    return Design(
        subjects=np.array(["m1"]),
        groups=np.array(["g"]),
        obs_times=OBS_TIMES[None, :],
        obs_mask=np.ones((1, len(OBS_TIMES)), bool),
        rows=pd.DataFrame(),
        events=events,
        left_out=pd.DataFrame(),
    )


def _cascade(growth: str, params: dict, step: float) -> np.ndarray:
    solution = cascade_solution(
        growth,
        "exponential",
        np.zeros((1, 1)),
        np.full((1, 1), OUTPUT_UG_PER_DAY),
        np.array([REFERENCE]),
        "antibody_dose",
        200.0,
        grid_step=step,
    )
    tensors = {k: pt.as_tensor_variable(np.array([v])) for k, v in params.items()}
    return solution(tensors, _design(), np.zeros(1)).eval()[0]


def _local_il2(t: float, p: dict) -> float:
    k_abs = p["k_sys"] * p["v_sys"] / (p["local_systemic_ratio"] * p["v_local"])
    k_local = k_abs / p["absorbed_fraction"]  # k_abs + k_local_loss
    rate0 = OUTPUT_UG_PER_DAY * p["rho"] * 1000.0
    amount = rate0 * (np.exp(-p["k_fade"] * t) - np.exp(-k_local * t)) / (k_local - p["k_fade"])
    return amount / p["v_local"]


def _growth(growth: str, y: float, p: dict) -> float:
    if growth == "exponential":
        return p["growth_rate"]
    if growth == "gompertz":
        return p["growth_rate"] - p["gompertz_beta"] * (y - REFERENCE)
    capacity = p["carrying_log_capacity"]
    return p["growth_rate"] * -np.expm1(y - capacity) / -np.expm1(REFERENCE - capacity)


def _radau(growth: str, p: dict) -> np.ndarray:
    """The ODE form (cf_il2_spec's right-hand side), doses applied after same-time samples."""

    def rhs(t, state):
        effect, pd1, free, _ = state
        log_ratio = np.log(max(_local_il2(t, p), 1e-300)) - np.log(p["ec50"])
        stimulus = 1.0 / (1.0 + np.exp(-p["hill"] * log_ratio))
        kill = p["kill_rate"] * effect * (1.0 + p["pd1_enhancement"] * pd1)
        hazard = EXTINCTION_RATE / (
            1.0 + np.exp((free - p["extinction_log_burden"]) / EXTINCTION_WIDTH)
        )
        return [
            p["k_effect"] * (stimulus - effect),
            -p["k_pd1"] * pd1,
            _growth(growth, free, p) - kill,
            hazard,
        ]

    state = np.array([0.0, 0.0, p["log_burden0"], 0.0])
    bounds = [*DOSES, OBS_TIMES[-1] + 1e-9]
    out = [np.array([state])]  # t = 0 sees the value before the first dose
    for start, stop in zip(bounds[:-1], bounds[1:], strict=True):
        state[1] += 1.0
        fit = solve_ivp(
            rhs, (start, stop), state, method="Radau", rtol=1e-10, atol=1e-12, dense_output=True
        )
        times = OBS_TIMES[(OBS_TIMES > start) & (OBS_TIMES <= stop)]
        out.append(fit.sol(times).T)
        state = fit.y[:, -1].copy()
    return np.vstack(out)


def _log_burden(states: np.ndarray, p: dict) -> np.ndarray:
    return observed_log_burden(
        states[:, 2], states[:, 3], np.float64(p["extinction_log_burden"])
    ).eval()


@pytest.mark.parametrize("growth", ["gompertz", "logistic", "exponential"])
def test_cascade_matches_radau_on_the_default_grid(growth: str) -> None:
    params = dict(BASE)
    reference = _radau(growth, params)
    coarse = _cascade(growth, params, 0.5)  # the default grid
    np.testing.assert_allclose(coarse[:, 1], reference[:, 1], atol=1e-10)  # anti-PD-1: exact
    assert np.abs(coarse[:, 0] - reference[:, 0]).max() < 5e-3  # immune effect
    free_error = np.abs(coarse[:, 2] - reference[:, 2]).max()
    assert free_error < 0.03  # ln units, against an assay SD of ~0.3
    burden_error = np.abs(_log_burden(coarse, params) - _log_burden(reference, params))
    assert burden_error.max() < 0.05


def test_an_eradicated_tumour_stays_at_the_floor_and_a_partial_response_regrows() -> None:
    cured = _log_burden(_cascade("gompertz", BASE, 0.5), BASE)
    floor = BASE["extinction_log_burden"] - KILL_FLOOR
    np.testing.assert_allclose(cured[OBS_TIMES >= 14], floor, atol=1e-6)
    weak = dict(BASE, pd1_enhancement=0.0, kill_rate=1.0, k_fade=0.1)  # output halves in 7 days
    partial = _log_burden(_cascade("gompertz", weak, 0.5), weak)
    assert partial.min() < partial[0] - 2.0  # a clear response (> 85% reduction) ...
    assert partial.min() > BASE["extinction_log_burden"] + 3.0  # ... short of the threshold,
    assert partial[-1] > partial.min() + 5.0  # so the tumour regrows as the capsule fades


SUBJECT_LEVEL = ("rho", "kill_rate", "growth_rate", "log_burden0")


@pytest.mark.parametrize("growth", ["gompertz", "logistic", "exponential"])
@pytest.mark.parametrize("implant_days", [(0.0, 0.0, 0.0), (0.0, 0.0, 1.5)])
def test_parameters_shared_by_all_subjects_give_the_same_states(growth, implant_days) -> None:
    """Population-level parameters may come as one value, shape (1,) (what the hierarchical
    model passes, so rates are not exponentiated once per subject): same states."""
    n = 3
    implant_times = np.array(implant_days)[:, None]
    solution = cascade_solution(
        growth,
        "biphasic",
        implant_times,
        np.array([[1.5], [2.5], [5.0]]),
        np.full(n, REFERENCE),
        "antibody_dose",
        200.0,
    )
    events = pd.DataFrame(
        {
            "subject_index": [0, 0, 2],
            "time": [0.0, 3.0, 6.0],
            "kind": "antibody_dose",
            "amount": 200.0,
        }
    )
    design = Design(
        subjects=np.array(["a", "b", "c"]),
        groups=np.array(["g", "g", "h"]),
        obs_times=np.tile(OBS_TIMES[::3], (n, 1)),
        obs_mask=np.ones((n, len(OBS_TIMES[::3])), bool),
        rows=pd.DataFrame(),
        events=events,
        left_out=pd.DataFrame(),
    )
    params = dict(BASE, early_loss_fraction=0.3, k_early=0.8)
    spread = np.array([0.7, 1.0, 1.4])
    per_subject = {k: np.full(n, v) for k, v in params.items()}
    for name in SUBJECT_LEVEL:
        per_subject[name] = per_subject[name] * spread
    full = {k: pt.as_tensor_variable(v) for k, v in per_subject.items()}
    shared = {
        k: pt.as_tensor_variable(v) if k in SUBJECT_LEVEL else pt.as_tensor_variable([params[k]])
        for k, v in per_subject.items()
    }
    expected = solution(full, design, implant_times[:, 0]).eval()
    got = solution(shared, design, implant_times[:, 0]).eval()
    assert got.shape == expected.shape == (n, len(OBS_TIMES[::3]), 4)
    np.testing.assert_allclose(got, expected, rtol=1e-12, atol=1e-12)
    assert np.ptp(expected[:, -1, 2]) > 0.1  # the subjects do differ
