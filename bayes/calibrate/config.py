"""Settings of a calibration run and the ``--fixed PARAMS.toml`` file.

A fixed-parameter file holds values of the fit model's free variables (population parameters,
``omega_<name>``, residual SDs; per-subject ``z_<name>`` as lists); every free variable not
given is drawn from its prior in each replicate::

    description = "Can 10 subjects with this sampling schedule estimate CL?"
    source = "typical adult values (rationale: ...)"

    [parameters]
    cl = 240.0        # L/day
    omega_cl = 0.3
"""

from __future__ import annotations

import difflib
import hashlib
import json
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Annotated, Any

import numpy as np
import pymc as pm
from pydantic import BaseModel, ConfigDict, Field

from bayes import __version__
from bayes.data.errors import IssueCollector
from bayes.data.nonmem import load_toml_config
from bayes.inference.sbc import CENTRAL_LEVELS, DEFAULT_ALPHA, DEFAULT_RANK_DRAWS

ParameterValue = float | list[float]


class CalibrationInputError(ValueError):
    """Inputs that cannot be calibrated as given (exit code 2)."""


class FixedParameters(BaseModel):
    """Schema of a ``--fixed`` TOML file."""

    model_config = ConfigDict(extra="forbid")

    description: str = ""
    source: str = ""
    parameters: Annotated[dict[str, ParameterValue], Field(min_length=1)]


def load_fixed(path: str | Path, model: pm.Model) -> dict[str, Any]:
    """Read a fixed-parameter file and check it against the fit model.

    Parameters
    ----------
    path : path
        The TOML file.
    model : pymc.Model
        The fit model (its free variables, shapes and supports).

    Returns
    -------
    dict
        Name -> value (float or list), in file order.

    Raises
    ------
    bayes.data.DataError
        Naming the file and the key of every unknown name, wrong shape or value outside the
        prior's support.
    """
    parsed = load_toml_config(path, FixedParameters)
    issues = IssueCollector()
    free = {rv.name: rv for rv in model.free_RVs}
    for name, value in parsed.parameters.items():
        key = f"parameters.{name}"
        if name not in free:
            close = difflib.get_close_matches(name, list(free), n=1)
            hint = f" (did you mean {close[0]!r}?)" if close else ""
            issues.add(
                str(path),
                None,
                key,
                f"not a free parameter of the model{hint}; free parameters: {', '.join(free)}",
            )
            continue
        problem = _value_problem(free[name], np.asarray(value, dtype=float))
        if problem:
            issues.add(str(path), None, key, problem)
    issues.raise_if_any()
    return dict(parsed.parameters)


def _value_problem(rv, value: np.ndarray) -> str | None:
    shape = tuple(int(s) for s in rv.shape.eval())
    if value.shape != shape:
        return f"expected shape {shape or 'scalar'}, got {value.shape or 'scalar'}"
    if not np.all(np.isfinite(value)):
        return "values must be finite"
    try:
        logp = pm.logp(rv, value).eval()
    except Exception:  # a variable whose prior depends on others: checked when simulating
        return None
    if not np.all(np.isfinite(logp)):
        return "value outside the support of its prior"
    return None


@dataclass(frozen=True)
class CalibrationSettings:
    """Everything a replicate depends on (besides its index).

    Parameters
    ----------
    workflow : str
        Absolute path of the workflow TOML.
    seed : int
        Master seed; replicate ``i`` uses ``SeedSequence(seed, spawn_key=(i,))``.
    draws, tune, chains : int
        Sampler settings per fit (the workflow's unless overridden).
    target_accept : float
        NUTS target acceptance.
    mass_matrix, eigval_cutoff : str, float
        nutpie mass-matrix adaptation (the workflow's ``sampler`` settings).
    rank_draws : int
        ``L``: thinned posterior draws per rank.
    max_rhat : float
        A fit with a larger split R-hat counts as failed.
    max_divergences : int
        A fit with more divergent transitions counts as failed.
    min_bfmi : float
        A fit with a smaller E-BFMI counts as failed.
    fixed : dict
        Free variables held at given values (``--fixed``); empty for SBC.
    fixed_file : str or None
        Where ``fixed`` came from.
    simulation_priors : str or None
        Absolute path of a prior set to simulate from instead of the workflow's.
    levels : tuple of float
        Central interval probabilities of the coverage table.
    alpha : float
        Family-wise false-alarm rate of the uniformity and coverage flags.
    overrides : dict
        Sampler settings given on the command line (recorded in the summary).
    """

    workflow: str
    seed: int
    draws: int
    tune: int
    chains: int
    target_accept: float
    mass_matrix: str = "diag"
    eigval_cutoff: float = 100.0
    rank_draws: int = DEFAULT_RANK_DRAWS
    max_rhat: float = 1.01
    max_divergences: int = 0
    min_bfmi: float = 0.3
    fixed: dict[str, Any] = field(default_factory=dict)
    fixed_file: str | None = None
    simulation_priors: str | None = None
    levels: tuple[float, ...] = CENTRAL_LEVELS
    alpha: float = DEFAULT_ALPHA
    overrides: dict[str, Any] = field(default_factory=dict)

    def key(self) -> str:
        """Return a digest of the settings (worker-side cache key)."""
        return hashlib.sha256(json.dumps(asdict(self), sort_keys=True).encode()).hexdigest()

    def replicate_seeds(self, index: int) -> tuple[int, int]:
        """Return the (simulation, fit) seeds of replicate ``index`` (from seed and index only)."""
        sequence = np.random.SeedSequence(self.seed, spawn_key=(index,))
        simulation, fit = sequence.generate_state(2, dtype=np.uint32)
        return int(simulation), int(fit)

    @property
    def mode(self) -> str:
        """``"sbc"`` (everything from the prior) or ``"recovery"`` (``--fixed``)."""
        return "recovery" if self.fixed else "sbc"

    def fingerprint(self, input_hashes: dict[str, str]) -> dict[str, Any]:
        """Return what the replicates depend on: settings, input file hashes, package version.

        File paths are left out (their contents are in ``input_hashes``), so a calibration
        resumes from another checkout or working directory.
        """
        settings = asdict(self)
        for not_a_result_input in ("overrides", "workflow", "fixed_file", "simulation_priors"):
            settings.pop(not_a_result_input)  # a note, or a path whose content is hashed
        return {"settings": settings, "inputs": input_hashes, "version": __version__}
