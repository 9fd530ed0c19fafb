"""Generic tumour growth inhibition (TGI) models for xenograft studies, as :class:`ModelSpec`.

Both work in log burden ``y = ln V`` with the growth laws of :mod:`bayes.models.tumour`
(exponential, Gompertz, logistic; relative to each subject's first observation):

- :func:`growth_treatment_spec` -- ``dy/dt = growth(y) - treatment_effect * treated_i * u(t)``:
  a reduction of the net log growth rate in treated animals (for efficacy studies without dosing
  records, e.g. INSPECTumours). Which animals are treated is a 0/1 covariate; differences between
  drugs enter as covariate effects on ``treatment_effect``. By default ``u(t) = 1`` from the first
  observation on; optionally the effect starts at an estimated ``treatment_onset`` and fades with
  acquired resistance, ``u(t) = exp(-resistance_rate (t - treatment_onset))`` after onset (the
  resistance term of Claret et al., J Clin Oncol 2009;27:4103). For exponential and Gompertz
  growth the equation is linear in ``y`` and is solved in closed form
  (:func:`closed_form_log_burden`, exact, no ODE steps); logistic growth is integrated.
- :func:`pk_tgi_spec` -- a one-compartment oral PK model (first-order absorption and
  elimination, closed form for every dose) whose plasma concentration, averaged over each day,
  drives a linear kill term,
  ``dy/dt = growth(y) - drug_potency * C(t)`` (the Simeoni 2004 potency ``k2`` without the
  transit compartments) or, with ``kill="emax"``, a saturable sigmoid kill
  ``drug_kmax * C^h / (drug_ec50^h + C^h)``, fitted jointly to plasma concentrations and tumour
  volumes (e.g. Eigenmann 2016 erlotinib). With exponential growth the log burden is a closed
  form too (:func:`daily_kill_log_burden`).

Both closed forms put a constant placeholder state in the ODE system (the framework's solver
then takes one exact step per observation interval) and compute predictions in the observable.
"""

from __future__ import annotations

from typing import Literal

import numpy as np
import pytensor.tensor as pt

from bayes.data import Study
from bayes.models.design import first_log_observation, study_log_reference
from bayes.models.observation import ErrorModel
from bayes.models.spec import ModelSpec, Observable
from bayes.models.tumour import GROWTH_PARAMETERS, GrowthLaw, growth_rate_at
from bayes.ode import RK4, Dopri5, ODESystem
from bayes.ode.linear import exp_divided_difference_1, exp_divided_difference_2, exprel_neg

BURDEN_REFERENCE = "first_log_burden_observation"
STUDY_REFERENCE = "study_log_burden_reference"
"""The median first observed log burden, one value for the whole study; a prior set can centre
``log_burden0`` on it instead of on each animal's first observation (which is also fitted)."""
KILL_PARAMETERS = {"linear": ("drug_potency",), "emax": ("drug_kmax", "drug_ec50", "drug_hill")}
_KILL_NAMES = {name for names in KILL_PARAMETERS.values() for name in names}
_DAILY_NAMES = _KILL_NAMES | {"ka", "cl", "v", "dose_times", "dose_amounts"}
_TINY_CONCENTRATION = 1e-12  # ng/mL: keeps log(C) finite before the first dose
ONSET_WIDTH_DAYS = 0.25
"""Width of the smooth step that switches a treatment effect on (logistic scale, days): the
effect goes from 12% to 88% of its size within one day around ``treatment_onset``, a smooth
stand-in for a dosing start that NUTS can differentiate."""


def _burden_observable(burden_error: str, predict=None) -> Observable:
    error = ErrorModel(
        family=burden_error,
        sigma="sigma_burden",
        nu="nu_burden" if burden_error == "student_t" else None,
    )
    predict = predict or (lambda t, y, p: y["log_burden"])
    return Observable(predict=predict, error=error, log_prediction=True)


def _covariate(study: Study, name: str) -> np.ndarray:
    if name not in study.covariates.columns:
        known = [c for c in study.covariates.columns if c != "subject"]
        raise ValueError(f"covariate {name!r} is not in the data (covariates: {known})")
    values = study.covariates.set_index("subject")[name].reindex(study.subjects)
    return values.to_numpy(dtype=float)


def treatment_course(t: pt.TensorVariable, p, onset: bool, resistance: bool) -> pt.TensorVariable:
    """Return the relative size ``u(t)`` of a treatment effect at times ``t``.

    1 throughout without ``onset``; with ``onset``, a smooth step at ``p["treatment_onset"]``
    (width :data:`ONSET_WIDTH_DAYS`); with ``resistance`` also times
    ``exp(-p["resistance_rate"] * max(t - treatment_onset, 0))``.
    """
    if not onset:
        return pt.ones_like(t)
    since_onset = t - p["treatment_onset"]
    course = pt.sigmoid(since_onset / ONSET_WIDTH_DAYS)
    if resistance:
        course = course * pt.exp(-p["resistance_rate"] * pt.maximum(since_onset, 0.0))
    return course


def kill_rate_at(kill: str, concentration: pt.TensorVariable, p) -> pt.TensorVariable:
    """Return the drug's kill rate (1/day) at a plasma concentration (ng/mL)."""
    if kill == "linear":
        return p["drug_potency"] * concentration
    log_concentration = pt.log(pt.maximum(concentration, 0.0) + _TINY_CONCENTRATION)
    # C^h / (EC50^h + C^h) written as a logistic function of log C: no overflow at high C
    return p["drug_kmax"] * pt.sigmoid(
        p["drug_hill"] * (log_concentration - pt.log(p["drug_ec50"]))
    )


def growth_treatment_spec(
    study: Study,
    growth: GrowthLaw = "exponential",
    treated_covariate: str = "treated",
    burden_analyte: str = "tumour_volume",
    burden_error: Literal["normal", "student_t"] = "normal",
    treatment_onset: bool = False,
    resistance: bool = False,
    growth_reference: float | None = None,
) -> ModelSpec:
    """Tumour growth with a treatment effect on the log growth rate.

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
    treatment_onset : bool
        Estimate the day the effect starts (parameter ``treatment_onset``, same time axis as the
        data) instead of assuming it acts from each animal's first observation. A step in the
        closed form; a smooth step of width :data:`ONSET_WIDTH_DAYS` for logistic growth.
    resistance : bool
        Let the effect fade after onset at ``resistance_rate`` (needs ``treatment_onset``).
    growth_reference : float, optional
        Burden (data units) at which a Gompertz or logistic ``growth_rate`` is defined, the same
        for every animal (e.g. the detection limit); default each animal's first observation.
    """
    if resistance and not treatment_onset:
        raise ValueError("resistance=True needs treatment_onset=True (resistance runs from onset)")
    treated = _covariate(study, treated_covariate)
    reference = first_log_observation(study, burden_analyte)
    growth_at = reference if growth_reference is None else _log_reference(growth_reference, study)
    parameters = (*GROWTH_PARAMETERS[growth], "treatment_effect")
    parameters += ("treatment_onset",) * treatment_onset + ("resistance_rate",) * resistance
    parameters += ("log_burden0",)
    variant = ",onset" * treatment_onset + ",resistance" * resistance
    common = {
        "name": f"growth_treatment[{growth},{burden_error}{variant}]",
        "references": {
            BURDEN_REFERENCE: reference,
            STUDY_REFERENCE: study_log_reference(study, burden_analyte),
        },
    }
    if growth == "logistic":  # no closed form: integrate, with a smooth onset step
        growth_tensor, treated_tensor = (
            pt.as_tensor_variable(growth_at),
            pt.as_tensor_variable(treated),
        )

        def rhs(t, y, p):
            rate = growth_rate_at(growth, y["log_burden"], growth_tensor, p)
            course = treatment_course(t, p, treatment_onset, resistance)
            return {"log_burden": rate - p["treatment_effect"] * treated_tensor * course}

        return ModelSpec(
            system=ODESystem(states=("log_burden",), parameters=parameters, rhs=rhs),
            observables={burden_analyte: _burden_observable(burden_error)},
            initial_state={"log_burden": "log_burden0"},
            method=Dopri5(rtol=1e-5, atol=1e-7),
            **common,
        )
    first_time = _first_times(study, burden_analyte)

    def predict(t, y, p):
        return closed_form_log_burden(t, p, growth, treatment_onset, resistance)

    return ModelSpec(
        system=ODESystem(states=("log_burden_start",), parameters=("log_burden0",), rhs=_constant),
        observables={burden_analyte: _burden_observable(burden_error, predict)},
        initial_state={"log_burden_start": "log_burden0"},
        extra_parameters=parameters,
        subject_data={"treated": treated, "first_time": first_time, "growth_reference": growth_at},
        method=RK4(step=1e6),  # the state is constant: one exact step between observations
        **common,
    )


def _constant(t, y, p):
    return {"log_burden_start": pt.zeros_like(t)}


def _first_times(study: Study, analyte: str, fill: float = np.nan) -> np.ndarray:
    rows = study.observations[study.observations["analyte"] == analyte]
    first = rows.groupby("subject")["time"].min().reindex(study.subjects)
    return first.fillna(fill).to_numpy(dtype=float)


def closed_form_log_burden(t, p, growth: str, onset: bool, resistance: bool):
    """Return log burden at times ``t`` for exponential or Gompertz growth with treatment.

    ``dy/dt = a - b (y - y_ref) - E treated u(t)`` (``b = 0``: exponential) from
    ``y(t0) = log_burden0`` is linear in ``y``; with ``tau = t - t0``::

        y(t) = y0 + (a - b (y0 - y_ref)) tau E1(b tau)
               - E treated exp(-lambda (s0 - onset)) phi(lambda, b, t - s0)

    where ``E1(z) = (1 - exp(-z)) / z``, ``s0 = max(t0, onset)``, ``phi(p, q, x) = (exp(-p x) -
    exp(-q x)) / (q - p)`` (:func:`bayes.ode.linear.exp_divided_difference_1`, exact when
    ``p == q``), and ``u(t)`` is a step at ``onset`` (``t0`` without onset) times
    ``exp(-lambda (t - onset))`` (``lambda = 0`` without resistance).

    Parameters
    ----------
    t : TensorVariable, shape (n,)
        Observation times (day).
    p : mapping
        Per-row parameters and subject data (``first_time``, ``treated``, ``growth_reference``).
    growth : {"exponential", "gompertz"}
    onset, resistance : bool
        As in :func:`growth_treatment_spec`.
    """
    y0, t0 = p["log_burden0"], p["first_time"]
    decay = p["gompertz_beta"] if growth == "gompertz" else pt.zeros_like(t)
    tau = pt.maximum(t - t0, 0.0)
    untreated = y0 + (p["growth_rate"] - decay * (y0 - p["growth_reference"])) * tau * (
        exprel_neg(decay * tau)
    )
    start = pt.maximum(t0, p["treatment_onset"]) if onset else t0
    fade = p["resistance_rate"] if resistance else pt.zeros_like(t)
    faded = pt.exp(-fade * (start - p["treatment_onset"])) if resistance else 1.0
    exposure = faded * exp_divided_difference_1(fade, decay, pt.maximum(t - start, 0.0))
    return untreated - p["treatment_effect"] * p["treated"] * exposure


def _log_reference(burden: float, study: Study) -> np.ndarray:
    if not burden > 0:
        raise ValueError(f"growth_reference must be a positive burden, got {burden!r}")
    return np.full(len(study.subjects), np.log(burden))


def pk_tgi_spec(
    study: Study,
    growth: GrowthLaw = "exponential",
    dose_kind: str = "dose",
    concentration_analyte: str = "plasma_concentration",
    burden_analyte: str = "tumour_volume",
    burden_error: Literal["normal", "student_t"] = "normal",
    concentration_scale: float = 1.0,
    kill: Literal["linear", "emax"] = "linear",
) -> ModelSpec:
    """One-compartment oral PK driving a kill term on log tumour burden (exponential growth).

    ``y(t) = log_burden0 + growth_rate (t - t0) - sum over days of kill(daily average C)``
    (:func:`daily_kill_log_burden`); plasma concentrations are the exact closed form
    (:func:`oral_concentration`).

    Parameters
    ----------
    study : Study
        Plasma concentrations (ng/mL), tumour burden, and oral ``dose_kind`` events (ug).
    growth : {"exponential"}
        Growth law (only exponential has the closed form used here).
    dose_kind : str
        Event kind of the oral doses.
    concentration_analyte, burden_analyte : str
        Analyte names in the data.
    burden_error : {"normal", "student_t"}
        Residual distribution of log burden.
    concentration_scale : float
        Factor from the model concentration (ug/L = ng/mL) to the data's concentration values;
        1 when the data's unit is right, 0.001 when values labelled ng/mL are in ug/mL.
    kill : {"linear", "emax"}
        Kill rate linear in concentration (``drug_potency``) or a sigmoid Emax function
        (``drug_kmax``, ``drug_ec50`` in ng/mL, ``drug_hill``).
    """
    if concentration_scale <= 0:
        raise ValueError("concentration_scale must be positive")
    if kill not in KILL_PARAMETERS:
        raise ValueError(f"unknown kill {kill!r}; choose from {sorted(KILL_PARAMETERS)}")
    if growth != "exponential":
        raise ValueError("pk_tgi_spec solves exponential growth in closed form only")
    reference = first_log_observation(study, burden_analyte)
    parameters = ("ka", "cl", "v", "growth_rate", *KILL_PARAMETERS[kill], "log_burden0")
    dose_times, dose_amounts = dose_table(study, dose_kind)
    n_days = int(np.ceil(study.observations["time"].max())) + 1

    def predict_burden(t, y, p):
        return daily_kill_log_burden(t, p, kill, n_days)

    def predict_concentration(t, y, p):
        concentration = oral_concentration(t, p["dose_times"], p["dose_amounts"], p)
        return concentration * concentration_scale

    analytes = set(study.observations["analyte"])
    observables = {burden_analyte: _burden_observable(burden_error, predict_burden)}
    if concentration_analyte in analytes:
        observables[concentration_analyte] = Observable(
            predict=predict_concentration, error=ErrorModel(sigma="sigma_concentration")
        )
    return ModelSpec(
        name=f"pk_tgi[{growth},{burden_error}{',emax' * (kill == 'emax')}]",
        system=ODESystem(states=("log_burden_start",), parameters=("log_burden0",), rhs=_constant),
        observables=observables,
        initial_state={"log_burden_start": "log_burden0"},
        extra_parameters=parameters,
        references={
            BURDEN_REFERENCE: reference,
            STUDY_REFERENCE: study_log_reference(study, burden_analyte),
        },
        subject_data={
            "dose_times": dose_times,
            "dose_amounts": dose_amounts,
            "first_time": _first_times(study, burden_analyte, fill=0.0),
            "subject_index": np.arange(len(study.subjects)),
        },
        external_events=(dose_kind,),
        method=RK4(step=1e6),  # the state is constant: one exact step between observations
    )


def daily_auc(n_days: int, p) -> pt.TensorVariable:
    """Return each row's plasma AUC (ng/mL x day) over days ``[k, k + 1)``, ``k < n_days``.

    ``AUC = sum_d A_d ka (psi(k + 1 - t_d) - psi(k - t_d)) / V`` with ``psi(tau) = g[0, ke, ka]``
    (:func:`bayes.ode.linear.exp_divided_difference_2`), the integral of the closed-form
    one-compartment oral concentration of a unit dose from 0 to ``tau``; shape ``(n, n_days)``.
    """
    edges = pt.as_tensor_variable(np.arange(n_days + 1, dtype=float))
    tau = pt.maximum(edges[None, :, None] - p["dose_times"][:, None, :], 0.0)
    ka, ke = p["ka"][:, None, None], (p["cl"] / p["v"])[:, None, None]
    integral = exp_divided_difference_2(pt.zeros_like(ka), ke, ka, tau)
    cumulative = pt.sum(p["dose_amounts"][:, None, :] * ka * integral, axis=2) / p["v"][:, None]
    return cumulative[:, 1:] - cumulative[:, :-1]


def daily_kill_log_burden(t, p, kill: str, n_days: int) -> pt.TensorVariable:
    """Return log burden at ``t`` for exponential growth and a kill set by each day's exposure.

    ``y(t) = y0 + growth_rate (t - t0) - sum_k kill(Cavg_k) |[k, k + 1) & [t0, t)|`` where
    ``Cavg_k`` is the average plasma concentration on day ``k`` (:func:`daily_auc`): the kill
    rate is constant within a day. For a linear kill this is exact (it integrates the AUC); for
    the Emax kill it ignores the within-day swing of the concentration (the usual
    daily-exposure simplification of TGI models), which keeps the model free of ODE steps.
    """
    first_row, row_of = _subject_rows(p)
    per_subject = {k: v[first_row] for k, v in p.items() if k in _DAILY_NAMES}
    average = daily_auc(n_days, per_subject)
    per_day = {k: v[:, None] for k, v in per_subject.items() if k in _KILL_NAMES}
    rate = kill_rate_at(kill, average, per_day)[row_of]  # computed once per subject
    starts = pt.as_tensor_variable(np.arange(n_days, dtype=float))[None, :]
    t0 = p["first_time"][:, None]
    overlap = pt.maximum(pt.minimum(starts + 1.0, t[:, None]) - pt.maximum(starts, t0), 0.0)
    growth = p["growth_rate"] * pt.maximum(t - p["first_time"], 0.0)
    return p["log_burden0"] + growth - pt.sum(rate * overlap, axis=1)


def _subject_rows(p):
    """Return the first row of each distinct subject and each row's position among them.

    Rows carry ``subject_index`` (per-subject data, a constant array); without it every row is
    treated as its own subject.
    """
    if "subject_index" not in p:
        return slice(None), slice(None)
    rows = np.asarray(p["subject_index"], dtype=int)
    _, first_row, row_of = np.unique(rows, return_index=True, return_inverse=True)
    return first_row, row_of


def dose_table(study: Study, kind: str) -> tuple[np.ndarray, np.ndarray]:
    """Return per-subject oral dose times (day) and amounts (ug), ``(subject, n_dose)``, 0-padded.

    Raises
    ------
    ValueError
        If a dose of ``kind`` has a duration (only bolus doses) or a unit other than ug, naming
        the source file and row.
    """
    events = study.events[study.events["kind"] == kind]
    bad_unit = events[events["unit"] != "ug"]
    timed = events[events["duration"].fillna(0.0) > 0]
    for bad, problem in ((bad_unit, "must be a mass in ug"), (timed, "must be a bolus")):
        if not bad.empty:
            row = bad.iloc[0]
            raise ValueError(
                f"{row['source_file']}:{row['source_row']}: {kind} event {problem} "
                f"(got amount unit {row['unit']!r}, duration {row['duration']!r})"
            )
    per_subject = [events[events["subject"] == s] for s in study.subjects]
    width = max([1, *(len(e) for e in per_subject)])
    times = np.zeros((len(study.subjects), width))
    amounts = np.zeros((len(study.subjects), width))
    for i, table in enumerate(per_subject):
        times[i, : len(table)] = table["time"].to_numpy()
        amounts[i, : len(table)] = table["amount"].to_numpy()
    return times, amounts


def oral_concentration(t, dose_times, dose_amounts, p) -> pt.TensorVariable:
    """Return the one-compartment oral plasma concentration (ng/mL) at times ``t``, closed form.

    ``C(t) = sum_d A_d ka (exp(-ke tau_d) - exp(-ka tau_d)) / ((ka - ke) V)`` with
    ``tau_d = max(t - t_d, 0)`` and ``ke = cl / v``, evaluated with the divided difference of
    :func:`bayes.ode.linear.exp_divided_difference_1` (exact also when ``ka == ke``).

    Parameters
    ----------
    t : TensorVariable, shape (n,)
        Times (day), one per row.
    dose_times, dose_amounts : array or TensorVariable, shape (n, n_dose)
        Each row's dose times (day) and amounts (ug; 0 for padding).
    p : mapping
        Per-row ``ka`` (1/day), ``cl`` (L/day) and ``v`` (L).
    """
    tau = pt.maximum(t[:, None] - dose_times, 0.0)
    ka, ke = p["ka"][:, None], (p["cl"] / p["v"])[:, None]
    amount = pt.sum(dose_amounts * ka * exp_divided_difference_1(ke, ka, tau), axis=1)
    return amount / p["v"]
