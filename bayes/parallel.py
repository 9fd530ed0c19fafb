"""dask.distributed set-up for many-simulation work (virtual trials, simulation-based calibration).

- :func:`dask_client`: a ``LocalCluster`` by default, or an existing scheduler by address
  (``tcp://host:8786``, e.g. one started with ``dask scheduler`` + ``dask worker``).
- :func:`map_batches`: run a pure function over batches with retries, gather results as they
  complete (so a worker failure loses nothing already finished), show progress, and keep every
  finished batch in an optional :class:`CheckpointStore` on disk so an interrupted run resumes.

Work is split into batches by the caller (e.g. 200 simulated trials per task) to keep the
scheduler overhead small. Results never depend on the number of workers when each batch's
random numbers derive from global indices (see ``bayes.trials.truths.trial_seed``).
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import shutil
import signal
import sys
import threading
import time
import warnings
from collections.abc import Callable, Hashable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any, TextIO

import numpy as np
from distributed import Client, LocalCluster, as_completed

DEFAULT_WORKERS = 2


class BatchFailureError(RuntimeError):
    """Some batches failed after all retries; the finished ones are kept (see ``completed``)."""

    def __init__(self, failed: Mapping[Hashable, BaseException], completed: int) -> None:
        self.failed = dict(failed)
        self.completed = completed
        first_key, first_error = next(iter(self.failed.items()))
        super().__init__(
            f"{len(self.failed)} batch(es) failed after retries (first: {first_key!r}: "
            f"{type(first_error).__name__}: {first_error}); {completed} finished batch(es) kept"
        )


@contextmanager
def dask_client(
    scheduler: str | None = None,
    n_workers: int | None = None,
    *,
    processes: bool = True,
    threads_per_worker: int = 1,
) -> Iterator[Client]:
    """Yield a dask client: connected to ``scheduler`` or to a new ``LocalCluster``.

    Parameters
    ----------
    scheduler : str, optional
        Address of a running scheduler (``tcp://127.0.0.1:8786``). Its workers must be able to
        import ``bayes`` (same environment, ``PYTHONPATH`` set).
    n_workers : int, optional
        Workers of the local cluster (default: 2, or fewer if fewer CPUs).
    processes : bool
        Local workers as processes (default) or as threads of this process (fast start-up,
        used by tests).
    threads_per_worker : int
        Threads per local worker; 1 because the simulations are pure-Python loops (GIL).

    Yields
    ------
    distributed.Client

    """
    if scheduler is not None:
        client = Client(scheduler, timeout="30s")
        try:
            yield client
        finally:
            client.close()
        return
    workers = n_workers or min(DEFAULT_WORKERS, os.cpu_count() or 1)
    with warnings.catch_warnings():
        # the scheduler's HTTP server moves to a free port when 8787 is taken: not a problem
        warnings.filterwarnings("ignore", message="Port 8787 is already in use")
        cluster = LocalCluster(
            n_workers=workers,
            threads_per_worker=threads_per_worker,
            processes=processes,
            dashboard_address=None,
            silence_logs=logging.ERROR,
        )
    client = Client(cluster)
    try:
        yield client
    finally:
        client.close()
        cluster.close()


def describe_client(client: Client) -> str:
    """Return a one-line description: scheduler address, workers and threads."""
    info = client.scheduler_info(n_workers=-1)
    workers = info.get("workers", {})
    threads = sum(worker.get("nthreads", 0) for worker in workers.values())
    return f"dask scheduler {info.get('address')}: {len(workers)} workers, {threads} threads"


class CheckpointStore:
    """Finished batches on disk (``<key>.npz``), tied to a fingerprint of the run's inputs.

    A store opened with a different fingerprint (other inputs, seed or batching) is emptied, so
    a resumed run never mixes results of different runs. Writes are atomic.

    Parameters
    ----------
    directory : Path
        Folder of the store (created).
    fingerprint : dict
        JSON-serialisable description of everything the results depend on.

    """

    def __init__(self, directory: str | Path, fingerprint: Mapping[str, Any]) -> None:
        self.directory = Path(directory)
        digest = hashlib.sha256(json.dumps(fingerprint, sort_keys=True).encode()).hexdigest()
        manifest = self.directory / "manifest.json"
        if self.directory.exists():
            try:
                same = json.loads(manifest.read_text())["digest"] == digest
            except (OSError, ValueError, KeyError):
                same = False
            if not same:
                shutil.rmtree(self.directory)
        self.directory.mkdir(parents=True, exist_ok=True)
        _atomic_write_text(manifest, json.dumps({"digest": digest, "inputs": fingerprint}))

    def _path(self, key: str) -> Path:
        return self.directory / f"{key}.npz"

    def load(self, key: str) -> dict[str, np.ndarray] | None:
        """Return a stored batch, or None."""
        path = self._path(key)
        if not path.exists():
            return None
        with np.load(path) as stored:
            return {name: stored[name] for name in stored.files}

    def save(self, key: str, arrays: Mapping[str, np.ndarray]) -> None:
        """Store a batch atomically."""
        path = self._path(key)
        tmp = path.with_name(f".{path.stem}.tmp.npz")
        np.savez_compressed(tmp, **arrays)
        os.replace(tmp, path)


def _atomic_write_text(path: Path, text: str) -> None:
    tmp = path.with_name(f".{path.name}.tmp")
    tmp.write_text(text)
    os.replace(tmp, path)


@contextmanager
def terminate_as_interrupt() -> Iterator[None]:
    """Raise :class:`KeyboardInterrupt` on SIGTERM while the block runs (main thread only).

    ``kill PID`` and batch schedulers then stop a long run the way Ctrl-C does, through its
    ``except KeyboardInterrupt`` clean-up. A process started in the background by a
    non-interactive shell (``command &``) ignores SIGINT, so SIGTERM is the way to stop it.
    """
    if threading.current_thread() is not threading.main_thread():
        yield
        return

    def interrupt(signum: int, frame: object) -> None:
        raise KeyboardInterrupt(f"signal {signum}")

    previous = signal.signal(signal.SIGTERM, interrupt)
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, previous)


class Progress:
    """Text progress on a stream: a bar on a terminal, lines in a log.

    A log gets one line per ~10 %, and one whenever a unit finishes at least ``quiet_seconds``
    after the last line, so that slow runs still show they are alive.

    Units resumed from a checkpoint count as done but not towards the rate: the time left is
    estimated from the units computed in this run only, timed from the last resumed one.
    """

    def __init__(
        self, total: int, unit: str, stream: TextIO | None = None, quiet_seconds: float = 60.0
    ) -> None:
        self.total = max(total, 1)
        self.unit = unit
        self.stream = stream or sys.stderr
        self.quiet_seconds = quiet_seconds
        self.done = 0
        self.resumed = 0
        self.start = time.perf_counter()
        self.tty = hasattr(self.stream, "isatty") and self.stream.isatty()
        self._last_decile = -1
        self._last_line = self.start

    def update(self, amount: int, *, resumed: bool = False) -> None:
        """Count ``amount`` more units done (``resumed``: loaded, not computed) and redraw."""
        self.done += amount
        fraction = self.done / self.total
        if resumed:
            self.resumed += amount
            self.start = time.perf_counter()
            if not self.tty:  # one line for all resumed units, printed with the first new one
                self._last_decile = int(10 * fraction) - 1
                return
        quiet_for = time.perf_counter() - self._last_line
        new_decile = int(10 * fraction) > self._last_decile
        if self.tty or new_decile or quiet_for >= self.quiet_seconds:
            self._draw(fraction)

    def text(self) -> str:
        """Return the progress line: done, elapsed and the estimated time left."""
        elapsed = time.perf_counter() - self.start
        computed = self.done - self.resumed
        left = (
            f"~{elapsed / computed * (self.total - self.done):.0f} s left"
            if computed > 0
            else "time left unknown"
        )
        resumed = f", {self.resumed} resumed" if self.resumed else ""
        return (
            f"{self.done}/{self.total} {self.unit} ({self.done / self.total:.0%}{resumed}), "
            f"{elapsed:.1f} s elapsed, {left}"
        )

    def _draw(self, fraction: float) -> None:
        text = self.text()
        if self.tty:
            bar = "#" * int(30 * fraction)
            print(f"\r[{bar:<30}] {text}", end="", file=self.stream, flush=True)
            if self.done >= self.total:
                print(file=self.stream)
        else:
            self._last_decile = int(10 * fraction)
            self._last_line = time.perf_counter()
            print(text, file=self.stream, flush=True)


def map_batches(
    client: Client,
    function: Callable[..., dict[str, np.ndarray]],
    batches: Mapping[str, tuple],
    *,
    shared: Sequence[Any] = (),
    retries: int = 3,
    store: CheckpointStore | None = None,
    progress: Callable[[str, dict[str, np.ndarray], bool], None] | None = None,
) -> dict[str, dict[str, np.ndarray]]:
    """Run ``function(*shared, *args)`` for every batch on the cluster; return results by key.

    Parameters
    ----------
    client : distributed.Client
    function : callable
        Pure function returning a dict of arrays (picklable by reference: a module function).
    batches : mapping of str to tuple
        Batch key (unique, also the checkpoint file name) to the batch's own arguments.
    shared : sequence
        Large arguments common to all batches; scattered to every worker once.
    retries : int
        Times a failed batch is resubmitted (tasks on a worker that dies are rescheduled by
        the scheduler in any case).
    store : CheckpointStore, optional
        Finished batches found there are not recomputed; new ones are saved as they arrive.
    progress : callable, optional
        Called with ``(key, result, resumed)`` for every finished batch; ``resumed`` is True
        for a batch loaded from ``store`` rather than computed.

    Returns
    -------
    dict of str to dict
        Every batch's result.

    Raises
    ------
    BatchFailureError
        When batches still fail after ``retries``; all finished batches are kept in ``store``.

    """
    results: dict[str, dict[str, np.ndarray]] = {}
    pending = {}
    for key, args in batches.items():
        stored = store.load(key) if store is not None else None
        if stored is not None:
            results[key] = stored
            if progress:
                progress(key, stored, True)
        else:
            pending[key] = args
    if not pending:
        return results
    shared_futures = [client.scatter(value, broadcast=True, hash=False) for value in shared]
    token = hashlib.sha1(f"{time.time_ns()}-{os.getpid()}".encode()).hexdigest()[:10]
    futures = {
        client.submit(
            function, *shared_futures, *args, key=f"{key}-{token}", retries=retries, pure=False
        ): key
        for key, args in pending.items()
    }
    failed: dict[str, BaseException] = {}
    for future in as_completed(list(futures)):
        key = futures[future]
        if future.status == "error":
            failed[key] = future.exception()
            continue
        result = future.result()
        future.release()
        results[key] = result
        if store is not None:
            store.save(key, result)
        if progress:
            progress(key, result, False)
    if failed:
        raise BatchFailureError(failed, completed=len(results))
    return results
