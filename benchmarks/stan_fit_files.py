"""Summarise Stan chains from httpstan's on-disk fit files (for runs stopped before the end).

PyStan only returns draws when *every* chain has finished, but httpstan writes each chain's
output (``<cache>/models/<model>/fits/<fit>.jsonlines.gz``) as soon as that chain is done.
This script reads the finished chains of a run and summarises them exactly like
``peers.stan_runner`` does (same ESS, R-hat, recovery and gradient counts), given the wall
time from the start of sampling to the end of the last chain used.

Usage::

    python benchmarks/stan_fit_files.py FIT1.jsonlines.gz FIT2.jsonlines.gz \
        --warmup 1000 --wall-s 2561 --parallel 2 [--json OUT.json]
"""

from __future__ import annotations

import argparse
import gzip
import json
import sys
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))

from peers.metrics import summarize  # noqa: E402
from peers.problem import POPULATION_PARAMS  # noqa: E402


def read_chain(path: Path) -> dict[str, np.ndarray]:
    """Per-iteration sampler statistics and population draws of one chain (warm-up included).

    Parameters
    ----------
    path : Path
        httpstan fit file (gzipped JSON lines).

    Returns
    -------
    dict of str to ndarray
        One array per quantity, shape (iterations,).
    """
    rows = []
    with gzip.open(path, "rt") as fh:
        for line in fh:
            msg = json.loads(line)
            if (
                msg["topic"] == "sample"
                and isinstance(msg["values"], dict)
                and "lp__" in msg["values"]
            ):
                rows.append(msg["values"])
    keys = ("n_leapfrog__", "divergent__", "treedepth__", "stepsize__", *POPULATION_PARAMS)
    return {k: np.array([r[k] for r in rows], dtype=float) for k in keys}


def summarize_chains(paths: list[Path], warmup: int, wall_s: float, parallel: int) -> dict:
    """Summary of several finished chains, as ``peers.stan_runner.run_stan_method`` reports.

    Parameters
    ----------
    paths : list of Path
        Fit files, one per chain.
    warmup : int
        Warm-up iterations per chain (the first ``warmup`` rows of each file).
    wall_s : float
        Wall time from the start of sampling to the end of the last of these chains.
    parallel : int
        Chains that ran at the same time (for the in-sampler gradient time).

    Returns
    -------
    dict
        ESS, ESS/s, gradient counts, R-hat, divergences, recovery.
    """
    chains = [read_chain(p) for p in paths]
    n_draws = {len(c["n_leapfrog__"]) - warmup for c in chains}
    if len(n_draws) != 1 or n_draws.pop() <= 0:
        raise ValueError("chains differ in length or have no post-warm-up draws")
    draws = {k: np.stack([c[k][warmup:] for c in chains]) for k in POPULATION_PARAMS}
    n_grad = int(sum(c["n_leapfrog__"].sum() for c in chains))
    div = int(sum(c["divergent__"][warmup:].sum() for c in chains))
    out = summarize(draws, wall_s, n_grad, div, parallel=parallel)
    out["treedepth_max_hits"] = int(sum((c["treedepth__"][warmup:] >= 10).sum() for c in chains))
    out["chains"] = len(chains)
    out["warmup"] = warmup
    out["draws_per_chain"] = int(draws[POPULATION_PARAMS[0]].shape[1])
    out["mean_n_leapfrog_warmup"] = float(np.mean([c["n_leapfrog__"][:warmup] for c in chains]))
    out["mean_n_leapfrog_draws"] = float(np.mean([c["n_leapfrog__"][warmup:] for c in chains]))
    out["stepsize_after_warmup"] = [float(c["stepsize__"][warmup]) for c in chains]
    out["fit_files"] = [str(p) for p in paths]
    return out


def main(argv=None) -> dict:
    """Command-line entry point."""
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("files", nargs="+", type=Path)
    p.add_argument("--warmup", type=int, required=True)
    p.add_argument("--wall-s", type=float, required=True)
    p.add_argument("--parallel", type=int, default=2)
    p.add_argument("--json", type=Path)
    args = p.parse_args(argv)
    out = summarize_chains(args.files, args.warmup, args.wall_s, args.parallel)
    text = json.dumps(out, indent=2, default=float)
    print(text)
    if args.json:
        args.json.write_text(text)
    return out


if __name__ == "__main__":
    main()
