"""The group sequential boundaries as causalcli computed them before the banded lattice (up to commit b9355b1 of
causalcli/designs/experiment/sequential.py): the same Armitage-McPherson-Rowe recursion with the whole kernel
matrix between two looks (O(points^2) normal densities a look), Simpson's rule on each region's own grid
(``STEPS_PER_SD`` points per sd of the next increment, at least ``MIN_POINTS``), and Brent's method on each look.
Kept as the reference ``tests/test_experiment_sequential_looks.py`` compares the fast code with; too slow past a
few dozen looks (seconds at 100, minutes for a drift search at 365).
"""

from __future__ import annotations

import math
from typing import Callable, Sequence

import numpy as np
from scipy.optimize import brentq
from scipy.special import ndtr

STEPS_PER_SD = 12
MIN_POINTS = 101
MAX_CRITICAL = 40.0
TAIL_SD = 9.0


def _simpson(low: float, high: float, step: float) -> tuple[np.ndarray, np.ndarray]:
    intervals = max(MIN_POINTS - 1, 2 * math.ceil((high - low) / step / 2))
    points = np.linspace(low, high, intervals + 1)
    weights = np.ones(intervals + 1)
    weights[1:-1:2], weights[2:-1:2] = 4.0, 2.0
    return points, weights * (high - low) / intervals / 3


def _exit_probability(region, t: float, bound: float) -> float:
    if region is None:
        return float(2 * ndtr(-bound / math.sqrt(t)))
    points, weighted, s = region
    sd = math.sqrt(t - s)
    return float(weighted @ (ndtr((-bound - points) / sd) + ndtr((points - bound) / sd)))


def _next_region(region, t: float, bound: float, step: float):
    reach = TAIL_SD * math.sqrt(t)
    low, high = max(-bound, -reach), min(bound, reach)
    points, weights = _simpson(low, high, step)
    if region is None:
        sd = math.sqrt(t)
        density = np.exp(-0.5 * (points / sd) ** 2) / (sd * math.sqrt(2 * math.pi))
    else:
        old, weighted, s = region
        sd = math.sqrt(t - s)
        z = (points[:, None] - old[None, :]) / sd
        density = (np.exp(-0.5 * z * z) / (sd * math.sqrt(2 * math.pi))) @ weighted
    return points, density * weights, t


def spending_boundaries(fractions: Sequence[float], alpha: float,
                        spent: Callable[[float, float], float]) -> list[float]:
    """Two-sided boundaries under the null for the cumulative spending ``spent(t, alpha)``."""
    bounds: list[float] = []
    region = None
    before = 0.0
    for k, t in enumerate(fractions):
        target = spent(t, alpha) - before
        before += target
        scale = math.sqrt(t)
        if _exit_probability(region, t, MAX_CRITICAL * scale) >= target:
            c = MAX_CRITICAL
        else:
            c = brentq(lambda c: _exit_probability(region, t, c * scale) - target, 0.0, MAX_CRITICAL,
                       xtol=1e-12, rtol=1e-12)
        bounds.append(c)
        if k + 1 < len(fractions):
            step = math.sqrt(fractions[k + 1] - t) / STEPS_PER_SD
            region = _next_region(region, t, c * scale, step)
    return bounds
