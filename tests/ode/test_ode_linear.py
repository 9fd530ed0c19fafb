"""Closed-form release -> cavity -> blood amounts, including equal-rate and zero-dose cases."""

from __future__ import annotations

import numpy as np
import pytensor
import pytensor.tensor as pt
import pytest
from ode_reference import central_difference, gradient_error, reference_solution, relative_error

from bayes.ode.linear import chain_amounts

TIMES = np.array([0.0, 0.2, 1.0, 2.0, 3.0, 3.5, 7.0, 14.0])
IMPLANTS = np.array([0.0, 3.0])
# columns: k_fade, k_out_local, k_absorb, k_sys
RATES = np.array(
    [
        [0.3, 1.0, 2.0, 40.0],  # distinct
        [3.0, 1.0, 2.0, 40.0],  # k_fade == k_a + k_L
        [0.3, 1.0, 2.0, 3.0],  # k_sys == k_a + k_L
        [3.0, 1.0, 2.0, 3.0],  # all three equal
        [3.0, 1.0, 2.0, 3.0 + 1e-9],  # nearly equal (catastrophic cancellation in naive form)
        [0.0, 1.0, 2.0, 5.0],  # constant-rate (zero-order) input
        [0.3, 1.0, 2.0, 40.0],  # zero dose
    ]
)
RELEASE = np.tile([[10.0, 4.0]], (len(RATES), 1))
RELEASE[-1] = 0.0
N_SUBJECTS = len(RATES)


@pytest.fixture(scope="module")
def compiled():
    rates, release = pt.dmatrix("rates"), pt.dmatrix("release")
    t = np.tile(TIMES, (N_SUBJECTS, 1))
    implants = np.tile(IMPLANTS, (N_SUBJECTS, 1))
    local, systemic = chain_amounts(t, implants, release, *(rates[:, j] for j in range(4)))
    objective = (pt.log1p(local) + pt.log1p(100 * systemic)).sum()
    grads = pt.grad(objective, [rates, release])
    return pytensor.function([rates, release], [local, systemic, objective, *grads], mode="NUMBA")


def reference(rates: np.ndarray, release: np.ndarray) -> np.ndarray:
    k_fade, k_out_local, k_absorb, k_sys = rates

    def rhs(t, x):
        rate, local, systemic = x
        return [
            -k_fade * rate,
            rate - (k_absorb + k_out_local) * local,
            k_absorb * local - k_sys * systemic,
        ]

    doses = [(time, 0, amount) for time, amount in zip(IMPLANTS, release, strict=True)]
    return reference_solution(rhs, np.zeros(3), TIMES, boluses=doses, atol=1e-16)[:, 1:]


@pytest.mark.parametrize("subject", range(N_SUBJECTS))
def test_matches_radau(compiled, subject):
    local, systemic = compiled(RATES, RELEASE)[:2]
    actual = np.stack([local[subject], systemic[subject]], axis=-1)
    expected = reference(RATES[subject], RELEASE[subject])
    if RELEASE[subject].any():
        assert relative_error(actual[None], expected[None]) <= 1e-8
    else:
        assert np.all(actual == 0.0)


def test_all_rates_equal_matches_analytic_limit(compiled):
    local, systemic = compiled(RATES, RELEASE)[:2]
    k, k_absorb = RATES[3, 0], RATES[3, 2]
    tau = np.clip(TIMES[:, None] - IMPLANTS[None, :], 0.0, None)
    exact_local = (RELEASE[3] * tau * np.exp(-k * tau)).sum(axis=1)
    exact_systemic = (RELEASE[3] * k_absorb * tau**2 / 2 * np.exp(-k * tau)).sum(axis=1)
    np.testing.assert_allclose(local[3], exact_local, rtol=1e-13, atol=0)
    np.testing.assert_allclose(systemic[3], exact_systemic, rtol=1e-13, atol=0)


def test_zero_before_first_implant(compiled):
    local, systemic = compiled(RATES, RELEASE)[:2]
    assert np.all(local[:, 0] == 0.0) and np.all(systemic[:, 0] == 0.0)


def test_gradients_finite_and_match_finite_differences(compiled):
    _, _, _, grad_rates, grad_release = compiled(RATES, RELEASE)
    assert np.all(np.isfinite(grad_rates)) and np.all(np.isfinite(grad_release))
    for subject in range(N_SUBJECTS - 1):  # zero dose: gradient wrt rates is exactly 0

        def objective(x, subject=subject):
            rates = RATES.copy()
            rates[subject] = x
            return compiled(rates, RELEASE)[2]

        numeric = central_difference(objective, RATES[subject].copy(), rel_step=1e-5)
        assert gradient_error(grad_rates[subject], numeric) <= 1e-5, subject
    assert np.all(grad_rates[-1] == 0.0)
    numeric_release = central_difference(lambda x: compiled(RATES, x)[2], RELEASE.copy())
    assert gradient_error(grad_release, numeric_release) <= 1e-5
