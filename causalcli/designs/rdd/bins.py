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
from typing import TYPE_CHECKING, Any

import numpy as np

if TYPE_CHECKING:  # pragma: no cover
    from causalcli.designs.rdd.by_value import ByValue

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


def bin_count(values: np.ndarray, counts: np.ndarray, y_sums: np.ndarray, y_scatter: np.ndarray, y_low: np.ndarray,
              y_high: np.ndarray, span: float, n: int) -> int:
    """rdplot's mimicking-variance number of evenly spaced bins on one side, from its distinct running values
    (ascending) with each one's row count, sum of y, scatter of y about its mean, and least and greatest y."""
    rows = float(counts.sum())
    means = y_sums / counts
    ss = float(y_scatter.sum() + counts @ (means - y_sums.sum() / rows) ** 2)
    var_y = ss / (rows - 1) if rows > 1 else 0.0
    if var_y == 0:
        return 1
    if 1 - values.size / rows >= MASS_POINT_SHARE:  # mass points: rdplot's esmvpr
        sigma2 = _global_variance(values, counts, y_sums, y_scatter + y_sums * means, (values[1:] + values[:-1]) / 2)
        sigma2[sigma2 < 0] = var_y
        V = float(np.sum(np.diff(values) * sigma2)) / span
    else:
        # the spacings sum over consecutive rows sorted by x then y: pairs inside a value have dx = 0, and a
        # pair across values joins the greatest y of one value to the least y of the next
        V = 0.5 / span * float(np.sum(np.diff(values) * (y_low[1:] - y_high[:-1]) ** 2))
    return int(math.ceil(var_y / V * (n / math.log(n) ** 2)))


def binned_means(x: np.ndarray, y: np.ndarray, cutoff: float) -> tuple[dict[str, list[Any]], dict[str, int]]:
    """``binned_means_by_value`` of rows sorted by x (then y)."""
    from causalcli.designs.rdd.by_value import from_rows

    return binned_means_by_value(from_rows(x, y[:, None]), cutoff)


def binned_means_by_value(data: "ByValue", cutoff: float) -> tuple[dict[str, list[Any]], dict[str, int]]:
    """Mean running value and outcome (D's first column), and row count, in rdplot's evenly spaced bins on each
    side, the empty bins left out, as columns (``side``, ``lower``, ``upper``, ``running``, ``outcome``, ``n``:
    one entry per bin, the bins below the cutoff first; columns, not one object per bin, because a million rows
    give some ten thousand bins); and the number of bins on each side. Rows at one value fall in one bin, so
    the bins' sums are sums over the distinct values."""
    v = data.values
    x, counts, y_sums, y_scatter = v.x, v.counts, v.D[:, 0], v.scatter[:, 0, 0]
    k = data.cut(cutoff)
    n = data.rows
    parts: list[tuple] = []  # (side, lower, upper, running, outcome, n) of each side's bins
    bins = {}
    for side, part in (("below", slice(0, k)), ("above", slice(k, None))):
        values, sizes, sums = x[part], counts[part], y_sums[part]
        if sizes.sum() < 2:
            continue
        lo, hi = (float(x[0]), cutoff) if side == "below" else (cutoff, float(x[-1]))
        J = bins[side] = bin_count(values, sizes, sums, y_scatter[part], data.low[part, 0], data.high[part, 0],
                                   hi - lo, n)
        edges = np.linspace(lo, hi, J + 1)
        codes = np.minimum(np.searchsorted(edges, values, side="right") - 1, J - 1)
        count = np.bincount(codes, weights=sizes, minlength=J)
        y_bins = np.bincount(codes, weights=sums, minlength=J)
        running = np.bincount(codes, weights=values * sizes, minlength=J)
        used = np.flatnonzero(count)
        parts.append((side, edges[used], edges[used + 1], running[used] / count[used], y_bins[used] / count[used],
                      count[used].astype(np.int64)))
    columns: dict[str, list[Any]] = {"side": [side for side, *rest in parts for _ in range(rest[0].size)]}
    for i, name in enumerate(("lower", "upper", "running", "outcome", "n"), start=1):
        columns[name] = np.concatenate([part[i] for part in parts]).tolist() if parts else []
    return columns, bins
