"""Progress output and the run log: a one-line bar on a terminal, log lines in ``run.log``."""

from __future__ import annotations

import logging
import sys
import time
from pathlib import Path
from typing import TextIO

LOGGER_NAME = "bayes"


class ProgressBar:
    """A minimal progress reporter: redraws one line on a terminal, logs every 10% otherwise.

    Parameters
    ----------
    stream : file, optional
        Where the bar goes (default ``sys.stderr``).
    logger : logging.Logger, optional
        Receives a line per 10% (and per phase change), so the run log records progress.
    """

    def __init__(self, stream: TextIO | None = None, logger: logging.Logger | None = None) -> None:
        self.stream = stream or sys.stderr
        self.logger = logger or logging.getLogger(LOGGER_NAME)
        self.tty = bool(getattr(self.stream, "isatty", lambda: False)())
        self.phase = ""
        self.start = time.perf_counter()
        self.logged_decile = -1

    def __call__(self, phase: str, done: int, total: int) -> None:
        """Report ``done`` of ``total`` units of work in ``phase``."""
        if phase != self.phase:
            self.finish()
            self.phase, self.start, self.logged_decile = phase, time.perf_counter(), -1
            self.logger.info("%s ...", phase)
        fraction = done / total if total else 1.0
        elapsed = time.perf_counter() - self.start
        if self.tty:
            width = 30
            filled = int(width * fraction)
            bar = "#" * filled + "-" * (width - filled)
            self.stream.write(f"\r  {phase:<12} [{bar}] {fraction:6.1%} {elapsed:6.0f} s")
            self.stream.flush()
        decile = int(fraction * 10)
        if decile > self.logged_decile and total > 1:
            self.logged_decile = decile
            self.logger.debug(
                "%s: %d/%d (%.0f%%) after %.0f s", phase, done, total, 100 * fraction, elapsed
            )

    def finish(self) -> None:
        """End the current bar's line."""
        if self.tty and self.phase:
            self.stream.write("\n")
            self.stream.flush()
        self.phase = ""


def attach_run_log(path: Path, verbose_stream: TextIO | None = None) -> list[logging.Handler]:
    """Send the ``bayes`` loggers to ``path`` (DEBUG) and to the terminal (INFO).

    Returns the handlers, to pass to :func:`detach_run_log` when the run ends.
    """
    logger = logging.getLogger(LOGGER_NAME)
    logger.setLevel(logging.DEBUG)
    file_handler = logging.FileHandler(path, encoding="utf-8")
    file_handler.setLevel(logging.DEBUG)
    file_handler.setFormatter(
        logging.Formatter("%(asctime)s %(levelname)-7s %(name)s: %(message)s")
    )
    terminal = logging.StreamHandler(verbose_stream or sys.stderr)
    terminal.setLevel(logging.INFO)
    terminal.setFormatter(logging.Formatter("%(message)s"))
    logger.addHandler(file_handler)
    logger.addHandler(terminal)
    return [file_handler, terminal]


def detach_run_log(handlers: list[logging.Handler]) -> None:
    """Remove and close handlers added by :func:`attach_run_log`."""
    logger = logging.getLogger(LOGGER_NAME)
    for handler in handlers:
        logger.removeHandler(handler)
        handler.close()
