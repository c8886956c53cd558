"""Progress reporting for long work (refuter simulations, placebos, bootstraps, cross-fitting).

Library code calls ``task(description, total)`` and advances it; nothing is shown
unless the CLI installed a visible reporter (a rich progress bar on stderr, only
when stderr is a terminal and ``--quiet`` is off).
"""

from __future__ import annotations

import os
from contextlib import contextmanager
from typing import Callable, Iterator


class Reporter:
    """Shows nothing: the default, and what every non-terminal run uses."""

    @contextmanager
    def task(self, description: str, total: int) -> Iterator[Callable[[int], None]]:
        yield lambda n=1: None


class RichReporter(Reporter):
    """A transient rich progress bar on stderr.

    Tasks may nest (a refuter refitting a model that reports its own progress): the
    display starts with the first task and stops with the last. A forked worker
    inherits the reporter but stays silent: only the process that made it draws.
    """

    def __init__(self) -> None:
        from rich.console import Console
        from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

        self._progress = Progress(TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(),
                                  TimeElapsedColumn(), console=Console(stderr=True), transient=True)
        self._pid = os.getpid()
        self._depth = 0

    @contextmanager
    def task(self, description: str, total: int) -> Iterator[Callable[[int], None]]:
        if os.getpid() != self._pid:
            yield lambda n=1: None
            return
        if self._depth == 0:
            self._progress.start()
        self._depth += 1
        tid = self._progress.add_task(description, total=total)
        try:
            yield lambda n=1: self._progress.advance(tid, n)
        finally:
            self._progress.remove_task(tid)
            self._depth -= 1
            if self._depth == 0:
                self._progress.stop()


_reporter: Reporter = Reporter()


def set_reporter(reporter: Reporter) -> None:
    global _reporter
    _reporter = reporter


def task(description: str, total: int):
    """``with task("refuting", 300) as advance: ... advance(n)``."""
    return _reporter.task(description, total)
