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
