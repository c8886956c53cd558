"""The binned means of an RD plot, with rdplot's data-driven number of evenly spaced bins.

Calonico, Cattaneo and Titiunik (2015, JASA), "Optimal data-driven regression discontinuity plots", as rdrobust's
``rdplot`` computes its default (``binselect: esmv``): on each side J = ceil(Var(y) / V * n / log(n)^2), the
number of evenly spaced bins whose means mimic the data's variability, with V the spacings estimator
(1/2)/range * sum dx_i (dy_i)^2 over consecutive rows; with mass points (20% or more repeated values on a side,
rdplot's ``masspoints: adjust``) V comes from the conditional variance of global quartic fits of y and y^2
(``esmvpr``).
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np

MASS_POINT_SHARE = 0.2
GLOBAL_ORDER = 4


def _global_variance(x: np.ndarray, counts: np.ndarray, y_sums: np.ndarray, y2_sums: np.ndarray, at: np.ndarray
                     ) -> np.ndarray:
    """Var(y | x) at ``at`` from global polynomial fits of y and y^2 on x (order 4, lower if singular); x holds
    the distinct values, with each one's row count and sums of y and y^2 (the fits' sums over rows)."""
    for k in range(GLOBAL_ORDER, 1, -1):
        R = np.column_stack([x ** i for i in range(k + 1)])
        try:
            L = np.linalg.cholesky((R * counts[:, None]).T @ R)
        except np.linalg.LinAlgError:
            continue
        Linv = np.linalg.inv(L)
        G = Linv.T @ Linv
        fit1, fit2 = G @ (R.T @ y_sums), G @ (R.T @ y2_sums)
        Ra = np.column_stack([at ** i for i in range(k + 1)])
        return Ra @ fit2 - (Ra @ fit1) ** 2
    return np.full(at.size, np.nan)


def bin_count(x: np.ndarray, y: np.ndarray, starts: np.ndarray, y_sums: np.ndarray, span: float, n: int,
              mass_points: bool) -> int:
    """rdplot's mimicking-variance number of evenly spaced bins on one side (x sorted; ``starts``: the first
    row of each distinct value, ``y_sums`` the sums of y there)."""
    var_y = float(np.var(y, ddof=1)) if y.size > 1 else 0.0
    if var_y == 0:
        return 1
    if mass_points:
        # only consecutive rows at different values have dx > 0: the sum runs over the distinct values
        values, counts = x[starts], np.diff(np.r_[starts, x.size]).astype(np.float64)
        sigma2 = _global_variance(values, counts, y_sums, np.add.reduceat(y * y, starts),
                                  (values[1:] + values[:-1]) / 2)
        sigma2[sigma2 < 0] = var_y
        V = float(np.sum(np.diff(values) * sigma2)) / span
    else:
        V = 0.5 / span * float(np.sum(np.diff(x) * np.diff(y) ** 2))
    return int(math.ceil(var_y / V * (n / math.log(n) ** 2)))


def binned_means(x: np.ndarray, y: np.ndarray, cutoff: float) -> tuple[dict[str, list[Any]], dict[str, int]]:
    """Mean running value and outcome, and row count, in rdplot's evenly spaced bins on each side (x sorted),
    the empty bins left out, as columns (``side``, ``lower``, ``upper``, ``running``, ``outcome``, ``n``: one
    entry per bin, the bins below the cutoff first; columns, not one object per bin, because a million rows
    give some ten thousand bins); and the number of bins on each side. Rows at one value fall in one bin, so
    the bins' sums are sums over the distinct values."""
    k = int(np.searchsorted(x, cutoff, side="left"))
    n = x.size
    parts: list[tuple] = []  # (side, lower, upper, running, outcome, n) of each side's bins
    counts = {}
    for side, xs, ys in (("below", x[:k], y[:k]), ("above", x[k:], y[k:])):
        if xs.size < 2:
            continue
        starts = np.flatnonzero(np.r_[True, xs[1:] != xs[:-1]])
        values, sizes, y_sums = xs[starts], np.diff(np.r_[starts, xs.size]), np.add.reduceat(ys, starts)
        lo, hi = (float(x[0]), cutoff) if side == "below" else (cutoff, float(x[-1]))
        J = counts[side] = bin_count(xs, ys, starts, y_sums, hi - lo, n,
                                     1 - values.size / xs.size >= MASS_POINT_SHARE)
        edges = np.linspace(lo, hi, J + 1)
        codes = np.minimum(np.searchsorted(edges, values, side="right") - 1, J - 1)
        count = np.bincount(codes, weights=sizes, minlength=J)
        sums = np.bincount(codes, weights=y_sums, minlength=J)
        running = np.bincount(codes, weights=values * sizes, minlength=J)
        used = np.flatnonzero(count)
        parts.append((side, edges[used], edges[used + 1], running[used] / count[used], sums[used] / count[used],
                      count[used].astype(np.int64)))
    columns: dict[str, list[Any]] = {"side": [side for side, *rest in parts for _ in range(rest[0].size)]}
    for i, name in enumerate(("lower", "upper", "running", "outcome", "n"), start=1):
        columns[name] = np.concatenate([part[i] for part in parts]).tolist() if parts else []
    return columns, counts
