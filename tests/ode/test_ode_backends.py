"""The same solver graph compiles on the C (CVM) and numba back-ends with identical results.

In PyTensor 3 the default mode is numba; the C back-end is ``mode="CVM"``.
"""

from __future__ import annotations

import importlib.util

import numpy as np
import pytensor
import pytensor.tensor as pt
import pytest

from bayes.ode import RK4, Dopri5, Events, ODESystem, solve

SYSTEM = ODESystem(
    states=("V", "E"),
    parameters=("g", "K", "k_kill", "k_out", "dose"),
    rhs=lambda t, y, p: {
        "V": p["g"] * y["V"] * (1 - y["V"] / p["K"]) - p["k_kill"] * y["E"] * y["V"],
        "E": p["dose"] - p["k_out"] * y["E"],
    },
)
rng = np.random.default_rng(11)
N_SUBJECTS = 5
PARAM_VALUES = np.column_stack(
    [
        rng.uniform(0.2, 0.5, N_SUBJECTS),
        rng.uniform(50, 100, N_SUBJECTS),
        rng.uniform(0.1, 0.3, N_SUBJECTS),
        rng.uniform(0.5, 2, N_SUBJECTS),
        rng.uniform(0.1, 0.5, N_SUBJECTS),
    ]
)
Y0_VALUES = np.column_stack([rng.uniform(1, 5, N_SUBJECTS), np.zeros(N_SUBJECTS)])
OBS_TIMES = np.sort(rng.uniform(0.5, 14, (N_SUBJECTS, 6)), axis=1)


def graph():
    params = pt.dmatrix("params")
    events = Events.bolus(np.arange(N_SUBJECTS), 4.0, "E", params[:, 4] * 2.0, N_SUBJECTS)
    outputs = []
    for method in (RK4(), Dopri5()):
        states = solve(SYSTEM, params, Y0_VALUES, OBS_TIMES, events=events, method=method)
        outputs += [states, pt.grad(pt.sum(pt.log(states[..., 0])), params)]
    return params, outputs


@pytest.fixture(scope="module")
def results():
    params, outputs = graph()
    return {
        mode: pytensor.function([params], outputs, mode=mode)(PARAM_VALUES)
        for mode in ("CVM", "NUMBA")
    }


def test_c_and_numba_agree(results):
    for c_value, numba_value in zip(results["CVM"], results["NUMBA"], strict=True):
        np.testing.assert_allclose(c_value, numba_value, rtol=1e-12, atol=1e-14)


def test_rk4_and_dopri5_agree(results):
    rk4_states, _, dopri_states, _ = results["NUMBA"]
    np.testing.assert_allclose(rk4_states, dopri_states, rtol=1e-7)


@pytest.mark.skipif(importlib.util.find_spec("jax") is None, reason="jax is not installed")
def test_jax_matches_numba(results):  # pragma: no cover - jax absent in the reference env
    params, outputs = graph()
    jax_values = pytensor.function([params], outputs, mode="JAX")(PARAM_VALUES)
    for jax_value, numba_value in zip(jax_values, results["NUMBA"], strict=True):
        np.testing.assert_allclose(jax_value, numba_value, rtol=1e-10)
