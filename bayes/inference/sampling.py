"""Sampling any PyMC model: nutpie by default, PyMC's NUTS, numpyro or blackjax when installed.

The pointwise log-likelihood (for LOO) is added with :func:`pymc.compute_log_likelihood`. How long
each phase took is stored in the ``sample_stats`` attributes (``compile_seconds``,
``tune_seconds``, ``draw_seconds``, ``sampling_seconds``, ``log_likelihood_seconds``); with nutpie
the tune/draw split is measured per chain from its progress reports (chain-seconds, summed over
chains, since chains run in parallel on ``cores`` cores).
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from typing import Any, Literal

import pymc as pm
import xarray as xr
from pytensor.graph.replace import graph_replace
from pytensor.tensor.variable import TensorVariable

Sampler = Literal["nutpie", "pymc", "numpyro", "blackjax"]
MassMatrix = Literal["diag", "low_rank"]
ProgressCallback = Callable[[str, int, int], None]
"""``progress(phase, done, total)``: called during sampling with draws done over all chains."""

log = logging.getLogger(__name__)


def sample(
    model: pm.Model,
    draws: int = 1000,
    tune: int = 1000,
    chains: int = 4,
    seed: int = 0,
    target_accept: float = 0.8,
    sampler: Sampler = "nutpie",
    progressbar: bool = True,
    cores: int | None = None,
    progress: ProgressCallback | None = None,
    log_likelihood: bool = True,
    var_names: list[str] | None = None,
    mass_matrix: MassMatrix = "diag",
    eigval_cutoff: float = 100.0,
) -> xr.DataTree:
    """Draw posterior samples with the pointwise log-likelihood kept for LOO.

    Parameters
    ----------
    model : pymc.Model
        Any PyMC model.
    draws, tune, chains : int
        Kept draws per chain, tuning steps per chain, number of chains.
    seed : int
        Random seed; the same seed gives the same draws.
    target_accept : float
        Target acceptance rate of NUTS step-size adaptation.
    sampler : {"nutpie", "pymc", "numpyro", "blackjax"}
        NUTS implementation; nutpie compiles the model with numba.
    progressbar : bool
        Show PyMC's own progress bar (ignored with nutpie when ``progress`` is given).
    cores : int, optional
        Chains run in parallel (default: PyMC's choice, at most the CPU count).
    progress : callable, optional
        ``progress(phase, done, total)`` reports (nutpie only).
    log_likelihood : bool
        Add the ``log_likelihood`` group.
    var_names : list of str, optional
        Variables kept in the posterior (default: all, including deterministics). Leaving out
        expensive deterministics (e.g. ODE predictions, computed later with the posterior
        predictive) saves compiling them into the sampler.
    mass_matrix : {"diag", "low_rank"}
        nutpie's mass-matrix adaptation (see :func:`nutpie_options`).
    eigval_cutoff : float
        With ``low_rank``: posterior-covariance eigenvalues (relative to the diagonal) between
        ``1/eigval_cutoff`` and ``eigval_cutoff`` are left alone.

    Returns
    -------
    xarray.DataTree
        ``posterior``, ``sample_stats``, ``log_likelihood``, ``observed_data``,
        ``constant_data`` (when the model has data containers); timings in
        ``sample_stats.attrs``.
    """
    if sampler == "nutpie" and progress is not None:
        pointwise = add_pointwise_log_likelihood(model) if log_likelihood else {}
        kept = None if var_names is None else [*var_names, *pointwise]
        options = nutpie_options(
            draws, tune, chains, seed, cores, target_accept, mass_matrix, eigval_cutoff
        )
        tree, timings = _sample_nutpie(model, progress, kept, options)
        if pointwise:
            tree = _move_to_log_likelihood(tree, pointwise)
            log_likelihood = False
    else:
        if mass_matrix != "diag" and sampler != "nutpie":
            raise ValueError(f"mass_matrix={mass_matrix!r} needs the nutpie sampler")
        start = time.perf_counter()
        with model:
            tree = pm.sample(
                draws=draws,
                tune=tune,
                chains=chains,
                cores=cores,
                random_seed=seed,
                nuts_sampler=sampler,
                progressbar=progressbar,
                target_accept=target_accept,
                var_names=var_names,
            )
        timings = {"sampling_seconds": time.perf_counter() - start}
    if log_likelihood:
        start = time.perf_counter()
        tree = pm.compute_log_likelihood(
            tree, model=model, extend_inferencedata=True, progressbar=False
        )
        timings["log_likelihood_seconds"] = time.perf_counter() - start
    for key, value in timings.items():
        tree["sample_stats"].attrs[key] = float(value)
    return tree


def nutpie_options(
    draws: int,
    tune: int,
    chains: int,
    seed: int,
    cores: int | None = None,
    target_accept: float = 0.8,
    mass_matrix: MassMatrix = "diag",
    eigval_cutoff: float = 100.0,
) -> dict[str, Any]:
    """Return the ``nutpie.sample`` keyword arguments for these settings (no warm-up kept).

    Parameters
    ----------
    draws, tune, chains : int
        Kept draws per chain, warm-up draws per chain (at least 1), number of chains.
    seed : int
        Random seed.
    cores : int, optional
        Chains run in parallel (nutpie's default: all cores).
    target_accept : float
        Target acceptance rate of step-size adaptation.
    mass_matrix : {"diag", "low_rank"}
        ``diag``: a diagonal mass matrix (nutpie's default). ``low_rank``: the diagonal plus a
        low-rank correction fitted to draws and gradients during warm-up (Seyboldt et al.,
        nutpie), which removes strong linear correlations between parameters, e.g. parameters
        identified only through a product or ratio.
    eigval_cutoff : float
        With ``low_rank``: eigenvalues between ``1/eigval_cutoff`` and ``eigval_cutoff`` are
        not corrected (nutpie's default 100; smaller corrects more directions).
    """
    options: dict[str, Any] = {
        "draws": draws,
        "tune": max(tune, 1),
        "chains": chains,
        "cores": cores,
        "seed": seed,
        "save_warmup": False,
        "progress_bar": False,
        "target_accept": target_accept,
    }
    if mass_matrix == "low_rank":
        options.update(adaptation="low_rank", mass_matrix_eigval_cutoff=eigval_cutoff)
    return options


POINTWISE_PREFIX = "pointwise_log_likelihood__"


def add_pointwise_log_likelihood(model: pm.Model) -> dict[str, str]:
    """Add each observed variable's elementwise log-density as a deterministic of ``model``.

    With nutpie the deterministics are computed by the sampler's own compiled function from the
    draws, so the likelihood (e.g. an ODE solution) is not compiled a second time for
    :func:`pymc.compute_log_likelihood`. Idempotent.

    Returns
    -------
    dict of str to str
        Deterministic name -> observed variable name.
    """
    added = {}
    for rv in model.observed_RVs:
        name = f"{POINTWISE_PREFIX}{rv.name}"
        if name not in model.named_vars:
            with model:
                pm.Deterministic(
                    name, _logp_of_rvs(model, rv), dims=model.named_vars_to_dims.get(rv.name)
                )
        added[name] = rv.name
    return added


def _logp_of_rvs(model: pm.Model, observed_rv) -> TensorVariable:
    """Elementwise log-density of an observed variable as a graph of the model's free RVs.

    ``model.logp`` gives it in terms of (transformed) value variables; each value variable is
    replaced by the forward-transformed random variable, so the expression can be a
    deterministic that the sampler evaluates at every draw.
    """
    logp = model.logp(vars=[observed_rv], sum=False)[0]
    replacements = {}
    for rv in model.free_RVs:
        value = model.rvs_to_values[rv]
        transform = model.rvs_to_transforms.get(rv)
        replacements[value] = rv if transform is None else transform.forward(rv, *rv.owner.inputs)
    return graph_replace(logp, replacements, strict=False)


def _move_to_log_likelihood(tree: xr.DataTree, pointwise: dict[str, str]) -> xr.DataTree:
    posterior = tree["posterior"].to_dataset()
    group = xr.Dataset({observed: posterior[name] for name, observed in pointwise.items()})
    tree["posterior"] = xr.DataTree(posterior.drop_vars(list(pointwise)))
    tree["log_likelihood"] = xr.DataTree(group)
    return tree


class _PhaseClock:
    """Turns nutpie's per-chain progress into tune/draw chain-seconds and progress calls."""

    def __init__(self, tune: int, chains: int, draws: int, progress: ProgressCallback) -> None:
        self.tune, self.chains, self.draws = tune, chains, draws
        self.progress = progress
        self.last: dict[int, tuple[float, int]] = {}
        self.tune_seconds = 0.0
        self.draw_seconds = 0.0

    def __call__(self, chain_progresses) -> None:
        now = time.perf_counter()
        done = 0
        for index, chain in enumerate(chain_progresses):
            finished = int(chain.finished_draws)
            done += finished
            previous_time, previous = self.last.get(index, (now, 0))
            if finished > previous:
                elapsed = now - previous_time if index in self.last else 0.0
                tuned = max(0, min(finished, self.tune) - min(previous, self.tune))
                share = tuned / (finished - previous)
                self.tune_seconds += elapsed * share
                self.draw_seconds += elapsed * (1 - share)
                self.last[index] = (now, finished)
            elif index not in self.last and chain.started:
                self.last[index] = (now, finished)
        self.progress("sampling", done, self.chains * (self.tune + self.draws))


def _raise_if_interrupted(tree: xr.DataTree, chains: int, draws: int) -> None:
    """Re-raise Ctrl-C: nutpie catches it and returns the draws so far as if complete."""
    posterior = tree["posterior"] if "posterior" in tree.children else None
    sizes = {} if posterior is None else dict(posterior.sizes)
    complete = sizes.get("chain") == chains and sizes.get("draw") == draws
    if complete:
        stats = tree["sample_stats"].to_dataset()
        if "energy" in stats and stats["energy"].isnull().any():
            complete = False
    if not complete:
        raise KeyboardInterrupt(
            f"sampling interrupted: {sizes.get('chain', 0)} chains x {sizes.get('draw', 0)} "
            f"draws of {chains} x {draws}"
        )


def _sample_nutpie(
    model: pm.Model,
    progress: ProgressCallback,
    var_names: list[str] | None,
    options: dict[str, Any],
) -> tuple[xr.DataTree, dict[str, float]]:
    """Run nutpie directly (what ``pm.sample(nuts_sampler="nutpie")`` does) with timings.

    ``options`` are the :func:`nutpie_options`.
    """
    import nutpie
    from pymc.backends.arviz import patch_nutpie_idata

    start, cpu = time.perf_counter(), time.process_time()
    progress("compiling", 0, 1)
    compiled = nutpie.compile_pymc_model(model, backend="numba", var_names=var_names)
    compile_seconds = time.perf_counter() - start
    compile_cpu_seconds = time.process_time() - cpu
    log.info(
        "compiled the model for nutpie in %.1f s (%.1f s CPU)", compile_seconds, compile_cpu_seconds
    )
    draws, chains = options["draws"], options["chains"]
    clock = _PhaseClock(options["tune"], chains, draws, progress)
    start, cpu = time.perf_counter(), time.process_time()
    tree = nutpie.sample(compiled, progress_callback=clock, progress_rate=500, **options)
    sampling_seconds = time.perf_counter() - start
    sampling_cpu_seconds = time.process_time() - cpu
    _raise_if_interrupted(tree, chains, draws)
    patch_nutpie_idata(tree, model, sampling_time=sampling_seconds)
    return tree, {
        "compile_seconds": compile_seconds,
        "compile_cpu_seconds": compile_cpu_seconds,
        "sampling_seconds": sampling_seconds,
        "sampling_cpu_seconds": sampling_cpu_seconds,
        "tune_chain_seconds": clock.tune_seconds,
        "draw_chain_seconds": clock.draw_seconds,
    }


def posterior_predictive(
    model: pm.Model, tree: xr.DataTree, var_names: list[str], seed: int = 0
) -> xr.DataTree:
    """Add ``posterior_predictive`` draws of ``var_names`` (observed or deterministic) to ``tree``.

    Deterministics listed (e.g. noise-free predictions) are recomputed from the posterior draws
    in the same compiled function as the observed variables' draws.
    """
    start = time.perf_counter()
    with model:
        tree = pm.sample_posterior_predictive(
            tree,
            var_names=var_names,
            random_seed=seed,
            extend_inferencedata=True,
            progressbar=False,
        )
    tree["posterior_predictive"].attrs["seconds"] = float(time.perf_counter() - start)
    return tree
