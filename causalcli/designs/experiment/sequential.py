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
ch. 19) on one lattice for every look, so that a look costs the same however many there are
(``recursion.py``). The interval at look ``k`` is the repeated confidence interval
``estimate +- c_k std_error`` and its p-value the repeated p-value (the smallest level whose boundary
``|z|`` reaches; Jennison and Turnbull 2000, ch. 9).
"""

from __future__ import annotations

import math
from typing import Callable, Sequence, Union

import numpy as np

from causalcli.designs.experiment.recursion import (MAX_CRITICAL, STEPS_PER_SD, Look, boundary, grid_steps, next_region,
                                                   start)
from causalcli.inference.distributions import (normal_cdf, normal_density, normal_quantile, normal_two_sided_p,
                                               normal_upper_tail)

SMALLEST_P = 1e-300  # the repeated p-value's floor (its boundary stays below recursion.MAX_CRITICAL)


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


def _check_fractions(fractions: Sequence[float]) -> None:
    if not fractions or any(b <= a for a, b in zip([0.0, *fractions], fractions)):
        raise ValueError("information fractions must be positive and increasing")


def _first_guess(bounds: list[float], fractions: Sequence[float], target: float) -> float:
    """Where the root-finder starts for the next look: the normal quantile of the first look's spending, then the
    line through the last two boundaries (in information), or the last boundary when that is capped."""
    k = len(bounds)
    if k == 0:
        return -normal_quantile(min(0.25, max(target, 1e-300) / 2))
    if k == 1 or max(bounds[-2:]) >= MAX_CRITICAL:
        return bounds[-1]
    slope = (bounds[-1] - bounds[-2]) / (fractions[k - 1] - fractions[k - 2])
    return bounds[-1] + slope * (fractions[k] - fractions[k - 1])


def spending_boundaries(fractions: Sequence[float], alpha: float, spending: Spending,
                        steps_per_sd: float = STEPS_PER_SD) -> list[float]:
    """Two-sided z boundaries ``c_k`` at the given information fractions for the Lan-DeMets spending function:
    each look's by a root-finder on its crossing probability given the previous look's sub-density."""
    _check_fractions(fractions)
    steps = grid_steps(fractions, steps_per_sd)
    bounds: list[float] = []
    region = start()
    before = 0.0
    for k, t in enumerate(fractions):
        target = spent(t, alpha, spending) - before
        before += target
        c = boundary(Look(region, t, 0.0), target, _first_guess(bounds, fractions, target))
        bounds.append(c)
        if k + 1 < len(fractions):
            region = next_region(region, t, c * math.sqrt(t), 0.0, steps[k])
    return bounds


def exit_probabilities(bounds: Sequence[float], fractions: Sequence[float], drift: float = 0.0,
                       steps_per_sd: float = STEPS_PER_SD) -> list[float]:
    """P(first crossing of ``|Z_k| >= c_k`` at each look) when ``E[Z at t = 1] = drift``."""
    _check_fractions(fractions)
    steps = grid_steps(fractions, steps_per_sd)
    out = []
    region = start()
    for k, (c, t) in enumerate(zip(bounds, fractions)):
        out.append(Look(region, t, drift).probability(c))
        if k + 1 < len(fractions):
            region = next_region(region, t, c * math.sqrt(t), drift, steps[k])
    return out


def _increasing_root(f: Callable[[float], float], x0: float, f0: float, x1: float, tol: float) -> float:
    """The root of an increasing ``f`` from ``(x0, f0)`` and a second guess ``x1``: secant steps (the functions
    solved here are nearly linear near their root, so from guesses this good they converge in two or three),
    bisecting inside the bracket of the signs seen so far whenever a step leaves it. A step shorter than ``tol``
    is the last: the secant's error after it is about ``tol`` times the previous error."""
    below, above = (x0, math.inf) if f0 < 0 else (-math.inf, x0)
    for _ in range(100):
        f1 = f(x1)
        if f1 == 0:
            return x1
        if f1 < 0:
            below = max(below, x1)
        else:
            above = min(above, x1)
        following = x1 - f1 * (x1 - x0) / (f1 - f0) if f1 != f0 else math.nan
        if not below < following < above:
            if not (math.isfinite(below) and math.isfinite(above)):
                raise ArithmeticError("the secant left the function's range without a bracket")
            following = 0.5 * (below + above)
        if abs(following - x1) <= tol or above - below <= tol:
            return following
        x0, f0, x1 = x1, f1, following
    return x1


def drift_for_power(bounds: Sequence[float], fractions: Sequence[float], power: float) -> float:
    """The drift (expected z at the last look, fraction 1) at which the test rejects with this power. The test
    rejects whenever ``|Z_K| >= c_K``, so the drift that gives the power to the last look alone is an upper bound
    (equal for one look); from there a step along that fixed test's power curve, then secant steps."""
    def short(theta: float) -> float:
        return sum(exit_probabilities(bounds, fractions, theta)) - power

    last = bounds[-1]
    high = power_multiplier(last, power)
    excess = short(high)
    if excess <= 0:
        return high
    slope = normal_density(high - last) - normal_density(high + last)  # d power / d drift of the last look alone
    return _increasing_root(short, high, excess, high - excess / slope, 1e-7)


def equally_spaced(looks: int) -> list[float]:
    return [k / looks for k in range(1, looks + 1)]


def repeated_p_value(z: float, fractions: Sequence[float], spending: str,
                     known: dict[float, float] | None = None) -> float:
    """The smallest level at which the last look's boundary is reached by ``|z|`` (1 when none is). Solved for the
    level's fixed-horizon critical value ``q`` (level = ``2 Phi(-q)``), in which the last boundary is nearly
    ``q`` plus a constant: from the fixed-horizon p-value (every boundary is at least the fixed-horizon one, so
    the repeated p-value is at least the fixed one) a step of that constant, then secant steps.

    ``known`` (``q`` -> last boundary, for these fractions and spending) keeps the boundaries computed across
    calls: the p-values of an analysis' many effects then start where the boundaries already known put them."""
    if not math.isfinite(z):
        return float("nan")
    size = abs(z)
    known = {} if known is None else known

    def gap(q: float) -> float:
        if q not in known:
            known[q] = spending_boundaries(fractions, normal_two_sided_p(q), spending)[-1]
        return known[q] - size

    level = max(SMALLEST_P, min(1 - 2e-12, normal_two_sided_p(z)))
    start = -normal_quantile(level / 2)
    lowest = -normal_quantile((1 - 1e-12) / 2)  # the level 1 - 1e-12: reached by no smaller q
    if len(known) >= 2 and level == normal_two_sided_p(z):  # the root is below start (c_K(q) >= q)
        from_known = _from_known(known, size)
        if from_known is not None and lowest < from_known[0] < start:
            guess, slope = from_known
            excess = gap(guess)
            root = _increasing_root(gap, guess, excess, guess - excess / slope, 1e-7)
            if lowest < root < start:
                return normal_two_sided_p(root)
    excess = gap(start)
    if excess <= 0:
        return level
    guess = start - excess
    if guess <= lowest:
        if gap(lowest) > 0:
            return 1.0
        guess = lowest
    return normal_two_sided_p(_increasing_root(gap, start, excess, guess, 1e-7))


def _from_known(known: dict[float, float], size: float) -> tuple[float, float] | None:
    """Where the known boundaries put the ``q`` whose last boundary is ``size``, and the slope of the boundary in
    ``q`` there: the inverse interpolation (``q`` as a polynomial in the boundary) through the two or three known
    boundaries nearest ``size``."""
    nearest = sorted(known.items(), key=lambda qc: abs(qc[1] - size))[:3]
    qs, cs = np.array([q for q, _ in nearest]), np.array([c for _, c in nearest])
    if len(set(cs)) < len(cs) or np.any(np.diff(qs[np.argsort(cs)]) <= 0):  # not increasing: no interpolation
        return None
    fit = np.polynomial.Polynomial.fit(cs, qs, len(cs) - 1)
    slope = fit.deriv()(size)
    return (float(fit(size)), 1 / float(slope)) if slope > 0 else None


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
