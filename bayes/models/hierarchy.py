"""Subject-level parameters from population priors: non-centred random effects and covariates.

For parameter ``theta`` with a ``lognormal`` random effect, subject ``i`` gets
``theta_i = theta * exp(x_i' beta + omega * z_i)`` with ``z_i ~ N(0, 1)`` (non-centred, so NUTS
does not meet Neal's funnel); with a ``normal`` random effect (parameters already on a log scale)
``theta_i = theta + x_i' beta + omega * z_i``. A *centred* random effect instead samples the
subject value itself, ``ln theta_i ~ Normal(ln theta + x_i' beta, omega)`` (variable
``log_<name>_subject``; ``<name>_centred`` for ``normal``): better when every subject's value is
well identified by its own data, where the non-centred ``z`` and ``omega`` form a curved ridge
(Betancourt & Girolami 2015; Papaspiliopoulos et al. 2007). An ``offset_from`` prior is relative
to a reference from the data, one value per subject (e.g. the study's reference log burden),
which is added.
With an LKJ prior the ``z`` of the chosen parameters are correlated: ``z = L u``,
``u ~ N(0, I)``, ``L`` the Cholesky factor of an LKJ correlation matrix.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import numpy as np
import pymc as pm
import pytensor.tensor as pt
from pytensor.tensor.variable import TensorVariable

from bayes.models.priors import PriorSet, omega_name
from bayes.models.spec import IdentifiedScale

SUBJECT_DIM = "subject"


@dataclass(frozen=True)
class CovariateEffect:
    """A subject covariate shifting a parameter on its log (or natural, for ``normal``) scale.

    Parameters
    ----------
    parameter : str
        The parameter affected.
    covariate : str
        Column of the study's covariate table (numeric, e.g. a 0/1 co-treatment indicator).
    sigma : float
        SD of the Normal(0, sigma) prior on the effect ``beta``.
    source : str
        Why this prior width (shown in reports).
    """

    parameter: str
    covariate: str
    sigma: float = 0.5
    source: str = "rationale: weakly informative, a covariate rarely changes a parameter > e-fold"


def effect_name(effect: CovariateEffect) -> str:
    """Return the model variable name of a covariate effect."""
    return f"beta_{effect.parameter}_{effect.covariate}"


def subject_parameters(
    priors: PriorSet,
    names: Sequence[str],
    n_subjects: int,
    references: Mapping[str, np.ndarray] | None = None,
    covariates: Mapping[str, np.ndarray] | None = None,
    effects: Sequence[CovariateEffect] = (),
    correlated: Sequence[str] = (),
    lkj_eta: float = 2.0,
    centred: Sequence[str] = (),
    identified: Mapping[str, IdentifiedScale] | None = None,
) -> dict[str, TensorVariable]:
    """Create population parameters and per-subject values in the current PyMC model.

    Parameters
    ----------
    priors : PriorSet
        Priors for every name, with random-effect information.
    names : sequence of str
        Parameters to create.
    n_subjects : int
        Number of subjects (the model must have a ``subject`` coordinate of this length).
    references : mapping, optional
        Per-subject reference values for ``offset_from`` priors.
    covariates : mapping, optional
        Per-subject numeric covariate values.
    effects : sequence of CovariateEffect
        Covariate effects to include.
    correlated : sequence of str
        Parameters whose random effects are correlated through an LKJ prior (at least two).
    lkj_eta : float
        LKJ concentration; 1 is uniform over correlation matrices, larger favours independence.
    centred : sequence of str
        Parameters whose random effects are sampled centred (not with ``correlated``).
    identified : mapping of str to IdentifiedScale, optional
        Log-normal population parameters sampled through the combination the data identify
        (:class:`bayes.models.spec.IdentifiedScale`).

    Returns
    -------
    dict of str to TensorVariable
        Per-subject values, shape ``(subject,)``, for every name.
    """
    references = references or {}
    covariates = covariates or {}
    _check_centred(priors, names, correlated, centred)
    deviations = _random_deviations(priors, names, correlated, lkj_eta, centred)
    shifts = _covariate_shifts(effects, covariates, names)
    populations = _populations(priors, names, identified or {})
    values = {}
    for name in names:
        prior = priors[name]
        population = populations[name]
        log_scale = prior.random_effect is None or prior.random_effect.kind == "lognormal"
        log_scale = log_scale and prior.to_scipy().support()[0] >= 0
        shift = deviations.get(name, 0.0) + shifts.get(name, 0.0)
        base = pt.ones(n_subjects) * population
        if name in centred:
            value = _centred_value(name, base, shift, log_scale)
        else:
            value = base * pt.exp(shift) if log_scale else base + shift
        if prior.offset_from is not None:
            value = value + _reference(references, prior.offset_from, name, n_subjects)
        values[name] = pm.Deterministic(f"{name}_subject", value, dims=SUBJECT_DIM)
    return values


def _populations(
    priors: PriorSet, names: Sequence[str], identified: Mapping[str, IdentifiedScale]
) -> dict[str, TensorVariable]:
    """Create the population parameters; identified ones last (their shift needs the others)."""
    populations = {n: priors[n].prior.to_pymc(n) for n in names if n not in identified}
    for name, scale in identified.items():
        prior = priors[name].prior
        if prior.distribution != "LogNormal":
            raise ValueError(
                f"{name!r} is sampled through {scale.name!r}, which needs a LogNormal prior, "
                f"got {prior.distribution}"
            )
        shift = scale.log_shift(populations)
        log_value = pm.Normal(
            f"log_{scale.name}", prior.params["mu"] + shift, prior.params["sigma"]
        )
        populations[name] = pm.Deterministic(name, pt.exp(log_value - shift))
    return populations


def _check_centred(
    priors: PriorSet, names: Sequence[str], correlated: Sequence[str], centred: Sequence[str]
) -> None:
    for name in centred:
        if name not in names or priors[name].random_effect is None:
            raise ValueError(f"centred parameter {name!r} has no random effect in this model")
        if name in correlated:
            raise ValueError(f"{name!r} cannot be both centred and LKJ-correlated")


def _centred_value(
    name: str, base: TensorVariable, shift: TensorVariable | float, log_scale: bool
) -> TensorVariable:
    """Sample subject values centred on the population value (plus covariate shifts)."""
    omega = pm.modelcontext(None)[omega_name(name)]
    if log_scale:
        log_value = pm.Normal(f"log_{name}_subject", pt.log(base) + shift, omega, dims=SUBJECT_DIM)
        return pt.exp(log_value)
    return pm.Normal(f"{name}_centred", base + shift, omega, dims=SUBJECT_DIM)


def _reference(
    references: Mapping[str, np.ndarray], key: str, name: str, n_subjects: int
) -> np.ndarray:
    if key not in references:
        raise ValueError(
            f"prior of {name!r} is an offset from {key!r}, which this model does not provide "
            f"(available: {sorted(references) or 'none'})"
        )
    reference = np.asarray(references[key], dtype=float)
    if reference.shape != (n_subjects,) or not np.all(np.isfinite(reference)):
        raise ValueError(f"reference {key!r} must be finite with one value per subject")
    return reference


def _random_deviations(
    priors: PriorSet,
    names: Sequence[str],
    correlated: Sequence[str],
    lkj_eta: float,
    centred: Sequence[str] = (),
) -> dict[str, TensorVariable]:
    with_effects = [n for n in names if priors[n].random_effect is not None]
    unknown = [n for n in correlated if n not in with_effects]
    if unknown:
        raise ValueError(f"correlated parameters without a random effect: {unknown}")
    if len(correlated) == 1:
        raise ValueError("an LKJ correlation needs at least two parameters")
    deviations = {}
    for name in with_effects:
        omega = priors[name].random_effect.omega.to_pymc(omega_name(name))
        if name not in correlated and name not in centred:
            z = pm.Normal(f"z_{name}", 0.0, 1.0, dims=SUBJECT_DIM)
            deviations[name] = omega * z
    if correlated:
        deviations.update(_correlated_deviations(correlated, lkj_eta))
    return deviations


def _correlated_deviations(correlated: Sequence[str], eta: float) -> dict[str, TensorVariable]:
    model = pm.modelcontext(None)
    model.add_coord("correlated_parameter", list(correlated))
    corr = pm.LKJCorr("lkj_corr", n=len(correlated), eta=eta, return_matrix=True)
    chol = pt.linalg.cholesky(corr)
    u = pm.Normal("z_correlated", 0.0, 1.0, dims=(SUBJECT_DIM, "correlated_parameter"))
    z = u @ chol.T
    return {name: model[omega_name(name)] * z[:, index] for index, name in enumerate(correlated)}


def _covariate_shifts(
    effects: Sequence[CovariateEffect], covariates: Mapping[str, np.ndarray], names: Sequence[str]
) -> dict[str, TensorVariable]:
    shifts: dict[str, TensorVariable] = {}
    for effect in effects:
        if effect.parameter not in names:
            raise ValueError(f"covariate effect on unknown parameter {effect.parameter!r}")
        if effect.covariate not in covariates:
            raise ValueError(
                f"covariate {effect.covariate!r} is not in the data "
                f"(covariates: {sorted(covariates) or 'none'})"
            )
        x = np.asarray(covariates[effect.covariate], dtype=float)
        beta = pm.Normal(effect_name(effect), 0.0, effect.sigma)
        shifts[effect.parameter] = shifts.get(effect.parameter, 0.0) + beta * x
    return shifts
