"""How many worker processes ``--jobs`` means."""

from __future__ import annotations

import os


def resolve_jobs(jobs: int | None) -> int:
    """``--jobs`` as a count: unset or <= 0 means every core."""
    cores = os.cpu_count() or 1
    if jobs is None or jobs <= 0:
        return cores
    return jobs
