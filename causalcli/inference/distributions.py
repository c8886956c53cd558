"""Tails and quantiles of the normal, Student t, F and chi-square distributions: the one place the package gets them.

t, F and chi-square come from ``scipy.special`` (``stdtr``, ``stdtrit``, ``fdtrc``, ``chdtrc``: the functions
``scipy.stats`` itself calls for ``t.sf``, ``t.ppf``, ``f.sf`` and ``chi2.sf``), imported inside each function:
``scipy.special`` costs about 0.3 s to import, which ``causalcli --help`` and ``validate`` must not pay.

The scalar normal stays on the standard library (``math.erfc``, ``statistics.NormalDist``, both accurate to
double precision). Two reasons: scipy's ``ndtri`` and ``NormalDist.inv_cdf`` differ in the last digit at the
usual levels (0.95, 0.975, 0.995), and ``2 ndtr(-z)`` and ``erfc(z / sqrt 2)`` at most z, so switching would move
every normal interval and p-value the package prints (the golden test); and the designs that need only the normal
(weighting, matching, synthetic control) would import scipy for it. The array versions, used where a whole vector
is evaluated at once (the truncated normal of HonestDiD), come from ``scipy.special``.

A t with ``df`` None or infinite is the standard normal.
"""

from __future__ import annotations

import math
from statistics import NormalDist
from typing import TYPE_CHECKING

if TYPE_CHECKING:  # pragma: no cover
    import numpy as np

_STANDARD_NORMAL = NormalDist()


def normal_quantile(p: float) -> float:
    """The p-quantile of the standard normal."""
    return _STANDARD_NORMAL.inv_cdf(p)


def normal_cdf(x: float) -> float:
    """P(Z <= x) for a standard normal Z."""
    return _STANDARD_NORMAL.cdf(x)


def normal_density(x: float) -> float:
    """The standard normal density at x."""
    return _STANDARD_NORMAL.pdf(x)


def normal_two_sided_p(z: float) -> float:
    """P(|Z| >= |z|) for a standard normal Z; NaN when z is not finite."""
    if not math.isfinite(z):
        return float("nan")
    return math.erfc(abs(z) / math.sqrt(2.0))


def normal_upper_tail(z: float) -> float:
    """P(Z >= z) for a standard normal Z."""
    return 0.5 * math.erfc(z / math.sqrt(2.0))


def normal_cdf_array(x: "np.ndarray") -> "np.ndarray":
    """P(Z <= x) elementwise for a standard normal Z."""
    from scipy.special import ndtr

    return ndtr(x)


def normal_quantile_array(p: "np.ndarray") -> "np.ndarray":
    """The p-quantiles of the standard normal, elementwise."""
    from scipy.special import ndtri

    return ndtri(p)


def _is_normal(df: float | None) -> bool:
    return df is None or not math.isfinite(df)


def t_two_sided(t: float, df: float | None) -> float:
    """P(|T| >= |t|) for T ~ t(df): 0 at an infinite t, NaN at NaN."""
    if _is_normal(df):
        return 0.0 if math.isinf(t) else normal_two_sided_p(t)
    from scipy.special import stdtr

    return float(2.0 * stdtr(df, -abs(t)))


def t_quantile(p: float, df: float | None) -> float:
    """The p-quantile of t(df)."""
    if _is_normal(df):
        return normal_quantile(p)
    from scipy.special import stdtrit

    return float(stdtrit(df, p))


def f_sf(f: float, d1: float, d2: float) -> float:
    """P(F >= f) for F ~ F(d1, d2)."""
    if f <= 0:
        return 1.0
    from scipy.special import fdtrc

    return float(fdtrc(d1, d2, f))


def chi2_sf(x: float, k: float) -> float:
    """P(X >= x) for X ~ chi2(k)."""
    if x <= 0:
        return 1.0
    from scipy.special import chdtrc

    return float(chdtrc(k, x))


def chi2_quantile(p: float, k: float) -> float:
    """The p-quantile of chi2(k): ``2 gammaincinv(k/2, p)``, what ``scipy.stats.chi2.ppf`` computes (equal to
    the last digit) without importing ``scipy.stats`` (0.7-1.7 s on a busy machine, for one number)."""
    from scipy.special import gammaincinv

    return float(2.0 * gammaincinv(k / 2.0, p))


# ---------------------------------------------------------------- without scipy, for the refuter runner
# The refuters' stopping rule (causalcli.checks.refutation.BUDGET) asks after every round of a few
# simulations; importing scipy.special for it would cost more (0.3 s) than a small study's refuters.


def t_central_probability(t: float, df: int) -> float:
    """P(|T| <= t) for T ~ t(df), df a positive integer: the finite sums of Abramowitz and Stegun
    26.7.3 (odd df) and 26.7.4 (even df) in theta = atan(t / sqrt(df))."""
    if t <= 0:
        return 0.0
    theta = math.atan(t / math.sqrt(df))
    c2, s = math.cos(theta) ** 2, math.sin(theta)
    if df % 2 == 0:
        term, total = 1.0, 1.0
        for j in range(2, df - 1, 2):  # (1 3 ... (j-1)) / (2 4 ... j) cos^j
            term *= (j - 1) / j * c2
            total += term
        return s * total
    if df == 1:
        return 2.0 / math.pi * theta
    term, total = 1.0, 1.0
    for j in range(2, df - 1, 2):  # (2 4 ... j) / (3 5 ... (j+1)) cos^j
        term *= j / (j + 1) * c2
        total += term
    return 2.0 / math.pi * (theta + s * math.cos(theta) * total)


def t_quantile_integer_df(p: float, df: int) -> float:
    """The p-quantile (p > 0.5) of t(df) for a positive integer df, by bisection on
    ``t_central_probability`` to 1e-12 relative."""
    target = 2.0 * p - 1.0
    lo, hi = 0.0, 1.0
    while t_central_probability(hi, df) < target:
        hi *= 2.0
    while hi - lo > 1e-12 * hi:
        mid = 0.5 * (lo + hi)
        lo, hi = (mid, hi) if t_central_probability(mid, df) < target else (lo, mid)
    return 0.5 * (lo + hi)


def binomial_cdf(x: int, k: int, p: float) -> float:
    """P(X <= x) for X ~ Binomial(k, p), 0 < p < 1, summed exactly term by term in log space."""
    if x < 0:
        return 0.0
    if x >= k:
        return 1.0
    lp, lq = math.log(p), math.log1p(-p)
    lk = math.lgamma(k + 1)
    return min(1.0, math.fsum(math.exp(lk - math.lgamma(j + 1) - math.lgamma(k - j + 1) + j * lp + (k - j) * lq)
                              for j in range(x + 1)))
