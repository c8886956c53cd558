"""Sequential testing of experiments: intervals and p-values that stay valid when results are read every day.

Two methods, both applied to a z statistic ``estimate / std_error`` whatever the metric (mean,
proportion, ratio, CUPED, absolute or relative effect): they replace the fixed-horizon critical
value ``z_(1-alpha/2)`` by a larger one.

``always_valid``: the asymptotic confidence sequence of Waudby-Smith, Arnold, Wu, Ramdas et al.
(2023, "Time-uniform central limit theory and asymptotic confidence sequences", arXiv:2103.06476,
eq. 9 with the tuning of its eq. 161), as GrowthBook's ``gbstats`` (``SequentialTwoSidedTTest``)
computes it. With ``N`` the units of the two arms compared and ``rho**2 = (-2 log alpha +
log(1 - 2 log alpha)) / tuning``, the half-width is ``std_error * m(N)`` with

    m(N)**2 = 2 (N rho**2 + 1) log(sqrt(N rho**2 + 1) / alpha) / (N rho**2),

the interval at the current sample size (no running intersection over looks), and the p-value is
``min(1, 1 / e)`` for the e-value ``e = exp(rho**2 N z**2 / (2 (N rho**2 + 1))) / sqrt(N rho**2 + 1)``
(its eq. 155), so that ``p <= alpha`` exactly when the interval excludes zero. ``tuning`` is the
total sample size at which the sequence is narrowest relative to the fixed-horizon interval.

``group_sequential``: a two-sided test with Lan and DeMets' (1983) alpha spending over planned
looks at information fractions ``t_k``: O'Brien-Fleming-type, ``alpha / 2`` spent on each side as
``2 - 2 Phi(z_(1-alpha/4) / sqrt t)`` (the two-sided convention of Lan and DeMets' tables and of
``ldbounds`` and ``gsDesign``), or Pocock-type ``alpha(t) = alpha log(1 + (e - 1) t)``. The boundary ``c_k`` of look ``k``
spends ``alpha(t_k) - alpha(t_(k-1))``: the probability, under the null, of first crossing at look
``k`` is computed by the recursive numerical integration of Armitage, McPherson and Rowe (1969) on
the score scale ``S_k = Z_k sqrt(t_k)`` (a Brownian motion in ``t``): the sub-density of ``S_k`` on
the continuation region, carried from look to look by Simpson's rule (Jennison and Turnbull 2000,
ch. 19). The interval at look ``k`` is the repeated confidence interval ``estimate +- c_k std_error``
and its p-value the repeated p-value (the smallest level whose boundary ``|z|`` reaches; Jennison
and Turnbull 2000, ch. 9).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Callable, Sequence, Union

import numpy as np

from causalcli.inference.distributions import normal_cdf, normal_quantile, normal_two_sided_p, normal_upper_tail

# Simpson's rule: grid step of the score scale, as a fraction of the sd of the increment between looks
STEPS_PER_SD = 12
MIN_POINTS = 101
MAX_CRITICAL = 40.0  # a boundary no z reaches (the spending of a look is below double precision)
TAIL_SD = 9.0       # grid of the score's sub-density: to this many sds of its mean (exp(-81 / 2) ~ 2e-18)
SMALLEST_P = 1e-300  # the repeated p-value's floor (its boundary stays below MAX_CRITICAL)  # a boundary no z reaches (the spending of a look is below double precision)


# ---------------------------------------------------------------- always valid (confidence sequences)


def _rho_squared(alpha: float, tuning: float) -> float:
    return (-2 * math.log(alpha) + math.log(1 - 2 * math.log(alpha))) / tuning


def always_valid_multiplier(units: float, alpha: float, tuning: float) -> float:
    """The confidence sequence's half-width in standard errors at ``units`` units of the two arms."""
    v = units * _rho_squared(alpha, tuning)
    return math.sqrt(2 * (v + 1) * math.log(math.sqrt(v + 1) / alpha) / v)


def always_valid_p(z: float, units: float, alpha: float, tuning: float) -> float:
    """The always-valid p-value (1 / e-value, at most 1) of a z statistic at ``units`` units."""
    if not math.isfinite(z):
        return float("nan")
    v = units * _rho_squared(alpha, tuning)
    log_e = v * z * z / (2 * (v + 1)) - 0.5 * math.log(v + 1)
    return 1.0 if log_e <= 0 else math.exp(-log_e)


def always_valid_multipliers(units: "np.ndarray", alpha: float, tuning: float) -> "np.ndarray":
    """``always_valid_multiplier`` over an array of sample sizes (the simulation's looks)."""
    v = np.asarray(units, dtype=float) * _rho_squared(alpha, tuning)
    return np.sqrt(2 * (v + 1) * np.log(np.sqrt(v + 1) / alpha) / v)


# ---------------------------------------------------------------- group sequential (alpha spending)


Spending = Union[str, Callable[[float, float], float]]  # a name, or (t, alpha) -> alpha spent by t


def spent(t: float, alpha: float, spending: Spending) -> float:
    """Lan-DeMets cumulative two-sided alpha spent by information fraction ``t`` (all of it from t = 1)."""
    if callable(spending):
        return spending(t, alpha)
    if t >= 1:
        return alpha
    if t <= 0:
        return 0.0
    if spending == "obrien_fleming":  # alpha / 2 on each side, each spent as 2 - 2 Phi(z_(1-alpha/4) / sqrt t)
        return 4 * normal_upper_tail(-normal_quantile(alpha / 4) / math.sqrt(t))  # tails: no 1 - tiny
    if spending == "pocock":
        return alpha * math.log(1 + (math.e - 1) * t)
    raise ValueError(spending)


@dataclass
class _Region:
    """The sub-density of the score ``S_k`` on the continuation region of look ``k`` (grid and Simpson weights)."""

    points: "np.ndarray"
    density_weighted: "np.ndarray"  # density x Simpson weight at each point
    t: float


def _simpson(low: float, high: float, step: float) -> tuple["np.ndarray", "np.ndarray"]:
    intervals = max(MIN_POINTS - 1, 2 * math.ceil((high - low) / step / 2))
    points = np.linspace(low, high, intervals + 1)
    weights = np.ones(intervals + 1)
    weights[1:-1:2], weights[2:-1:2] = 4.0, 2.0
    return points, weights * (high - low) / intervals / 3


def _exit_probability(region: _Region | None, t: float, bound: float, drift: float) -> float:
    """P(the score first leaves (-bound, bound) at information ``t``), from the region of the previous look."""
    from scipy.special import ndtr

    if region is None:  # first look: S ~ N(drift t, t)
        sd = math.sqrt(t)
        return float(ndtr((-bound - drift * t) / sd) + ndtr((drift * t - bound) / sd))
    sd = math.sqrt(t - region.t)
    mean = region.points + drift * (t - region.t)
    tails = ndtr((-bound - mean) / sd) + ndtr((mean - bound) / sd)
    return float(region.density_weighted @ tails)


def _next_region(region: _Region | None, t: float, bound: float, drift: float, step_sd: float) -> _Region:
    from scipy.special import ndtr  # noqa: F401  (scipy.stats is not needed: the normal density is closed form)

    # the sub-density is below 1e-18 of its mass beyond TAIL_SD sds of S_k's mean: no grid there
    centre, reach = drift * t, TAIL_SD * math.sqrt(t)
    low, high = max(-bound, centre - reach), min(bound, centre + reach)
    if low >= high:  # the continuation region holds no mass (a drift far beyond the boundary)
        return _Region(np.zeros(1), np.zeros(1), t)
    points, weights = _simpson(low, high, step_sd)
    if region is None:
        sd = math.sqrt(t)
        density = np.exp(-0.5 * ((points - drift * t) / sd) ** 2) / (sd * math.sqrt(2 * math.pi))
    else:
        sd = math.sqrt(t - region.t)
        z = (points[:, None] - region.points[None, :] - drift * (t - region.t)) / sd
        density = (np.exp(-0.5 * z * z) / (sd * math.sqrt(2 * math.pi))) @ region.density_weighted
    return _Region(points, density * weights, t)


def _step(fractions: Sequence[float], k: int) -> float:
    previous = fractions[k - 1] if k else 0.0
    return math.sqrt(fractions[k] - previous) / STEPS_PER_SD


def _check_fractions(fractions: Sequence[float]) -> None:
    if not fractions or any(b <= a for a, b in zip([0.0, *fractions], fractions)):
        raise ValueError("information fractions must be positive and increasing")


def spending_boundaries(fractions: Sequence[float], alpha: float, spending: Spending) -> list[float]:
    """Two-sided z boundaries ``c_k`` at the given information fractions for the Lan-DeMets spending function."""
    from scipy.optimize import brentq

    _check_fractions(fractions)
    bounds: list[float] = []
    region: _Region | None = None
    before = 0.0
    for k, t in enumerate(fractions):
        target = spent(t, alpha, spending) - before
        before += target
        scale = math.sqrt(t)
        if _exit_probability(region, t, MAX_CRITICAL * scale, 0.0) >= target:
            c = MAX_CRITICAL
        else:
            c = brentq(lambda c: _exit_probability(region, t, c * scale, 0.0) - target, 0.0, MAX_CRITICAL,
                       xtol=1e-12, rtol=1e-12)
        bounds.append(c)
        if k + 1 < len(fractions):
            region = _next_region(region, t, c * scale, 0.0, _step(fractions, k + 1))
    return bounds


def exit_probabilities(bounds: Sequence[float], fractions: Sequence[float], drift: float = 0.0) -> list[float]:
    """P(first crossing of ``|Z_k| >= c_k`` at each look) when ``E[Z at t = 1] = drift``."""
    _check_fractions(fractions)
    out = []
    region: _Region | None = None
    for k, (c, t) in enumerate(zip(bounds, fractions)):
        scale = math.sqrt(t)
        out.append(_exit_probability(region, t, c * scale, drift))
        if k + 1 < len(fractions):
            region = _next_region(region, t, c * scale, drift, _step(fractions, k + 1))
    return out


def drift_for_power(bounds: Sequence[float], fractions: Sequence[float], power: float) -> float:
    """The drift (expected z at the last look, fraction 1) at which the test rejects with this power."""
    from scipy.optimize import brentq

    def short(theta: float) -> float:
        return sum(exit_probabilities(bounds, fractions, theta)) - power

    high = bounds[-1] + normal_quantile(power) + 1
    while short(high) < 0:
        high *= 2
    return brentq(short, 0.0, high, xtol=1e-10, rtol=1e-12)


def equally_spaced(looks: int) -> list[float]:
    return [k / looks for k in range(1, looks + 1)]


def repeated_p_value(z: float, fractions: Sequence[float], spending: str) -> float:
    """The smallest level at which the last look's boundary is reached by ``|z|`` (1 when none is)."""
    from scipy.optimize import brentq

    if not math.isfinite(z):
        return float("nan")

    def gap(log_level: float) -> float:
        return spending_boundaries(fractions, math.exp(log_level), spending)[-1] - abs(z)

    # every boundary is at least the fixed-horizon one (|Z_k| >= c_k is a crossing by look k), so the
    # repeated p-value is at least the fixed-horizon p-value: the bracket's lower end
    high = math.log(1 - 1e-12)
    low = math.log(max(SMALLEST_P, min(1 - 2e-12, normal_two_sided_p(z))))
    if gap(high) > 0:
        return 1.0
    if gap(low) <= 0:
        return math.exp(low)
    return math.exp(brentq(gap, low, high, xtol=1e-7))


def always_valid_units(units_fixed: float, alpha: float, power: float, tuning: float, k_fixed: float) -> float:
    """Units (of the two arms) at which the confidence sequence, read once at that size, has the power that a
    fixed design reaches with ``units_fixed``: where ``k_cs(n) se(n)`` reaches the effect, ``k_cs(n)`` being
    the effect in standard errors detected with critical value ``m(n)``; se(n) falls as ``1 / sqrt(n)``.
    ``k_fixed`` is the fixed design's multiplier (``plan.detectable_multiplier``)."""
    from scipy.optimize import brentq

    def short(units: float) -> float:  # the effect detectable at `units`, in fixed-design standard errors, minus k
        return power_multiplier(always_valid_multiplier(units, alpha, tuning), power) * \
            math.sqrt(units_fixed / units) - k_fixed

    low, high = units_fixed, 2 * units_fixed  # the sequence is wider than the fixed interval: more units
    while short(high) > 0:
        low, high = high, 2 * high
    return brentq(short, low, high, xtol=1e-9 * units_fixed, rtol=1e-13)


def power_multiplier(critical: float, power: float) -> float:
    """The effect in standard errors that a two-sided test with critical value ``critical`` detects with power
    ``power`` (both tails, as ``plan.detectable_multiplier`` counts them)."""
    from scipy.optimize import brentq

    def short(k: float) -> float:
        return normal_cdf(k - critical) + normal_cdf(-k - critical) - power

    return brentq(short, 0.0, critical + normal_quantile(power) + 1, xtol=1e-14, rtol=1e-15)
