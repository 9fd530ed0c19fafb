"""The compiled adaptive path (forward Op + discrete adjoint) equals the autodiff while-scan.

Both paths take the same per-subject steps, so states and gradients must agree to rounding,
with bolus doses (symbolic amounts), zero-order inputs (symbolic rates) and initial states.
The finite-difference checks of the default (compiled) path are in the problem-specific
test modules and the C-vs-numba check in ``test_ode_backends.py``; this one pins the discrete
adjoint to PyTensor's own autodiff of the scan.
"""

from __future__ import annotations

import numpy as np
import pytensor
import pytensor.tensor as pt
import pytest

from bayes.ode import Dopri5, Events, ODESystem, solve
from bayes.ode.compiled import build_step_kernels

N_SUBJECTS = 4
rng = np.random.default_rng(5)
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
OBS_TIMES = np.sort(rng.uniform(0.5, 10, (N_SUBJECTS, 5)), axis=1)
OBS_MASK = np.ones(OBS_TIMES.shape, dtype=bool)
OBS_MASK[0, -2:] = False  # ragged schedule


def tumour_rhs(t, y, p):
    return {
        "V": p["g"] * y["V"] * (1 - y["V"] / p["K"]) - p["k_kill"] * y["E"] * y["V"],
        "E": p["dose"] - p["k_out"] * y["E"],
    }


def tumour_rhs_with_axis(t, y, p):
    """Same system written with a (subject, 1) axis: not elementwise, uses array kernels."""
    decay = (p["k_out"][:, None] * y["E"][:, None]).sum(axis=1)
    return {
        "V": p["g"] * y["V"] * (1 - y["V"] / p["K"]) - p["k_kill"] * y["E"] * y["V"],
        "E": p["dose"] - decay,
    }


PARAMETERS = ("g", "K", "k_kill", "k_out", "dose")
ELEMENTWISE = ODESystem(states=("V", "E"), parameters=PARAMETERS, rhs=tumour_rhs)
WITH_AXIS = ODESystem(states=("V", "E"), parameters=PARAMETERS, rhs=tumour_rhs_with_axis)


def outputs_for(system: ODESystem, engine: str, params, y0, sensitivity_control=False):
    events = Events.combine(
        Events.bolus(np.arange(N_SUBJECTS), 3.0, "E", params[:, 4] * 2.0, N_SUBJECTS),
        Events.infusion(np.arange(N_SUBJECTS), 1.0, 2.5, "V", params[:, 0], N_SUBJECTS),
    )
    method = Dopri5(rtol=1e-7, atol=1e-9, engine=engine, sensitivity_control=sensitivity_control)
    states = solve(system, params, y0, OBS_TIMES, OBS_MASK, events=events, method=method)
    masked = states[OBS_MASK]
    objective = pt.sum(pt.log(masked[:, 0])) + pt.sum(masked[:, 1] ** 2)
    return [states, *pt.grad(objective, [params, y0])]


@pytest.fixture(scope="module", params=[False, True], ids=["plain", "sensitivity_control"])
def results(request):
    params, y0 = pt.dmatrix("params"), pt.dmatrix("y0")
    control = request.param
    outputs = (
        outputs_for(ELEMENTWISE, "scan", params, y0, control)
        + outputs_for(ELEMENTWISE, "compiled", params, y0, control)
        + outputs_for(WITH_AXIS, "compiled", params, y0, control)
    )
    fn = pytensor.function([params, y0], outputs, mode="NUMBA")
    values = fn(PARAM_VALUES, Y0_VALUES)
    return {"scan": values[:3], "scalar": values[3:6], "array": values[6:]}


@pytest.mark.parametrize("control", [False, True])
def test_kernel_kinds(control):
    method = Dopri5(rtol=1e-7, atol=1e-9, sensitivity_control=control)
    n_tangent = 2 if control else 0
    for system, kind in ((ELEMENTWISE, "scalar"), (WITH_AXIS, "array")):
        kernels = build_step_kernels(system, method, N_SUBJECTS)
        assert (kernels.kind, kernels.n_tangent) == (kind, n_tangent)


@pytest.mark.parametrize("kind", ["scalar", "array"])
def test_compiled_states_and_gradients_equal_scan(results, kind):
    for compiled, scanned in zip(results[kind], results["scan"], strict=True):
        assert np.all(np.isfinite(compiled))
        np.testing.assert_allclose(compiled, scanned, rtol=1e-11, atol=1e-13)


def test_max_steps_exhausted_gives_nan():
    method = Dopri5(max_steps=3, engine="compiled")
    states = solve(ELEMENTWISE, PARAM_VALUES, Y0_VALUES, OBS_TIMES, method=method)
    values = states.eval(mode="NUMBA")
    assert np.isnan(values[:, -1]).all()


def test_engine_setting_is_validated():
    with pytest.raises(ValueError, match="engine"):
        Dopri5(engine="fast")


def test_sensitivity_control_changes_only_the_steps():
    """The tangent adds step attempts but no gradient path: the compiled outputs with the
    option equal the scan's autodiff (above), and they stay within tolerance of the plain run.
    """
    params, y0 = pt.dmatrix("params"), pt.dmatrix("y0")
    outputs = outputs_for(ELEMENTWISE, "compiled", params, y0) + outputs_for(
        ELEMENTWISE, "compiled", params, y0, sensitivity_control=True
    )
    values = pytensor.function([params, y0], outputs, mode="NUMBA")(PARAM_VALUES, Y0_VALUES)
    plain, steered = values[:3], values[3:]
    assert not np.array_equal(plain[0], steered[0])  # a different step sequence
    for a, b in zip(steered, plain, strict=True):
        np.testing.assert_allclose(a, b, rtol=1e-5, atol=1e-7 * np.abs(b).max())
