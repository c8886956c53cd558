"""One RD fit from arrays: split at the cutoff, select the bandwidths, estimate (what the design and its checks share)."""

from __future__ import annotations

import math
from dataclasses import dataclass, replace

import numpy as np

from causalcli.designs.rdd.bandwidth import Bandwidths, select
from causalcli.designs.rdd.estimator import RdEstimate, estimate
from causalcli.designs.rdd.local_poly import Side, collapse, distinct, merge_equal
from causalcli.inference.distributions import normal_quantile, normal_two_sided_p

MIN_ROWS = 20  # rdrobust selects no bandwidth below 20 rows


@dataclass(frozen=True)
class RdSettings:
    p: int
    kernel: str
    bandwidth: str | float  # a selector, or h on both sides (b = h)
    conf_level: float


@dataclass(frozen=True)
class Split:
    """The sides the fits use: the rows below (left) and at or above (right) the cutoff, x centred, with clusters;
    else collapsed by distinct x (``local_poly.collapse``), which gives the same numbers from far fewer entries
    when the running variable has ties. ``rows``: the row sides, when the fit had rows."""

    rows: tuple[Side, Side] | None
    fits: tuple[Side, Side]
    values: Side | None = None  # collapsed: all the rows by value, x not centred (placebo cutoffs reuse it)


@dataclass(frozen=True)
class RdResult:
    bandwidths: Bandwidths
    fit: RdEstimate
    n_left: int  # rows on each side
    n_right: int
    split: Split  # for refits at other bandwidths (sensitivity)

    def robust_interval(self, conf_level: float) -> tuple[float, float, float]:
        """The robust bias-corrected interval and its p-value (centred at the bias-corrected estimate)."""
        z = normal_quantile(0.5 + conf_level / 2)
        bc, se = self.fit.bias_corrected, self.fit.se_robust
        return bc - z * se, bc + z * se, normal_two_sided_p(bc / se) if se > 0 else math.nan


def sides(x: np.ndarray | None, D: np.ndarray | None, cutoff: float, clusters: np.ndarray | None = None,
          collapsed: bool = True, values: Side | None = None, weights: np.ndarray | None = None) -> Split:
    """Rows below the cutoff (left) and at or above it (right), x centred; ``x`` sorted ascending. Without
    clusters, the fits use the rows collapsed by distinct x (``values``: ``collapse`` of these very rows,
    when already made; then ``x`` and ``D`` may be None, the rows never loaded) unless ``collapsed`` is False
    (the row path, which tests hold the collapsed one equal to). ``weights``: the rows' observation weights."""
    rows = None
    if x is not None:
        k = int(np.searchsorted(x, cutoff, side="left"))
        xc = x - cutoff
        cl = (None, None) if clusters is None else (clusters[:k], clusters[k:])
        w = (None, None) if weights is None else (weights[:k], weights[k:])
        rows = Side(xc[:k], D[:k], cl[0], weights=w[0]), Side(xc[k:], D[k:], cl[1], weights=w[1])
        if clusters is not None or not collapsed:
            return Split(rows, rows)
    values = values if values is not None else collapse(Side(x, D, weights=weights))
    kv = int(np.searchsorted(values.x, cutoff, side="left"))
    left, right = values.part(slice(0, kv)), values.part(slice(kv, None))
    # centred value by value: the same numbers as each row's x - cutoff (values that round to one are merged)
    fits = merge_equal(replace(left, x=left.x - cutoff)), merge_equal(replace(right, x=right.x - cutoff))
    return Split(rows, fits, values)


def rd_fit(x: np.ndarray | None, D: np.ndarray | None, cutoff: float, settings: RdSettings, clusters: np.ndarray | None = None,
           h_scale: float = 1.0, bandwidths: Bandwidths | None = None, split: Split | None = None,
           values: Side | None = None, weights: np.ndarray | None = None) -> RdResult:
    """Select the bandwidths (unless given) and estimate; ``h_scale`` multiplies h and b (sensitivity), and the
    result's ``bandwidths`` are the multiplied ones.
    ``split``: the rows' ``sides`` when already made (a refit of the same rows); ``values``: the rows
    collapsed by value (``Split.values`` of a fit on more rows, cut to these; then ``x`` and ``D`` may be None);
    ``weights``: the rows' observation weights (rdrobust's ``weights``; collapsed values carry their own)."""
    split = split if split is not None else sides(x, D, cutoff, clusters, values=values, weights=weights)
    left, right = split.fits
    q = settings.p + 1
    if bandwidths is None:
        if isinstance(settings.bandwidth, str):
            g = None
            if clusters is not None:
                g = distinct(np.sort(left.clusters)) + distinct(np.sort(right.clusters))
            bandwidths = select(left, right, p=settings.p, q=q, kernel=settings.kernel,
                                selector=settings.bandwidth, n_clusters=g)
        else:
            h = float(settings.bandwidth)
            bandwidths = Bandwidths(h, h, h, h, "manual")
    bw = bandwidths
    if h_scale != 1.0:  # the result carries the bandwidths it was fitted at (its wild bootstrap refits at them)
        bw = replace(bw, h_left=bw.h_left * h_scale, h_right=bw.h_right * h_scale, b_left=bw.b_left * h_scale,
                     b_right=bw.b_right * h_scale)
    fit = estimate(left, right, bw.h_left, bw.h_right, bw.b_left, bw.b_right, p=settings.p, q=q,
                   kernel=settings.kernel)
    return RdResult(bw, fit, left.rows, right.rows, split)
