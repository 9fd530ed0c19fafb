"""Generic tumour growth inhibition (TGI) models for xenograft studies, as :class:`ModelSpec`.

Both work in log burden ``y = ln V`` with the growth laws of :mod:`bayes.models.tumour`
(exponential, Gompertz, logistic; relative to each subject's first observation):

- :func:`growth_treatment_spec` -- ``dy/dt = growth(y) - treatment_effect * treated_i``: a
  constant reduction of the net log growth rate in treated animals from the first observation on
  (for efficacy studies without dosing records, e.g. INSPECTumours). Which animals are treated is
  a 0/1 covariate; differences between drugs enter as covariate effects on ``treatment_effect``.
- :func:`pk_tgi_spec` -- a one-compartment oral PK model (``gut -> central``, first-order
  absorption and elimination) whose plasma concentration drives a linear kill term,
  ``dy/dt = growth(y) - drug_potency * C(t)`` (the Simeoni 2004 potency ``k2`` without the
  transit compartments), fitted jointly to plasma concentrations and tumour volumes (e.g.
  Eigenmann 2016 erlotinib).
"""

from __future__ import annotations

from typing import Literal

import numpy as np
import pytensor.tensor as pt

from bayes.data import Study
from bayes.models.design import first_log_observation
from bayes.models.observation import ErrorModel
from bayes.models.spec import DoseRoute, ModelSpec, Observable
from bayes.models.tumour import GROWTH_PARAMETERS, GrowthLaw, growth_rate_at
from bayes.ode import Dopri5, ODESystem

BURDEN_REFERENCE = "first_log_burden_observation"


def _burden_observable(burden_error: str) -> Observable:
    error = ErrorModel(
        family=burden_error,
        sigma="sigma_burden",
        nu="nu_burden" if burden_error == "student_t" else None,
    )
    return Observable(predict=lambda t, y, p: y["log_burden"], error=error, log_prediction=True)


def _covariate(study: Study, name: str) -> np.ndarray:
    if name not in study.covariates.columns:
        known = [c for c in study.covariates.columns if c != "subject"]
        raise ValueError(f"covariate {name!r} is not in the data (covariates: {known})")
    values = study.covariates.set_index("subject")[name].reindex(study.subjects)
    return values.to_numpy(dtype=float)


def growth_treatment_spec(
    study: Study,
    growth: GrowthLaw = "exponential",
    treated_covariate: str = "treated",
    burden_analyte: str = "tumour_volume",
    burden_error: Literal["normal", "student_t"] = "normal",
) -> ModelSpec:
    """Tumour growth with a constant treatment effect on the log growth rate.

    Parameters
    ----------
    study : Study
        Tumour burden observations; a numeric 0/1 covariate ``treated_covariate``.
    growth : {"exponential", "gompertz", "logistic"}
        Growth law.
    treated_covariate : str
        Covariate that is 1 for treated animals (a workflow's ``data.indicators`` makes one).
    burden_analyte : str
        Analyte name of the burden.
    burden_error : {"normal", "student_t"}
        Residual distribution of log burden.
    """
    treated = pt.as_tensor_variable(_covariate(study, treated_covariate))
    reference = first_log_observation(study, burden_analyte)
    reference_tensor = pt.as_tensor_variable(reference)
    parameters = (*GROWTH_PARAMETERS[growth], "treatment_effect", "log_burden0")

    def rhs(t, y, p):
        rate = growth_rate_at(growth, y["log_burden"], reference_tensor, p)
        return {"log_burden": rate - p["treatment_effect"] * treated}

    return ModelSpec(
        name=f"growth_treatment[{growth},{burden_error}]",
        system=ODESystem(states=("log_burden",), parameters=parameters, rhs=rhs),
        observables={burden_analyte: _burden_observable(burden_error)},
        initial_state={"log_burden": "log_burden0"},
        references={BURDEN_REFERENCE: reference},
        method=Dopri5(rtol=1e-5, atol=1e-7),
    )


def pk_tgi_spec(
    study: Study,
    growth: GrowthLaw = "exponential",
    dose_kind: str = "dose",
    concentration_analyte: str = "plasma_concentration",
    burden_analyte: str = "tumour_volume",
    burden_error: Literal["normal", "student_t"] = "normal",
    concentration_scale: float = 1.0,
) -> ModelSpec:
    """One-compartment oral PK driving a linear kill term on log tumour burden.

    Parameters
    ----------
    study : Study
        Plasma concentrations (ng/mL), tumour burden, and oral ``dose_kind`` events (ug).
    growth : {"exponential", "gompertz", "logistic"}
        Growth law.
    dose_kind : str
        Event kind of the oral doses.
    concentration_analyte, burden_analyte : str
        Analyte names in the data.
    burden_error : {"normal", "student_t"}
        Residual distribution of log burden.
    concentration_scale : float
        Factor from the model concentration (ug/L = ng/mL) to the data's concentration values;
        1 when the data's unit is right, 0.001 when values labelled ng/mL are in ug/mL.
    """
    if concentration_scale <= 0:
        raise ValueError("concentration_scale must be positive")
    reference = first_log_observation(study, burden_analyte)
    reference_tensor = pt.as_tensor_variable(reference)
    parameters = ("ka", "cl", "v", *GROWTH_PARAMETERS[growth], "drug_potency", "log_burden0")

    def rhs(t, y, p):
        concentration = y["central"] / p["v"]
        rate = growth_rate_at(growth, y["log_burden"], reference_tensor, p)
        return {
            "gut": -p["ka"] * y["gut"],
            "central": p["ka"] * y["gut"] - p["cl"] / p["v"] * y["central"],
            "log_burden": rate - p["drug_potency"] * concentration,
        }

    analytes = set(study.observations["analyte"])
    observables = {burden_analyte: _burden_observable(burden_error)}
    if concentration_analyte in analytes:
        observables[concentration_analyte] = Observable(
            predict=lambda t, y, p: y["central"] / p["v"] * concentration_scale,
            error=ErrorModel(sigma="sigma_concentration"),
        )
    return ModelSpec(
        name=f"pk_tgi[{growth},{burden_error}]",
        system=ODESystem(states=("gut", "central", "log_burden"), parameters=parameters, rhs=rhs),
        observables=observables,
        doses={dose_kind: DoseRoute("gut")},
        initial_state={"log_burden": "log_burden0"},
        references={BURDEN_REFERENCE: reference},
        method=Dopri5(rtol=1e-5, atol=1e-7),
    )
