"""Prior distributions that carry their sources, prior sets, and the validated TOML loader.

A :class:`Prior` is an immutable description of one prior distribution (name, parameters, unit,
source, optional rationale and declared support). A :class:`PriorSet` holds the priors of one model
family, keyed by parameter name, plus per-parameter hierarchy information (:class:`RandomEffect`:
a non-centred random effect and the prior of its between-subject SD ``omega``).

Prior sets live in ``priors/*.toml`` (format in ``priors/README.md``). :meth:`PriorSet.load`
validates a file completely and raises one :class:`PriorError` that lists every problem, each
naming the file and the key path, e.g.::

    priors/cf_il2_mouse.toml: parameters.k_fade.distribution: unknown distribution 'Lognormal'
    (did you mean 'LogNormal'?)

Outside a PyMC graph, :meth:`Prior.to_scipy` gives a frozen ``scipy.stats`` distribution (quantiles,
plausible-range fractions, random draws); inside one, :meth:`Prior.to_pymc` creates the random
variable.
"""

import difflib
import json
import math
import re
import tomllib
import zlib
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Annotated, Any, Literal, Self

import numpy as np
import pandas as pd
from pydantic import (
    BaseModel,
    ConfigDict,
    StringConstraints,
    ValidationError,
    field_serializer,
    field_validator,
    model_validator,
)
from pydantic_core import PydanticCustomError
from scipy import stats

__all__ = [
    "DISTRIBUTIONS",
    "DistributionSpec",
    "FrozenDict",
    "OMEGA_PREFIX",
    "ParameterPrior",
    "Prior",
    "PriorError",
    "PriorSet",
    "RandomEffect",
    "omega_name",
    "shipped_prior_sets",
]

OMEGA_PREFIX = "omega_"
"""Prefix of the key under which :meth:`PriorSet.sample` returns a random-effect SD."""

_PRIORS_DIR = Path(__file__).resolve().parents[2] / "priors"
_IDENTIFIER = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")

ParameterName = Annotated[str, StringConstraints(pattern=_IDENTIFIER.pattern)]
"""Parameter names are identifiers: they become PyMC variable names."""

Problem = tuple[str, str]
"""A validation problem: (key path relative to the object checked, message)."""


class FrozenDict[K, V](Mapping[K, V]):
    """A read-only, picklable mapping (``MappingProxyType`` cannot be pickled or deep-copied).

    Parameters
    ----------
    data : mapping or iterable of pairs
        The items.

    """

    __slots__ = ("_data",)

    def __init__(self, data: Mapping[K, V] | Iterable[tuple[K, V]] = ()) -> None:
        self._data: dict[K, V] = dict(data)

    def __getitem__(self, key: K) -> V:
        return self._data[key]

    def __iter__(self) -> Iterator[K]:
        return iter(self._data)

    def __len__(self) -> int:
        return len(self._data)

    def __repr__(self) -> str:
        return f"FrozenDict({self._data!r})"

    def __reduce__(self) -> tuple[type, tuple[dict[K, V]]]:
        return (type(self), (self._data,))


class PriorError(ValueError):
    """A prior or prior set is invalid; the message lists every problem found.

    Parameters
    ----------
    origin : str
        The file (or ``"<dict>"``) the prior set came from.
    problems : sequence of str
        One line per problem, each ``"<origin>: <key path>: <message>"``.

    """

    def __init__(self, origin: str, problems: Sequence[str]) -> None:
        self.origin = origin
        self.problems = list(problems)
        count = len(self.problems)
        header = f"{origin}: {count} problem{'s' if count != 1 else ''} in prior set"
        super().__init__("\n".join([header, *(f"  {line}" for line in self.problems)]))


# --------------------------------------------------------------------------- distributions


class _HalfStudentTGen(stats.rv_continuous):
    """Half Student-t, |T| with T ~ t(nu, 0, scale), as PyMC's ``HalfStudentT``."""

    def _pdf(self, x: np.ndarray, nu: np.ndarray) -> np.ndarray:
        return 2.0 * stats.t.pdf(x, nu)

    def _cdf(self, x: np.ndarray, nu: np.ndarray) -> np.ndarray:
        return 2.0 * stats.t.cdf(x, nu) - 1.0

    def _sf(self, x: np.ndarray, nu: np.ndarray) -> np.ndarray:
        return 2.0 * stats.t.sf(x, nu)

    def _ppf(self, q: np.ndarray, nu: np.ndarray) -> np.ndarray:
        return stats.t.ppf(0.5 * (1.0 + q), nu)


_half_student_t = _HalfStudentTGen(a=0.0, name="halfstudentt", shapes="nu")


def _truncated_normal(p: Mapping[str, float]) -> Any:
    lower = p.get("lower", -math.inf)
    upper = p.get("upper", math.inf)
    mu, sigma = p["mu"], p["sigma"]
    return stats.truncnorm((lower - mu) / sigma, (upper - mu) / sigma, loc=mu, scale=sigma)


@dataclass(frozen=True)
class DistributionSpec:
    """What the loader knows about one supported distribution.

    Attributes
    ----------
    required : tuple of str
        Parameter names that must be given (PyMC's names).
    optional : tuple of str
        Parameter names that may be given.
    positive : tuple of str
        Parameters that must be > 0.
    ordered : tuple of str, optional
        A (lower, upper) pair that must satisfy lower < upper when both are given.
    at_least_one_of : tuple of str
        At least one of these optional parameters must be given.
    scipy : callable
        Maps the parameter mapping to a frozen ``scipy.stats`` distribution.

    """

    required: tuple[str, ...]
    scipy: Callable[[Mapping[str, float]], Any]
    optional: tuple[str, ...] = ()
    positive: tuple[str, ...] = ()
    ordered: tuple[str, str] | None = None
    at_least_one_of: tuple[str, ...] = ()

    @property
    def allowed(self) -> tuple[str, ...]:
        """All parameter names this distribution accepts."""
        return self.required + self.optional


DISTRIBUTIONS: Mapping[str, DistributionSpec] = FrozenDict(
    {
        "Normal": DistributionSpec(
            ("mu", "sigma"), lambda p: stats.norm(p["mu"], p["sigma"]), positive=("sigma",)
        ),
        "LogNormal": DistributionSpec(
            ("mu", "sigma"),
            lambda p: stats.lognorm(p["sigma"], scale=math.exp(p["mu"])),
            positive=("sigma",),
        ),
        "HalfNormal": DistributionSpec(
            ("sigma",), lambda p: stats.halfnorm(scale=p["sigma"]), positive=("sigma",)
        ),
        "HalfStudentT": DistributionSpec(
            ("nu", "sigma"),
            lambda p: _half_student_t(p["nu"], scale=p["sigma"]),
            positive=("nu", "sigma"),
        ),
        "Exponential": DistributionSpec(
            ("lam",), lambda p: stats.expon(scale=1.0 / p["lam"]), positive=("lam",)
        ),
        "Gamma": DistributionSpec(
            ("alpha", "beta"),
            lambda p: stats.gamma(p["alpha"], scale=1.0 / p["beta"]),
            positive=("alpha", "beta"),
        ),
        "Beta": DistributionSpec(
            ("alpha", "beta"),
            lambda p: stats.beta(p["alpha"], p["beta"]),
            positive=("alpha", "beta"),
        ),
        "Uniform": DistributionSpec(
            ("lower", "upper"),
            lambda p: stats.uniform(loc=p["lower"], scale=p["upper"] - p["lower"]),
            ordered=("lower", "upper"),
        ),
        "StudentT": DistributionSpec(
            ("nu", "mu", "sigma"),
            lambda p: stats.t(p["nu"], loc=p["mu"], scale=p["sigma"]),
            positive=("nu", "sigma"),
        ),
        "TruncatedNormal": DistributionSpec(
            ("mu", "sigma"),
            _truncated_normal,
            optional=("lower", "upper"),
            positive=("sigma",),
            ordered=("lower", "upper"),
            at_least_one_of=("lower", "upper"),
        ),
    }
)
"""Supported distributions, keyed by their PyMC class name."""


def _did_you_mean(word: str, choices: Iterable[str]) -> str:
    """Return ``" (did you mean 'x'?)"`` for the closest choice, or ``""``."""
    choices = list(choices)
    by_case = [c for c in choices if c.lower() == word.lower()]
    close = by_case or difflib.get_close_matches(word, choices, n=1, cutoff=0.6)
    return f" (did you mean '{close[0]}'?)" if close else ""


def _fmt(value: float) -> str:
    return f"{value:.4g}"


# --------------------------------------------------------------------------- Prior


def _param_problems(
    spec: DistributionSpec, name: str, params: Mapping[str, float]
) -> list[Problem]:
    """Check parameter names and values of a distribution."""
    problems: list[Problem] = []
    for key in spec.required:
        if key not in params:
            problems.append((f"params.{key}", f"missing ({name} needs {', '.join(spec.required)})"))
    for key in params:
        if key not in spec.allowed:
            hint = _did_you_mean(key, spec.allowed)
            problems.append(
                (
                    f"params.{key}",
                    f"unexpected parameter for {name}{hint}; it takes {', '.join(spec.allowed)}",
                )
            )
    for key, value in params.items():
        if not math.isfinite(value):
            problems.append((f"params.{key}", f"must be finite, got {value}"))
        elif key in spec.positive and value <= 0:
            problems.append((f"params.{key}", f"must be > 0, got {_fmt(value)}"))
    if spec.at_least_one_of and not any(k in params for k in spec.at_least_one_of):
        problems.append(
            ("params", f"{name} needs at least one of {', '.join(spec.at_least_one_of)}")
        )
    if spec.ordered and all(k in params for k in spec.ordered):
        lo, hi = (params[k] for k in spec.ordered)
        if lo >= hi:
            problems.append(("params", f"lower ({_fmt(lo)}) must be < upper ({_fmt(hi)})"))
    return problems


def _support_problems(prior: "Prior", frozen: Any) -> list[Problem]:
    """Check that the distribution's support lies inside the parameter's declared domain."""
    lower, upper = prior.domain
    support_lo, support_hi = (float(s) for s in frozen.support())
    problems: list[Problem] = []
    if support_lo < lower:
        mass = float(frozen.cdf(lower))
        why = "positive = true" if prior.positive and lower == 0 else f"lower = {_fmt(lower)}"
        problems.append(
            (
                "distribution",
                f"the parameter is declared {why} but {prior.label} puts mass below "
                f"{_fmt(lower)} (P = {mass:.3g}); use a distribution whose support starts at "
                f"{_fmt(lower)} (e.g. LogNormal, HalfNormal, Gamma, TruncatedNormal with lower)",
            )
        )
    if support_hi > upper:
        mass = float(frozen.sf(upper))
        problems.append(
            (
                "distribution",
                f"the parameter is declared upper = {_fmt(upper)} but {prior.label} "
                f"puts mass above it (P = {mass:.3g})",
            )
        )
    return problems


class _Frozen(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True, strict=True)


class Prior(_Frozen):
    """One prior distribution with its unit and source.

    Parameters
    ----------
    distribution : str
        PyMC class name, one of :data:`DISTRIBUTIONS`.
    params : mapping of str to float
        The distribution's parameters, by PyMC's names (e.g. ``mu``, ``sigma`` for ``LogNormal``,
        where ``mu`` is the log of the median).
    unit : str
        Unit of the parameter in natural scale (``"1/day"``, ``"mL"``, ``"1"`` for unitless).
    source : str
        A row of ``LITERATURE.md`` / ``datasets/published_results.csv``, or ``"rationale: ..."``.
    rationale : str, optional
        The arithmetic from the published number to the prior, or the reasoning.
    positive : bool
        The parameter must be > 0; the prior's support must not extend below 0.
    lower, upper : float, optional
        Declared domain of the parameter; the prior's support must lie inside it.

    Raises
    ------
    pydantic.ValidationError
        If the prior is malformed (use :meth:`PriorSet.load` for file-level messages).

    """

    distribution: str
    params: Mapping[str, float]
    unit: str
    source: str
    rationale: str | None = None
    positive: bool = False
    lower: float | None = None
    upper: float | None = None

    @field_validator("params", mode="after")
    @classmethod
    def _read_only_params(cls, value: Mapping[str, float]) -> Mapping[str, float]:
        return FrozenDict(value)

    @field_serializer("params")
    def _serialize_params(self, value: Mapping[str, float]) -> dict[str, float]:
        return dict(value)

    @model_validator(mode="after")
    def _validate(self) -> Self:
        problems = self._problems()
        if problems:
            summary = "; ".join(f"{path}: {msg}" for path, msg in problems)
            raise PydanticCustomError(
                "prior_problems", "{summary}", {"summary": summary, "problems": problems}
            )
        return self

    def _problems(self) -> list[Problem]:
        problems = [
            (key, "must not be blank")
            for key in ("unit", "source")
            if not getattr(self, key).strip()
        ]
        problems += self._domain_problems()
        spec = DISTRIBUTIONS.get(self.distribution)
        if spec is None:
            hint = _did_you_mean(self.distribution, DISTRIBUTIONS) or (
                f"; supported: {', '.join(DISTRIBUTIONS)}"
            )
            return [
                *problems,
                ("distribution", f"unknown distribution '{self.distribution}'{hint}"),
            ]
        param_problems = _param_problems(spec, self.distribution, self.params)
        if param_problems or problems:
            return problems + param_problems
        return _support_problems(self, self.to_scipy())

    def _domain_problems(self) -> list[Problem]:
        problems: list[Problem] = []
        for key in ("lower", "upper"):
            value = getattr(self, key)
            if value is not None and not math.isfinite(value):
                problems.append((key, f"must be finite, got {value}"))
        lower, upper = self.domain
        if lower >= upper:
            what = "0 (positive = true)" if self.lower is None else _fmt(lower)
            problems.append(("upper", f"lower ({what}) must be < upper ({_fmt(upper)})"))
        return problems

    @property
    def domain(self) -> tuple[float, float]:
        """The declared (lower, upper) domain of the parameter, infinite where undeclared."""
        lower = -math.inf if self.lower is None else self.lower
        if self.positive:
            lower = max(lower, 0.0)
        return lower, (math.inf if self.upper is None else self.upper)

    @property
    def label(self) -> str:
        """Short description, e.g. ``"LogNormal(mu=-3.4, sigma=0.8)"``."""
        args = ", ".join(f"{k}={_fmt(v)}" for k, v in self.params.items())
        return f"{self.distribution}({args})"

    def to_scipy(self) -> Any:
        """Return the prior as a frozen ``scipy.stats`` distribution.

        Returns
        -------
        scipy.stats.rv_frozen
            Same distribution as :meth:`to_pymc`, for quantiles, probabilities and draws outside
            a PyMC graph.

        """
        return DISTRIBUTIONS[self.distribution].scipy(self.params)

    def to_pymc(self, name: str, dims: str | Sequence[str] | None = None, model: Any = None) -> Any:
        """Create the PyMC random variable of this prior.

        Parameters
        ----------
        name : str
            Variable name in the model.
        dims : str or sequence of str, optional
            Model dims (coords must exist in the model).
        model : pymc.Model, optional
            Model to add the variable to; default: the model on the context stack.

        Returns
        -------
        pytensor.tensor.TensorVariable
            The random variable.

        Raises
        ------
        TypeError
            If no model is given and none is on the context stack.

        """
        import pymc as pm

        if model is None:
            try:
                model = pm.modelcontext(None)
            except TypeError as err:
                raise TypeError(
                    "Prior.to_pymc needs a model: pass model= or call it inside `with pm.Model():`"
                ) from err
        with model:
            return getattr(pm, self.distribution)(name, **dict(self.params), dims=dims)


class RandomEffect(_Frozen):
    """Between-subject variability of one parameter, non-centred.

    ``kind = "lognormal"``: theta_i = theta * exp(omega * z_i); ``kind = "normal"`` (for parameters
    already on a log scale, e.g. a log burden): theta_i = theta + omega * z_i; z_i ~ N(0, 1).

    Parameters
    ----------
    kind : {"lognormal", "normal"}
        How the random effect enters.
    omega : Prior
        Prior of the between-subject SD (on the log scale for ``"lognormal"``); support >= 0.

    """

    kind: Literal["lognormal", "normal"] = "lognormal"
    omega: Prior

    @model_validator(mode="after")
    def _omega_nonnegative(self) -> Self:
        support_lo = float(self.omega.to_scipy().support()[0])
        if support_lo < 0:
            msg = (
                f"omega is an SD; {self.omega.label} puts mass below 0 (use HalfNormal, "
                "HalfStudentT, Exponential, Gamma or LogNormal)"
            )
            raise PydanticCustomError(
                "prior_problems",
                "{summary}",
                {"summary": msg, "problems": [("omega.distribution", msg)]},
            )
        return self


class ParameterPrior(Prior):
    """The prior of one model parameter in a :class:`PriorSet`: a :class:`Prior` plus hierarchy.

    Parameters
    ----------
    random_effect : RandomEffect, optional
        Present if the parameter varies between subjects.
    offset_from : str, optional
        If given, the prior is on an offset added to a data-derived reference named here (e.g.
        ``"first_log_burden_observation"``), not on the parameter itself.
    **prior_fields
        The fields of :class:`Prior`.

    """

    random_effect: RandomEffect | None = None
    offset_from: str | None = None

    def _problems(self) -> list[Problem]:
        problems = super()._problems()
        if self.random_effect is not None and self.random_effect.kind == "lognormal":
            if not problems and self.to_scipy().support()[0] < 0:
                problems.append(
                    (
                        "random_effect.kind",
                        "a lognormal random effect needs a "
                        'positive parameter; use kind = "normal" or a positive prior',
                    )
                )
        return problems

    @property
    def prior(self) -> Prior:
        """Return the population prior as a plain :class:`Prior`."""
        return Prior(**self.model_dump(include=set(Prior.model_fields)))


def omega_name(parameter: str) -> str:
    """Return the name of the random-effect SD of ``parameter`` (``"omega_<parameter>"``)."""
    return f"{OMEGA_PREFIX}{parameter}"


# --------------------------------------------------------------------------- PriorSet


class PriorSet(_Frozen):
    """The priors of one model family, with sources and hierarchy information.

    Parameters
    ----------
    name : str
        Short identifier, e.g. ``"cf_il2_mouse"``.
    description : str
        What the set is for.
    model_family : str
        The model family it serves, e.g. ``"cf_il2"``.
    parameters : mapping of str to ParameterPrior
        Priors by parameter name (valid Python identifiers; used as PyMC variable names).

    """

    name: str
    description: str
    model_family: str
    parameters: Mapping[ParameterName, ParameterPrior]

    @field_validator("parameters", mode="after")
    @classmethod
    def _read_only_parameters(cls, value: Mapping[str, Any]) -> Mapping[str, ParameterPrior]:
        return FrozenDict(value)

    @field_serializer("parameters")
    def _serialize_parameters(self, value: Mapping[str, ParameterPrior]) -> dict[str, Any]:
        return {k: v.model_dump(mode="json", exclude_none=True) for k, v in value.items()}

    # ---- construction

    @classmethod
    def load(cls, path: str | Path, required: Iterable[str] | None = None) -> "PriorSet":
        """Read and validate a prior set from a TOML file.

        Parameters
        ----------
        path : str or Path
            The TOML file.
        required : iterable of str, optional
            Parameter names the model needs; a missing one is an error.

        Returns
        -------
        PriorSet
            The validated prior set.

        Raises
        ------
        PriorError
            Listing every problem, each naming the file and key path.

        """
        origin = str(path)
        try:
            data = tomllib.loads(Path(path).read_text(encoding="utf-8"))
        except OSError as err:
            raise PriorError(origin, [f"{origin}: cannot read: {err.strerror or err}"]) from err
        except tomllib.TOMLDecodeError as err:
            raise PriorError(origin, [f"{origin}: invalid TOML: {err}"]) from err
        return cls.from_dict(data, required=required, origin=origin)

    @classmethod
    def from_dict(
        cls,
        data: Mapping[str, Any],
        required: Iterable[str] | None = None,
        origin: str = "<dict>",
    ) -> "PriorSet":
        """Validate a prior set given as a mapping (the TOML layout; inverse of :meth:`to_dict`).

        Parameters
        ----------
        data : mapping
            The prior set.
        required : iterable of str, optional
            Parameter names the model needs.
        origin : str
            Where the data came from, used in error messages.

        Returns
        -------
        PriorSet
            The validated prior set.

        Raises
        ------
        PriorError
            Listing every problem found.

        """
        given = data.get("parameters") if isinstance(data, Mapping) else None
        names = list(given) if isinstance(given, Mapping) else []
        problems: list[Problem] = []
        prior_set = None
        try:
            prior_set = cls.model_validate(dict(data) if isinstance(data, Mapping) else data)
        except ValidationError as err:
            problems += _validation_problems(err) + _partial_prior_problems(given)
        problems += _missing_problems(names, required or ())
        if problems or prior_set is None:
            ordered = sorted(dict.fromkeys(problems), key=lambda p: _file_order(p[0], names))
            raise PriorError(origin, [f"{origin}: {path}: {msg}" for path, msg in ordered])
        return prior_set

    @classmethod
    def from_json(cls, text: str, required: Iterable[str] | None = None) -> "PriorSet":
        """Inverse of :meth:`to_json` (e.g. a prior set stored in DataTree attributes)."""
        return cls.from_dict(json.loads(text), required=required, origin="<json>")

    def require(self, names: Iterable[str]) -> None:
        """Raise :class:`PriorError` if any of ``names`` has no prior in this set."""
        problems = _missing_problems(list(self.parameters), names)
        if problems:
            raise PriorError(self.name, [f"{self.name}: {p}: {m}" for p, m in problems])

    # ---- access

    def __getitem__(self, name: str) -> ParameterPrior:
        return self.parameters[name]

    def __contains__(self, name: object) -> bool:
        return name in self.parameters

    @property
    def random_effects(self) -> dict[str, RandomEffect]:
        """Random effects by parameter name, for the parameters that have one."""
        return {k: p.random_effect for k, p in self.parameters.items() if p.random_effect}

    # ---- export

    def to_dict(self) -> dict[str, Any]:
        """Return a JSON- and TOML-compatible dict (the file layout; no ``None`` values)."""
        return self.model_dump(mode="json", exclude_none=True)

    def to_json(self) -> str:
        """Return :meth:`to_dict` as a JSON string (for DataTree attributes)."""
        return json.dumps(self.to_dict(), sort_keys=False)

    def sample(self, n: int, seed: int | None = None) -> dict[str, np.ndarray]:
        """Draw from every prior with scipy, for prior predictive checks.

        Each parameter gets its own stream derived from ``seed`` and its name, so adding or
        removing a parameter does not change the draws of the others.

        Parameters
        ----------
        n : int
            Number of draws.
        seed : int, optional
            Seed; ``None`` for fresh entropy.

        Returns
        -------
        dict of str to numpy.ndarray
            Draws of shape ``(n,)`` for each parameter and, under ``omega_<name>``, for each
            random-effect SD.

        """
        root = np.random.SeedSequence(seed)
        draws: dict[str, np.ndarray] = {}
        for key, prior in self._all_priors():
            stream = np.random.SeedSequence(root.entropy, spawn_key=(zlib.crc32(key.encode()),))
            draws[key] = np.asarray(
                prior.to_scipy().rvs(size=n, random_state=np.random.default_rng(stream))
            )
        return draws

    def table(self) -> pd.DataFrame:
        """Summarise the priors for reports.

        Returns
        -------
        pandas.DataFrame
            One row per parameter and per random-effect SD (``omega_<name>``) with columns
            parameter, distribution, parameters, median, q05, q95 (natural units), unit,
            random_effect, source.

        """
        rows = []
        for key, prior in self._all_priors():
            q05, median, q95 = prior.to_scipy().ppf([0.05, 0.5, 0.95])
            effect = getattr(prior, "random_effect", None)
            rows.append(
                {
                    "parameter": key,
                    "distribution": prior.distribution,
                    "parameters": ", ".join(f"{k}={_fmt(v)}" for k, v in prior.params.items()),
                    "median": float(median),
                    "q05": float(q05),
                    "q95": float(q95),
                    "unit": prior.unit,
                    "random_effect": effect.kind if effect else "",
                    "source": prior.source,
                }
            )
        return pd.DataFrame(rows)

    def _all_priors(self) -> Iterator[tuple[str, Prior]]:
        for key, prior in self.parameters.items():
            yield key, prior
            if prior.random_effect is not None:
                yield omega_name(key), prior.random_effect.omega


# --------------------------------------------------------------------------- error formatting


def _all_field_names() -> set[str]:
    names: set[str] = set()
    for model in (PriorSet, ParameterPrior, RandomEffect):
        names |= set(model.model_fields)
    return names


def _validation_problems(err: ValidationError) -> list[Problem]:
    """Turn pydantic errors into (key path, message) problems."""
    problems: list[Problem] = []
    for error in err.errors():
        loc = ".".join(str(part) for part in error["loc"])
        kind = error["type"]
        if kind == "prior_problems":
            for sub, msg in error["ctx"]["problems"]:
                problems.append((f"{loc}.{sub}" if loc else sub, msg))
        elif kind == "missing":
            problems.append((loc, "missing required key"))
        elif kind == "string_pattern_mismatch" and error["loc"][-1] == "[key]":
            problems.append((loc.removesuffix(".[key]"), "parameter names must be identifiers"))
        elif kind == "extra_forbidden":
            key = str(error["loc"][-1])
            problems.append((loc, f"unknown key{_did_you_mean(key, _all_field_names())}"))
        else:
            problems.append((loc or "<top>", f"{error['msg']} (got {error['input']!r})"))
    return problems


def _file_order(path: str, names: Sequence[str]) -> int:
    """Sort key that lists problems in the order of the parameters in the file."""
    parts = path.split(".")
    if parts[0] == "parameters" and len(parts) > 1 and parts[1] in names:
        return 1 + names.index(parts[1])
    return 0 if parts[0] != "parameters" else len(names) + 1


def _partial_prior_problems(parameters: Any) -> list[Problem]:
    """Check distribution and parameters of entries whose other keys failed validation.

    Pydantic skips a model's own checks when a field fails; re-validating just the prior fields
    (with placeholders for a missing unit or source) still reports e.g. a bad ``sigma`` together
    with a misspelt key, so one run lists every problem.
    """
    if not isinstance(parameters, Mapping):
        return []
    problems: list[Problem] = []
    for name, entry in parameters.items():
        if not isinstance(entry, Mapping) or not {"distribution", "params"} <= entry.keys():
            continue
        fields = {k: v for k, v in entry.items() if k in Prior.model_fields}
        fields.setdefault("unit", "?")
        fields.setdefault("source", "?")
        try:
            Prior.model_validate(fields)
        except ValidationError as err:
            problems += [(f"parameters.{name}.{p}", m) for p, m in _validation_problems(err)]
    return problems


def _missing_problems(given: Sequence[str], required: Iterable[str]) -> list[Problem]:
    problems: list[Problem] = []
    for name in required:
        if name not in given:
            hint = _did_you_mean(name, given).replace("did you mean", "is it misspelt as")
            problems.append((f"parameters.{name}", f"missing: required by the model{hint}"))
    return problems


def shipped_prior_sets() -> dict[str, Path]:
    """Return the prior sets shipped in the repository's ``priors/`` folder, by name.

    Returns
    -------
    dict of str to Path
        File stem -> path; empty when the package runs outside a source checkout.

    """
    if not _PRIORS_DIR.is_dir():
        return {}
    return {path.stem: path for path in sorted(_PRIORS_DIR.glob("*.toml"))}
