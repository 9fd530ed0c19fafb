"""Long distributed runs: progress (resumed units do not count towards the time left, a
line at least once a minute in a log), SIGTERM."""

from __future__ import annotations

import io
import os
import signal
import time

import pytest

from bayes import parallel
from bayes.parallel import Progress


class _Clock:
    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


@pytest.fixture
def clock(monkeypatch: pytest.MonkeyPatch) -> _Clock:
    fake = _Clock()
    monkeypatch.setattr(parallel.time, "perf_counter", fake)
    return fake


def test_time_left_comes_from_computed_units_only(clock: _Clock) -> None:
    stream = io.StringIO()
    progress = Progress(100, "replicates", stream)
    clock.now = 5.0  # loading checkpoints takes time that is not work
    for _ in range(20):
        progress.update(1, resumed=True)
    assert stream.getvalue() == ""  # resumed units print nothing on their own
    clock.now = 605.0
    progress.update(1)
    line = stream.getvalue().strip()
    assert line == (
        "21/100 replicates (21%, 20 resumed), 600.0 s elapsed, ~47400 s left"
    )  # 600 s per computed replicate x 79 left


def test_fresh_run_prints_one_line_per_decile(clock: _Clock) -> None:
    stream = io.StringIO()
    progress = Progress(20, "trials", stream)
    for step in range(1, 21):
        clock.now = 2.0 * step
        progress.update(1)
    lines = stream.getvalue().splitlines()
    assert len(lines) == 11  # 5 %, then 10 %, 20 %, ..., 100 %
    assert lines[0] == "1/20 trials (5%), 2.0 s elapsed, ~38 s left"
    assert lines[-1] == "20/20 trials (100%), 40.0 s elapsed, ~0 s left"


def test_slow_units_print_a_line_each_once_a_minute_has_passed(clock: _Clock) -> None:
    stream = io.StringIO()
    progress = Progress(100, "replicates", stream)
    for step in range(1, 6):  # 5 % done: no new decile after the first line
        clock.now = 30.0 * step
        progress.update(1)
    elapsed = [line.split(", ")[1] for line in stream.getvalue().splitlines()]
    assert elapsed == ["30.0 s elapsed", "90.0 s elapsed", "150.0 s elapsed"]


def test_all_units_resumed_leaves_time_left_unknown(clock: _Clock) -> None:
    progress = Progress(3, "trials", io.StringIO())
    for _ in range(3):
        progress.update(1, resumed=True)
    assert progress.text().endswith("time left unknown")


def test_sigterm_interrupts_like_ctrl_c_and_the_handler_is_restored() -> None:
    before = signal.getsignal(signal.SIGTERM)
    with pytest.raises(KeyboardInterrupt), parallel.terminate_as_interrupt():
        os.kill(os.getpid(), signal.SIGTERM)
        time.sleep(5)  # the signal arrives before this ends
    assert signal.getsignal(signal.SIGTERM) is before
