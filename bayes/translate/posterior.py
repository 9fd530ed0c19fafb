"""The mouse posterior as flat draws: from a run's ``results.nc``, a run folder, or a prior set.

A fitted run (``cytofactory run``) writes ``RUN_DIR/results.nc``, an ``xarray.DataTree`` whose
``posterior`` group holds the population parameters named as in the prior file (``rho``,
``k_sys``, ...; dims ``chain, draw``) and the random-effect SDs ``omega_<name>``. The translation
uses population values and SDs only (a new patient is a new subject), stacked over chains into
one ``draw`` index. A prior-set TOML gives prior draws instead (a translation before any fit, said
loudly in the outputs).
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import xarray as xr

from bayes.data.errors import IssueCollector
from bayes.models.pk import local_loss_rate
from bayes.models.priors import PriorSet, omega_name

__all__ = [
    "OPTIONAL_PARAMETERS",
    "REQUIRED_PARAMETERS",
    "MousePosterior",
    "load_posterior",
    "prior_results_tree",
]

REQUIRED_PARAMETERS = (
    "rho",
    "k_fade",
    "k_sys",
    "v_sys",
    "v_local",
    "local_systemic_ratio",
    "absorbed_fraction",
    "ec50",
    "hill",
    "k_effect",
    "kill_rate",
)
"""Population parameters the translation needs from every posterior (``k_local_loss`` is
derived from them, :func:`bayes.models.pk.local_loss_rate`)."""
OPTIONAL_PARAMETERS = (
    "pd1_enhancement",
    "early_loss_fraction",
    "k_early",
    omega_name("rho"),
    omega_name("kill_rate"),
)
"""Used when present: anti-PD-1 synergy, biphasic release, mouse between-subject SDs."""


@dataclass(frozen=True)
class MousePosterior:
    """Flat posterior draws of the mouse population parameters.

    Attributes
    ----------
    values : dict of str to numpy.ndarray
        Each of shape ``(draw,)``.
    path : str
        Where the draws came from.
    kind : {"posterior", "prior"}
        Fitted posterior or prior draws.
    n_available : int
        Draws in the file before thinning.
    """

    values: dict[str, np.ndarray]
    path: str
    kind: str
    n_available: int

    @property
    def n_draws(self) -> int:
        """Number of draws used."""
        return len(next(iter(self.values.values())))

    def median(self) -> dict[str, float]:
        """Return the median of each parameter."""
        return {name: float(np.median(v)) for name, v in self.values.items()}


def load_posterior(path: str | Path, draws: int | None = None) -> MousePosterior:
    """Load mouse draws from ``results.nc``, a run folder holding it, or a prior-set TOML.

    Parameters
    ----------
    path : str or Path
        A NetCDF DataTree with a ``posterior`` group, a folder containing ``results.nc``, or a
        prior set (``.toml``; prior draws, for translation before a fit).
    draws : int, optional
        Use at most this many draws, evenly spaced over the stacked chains (all by default;
        a prior set gives exactly this many, default 1000).

    Returns
    -------
    MousePosterior

    Raises
    ------
    bayes.data.DataError
        If the file is missing, has no ``posterior`` group, or lacks required parameters (each
        named), or holds non-finite or non-positive values.
    """
    path = Path(path)
    if path.suffix == ".toml":
        return _from_prior_set(path, draws or 1000)
    if path.is_dir():
        path = path / "results.nc"
    issues = IssueCollector()
    if not path.is_file():
        issues.add(
            str(path),
            None,
            None,
            "posterior file not found (expected a run folder "
            "with results.nc, a results.nc file or a prior-set .toml)",
        )
        issues.raise_if_any()
    try:
        tree = xr.open_datatree(path, engine="netcdf4")
    except (OSError, ValueError) as exc:
        issues.add(str(path), None, None, f"cannot read as a NetCDF DataTree: {exc}")
        issues.raise_if_any()
    with tree:
        if "posterior" not in tree.children:
            issues.add(
                str(path),
                None,
                "posterior",
                f"no 'posterior' group (groups: {sorted(tree.children)})",
            )
            issues.raise_if_any()
        posterior = tree["posterior"].to_dataset().load()
    values, n_available = _flatten(posterior, str(path), issues)
    issues.raise_if_any()
    values = _with_local_loss(_thin(values, draws))
    return MousePosterior(values, str(path), "posterior", n_available)


def _with_local_loss(values: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
    """Add ``k_local_loss`` (1/day), derived per draw from the absorbed fraction."""
    return {**values, "k_local_loss": np.asarray(local_loss_rate(values), dtype=float)}


def _flatten(posterior: xr.Dataset, label: str, issues: IssueCollector):
    missing = [name for name in REQUIRED_PARAMETERS if name not in posterior]
    for name in missing:
        issues.add(label, None, f"posterior.{name}", "required population parameter missing")
    values: dict[str, np.ndarray] = {}
    n_available = 0
    for name in (*REQUIRED_PARAMETERS, *OPTIONAL_PARAMETERS):
        if name not in posterior:
            continue
        variable = posterior[name]
        extra = [d for d in variable.dims if d not in ("chain", "draw")]
        if extra:
            issues.add(
                label,
                None,
                f"posterior.{name}",
                f"expected dims (chain, draw), got {variable.dims}",
            )
            continue
        flat = np.asarray(variable.values, dtype=float).reshape(-1)
        bad = ~np.isfinite(flat) | (flat < 0) | ((flat == 0) & (name in REQUIRED_PARAMETERS))
        if bad.any():
            issues.add(
                label,
                None,
                f"posterior.{name}",
                f"{int(bad.sum())} draw(s) non-finite or not positive",
            )
            continue
        values[name] = flat
        n_available = flat.size
    return values, n_available


def _thin(values: dict[str, np.ndarray], draws: int | None) -> dict[str, np.ndarray]:
    n = len(next(iter(values.values())))
    if draws is None or draws >= n:
        return values
    index = np.unique(np.linspace(0, n - 1, draws).round().astype(int))
    return {name: v[index] for name, v in values.items()}


def _from_prior_set(path: Path, draws: int) -> MousePosterior:
    warnings.warn(
        f"{path}: translating PRIOR draws, not a fitted posterior", UserWarning, stacklevel=3
    )
    priors = PriorSet.load(path, required=REQUIRED_PARAMETERS)
    sample = priors.sample(draws, seed=0)
    wanted = (*REQUIRED_PARAMETERS, *OPTIONAL_PARAMETERS)
    values = {name: np.asarray(sample[name], float) for name in wanted if name in sample}
    return MousePosterior(_with_local_loss(values), str(path), "prior", draws)


def prior_results_tree(
    priors_path: str | Path, chains: int = 2, draws: int = 250, seed: int = 0
) -> xr.DataTree:
    """Build a ``results.nc``-like DataTree whose ``posterior`` group holds prior draws.

    For tests and demonstrations before fitted run folders exist: every parameter and
    random-effect SD of the prior set, dims ``(chain, draw)``.

    Parameters
    ----------
    priors_path : str or Path
        Prior set TOML (e.g. ``priors/cf_il2_mouse.toml``).
    chains, draws : int
        Shape of the fake posterior.
    seed : int
        Seed of :meth:`PriorSet.sample`.

    Returns
    -------
    xarray.DataTree
    """
    sample = PriorSet.load(priors_path).sample(chains * draws, seed=seed)
    posterior = xr.Dataset(
        {
            name: (("chain", "draw"), np.asarray(value, float).reshape(chains, draws))
            for name, value in sample.items()
        },
        coords={"chain": np.arange(chains), "draw": np.arange(draws)},
        attrs={"note": f"prior draws from {priors_path}, standing in for a fitted posterior"},
    )
    return xr.DataTree.from_dict({"/posterior": posterior})
