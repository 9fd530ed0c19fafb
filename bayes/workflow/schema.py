"""The workflow file: a TOML description of one inference run, validated with pydantic.

Paths to data, mappings, events and priors are relative to the workflow file's folder; the output
folder is relative to the current directory (as for every command's ``--out``). Every problem is
reported with the file and the key path, e.g.::

    workflows/quickstart.toml: sampler.chians: unknown key (did you mean 'chains'?)
    workflows/quickstart.toml: sampler.draws: Input should be a valid integer
    workflows/quickstart.toml: data.sources[0].path: file not found: ../datasets/x.csv

Layout (every section but ``data`` and ``model`` is optional)::

    name = "quickstart"
    priors = "../priors/cf_il2_mouse.toml"
    [[data.sources]]            # one or more; combined into one study
    path = "../datasets/examples/example_observations.csv"
    events = "../datasets/examples/example_events.csv"
    [data]
    groups = ["cf_low", "cf_high"]         # keep only these groups (default: all)
    [model]
    kind = "cf_il2"                         # or "package.module:function" / "file.py:function"
    options = { growth = "gompertz" }
    [sampler]
    backend = "nutpie"; chains = 4; tune = 1000; draws = 1000; target_accept = 0.9; seed = 1
    [checks.gate]
    max_rhat = 1.01; min_ess_bulk = 400; min_ess_tail = 400; max_divergences = 0; min_bfmi = 0.3
    [output]
    folder = "runs/quickstart"
"""

from __future__ import annotations

import difflib
import importlib.util
import tomllib
from pathlib import Path
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from bayes.inference.diagnostics import GateThresholds
from bayes.inference.sampling import MassMatrix

Backend = Literal["nutpie", "pymc", "numpyro", "blackjax"]
DataFormat = Literal["tidy", "nonmem", "mapped", "netcdf"]
_BACKEND_MODULES = {
    "nutpie": "nutpie",
    "pymc": "pymc",
    "numpyro": "numpyro",
    "blackjax": "blackjax",
}


class WorkflowError(ValueError):
    """A workflow file is invalid; ``problems`` holds one ``(key path, message)`` per problem.

    Parameters
    ----------
    origin : str
        The workflow file.
    problems : list of (str, str)
        Key path (dotted, with ``[i]`` for list items; ``""`` for the whole file) and message.
    """

    def __init__(self, origin: str, problems: list[tuple[str, str]]) -> None:
        self.origin = origin
        self.problems = problems
        lines = [
            f"{origin}: {key}: {message}" if key else f"{origin}: {message}"
            for key, message in problems
        ]
        super().__init__("\n".join(lines))


class _Section(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class DataSource(_Section):
    """One data file (tidy CSV, NONMEM-style CSV, mapping TOML or study NetCDF)."""

    path: str
    format: DataFormat | None = None
    events: str | None = None
    mapping: str | None = None
    data_root: str | None = None


class Indicator(_Section):
    """A 0/1 covariate from a text covariate: 1 where the value is ``equals`` (or one of them)."""

    covariate: str
    equals: str | list[str]

    @property
    def values(self) -> list[str]:
        """The values that count as 1."""
        return [self.equals] if isinstance(self.equals, str) else list(self.equals)


class DataSection(_Section):
    """Data sources and subsetting."""

    sources: Annotated[list[DataSource], Field(min_length=1)]
    groups: list[str] | None = None
    exclude_groups: list[str] = []
    prefix_subjects: bool = False
    indicators: dict[str, Indicator] = {}


class Effect(_Section):
    """A covariate effect on a parameter (see :class:`bayes.models.CovariateEffect`)."""

    parameter: str
    covariate: str
    sigma: Annotated[float, Field(gt=0)] = 0.5
    source: str = "rationale: weakly informative, a covariate rarely changes a parameter > e-fold"


class ModelSection(_Section):
    """Which model: ``cf_il2`` (options: :class:`bayes.models.cf_il2.CFIL2Config`) or a function.

    A user model is ``"package.module:function"`` or ``"path/to/file.py:function"`` (relative
    to the workflow file); ``function(study, **options)`` returns a ``ModelSpec``. ``centred``
    lists random effects sampled centred instead of non-centred (for subjects whose values their
    own data identify well; :mod:`bayes.models.hierarchy`).
    """

    kind: str = "cf_il2"
    options: dict[str, Any] = {}
    effects: list[Effect] = []
    correlated: list[str] = []
    centred: list[str] = []


class SamplerSection(_Section):
    """NUTS settings; ``backend`` nutpie (default), pymc, or numpyro/blackjax when installed.

    ``mass_matrix = "low_rank"`` (nutpie only) adapts a diagonal plus low-rank mass matrix, for
    posteriors with strong linear correlations; ``eigval_cutoff`` sets how many directions it
    corrects (see :func:`bayes.inference.sampling.nutpie_options`).
    """

    backend: Backend = "nutpie"
    chains: Annotated[int, Field(ge=1)] = 4
    tune: Annotated[int, Field(ge=0)] = 1000
    draws: Annotated[int, Field(ge=1)] = 1000
    target_accept: Annotated[float, Field(gt=0, lt=1)] = 0.8
    seed: int = 0
    cores: Annotated[int, Field(ge=1)] | None = None
    mass_matrix: MassMatrix = "diag"
    eigval_cutoff: Annotated[float, Field(gt=1)] = 100.0


class ChecksSection(_Section):
    """What to check after sampling."""

    gate: GateThresholds = GateThresholds()
    ppc: bool = True
    loo: bool = True
    dose_response_day: Annotated[float, Field(gt=0)] | None = 7.0
    figures: bool = True


class OutputSection(_Section):
    """Where the run folder goes (relative to the current directory)."""

    folder: str | None = None


class Workflow(_Section):
    """A complete workflow file."""

    name: str
    description: str = ""
    data: DataSection
    model: ModelSection = ModelSection()
    priors: str
    sampler: SamplerSection = SamplerSection()
    checks: ChecksSection = ChecksSection()
    output: OutputSection = OutputSection()

    def resolve(self, path: str, base: Path) -> Path:
        """Return ``path`` resolved against the workflow file's folder ``base``."""
        candidate = Path(path).expanduser()
        return candidate if candidate.is_absolute() else (base / candidate)


class LoadedWorkflow(BaseModel):
    """A validated workflow with the folder its relative paths refer to."""

    model_config = ConfigDict(frozen=True, arbitrary_types_allowed=True)

    workflow: Workflow
    path: Path
    raw: dict[str, Any]

    @property
    def base(self) -> Path:
        """Folder of the workflow file."""
        return self.path.parent

    def resolve(self, path: str) -> Path:
        """Resolve a path written in the workflow file."""
        return self.workflow.resolve(path, self.base)


def _key_path(loc: tuple[Any, ...]) -> str:
    out = ""
    for part in loc:
        if isinstance(part, int):
            out += f"[{part}]"
        else:
            out += f".{part}" if out else str(part)
    return out


def _fields_at(loc: tuple[Any, ...]) -> list[str]:
    """Return the allowed keys of the section at ``loc`` (for did-you-mean suggestions)."""
    model: Any = Workflow
    for part in loc:
        if isinstance(part, int):
            continue
        field = getattr(model, "model_fields", {}).get(part)
        if field is None:
            return []
        annotation = field.annotation
        args = getattr(annotation, "__args__", ())
        candidates = [annotation, *args]
        nested = [c for c in candidates if isinstance(c, type) and issubclass(c, BaseModel)]
        if not nested:
            return []
        model = nested[0]
    return list(getattr(model, "model_fields", {}))


def _validation_problems(exc: ValidationError) -> list[tuple[str, str]]:
    problems = []
    for error in exc.errors():
        loc = tuple(error["loc"])
        message = error["msg"]
        if error["type"] == "extra_forbidden":
            allowed = _fields_at(loc[:-1])
            close = difflib.get_close_matches(str(loc[-1]), allowed, n=1)
            message = "unknown key" + (f" (did you mean {close[0]!r}?)" if close else "")
            if allowed:
                message += f"; allowed: {', '.join(allowed)}"
        elif error["type"] == "missing":
            message = "required key missing"
        problems.append((_key_path(loc), message))
    return problems


def load_workflow(path: str | Path) -> LoadedWorkflow:
    """Read and validate a workflow file, including that every file it names exists.

    Raises
    ------
    WorkflowError
        Listing every problem with its key path.
    """
    path = Path(path)
    origin = str(path)
    try:
        with open(path, "rb") as handle:
            raw = tomllib.load(handle)
    except OSError as exc:
        raise WorkflowError(origin, [("", f"cannot read workflow: {exc.strerror or exc}")]) from exc
    except tomllib.TOMLDecodeError as exc:
        raise WorkflowError(origin, [("", f"invalid TOML: {exc}")]) from exc
    try:
        workflow = Workflow.model_validate(raw)
    except ValidationError as exc:
        raise WorkflowError(origin, _validation_problems(exc)) from exc
    loaded = LoadedWorkflow(workflow=workflow, path=path, raw=raw)
    problems = _file_problems(loaded) + _backend_problems(workflow)
    if problems:
        raise WorkflowError(origin, problems)
    return loaded


def with_data(
    loaded: LoadedWorkflow, path: str | Path, events: str | Path | None = None
) -> LoadedWorkflow:
    """Return ``loaded`` fitting one other data file (``cytofactory run --data FILE``).

    The workflow's ``data.sources`` are replaced by ``path`` (and ``events``), taken relative to
    the current folder; group selection and everything else in the workflow are kept. This is
    how a workflow is refitted to e.g. a fresh synthetic cohort (``cytofactory cohort make``).

    Raises
    ------
    WorkflowError
        Naming ``--data`` or ``--events`` when a file does not exist.
    """
    given = {"--data": path, "--events": events}
    problems = [
        (key, f"file not found: {value}")
        for key, value in given.items()
        if value is not None and not Path(value).is_file()
    ]
    if problems:
        raise WorkflowError(str(loaded.path), problems)
    source = DataSource(
        path=str(Path(path).resolve()), events=str(Path(events).resolve()) if events else None
    )
    data = loaded.workflow.data.model_copy(update={"sources": [source]})
    return loaded.model_copy(update={"workflow": loaded.workflow.model_copy(update={"data": data})})


def _file_problems(loaded: LoadedWorkflow) -> list[tuple[str, str]]:
    workflow = loaded.workflow
    checks: list[tuple[str, str | None]] = [("priors", workflow.priors)]
    for i, source in enumerate(workflow.data.sources):
        checks += [
            (f"data.sources[{i}].path", source.path),
            (f"data.sources[{i}].events", source.events),
            (f"data.sources[{i}].mapping", source.mapping),
        ]
    problems = []
    for key, value in checks:
        if value is not None and not loaded.resolve(value).is_file():
            problems.append((key, f"file not found: {value} (looked for {loaded.resolve(value)})"))
    kind = workflow.model.kind
    if ":" in kind:
        module, _, _ = kind.partition(":")
        if module.endswith(".py") and not loaded.resolve(module).is_file():
            problems.append(("model.kind", f"model file not found: {module}"))
    return problems


def _backend_problems(workflow: Workflow) -> list[tuple[str, str]]:
    backend = workflow.sampler.backend
    if importlib.util.find_spec(_BACKEND_MODULES[backend]) is None:
        return [("sampler.backend", f"{backend!r} is not installed; use 'nutpie' or 'pymc'")]
    if workflow.sampler.mass_matrix != "diag" and backend != "nutpie":
        return [("sampler.mass_matrix", f"{workflow.sampler.mass_matrix!r} needs backend 'nutpie'")]
    return []
