"""Trial-design configuration: the TOML design file as validated, immutable pydantic objects.

A design file (see ``workflows/trial_design.toml``) has these tables::

    [simulation]   n_trials, seed, batch_size, retries
    [doses]        which translation scenarios are the dose levels, and the dose metric
    [evaluation]   target DLT rate, what counts as acceptably safe and as active
    [toxicity]     link: systemic exposure -> P(DLT), with uncertain parameters and sources
    [response]     link: local exposure -> P(response), likewise
    [[designs]]    one table per escalation design (rule = "3+3" | "boin" | "blrm-ewoc")
    [expansion]    optional expansion cohort at the selected dose (assurance)

Every problem is reported with the file and the dotted key (``bayes.data`` ``DataError``).
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator

EXPOSURE_VARIABLES = (
    "cmax_serum",
    "auc_serum",
    "cmax_local",
    "auc_local",
    "time_above_effective",
    "tumour_effect",
)
"""Variables of the translation contract's ``/exposure`` group that a link may use."""

DOSE_METRICS = ("capsules", "total_output_ug_per_day")


class _Frozen(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class NormalPrior(_Frozen):
    """Normal prior ``N(mean, sd)``; ``source`` says where the numbers come from."""

    mean: float
    sd: float = Field(ge=0)
    source: str = Field(min_length=1)


class LogNormalPrior(_Frozen):
    """Log-normal prior given by its ``median`` and the sd of its logarithm."""

    median: float = Field(gt=0)
    log_sd: float = Field(ge=0)
    source: str = Field(min_length=1)


class LinkConfig(_Frozen):
    """Logistic link from one exposure variable to a per-patient event probability.

    ``logit P = logit_at_reference + slope * (g(exposure) - g(reference))`` with ``g = log``
    (concentrations, AUCs, durations) or ``g = logit`` (fractions such as ``tumour_effect``).
    Each simulated trial draws its own intercept and slope from the priors.
    """

    exposure: Literal[EXPOSURE_VARIABLES]  # type: ignore[valid-type]
    transform: Literal["log", "logit"] = "log"
    reference: float = Field(gt=0)
    reference_units: str = Field(min_length=1)
    reference_source: str = Field(min_length=1)
    logit_at_reference: NormalPrior
    slope: LogNormalPrior

    @model_validator(mode="after")
    def _reference_in_range(self) -> LinkConfig:
        if self.transform == "logit" and not 0 < self.reference < 1:
            raise ValueError("with transform = 'logit' the reference must lie in (0, 1)")
        return self


class SimulationConfig(_Frozen):
    """How many trials, the master seed, and how they are batched into dask tasks."""

    n_trials: int = Field(default=2000, ge=1)
    seed: int = Field(default=0, ge=0)
    batch_size: int = Field(default=200, ge=1)
    retries: int = Field(default=3, ge=0)


class DoseConfig(_Frozen):
    """Which translation scenarios are the dose levels (ascending) and the dose metric.

    ``scenarios`` names them explicitly in escalation order; otherwise all scenarios (of
    ``cavity`` when given) are used, sorted by the dose metric.
    """

    scenarios: tuple[str, ...] | None = Field(default=None, min_length=1)
    cavity: str | None = None
    metric: Literal[DOSE_METRICS] = "capsules"  # type: ignore[valid-type]


class EvaluationConfig(_Frozen):
    """What the operating characteristics count as safe, the true MTD and active."""

    max_acceptable_dlt: float = Field(default=0.33, gt=0, lt=1)
    min_response: float = Field(default=0.2, gt=0, lt=1)
    source: str = Field(min_length=1)


class _DesignBase(_Frozen):
    name: str = Field(min_length=1)
    start_dose: int = Field(default=1, ge=1, description="1-based dose level")
    max_patients: int = Field(default=30, ge=3)


class ThreePlusThreeConfig(_DesignBase):
    """The traditional 3+3: cohorts of 3; 0/3 escalate, 1/3 add 3, <= 1/6 escalate.

    Two DLTs at a level make it too toxic; the MTD is the highest level below with at least
    six patients and at most one DLT (the level below is expanded to six when needed).
    """

    rule: Literal["3+3"]
    max_patients: int = Field(default=60, ge=3)


class BoinConfig(_DesignBase):
    """BOIN (Liu and Yuan 2015, J R Stat Soc C 64:507), as in the R package ``BOIN``."""

    rule: Literal["boin"]
    target: float = Field(default=0.3, gt=0, lt=1)
    cohort_size: int = Field(default=3, ge=1)
    p_saf_ratio: float = Field(default=0.6, gt=0, lt=1)
    p_tox_ratio: float = Field(default=1.4, gt=1)
    elimination_cutoff: float = Field(default=0.95, gt=0.5, lt=1)
    n_earlystop: int = Field(default=100, ge=1)


class BlrmConfig(_DesignBase):
    """Two-parameter BLRM with escalation with overdose control (Neuenschwander 2008).

    ``logit p(d) = log_alpha + exp(log_beta) * log(d / reference_dose)``, bivariate normal
    prior on ``(log_alpha, log_beta)``; ``reference_dose`` defaults to the median dose level
    (in the dose metric). ``prior = "weakly_informative"`` uses the
    ``weak_*`` numbers; ``prior = "translational"`` fits the model to the dose-toxicity
    curves implied by the translational posterior and the toxicity link and inflates the
    covariance by ``translational_variance_inflation``.

    After each cohort the next dose maximises the posterior probability of the target
    interval among doses with P(overdose) < ``overdose_threshold`` (EWOC), escalating by at
    most ``max_escalation_steps`` levels above the highest dose tried. The trial stops with
    that dose once it has ``min_patients_at_mtd`` patients, P(target) >= ``min_prob_target``
    and the trial has at least ``min_total_patients``; it stops for toxicity when even the
    lowest dose violates EWOC and at least ``min_patients_before_stopping`` patients have had
    it (fewer: treat it again).
    """

    rule: Literal["blrm-ewoc"]
    cohort_size: int = Field(default=3, ge=1)
    prior: Literal["translational", "weakly_informative"] = "weakly_informative"
    reference_dose: float | None = Field(default=None, gt=0)
    weak_log_alpha: NormalPrior | None = None
    weak_log_beta: NormalPrior | None = None
    translational_prior_draws: int = Field(default=4000, ge=100)
    translational_variance_inflation: float = Field(default=4.0, ge=1)
    target_interval: tuple[float, float] = (0.16, 0.33)
    overdose_threshold: float = Field(default=0.25, gt=0, lt=1)
    max_escalation_steps: int = Field(default=1, ge=1)
    min_patients_before_stopping: int = Field(default=6, ge=1)
    min_patients_at_mtd: int = Field(default=6, ge=1)
    min_prob_target: float = Field(default=0.5, ge=0, le=1)
    min_total_patients: int = Field(default=15, ge=1)
    grid_points: int = Field(default=81, ge=21)
    grid_half_width_sd: float = Field(default=6.0, ge=3)

    @model_validator(mode="after")
    def _check(self) -> BlrmConfig:
        low, high = self.target_interval
        if not 0 < low < high < 1:
            raise ValueError("target_interval must be two rates 0 < low < high < 1")
        if self.prior == "weakly_informative" and (
            self.weak_log_alpha is None or self.weak_log_beta is None
        ):
            raise ValueError("prior = 'weakly_informative' needs weak_log_alpha and weak_log_beta")
        return self


DesignConfig = Annotated[
    ThreePlusThreeConfig | BoinConfig | BlrmConfig, Field(discriminator="rule")
]


class ExpansionConfig(_Frozen):
    """Expansion cohort at the selected dose; success = enough responses, few enough DLTs."""

    n_patients: int = Field(default=20, ge=1)
    min_responses: int = Field(default=4, ge=0)
    max_dlts: int | None = Field(default=None, ge=0)
    source: str = Field(min_length=1)

    @model_validator(mode="after")
    def _check(self) -> ExpansionConfig:
        if self.min_responses > self.n_patients:
            raise ValueError("min_responses cannot exceed n_patients")
        return self


class TrialDesignConfig(_Frozen):
    """The whole design file."""

    name: str = "trial design"
    simulation: SimulationConfig = SimulationConfig()
    doses: DoseConfig = DoseConfig()
    evaluation: EvaluationConfig
    toxicity: LinkConfig
    response: LinkConfig
    designs: tuple[DesignConfig, ...] = Field(min_length=1)
    expansion: ExpansionConfig | None = None

    @model_validator(mode="after")
    def _unique_names(self) -> TrialDesignConfig:
        names = [design.name for design in self.designs]
        duplicates = sorted({name for name in names if names.count(name) > 1})
        if duplicates:
            raise ValueError(f"design names must be unique; repeated: {', '.join(duplicates)}")
        return self

    @property
    def max_patients(self) -> int:
        """Return the largest sample size any design may enrol (sizes the patient streams)."""
        return max(design.max_patients for design in self.designs)


def load_design(path: str | Path) -> TrialDesignConfig:
    """Read and validate a trial-design TOML file.

    Parameters
    ----------
    path : str or Path
        The design file.

    Returns
    -------
    TrialDesignConfig
        The validated configuration.

    Raises
    ------
    bayes.data.DataError
        Naming the file and the dotted key of every problem.

    """
    from bayes.data.nonmem import load_toml_config  # lazy: workers unpickle configs only

    return load_toml_config(path, TrialDesignConfig)
