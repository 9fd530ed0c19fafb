"""Tumour growth inhibition building blocks: closed-form oral PK, Emax kill, treatment course."""

import numpy as np
import pandas as pd
import pytensor.tensor as pt
import pytest
from pytensor.compile.mode import Mode
from scipy.integrate import solve_ivp

from bayes.data import Study
from bayes.models.tgi import (
    ONSET_WIDTH_DAYS,
    closed_form_log_burden,
    daily_auc,
    daily_kill_log_burden,
    dose_table,
    growth_treatment_spec,
    kill_rate_at,
    oral_concentration,
    pk_tgi_spec,
    treatment_course,
)

FAST = Mode(linker="py", optimizer="fast_compile")  # small graphs: no C compilation needed


def vector(values) -> pt.TensorVariable:
    return pt.as_tensor_variable(np.asarray(values, dtype=float))


def reference_concentration(times, doses, ka, cl, v):
    """gut -> central ODE solved by scipy, bolus doses added between segments."""
    ke, state, t0, out = cl / v, np.zeros(2), 0.0, []
    doses = sorted(doses)
    for t in times:
        for td, amount in [d for d in doses if t0 <= d[0] <= t]:
            if td > t0:
                state = solve_ivp(rhs, (t0, td), state, args=(ka, ke), rtol=1e-11, atol=1e-12).y[
                    :, -1
                ]
            state, t0 = state + np.array([amount, 0.0]), td
            doses.remove((td, amount))
        if t > t0:
            state = solve_ivp(rhs, (t0, t), state, args=(ka, ke), rtol=1e-11, atol=1e-12).y[:, -1]
        t0 = t
        out.append(state[1] / v)
    return np.array(out)


def rhs(_, y, ka, ke):
    return [-ka * y[0], ka * y[0] - ke * y[1]]


@pytest.mark.parametrize(("ka", "cl", "v"), [(20.0, 0.25, 0.08), (3.125, 0.25, 0.08)])
def test_oral_concentration_matches_the_ode(ka, cl, v):
    # the second case has ka == cl / v: the divided difference must not divide by zero
    times = np.array([0.1, 0.5, 1.0, 1.05, 1.5, 3.0])
    doses = [(0.0, 2500.0), (1.0, 2500.0)]
    expected = reference_concentration(times, list(doses), ka, cl, v)
    n = len(times)
    dose_times = np.tile([d[0] for d in doses], (n, 1))
    dose_amounts = np.tile([d[1] for d in doses], (n, 1))
    p = {"ka": vector([ka] * n), "cl": vector([cl] * n), "v": vector([v] * n)}
    got = oral_concentration(vector(times), dose_times, dose_amounts, p).eval(mode=FAST)
    np.testing.assert_allclose(got, expected, rtol=1e-7)
    assert (
        got[0] > 0
        and oral_concentration(
            vector([0.0]), dose_times[:1], dose_amounts[:1], {k: val[:1] for k, val in p.items()}
        ).eval(mode=FAST)[0]
        == 0.0
    )  # nothing before (or at) the first dose


def test_emax_kill_is_half_maximal_at_ec50_and_zero_without_drug():
    p = {
        "drug_kmax": vector([0.8] * 3),
        "drug_ec50": vector([2000.0] * 3),
        "drug_hill": vector([2.5] * 3),
    }
    got = kill_rate_at("emax", vector([0.0, 2000.0, 1e9]), p).eval(mode=FAST)
    np.testing.assert_allclose(got, [0.0, 0.4, 0.8], atol=1e-12)
    linear = kill_rate_at("linear", vector([10.0]), {"drug_potency": vector([1e-3])}).eval(
        mode=FAST
    )
    assert linear[0] == pytest.approx(0.01)


def test_treatment_course_switches_on_and_fades():
    p = {"treatment_onset": vector([7.0] * 3), "resistance_rate": vector([0.1] * 3)}
    t = vector([7.0 - 5 * ONSET_WIDTH_DAYS * 4, 7.0, 17.0])
    on = treatment_course(t, p, onset=True, resistance=False).eval(mode=FAST)
    np.testing.assert_allclose(on, [1 / (1 + np.exp(20.0)), 0.5, 1 / (1 + np.exp(-40.0))])
    fading = treatment_course(t, p, onset=True, resistance=True).eval(mode=FAST)
    assert fading[2] == pytest.approx(on[2] * np.exp(-1.0))
    assert np.all(treatment_course(t, p, onset=False, resistance=False).eval(mode=FAST) == 1.0)


def study(event_unit: str = "ug", treated=(0.0, 1.0)) -> Study:
    observations = pd.DataFrame(
        {
            "subject": ["a", "a", "b", "b"],
            "group": ["c", "c", "t", "t"],
            "time": [0.0, 2.0, 0.0, 2.0],
            "analyte": "tumour_volume",
            "value": [100.0, 150.0, 80.0, 60.0],
            "unit": "mm^3",
            "censored": False,
            "limit": np.nan,
            "source_row": [2, 3, 4, 5],
            "source_file": "f.csv",
        }
    )
    events = pd.DataFrame(
        {
            "subject": ["b"],
            "time": [0.0],
            "kind": ["dose"],
            "amount": [500.0],
            "unit": [event_unit],
            "duration": [np.nan],
            "source_row": [9],
            "source_file": ["doses.csv"],
        }
    )
    covariates = pd.DataFrame({"subject": ["a", "b"], "treated": list(treated)})
    groups = pd.DataFrame({"group": ["c", "t"], "dose": [0.0, 10.0], "dose_unit": ["mg/kg"] * 2})
    return Study(observations=observations, events=events, covariates=covariates, groups=groups)


def test_dose_table_pads_and_names_bad_rows():
    times, amounts = dose_table(study(), "dose")
    assert times.shape == (2, 1) and amounts[:, 0].tolist() == [0.0, 500.0]
    with pytest.raises(ValueError, match=r"doses.csv:9: dose event must be a mass in ug"):
        dose_table(study("mg/kg"), "dose")


def test_specs_name_their_parameters_and_refuse_bad_options():
    spec = pk_tgi_spec(study(), kill="emax")
    assert spec.system.states == ("log_burden_start",)  # closed form: no ODE steps
    assert {"drug_kmax", "drug_ec50", "drug_hill", "ka", "cl", "v"} <= set(spec.parameters)
    with pytest.raises(ValueError, match="unknown kill"):
        pk_tgi_spec(study(), kill="hill")
    with pytest.raises(ValueError, match="exponential growth"):
        pk_tgi_spec(study(), growth="gompertz")
    full = growth_treatment_spec(study(), growth="gompertz", treatment_onset=True, resistance=True)
    assert {"treatment_onset", "resistance_rate", "gompertz_beta"} <= set(full.parameters)
    for made in (spec, full):  # both offer a per-animal and a study-level burden reference
        first = made.references["first_log_burden_observation"]
        np.testing.assert_allclose(made.references["study_log_burden_reference"], np.median(first))
    with pytest.raises(ValueError, match="needs treatment_onset"):
        growth_treatment_spec(study(), resistance=True)
    with pytest.raises(ValueError, match="growth_reference"):
        growth_treatment_spec(study(), growth="gompertz", growth_reference=0.0)


@pytest.mark.parametrize(
    ("growth", "beta", "onset", "fade"),
    [("gompertz", 0.08, 9.0, 0.05), ("gompertz", 0.05, 9.0, 0.05), ("exponential", 0.0, 3.0, 0.0)],
)
def test_closed_form_log_burden_matches_the_ode(growth, beta, onset, fade):
    # case 2 has resistance_rate == gompertz_beta; case 3 an onset before the first observation
    a, e, y0, y_ref, t0 = 0.3, 0.5, np.log(40.0), np.log(100.0), 4.0

    def ode(t, y):
        course = np.exp(-fade * (t - onset)) if t >= onset else 0.0
        return [a - beta * (y[0] - y_ref) - e * course]

    times = np.array([5.0, 8.9, 9.5, 14.0, 30.0])
    expected = solve_ivp(ode, (t0, 30.0), [y0], t_eval=times, rtol=1e-10, atol=1e-12, max_step=0.05)
    n = len(times)
    p = {
        "log_burden0": vector([y0] * n),
        "first_time": vector([t0] * n),
        "growth_rate": vector([a] * n),
        "gompertz_beta": vector([beta] * n),
        "growth_reference": vector([y_ref] * n),
        "treatment_effect": vector([e] * n),
        "treated": vector([1.0] * n),
        "treatment_onset": vector([onset] * n),
        "resistance_rate": vector([fade] * n),
    }
    got = closed_form_log_burden(vector(times), p, growth, onset=True, resistance=True)
    np.testing.assert_allclose(got.eval(mode=FAST), expected.y[0], atol=1e-6)
    p["treated"] = vector([0.0] * n)
    untreated = closed_form_log_burden(vector(times), p, growth, onset=True, resistance=True)
    difference = untreated.eval(mode=FAST) - got.eval(mode=FAST)
    assert np.all(difference[times <= onset] == 0) and np.all(difference[times > onset] > 0)


def test_daily_kill_uses_each_days_average_concentration():
    ka, cl, v, n_days = 20.0, 0.25, 0.08, 6
    dose_times = np.array([[1.0, 2.0, 3.0]] * 2)
    dose_amounts = np.array([[2500.0, 2500.0, 0.0], [600.0, 600.0, 600.0]])
    grid = np.linspace(0.0, n_days, n_days * 4000 + 1)
    row = {
        "ka": vector([ka] * len(grid)),
        "cl": vector([cl] * len(grid)),
        "v": vector([v] * len(grid)),
    }
    averages = []
    for i in range(2):
        shape = (len(grid), 3)
        c = oral_concentration(
            vector(grid),
            np.broadcast_to(dose_times[i], shape),
            np.broadcast_to(dose_amounts[i], shape),
            row,
        ).eval(mode=FAST)
        averages.append(
            [np.trapezoid(c[k * 4000 : (k + 1) * 4000 + 1], dx=1 / 4000) for k in range(n_days)]
        )
    p = {
        "ka": vector([ka] * 2),
        "cl": vector([cl] * 2),
        "v": vector([v] * 2),
        "dose_times": pt.as_tensor_variable(dose_times),
        "dose_amounts": pt.as_tensor_variable(dose_amounts),
    }
    np.testing.assert_allclose(daily_auc(n_days, p).eval(mode=FAST), averages, rtol=1e-6)
    kmax, ec50, hill, g, y0 = 0.6, 2000.0, 2.0, 0.1, np.log(100.0)
    p |= {
        "drug_kmax": vector([kmax] * 2),
        "drug_ec50": vector([ec50] * 2),
        "drug_hill": vector([hill] * 2),
        "growth_rate": vector([g] * 2),
        "log_burden0": vector([y0] * 2),
        "first_time": vector([0.0, 0.0]),
    }
    got = daily_kill_log_burden(vector([4.0, 5.5]), p, "emax", n_days).eval(mode=FAST)
    kills = kmax * np.array(averages) ** hill / (ec50**hill + np.array(averages) ** hill)
    expected = [
        y0 + g * 4.0 - kills[0, :4].sum(),
        y0 + g * 5.5 - kills[1, :5].sum() - 0.5 * kills[1, 5],
    ]
    np.testing.assert_allclose(got, expected, rtol=1e-6)
