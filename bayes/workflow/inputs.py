"""Turn a validated workflow into its inputs: the study (selected groups, indicators) and the model.

Problems that need the data to see (a group that is not in the data, a covariate an indicator
reads that does not exist, model options the model does not take) are raised as
:class:`~bayes.workflow.schema.WorkflowError` naming the workflow key.
"""

from __future__ import annotations

import difflib
import hashlib
import importlib
import importlib.util
import inspect
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pandas as pd
from pydantic import ValidationError

from bayes.data import Study, combine_studies, load_study
from bayes.models import CovariateEffect, HierarchicalModel, ModelSpec, PriorSet
from bayes.workflow.schema import LoadedWorkflow, WorkflowError


def file_sha256(path: Path) -> str:
    """Return the SHA-256 of a file's bytes."""
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def input_files(loaded: LoadedWorkflow) -> dict[str, Path]:
    """Return every file the workflow names, keyed by its workflow key path."""
    files = {"priors": loaded.resolve(loaded.workflow.priors)}
    for i, source in enumerate(loaded.workflow.data.sources):
        for key in ("path", "events", "mapping"):
            value = getattr(source, key)
            if value is not None:
                files[f"data.sources[{i}].{key}"] = loaded.resolve(value)
    return files


def load_data(loaded: LoadedWorkflow) -> Study:
    """Read, combine and subset the workflow's data.

    Raises
    ------
    bayes.data.DataError
        For problems in the data files themselves.
    WorkflowError
        For groups or covariates named in the workflow that are not in the data.
    """
    section = loaded.workflow.data
    studies = [
        load_study(
            loaded.resolve(s.path),
            s.format,
            mapping=loaded.resolve(s.mapping) if s.mapping else None,
            events=loaded.resolve(s.events) if s.events else None,
            data_root=loaded.resolve(s.data_root) if s.data_root else None,
        )
        for s in section.sources
    ]
    study = combine_studies(studies, prefix=section.prefix_subjects and len(studies) > 1)
    study = _select_groups(loaded, study)
    return _add_indicators(loaded, study)


def _unknown(key: str, value: str, known: list[str], what: str) -> tuple[str, str]:
    close = difflib.get_close_matches(value, known, n=1)
    hint = f" (did you mean {close[0]!r}?)" if close else ""
    return key, f"{what} {value!r} is not in the data{hint}; {what}s: {', '.join(known)}"


def _select_groups(loaded: LoadedWorkflow, study: Study) -> Study:
    section = loaded.workflow.data
    present = list(dict.fromkeys(study.observations["group"]))
    problems = []
    for name, listed in (
        ("groups", section.groups or []),
        ("exclude_groups", section.exclude_groups),
    ):
        for i, group in enumerate(listed):
            if group not in present:
                problems.append(_unknown(f"data.{name}[{i}]", group, present, "group"))
    if problems:
        raise WorkflowError(str(loaded.path), problems)
    keep = set(section.groups or present) - set(section.exclude_groups)
    if keep == set(present):
        return study
    if not keep:
        raise WorkflowError(str(loaded.path), [("data.groups", "no group left to fit")])
    return subset_groups(study, keep)


def subset_groups(study: Study, keep: set[str]) -> Study:
    """Return ``study`` with only the subjects of groups ``keep``; the rest listed as excluded."""
    obs = study.observations
    dropped = obs[~obs["group"].isin(keep)]
    subjects = set(obs.loc[obs["group"].isin(keep), "subject"])
    excluded = pd.DataFrame(
        {
            "source_file": dropped["source_file"],
            "source_row": dropped["source_row"],
            "subject": dropped["subject"],
            "reason": "group not selected by the workflow: " + dropped["group"],
        }
    )
    return Study(
        observations=obs[obs["group"].isin(keep)],
        events=study.events[study.events["subject"].isin(subjects)],
        covariates=study.covariates[study.covariates["subject"].isin(subjects)],
        groups=study.groups[study.groups["group"].isin(keep)],
        excluded=pd.concat([study.excluded, excluded], ignore_index=True),
        source=study.source,
        name=study.name,
    )


def _add_indicators(loaded: LoadedWorkflow, study: Study) -> Study:
    indicators = loaded.workflow.data.indicators
    if not indicators:
        return study
    covariates = study.covariates.copy()
    problems = []
    for name, spec in indicators.items():
        key = f"data.indicators.{name}"
        if spec.covariate not in covariates.columns:
            known = [c for c in covariates.columns if c != "subject"]
            problems.append(_unknown(f"{key}.covariate", spec.covariate, known, "covariate"))
            continue
        values = covariates[spec.covariate].astype(str)
        absent = [v for v in spec.values if v not in set(values)]
        for value in absent:
            problems.append(_unknown(f"{key}.equals", value, sorted(set(values)), "value"))
        if not absent:
            covariates[name] = values.isin(spec.values).astype(float)
    if problems:
        raise WorkflowError(str(loaded.path), problems)
    return Study(
        observations=study.observations,
        events=study.events,
        covariates=covariates,
        groups=study.groups,
        excluded=study.excluded,
        source=study.source,
        name=study.name,
    )


def resolve_model_function(loaded: LoadedWorkflow) -> Callable[..., ModelSpec]:
    """Return ``function(study, **options) -> ModelSpec`` named by ``model.kind``."""
    kind = loaded.workflow.model.kind
    if kind == "cf_il2":
        from bayes.models.cf_il2 import CFIL2Config, cf_il2_spec

        def build(study: Study, **options: Any) -> ModelSpec:
            return cf_il2_spec(study, CFIL2Config(**options))

        return build
    module_name, sep, function_name = kind.partition(":")
    if not sep or not function_name:
        raise WorkflowError(
            str(loaded.path),
            [("model.kind", f"{kind!r}: use 'cf_il2' or 'module:function' / 'file.py:function'")],
        )
    try:
        module = _import(loaded, module_name)
    except Exception as exc:  # an import error in user code is the workflow's problem
        raise WorkflowError(
            str(loaded.path), [("model.kind", f"cannot import {module_name!r}: {exc}")]
        ) from exc
    function = getattr(module, function_name, None)
    if not callable(function):
        raise WorkflowError(
            str(loaded.path), [("model.kind", f"{module_name!r} has no function {function_name!r}")]
        )
    return function


def _import(loaded: LoadedWorkflow, module_name: str):
    if module_name.endswith(".py"):
        path = loaded.resolve(module_name)
        name = f"_workflow_model_{path.stem}"
        spec = importlib.util.spec_from_file_location(name, path)
        module = importlib.util.module_from_spec(spec)
        sys.modules[name] = module
        spec.loader.exec_module(module)
        return module
    return importlib.import_module(module_name)


def build_model(loaded: LoadedWorkflow, study: Study) -> HierarchicalModel:
    """Build the hierarchical model the workflow names, bound to ``study``."""
    section = loaded.workflow.model
    function = resolve_model_function(loaded)
    origin = str(loaded.path)
    _check_options(loaded, function)
    try:
        spec = function(study, **section.options)
    except ValidationError as exc:
        problems = [
            (".".join(["model.options", *map(str, e["loc"])]), e["msg"]) for e in exc.errors()
        ]
        raise WorkflowError(origin, problems) from exc
    if not isinstance(spec, ModelSpec):
        raise WorkflowError(
            origin, [("model.kind", f"returned {type(spec).__name__}, not a ModelSpec")]
        )
    priors = PriorSet.load(loaded.resolve(loaded.workflow.priors), required=spec.required_priors)
    problems = []
    with_effects = [n for n in spec.parameters if priors[n].random_effect is not None]
    for i, name in enumerate(section.centred):
        if name not in with_effects:
            close = difflib.get_close_matches(name, with_effects, n=1)
            hint = f" (did you mean {close[0]!r}?)" if close else ""
            problems.append(
                (
                    f"model.centred[{i}]",
                    f"{name!r} has no random effect in this model{hint}; parameters with one: "
                    + ", ".join(with_effects),
                )
            )
    for i, effect in enumerate(section.effects):
        if effect.parameter not in spec.parameters:
            problems.append(
                _unknown(
                    f"model.effects[{i}].parameter",
                    effect.parameter,
                    list(spec.parameters),
                    "parameter",
                )
            )
        numeric = [c for c in study.covariates.columns if c != "subject"]
        if effect.covariate not in numeric:
            problems.append(
                _unknown(f"model.effects[{i}].covariate", effect.covariate, numeric, "covariate")
            )
    if problems:
        raise WorkflowError(origin, problems)
    effects = [CovariateEffect(**e.model_dump()) for e in section.effects]
    try:
        return HierarchicalModel(
            spec,
            priors,
            study,
            effects=effects,
            correlated=section.correlated,
            centred=section.centred,
        )
    except ValueError as exc:
        raise WorkflowError(origin, [("model", str(exc))]) from exc


def _check_options(loaded: LoadedWorkflow, function: Callable[..., ModelSpec]) -> None:
    options = loaded.workflow.model.options
    if loaded.workflow.model.kind == "cf_il2":
        from bayes.models.cf_il2 import CFIL2Config

        allowed = list(CFIL2Config.model_fields)
    else:
        parameters = inspect.signature(function).parameters
        if any(p.kind is inspect.Parameter.VAR_KEYWORD for p in parameters.values()):
            return
        allowed = list(parameters)[1:]  # the first parameter receives the study
    problems = []
    for key in options:
        if key not in allowed:
            close = difflib.get_close_matches(key, allowed, n=1)
            hint = f" (did you mean {close[0]!r}?)" if close else ""
            problems.append(
                (f"model.options.{key}", f"unknown option{hint}; allowed: {', '.join(allowed)}")
            )
    if problems:
        raise WorkflowError(str(loaded.path), problems)
