"""Single-threaded BLAS around thin matrix products, without rescanning libraries each time.

``threadpoolctl.threadpool_limits`` scans the loaded libraries on every call (about a
millisecond, which refuters calling a fit hundreds of times notice); the controller is
made once and reused. numpy's BLAS is loaded before the first call, so the cache sees it.
"""

from __future__ import annotations

from typing import Any

_controller: Any = None


def _blas() -> Any:
    global _controller
    if _controller is None:
        from threadpoolctl import ThreadpoolController

        _controller = ThreadpoolController()
    return _controller


def single_threaded_blas() -> Any:
    """Context manager: BLAS on one thread (threads only spin on (k x n) products with small k)."""
    return _blas().limit(limits=1, user_api="blas")


def all_cores_blas() -> Any:
    """Context manager: BLAS on every core this process may use, for a large product inside a
    single-threaded section (a bootstrap's draws x units by units x statistics)."""
    import os

    return _blas().limit(limits=len(os.sched_getaffinity(0)), user_api="blas")
