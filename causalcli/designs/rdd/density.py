"""The manipulation test: is the running variable's density continuous at the cutoff?

Cattaneo, Jansson and Ma (2020, JASA), "Simple local polynomial density estimators", with the defaults of the
``rddensity`` package (Cattaneo, Jansson and Ma 2018, Stata Journal; Python ``rddensity`` 3.0): local polynomial
fits of the empirical distribution function on each side (p = 2, triangular kernel, unrestricted), the slope at
the cutoff is the density; bandwidths by ``rdbwdensity``'s plug-in rule (pilots from a normal reference) and the
``comb`` choice (per side, the median of that side's, the difference's and the sum's bandwidths); the jackknife
variance; the statistic (f_right - f_left) / se of the order-(p+1) fit.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

P = 2
NEIGHBOURS = 20 + P + 1  # rddensity's nLocalMin and nUniqueMin: each side keeps at least this many (distinct) points
# rddensity's pilot-bandwidth constants for p = 2 (triangular kernel): the bias (b) and variance (c) pilots.
PILOT_BIAS = 3430865.4551236177795
PILOT_VARIANCE = 548.57142857155463389


@dataclass(frozen=True)
class DensityTest:
    f_left: float
    f_right: float
    statistic: float
    p_value: float
    h_left: float
    h_right: float
    n_left: int  # rows within the bandwidths
    n_right: int


def _triangular_moment(e: int) -> float:
    """Integral over [0, 1] of (1 - l) l^e."""
    return 1 / (e + 1) - 1 / (e + 2)


def _hermite(x: float, k: int) -> float:
    """Probabilists' Hermite polynomials He_2 and He_4 (the normal reference's derivatives)."""
    return x * x - 1 if k == 2 else x ** 4 - 6 * x * x + 3


def _group_starts(x: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """For a sorted array: each distinct value's first row, last row and count."""
    last = np.flatnonzero(np.r_[x[1:] != x[:-1], True])
    count = np.diff(np.r_[-1, last])
    return last - count + 1, last, count


def _fit(X: np.ndarray, Y: np.ndarray, counts: np.ndarray, n: int, h_l: float, h_r: float, p: int, s: int
         ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """The order-p local fit of the empirical CDF Y on each side (rddensity's unrestricted fit): for (left,
    right, right - left, right + left), the density (the slope at the cutoff), its jackknife variance, and the
    s-th derivative's coefficient. X holds the distinct values (sorted) and ``counts`` their rows: rows at one
    value have the same X, Y and jackknife influence, so each sum over rows is a sum over values weighted by
    their counts."""
    nl = int(np.searchsorted(X, 0.0, side="left"))  # X is sorted: the left values come first
    u = np.r_[X[:nl] / h_l, X[nl:] / h_r]
    W = np.r_[(1 + u[:nl]) / h_l, (1 - u[nl:]) / h_r]
    k = 2 * p + 2
    Xp = np.zeros((X.size, k))
    scale = np.empty(k)
    for power in range(p + 1):
        Xp[:nl, 2 * power] = u[:nl] ** power
        Xp[nl:, 2 * power + 1] = u[nl:] ** power
        scale[2 * power], scale[2 * power + 1] = h_l ** power, h_r ** power
    XpW = Xp * W[:, None]
    XpW_rows = XpW * counts[:, None]
    Sinv = np.linalg.inv(XpW_rows.T @ Xp)
    b = ((XpW_rows.T @ Y) @ Sinv) / scale
    # the jackknife: each row's influence is the sum of the weighted regressors of the rows after it, of its
    # whole tie group with ties (rddensity's mass-point rule): the other rows at its value and every later value
    after = np.cumsum(XpW_rows[::-1], axis=0)[::-1] - XpW_rows + (counts - 1)[:, None] * XpW
    L = after / (n - 1)
    V = (Sinv @ (L.T @ (L * counts[:, None])) @ Sinv) / np.outer(scale, scale)
    hat = np.array([b[2], b[3], b[3] - b[2], b[3] + b[2]])
    var = np.array([V[2, 2], V[3, 3], V[2, 2] + V[3, 3] - 2 * V[2, 3], V[2, 2] + V[3, 3] + 2 * V[2, 3]])
    var[var < 0] = np.nan
    hat_s = np.array([b[2 * s], b[2 * s + 1], b[2 * s + 1] - b[2 * s], b[2 * s + 1] + b[2 * s]])
    return hat, var, hat_s


def _kth(values: np.ndarray, k: int, counts: np.ndarray | None = None) -> float:
    """The k-th smallest (1-based, capped at the size) of a sorted array; with ``counts``, of the rows that
    many times each value."""
    if counts is None:
        return float(values[min(k, values.size) - 1])
    ends = np.cumsum(counts)
    return float(values[int(np.searchsorted(ends, min(k, ends[-1]), side="left"))])


def _least(below: tuple[np.ndarray, np.ndarray], above: tuple[np.ndarray, np.ndarray], k: int
           ) -> tuple[float, float]:
    """Below and above the cutoff (distances, nearest first, and their row counts): the k-th nearest row or
    distinct value, whichever is farther (rddensity's nLocalMin and nUniqueMin)."""
    return max(_kth(below[0], k, below[1]), _kth(below[0], k)), max(_kth(above[0], k, above[1]), _kth(above[0], k))


def _merged(values: np.ndarray, counts: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Sorted values and their row counts, values that became equal (centring rounds) made one."""
    if values.size < 2 or not np.any(values[1:] == values[:-1]):
        return values, counts
    starts = np.flatnonzero(np.r_[True, values[1:] != values[:-1]])
    return values[starts], np.add.reduceat(counts, starts)


def density_test(x: np.ndarray, cutoff: float, by_value: tuple[np.ndarray, np.ndarray] | None = None
                 ) -> DensityTest:
    """rddensity(X, c) with its defaults; ``x`` sorted ascending; ``by_value``: its distinct values and their
    row counts, when already known (the test runs on them, as the rows at a value share every term)."""
    if by_value is None:
        first, _, count = _group_starts(x)
        by_value = x[first], count
    values, count = _merged(by_value[0] - cutoff, by_value[1])
    n = int(count.sum())
    last = np.cumsum(count) - 1
    nl = int(np.searchsorted(values, 0.0, side="left"))
    # per side, the distance from the cutoff within which lie at least k rows and k distinct values
    least = {k: _least((-values[:nl][::-1], count[:nl][::-1]), (values[nl:], count[nl:]), k)
             for k in (NEIGHBOURS, NEIGHBOURS + 2)}
    mu = float(count @ values) / n
    sd = math.sqrt(float(count @ (values - mu) ** 2) / (n - 1))
    z = mu / sd
    phi = math.exp(-z * z / 2) / math.sqrt(2 * math.pi)
    f_b = 1 / (_hermite(z, P + 2) ** 2 * phi)
    f_c = 1 / (_hermite(z, P) ** 2 * phi)
    bn = ((2 * P + 1) / 4 * f_b * PILOT_BIAS / n) ** (1 / (2 * P + 5)) * sd
    cn = (1 / (2 * P) * f_c * PILOT_VARIANCE / n) ** (1 / (2 * P + 1)) * sd
    widest = float(np.max(np.abs(values)))
    bn, cn = min(bn, widest), min(cn, widest)
    bn, cn = max(bn, *least[NEIGHBOURS + 2]), max(cn, *least[NEIGHBOURS])
    Y = last / (n - 1)  # the empirical CDF at each value: rows tied with a later one count as below it
    weights = count.astype(np.float64)

    def window(h_l: float, h_r: float) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        keep = slice(int(np.searchsorted(values, -h_l, side="left")),
                     int(np.searchsorted(values, h_r, side="right")))
        return values[keep], Y[keep], weights[keep]

    derivative = _fit(*window(bn, bn), n, bn, bn, P + 2, P + 1)[2]
    variance = _fit(*window(cn, cn), n, cn, cn, P, 1)[1]
    S = np.array([[_triangular_moment(i + j) for j in range(P + 1)] for i in range(P + 1)])
    C = np.array([_triangular_moment(i + P + 1) for i in range(P + 1)])
    bias_constant = float(np.linalg.solve(S, C)[1])
    bias = np.empty(4)
    bias[0] = derivative[0] * bias_constant * (-1) ** P
    bias[1] = derivative[1] * bias_constant
    bias[2], bias[3] = bias[1] - bias[0], bias[1] + bias[0]
    var_n = n * cn * variance
    with np.errstate(divide="ignore", invalid="ignore"):
        h = (1 / (2 * P) * var_n / bias ** 2 / n) ** (1 / (2 * P + 1))
    h = np.where(np.isnan(h) | (var_n < 0), 0.0, h)
    range_l, range_r = abs(float(values[0])), float(values[-1])
    h = np.minimum(h, [range_l, range_r, max(range_l, range_r), max(range_l, range_r)])
    low_l, low_r = least[NEIGHBOURS]
    h = np.maximum(h, [low_l, low_r, max(low_l, low_r), max(low_l, low_r)])
    h_l = float(np.median([h[0], h[2], h[3]]))
    h_r = float(np.median([h[1], h[2], h[3]]))
    Xq, Yq, Cq = window(h_l, h_r)
    hat, var, _ = _fit(Xq, Yq, Cq, n, h_l, h_r, P + 1, 1)
    statistic = float(hat[2] / math.sqrt(var[2]))
    p_value = math.erfc(abs(statistic) / math.sqrt(2))
    below = int(Cq[:int(np.searchsorted(Xq, 0.0, side="left"))].sum())
    return DensityTest(float(hat[0]), float(hat[1]), statistic, p_value, h_l, h_r, below, int(Cq.sum()) - below)
