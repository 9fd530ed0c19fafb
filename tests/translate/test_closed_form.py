import numpy as np
import pytest
from scipy.integrate import solve_ivp

from bayes.ode.linear import chain_amounts
from bayes.translate.closed_form import il2_profiles
from bayes.translate.exposure import immune_effect, time_above

TIMES = np.array([0.0, 0.01, 0.3, 1.0, 2.5, 7.0, 20.0])


def _one_compartment(rate0, k_fade, k_abs, k_loss, k_sys, v_local, v_sys, implants=(0.0,)):
    shape = np.shape(rate0)
    return il2_profiles(
        TIMES,
        np.array(implants),
        [(1.0, np.broadcast_to(k_fade, shape))],
        rate0,
        np.broadcast_to(k_abs, shape),
        np.broadcast_to(k_loss, shape),
        np.broadcast_to(v_local, shape),
        [(np.broadcast_to(1.0 / v_sys, shape), np.broadcast_to(k_sys, shape))],
    )


@pytest.mark.parametrize(
    "rates",
    [(0.03, 4.0, 1.0, 200.0), (0.5, 0.3, 0.2, 0.5), (1.0, 0.6, 0.4, 1.0), (0.2, 3.0, 0.0, 9.0)],
    ids=["separated", "release_equals_local", "all_equal", "zero_loss"],
)
def test_numpy_profiles_match_the_pytensor_chain(rates):
    k_fade, k_abs, k_loss, k_sys = rates
    rate0 = np.array([[1000.0, 250.0]])
    local, systemic = _one_compartment(
        rate0, k_fade, k_abs, k_loss, k_sys, 0.5, 2.0, implants=(0.0, 2.0)
    )
    ref_local, ref_sys = chain_amounts(
        np.tile(TIMES, (2, 1)),
        np.array([[0.0, 2.0]] * 2),
        np.array([[1000.0] * 2, [250.0] * 2]),
        np.full(2, k_fade),
        np.full(2, k_loss),
        np.full(2, k_abs),
        np.full(2, k_sys),
    )
    np.testing.assert_allclose(local[0], ref_local.eval() / 0.5, rtol=1e-8, atol=1e-12)
    np.testing.assert_allclose(systemic[0], ref_sys.eval() / 2.0, rtol=1e-7, atol=1e-12)


def test_biexponential_systemic_matches_an_ode_solution():
    rate0, k_fade, k_abs, k_loss, v_local = 5000.0, 0.05, 3.0, 0.7, 800.0
    v1, k10, k12, k21 = 3000.0, 60.0, 30.0, 12.0  # central/peripheral micro-constants (1/day)
    spread = np.sqrt((k10 + k12 + k21) ** 2 - 4 * k10 * k21)
    alpha, beta = (k10 + k12 + k21 + spread) / 2, (k10 + k12 + k21 - spread) / 2
    c_alpha = (alpha - k21) / (alpha - beta) / v1
    c_beta = (k21 - beta) / (alpha - beta) / v1
    one = np.ones(1)
    local, systemic = il2_profiles(
        TIMES,
        np.array([0.0]),
        [(1.0, k_fade * one)],
        rate0 * one,
        k_abs * one,
        k_loss * one,
        v_local * one,
        [(c_alpha * one, alpha * one), (c_beta * one, beta * one)],
    )

    def rhs(t, y):
        release = rate0 * np.exp(-k_fade * t)
        return [
            release - (k_abs + k_loss) * y[0],
            k_abs * y[0] - (k10 + k12) * y[1] + k21 * y[2],
            k12 * y[1] - k21 * y[2],
        ]

    solution = solve_ivp(
        rhs, (0, TIMES[-1]), [0, 0, 0], t_eval=TIMES, method="Radau", rtol=1e-10, atol=1e-12
    )
    np.testing.assert_allclose(local[0], solution.y[0] / v_local, rtol=1e-6, atol=1e-9)
    np.testing.assert_allclose(systemic[0], solution.y[1] / v1, rtol=1e-6, atol=1e-9)


def test_time_above_is_exact_for_piecewise_linear_curves():
    times = np.array([0.0, 1.0, 2.0, 4.0])
    curve = np.array([[0.0, 2.0, 2.0, 0.0], [5.0, 5.0, 5.0, 5.0], [0.0, 0.5, 0.2, 0.0]])
    # level 1: rising crossing at 0.5, above until the falling crossing at 3.0 -> 2.5 days
    np.testing.assert_allclose(time_above(curve, times, np.ones(3)), [2.5, 4.0, 0.0])


def test_immune_effect_solves_the_effect_compartment_exactly():
    times = np.linspace(0.0, 5.0, 11)
    stimulus = np.broadcast_to(0.3 + 0.1 * times, (2, times.size))  # linear stimulus
    k = np.array([0.7, 3.0])
    effect = immune_effect(stimulus, times, k)
    # exact: E = a + b t - b/k - (a - b/k) exp(-k t) for S = a + b t, E(0) = 0
    exact = (
        0.3
        + 0.1 * times
        - 0.1 / k[:, None]
        - (0.3 - 0.1 / k[:, None]) * np.exp(-k[:, None] * times)
    )
    np.testing.assert_allclose(effect, exact, rtol=1e-12, atol=1e-14)
