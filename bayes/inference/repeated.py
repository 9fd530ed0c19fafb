"""Many fits of one model: compile once, then simulate and refit with new data.

A PyMC model whose observations live in ``pm.Data`` containers is compiled once for nutpie
(:class:`ReusableSampler`) and refitted to any data of the same shape with
``compiled.with_data`` (no recompilation: compiling an ODE model takes minutes, a fit seconds).
:class:`ForwardSimulator` draws the model's free variables from their priors (some of them
optionally fixed) and observations given them, through one compiled PyTensor function whose
random generators are reseeded per call, so a replicate's simulation depends on its seed only.

Model-agnostic: used by simulation-based calibration, knows nothing about the model.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Mapping, Sequence

import numpy as np
import pymc as pm
import xarray as xr
from pymc.pytensorf import reseed_rngs
from pymc.sampling.forward import compile_forward_sampling_function
from pytensor.compile.sharedvalue import SharedVariable
from pytensor.tensor.random.type import RandomGeneratorType

from bayes.inference.diagnostics import Diagnostics, GateThresholds, check_gate
from bayes.inference.sampling import MassMatrix, nutpie_options

log = logging.getLogger(__name__)


class ForwardSimulator:
    """Draw free variables from the prior (some fixed) and observations, from one compiled graph.

    Parameters
    ----------
    model : pymc.Model
        The model to simulate from.
    fixed : mapping
        Free-variable name -> value held fixed (``do``-style: variables that depend on it are
        drawn given it); the others are drawn from their priors.

    Raises
    ------
    KeyError
        If a fixed name is not a free variable of the model.
    """

    def __init__(self, model: pm.Model, fixed: Mapping[str, np.ndarray] | None = None) -> None:
        fixed = dict(fixed or {})
        free_names = [rv.name for rv in model.free_RVs]
        unknown = [name for name in fixed if name not in free_names]
        if unknown:
            raise KeyError(f"not free variables of the model: {unknown}; known: {free_names}")
        self.fixed = {name: np.asarray(value, dtype=float) for name, value in fixed.items()}
        self.drawn = [rv for rv in model.free_RVs if rv.name not in fixed]
        self.observed = list(model.observed_RVs)
        start = time.perf_counter()
        self._function, resampled = compile_forward_sampling_function(
            outputs=[*self.drawn, *self.observed],
            vars_in_trace=[model[name] for name in fixed],
            basic_rvs=model.basic_RVs,
            constant_data=_current_data(model),
            allow_input_downcast=True,
            accept_inplace=True,
        )
        ignored = sorted(rv.name for rv in resampled if rv.name in fixed)
        if ignored:  # a fixed value must never be silently replaced by a prior draw
            raise RuntimeError(f"fixed variables would be redrawn: {ignored}")
        self.compile_seconds = time.perf_counter() - start
        self._rngs = [
            v for v in self._function.get_shared() if isinstance(v.type, RandomGeneratorType)
        ]
        self._inputs = [i.variable.name for i in self._function.maker.inputs if not i.shared]

    def draw(self, seed: int) -> tuple[dict[str, np.ndarray], dict[str, np.ndarray]]:
        """Return ``(parameters, observations)`` for one seed.

        ``parameters`` holds every free variable (fixed ones included) by name; ``observations``
        every observed variable's simulated values (as :func:`pymc.draw` returns them).
        """
        reseed_rngs(self._rngs, seed)
        inputs = {name: self.fixed[name] for name in self._inputs}
        values = self._function(**inputs)
        n_drawn = len(self.drawn)
        parameters = {
            rv.name: np.asarray(v) for rv, v in zip(self.drawn, values[:n_drawn], strict=True)
        }
        parameters.update(self.fixed)
        observations = {
            rv.name: np.asarray(v) for rv, v in zip(self.observed, values[n_drawn:], strict=True)
        }
        return parameters, observations


def _current_data(model: pm.Model) -> dict:
    """Return data containers and dimension lengths at their current values (not volatile)."""
    shared = [*model.data_vars, *model.dim_lengths.values()]
    return {v: v.get_value() for v in shared if isinstance(v, SharedVariable)}


class ReusableSampler:
    """A model compiled once for nutpie and refitted to new values of its data containers.

    Parameters
    ----------
    model : pymc.Model
        Model whose data enter through ``pm.Data`` containers.
    var_names : sequence of str, optional
        Variables kept in the posterior (default: the free variables, so that deterministics,
        e.g. ODE predictions, are not recomputed for every draw).
    """

    def __init__(self, model: pm.Model, var_names: Sequence[str] | None = None) -> None:
        import nutpie

        self.var_names = list(var_names or [rv.name for rv in model.free_RVs])
        start, cpu = time.perf_counter(), time.process_time()
        self._compiled = nutpie.compile_pymc_model(model, backend="numba", var_names=self.var_names)
        self.compile_seconds = time.perf_counter() - start
        self.compile_cpu_seconds = time.process_time() - cpu
        log.info("compiled the model for nutpie in %.1f s", self.compile_seconds)

    def sample(
        self,
        data: Mapping[str, np.ndarray],
        *,
        draws: int,
        tune: int,
        chains: int,
        seed: int,
        target_accept: float = 0.8,
        cores: int = 1,
        mass_matrix: MassMatrix = "diag",
        eigval_cutoff: float = 100.0,
    ) -> xr.DataTree:
        """Fit the compiled model to ``data`` (container name -> values) and return the draws.

        ``mass_matrix`` and ``eigval_cutoff`` are as in :func:`bayes.inference.sampling.sample`.
        """
        import nutpie

        compiled = self._compiled.with_data(**data)
        options = nutpie_options(
            draws, tune, chains, seed, cores, target_accept, mass_matrix, eigval_cutoff
        )
        return nutpie.sample(compiled, **options)


def fit_diagnostics(
    tree: xr.DataTree, thresholds: GateThresholds, var_names: Sequence[str]
) -> Diagnostics:
    """Apply the convergence gate; a single chain is split in halves so R-hat is defined.

    Split R-hat compares the two halves of each chain (Vehtari et al. 2021); with one chain
    ArviZ returns NaN, so the halves are passed as two chains (the same statistic: it detects
    a chain that has not reached stationarity).
    """
    posterior = tree["posterior"].to_dataset()[list(var_names)]
    stats = tree["sample_stats"].to_dataset()
    if posterior.sizes["chain"] == 1 and posterior.sizes["draw"] >= 4:
        half = posterior.sizes["draw"] // 2
        posterior, stats = (
            _split_chain(d, half) for d in (posterior, stats[["diverging", "energy"]])
        )
    split = xr.DataTree.from_dict({"posterior": posterior, "sample_stats": stats})
    return check_gate(split, thresholds, list(var_names))


def _split_chain(dataset: xr.Dataset, half: int) -> xr.Dataset:
    first = dataset.isel(chain=0, draw=slice(0, half))
    second = dataset.isel(chain=0, draw=slice(half, 2 * half))
    second = second.assign_coords(draw=first["draw"].values)
    return xr.concat([first, second], dim="chain").assign_coords(chain=[0, 1])
