"""Validated configuration files of the translation: translation priors and dosing scenarios.

Both are TOML files read with :func:`bayes.data.nonmem.load_toml_config`, so every problem is
reported as ``file:-:<dotted key>: message`` in one :class:`bayes.data.DataError`, e.g.
``workflows/human_dosing.toml:-:scenario.2.capsules: Input should be greater than 0``.

- :class:`TranslationPriors` (``priors/translation.toml``): allometric exponents, cavity
  physiology, human IL-2 PK, potency translation, human disease, between-patient SDs and toxicity
  references, each with its source.
- :class:`ScenarioFile` (``workflows/human_dosing.toml``): settings, defaults and named
  scenarios (cavity, effusion, body weight, capsules or total output, implant days, anti-PD-1
  days, horizon, reference day of the tumour effect).
"""

from __future__ import annotations

import math
from pathlib import Path
from typing import Annotated, Literal, Self

from pydantic import BaseModel, ConfigDict, Field, StringConstraints, model_validator

from bayes.data.errors import IssueCollector
from bayes.data.nonmem import load_toml_config
from bayes.data.units import IL2_IU_PER_UG
from bayes.models.priors import Prior

__all__ = [
    "BodyWeight",
    "Scenario",
    "ScenarioFile",
    "ToxicityReference",
    "TranslationPriors",
    "load_scenarios",
    "load_translation_priors",
    "resolve_scenarios",
]

DEFAULT_PRIORS = Path(__file__).resolve().parents[2] / "priors" / "translation.toml"
Name = Annotated[str, StringConstraints(pattern=r"^[A-Za-z][A-Za-z0-9_.+-]*$", max_length=64)]
Sourced = Annotated[str, StringConstraints(pattern=r"^(LITERATURE\.md: |rationale: ).+")]


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class FixedValue(_Strict):
    """A fixed number with its unit and source (e.g. a between-patient SD)."""

    value: float = Field(ge=0.0, allow_inf_nan=False)
    unit: str
    source: Sourced
    rationale: str | None = None


class CavityPriors(_Strict):
    """Physiology of one cavity relative to the mouse reference cavity."""

    absorption_factor: Prior
    volume_factor: Prior
    effusion_volume: Prior


class ScalingPriors(_Strict):
    """Mouse-to-human scaling: exponents, capsule performance, cavities."""

    mouse_weight_g: float = Field(gt=0.0, allow_inf_nan=False)
    mouse_weight_source: Sourced
    mouse_cavity: str
    mouse_cavity_source: Sourced
    clearance_exponent: Prior
    local_clearance_exponent: Prior
    volume_exponent: Prior
    capsule_performance: Prior
    release_fade: Prior
    cavity: dict[Name, CavityPriors]

    @model_validator(mode="after")
    def _mouse_cavity_known(self) -> Self:
        if self.mouse_cavity not in self.cavity:
            raise ValueError(
                f"mouse_cavity {self.mouse_cavity!r} has no [scaling.cavity.{self.mouse_cavity}] "
                f"table (cavities: {sorted(self.cavity)})"
            )
        return self


class PublishedRange(_Strict):
    """A published value range the human systemic PK must reproduce."""

    quantity: Literal["half_life_alpha_min", "half_life_beta_min", "clearance_ml_per_min"]
    low: float = Field(gt=0.0)
    high: float = Field(gt=0.0)
    source: Sourced
    rationale: str | None = None


class HumanPKPriors(_Strict):
    """Human systemic IL-2 PK (biexponential) and how it is combined with allometry."""

    method: Literal["combine", "human", "allometry"] = "combine"
    method_rationale: str
    reference_weight_kg: float = Field(gt=0.0, allow_inf_nan=False)
    reference_weight_source: Sourced
    clearance: Prior
    half_life_alpha: Prior
    half_life_beta: Prior
    alpha_fraction: Prior
    clearance_between_patient: FixedValue
    check: list[PublishedRange] = []


class PotencyPriors(_Strict):
    """Species difference in potency and immune kill (exposure matching)."""

    effective_fraction: float = Field(gt=0.0, lt=1.0)
    effective_fraction_source: Sourced
    ec50_factor: Prior
    kill_factor: Prior


class DiseasePriors(_Strict):
    """Human tumour growth and anti-PD-1 exposure decline."""

    growth_rate: Prior
    growth_between_patient: FixedValue
    pd1_decay: Prior


class BetweenPatientDefaults(_Strict):
    """Between-patient SDs used when the posterior lacks the mouse ones."""

    capsule_performance: FixedValue
    kill_rate: FixedValue


ToxicityMetric = Literal["cmax_serum", "max_daily_auc_serum"]
_TOXICITY_UNITS = {
    "cmax_serum": {"ng/mL": 1.0, "IU/mL": 1000.0 / IL2_IU_PER_UG},
    "max_daily_auc_serum": {"ng*day/mL": 1.0, "IU*day/mL": 1000.0 / IL2_IU_PER_UG},
}


class ToxicityReference(_Strict):
    """A systemic exposure whose exceedance is reported as a probability."""

    name: Name
    metric: ToxicityMetric
    value: float = Field(gt=0.0, allow_inf_nan=False)
    unit: str
    source: Sourced
    rationale: str | None = None

    @model_validator(mode="after")
    def _unit_fits_metric(self) -> Self:
        allowed = _TOXICITY_UNITS[self.metric]
        if self.unit not in allowed:
            raise ValueError(
                f"unit {self.unit!r} does not fit metric {self.metric!r}; "
                f"use one of {list(allowed)}"
            )
        return self

    @property
    def value_ng(self) -> float:
        """The reference in ng/mL (cmax) or ng*day/mL (AUC); IU converted with 18 MIU = 1.1 mg."""
        return self.value * _TOXICITY_UNITS[self.metric][self.unit]

    @property
    def unit_ng(self) -> str:
        """Unit of :attr:`value_ng`."""
        return "ng/mL" if self.metric == "cmax_serum" else "ng*day/mL"


class TranslationPriors(_Strict):
    """All translation priors (``priors/translation.toml``)."""

    name: str
    description: str
    scaling: ScalingPriors
    human_pk: HumanPKPriors
    potency: PotencyPriors
    disease: DiseasePriors
    between_patient: BetweenPatientDefaults
    toxicity: list[ToxicityReference] = Field(min_length=1)
    path: str = ""

    @model_validator(mode="after")
    def _unique_toxicity_names(self) -> Self:
        names = [t.name for t in self.toxicity]
        duplicates = sorted({n for n in names if names.count(n) > 1})
        if duplicates:
            raise ValueError(f"toxicity names must be unique; repeated: {duplicates}")
        return self

    def table(self) -> list[dict[str, object]]:
        """Return one row per prior or fixed value: key, distribution, median, q05, q95, source."""
        rows = []
        for key, item in _walk(self.model_dump(exclude={"path"}), ""):
            rows.append({"key": key, **item})
        return rows


def _walk(data: object, prefix: str):
    if isinstance(data, dict) and "source" in data and ("distribution" in data or "value" in data):
        yield prefix, _describe(data)
        return
    if isinstance(data, dict):
        for key, value in data.items():
            yield from _walk(value, f"{prefix}.{key}" if prefix else key)
    elif isinstance(data, list):
        for index, value in enumerate(data):
            label = value.get("name", index) if isinstance(value, dict) else index
            yield from _walk(value, f"{prefix}.{label}")


def _describe(data: dict) -> dict[str, object]:
    if "distribution" in data:
        prior = Prior.model_validate(data)
        q05, median, q95 = prior.to_scipy().ppf([0.05, 0.5, 0.95])
        return {
            "distribution": prior.label,
            "median": float(median),
            "q05": float(q05),
            "q95": float(q95),
            "unit": prior.unit,
            "source": prior.source,
        }
    value = float(data["value"])
    return {
        "distribution": f"fixed {data.get('name', '')}".strip(),
        "median": value,
        "q05": value,
        "q95": value,
        "unit": data.get("unit", ""),
        "source": data["source"],
    }


def load_translation_priors(path: str | Path | None = None) -> TranslationPriors:
    """Load and validate translation priors (default ``priors/translation.toml``).

    Raises
    ------
    bayes.data.DataError
        Listing every problem as ``file:-:key: message``.
    """
    path = Path(path) if path is not None else DEFAULT_PRIORS
    priors = load_toml_config(path, TranslationPriors)
    return priors.model_copy(update={"path": str(path)})


# --------------------------------------------------------------------------- scenarios


class BodyWeight(_Strict):
    """Log-normal body weight distribution truncated to ``[lower_kg, upper_kg]``."""

    median_kg: float = Field(gt=0.0, allow_inf_nan=False)
    cv: float = Field(ge=0.0, le=2.0)
    lower_kg: float = Field(default=30.0, gt=0.0)
    upper_kg: float = Field(default=200.0, gt=0.0)

    @model_validator(mode="after")
    def _ordered(self) -> Self:
        if not self.lower_kg < self.median_kg < self.upper_kg:
            raise ValueError(
                f"need lower_kg < median_kg < upper_kg, got {self.lower_kg}, {self.median_kg}, "
                f"{self.upper_kg}"
            )
        return self

    @property
    def log_sd(self) -> float:
        """SD of ln(weight): ``sqrt(ln(1 + cv^2))``."""
        return math.sqrt(math.log1p(self.cv**2))


class _ScenarioFields(_Strict):
    """Fields a scenario may set and ``[defaults]`` may provide."""

    cavity: str | None = None
    effusion: bool | None = None
    body_weight: BodyWeight | None = None
    output_per_capsule_ug_per_day: float | None = Field(default=None, gt=0.0, allow_inf_nan=False)
    implant_days: list[Annotated[float, Field(ge=0.0, allow_inf_nan=False)]] | None = None
    anti_pd1_days: list[Annotated[float, Field(ge=0.0, allow_inf_nan=False)]] | None = None
    horizon_days: float | None = Field(default=None, gt=0.0, le=3650.0)
    reference_day: float | None = Field(default=None, gt=0.0)
    description: str | None = None


class ScenarioEntry(_ScenarioFields):
    """One ``[[scenario]]`` table: a name, and capsules or total output, plus overrides."""

    name: Name
    capsules: float | None = Field(default=None, gt=0.0, allow_inf_nan=False)
    total_output_ug_per_day: float | None = Field(default=None, gt=0.0, allow_inf_nan=False)

    @model_validator(mode="after")
    def _one_dose(self) -> Self:
        if (self.capsules is None) == (self.total_output_ug_per_day is None):
            raise ValueError(
                f"scenario {self.name!r}: give exactly one of capsules or total_output_ug_per_day"
            )
        return self


class Settings(_Strict):
    """Run settings: draws, virtual patients, seed, translation priors, output step."""

    draws: int = Field(default=1000, ge=1)
    patients: int = Field(default=200, ge=1)
    seed: int = Field(default=0, ge=0)
    translation_priors: str | None = None
    output_step_days: float = Field(default=1.0, gt=0.0)
    decomposition_draws: int = Field(default=200, ge=10)
    decomposition_patients: int = Field(default=40, ge=2)


class ScenarioFile(_Strict):
    """A scenario file: ``[settings]``, ``[defaults]`` and one or more ``[[scenario]]``."""

    description: str = ""
    settings: Settings = Settings()
    defaults: _ScenarioFields = _ScenarioFields()
    scenario: list[ScenarioEntry] = Field(min_length=1)

    @model_validator(mode="after")
    def _unique_names(self) -> Self:
        names = [s.name for s in self.scenario]
        duplicates = sorted({n for n in names if names.count(n) > 1})
        if duplicates:
            raise ValueError(f"scenario names must be unique; repeated: {duplicates}")
        return self


class Scenario(_Strict):
    """A fully resolved scenario (defaults applied, checked against the translation priors)."""

    name: str
    cavity: str
    effusion: bool
    body_weight: BodyWeight
    capsules: float
    output_per_capsule_ug_per_day: float
    total_output_ug_per_day: float
    implant_days: tuple[float, ...]
    anti_pd1_days: tuple[float, ...]
    horizon_days: float
    reference_day: float
    description: str = ""


_REQUIRED = ("cavity", "body_weight", "horizon_days")
_FALLBACK = {
    "effusion": False,
    "implant_days": [0.0],
    "anti_pd1_days": [],
}


def load_scenarios(path: str | Path) -> ScenarioFile:
    """Read and validate a scenario file (structure only; see :func:`resolve_scenarios`).

    Raises
    ------
    bayes.data.DataError
        Listing every problem as ``file:-:key: message``.
    """
    return load_toml_config(path, ScenarioFile)


def resolve_scenarios(
    file: ScenarioFile, priors: TranslationPriors, label: str = "scenarios"
) -> list[Scenario]:
    """Apply ``[defaults]`` and check each scenario against the translation priors.

    Parameters
    ----------
    file : ScenarioFile
        The validated scenario file.
    priors : TranslationPriors
        Cavities must be among ``priors.scaling.cavity``.
    label : str
        File name used in error messages.

    Returns
    -------
    list of Scenario

    Raises
    ------
    bayes.data.DataError
        Naming ``scenario.<i>.<key>`` for each problem.
    """
    issues = IssueCollector()
    resolved = []
    for index, entry in enumerate(file.scenario):
        scenario = _resolve_one(index, entry, file.defaults, priors, label, issues)
        if scenario is not None:
            resolved.append(scenario)
    issues.raise_if_any()
    return resolved


def _resolve_one(index, entry, defaults, priors, label, issues) -> Scenario | None:
    where = f"scenario.{index}"
    values = {**_FALLBACK}
    for source in (defaults, entry):
        values.update({k: v for k, v in source.model_dump().items() if v is not None})
    values["body_weight"] = entry.body_weight or defaults.body_weight
    missing = [key for key in _REQUIRED if values.get(key) is None]
    for key in missing:
        issues.add(
            label,
            None,
            f"{where}.{key}",
            f"scenario {entry.name!r} needs {key} (in the scenario or in [defaults])",
        )
    if missing:
        return None
    problems = _scenario_problems(entry, values, priors)
    for key, message in problems:
        issues.add(label, None, f"{where}.{key}", f"scenario {entry.name!r}: {message}")
    if problems:
        return None
    per_capsule = values.get("output_per_capsule_ug_per_day")
    if entry.capsules is not None:
        total = entry.capsules * per_capsule
        capsules = entry.capsules
    else:
        total = entry.total_output_ug_per_day
        capsules = math.nan
    return Scenario(
        name=entry.name,
        cavity=values["cavity"],
        effusion=values["effusion"],
        body_weight=values["body_weight"],
        capsules=capsules,
        output_per_capsule_ug_per_day=per_capsule if per_capsule else math.nan,
        total_output_ug_per_day=total,
        implant_days=tuple(sorted(values["implant_days"])),
        anti_pd1_days=tuple(sorted(values["anti_pd1_days"])),
        horizon_days=values["horizon_days"],
        reference_day=values.get("reference_day") or min(28.0, values["horizon_days"]),
        description=values.get("description") or "",
    )


def _scenario_problems(entry, values, priors: TranslationPriors) -> list[tuple[str, str]]:
    problems = []
    if values["cavity"] not in priors.scaling.cavity:
        problems.append(
            (
                "cavity",
                f"unknown cavity {values['cavity']!r}; the translation priors "
                f"({priors.path or 'given'}) define {sorted(priors.scaling.cavity)}",
            )
        )
    if entry.capsules is not None and values.get("output_per_capsule_ug_per_day") is None:
        problems.append(
            (
                "output_per_capsule_ug_per_day",
                "capsules needs output_per_capsule_ug_per_day (in the scenario or in [defaults])",
            )
        )
    horizon = values["horizon_days"]
    if not values["implant_days"]:
        problems.append(("implant_days", "needs at least one implant day"))
    elif max(values["implant_days"]) >= horizon:
        problems.append(("implant_days", f"implant days must be before horizon_days {horizon:g}"))
    reference = values.get("reference_day")
    if reference is not None and reference > horizon:
        problems.append(("reference_day", f"{reference:g} is beyond horizon_days {horizon:g}"))
    if any(day > horizon for day in values["anti_pd1_days"]):
        problems.append(("anti_pd1_days", f"days must be within horizon_days {horizon:g}"))
    return problems
