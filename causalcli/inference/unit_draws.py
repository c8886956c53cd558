"""Draws of units for the placebo, bootstrap and jackknife of panel estimators on a units x periods matrix
(controls first), after Arkhangelsky et al. (2021), Algorithms 2-4, and their refits in order.

* ``placebo``: a permutation of the N0 controls a replicate (the caller lets the last N1 play the treated);
* ``bootstrap``: N units drawn with replacement, a draw without a control or without a treated unit
  redrawn (at most 20 B attempts);
* ``jackknife``: each of the N units left out once (``[j]``).

The draws come from one seeded stream, made up front, so a result does not depend on how the refits are
spread over processes (``in_order``).
"""

from __future__ import annotations

from typing import Any, Callable

import numpy as np


def unit_draws(method: str, N: int, N0: int, replications: int, seed: int) -> tuple[list[np.ndarray], int]:
    """The draws of ``method`` and the attempts made (bootstrap draws redrawn included)."""
    rng = np.random.default_rng(seed)
    if method == "placebo":
        return [rng.permutation(N0) for _ in range(replications)], replications
    if method == "bootstrap":
        draws: list[np.ndarray] = []
        attempts = 0
        while len(draws) < replications and attempts < 20 * replications:
            attempts += 1
            draw = rng.choice(N, size=N, replace=True)
            if 0 < np.count_nonzero(draw < N0) < N:
                draws.append(draw)
        return draws, attempts
    return [np.asarray([j]) for j in range(N)], N


def in_order(work: Callable[[list[np.ndarray]], list[Any]], draws: list[np.ndarray], jobs: int,
             parallel_from: int, chunks_per_job: int = 4) -> list[Any]:
    """``work`` (a picklable function of a list of draws returning one row a draw) over ``draws``: in this
    process below ``parallel_from`` draws or with one job, else in ``chunks_per_job`` chunks a process over
    ``jobs`` processes; rows in the order of the draws."""
    if jobs <= 1 or len(draws) < parallel_from:
        return list(work(draws))
    from joblib import Parallel, delayed

    bounds = np.linspace(0, len(draws), min(len(draws), chunks_per_job * jobs) + 1).astype(int)
    parts = Parallel(n_jobs=jobs, backend="multiprocessing")(
        delayed(work)(draws[a:b]) for a, b in zip(bounds[:-1], bounds[1:]))
    return [row for part in parts for row in part]
