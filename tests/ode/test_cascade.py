"""The cascade solver: exact for linear inputs, exact integrals, finite gradients, no overflow."""

from __future__ import annotations

import numpy as np
import pytensor
import pytensor.tensor as pt
import pytest
from scipy.integrate import quad

from bayes.ode.cascade import (
    cumulative_integral,
    integral_of_exp,
    integral_of_sigmoid,
    linear_response,
    rate_cap,
    time_grid,
)


@pytest.fixture(autouse=True)
def _python_mode():
    """Small graphs evaluated once: skip the numba compile (minutes) for the Python linker."""
    with pytensor.config.change_flags(mode="FAST_COMPILE"):
        yield


OBS = np.array([[0.0, 1.0, 2.5, 7.0, 14.0], [0.0, 3.0, 5.0, 9.0, 14.0]])
GRID = time_grid(OBS, start_times=np.array([0.0, 2.0]), event_times=[0.0, 2.0], step=0.5)
T = GRID.times


def test_grid_contains_observations_starts_and_refinement() -> None:
    assert np.all(np.diff(T) > 0)
    assert np.allclose(T[GRID.obs_index], OBS)
    assert list(T[GRID.start]) == [0.0, 2.0]
    assert 2.0 + 0.5 / 256 in T  # refined after the event at t = 2
    assert np.diff(T).max() <= 0.5 + 1e-12


def test_time_grid_rejects_a_non_positive_step() -> None:
    with pytest.raises(ValueError, match="grid step must be positive"):
        time_grid(OBS, np.zeros(2), step=0.0)


def _exact_linear(k: float, y0: float, a: float, b: float, t: np.ndarray, s: float) -> np.ndarray:
    """Solution of dy/dt = -k y + a + b t from y(s) = y0 (analytic)."""
    tau = np.maximum(t - s, 0.0)
    # particular solution y_p = (a + b t)/k - b/k^2
    y_p = lambda time: (a + b * time) / k - b / k**2  # noqa: E731
    return np.where(t >= s, y_p(t) + (y0 - y_p(s)) * np.exp(-k * tau), y0)


@pytest.mark.parametrize("k", [1e-3, 0.7, 12.0])
def test_linear_response_is_exact_for_a_linear_input(k: float) -> None:
    a, b = 1.3, -0.2
    f = a + b * T
    rate = np.array([k, k])
    initial = np.array([0.4, -1.0])
    fs = np.tile(f[:-1], (2, 1))
    fe = np.tile(f[1:], (2, 1))
    y = linear_response(pt.as_tensor(rate), fs, fe, pt.as_tensor(initial), GRID).eval()
    for i, s in enumerate(T[GRID.start]):
        np.testing.assert_allclose(
            y[i], _exact_linear(k, initial[i], a, b, T, s), rtol=1e-9, atol=1e-9
        )


def test_linear_response_stays_finite_for_rates_above_the_cap() -> None:
    cap = rate_cap(GRID)
    f = np.ones((2, len(T) - 1))
    y = linear_response(pt.as_tensor([10 * cap, 1e-12]), f, f, pt.as_tensor([0.0, 0.0]), GRID)
    values = y.eval()
    assert np.all(np.isfinite(values))
    np.testing.assert_allclose(values[0, -1], 1.0 / cap, rtol=1e-6)  # capped: y -> f / cap


def test_linear_response_gradient_matches_finite_differences() -> None:
    rng = np.random.default_rng(0)
    fs, fe = rng.normal(size=(2, len(T) - 1)), rng.normal(size=(2, len(T) - 1))

    def total(log_rate, initial, start):
        y = linear_response(pt.exp(log_rate), start, fe, initial, GRID)
        return (y * np.linspace(0.5, 1.5, len(T))).sum()

    pytensor.gradient.verify_grad(
        total,
        [np.log([0.3, 2.0]), np.array([0.5, -0.2]), fs],
        rng=rng,
        eps=1e-7,
        abs_tol=1e-5,
        rel_tol=1e-5,
    )


def test_integrals_are_exact_for_linear_arguments() -> None:
    slope = np.array([[0.9], [-2.0]])
    argument = slope * (T[None, :] - 6.0)
    start = T[GRID.start]
    sigmoid = integral_of_sigmoid(pt.as_tensor(argument), GRID).eval()
    exp_integral = integral_of_exp(pt.as_tensor(0.3 * argument), GRID).eval()
    linear = cumulative_integral(argument[:, :-1], argument[:, 1:], GRID).eval()
    for i in range(2):
        for j in (GRID.obs_index[i, -1], GRID.obs_index[i, 2]):
            s, t = start[i], T[j]
            fun = lambda u, i=i: slope[i, 0] * (u - 6.0)  # noqa: E731
            expected = quad(lambda u, fun=fun: 1 / (1 + np.exp(-fun(u))), s, t)[0]
            np.testing.assert_allclose(sigmoid[i, j], expected, rtol=1e-10)
            expected = quad(lambda u, fun=fun: np.exp(0.3 * fun(u)), s, t)[0]
            np.testing.assert_allclose(exp_integral[i, j], expected, rtol=1e-10)
            np.testing.assert_allclose(linear[i, j], quad(fun, s, t)[0], rtol=1e-10, atol=1e-12)
    assert np.all(sigmoid[1, : GRID.start[1] + 1] == 0.0)  # nothing before the start


def test_integral_of_sigmoid_has_finite_gradients_where_the_argument_is_flat() -> None:
    argument = pt.vector("a")
    values = pt.stack([argument, argument])
    grad = pt.grad(integral_of_sigmoid(values, GRID).sum(), argument)
    out = pytensor.function([argument], grad)(np.full(len(T), 0.3))
    assert np.all(np.isfinite(out))
