"""Exact (quadrature) posterior of the two-parameter Bayesian logistic regression model.

Model (Neuenschwander, Branson and Gsponer 2008, Stat Med 27:2420)::

    logit p(d) = log_alpha + exp(log_beta) * log(d / d_ref)
    (log_alpha, log_beta) ~ bivariate normal(mean, covariance)
    y_d ~ Binomial(n_d, p(d))

The posterior lives on a fixed grid in standardised prior coordinates ``z`` (``theta = mean +
L z`` with ``L L' = covariance``), ``grid_points`` per axis on ``[-w, w]``: prior log weights
are ``-|z|^2 / 2`` (equal spacing, constant Jacobian), and the likelihood is added in closed
form. An equally spaced rule on a smooth, rapidly decaying integrand is accurate far beyond
Monte-Carlo error (checked against MCMC in the tests). Interval probabilities integrate an
indicator, which a plain grid resolves only to O(h): each grid cell instead contributes the
exact fraction of its square on the far side of the (locally linear) boundary
``logit p = threshold``, which makes them O(h^2). ``log p`` and ``log(1 - p)`` and those
fractions per grid point and dose are computed once per design, so one posterior update is
a matrix-vector product.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy.special import log_expit, logit


@dataclass(frozen=True)
class IntervalProbabilities:
    """Posterior probabilities per dose of under-dosing, the target interval and overdosing."""

    underdose: np.ndarray
    target: np.ndarray
    overdose: np.ndarray
    mean: np.ndarray


@dataclass(frozen=True)
class BlrmGrid:
    """Grid posterior of the two-parameter BLRM for fixed dose levels and prior.

    Parameters
    ----------
    doses : ndarray
        Dose metric of each level (positive, increasing).
    reference_dose : float
        ``d_ref`` of the model.
    prior_mean : ndarray, shape (2,)
        Prior mean of ``(log_alpha, log_beta)``.
    prior_covariance : ndarray, shape (2, 2)
        Prior covariance.
    target_interval : (float, float)
        ``[low, high)`` is the target toxicity interval; ``>= high`` is overdosing.
    grid_points : int
        Points per axis.
    half_width_sd : float
        Grid half-width in prior standard deviations.

    """

    doses: np.ndarray
    reference_dose: float
    prior_mean: np.ndarray
    prior_covariance: np.ndarray
    target_interval: tuple[float, float] = (0.16, 0.33)
    grid_points: int = 81
    half_width_sd: float = 6.0

    def __post_init__(self) -> None:
        axis = np.linspace(-self.half_width_sd, self.half_width_sd, self.grid_points)
        z = np.stack(np.meshgrid(axis, axis, indexing="ij"), axis=-1).reshape(-1, 2)
        cholesky = np.linalg.cholesky(np.asarray(self.prior_covariance, dtype=float))
        theta = np.asarray(self.prior_mean, dtype=float) + z @ cholesky.T
        log_dose = np.log(np.asarray(self.doses, dtype=float) / self.reference_dose)
        slope = np.exp(theta[:, 1:])
        eta = theta[:, :1] + slope * log_dose[None, :]
        # d eta / d z = L' (1, exp(log_beta) log d): half-widths of eta over a grid cell
        spacing = axis[1] - axis[0]
        reach_1 = np.abs(cholesky[0, 0] + cholesky[1, 0] * slope * log_dose) * spacing
        reach_2 = np.abs(cholesky[1, 1] * slope * log_dose) * spacing
        low, high = self.target_interval
        above_low = _cell_fraction_above(eta, reach_1, reach_2, float(logit(low)))
        above_high = _cell_fraction_above(eta, reach_1, reach_2, float(logit(high)))
        fields = {
            "theta": theta,
            "prior_log_weight": -0.5 * np.sum(z**2, axis=1),
            "log_p": log_expit(eta),
            "log_not_p": log_expit(-eta),
            "probability": np.exp(log_expit(eta)),
            "is_underdose": 1.0 - above_low,
            "is_target": above_low - above_high,
            "is_overdose": above_high,
        }
        for name, value in fields.items():
            object.__setattr__(self, name, value)

    @property
    def n_doses(self) -> int:
        """Return the number of dose levels."""
        return len(self.doses)

    def posterior_weights(self, n: np.ndarray, dlt: np.ndarray) -> np.ndarray:
        """Return normalised posterior weights of the grid points given counts per dose."""
        n = np.asarray(n, dtype=float)
        dlt = np.asarray(dlt, dtype=float)
        log_weight = self.prior_log_weight + self.log_p @ dlt + self.log_not_p @ (n - dlt)
        weight = np.exp(log_weight - log_weight.max())
        return weight / weight.sum()

    def interval_probabilities(self, n: np.ndarray, dlt: np.ndarray) -> IntervalProbabilities:
        """Return posterior interval probabilities and mean DLT rate per dose."""
        weight = self.posterior_weights(n, dlt)
        return IntervalProbabilities(
            underdose=weight @ self.is_underdose,
            target=weight @ self.is_target,
            overdose=weight @ self.is_overdose,
            mean=weight @ self.probability,
        )

    def posterior_moments(self, n: np.ndarray, dlt: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Return the posterior mean and covariance of ``(log_alpha, log_beta)``."""
        weight = self.posterior_weights(n, dlt)
        mean = weight @ self.theta
        centred = self.theta - mean
        return mean, (centred * weight[:, None]).T @ centred


def _cell_fraction_above(
    eta: np.ndarray, width_1: np.ndarray, width_2: np.ndarray, threshold: float
) -> np.ndarray:
    """Return the fraction of each grid cell where the linearised ``eta`` is >= ``threshold``.

    Over a square cell, ``eta`` varies as ``eta_centre + S`` with ``S`` the sum of two
    independent uniforms of widths ``width_1`` and ``width_2`` (the two grid directions); the
    fraction is ``P(S >= threshold - eta_centre)`` from the trapezoidal distribution of ``S``.
    """
    wide = np.maximum(np.maximum(width_1, width_2), 1e-300)
    narrow = np.minimum(width_1, width_2)
    shifted = threshold - eta + (wide + narrow) / 2  # position of the threshold in [0, a + b]
    safe_narrow = np.maximum(narrow, 1e-300)
    below = np.where(
        shifted <= narrow,
        shifted**2 / (2 * wide * safe_narrow),
        np.where(
            shifted <= wide,
            (shifted - narrow / 2) / wide,
            1 - (wide + narrow - shifted) ** 2 / (2 * wide * safe_narrow),
        ),
    )
    below = np.where(narrow <= 1e-12 * wide, np.clip(shifted / wide, 0, 1), below)
    return 1.0 - np.clip(
        np.where(shifted <= 0, 0.0, np.where(shifted >= wide + narrow, 1.0, below)), 0.0, 1.0
    )


def fit_blrm_curves(
    doses: np.ndarray, reference_dose: float, rates: np.ndarray, clip: float = 1e-4
) -> np.ndarray:
    """Fit ``(log_alpha, log_beta)`` to dose-toxicity curves by least squares on the logit scale.

    Parameters
    ----------
    doses : ndarray, shape (dose,)
    reference_dose : float
    rates : ndarray, shape (curve, dose)
        True DLT rates (e.g. drawn from the translational posterior and the toxicity link).
    clip : float
        Rates are clipped to ``[clip, 1 - clip]`` before the logit.

    Returns
    -------
    ndarray, shape (curve, 2)
        ``log_alpha`` and ``log_beta`` per curve (slopes below 1e-3 are set to 1e-3: the model
        forces an increasing curve).

    """
    x = np.log(np.asarray(doses, dtype=float) / reference_dose)
    clipped = np.clip(rates, clip, 1 - clip)
    y = np.log(clipped) - np.log1p(-clipped)
    design = np.column_stack([np.ones_like(x), x])
    coefficients, *_ = np.linalg.lstsq(design, y.T, rcond=None)
    slope = np.maximum(coefficients[1], 1e-3)
    return np.column_stack([coefficients[0], np.log(slope)])
