"""The recursive numerical integration of Armitage, McPherson and Rowe (1969) behind the group sequential boundaries.

On the score scale ``S_k = Z_k sqrt(t_k)`` (a Brownian motion in the information fraction ``t``, with drift
``theta``), the sub-density of ``S_k`` on the continuation region ``(-c_k sqrt t_k, c_k sqrt t_k)`` is carried from
look to look by ``f_k(x) = int f_(k-1)(u) phi((x - u - theta dt) / sd) / sd du`` (``sd = sqrt dt``), integrated by
Simpson's rule on a grid of each region (Jennison and Turnbull 2000, ch. 19). The probability of first crossing at
look ``k`` is the same integral of the normal tails beyond the boundary.

The grid. The integrand's narrowest feature is the kernel, of sd ``sqrt(t_(k+1) - t_k)``, so the grid of look ``k``
has ``STEPS_PER_SD`` points per sd of the next increment (Jennison and Turnbull's rule of about 6r points per sd of
``S_k``, r = 16-32, assumes increments comparable to the information: at 365 daily looks its spacing, with Simpson's
midpoints, is half the kernel's sd at the last look, and the boundaries come out 4e-4 off in z, against 8e-8 at
12 points per sd; both measured against 24 points per sd). The grid spans the region, cut at ``TAIL_SD``
sds of ``S_k``'s mean (below 1e-18 of the mass beyond).

Speed. With K looks the grid holds about ``2 c STEPS_PER_SD sqrt(K)`` points, so a dense kernel matrix costs
``O(K^2)`` normal densities per look. Two facts make a look cost ``O(points x band)`` multiply-adds instead:

* the kernel is cut at ``TAIL_SD`` of its sds, so each point sums over a band of about ``2 TAIL_SD STEPS_PER_SD``
  points of the previous grid, whatever K is;
* every look's grid is one lattice ``low + i step`` with the same ``step`` (the shortest increment's, within reason:
  `grid_steps`), plus the region's upper end when it falls between lattice points, so the kernel between two
  lattices depends on ``i - j`` only: one kernel vector, one convolution (``np.convolve``), and only the end points
  need a row or a column of their own. Looks whose step differs (an unusually short increment, a narrow region)
  take the band by gathering, still ``O(points x band)``.
"""

from __future__ import annotations

import math
import statistics
from dataclasses import dataclass
from typing import Sequence

import numpy as np

from causalcli.inference.distributions import normal_quantile

STEPS_PER_SD = 12   # grid points per sd of the next look's increment (the kernel)
MIN_POINTS = 101    # at least this many points on a region (Simpson's rule on 100 intervals)
TAIL_SD = 9.0       # densities and kernels cut at this many sds (exp(-81 / 2) ~ 2e-18)
MAX_CRITICAL = 40.0  # a boundary no z reaches (the spending of a look is below double precision)
EXIT_REACH = 9.3   # Phi(-9.3) ~ 7e-21: points farther from both boundaries add nothing to a crossing probability
NEWTON_LAST = 1e-7  # a Newton step this small (relative to c) is the last: the next would be below 1e-13
SHORT_INCREMENT = 4.0  # the shared step follows increments down to 1/4 of the median one; shorter ones get their own
_ROOT_2PI = math.sqrt(2 * math.pi)


@dataclass(frozen=True)
class Region:
    """The sub-density of ``S_k`` on the continuation region of look ``k``: the lattice ``low + step * i``
    (``lattice`` points) and possibly the region's upper end after it, with the density times the quadrature
    weight at each point."""

    points: "np.ndarray"
    density_weighted: "np.ndarray"
    t: float
    low: float
    step: float
    lattice: int


def start() -> Region:
    """Before the first look the score is 0 with certainty: one point of weight 1 at t = 0."""
    return Region(np.zeros(1), np.ones(1), 0.0, 0.0, 1.0, 1)


def grid_steps(fractions: Sequence[float], steps_per_sd: float = STEPS_PER_SD) -> list[float]:
    """The grid step of each look but the last (the grid of look k feeds the increment to look k + 1): one step
    for all, ``sqrt(dt) / steps_per_sd`` at the shortest increment, unless an increment is shorter than
    1 / SHORT_INCREMENT of the median one, which then gets a finer step of its own (rather than every look paying
    for it)."""
    increments = [b - a for a, b in zip(fractions, fractions[1:])]
    if not increments:
        return []
    shared = math.sqrt(max(min(increments), statistics.median(increments) / SHORT_INCREMENT)) / steps_per_sd
    return [min(shared, math.sqrt(dt) / steps_per_sd) for dt in increments]


def _quadrature(low: float, high: float, step: float) -> tuple[float, "np.ndarray", "np.ndarray", int]:
    """Points and weights on [low, high]: Simpson's rule on the lattice ``low + i step`` over an even number of
    intervals, then the piece up to ``high`` (shorter than two steps) by the quintic through the last five lattice
    points and ``high``. A region too narrow for MIN_POINTS points at this step gets Simpson's rule on MIN_POINTS
    equally spaced points instead (its own step)."""
    intervals = 2 * math.floor((high - low) / step / 2 * (1 + 1e-12))
    if intervals < MIN_POINTS - 1:
        intervals = MIN_POINTS - 1
        step = (high - low) / intervals
        points = low + step * np.arange(intervals + 1)
        points[-1] = high
        weights = np.ones(intervals + 1)
        weights[1:-1:2], weights[2:-1:2] = 4.0, 2.0
        return step, points, weights * step / 3, intervals + 1
    lattice = low + step * np.arange(intervals + 1)
    weights = np.ones(intervals + 1)
    weights[1:-1:2], weights[2:-1:2] = 4.0, 2.0
    weights *= step / 3
    rest = high - lattice[-1]
    if rest <= 1e-12 * step:
        return step, lattice, weights, intervals + 1
    # the quintic through the last five lattice points and high, integrated from the last lattice point to high
    # (its error is O(step**6), below Simpson's O(step**4): the piece adds no error of its own order)
    ratio = rest / step
    nodes = np.array([-4.0, -3.0, -2.0, -1.0, 0.0, ratio])
    moments = ratio ** np.arange(1, 7) / np.arange(1, 7)
    piece = np.linalg.solve(np.vander(nodes, 6, increasing=True).T, moments) * step
    weights[-5:] += piece[:5]
    return step, np.append(lattice, high), np.append(weights, piece[-1]), intervals + 1


def _dense(old_points: "np.ndarray", old_weighted: "np.ndarray", points: "np.ndarray", sd: float) -> "np.ndarray":
    """``sum_j w_j f_j phi((x_i - u_j) / sd)``, every pair (few points, or a kernel as wide as the grid)."""
    z = (points[:, None] - old_points[None, :]) / sd
    return np.exp(-0.5 * z * z) @ old_weighted


def _banded(old: "np.ndarray", old_low: float, old_step: float, points: "np.ndarray", sd: float) -> "np.ndarray":
    """The same sum over the old lattice for arbitrary points, each over the band of lattice points within
    TAIL_SD sds of it (gathered)."""
    n = len(old)
    reach = TAIL_SD * sd
    width = int(2 * reach / old_step) + 2
    if width >= n:
        return _dense(old_low + old_step * np.arange(n), old, points, sd)
    centred = points - old_low
    first = np.clip(np.ceil((centred - reach) / old_step), 0, n).astype(np.int64)
    index = first[:, None] + np.arange(width)[None, :]  # at most n + width - 1: zeros past the lattice
    padded = np.concatenate([old, np.zeros(width)])
    z = (centred[:, None] - old_step * index) / sd
    return np.einsum("ij,ij->i", np.exp(-0.5 * z * z), padded[index])


def _convolved(old: "np.ndarray", offset: float, step: float, count: int, sd: float) -> "np.ndarray":
    """The same sum at the lattice ``x_i = u_0 + offset + i step`` (i < count) from the lattice ``u_j = u_0 + j step``:
    ``x_i - u_j = offset + (i - j) step``, so one kernel vector over the lags within TAIL_SD sds and a convolution."""
    reach = TAIL_SD * sd
    first, last = math.ceil((-reach - offset) / step), math.floor((reach - offset) / step)
    out = np.zeros(count)
    if last < first or last < -(len(old) - 1) or first > count - 1:  # no lag within reach: no mass carried
        return out
    # lags beyond those any (i, j) pair can take are dropped: no use computing them
    first, last = max(first, -(len(old) - 1)), min(last, count - 1)
    lags = np.arange(first, last + 1)
    kernel = np.exp(-0.5 * ((offset + step * lags) / sd) ** 2)
    full = np.convolve(old, kernel)  # full[p] = sum_j old[j] kernel[p - j], lag p - j + first = i - j
    lo = max(0, first)
    hi = min(count, first + len(full))
    out[lo:hi] = full[lo - first:hi - first]
    return out


def carried(region: Region, low: float, step: float, points: "np.ndarray", lattice: int, shift: float,
            sd: float) -> "np.ndarray":
    """The sub-density at ``points`` (a lattice of ``lattice`` points from ``low`` by ``step``, then any others) of
    ``S_s + N(shift, sd**2)`` for ``S_s`` on ``region``."""
    old, old_lattice = region.density_weighted, region.lattice
    centres = points - shift  # the kernel's centre for each new point, on the old scale
    density = np.empty(len(points))
    if step == region.step and region.lattice > 1:
        density[:lattice] = _convolved(old[:old_lattice], low - shift - region.low, step, lattice, sd)
    else:
        density[:lattice] = _banded(old[:old_lattice], region.low, region.step, centres[:lattice], sd)
    if len(points) > lattice:  # the region's upper end: a row over every old point
        density[lattice:] = _dense(region.points, old, centres[lattice:], sd)
    if len(old) > old_lattice:  # the old region's upper end: a column over every new lattice point
        density[:lattice] += _dense(region.points[old_lattice:], old[old_lattice:], centres[:lattice], sd)
    return density / (sd * _ROOT_2PI)


def next_region(region: Region, t: float, bound: float, drift: float, step: float) -> Region:
    """The region of the look at information ``t`` with boundary ``bound`` on the score scale, from the previous one."""
    # the sub-density is below 1e-18 of its mass beyond TAIL_SD sds of S_k's mean: no grid there
    centre, reach = drift * t, TAIL_SD * math.sqrt(t)
    low, high = max(-bound, centre - reach), min(bound, centre + reach)
    if low >= high or not region.density_weighted.any():  # no mass left to continue (a drift beyond the boundary)
        return Region(np.zeros(1), np.zeros(1), t, 0.0, 1.0, 1)
    step, points, weights, lattice = _quadrature(low, high, step)
    density = carried(region, low, step, points, lattice, drift * (t - region.t), math.sqrt(t - region.t))
    return Region(points, density * weights, t, low, step, lattice)


class Look:
    """The probability of first crossing ``|Z| >= c`` at information ``t`` as a function of ``c``, from the previous
    look's region: ``sum_j w_j f_j [Phi((-c sqrt t - m_j) / sd) + Phi((m_j - c sqrt t) / sd)]``, ``m_j`` the mean of
    ``S_t`` given ``S_s = u_j``. What does not depend on ``c`` is computed once."""

    def __init__(self, region: Region, t: float, drift: float):
        sd = math.sqrt(t - region.t)
        self.centres = (region.points + drift * (t - region.t)) / sd
        self.weights = region.density_weighted
        self.rate = math.sqrt(t) / sd  # d(boundary in sds of the increment) / dc

    def probability(self, c: float) -> float:
        """The probability from the points within EXIT_REACH sds of a boundary (the rest adds below 1e-20 a look)."""
        from scipy.special import ndtr

        below, above = self._near(c, EXIT_REACH)
        return float(self.weights[below] @ ndtr(-c * self.rate - self.centres[below]) +
                     self.weights[above] @ ndtr(self.centres[above] - c * self.rate))

    def with_slope(self, c: float, reach: float) -> tuple[float, float]:
        """The probability and its derivative in ``c`` (the normal density at both boundaries, negative), from the
        points within ``reach`` sds of a boundary: the others add tails below ``Phi(-reach)``."""
        from scipy.special import ndtr

        below, above = self._near(c, reach)
        lower, upper = -c * self.rate - self.centres[below], self.centres[above] - c * self.rate
        low_weights, up_weights = self.weights[below], self.weights[above]
        probability = low_weights @ ndtr(lower) + up_weights @ ndtr(upper)
        density = low_weights @ np.exp(-0.5 * lower * lower) + up_weights @ np.exp(-0.5 * upper * upper)
        return float(probability), float(-density * self.rate / _ROOT_2PI)

    def _near(self, c: float, reach: float) -> tuple[slice, slice]:
        """The points within ``reach`` sds of the lower and of the upper boundary at ``c`` (the grid is sorted)."""
        below = int(np.searchsorted(self.centres, -c * self.rate + reach))
        above = int(np.searchsorted(self.centres, c * self.rate - reach))
        return slice(0, below), slice(above, len(self.centres))


def boundary(look: Look, target: float, start_at: float) -> float:
    """The ``c`` at which the look's crossing probability is ``target``: Newton's method on ``log P(c)`` (nearly
    linear in the tails, where early O'Brien-Fleming looks spend 1e-10 or less), kept inside a bracket that every
    evaluation narrows and bisected when a step leaves it. Newton's error after a step is about the square of the
    step (times ``c``), so a step below NEWTON_LAST ends the search without evaluating again: from a start near the
    root (the boundaries extrapolated from the previous looks) that is two evaluations."""
    low, high = 0.0, MAX_CRITICAL
    if target <= 0:
        return MAX_CRITICAL
    c = min(max(start_at, low), high)
    log_target = math.log(target)
    # points farther than this from a boundary add less than 1e-17 of the target (near the root)
    reach = -normal_quantile(max(1e-17 * target, 1e-300))
    for _ in range(200):
        probability, slope = look.with_slope(c, reach)
        if probability > target:
            low = c
        else:
            high = c
        if probability > 0 and slope < 0:
            step = -(math.log(probability) - log_target) * probability / slope
            if abs(step) <= NEWTON_LAST * max(1.0, c) and low <= c + step <= high:
                return min(c + step, MAX_CRITICAL)
            following = c + step
        else:  # the probability is below double precision here: no slope to follow
            following = high
        if not low < following < high:  # outside the bracket: bisect
            following = 0.5 * (low + high)
        if high - low <= 1e-13 * max(1.0, c):
            return MAX_CRITICAL if following >= MAX_CRITICAL - 1e-9 else following
        c = following
    return c
