"""Import, in a background thread, the heavy modules a fit will need while the data load.

``scipy.special`` takes 0.2-0.5 s to import; DuckDB reads a file with the GIL released,
so importing it meanwhile takes that time off the command. The import system's per-module
locks make a concurrent import of the same module wait for this one, never run it twice.
"""

from __future__ import annotations

import importlib
import threading


def preload(modules: tuple[str, ...]) -> threading.Thread | None:
    """Start importing ``modules`` in a daemon thread; None when there is nothing to import."""
    if not modules:
        return None

    def run() -> None:
        for name in modules:
            try:
                importlib.import_module(name)
            except Exception:  # pragma: no cover - the fit's own import then reports the problem
                return

    thread = threading.Thread(target=run, name="causalcli-preload", daemon=True)
    thread.start()
    return thread
