"""The CF-IL2 model of IL-2 cytokine factories (DESIGN section 4), built as a :class:`ModelSpec`.

States per mouse: immune effect ``effect`` (fraction of maximal kill), anti-PD-1 exposure ``pd1``
(in standard doses), free log tumour burden ``free_log_burden`` and cumulative extinction hazard
``extinction_hazard``. Local and systemic IL-2 are closed-form functions of time
(:mod:`bayes.models.pk`) that drive the effect through a Hill function
(:mod:`bayes.models.immune`); the tumour grows by the chosen law, is killed at
``kill_rate * effect * (1 + pd1_enhancement * pd1)`` and dies out below the extinction threshold
(:mod:`bayes.models.tumour`). By default the states are computed by the exact cascade solution
(:mod:`bayes.models.cf_il2_solution`); ``solver = "ode"`` integrates the same right-hand side with
the Dormand-Prince engine instead (slower; kept as a cross-check).

Data conventions: tumour burden analyte (``tumour_volume`` in mm^3 or ``bioluminescence`` in p/s)
is modelled on the log scale in the data's unit; IL-2 analytes ``il2_local`` (cavity fluid) and
``il2_serum`` in ng/mL; events ``capsule_implant`` (amount = measured capsule output, ug/day) and
``antibody_dose`` (anti-PD-1, ug; one standard dose = ``antibody_standard_dose_ug``).
"""

from __future__ import annotations

from typing import Literal

import numpy as np
from pydantic import BaseModel, ConfigDict, Field

from bayes.data import Study
from bayes.models.cf_il2_solution import cascade_solution
from bayes.models.design import first_log_observation, study_log_reference
from bayes.models.immune import effect_derivative, hill_stimulus, pd1_factor
from bayes.models.observation import ErrorModel
from bayes.models.pk import PK_PARAMETERS, il2_concentrations, log_exposure_shift
from bayes.models.release import RELEASE_PARAMETERS, ReleaseShape
from bayes.models.spec import DoseRoute, IdentifiedScale, ModelSpec, Observable
from bayes.models.tumour import (
    GROWTH_PARAMETERS,
    GrowthLaw,
    extinction_hazard,
    growth_rate_at,
    observed_log_burden,
)
from bayes.ode import Dopri5, ODESystem

STATES = ("effect", "pd1", "free_log_burden", "extinction_hazard")
IMMUNE_PARAMETERS = ("ec50", "hill", "k_effect", "kill_rate", "pd1_enhancement", "k_pd1")
BURDEN_REFERENCE = "study_log_burden_reference"
"""One log burden for the whole study (``burden_reference`` or the median first observation) that
growth, extinction and the initial-burden prior are relative to."""
FIRST_OBSERVATION = "first_log_burden_observation"
"""Each subject's first observed log burden (available to user prior sets; the shipped ones use
:data:`BURDEN_REFERENCE`: a per-subject first image both centring the initial burden and
being fitted is data used twice, see ``datasets/cohorts/reference/recovery.md``)."""


class CFIL2Config(BaseModel):
    """Variant choices of the CF-IL2 model.

    Parameters
    ----------
    growth : {"gompertz", "logistic", "exponential"}
        Tumour growth law.
    release : {"exponential", "biphasic"}
        Capsule release shape.
    burden_error : {"student_t", "normal"}
        Residual distribution of log burden.
    burden_analyte, il2_local_analyte, il2_serum_analyte : str
        Analyte names in the data.
    implant_kind, antibody_kind : str
        Event kinds in the data.
    antibody_standard_dose_ug : float
        Anti-PD-1 amount that counts as one unit of exposure (200 ug i.p., the usual 10 mg/kg in
        a 20 g mouse).
    burden_reference : float, optional
        Burden (data units) that growth, the extinction threshold and the initial-burden prior
        are relative to, the same for every subject (e.g. a design's nominal day-0 burden);
        default the median over subjects of the first observed burden.
    solver : {"cascade", "ode"}
        ``cascade``: the exact solution on a time grid (fast; default); ``ode``: the
        Dormand-Prince engine on the same right-hand side.
    grid_step : float
        Largest step (day) of the cascade's time grid.
    rtol, atol : float
        Tolerances of the Dormand-Prince solver (``solver = "ode"``).
    """

    model_config = ConfigDict(extra="forbid", frozen=True)

    growth: GrowthLaw = "gompertz"
    release: ReleaseShape = "exponential"
    burden_error: Literal["student_t", "normal"] = "student_t"
    burden_analyte: str = "tumour_volume"
    il2_local_analyte: str = "il2_local"
    il2_serum_analyte: str = "il2_serum"
    implant_kind: str = "capsule_implant"
    antibody_kind: str = "antibody_dose"
    antibody_standard_dose_ug: float = 200.0
    burden_reference: float | None = Field(default=None, gt=0)
    solver: Literal["cascade", "ode"] = "cascade"
    grid_step: float = Field(default=0.5, gt=0, le=1.0)
    rtol: float = 1e-6
    atol: float = 1e-8

    def parameters(self) -> tuple[str, ...]:
        """Structural parameters of this variant, in ODE order."""
        names = (
            *RELEASE_PARAMETERS[self.release],
            *PK_PARAMETERS,
            *IMMUNE_PARAMETERS,
            *GROWTH_PARAMETERS[self.growth],
            "extinction_log_burden",
            "log_burden0",
        )
        return tuple(dict.fromkeys(names))


def implant_table(study: Study, kind: str) -> tuple[np.ndarray, np.ndarray]:
    """Return per-subject implant times and outputs, shape ``(subject, n_implant)``, zero-padded.

    Raises
    ------
    ValueError
        If an implant has a non-rate unit (capsule output must be in ug/day).
    """
    events = study.events[study.events["kind"] == kind]
    bad = events[events["unit"] != "ug/day"]
    if not bad.empty:
        row = bad.iloc[0]
        raise ValueError(
            f"{row['source_file']}:{row['source_row']}:unit: {kind} amount must be a capsule "
            f"output rate (ug/day), got {row['unit']!r}"
        )
    subjects = study.subjects
    per_subject = [events[events["subject"] == s] for s in subjects]
    width = max([1, *(len(e) for e in per_subject)])
    times = np.zeros((len(subjects), width))
    outputs = np.zeros((len(subjects), width))
    for i, table in enumerate(per_subject):
        times[i, : len(table)] = table["time"].to_numpy()
        outputs[i, : len(table)] = table["amount"].to_numpy()
    return times, outputs


def cf_il2_spec(study: Study, config: CFIL2Config | None = None) -> ModelSpec:
    """Build the CF-IL2 model for ``study``.

    Parameters
    ----------
    study : Study
        Mouse data with a burden analyte, optionally IL-2 analytes, implant and antibody events.
    config : CFIL2Config, optional
        Variant choices; defaults to Gompertz growth, exponential release, Student-t error.

    Returns
    -------
    ModelSpec
    """
    config = config or CFIL2Config()
    times, outputs = implant_table(study, config.implant_kind)
    analytes = set(study.observations["analyte"])
    if config.burden_analyte not in analytes:
        raise ValueError(
            f"the data have no {config.burden_analyte!r} observations "
            f"(analytes: {sorted(analytes)})"
        )
    reference = study_log_reference(study, config.burden_analyte, config.burden_reference)
    system = ODESystem(
        states=STATES, parameters=config.parameters(), rhs=_rhs(config, times, outputs, reference)
    )
    return ModelSpec(
        name=f"cf_il2[{config.growth},{config.release},{config.burden_error}]",
        system=system,
        observables=_observables(config, analytes),
        doses={
            config.antibody_kind: DoseRoute(
                "pd1", amount_factor=1 / config.antibody_standard_dose_ug
            )
        },
        initial_state={"free_log_burden": "log_burden0"},
        references={
            BURDEN_REFERENCE: reference,
            FIRST_OBSERVATION: first_log_observation(study, config.burden_analyte),
        },
        subject_data={"implant_times": times, "implant_outputs": outputs},
        external_events=(config.implant_kind,),
        method=Dopri5(rtol=config.rtol, atol=config.atol),
        solution=None if config.solver == "ode" else _cascade(config, times, outputs, reference),
        identified={"rho": LOCAL_EXPOSURE},
    )


LOCAL_EXPOSURE = IdentifiedScale("local_exposure", log_exposure_shift, "ng/mL per ug/day")
"""``rho`` is sampled through the steady-state cavity IL-2 per ug/day of measured output,
``1000 rho f / CL_a``, which the IL-2 data identify (:func:`bayes.models.pk.log_exposure_shift`)."""


def _cascade(config: CFIL2Config, times: np.ndarray, outputs: np.ndarray, reference: np.ndarray):
    return cascade_solution(
        config.growth,
        config.release,
        times,
        outputs,
        reference,
        antibody_kind=config.antibody_kind,
        antibody_unit_ug=config.antibody_standard_dose_ug,
        grid_step=config.grid_step,
    )


def _rhs(config: CFIL2Config, times: np.ndarray, outputs: np.ndarray, reference: np.ndarray):
    def rhs(t, y, p):
        c_local, _ = il2_concentrations(t, times, outputs, p, config.release)
        stimulus = hill_stimulus(c_local, p["ec50"], p["hill"])
        kill = p["kill_rate"] * y["effect"] * pd1_factor(y["pd1"], p["pd1_enhancement"])
        free = y["free_log_burden"]
        return {
            "effect": effect_derivative(y["effect"], stimulus, p["k_effect"]),
            "pd1": -p["k_pd1"] * y["pd1"],
            "free_log_burden": growth_rate_at(config.growth, free, reference, p) - kill,
            "extinction_hazard": extinction_hazard(free, p["extinction_log_burden"]),
        }

    return rhs


def _observables(config: CFIL2Config, analytes: set[str]) -> dict[str, Observable]:
    family = config.burden_error
    burden_error = ErrorModel(
        family=family, sigma="sigma_burden", nu="nu_burden" if family == "student_t" else None
    )
    observables = {
        config.burden_analyte: Observable(
            predict=_log_burden, error=burden_error, log_prediction=True
        )
    }
    il2_error = ErrorModel(sigma="sigma_il2")
    for analyte, index in ((config.il2_local_analyte, 0), (config.il2_serum_analyte, 1)):
        if analyte in analytes:
            observables[analyte] = Observable(
                predict=_il2_predictor(config.release, index), error=il2_error
            )
    return observables


def _log_burden(t, y, p):
    return observed_log_burden(
        y["free_log_burden"], y["extinction_hazard"], p["extinction_log_burden"]
    )


def _il2_predictor(release: ReleaseShape, index: int):
    def predict(t, y, p):
        concentrations = il2_concentrations(t, p["implant_times"], p["implant_outputs"], p, release)
        return concentrations[index]

    return predict
