"""Benchmark this project's ODE engine (bayes.ode) against peers on one reference problem.

Problem: 24 mice, 3 dose groups, logistic tumour growth with effector kill, log-normal
non-centred random effects (see benchmarks/peers/problem.py).  Methods:

* engine      bayes.ode.solve (Dopri5, rtol=atol=1e-6), nutpie / numba
* naive_scan  fixed-step RK4 (h = 0.1 d) in one pytensor.scan over all mice, nutpie / numba
* pymc_ode    pymc.ode.DifferentialEquation, PyMC's NUTS (nutpie cannot run its Op); only
              gradient timing (quick) or a short run (full); ESS/s extrapolated
* stan_rk45   PyStan 3, ode_rk45_tol (rtol=atol=1e-6); quick mode: short run, extrapolated
* stan_bdf    PyStan 3, ode_bdf_tol (rtol=atol=1e-6); quick mode: short run, extrapolated

Extrapolated ESS/s (see `extrapolate`) are marked with * in the table.

Usage:  python benchmarks/ode_vs_peers.py [--quick] [--json OUT.json]
                                          [--methods engine,naive_scan,...] [--seed N]
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import math
import os
import platform
import sys
import threading
import time
import traceback
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))

from peers import problem  # noqa: E402
from peers.problem import Dataset  # noqa: E402

METHODS = ("engine", "naive_scan", "pymc_ode", "stan_rk45", "stan_bdf")
ENGINE_METHOD = ("Dopri5", {"rtol": 1e-6, "atol": 1e-6})
SCALING_MICE = (24, 96, 384)

STAN_SHORT = {"chains": 2, "draws": 20, "tune": 20, "max_treedepth": 5}
# "stan_short": Stan methods that only make a short run (ESS/s extrapolated); the others
# sample with the mode's chains/draws/tune. Stan's bdf gradient is ~4x its rk45 gradient,
# so a full bdf run would take several hours here.
MODES = {
    "full": {
        "chains": 4,
        "draws": 1000,
        "tune": 1000,
        "grad_timing_s": 3.0,
        "pymc_ode": {"chains": 4, "draws": 30, "tune": 30, "max_treedepth": 6},
        "stan_short": {"stan_bdf": STAN_SHORT},
    },
    # quick mode samples engine and naive_scan longer than full mode: shorter runs leave the
    # minimum ESS, hence their ratio, too noisy (2 x 300: 2.3-3.4x; 4 x 1000: 2.3-3.0x)
    "quick": {
        "chains": 4,
        "draws": 2000,
        "tune": 1000,
        "grad_timing_s": 1.5,
        "pymc_ode": None,
        "stan_short": {"stan_rk45": STAN_SHORT, "stan_bdf": STAN_SHORT},
    },
}


# ----------------------------------------------------------------------------- methods
def run_engine(data: Dataset, cfg: dict) -> dict:
    """This project's engine, sampled with nutpie (numba backend)."""
    from peers.pymc_models import build_model, engine_predictor
    from peers.pymc_runner import run_nutpie_method

    name, kwargs = ENGINE_METHOD
    model = build_model(data, engine_predictor(name, **kwargs))
    out = run_nutpie_method(model, problem.true_point(data), cfg)
    out["solver"] = f"bayes.ode {name}({kwargs})"
    return out


def run_naive_scan(data: Dataset, cfg: dict) -> dict:
    """Fixed-step RK4 (0.1 d) in pytensor.scan, sampled with nutpie (numba backend)."""
    from peers.pymc_models import build_model, naive_scan_predictor
    from peers.pymc_runner import run_nutpie_method

    model = build_model(data, naive_scan_predictor(step=0.1))
    out = run_nutpie_method(model, problem.true_point(data), cfg)
    out["solver"] = "RK4 h=0.1 d, pytensor.scan"
    return out


def run_pymc_ode(data: Dataset, cfg: dict) -> dict:
    """pymc.ode: gradient timing plus a short PyMC-NUTS run (ESS/s extrapolated later).

    nutpie cannot run it (the Op has no numba implementation; in object mode inside nutpie's
    cfunc the logp fails), so it uses PyMC's own NUTS and PyMC's default (C) backend.
    """
    from peers.pymc_models import build_model, pymc_ode_predictor
    from peers.pymc_runner import run_pymc_short

    model = build_model(data, pymc_ode_predictor())
    out = run_pymc_short(model, problem.true_point(data), cfg, cfg["pymc_ode"])
    out["solver"] = "scipy odeint + forward sensitivities (pymc.ode)"
    return out


def run_stan(data: Dataset, cfg: dict, use_bdf: bool) -> dict:
    """Stan via PyStan 3 with ode_bdf_tol or ode_rk45_tol."""
    from peers.stan_model import ATOL, RTOL
    from peers.stan_runner import run_stan_method

    name = "stan_bdf" if use_bdf else "stan_rk45"
    out = run_stan_method(data, use_bdf, cfg, short=(cfg.get("stan_short") or {}).get(name))
    out["solver"] = f"{'ode_bdf_tol' if use_bdf else 'ode_rk45_tol'} rtol={RTOL} atol={ATOL}"
    return out


RUNNERS = {
    "engine": run_engine,
    "naive_scan": run_naive_scan,
    "pymc_ode": run_pymc_ode,
    "stan_rk45": lambda d, c: run_stan(d, c, use_bdf=False),
    "stan_bdf": lambda d, c: run_stan(d, c, use_bdf=True),
}


def run_isolated(name: str, data: Dataset, cfg: dict) -> dict:
    """Run one method; any failure becomes {'error': message} instead of aborting the run."""
    t0 = time.perf_counter()
    print(f"[{time.strftime('%H:%M:%S')}] {name}: running ...", flush=True)
    try:
        out = RUNNERS[name](data, cfg)
    except Exception as exc:  # noqa: BLE001 - isolate every peer
        msg = str(exc).split("Stack backtrace")[0].strip()
        out = {"error": f"{type(exc).__name__}: {msg}", "traceback": traceback.format_exc(limit=4)}
    out["total_s"] = time.perf_counter() - t0
    print(f"[{time.strftime('%H:%M:%S')}] {name}: {progress_line(out)}", flush=True)
    return out


def progress_line(res: dict) -> str:
    """One-line summary of a method result."""
    if "error" in res:
        return f"ERROR {res['error'][:200]}"
    return (
        f"ESS/s {fmt(res.get('ess_per_s'))}  grad {fmt_ms(res.get('grad_eval_s'))}  "
        f"Rhat {fmt(res.get('max_rhat'), 3)}  div {res.get('divergences')}  "
        f"recovered {res.get('recovered')}  ({res['total_s']:.0f} s)"
    )


# ----------------------------------------------------------------------------- derived
EXTRAPOLATE_FROM = {
    "pymc_ode": ("naive_scan", "engine"),
    "stan_rk45": ("naive_scan", "engine"),
    "stan_bdf": ("stan_rk45", "naive_scan", "engine"),
}


def extrapolate(results: dict, name: str) -> None:
    """ESS/s for a method that only made a short run.

    ESS/s = (ESS per gradient evaluation of a full run of the same posterior with the same
    sampler: `EXTRAPOLATE_FROM[name]`) x (gradient evaluations per wall-second achieved by
    the method's own short run, same number of chains on the same cores).
    """
    res = results.get(name, {})
    if "error" in res or "ess_bulk_min" in res or "grad_eval_s" not in res:
        return  # failed, or a full run
    ref = next((m for m in EXTRAPOLATE_FROM[name] if results.get(m, {}).get("ess_bulk_min")), None)
    if ref is None:
        res["error"] = f"no full run of {EXTRAPOLATE_FROM[name]} to extrapolate ESS per gradient"
        return
    short = res.get("short_run")
    if short:
        rate = short["n_grad_evals"] / short["wall_s"]
        how = (
            f"{rate:.3g} gradient evaluations/s measured in a short {name} run "
            f"({short['chains']} chains x {short['tune']} warm-up + {short['draws']} draws"
            f", max tree depth {short.get('max_treedepth')}, {short['wall_s']:.0f} s; early "
            f"warm-up, so not the rate of a full run); R-hat/divergences/recovery come "
            f"from it"
        )
    else:
        rate = 1.0 / res["grad_eval_s"]
        how = "1 / gradient time at the true values (no sampling; optimistic)"
    n_ref = results[ref]["n_grad_evals"]
    res["ess_per_s"] = results[ref]["ess_bulk_min"] / n_ref * rate
    res["ess_per_s_median"] = results[ref]["ess_bulk_median"] / n_ref * rate
    res["grad_evals_per_ess"] = n_ref / results[ref]["ess_bulk_min"]
    res["extrapolated"] = True
    res["extrapolation_note"] = (
        f"ESS/s EXTRAPOLATED: ESS per gradient evaluation of the full {ref} run (same "
        f"posterior; assumes this sampler needs as many gradients per ESS) x {how}"
    )


def compute_ratios(results: dict) -> dict:
    """Engine vs each peer: ESS/s ratio (engine / peer) and grad-time ratio (peer / engine)."""
    eng = results.get("engine", {})
    ratios = {}
    for name, res in results.items():
        if name == "engine":
            continue
        ratios[name] = {
            "ess_per_s_engine_over_peer": _ratio(eng.get("ess_per_s"), res.get("ess_per_s")),
            "ess_per_s_median_engine_over_peer": _ratio(
                eng.get("ess_per_s_median"), res.get("ess_per_s_median")
            ),
            "grad_time_peer_over_engine": _ratio(res.get("grad_eval_s"), eng.get("grad_eval_s")),
        }
    return ratios


def _ratio(num, den):
    """num / den, or None when either side is missing."""
    if num is None or den is None or den == 0:
        return None
    return num / den


def targets(results: dict, ratios: dict) -> dict:
    """The project's targets, each True/False/None (None = could not be evaluated)."""
    stan = [m for m in ("stan_rk45", "stan_bdf") if results.get(m, {}).get("ess_per_s")]
    best = max(stan, key=lambda m: results[m]["ess_per_s"]) if stan else None
    stan_grad = [
        results[m]["grad_eval_s"]
        for m in ("stan_rk45", "stan_bdf")
        if results.get(m, {}).get("grad_eval_s")
    ]

    def ge(val, bound):
        return None if val is None else bool(val >= bound)

    eng = results.get("engine", {})
    return {
        "extrapolated_inputs": [m for m, r in results.items() if r.get("extrapolated")],
        "best_stan_solver": best,
        "engine_ess_per_s_ge_10x_best_stan": ge(
            ratios.get(best, {}).get("ess_per_s_engine_over_peer") if best else None, 10
        ),
        "engine_ess_per_s_ge_3x_naive_scan": ge(
            ratios.get("naive_scan", {}).get("ess_per_s_engine_over_peer"), 3
        ),
        "pymc_ode_ge_100x_slower": ge(
            ratios.get("pymc_ode", {}).get("ess_per_s_engine_over_peer"), 100
        ),
        "engine_grad_le_tenth_of_stan": ge(
            _ratio(min(stan_grad), eng.get("grad_eval_s")) if stan_grad else None, 10
        ),
    }


def run_scaling(data: Dataset, cfg: dict, engine: dict) -> dict:
    """Engine logp+grad time at 24, 96 and 384 mice (design replicated).

    The 24-mouse point reuses the main engine run's measurement when there is one.
    """
    from peers.pymc_models import build_model, engine_predictor
    from peers.pymc_runner import compile_nutpie, time_logp_grad

    name, kwargs = ENGINE_METHOD
    out = {}
    for n in SCALING_MICE:
        if n == data.n_mice and "grad_eval_s" in engine:
            out[str(n)] = {
                "grad_eval_s": engine["grad_eval_s"],
                "compile_s": engine["compile_s"],
                "per_mouse_us": engine["grad_eval_s"] / n * 1e6,
            }
            continue
        print(f"[{time.strftime('%H:%M:%S')}] scaling: {n} mice ...", flush=True)
        try:
            rep = data.replicate(n // data.n_mice)
            compiled, compile_s = compile_nutpie(build_model(rep, engine_predictor(name, **kwargs)))
            t = time_logp_grad(compiled, problem.true_point(rep), cfg["grad_timing_s"])
            out[str(n)] = {
                "grad_eval_s": t["grad_eval_s"],
                "compile_s": compile_s,
                "per_mouse_us": t["grad_eval_s"] / n * 1e6,
            }
        except Exception as exc:  # noqa: BLE001
            out[str(n)] = {"error": f"{type(exc).__name__}: {exc}"}
    return out


# ----------------------------------------------------------------------------- output
def fmt(x, digits: int = 3) -> str:
    """Format a number compactly, '-' when missing."""
    if x is None or (isinstance(x, float) and not math.isfinite(x)):
        return "-"
    return f"{x:.{digits}g}"


def fmt_ms(seconds) -> str:
    """Seconds as milliseconds."""
    return "-" if seconds is None else f"{seconds * 1e3:.3g} ms"


COLUMNS = (
    ("method", lambda n, r: n),
    ("compile s", lambda n, r: fmt(r.get("compile_s"))),
    ("grad ms", lambda n, r: fmt(_ms(r.get("grad_eval_s")))),
    ("grad ms (in sampler)", lambda n, r: fmt(_ms(r.get("grad_eval_s_in_sampler")))),
    ("sampling s", lambda n, r: fmt(r.get("sampling_s"))),
    ("ESS min", lambda n, r: fmt(r.get("ess_bulk_min"))),
    ("ESS med", lambda n, r: fmt(r.get("ess_bulk_median"))),
    ("ESS/s min", lambda n, r: fmt(r.get("ess_per_s")) + ("*" if r.get("extrapolated") else "")),
    ("ESS/s med", lambda n, r: fmt(r.get("ess_per_s_median"))),
    ("grads/ESS", lambda n, r: fmt(r.get("grad_evals_per_ess"))),
    ("max R-hat", lambda n, r: fmt(r.get("max_rhat"), 4)),
    ("div", lambda n, r: str(r.get("divergences", "-"))),
    ("recovered", lambda n, r: str(r.get("recovered", "-"))),
)


def _ms(seconds):
    return None if seconds is None else seconds * 1e3


def table(results: dict) -> str:
    """Markdown table of all methods (errors listed below it)."""
    head = "| " + " | ".join(c for c, _ in COLUMNS) + " |"
    sep = "|" + "|".join("---" for _ in COLUMNS) + "|"
    rows = [head, sep]
    for name, res in results.items():
        if "error" in res and "ess_per_s" not in res:
            rows.append(f"| {name} | ERROR: {res['error'][:120]} |" + " |" * (len(COLUMNS) - 2))
        else:
            rows.append("| " + " | ".join(f(name, res) for _, f in COLUMNS) + " |")
    return "\n".join(rows)


def ratio_table(ratios: dict) -> str:
    """Markdown table of engine-vs-peer ratios."""
    rows = [
        "| peer | ESS/s engine/peer (min) | (median) | grad time peer/engine |",
        "|---|---|---|---|",
    ]
    for name, r in ratios.items():
        rows.append(
            f"| {name} | {fmt(r['ess_per_s_engine_over_peer'])} | "
            f"{fmt(r['ess_per_s_median_engine_over_peer'])} | "
            f"{fmt(r['grad_time_peer_over_engine'])} |"
        )
    return "\n".join(rows)


def settings(args, cfg: dict) -> dict:
    """Everything needed to reproduce / interpret the run."""
    return {
        "mode": "quick" if args.quick else "full",
        "seed": args.seed,
        **{k: cfg[k] for k in ("chains", "draws", "tune", "cores", "grad_timing_s")},
        "pymc_ode_short_run": cfg["pymc_ode"],
        "stan_short_run": cfg.get("stan_short"),
        "methods": args.methods,
        "engine_method": f"{ENGINE_METHOD[0]}({ENGINE_METHOD[1]})",
        "design": {
            "mice": problem.MICE_PER_GROUP * len(problem.GROUP_DOSES),
            "group_doses_per_day": problem.GROUP_DOSES,
            "obs_days": problem.OBS_DAYS.tolist(),
            "noise_sd": problem.NOISE_SD,
        },
        "true_values": {k: float(v) for k, v in problem.TRUE.items()},
        "priors": problem.describe_priors(),
        "interval": "95% central (equal-tailed) interval, all population parameters",
        "ess": "arviz bulk ESS over population parameters; ESS/s = ESS / sampling wall time "
        "(warm-up + draws, chains in parallel)",
        "grads_per_ess": "gradient evaluations (warm-up + draws, all chains) / min bulk ESS",
        "machine": machine_info(),
        "date": dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
    }


def machine_info() -> dict:
    """CPU, cores, Python and key package versions, load at start."""
    info = {
        "platform": platform.platform(),
        "python": platform.python_version(),
        "cpus": os.cpu_count(),
        "loadavg_at_start": os.getloadavg(),
    }
    try:
        info["cpu_model"] = next(
            line.split(":", 1)[1].strip()
            for line in open("/proc/cpuinfo")
            if line.startswith("model name")
        )
    except (OSError, StopIteration):
        pass
    from importlib.metadata import PackageNotFoundError, version

    for pkg in ("pymc", "pytensor", "nutpie", "numba", "arviz", "scipy", "pystan", "httpstan"):
        try:
            info[pkg] = version(pkg)
        except PackageNotFoundError:
            info[pkg] = None
    return info


def to_jsonable(obj):
    """Convert numpy scalars/arrays and non-finite floats for json.dump."""
    if isinstance(obj, dict):
        return {str(k): to_jsonable(v) for k, v in obj.items()}
    if isinstance(obj, list | tuple):
        return [to_jsonable(v) for v in obj]
    if isinstance(obj, np.ndarray):
        return to_jsonable(obj.tolist())
    if isinstance(obj, np.generic):
        obj = obj.item()
    if isinstance(obj, float) and not math.isfinite(obj):
        return None
    return obj


# ----------------------------------------------------------------------------- main
class LoadMonitor:
    """Samples the 1-minute load average in a background thread while the benchmark runs.

    Parameters
    ----------
    every_s : float
        Sampling interval in seconds.
    """

    def __init__(self, every_s: float = 15.0) -> None:
        self.every_s = every_s
        self.samples: list[float] = [os.getloadavg()[0]]
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()

    def _run(self) -> None:
        while not self._stop.wait(self.every_s):
            self.samples.append(os.getloadavg()[0])

    def summary(self) -> dict:
        """Load at start and now, mean and max of the samples so far (1-minute averages)."""
        now = os.getloadavg()[0]
        values = [*self.samples, now]
        return {
            "start_1min": self.samples[0],
            "end_1min": now,
            "mean_1min": float(np.mean(values)),
            "max_1min": float(np.max(values)),
            "n_samples": len(values),
            "every_s": self.every_s,
        }

    def stop(self) -> dict:
        """Stop sampling and return :meth:`summary`."""
        self._stop.set()
        return self.summary()


def parse_args(argv=None):
    """Command-line options."""
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--quick", action="store_true", help="short run (< 15 min on 2 cores)")
    p.add_argument("--json", type=Path, help="write all results to this JSON file")
    p.add_argument(
        "--methods",
        default=",".join(METHODS),
        help=f"comma-separated subset of {','.join(METHODS)}",
    )
    p.add_argument("--seed", type=int, default=1, help="sampler seed (data seed is fixed)")
    p.add_argument("--no-scaling", action="store_true", help="skip the engine scaling check")
    for opt in ("chains", "draws", "tune"):
        p.add_argument(f"--{opt}", type=int, help=f"override the mode's {opt}")
    p.add_argument("--markdown", type=Path, help="also write the final tables to this file")
    args = p.parse_args(argv)
    args.methods = [m.strip() for m in args.methods.split(",") if m.strip()]
    unknown = set(args.methods) - set(METHODS)
    if unknown:
        p.error(f"unknown methods: {sorted(unknown)}")
    return args


def main(argv=None) -> dict:
    """Run the benchmark, print the table and optionally write JSON."""
    args = parse_args(argv)
    cfg = {
        **MODES["quick" if args.quick else "full"],
        "seed": args.seed,
        "cores": min(2, os.cpu_count() or 1),
    }
    cfg |= {k: getattr(args, k) for k in ("chains", "draws", "tune") if getattr(args, k)}
    data = problem.simulate()
    print(
        f"mode={'quick' if args.quick else 'full'} chains={cfg['chains']} "
        f"draws={cfg['draws']} tune={cfg['tune']} methods={','.join(args.methods)}",
        flush=True,
    )
    t_start, load = time.perf_counter(), LoadMonitor()
    results = {}
    for name in args.methods:
        results[name] = run_isolated(name, data, cfg)
        if args.json:  # partial results survive an interrupted run
            args.json.write_text(json.dumps(to_jsonable({"methods": results}), indent=2))
    for name in EXTRAPOLATE_FROM:
        extrapolate(results, name)
    ratios = compute_ratios(results)
    scaling = (
        {}
        if args.no_scaling or "engine" not in args.methods
        else run_scaling(data, cfg, results["engine"])
    )
    report = {
        "methods": results,
        "ratios": ratios,
        "scaling": scaling,
        "targets": targets(results, ratios),
        "settings": settings(args, cfg),
        "wall_s": time.perf_counter() - t_start,
        "load": load.stop(),
    }
    print_report(report)
    if args.json:
        args.json.write_text(json.dumps(to_jsonable(report), indent=2))
        print(f"wrote {args.json}")
    if args.markdown:
        args.markdown.write_text(markdown_report(report) + "\n")
    return report


def markdown_report(report: dict) -> str:
    """Tables (methods, ratios, scaling, targets) as Markdown."""
    parts = [
        table(report["methods"]),
        "\n(* = ESS/s extrapolated from a short run; see `extrapolation_note` in the JSON)\n",
    ]
    if report["ratios"]:
        parts.append(ratio_table(report["ratios"]) + "\n")
    if report["scaling"]:
        parts += ["| mice | engine grad ms | us per mouse | compile s |", "|---|---|---|---|"]
        for n, s in report["scaling"].items():
            parts.append(
                f"| {n} | ERROR {s['error']} | | |"
                if "error" in s
                else f"| {n} | {fmt(_ms(s['grad_eval_s']))} | {fmt(s['per_mouse_us'])} | "
                f"{fmt(s['compile_s'])} |"
            )
        parts.append("")
    parts.append("targets: `" + json.dumps(report["targets"]) + "`")
    if "wall_s" in report:
        load = report["load"]
        parts.append(
            f"\nwall time {report['wall_s']:.0f} s; 1-minute load average: start "
            f"{load['start_1min']:.2f}, mean {load['mean_1min']:.2f}, max "
            f"{load['max_1min']:.2f}, end {load['end_1min']:.2f}"
        )
    return "\n".join(parts)


def print_report(report: dict) -> None:
    """Final human-readable summary."""
    print("\n" + markdown_report(report))


if __name__ == "__main__":
    main()
