"""Observation weights in nearest-neighbour matching, as R's ``Match(..., weights = w)``.

With ``weights``, Match (MatchLoopC and EstFuncC, Matching 4.10-8) reads them as frequency weights:

* Neighbours are counted by weight. The candidates are sorted by distance and ``D`` is the distance at
  which their cumulative weight first reaches ``M`` (a control of weight 2 counts as two neighbours,
  as two identical rows would); every candidate within ``D + distance.tolerance`` is a match. A focal
  unit whose candidates inside the caliper (or exact stratum) weigh less than ``M`` is dropped.
* Pair weights. Focal unit ``i`` gives each match ``j`` the weight ``W_ij = w_i w_j / sum_k w_k``
  (the sum over its matches): its own weight, shared in proportion to the matches' weights. The
  estimate ``sum W tau / sum W`` is the ``w``-weighted mean over matched focal units of their
  outcome minus the ``w``-weighted mean outcome of their matches.
* Abadie-Imbens (2006) variance: ``K_j = sum_i W_ij``, ``KK_j = sum_i W_ij^2 / w_i``, the focal term
  ``sum_i w_i (S_i - est)^2`` and ``N`` the focal units' summed weight (see
  ``causalcli.designs.matching.nearest.match``).
* The score is standardised by its weighted mean and SD (divisor: the summed weight, then Match's
  ``sqrt(N / (N - 1))`` with ``N`` the rows), which only moves the tie tolerance; Mahalanobis
  coordinates use the weighted standardisation and Match's unweighted ``solve(t(Xs) Xs / N)``.

One departure: Match scales the caliper by ``sqrt(sum (x - mean_w)^2 / sum w)``, the unweighted sum of
squares over the summed weight, which shrinks with the weights' scale (population weights in the
thousands would cut a 0.2 SD caliper thirtyfold). Here it is the weighted population SD
``sqrt(sum w (x - mean_w)^2 / sum w)``: scale-free, and what Match gives with weights of 1 and on
rows repeated ``w`` times. The R tests pass Match the caliper that is equal in raw units.
"""

from __future__ import annotations

import numpy as np

__all__ = ["INFERENCE_WEIGHTED", "weighted_distmax", "weighted_metric_distmax"]

# The standard error's name with observation weights: Abadie-Imbens (2006) with Match's weighted terms, the score
# taken as known (Abadie and Imbens (2016) derive the estimated-score adjustment without weights).
INFERENCE_WEIGHTED = "abadie_imbens_2006_weighted_score_as_known"


def weighted_distmax(cs: np.ndarray, co: np.ndarray, a: np.ndarray, r: np.ndarray, wc: np.ndarray, m: int,
                     ecal: float, caliper: bool) -> np.ndarray:
    """Per focal unit, the squared standardised distance at which its candidates' cumulative weight reaches ``m``.

    ``cs``/``co``: the candidates' standardised and raw scores, sorted; ``wc`` their weights in that order;
    ``a``/``r``: the focal units' standardised and raw scores. ``inf`` where the candidates inside the
    caliper weigh less than ``m`` (the unit is dropped). The nearest candidates form a window around the
    unit's insertion point; a window of ``L`` positions a side is searched and doubled where it is too small.
    """
    nc = cs.size
    out = np.full(a.size, np.inf)
    p = np.searchsorted(cs, a, side="left")
    todo = np.arange(a.size)
    L = max(int(m), 1)
    while todo.size:
        win = p[todo, None] + np.arange(-L, L)
        inside = (win >= 0) & (win < nc)
        wcl = np.clip(win, 0, nc - 1)
        d2 = (cs[wcl] - a[todo, None]) ** 2
        ok = inside
        if caliper:
            ok = ok & ~(np.abs(co[wcl] - r[todo, None]) > ecal)
        d2 = np.where(ok, d2, np.inf)
        order = np.argsort(d2, axis=1, kind="stable")
        d_sorted = np.take_along_axis(d2, order, axis=1)
        w_sorted = np.where(np.isfinite(d_sorted), np.take_along_axis(np.where(ok, wc[wcl], 0.0), order, axis=1),
                            0.0)
        reached = np.cumsum(w_sorted, axis=1) >= m
        first = np.argmax(reached, axis=1)
        # the window holds the L nearest (at most L lie on either side); a k-th nearest with k > L may lie outside
        # it, unless the window is exhausted: both of its ends outside the data or the caliper
        exhausted = ~ok[:, 0] & ~ok[:, -1]
        hit = reached.any(axis=1) & ((first < L) | exhausted)
        out[todo[hit]] = d_sorted[hit, first[hit]]
        todo = todo[~hit & ~exhausted]
        if L >= nc:
            break
        L *= 2
    return out


def weighted_metric_distmax(tree, a: np.ndarray, wc: np.ndarray, m: int) -> np.ndarray:
    """As :func:`weighted_distmax` for the squared Euclidean distance in a KD-tree's coordinates."""
    nc = wc.size
    out = np.full(a.shape[0], np.inf)
    todo = np.arange(a.shape[0])
    k = max(int(m), 1)
    while todo.size:
        k = min(k, nc)
        dist, pos = tree.query(a[todo], k=k)
        dist, pos = dist.reshape(todo.size, k), pos.reshape(todo.size, k)
        reached = np.cumsum(wc[pos], axis=1) >= m
        hit = reached.any(axis=1)
        first = np.argmax(reached, axis=1)
        out[todo[hit]] = dist[hit, first[hit]] ** 2
        todo = todo[~hit]
        if k == nc:
            break
        k *= 2
    return out
