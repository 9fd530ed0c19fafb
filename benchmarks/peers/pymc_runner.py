"""Run a PyMC model with nutpie (numba backend): compile, time logp+grad, sample."""

from __future__ import annotations

import time

import numpy as np
import pymc as pm

from .metrics import summarize, time_calls
from .problem import POPULATION_PARAMS


def compile_nutpie(model: pm.Model):
    """Compile with nutpie's numba backend; returns (compiled, seconds)."""
    import nutpie

    t0 = time.perf_counter()
    compiled = nutpie.compile_pymc_model(model, backend="numba")
    return compiled, time.perf_counter() - t0


def flat_point(compiled, point: dict) -> np.ndarray:
    """Flat unconstrained vector in nutpie's layout from natural-scale values."""
    names, slices, shapes = compiled.shape_info
    x = np.zeros(compiled.n_dim)
    for name, sl, _shape in zip(names, slices, shapes, strict=False):
        if sl.stop > compiled.n_dim:
            break
        if name.endswith("_log__"):
            x[sl] = np.log(np.ravel(point[name.removesuffix("_log__")]))
        else:
            x[sl] = np.ravel(point[name])
    return x


def time_logp_grad(compiled, point: dict, min_total_s: float) -> dict:
    """Time nutpie's own compiled numba logp+gradient function at `point`."""
    fn = compiled.logp_func
    fn.trust_input = True
    x = flat_point(compiled, point)
    logp, grad = fn(x)
    if not (np.isfinite(logp) and np.all(np.isfinite(grad))):
        raise FloatingPointError(f"non-finite logp/grad at the true point: {logp}")
    res = time_calls(lambda: fn(x), min_total_s=min_total_s)
    return {
        "grad_eval_s": res["per_call_s"],
        "grad_eval_calls": res["n_calls"],
        "logp_at_truth": float(logp),
    }


def sample_nutpie(
    compiled,
    draws: int,
    tune: int,
    chains: int,
    cores: int,
    seed: int,
    timeout_s: float | None = None,
):
    """Sample with nutpie; optionally stop after `timeout_s` (partial trace). Returns (trace, s)."""
    import nutpie

    options = dict(draws=draws, tune=tune, chains=chains, cores=cores, seed=seed)
    t0 = time.perf_counter()
    if timeout_s is None:
        trace = nutpie.sample(compiled, progress_bar=False, **options)
    else:
        sampler = nutpie.sample(compiled, progress_bar=False, blocking=False, **options)
        trace = sampler.wait(timeout=timeout_s)
        if not sampler.is_finished:
            sampler.abort()
    return trace, time.perf_counter() - t0


def trace_counts(trace) -> tuple[int, int]:
    """(gradient evaluations incl. warm-up, post-warm-up divergences) from a nutpie trace."""
    n_grad = 0
    for group in ("warmup_sample_stats", "sample_stats"):
        if group in trace.children:
            n_grad += int(trace[group]["n_steps"].values.sum())
    div = (
        int(trace["sample_stats"]["diverging"].values.sum())
        if "sample_stats" in trace.children
        else 0
    )
    return n_grad, div


def population_draws(trace) -> dict[str, np.ndarray]:
    """Population-parameter draws (chain, draw) from a nutpie trace."""
    return {k: trace["posterior"][k].values for k in POPULATION_PARAMS}


def run_nutpie_method(model: pm.Model, point: dict, cfg: dict) -> dict:
    """Full measurement for one PyMC-based method: compile, grad time, sample, summarize."""
    compiled, compile_s = compile_nutpie(model)
    out = {"compile_s": compile_s, "backend": "nutpie/numba"}
    out |= time_logp_grad(compiled, point, cfg["grad_timing_s"])
    out["grad_eval_note"] = (
        "nutpie's compiled numba logp+dlogp at the true values, median of batches"
    )
    trace, wall = sample_nutpie(
        compiled, cfg["draws"], cfg["tune"], cfg["chains"], cfg["cores"], cfg["seed"]
    )
    n_grad, div = trace_counts(trace)
    out |= summarize(
        population_draws(trace), wall, n_grad, div, parallel=min(cfg["chains"], cfg["cores"])
    )
    return out


def time_pymc_logp_grad(model: pm.Model, point: dict, min_total_s: float) -> dict:
    """Time the logp+dlogp function PyMC's own NUTS uses (default C backend) at `point`."""
    fn = model.logp_dlogp_function(ravel_inputs=True)
    fn.set_extra_values({})
    ip = model.initial_point()
    for name in ip:
        base = name.removesuffix("_log__")
        ip[name] = np.log(point[base]) if name.endswith("_log__") else np.asarray(point[base])
    x = np.concatenate([np.ravel(ip[v.name]) for v in fn._grad_vars])
    logp, _ = fn(x)
    res = time_calls(lambda: fn(x), min_total_s=min_total_s)
    return {
        "grad_eval_s": res["per_call_s"],
        "grad_eval_calls": res["n_calls"],
        "logp_at_truth": float(logp),
        "grad_eval_note": "PyMC logp_dlogp_function (default backend) at the true values",
    }


def run_pymc_short(model: pm.Model, point: dict, cfg: dict, short: dict | None) -> dict:
    """Gradient timing + short pm.sample(nuts_sampler='pymc') run for slow models.

    The gradient rate for extrapolation uses PyMC's per-draw `perf_counter_diff`
    (excludes process start-up/compilation in the worker processes).
    """
    out = {"backend": "PyMC NUTS, default (C) backend"}
    t0 = time.perf_counter()
    out |= time_pymc_logp_grad(model, point, min(cfg["grad_timing_s"], 1.0))
    out["compile_s"] = time.perf_counter() - t0 - out["grad_eval_s"] * out["grad_eval_calls"]
    if not short:
        return out
    t0 = time.perf_counter()
    with model:
        trace = pm.sample(
            draws=short["draws"],
            tune=short["tune"],
            chains=short["chains"],
            cores=cfg["cores"],
            random_seed=cfg["seed"],
            nuts_sampler="pymc",
            progressbar=False,
            discard_tuned_samples=False,
            compute_convergence_checks=False,
            nuts={"max_treedepth": short["max_treedepth"]},
        )
    wall = time.perf_counter() - t0
    groups = [g for g in ("warmup_sample_stats", "sample_stats") if g in trace.children]
    n_grad = sum(int(trace[g]["n_steps"].values.sum()) for g in groups)
    busy = sum(float(trace[g]["perf_counter_diff"].values.sum()) for g in groups)
    busy /= min(short["chains"], cfg["cores"])
    post, stats = trace["posterior"], trace["sample_stats"]
    skip = 0 if "warmup_sample_stats" in trace.children else short["tune"]
    draws = {k: post[k].values[:, skip:] for k in POPULATION_PARAMS}
    div = int(stats["diverging"].values[:, skip:].sum())
    own = summarize(draws, busy, n_grad, div, parallel=min(short["chains"], cfg["cores"]))
    out["short_run"] = {
        **short,
        "wall_s": busy,
        "wall_s_incl_startup": wall,
        "n_grad_evals": n_grad,
        "ess_bulk_min": own["ess_bulk_min"],
        "ess_per_s_own": own["ess_per_s"],
    }
    keep = ("max_rhat", "divergences", "recovered", "not_recovered", "grad_eval_s_in_sampler")
    return out | {k: own[k] for k in keep}
