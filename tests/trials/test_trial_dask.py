"""Slow: a separately started ``dask scheduler`` + ``dask worker``; a worker killed mid-run."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
import xarray as xr

from bayes.cli import main
from bayes.parallel import dask_client, map_batches
from bayes.trials.run import batch_plan, prepare, simulate
from bayes.trials.simulate import concatenate_batches, simulate_batch_task

REPO = Path(__file__).resolve().parents[2]
DASK = Path(sys.executable).with_name("dask")

pytestmark = pytest.mark.slow


def _start(args, env, log):
    return subprocess.Popen(
        [str(DASK), *args], env=env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True
    )


@pytest.fixture()
def external_scheduler(tmp_path):
    """A ``dask scheduler`` and a ``dask worker`` (2 processes) started as separate programs."""
    scheduler_file = tmp_path / "scheduler.json"
    env = {**os.environ, "PYTHONPATH": f"{REPO}{os.pathsep}{os.environ.get('PYTHONPATH', '')}"}
    log = open(tmp_path / "dask.log", "w")  # noqa: SIM115 - closed below
    processes = [
        _start(
            ["scheduler", "--scheduler-file", str(scheduler_file), "--port", "0", "--no-dashboard"],
            env,
            log,
        )
    ]
    deadline = time.time() + 60
    while not scheduler_file.exists() and time.time() < deadline:
        time.sleep(0.5)
    processes.append(
        _start(
            [
                "worker",
                "--scheduler-file",
                str(scheduler_file),
                "--nworkers",
                "2",
                "--nthreads",
                "1",
                "--no-dashboard",
            ],
            env,
            log,
        )
    )
    import json

    address = json.loads(scheduler_file.read_text())["address"]
    from distributed import Client

    with Client(address) as client:
        client.wait_for_workers(2, timeout=120)
    yield address
    for process in reversed(processes):
        os.killpg(process.pid, signal.SIGTERM)
        process.wait(timeout=30)
    log.close()


def test_external_scheduler_gives_the_local_cluster_results(
    external_scheduler, translation_dir, small_design, tmp_path
):
    outputs = {}
    for label, extra in (("external", ["--scheduler", external_scheduler]), ("local", [])):
        out = tmp_path / label
        args = ["trial", str(small_design), "--translation", str(translation_dir)]
        assert main([*args, "--out", str(out), "--n-trials", "100", *extra]) == 0
        with xr.open_datatree(out / "oc.nc") as tree:
            outputs[label] = tree["trials"].to_dataset().load()
    for name in outputs["local"].data_vars:
        np.testing.assert_array_equal(outputs["external"][name], outputs["local"][name], name)


def test_killed_worker_loses_no_finished_batch(translation_dir, small_design):
    study = prepare(small_design, translation_dir)
    batches = {
        key: (study.config.simulation.seed, trials)
        for key, (trials,) in batch_plan(200, 10).items()
    }
    shared = (study.model, study.designs, study.config.expansion)
    finished = []
    with dask_client(n_workers=2) as client:
        pids = list(client.run(os.getpid).values())

        def kill_one(key, result):
            finished.append(key)
            if len(finished) == 2:
                os.kill(pids[0], signal.SIGKILL)

        results = map_batches(
            client, simulate_batch_task, batches, shared=shared, retries=2, progress=kill_one
        )
        assert len(client.scheduler_info()["workers"]) >= 1
    assert sorted(results) == sorted(batches) and len(finished) == len(batches)
    with dask_client(n_workers=1, processes=False) as client:
        reference = simulate(study, client, n_trials=200)
    joined = concatenate_batches(list(results.values()))
    np.testing.assert_array_equal(joined["selected"], reference.trials["selected"].values)
