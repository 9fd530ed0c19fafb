"""Observation (residual error) models with left-censoring by the M3 method.

An observation is compared with its prediction on the log scale (``scale="log"``: log
bioluminescence, log caliper volume, log IL-2 concentration) or on the natural scale. Values below
a detection or quantification limit stay in the likelihood: their term is the log-CDF of the
error distribution at the limit (Beal's M3 method), never a deleted row or LOQ/2. The
per-observation log-likelihood of the observed variable is what LOO uses.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

import numpy as np
import pymc as pm
import pytensor.tensor as pt
from pytensor.tensor.variable import TensorVariable

ErrorFamily = Literal["normal", "student_t"]
Scale = Literal["log", "linear"]


@dataclass(frozen=True)
class ErrorModel:
    """How an analyte's observations scatter around their prediction.

    Parameters
    ----------
    family : {"normal", "student_t"}
        Residual distribution; Student-t is robust to outlying measurements.
    scale : {"log", "linear"}
        ``"log"`` compares ``log(value)`` with ``log(prediction)`` (a proportional error on the
        natural scale); ``"linear"`` compares values directly (additive error).
    sigma : str
        Name of the residual-SD parameter in the prior set.
    nu : str or None
        Name of the degrees-of-freedom parameter; required for ``student_t``.
    """

    family: ErrorFamily = "normal"
    scale: Scale = "log"
    sigma: str = "sigma"
    nu: str | None = None

    def __post_init__(self) -> None:
        """Check that a Student-t model names its degrees of freedom."""
        if self.family not in ("normal", "student_t"):
            raise ValueError(f"unknown error family {self.family!r}; use 'normal' or 'student_t'")
        if self.scale not in ("log", "linear"):
            raise ValueError(f"unknown scale {self.scale!r}; use 'log' or 'linear'")
        if self.family == "student_t" and self.nu is None:
            raise ValueError("a student_t error model needs `nu`, the name of its df parameter")

    @property
    def parameter_names(self) -> tuple[str, ...]:
        """Names of the parameters this error model needs from the prior set."""
        return (self.sigma,) if self.nu is None else (self.sigma, self.nu)

    def transform(self, values: np.ndarray) -> np.ndarray:
        """Map observed values (or limits) to the scale the error acts on."""
        values = np.asarray(values, dtype=float)
        if self.scale == "linear":
            return values
        with np.errstate(divide="ignore"):
            return np.log(values)

    def distribution(
        self, prediction: TensorVariable, sigma: TensorVariable, nu: TensorVariable | None = None
    ) -> TensorVariable:
        """Return the unregistered residual distribution centred on ``prediction``.

        ``prediction`` is already on the model's scale (log prediction when ``scale="log"``).
        """
        if self.family == "normal":
            return pm.Normal.dist(mu=prediction, sigma=sigma)
        return pm.StudentT.dist(nu=nu, mu=prediction, sigma=sigma)


def observed_data_name(name: str) -> str:
    """Return the name of the data container holding an observed variable's values."""
    return f"{name}_data"


def censoring_limit_name(name: str) -> str:
    """Return the name of the data container holding an observed variable's M3 lower limits."""
    return f"{name}_lower"


def censored_values(
    error_model: ErrorModel, observed: np.ndarray, censored: np.ndarray, limit: np.ndarray
) -> tuple[np.ndarray, np.ndarray]:
    """Return the observed values and M3 lower limits on the error model's scale.

    Parameters
    ----------
    error_model : ErrorModel
        Residual model (its scale maps values and limits).
    observed : numpy.ndarray
        Observed values on the natural scale (ignored where ``censored``).
    censored : numpy.ndarray of bool
        True where the value is below its limit (left-censored).
    limit : numpy.ndarray
        Detection or quantification limit on the natural scale (used where ``censored``).

    Returns
    -------
    data, lower : numpy.ndarray
        ``data`` is the scaled value (the scaled limit where censored); ``lower`` is the scaled
        limit where censored and ``-inf`` elsewhere, so ``data == lower`` marks a censored row.

    Raises
    ------
    ValueError
        If a censored observation has no finite limit.
    """
    censored = np.asarray(censored, dtype=bool)
    if censored.any() and not np.all(np.isfinite(np.asarray(limit, dtype=float)[censored])):
        raise ValueError("censored observations need finite limits")
    limit_scaled = error_model.transform(np.where(censored, limit, 1.0))
    value_scaled = error_model.transform(np.where(censored, 1.0, observed))
    data = np.where(censored, limit_scaled, value_scaled)
    lower = np.where(censored, limit_scaled, -np.inf)
    return data, lower


def censored_likelihood(
    name: str,
    error_model: ErrorModel,
    prediction: TensorVariable,
    observed: np.ndarray,
    censored: np.ndarray,
    limit: np.ndarray,
    sigma: TensorVariable,
    nu: TensorVariable | None = None,
    dims: str | None = None,
    mutable: bool = False,
) -> TensorVariable:
    """Register observations with M3 left-censoring in the current PyMC model.

    Parameters
    ----------
    name : str
        Name of the observed variable (its per-observation log-likelihood is kept for LOO).
    error_model : ErrorModel
        Residual model; ``prediction`` must be on its scale.
    prediction : TensorVariable
        Predicted values on the error model's scale, one per observation.
    observed : numpy.ndarray
        Observed values on the natural scale (ignored where ``censored``).
    censored : numpy.ndarray of bool
        True where the value is below its limit (left-censored).
    limit : numpy.ndarray
        Detection or quantification limit on the natural scale (used where ``censored``).
    sigma, nu : TensorVariable
        Residual SD and, for Student-t, degrees of freedom.
    dims : str, optional
        The observation dimension name.
    mutable : bool
        Hold the scaled values and M3 limits in ``pm.Data`` containers
        (:func:`observed_data_name`, :func:`censoring_limit_name`) so that a compiled model can
        be refitted to other data of the same shape, censoring pattern included, without
        recompiling (``nutpie``'s ``compiled.with_data``; ``pm.set_data``).

    Returns
    -------
    TensorVariable
        The observed random variable.
    """
    try:
        data, lower = censored_values(error_model, observed, censored, limit)
    except ValueError as exc:
        raise ValueError(f"{name}: {exc}") from exc
    if mutable:
        data = pm.Data(observed_data_name(name), data, dims=dims)
        lower = pm.Data(censoring_limit_name(name), lower, dims=dims)
    # CustomDist takes a fixed parameter list: a normal error model ignores this placeholder nu
    nu = pt.as_tensor_variable(1.0 if nu is None else nu)

    def residual(mu, sigma, nu):
        return error_model.distribution(mu, sigma, nu)

    def censored(mu, sigma, nu, lower, size):
        return pm.Censored.dist(residual(mu, sigma, nu), lower=lower, upper=None, size=size)

    def logp(value, mu, sigma, nu, lower):
        return m3_logp(residual, value, mu, sigma, nu, lower)

    return pm.CustomDist(
        name,
        prediction,
        sigma,
        nu,
        lower,
        dist=censored,
        logp=logp,
        observed=data,
        dims=dims,
    )


def m3_logp(residual, value, mu, sigma, nu, lower) -> TensorVariable:
    """Per-observation M3 log-likelihood, the log-CDF evaluated only on the censored rows.

    Equal to ``pm.logp(pm.Censored.dist(residual(mu, sigma, nu), lower=lower), value)``, but
    the log-CDF (for Student-t an incomplete beta function, ~10x the log-density's cost with
    its gradient) is computed for the rows with ``value <= lower`` only, gathered by index,
    instead of for every row as an element-wise switch would.
    """
    mu = pt.broadcast_to(mu, value.shape)
    density = pm.logp(residual(mu, sigma, nu), value)
    rows = pt.nonzero(pt.le(value, lower))[0]
    tail = pm.logcdf(residual(mu[rows], sigma, nu), lower[rows])
    return pt.set_subtensor(density[rows], tail)
