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


def _global_variance(x: np.ndarray, y: np.ndarray, at: np.ndarray) -> np.ndarray:
    """Var(y | x) at ``at`` from global polynomial fits of y and y^2 on x (order 4, lower if singular)."""
    for k in range(GLOBAL_ORDER, 1, -1):
        R = np.column_stack([x ** i for i in range(k + 1)])
        try:
            L = np.linalg.cholesky(R.T @ R)
        except np.linalg.LinAlgError:
            continue
        Linv = np.linalg.inv(L)
        G = Linv.T @ Linv
        fit1, fit2 = G @ (R.T @ y), G @ (R.T @ y ** 2)
        Ra = np.column_stack([at ** i for i in range(k + 1)])
        return Ra @ fit2 - (Ra @ fit1) ** 2
    return np.full(at.size, np.nan)


def bin_count(x: np.ndarray, y: np.ndarray, span: float, n: int, mass_points: bool) -> int:
    """rdplot's mimicking-variance number of evenly spaced bins on one side (x sorted)."""
    var_y = float(np.var(y, ddof=1)) if y.size > 1 else 0.0
    if var_y == 0:
        return 1
    dx = np.diff(x)
    if mass_points:
        sigma2 = _global_variance(x, y, (x[1:] + x[:-1]) / 2)
        sigma2[sigma2 < 0] = var_y
        V = float(np.sum(dx * sigma2)) / span
    else:
        V = 0.5 / span * float(np.sum(dx * np.diff(y) ** 2))
    return int(math.ceil(var_y / V * (n / math.log(n) ** 2)))


def binned_means(x: np.ndarray, y: np.ndarray, cutoff: float) -> tuple[list[dict[str, Any]], dict[str, int]]:
    """Mean running value and outcome, and row count, in rdplot's evenly spaced bins on each side (x sorted),
    the empty bins left out; and the number of bins on each side."""
    k = int(np.searchsorted(x, cutoff, side="left"))
    n = x.size
    out, counts = [], {}
    for side, xs, ys in (("below", x[:k], y[:k]), ("above", x[k:], y[k:])):
        if xs.size < 2:
            continue
        values = 1 + np.count_nonzero(xs[1:] != xs[:-1])
        lo, hi = (float(x[0]), cutoff) if side == "below" else (cutoff, float(x[-1]))
        J = counts[side] = bin_count(xs, ys, hi - lo, n, 1 - values / xs.size >= MASS_POINT_SHARE)
        edges = np.linspace(lo, hi, J + 1)
        codes = np.minimum(np.searchsorted(edges, xs, side="right") - 1, J - 1)
        count = np.bincount(codes, minlength=J)
        sums = np.bincount(codes, weights=ys, minlength=J)
        running = np.bincount(codes, weights=xs, minlength=J)
        for j in np.flatnonzero(count):
            out.append({"side": side, "lower": float(edges[j]), "upper": float(edges[j + 1]),
                        "running": float(running[j] / count[j]), "outcome": float(sums[j] / count[j]),
                        "n": int(count[j])})
    return out, counts
