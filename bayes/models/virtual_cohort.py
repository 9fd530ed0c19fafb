"""Virtual mouse cohorts from a recipe: design + generating parameters + seed -> a tidy data set.

A recipe (TOML, :class:`CohortRecipe`) names the CF-IL2 variant, the prior set (for parameters
the recipe leaves out: none, for a reference cohort), every generating population parameter with
the reason for its value, and the experimental design: groups, sampling days, detection limits,
anti-PD-1 schedule and the humane end point. :func:`make_cohort` simulates it through the
likelihood's own graph (:meth:`HierarchicalModel.simulate`), so a cohort is exactly a draw from the
model that will be fitted to it. :func:`write_cohort` writes the tidy CSVs that ``bayes.data``
reads, each file headed by a line saying that the data are synthetic.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
from pydantic import BaseModel, ConfigDict, Field, model_validator

from bayes.data import Study
from bayes.data.nonmem import load_toml_config
from bayes.models.cf_il2 import CFIL2Config, cf_il2_spec
from bayes.models.cohorts import mouse_design
from bayes.models.hierarchical import HierarchicalModel
from bayes.models.priors import PriorSet
from bayes.models.published_check import CohortDesignInfo

REPO_ROOT = Path(__file__).resolve().parents[2]


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class CohortGroup(_Strict):
    """One treatment group: capsule output (ug/day, 0 = untreated), anti-PD-1, number of mice."""

    capsule_output_ug_per_day: float = Field(ge=0.0)
    anti_pd1: bool = False
    mice: int = Field(gt=0)


class CohortDesign(_Strict):
    """The experiment: groups, sampling schedule, assay limits and the humane end point.

    ``baseline_median`` is the nominal day-0 burden: the model's reference burden unless the
    recipe's ``[model]`` sets ``burden_reference``. How much mice differ around it is the
    generating ``omega_log_burden0``, a model parameter.
    """

    groups: dict[str, CohortGroup]
    burden_days: list[float] = Field(min_length=2)
    il2_days: list[float] = Field(default_factory=list)
    burden_analyte: str = "bioluminescence"
    burden_unit: str = "p/s"
    baseline_median: float = Field(gt=0.0)
    detection_limit: float = Field(gt=0.0)
    il2_lloq_ng_ml: float = Field(gt=0.0)
    antibody_days: list[float] = Field(default_factory=list)
    antibody_ug: float = Field(default=200.0, gt=0.0)
    humane_endpoint_fold: float | None = Field(default=None, gt=1.0)

    @model_validator(mode="after")
    def _days_sorted(self) -> CohortDesign:
        for key in ("burden_days", "il2_days", "antibody_days"):
            days = getattr(self, key)
            if any(b <= a for a, b in zip(days, days[1:], strict=False)) or any(
                d < 0 for d in days
            ):
                raise ValueError(f"{key} must be non-negative and strictly increasing")
        return self


class CohortRecipe(_Strict):
    """Everything that defines a virtual cohort (see module docstring)."""

    name: str
    description: str
    synthetic_note: str
    priors: str
    seed: int
    model: CFIL2Config = CFIL2Config()
    parameters: dict[str, float | list[float]]
    parameter_reasons: dict[str, str] = Field(default_factory=dict)
    design: CohortDesign

    @model_validator(mode="after")
    def _reasons_for_parameters(self) -> CohortRecipe:
        missing = sorted(set(self.parameters) - set(self.parameter_reasons))
        if missing:
            raise ValueError(f"parameter_reasons is missing an entry for: {', '.join(missing)}")
        return self


def load_recipe(path: str | Path) -> CohortRecipe:
    """Read and validate a cohort recipe TOML (errors name the file and the key)."""
    return load_toml_config(path, CohortRecipe)


def design_study(recipe: CohortRecipe) -> Study:
    """Return the recipe's design: subjects, schedule, limits and doses, placeholder values."""
    design = recipe.design
    return mouse_design(
        groups={g: (x.capsule_output_ug_per_day, x.anti_pd1) for g, x in design.groups.items()},
        mice_per_group={g: x.mice for g, x in design.groups.items()},
        burden_days=design.burden_days,
        il2_days=design.il2_days,
        burden_analyte=design.burden_analyte,
        burden_unit=design.burden_unit,
        baseline_burden=design.baseline_median,
        detection_limit=design.detection_limit,
        il2_lloq_ng_ml=design.il2_lloq_ng_ml,
        antibody_days=design.antibody_days,
        antibody_ug=design.antibody_ug,
    )


def cohort_model(recipe: CohortRecipe, study: Study) -> HierarchicalModel:
    """Return the hierarchical CF-IL2 model of ``recipe`` bound to ``study``.

    The model's reference burden is the recipe's ``[model] burden_reference``, or else the
    design's nominal ``baseline_median``.
    """
    update = {"burden_analyte": recipe.design.burden_analyte}
    if recipe.model.burden_reference is None:
        update["burden_reference"] = recipe.design.baseline_median
    config = recipe.model.model_copy(update=update)
    priors = PriorSet.load(_resolve(recipe.priors))
    return HierarchicalModel(cf_il2_spec(study, config), priors, study)


def make_cohort(recipe: CohortRecipe, seed: int | None = None) -> Study:
    """Simulate the recipe's cohort.

    Parameters
    ----------
    recipe : CohortRecipe
        Design and generating parameters.
    seed : int, optional
        Overrides the recipe's seed (fresh cohorts for recovery studies).

    Returns
    -------
    Study
        Simulated observations (censored below the assay limits, none after a mouse reached the
        humane end point) and the design's dosing events.
    """
    seed = recipe.seed if seed is None else seed
    design = design_study(recipe)
    model = cohort_model(recipe, design)
    study = model.simulate(recipe.parameters, seed=seed)
    if recipe.design.humane_endpoint_fold is not None:
        study = apply_humane_endpoint(
            study, recipe.design.burden_analyte, recipe.design.humane_endpoint_fold
        )
    return study


def apply_humane_endpoint(study: Study, analyte: str, fold: float) -> Study:
    """Drop every observation of a mouse after its burden first reached ``fold`` x its first value.

    The mouse is euthanised at that imaging session: the observation that crossed the end point is
    kept, later ones never happen (dropout that depends only on observed values).
    """
    obs = study.observations
    burden = obs[obs["analyte"] == analyte].sort_values(["subject", "time"])
    first = burden.groupby("subject")["value"].transform("first")
    crossed = burden[(burden["value"] >= fold * first) & ~burden["censored"]]
    end = crossed.groupby("subject")["time"].min()
    last_time = obs["subject"].map(end).fillna(np.inf)
    kept = obs[obs["time"] <= last_time].reset_index(drop=True)
    return Study(
        observations=kept,
        events=study.events,
        covariates=study.covariates,
        groups=study.groups,
        excluded=study.excluded,
        source=study.source,
        name=study.name,
    )


def write_cohort(
    study: Study, recipe: CohortRecipe, out_dir: str | Path, seed: int
) -> dict[str, Path]:
    """Write ``observations.csv`` and ``events.csv`` (tidy format, synthetic-data header).

    Returns
    -------
    dict
        File role -> path.
    """
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    header = (
        f"# SYNTHETIC cohort '{recipe.name}' simulated by the CF-IL2 model (seed {seed}); "
        f"not measurements. {recipe.synthetic_note}"
    )
    obs = study.observations
    observations = pd.DataFrame(
        {
            "subject": obs["subject"],
            "group": obs["group"],
            "time": obs["time"],
            "analyte": obs["analyte"],
            "value": obs["value"].map(lambda v: float(f"{v:.5g}")),
            "unit": obs["unit"],
            "censored": obs["censored"].astype(int),
            "limit": obs["limit"],
        }
    )
    groups = recipe.design.groups
    observations["dose"] = observations["group"].map(
        {g: x.capsule_output_ug_per_day for g, x in groups.items()}
    )
    observations["dose_unit"] = "ug/day"
    events = study.events[["subject", "time", "kind", "amount", "unit"]]
    paths = {"observations": out / "observations.csv", "events": out / "events.csv"}
    _write_csv(observations, paths["observations"], header)
    _write_csv(events, paths["events"], header)
    return paths


def _write_csv(frame: pd.DataFrame, path: Path, header: str) -> None:
    tmp = path.with_suffix(".csv.tmp")
    with open(tmp, "w", encoding="utf-8", newline="") as handle:
        handle.write(header + "\n")
        frame.to_csv(handle, index=False, lineterminator="\n")
    tmp.replace(path)


def _resolve(path: str) -> Path:
    candidate = Path(path)
    return candidate if candidate.is_absolute() or candidate.exists() else REPO_ROOT / candidate


def design_info(recipe: CohortRecipe) -> CohortDesignInfo:
    """Return the groups' roles for :func:`~bayes.models.published_check.compare_with_published`.

    Untreated groups (output 0) are controls, capsule-only groups monotherapy, capsule plus
    anti-PD-1 groups combination.
    """
    groups = recipe.design.groups
    return CohortDesignInfo(
        burden_analyte=recipe.design.burden_analyte,
        monotherapy={
            g: x.capsule_output_ug_per_day
            for g, x in groups.items()
            if x.capsule_output_ug_per_day > 0 and not x.anti_pd1
        },
        combination=tuple(
            g for g, x in groups.items() if x.capsule_output_ug_per_day > 0 and x.anti_pd1
        ),
        control=tuple(g for g, x in groups.items() if x.capsule_output_ug_per_day == 0),
    )
