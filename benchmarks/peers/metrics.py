"""Posterior diagnostics and timing helpers shared by every method."""

from __future__ import annotations

import time
from collections.abc import Callable

import arviz as az
import numpy as np
import xarray as xr

from .problem import POPULATION_PARAMS, TRUE

CI_PROB = 0.95


def population_dataset(draws: dict[str, np.ndarray]) -> xr.Dataset:
    """Dataset of population parameters, each array shaped (chain, draw)."""
    return xr.Dataset({k: (("chain", "draw"), np.asarray(v)) for k, v in draws.items()})


def recovery(draws: dict[str, np.ndarray], prob: float = CI_PROB) -> dict:
    """Central `prob` interval per population parameter and whether it holds the truth."""
    lo_q, hi_q = (1 - prob) / 2, 1 - (1 - prob) / 2
    out = {}
    for name in POPULATION_PARAMS:
        x = np.asarray(draws[name]).ravel()
        lo, hi = np.quantile(x, [lo_q, hi_q])
        out[name] = {
            "true": float(TRUE[name]),
            "mean": float(x.mean()),
            "lo": float(lo),
            "hi": float(hi),
            "inside": bool(lo <= TRUE[name] <= hi),
        }
    return out


def summarize(
    draws: dict[str, np.ndarray], sampling_s: float, n_grad: int, divergences: int, parallel: int
) -> dict:
    """ESS / R-hat / recovery / efficiency from population draws and sampler counts.

    `n_grad` counts gradient evaluations of warm-up plus sampling (all chains);
    `parallel` is how many chains ran at once, used for the in-sampler gradient time.
    """
    ds = population_dataset(draws)
    ess = np.array([float(az.ess(ds, method="bulk")[k]) for k in POPULATION_PARAMS])
    rhat = np.array([float(az.rhat(ds)[k]) for k in POPULATION_PARAMS])
    rec = recovery(draws)
    ess_min, ess_med = float(ess.min()), float(np.median(ess))
    return {
        "ess_bulk_min": ess_min,
        "ess_bulk_median": ess_med,
        "ess_bulk": dict(zip(POPULATION_PARAMS, ess.tolist(), strict=True)),
        "worst_param": POPULATION_PARAMS[int(ess.argmin())],
        "sampling_s": sampling_s,
        "ess_per_s": ess_min / sampling_s,
        "ess_per_s_median": ess_med / sampling_s,
        "n_grad_evals": int(n_grad),
        "grad_evals_per_ess": n_grad / ess_min if ess_min > 0 else float("inf"),
        "grad_eval_s_in_sampler": sampling_s * parallel / n_grad if n_grad else None,
        "max_rhat": float(np.nanmax(rhat)),
        "divergences": int(divergences),
        "recovered": all(r["inside"] for r in rec.values()),
        "not_recovered": [k for k, r in rec.items() if not r["inside"]],
        "intervals": rec,
    }


def time_calls(
    fn: Callable[[], object], min_total_s: float = 2.0, min_calls: int = 5, max_calls: int = 100_000
) -> dict:
    """Median per-call time of `fn` over batches (after one warm-up call)."""
    fn()
    t0 = time.perf_counter()
    fn()
    one = max(time.perf_counter() - t0, 1e-7)
    batch = int(np.clip(0.2 / one, 1, max_calls))
    per_call, total, calls = [], 0.0, 0
    while (total < min_total_s or calls < min_calls) and calls < max_calls:
        t0 = time.perf_counter()
        for _ in range(batch):
            fn()
        dt = time.perf_counter() - t0
        per_call.append(dt / batch)
        total, calls = total + dt, calls + batch
    return {"per_call_s": float(np.median(per_call)), "n_calls": calls}
