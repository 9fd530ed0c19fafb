"""Run the Stan model through PyStan 3 and measure it like the PyMC methods."""

from __future__ import annotations

import time

import numpy as np

from .metrics import summarize, time_calls
from .problem import POPULATION_PARAMS, Dataset, true_point
from .stan_model import TRIVIAL_PROGRAM, initial_values, program, stan_data


def build(data: Dataset, use_bdf: bool, seed: int):
    """stan.build (compiles, or reuses httpstan's on-disk cache); returns (posterior, s)."""
    import stan

    t0 = time.perf_counter()
    posterior = stan.build(program(), data=stan_data(data, use_bdf), random_seed=seed)
    return posterior, time.perf_counter() - t0


def _services(posterior):
    """The model's compiled httpstan extension module (direct C++ calls, no HTTP)."""
    import httpstan.models

    return httpstan.models.import_services_extension_module(posterior.model_name)


def time_log_prob_grad(posterior, data: Dataset, min_total_s: float) -> dict:
    """Time Stan's log_prob_grad at the true values by calling httpstan's C++ module directly.

    Each direct call also builds the model object from the data; that overhead is measured
    with `write_array` (same data and model construction, no log density) and subtracted.
    """
    module = _services(posterior)
    sdata = posterior.data
    pars = {
        k: (v.tolist() if isinstance(v, np.ndarray) else float(v))
        for k, v in true_point(data).items()
    }
    u = list(posterior.unconstrain_pars(pars))
    full = time_calls(lambda: module.log_prob_grad(sdata, u, True), min_total_s=min_total_s)
    over = time_calls(
        lambda: module.write_array(sdata, u, False, False), min_total_s=min_total_s / 4
    )
    return {
        "grad_eval_s": max(full["per_call_s"] - over["per_call_s"], 0.0),
        "grad_eval_s_raw_call": full["per_call_s"],
        "grad_eval_overhead_s": over["per_call_s"],
        "grad_eval_note": (
            "httpstan C++ log_prob_grad called directly at the true values "
            "minus per-call model construction (timed via write_array)"
        ),
    }


def fit_arrays(fit, name: str, n_warmup: int) -> tuple[np.ndarray, np.ndarray]:
    """(warm-up, sampling) draws of a scalar quantity, each shaped (chain, draw)."""
    idx = fit._parameter_indexes(name)
    arr = fit._draws[idx[0], :, :].T  # (chain, warmup + draws)
    return arr[:, :n_warmup], arr[:, n_warmup:]


def sample(posterior, data: Dataset, cfg: dict):
    """NUTS with Stan defaults (diag metric, max depth 10); returns (fit, wall seconds)."""
    inits = initial_values(data, cfg["chains"], cfg["seed"])
    t0 = time.perf_counter()
    extra = {"max_depth": cfg["max_treedepth"]} if "max_treedepth" in cfg else {}
    fit = posterior.sample(
        num_chains=cfg["chains"],
        num_samples=cfg["draws"],
        num_warmup=cfg["tune"],
        save_warmup=True,
        init=inits,
        **extra,
    )
    return fit, time.perf_counter() - t0


def run_stan_method(data: Dataset, use_bdf: bool, cfg: dict, short: dict | None = None) -> dict:
    """Full measurement for one Stan solver.

    With `short` (chains/draws/tune) only a short run is made; its gradient rate goes to
    out["short_run"] for extrapolation and its ESS/R-hat are reported as short-run values.
    """
    posterior, compile_s = build(data, use_bdf, cfg["seed"])
    out = {
        "compile_s": compile_s,
        "backend": "PyStan 3 / httpstan",
        "compile_note": "stan.build incl. httpstan's on-disk cache (0 s when cached)",
    }
    out |= time_log_prob_grad(posterior, data, cfg["grad_timing_s"])
    run_cfg = {**cfg, **short} if short else cfg
    fit, wall = sample(posterior, data, run_cfg)
    n_warm = run_cfg["tune"]
    leap = fit_arrays(fit, "n_leapfrog__", n_warm)
    div = fit_arrays(fit, "divergent__", n_warm)[1]
    draws = {k: fit_arrays(fit, k, n_warm)[1] for k in POPULATION_PARAMS}
    n_grad = int(leap[0].sum() + leap[1].sum())
    summary = summarize(
        draws, wall, n_grad, int(div.sum()), parallel=min(run_cfg["chains"], run_cfg["cores"])
    )
    max_depth = run_cfg.get("max_treedepth", 10)
    summary["treedepth_max_hits"] = int(
        (fit_arrays(fit, "treedepth__", n_warm)[1] >= max_depth).sum()
    )
    if not short:
        return out | summary
    out["short_run"] = {
        **short,
        "wall_s": wall,
        "n_grad_evals": n_grad,
        "ess_bulk_min": summary["ess_bulk_min"],
        "ess_per_s_own": summary["ess_per_s"],
    }
    keep = (
        "max_rhat",
        "divergences",
        "recovered",
        "not_recovered",
        "grad_eval_s_in_sampler",
        "treedepth_max_hits",
    )
    return out | {k: summary[k] for k in keep}


def trivial_overhead_s() -> float:
    """Per-call HTTP overhead of PyStan's log_prob_grad on a one-parameter model (reference)."""
    import stan

    post = stan.build(TRIVIAL_PROGRAM, data={}, random_seed=1)
    return time_calls(lambda: post.log_prob_grad([0.1]), min_total_s=1.0)["per_call_s"]
