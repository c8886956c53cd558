"""Progress reporting for long work (refuter simulations, placebos, bootstraps, cross-fitting).

Library code calls ``task(description, total)`` and advances it; nothing is shown
unless the CLI installed a visible reporter (a rich progress bar on stderr, only
when stderr is a terminal and ``--quiet`` is off).
"""

from __future__ import annotations

from contextlib import contextmanager
from typing import Callable, Iterator


class Reporter:
    """Shows nothing: the default, and what every non-terminal run uses."""

    @contextmanager
    def task(self, description: str, total: int) -> Iterator[Callable[[int], None]]:
        yield lambda n=1: None


class RichReporter(Reporter):
    """A transient rich progress bar on stderr."""

    def __init__(self) -> None:
        from rich.console import Console
        from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

        self._progress = Progress(TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(),
                                  TimeElapsedColumn(), console=Console(stderr=True), transient=True)

    @contextmanager
    def task(self, description: str, total: int) -> Iterator[Callable[[int], None]]:
        with self._progress:
            tid = self._progress.add_task(description, total=total)
            yield lambda n=1: self._progress.advance(tid, n)
            self._progress.remove_task(tid)


_reporter: Reporter = Reporter()


def set_reporter(reporter: Reporter) -> None:
    global _reporter
    _reporter = reporter


def task(description: str, total: int):
    """``with task("refuting", 300) as advance: ... advance(n)``."""
    return _reporter.task(description, total)
