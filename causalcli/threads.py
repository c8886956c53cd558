"""Single-threaded BLAS around thin matrix products, without rescanning libraries each time.

``threadpoolctl.threadpool_limits`` scans the loaded libraries on every call (about a
millisecond, which refuters calling a fit hundreds of times notice); the controller is
made once and reused. numpy's BLAS is loaded before the first call, so the cache sees it.
"""

from __future__ import annotations

from typing import Any

_controller: Any = None


def single_threaded_blas() -> Any:
    """Context manager: BLAS on one thread (threads only spin on (k x n) products with small k)."""
    global _controller
    if _controller is None:
        from threadpoolctl import ThreadpoolController

        _controller = ThreadpoolController()
    return _controller.limit(limits=1, user_api="blas")
