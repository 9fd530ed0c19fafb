"""Simulated trials' "true" dose-toxicity and dose-activity from the translational posterior.

Each simulated trial draws

1. one translational posterior draw (a slice of ``/exposure`` in ``predictions.nc``),
2. one set of link parameters (intercept at the reference exposure and slope, from the design
   file's priors) for toxicity and for response,

which fixes, for every dose level ``d`` and every virtual patient ``k`` of the translation, the
patient's probabilities ``p_dlt[d, k]`` and ``p_response[d, k]``. Patients enrolled in the trial
are drawn from the ``patient`` axis (between-patient variability: body weight, cavity volume...),
and each has a DLT and a response with their own probabilities; both come from the same
patient's exposures, so they are correlated through the patient. The true dose-level rates are
the population averages over the patient axis.

Patient outcomes are pre-generated per dose level as streams (the j-th patient treated at a
level is the same in every design), so designs are compared on common random numbers. Trial
``i`` uses its own generator seeded by ``SeedSequence(seed, spawn_key=(i,))``, the i-th child
of ``SeedSequence(seed).spawn``: results do not depend on how trials are batched or where they
run.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
from scipy.special import expit, logit

from bayes.trials.config import (
    DOSE_METRICS,
    EXPOSURE_VARIABLES,
    DoseConfig,
    LinkConfig,
    TrialDesignConfig,
)

if TYPE_CHECKING:  # xarray and the data layer are imported lazily: workers never need them
    import xarray as xr

    from bayes.data.errors import IssueCollector

EXPOSURE_GROUP = "exposure"
EXPOSURE_DIMS = ("draw", "scenario", "patient")
SCENARIO_COORDS = ("capsules", "total_output_ug_per_day", "cavity")
LOGIT_CLIP = 1e-9


def load_exposure(path: str | Path) -> xr.Dataset:
    """Read and check the ``/exposure`` group of a translation ``predictions.nc``.

    Parameters
    ----------
    path : str or Path
        ``predictions.nc`` or the translation output folder that holds it.

    Returns
    -------
    xarray.Dataset
        Dims ``(draw, scenario, patient)``, loaded into memory.

    Raises
    ------
    bayes.data.DataError
        Naming the file and the missing or malformed variable or coordinate.

    """
    import xarray as xr

    from bayes.data.errors import IssueCollector

    path = Path(path)
    if path.is_dir():
        path = path / "predictions.nc"
    issues = IssueCollector()
    label = str(path)
    try:
        tree = xr.open_datatree(path, engine="netcdf4")
    except (OSError, ValueError) as exc:
        issues.add(label, None, None, f"cannot read the translation predictions: {exc}")
        issues.raise_if_any()
    with tree:
        if EXPOSURE_GROUP not in tree.children:
            issues.add(label, None, f"/{EXPOSURE_GROUP}", "group missing (translation contract)")
            issues.raise_if_any()
        exposure = tree[EXPOSURE_GROUP].to_dataset().load()
        exposure.attrs.update({f"root_{k}": v for k, v in tree.attrs.items()})
    _check_exposure(exposure, label, issues)
    issues.raise_if_any()
    return exposure


def _check_exposure(exposure: xr.Dataset, label: str, issues: IssueCollector) -> None:
    for name in EXPOSURE_VARIABLES:
        key = f"/{EXPOSURE_GROUP}/{name}"
        if name not in exposure:
            issues.add(label, None, key, "variable missing (translation contract)")
            continue
        variable = exposure[name]
        if set(variable.dims) != set(EXPOSURE_DIMS):
            issues.add(label, None, key, f"dims {variable.dims}, expected {EXPOSURE_DIMS}")
            continue
        values = variable.values
        if not np.issubdtype(values.dtype, np.floating):
            issues.add(label, None, key, f"expected floats, found {values.dtype}")
        elif not np.all(np.isfinite(values)) or np.any(values < 0):
            issues.add(label, None, key, "values must be finite and non-negative")
    for name in ("scenario", *SCENARIO_COORDS):
        if name not in exposure.coords:
            issues.add(label, None, f"/{EXPOSURE_GROUP}/{name}", "scenario coordinate missing")
    for dim in EXPOSURE_DIMS:
        if exposure.sizes.get(dim, 0) < 1:
            issues.add(label, None, f"/{EXPOSURE_GROUP}/{dim}", "dimension missing or empty")


def select_doses(exposure: xr.Dataset, doses: DoseConfig, label: str = "design") -> xr.Dataset:
    """Return the exposure of the dose-level scenarios, in escalation order.

    Parameters
    ----------
    exposure : xarray.Dataset
        The checked ``/exposure`` group.
    doses : DoseConfig
        Scenario names (in order) or a cavity filter; the dose metric.
    label : str
        File name used in error messages.

    Returns
    -------
    xarray.Dataset
        The scenarios of the dose levels, with a ``dose`` coordinate (the metric's values).

    Raises
    ------
    bayes.data.DataError
        Unknown scenario names, empty selections, missing or non-increasing dose values.

    """
    from bayes.data.errors import IssueCollector

    issues = IssueCollector()
    names = [str(name) for name in exposure["scenario"].values]
    if doses.scenarios is not None:
        unknown = [name for name in doses.scenarios if name not in names]
        for name in unknown:
            issues.add(label, None, "doses.scenarios", f"scenario {name!r} not in {names}")
        issues.raise_if_any()
        chosen = exposure.sel(scenario=list(doses.scenarios))
    else:
        chosen = exposure
        if doses.cavity is not None:
            keep = chosen["cavity"].astype(str).values == doses.cavity
            if not keep.any():
                cavities = sorted(set(chosen["cavity"].astype(str).values))
                issues.add(label, None, "doses.cavity", f"{doses.cavity!r} not in {cavities}")
                issues.raise_if_any()
            chosen = chosen.isel(scenario=np.flatnonzero(keep))
        chosen = chosen.sortby(doses.metric)
    dose = chosen[doses.metric].values.astype(float)
    if doses.metric not in DOSE_METRICS or not np.all(np.isfinite(dose)) or np.any(dose <= 0):
        issues.add(
            label, None, "doses.metric", f"{doses.metric} must be positive for every dose level"
        )
    elif np.any(np.diff(dose) <= 0):
        issues.add(label, None, "doses.scenarios", f"dose levels must increase: {dose.tolist()}")
    issues.raise_if_any()
    return chosen.assign_coords(dose=("scenario", dose))


def _transform(values: np.ndarray, link: LinkConfig) -> np.ndarray:
    """Return ``g(exposure) - g(reference)`` for the link's transform."""
    if link.transform == "log":
        with np.errstate(divide="ignore"):
            return np.log(values) - np.log(link.reference)
    clipped = np.clip(values, LOGIT_CLIP, 1 - LOGIT_CLIP)
    return logit(clipped) - logit(link.reference)


@dataclass(frozen=True)
class TruthModel:
    """Everything a worker needs to draw trial truths: transformed exposures and link priors.

    Attributes
    ----------
    dlt_covariate, response_covariate : ndarray, shape (draw, dose, patient)
        ``g(exposure) - g(reference)`` of the toxicity and response links.
    toxicity, response : LinkConfig
        The links (priors of intercept and slope).
    dose_values : ndarray
        Dose metric per level; ``dose_names`` the scenario names.
    n_stream : int
        Patients pre-generated per dose level (the largest design sample size).
    n_expansion : int
        Expansion-cohort patients pre-generated per dose level (0: no expansion).

    """

    dlt_covariate: np.ndarray
    response_covariate: np.ndarray
    toxicity: LinkConfig
    response: LinkConfig
    dose_values: np.ndarray
    dose_names: tuple[str, ...]
    n_stream: int
    n_expansion: int

    @property
    def n_doses(self) -> int:
        """Return the number of dose levels."""
        return len(self.dose_values)

    @classmethod
    def from_exposure(cls, chosen: xr.Dataset, config: TrialDesignConfig) -> TruthModel:
        """Build the model from the dose-level exposures and the design file."""

        def covariate(link: LinkConfig) -> np.ndarray:
            values = chosen[link.exposure].transpose(*EXPOSURE_DIMS).values
            return _transform(values.astype(np.float64), link).astype(np.float32)

        return cls(
            dlt_covariate=covariate(config.toxicity),
            response_covariate=covariate(config.response),
            toxicity=config.toxicity,
            response=config.response,
            dose_values=chosen["dose"].values.astype(float),
            dose_names=tuple(str(name) for name in chosen["scenario"].values),
            n_stream=config.max_patients,
            n_expansion=config.expansion.n_patients if config.expansion else 0,
        )


@dataclass(frozen=True)
class TrialTruth:
    """One simulated trial's truth and its pre-generated patient outcomes.

    Attributes
    ----------
    draw : int
        Translational posterior draw used.
    link_parameters : ndarray, shape (4,)
        DLT intercept, DLT slope, response intercept, response slope.
    true_dlt, true_response : ndarray, shape (dose,)
        Population probability of a DLT / a response per dose level.
    dlt, response : ndarray of bool, shape (dose, n_stream)
        Outcome of the j-th patient treated at each dose level.
    expansion_dlt, expansion_response : ndarray of bool, shape (dose, n_expansion)
        Outcomes of an expansion cohort at each dose level.
    dlt_cumulative, response_cumulative : ndarray of int, shape (dose, n_stream + 1)
        Running counts (derived): events among the first j patients at each level.

    """

    draw: int
    link_parameters: np.ndarray
    true_dlt: np.ndarray
    true_response: np.ndarray
    dlt: np.ndarray
    response: np.ndarray
    expansion_dlt: np.ndarray
    expansion_response: np.ndarray
    dlt_cumulative: np.ndarray = field(init=False, repr=False)
    response_cumulative: np.ndarray = field(init=False, repr=False)

    def __post_init__(self) -> None:
        for name in ("dlt", "response"):
            counts = np.zeros((self.dlt.shape[0], self.dlt.shape[1] + 1), dtype=np.int64)
            np.cumsum(getattr(self, name), axis=1, out=counts[:, 1:])
            object.__setattr__(self, f"{name}_cumulative", counts)


def trial_seed(seed: int, trial: int) -> np.random.SeedSequence:
    """Return trial ``trial``'s seed sequence: the ``trial``-th child of ``SeedSequence(seed)``.

    Identical to ``SeedSequence(seed).spawn(n)[trial]`` without creating the other children,
    so it does not depend on batching or workers.
    """
    return np.random.SeedSequence(seed, spawn_key=(trial,))


def trial_generator(seed: int, trial: int) -> np.random.Generator:
    """Return trial ``trial``'s random generator (PCG64)."""
    return np.random.Generator(np.random.PCG64(trial_seed(seed, trial)))


def _draw_link(link: LinkConfig, rng: np.random.Generator) -> tuple[float, float]:
    intercept = rng.normal(link.logit_at_reference.mean, link.logit_at_reference.sd)
    slope = link.slope.median * np.exp(rng.normal(0.0, link.slope.log_sd))
    return float(intercept), float(slope)


def draw_probabilities(
    model: TruthModel, rng: np.random.Generator
) -> tuple[int, np.ndarray, np.ndarray, np.ndarray]:
    """Draw a posterior draw and link parameters; return per-patient probabilities.

    Returns
    -------
    draw : int
    link_parameters : ndarray, shape (4,)
    p_dlt, p_response : ndarray, shape (dose, patient)

    """
    draw = int(rng.integers(model.dlt_covariate.shape[0]))
    dlt_intercept, dlt_slope = _draw_link(model.toxicity, rng)
    response_intercept, response_slope = _draw_link(model.response, rng)
    p_dlt = expit(dlt_intercept + dlt_slope * model.dlt_covariate[draw].astype(np.float64))
    p_response = expit(
        response_intercept + response_slope * model.response_covariate[draw].astype(np.float64)
    )
    parameters = np.array([dlt_intercept, dlt_slope, response_intercept, response_slope])
    return draw, parameters, p_dlt, p_response


def patient_outcomes(
    p_dlt: np.ndarray, p_response: np.ndarray, n_patients: int, rng: np.random.Generator
) -> tuple[np.ndarray, np.ndarray]:
    """Draw ``n_patients`` per dose level from the patient axis; return DLT and response flags.

    Parameters
    ----------
    p_dlt, p_response : ndarray, shape (dose, patient)
        Per-patient probabilities (a fixed rate per dose: shape ``(dose, 1)``).
    n_patients : int
        Patients per dose level.
    rng : numpy.random.Generator

    Returns
    -------
    dlt, response : ndarray of bool, shape (dose, n_patients)

    """
    n_doses, n_virtual = p_dlt.shape
    patient = rng.integers(n_virtual, size=(n_doses, n_patients))
    uniforms = rng.random((2, n_doses, n_patients))
    rows = np.arange(n_doses)[:, None]
    dlt = uniforms[0] < p_dlt[rows, patient]
    response = uniforms[1] < p_response[rows, patient]
    return dlt, response


def draw_truth(model: TruthModel, seed: int, trial: int) -> TrialTruth:
    """Draw the truth and patient streams of trial ``trial`` (a pure function of its inputs).

    One generator per trial, consumed in a fixed order: posterior draw and link parameters,
    then the escalation patients (``n_stream`` per level), then the expansion patients.
    """
    rng = trial_generator(seed, trial)
    draw, parameters, p_dlt, p_response = draw_probabilities(model, rng)
    dlt, response = patient_outcomes(p_dlt, p_response, model.n_stream, rng)
    expansion_dlt, expansion_response = patient_outcomes(p_dlt, p_response, model.n_expansion, rng)
    return TrialTruth(
        draw=draw,
        link_parameters=parameters,
        true_dlt=p_dlt.mean(axis=1),
        true_response=p_response.mean(axis=1),
        dlt=dlt,
        response=response,
        expansion_dlt=expansion_dlt,
        expansion_response=expansion_response,
    )


def fixed_truth(
    true_dlt: np.ndarray,
    n_patients: int,
    seed: int,
    trial: int,
    true_response: np.ndarray | None = None,
) -> TrialTruth:
    """Return a truth with fixed per-dose rates and no patient variability (for checks)."""
    true_dlt = np.asarray(true_dlt, dtype=float)
    true_response = np.zeros_like(true_dlt) if true_response is None else true_response
    dlt, response = patient_outcomes(
        true_dlt[:, None],
        np.asarray(true_response, dtype=float)[:, None],
        n_patients,
        trial_generator(seed, trial),
    )
    empty = np.zeros((len(true_dlt), 0), dtype=bool)
    return TrialTruth(
        draw=-1,
        link_parameters=np.full(4, np.nan),
        true_dlt=true_dlt,
        true_response=np.asarray(true_response, dtype=float),
        dlt=dlt,
        response=response,
        expansion_dlt=empty,
        expansion_response=empty,
    )
