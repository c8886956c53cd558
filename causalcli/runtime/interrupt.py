"""Ctrl-C remembered, so that a library that turns it into another exception cannot hide it.

Cython code interrupted while it parses a buffer raises ``ValueError`` (scikit-learn's
boosting: "... is not a valid PEP 3118 buffer format string") where Python raised
``KeyboardInterrupt``; the batch would then count it as that study's failure and go on.
The handler notes the signal before raising, and the batch asks ``interrupted()``.
"""

from __future__ import annotations

import signal
import threading
from types import FrameType
from typing import Callable

_INTERRUPTED = False


def _on_sigint(signum: int, frame: FrameType | None) -> None:
    global _INTERRUPTED
    _INTERRUPTED = True
    raise KeyboardInterrupt


def install() -> Callable[[], None]:
    """Note every SIGINT until the returned function is called, which puts the previous handler back
    (main thread only; an ignored or custom SIGINT is left as it is)."""
    global _INTERRUPTED
    _INTERRUPTED = False
    if threading.current_thread() is not threading.main_thread():
        return lambda: None
    previous = signal.getsignal(signal.SIGINT)
    if previous is not signal.default_int_handler:
        return lambda: None
    signal.signal(signal.SIGINT, _on_sigint)

    def restore() -> None:
        global _INTERRUPTED
        _INTERRUPTED = False
        signal.signal(signal.SIGINT, previous)

    return restore


def interrupted() -> bool:
    """Whether a SIGINT arrived while ``install``'s handler was in place."""
    return _INTERRUPTED
