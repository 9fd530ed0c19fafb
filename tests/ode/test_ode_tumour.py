"""Problem (a): logistic and Gompertz tumour growth with an effect compartment.

Several subjects with different parameters, ragged observation schedules and symbolic bolus
doses into the effect compartment. One compiled function per method (module-scoped) returns
the solution and its gradients, so the whole module compiles three graphs.
"""

from __future__ import annotations

import numpy as np
import pytensor
import pytensor.tensor as pt
import pytest
from ode_reference import central_difference, gradient_error, reference_solution, relative_error

from bayes.ode import RK4, Dopri5, Events, ODESystem, solve

N_SUBJECTS = 4
STATES = ("V", "y", "E")
PARAMS = ("g", "K", "alpha", "beta", "k_kill", "k_out", "input")

SYSTEM = ODESystem(
    states=STATES,
    parameters=PARAMS,
    rhs=lambda t, y, p: {
        "V": p["g"] * y["V"] * (1 - y["V"] / p["K"]) - p["k_kill"] * y["E"] * y["V"],
        "y": p["alpha"] - p["beta"] * y["y"] - p["k_kill"] * y["E"],
        "E": p["input"] - p["k_out"] * y["E"],
    },
)


def numpy_rhs(params):
    g, K, alpha, beta, k_kill, k_out, u = params

    def rhs(t, x):
        V, y, E = x
        return [g * V * (1 - V / K) - k_kill * E * V, alpha - beta * y - k_kill * E, u - k_out * E]

    return rhs


rng = np.random.default_rng(20240601)
PARAM_VALUES = np.column_stack(
    [
        rng.uniform(0.2, 0.5, N_SUBJECTS),  # g  (1/day)
        rng.uniform(50, 100, N_SUBJECTS),  # K
        rng.uniform(0.5, 1.0, N_SUBJECTS),  # alpha
        rng.uniform(0.05, 0.2, N_SUBJECTS),  # beta
        rng.uniform(0.1, 0.3, N_SUBJECTS),  # k_kill
        rng.uniform(0.5, 2.0, N_SUBJECTS),  # k_out
        rng.uniform(0.0, 0.3, N_SUBJECTS),  # input
    ]
)
Y0_VALUES = np.column_stack(
    [rng.uniform(1, 5, N_SUBJECTS), rng.uniform(1, 3, N_SUBJECTS), np.zeros(N_SUBJECTS)]
)
# Ragged schedules: subject i has 8 - i observations; padded entries are 0.
N_OBS = 8
OBS_MASK = np.arange(N_OBS)[None, :] < (N_OBS - np.arange(N_SUBJECTS))[:, None]
OBS_TIMES = np.where(OBS_MASK, np.sort(rng.uniform(0.25, 21.0, (N_SUBJECTS, N_OBS)), 1), 0.0)
OBS_TIMES[0, 2] = 3.0  # an observation exactly at a dose time (pre-dose value expected)
# Two doses into E per subject at days 3 and 10 (+ subject offsets), symbolic amounts.
DOSE_SUBJECT = np.repeat(np.arange(N_SUBJECTS), 2)
DOSE_TIMES = np.tile([3.0, 10.0], N_SUBJECTS) + np.repeat([0.0, 0.5, 1.0, 1.5], 2)
DOSE_AMOUNTS = rng.uniform(0.5, 2.0, DOSE_SUBJECT.size)
WEIGHTS = rng.normal(size=(N_SUBJECTS, N_OBS, len(STATES))) * OBS_MASK[..., None]


def reference() -> np.ndarray:
    out = np.zeros((N_SUBJECTS, N_OBS, len(STATES)))
    for s in range(N_SUBJECTS):
        doses = [
            (t, 2, a)
            for t, a, subj in zip(DOSE_TIMES, DOSE_AMOUNTS, DOSE_SUBJECT, strict=True)
            if subj == s
        ]
        times = OBS_TIMES[s, OBS_MASK[s]]
        out[s, OBS_MASK[s]] = reference_solution(
            numpy_rhs(PARAM_VALUES[s]), Y0_VALUES[s], times, boluses=doses
        )
    return out


@pytest.fixture(scope="module")
def expected() -> np.ndarray:
    return reference()


def build(method):
    params, y0, amounts = pt.dmatrix("params"), pt.dmatrix("y0"), pt.dvector("amounts")
    events = Events.bolus(DOSE_SUBJECT, DOSE_TIMES, "E", amounts, N_SUBJECTS)
    states = solve(SYSTEM, params, y0, OBS_TIMES, obs_mask=OBS_MASK, events=events, method=method)
    objective = (states * WEIGHTS).sum()
    grads = pt.grad(objective, [params, y0, amounts])
    return pytensor.function([params, y0, amounts], [states, objective, *grads], mode="NUMBA")


METHODS = {"rk4": RK4(), "dopri5": Dopri5()}  # Rosenbrock: test_ode_stiff.py


@pytest.fixture(scope="module", params=list(METHODS))
def compiled(request):
    return request.param, build(METHODS[request.param])


def test_states_match_radau(compiled, expected):
    name, function = compiled
    states = function(PARAM_VALUES, Y0_VALUES, DOSE_AMOUNTS)[0]
    assert states.shape == (N_SUBJECTS, N_OBS, len(STATES))
    assert np.all(np.isfinite(states))  # padded entries included
    assert relative_error(states, expected, OBS_MASK) <= 1e-6, name


def test_observation_at_dose_time_is_pre_dose(compiled, expected):
    _, function = compiled
    states = function(PARAM_VALUES, Y0_VALUES, DOSE_AMOUNTS)[0]
    # Reference applies the dose after the observation at t = 3 (subject 0).
    np.testing.assert_allclose(states[0, 2], expected[0, 2], rtol=1e-7)
    dose_free = reference_solution(
        numpy_rhs(PARAM_VALUES[0]), Y0_VALUES[0], np.array([OBS_TIMES[0, 2]])
    )[0]
    np.testing.assert_allclose(states[0, 2], dose_free, rtol=1e-7)


def test_gradients_match_finite_differences(compiled):
    name, function = compiled
    inputs = [PARAM_VALUES.copy(), Y0_VALUES.copy(), DOSE_AMOUNTS.copy()]
    _, _, *grads = function(*inputs)
    for position, analytic in enumerate(grads):

        def objective(x, position=position):
            args = list(inputs)
            args[position] = x
            return function(*args)[1]

        numeric = central_difference(objective, inputs[position])
        assert gradient_error(analytic, numeric) <= 1e-5, (name, position)
