"""Speed of virtual-trial simulation on dask.distributed (issue 7, item 7).

Measures, on a synthetic translation (500 posterior draws x 200 virtual patients x 5 doses):

* 10,000 3+3 trials and 10,000 BOIN trials, each on a LocalCluster of 1 and of 2 workers;
* 1,000 BLRM-EWOC trials (translational prior, 81 x 81 grid; 50 trials per task so that two
  workers get balanced work), on 1 and 2 workers;
* the same work in this process without dask (the peer for the overhead ratio).

Cluster start-up is timed separately from the simulation; simulation times are the best of
``--repeats`` runs on the same cluster. Results are checked to be identical
across 1 and 2 workers. The machine load (``os.getloadavg``) is printed with every number:
other jobs on a shared machine slow everything down.

Run: ``PYTHONPATH=. python benchmarks/trials_speed.py [--quick]``
"""

from __future__ import annotations

import argparse
import io
import os
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "tests" / "trials"))

from synthetic import write_predictions  # noqa: E402

from bayes.parallel import dask_client  # noqa: E402
from bayes.trials.run import prepare, simulate  # noqa: E402
from bayes.trials.simulate import simulate_batch  # noqa: E402

DESIGN = ROOT / "workflows" / "trial_design.toml"


def design_file(folder: Path, keep: str, batch_size: int) -> Path:
    """Return a copy of the shipped design file with only the design named ``keep``."""
    text = DESIGN.read_text().replace("batch_size = 200", f"batch_size = {batch_size}")
    head, *blocks = text.split("[[designs]]")
    tail = blocks[-1].split("[expansion]")
    blocks[-1] = tail[0]
    kept = [block for block in blocks if f'name = "{keep}"' in block]
    path = folder / f"{keep.split()[0]}.toml"
    path.write_text(
        head + "".join("[[designs]]" + block for block in kept) + "[expansion]" + tail[1]
    )
    return path


def load() -> str:
    return "load {:.1f} {:.1f} {:.1f}".format(*os.getloadavg())


def measure(study, n_trials: int, workers: int, repeats: int) -> tuple[float, float, object]:
    """Return start-up seconds, the best simulation seconds of ``repeats`` and a result."""
    start = time.perf_counter()
    with dask_client(n_workers=workers) as client:
        client.run(lambda: __import__("bayes.trials.simulate"))  # warm the worker imports
        up = time.perf_counter() - start
        runs = [
            simulate(study, client, n_trials=n_trials, stream=io.StringIO()) for _ in range(repeats)
        ]
    return up, min(run.seconds for run in runs), runs[0]


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--quick", action="store_true", help="10x fewer trials")
    parser.add_argument("--repeats", type=int, default=2, help="best of N timings (default 2)")
    args = parser.parse_args()
    scale = 10 if args.quick else 1
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        translation = write_predictions(folder / "translation", n_draws=500, n_patients=200)
        print(f"cpus {os.cpu_count()}, {load()}")
        print(
            "| design | trials | serial in-process s | 1 worker s | 2 workers s | speed-up | "
            "start-up s (2 workers) | load |"
        )
        print("|---|---|---|---|---|---|---|---|")
        cases = (
            ("3+3", 10_000, 200),
            ("BOIN", 10_000, 200),
            ("BLRM-EWOC (translational prior)", 1_000, 50),
        )
        for name, n_trials, batch_size in cases:
            n_trials //= scale
            study = prepare(design_file(folder, name, batch_size), translation)
            start = time.perf_counter()
            simulate_batch(study.model, study.designs, 1, range(n_trials), study.config.expansion)
            serial = time.perf_counter() - start
            _, one, result_one = measure(study, n_trials, 1, args.repeats)
            up, two, result_two = measure(study, n_trials, 2, args.repeats)
            same = all(
                np.array_equal(result_one.trials[v].values, result_two.trials[v].values)
                for v in result_one.trials.data_vars
            )
            assert same, "results differ between 1 and 2 workers"
            print(
                f"| {name} | {n_trials} | {serial:.1f} | {one:.1f} | {two:.1f} | "
                f"{one / two:.2f} | {up:.1f} | {load()} |",
                flush=True,
            )


if __name__ == "__main__":
    main()
