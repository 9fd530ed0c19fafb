"""Cost of ``sensitivity_control`` on the benchmark problem (engine model at the true point).

Compiles the peers' engine model (24 mice, Dopri5 rtol=atol=1e-6, nutpie numba backend) with
the option off and on in one process, then times nutpie's logp+gradient function at the true
values in alternating rounds (median per call of each round, as ``grad ms`` in
ode_vs_peers.py). Also counts the solver's step attempts at the true point.

    PYTHONPATH=$PWD python benchmarks/sensitivity_cost.py --rounds 5
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))

from peers import problem  # noqa: E402
from peers.metrics import time_calls  # noqa: E402
from peers.pymc_models import build_model, engine_predictor  # noqa: E402
from peers.pymc_runner import compile_nutpie, flat_point  # noqa: E402

BASE = {"rtol": 1e-6, "atol": 1e-6}


def attempts(data, method) -> tuple[int, int]:
    """(attempts, accepted steps summed over mice) of one solve at the true point."""
    import pytensor
    import pytensor.tensor as pt
    from pytensor.graph.traversal import ancestors

    from bayes.ode.compiled import AdaptiveSolveOp

    ind = problem.individual_params(problem.TRUE, data.true_z)
    n = data.n_mice
    params = np.column_stack(
        [
            ind["g"],
            np.full(n, np.exp(problem.TRUE["log_K"])),
            ind["k_kill"],
            np.full(n, np.exp(problem.TRUE["log_k_out"])),
            data.dose,
        ]
    )
    y0 = np.column_stack([ind["V0"], np.zeros(n)])
    predict = engine_predictor("Dopri5", **method)
    states = predict(
        g=pt.as_tensor(params[:, 0]),
        K=pt.as_tensor(params[0, 1]),
        k_kill=pt.as_tensor(params[:, 2]),
        k_out=pt.as_tensor(params[0, 3]),
        dose=pt.as_tensor(params[:, 4]),
        V0=pt.as_tensor(y0[:, 0]),
        times=data.times,
    )
    node = next(
        v.owner
        for v in ancestors([states])
        if v.owner is not None and isinstance(v.owner.op, AdaptiveSolveOp)
    )
    rec_h = pytensor.function([], node.outputs[3], mode="NUMBA")()
    return int(rec_h.shape[0]), int((rec_h > 0).sum())


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--seconds", type=float, default=1.5, help="timing per round")
    args = parser.parse_args()
    data = problem.simulate()
    point = problem.true_point(data)
    settings = {"off": dict(BASE), "on": dict(BASE, sensitivity_control=True)}
    functions = {}
    for name, method in settings.items():
        compiled, compile_s = compile_nutpie(
            build_model(data, engine_predictor("Dopri5", **method))
        )
        fn = compiled.logp_func
        fn.trust_input = True
        x = flat_point(compiled, point)
        logp, grad = fn(x)
        functions[name] = (fn, x)
        n_att, n_acc = attempts(data, method)
        print(
            f"{name}: compile {compile_s:.1f} s, logp {float(logp):.6f}, "
            f"|grad| {np.linalg.norm(grad):.6f}, attempts {n_att}, accepted (all mice) {n_acc}",
            flush=True,
        )
    _, g_off = functions["off"][0](functions["off"][1])
    _, g_on = functions["on"][0](functions["on"][1])
    change = np.abs(g_on - g_off).max() / np.abs(g_off).max()
    print(f"max |grad on - grad off| / max |grad off|: {change:.2e}")
    times = {name: [] for name in settings}
    for _ in range(args.rounds):
        for name, (fn, x) in functions.items():
            times[name].append(time_calls(lambda fn=fn, x=x: fn(x), args.seconds)["per_call_s"])
    for name, values in times.items():
        ms = 1e3 * np.asarray(values)
        print(f"{name}: grad ms per round {np.round(ms, 4).tolist()}, median {np.median(ms):.4f}")
    paired = np.asarray(times["on"]) / np.asarray(times["off"])
    print(f"on / off per round {np.round(paired, 3).tolist()}, median {np.median(paired):.3f}")
    print(f"load average {Path('/proc/loadavg').read_text().split()[:3]}")


if __name__ == "__main__":
    main()
