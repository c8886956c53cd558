"""Greedy nearest-neighbour matching without replacement, as R's ``Match(replace = FALSE)``.

Match (MatchLoopCfast with ``replace = 0``, Matching 4.10-8) visits the focal
units in data order; each takes its ``M`` nearest controls among those not yet
used (and inside the caliper and its exact stratum), and a unit with fewer
than ``M`` such controls left is dropped. ``replace = FALSE`` forces ``ties =
FALSE``: when more than ``M`` unused controls lie within ``distance.tolerance``
of the ``M``-th distance, Match drops the excess at random (R's generator);
here the first ``M`` of them in data order are kept, and the number of focal
units where that happened is returned beside the matches.

Both functions take the focal units ``tr_idx`` and candidates ``c_idx`` of one
exact stratum (input indices) and return ``(focal row per pair, matched input
index per pair, M_i per focal unit, focal units with ties cut)``; the caller
drops every focal unit of a stratum with fewer than ``M`` candidates before;
``causalcli.designs.matching.nearest`` loops over strata and builds the estimate.
"""

from __future__ import annotations

import math

import numpy as np

__all__ = ["greedy_scalar", "greedy_metric"]


def _find(parent: list, k: int) -> int:
    """Root of ``k`` in a next-alive (or previous-alive) pointer forest, compressing the path."""
    root = k
    while parent[root] != root:
        root = parent[root]
    while parent[k] != root:
        parent[k], k = root, parent[k]
    return root


def greedy_scalar(tr_idx: np.ndarray, c_idx: np.ndarray, xs: np.ndarray, score: np.ndarray, m: int,
                  ecal: float, caliper: bool, tolerance: float) -> tuple[list, list, np.ndarray, int]:
    """Greedy matching without replacement on a scalar score, focal units in data order.

    Candidates are kept sorted by score; two pointer forests give, from any
    position, the nearest position to the right (left) whose candidate is still
    unused, so each focal unit walks outwards over unused candidates only.
    Returns ``(focal row per pair, matched input index per pair, M_i per focal, ties)``.
    """
    nt, nc = tr_idx.size, c_idx.size
    n_per = np.zeros(nt, np.int64)
    rows: list[int] = []
    cols: list[int] = []
    ties = 0
    order = np.argsort(score[c_idx], kind="stable")
    cand = c_idx[order].tolist()
    cs = xs[c_idx[order]].tolist()
    co = score[c_idx[order]].tolist()
    right = list(range(nc + 1))  # right[k]: k if position k is unused, else a later position; nc = none
    left = list(range(nc + 1))  # left[k + 1] for position k; 0 = none
    ins = np.searchsorted(xs[c_idx[order]], xs[tr_idx], side="left").tolist()
    a_all = xs[tr_idx].tolist()
    r_all = score[tr_idx].tolist()
    for row in range(nt):
        a, r = a_all[row], r_all[row]
        hi = _find(right, ins[row])
        lo = _find(left, ins[row]) - 1  # position, or -1
        found: list[tuple[float, int]] = []  # (squared distance, position), nearest first
        # the m nearest unused candidates, merging the two sides outwards
        while len(found) < m:
            dl = (cs[lo] - a) ** 2 if lo >= 0 and not (caliper and abs(co[lo] - r) > ecal) else math.inf
            dr = (cs[hi] - a) ** 2 if hi < nc and not (caliper and abs(co[hi] - r) > ecal) else math.inf
            if dl == math.inf and dr == math.inf:
                break
            if dr <= dl:
                found.append((dr, hi))
                hi = _find(right, hi + 1)
            else:
                found.append((dl, lo))
                lo = _find(left, lo) - 1
        if len(found) < m:  # fewer than M unused candidates (inside the caliper): dropped
            continue
        thr = found[m - 1][0] + tolerance
        # every further unused candidate within the tolerance of the M-th distance is a tie
        for side in (0, 1):
            pos = lo if side == 0 else hi
            while 0 <= pos < nc:
                if caliper and abs(co[pos] - r) > ecal:
                    break
                d = (cs[pos] - a) ** 2
                if d > thr:
                    break
                found.append((d, pos))
                pos = _find(left, pos) - 1 if side == 0 else _find(right, pos + 1)
        tied = [p for d, p in found if d <= thr]
        if len(tied) > m:
            ties += 1
            # R drops tied candidates at random; here the first M in data order are kept
            tied = sorted(tied, key=lambda p: cand[p])[:m]
        for p in tied:
            right[p] = p + 1
            left[p + 1] = p
            rows.append(row)
            cols.append(cand[p])
        n_per[row] = m
    return rows, cols, n_per, ties


def greedy_metric(tr_idx: np.ndarray, c_idx: np.ndarray, U: np.ndarray, m: int,
                  tolerance: float) -> tuple[list, list, np.ndarray, int]:
    """As :func:`greedy_scalar` for the squared Euclidean distance in ``U`` (Mahalanobis)."""
    from scipy.spatial import cKDTree

    nt, nc = tr_idx.size, c_idx.size
    n_per = np.zeros(nt, np.int64)
    rows: list[int] = []
    cols: list[int] = []
    ties = 0
    tree = cKDTree(U[c_idx])
    used = np.zeros(nc, dtype=bool)
    n_used = 0
    for row in range(nt):
        if nc - n_used < m:
            continue
        a = U[tr_idx[row]]
        k = min(nc, m + n_used, 2 * m + 8)
        while True:
            dist, pos = tree.query(a, k=k)
            dist, pos = np.atleast_1d(dist), np.atleast_1d(pos)
            free = ~used[pos]
            if free.sum() >= m or k == nc:
                break
            k = min(nc, 2 * k)
        dm = float(np.sum((U[c_idx[pos[free][m - 1]]] - a) ** 2))
        thr = dm + tolerance
        near = np.asarray(tree.query_ball_point(a, math.sqrt(thr) * (1 + 1e-9) + 1e-12), dtype=np.int64)
        near = near[~used[near]]
        d2 = np.sum((U[c_idx[near]] - a) ** 2, axis=1)
        tied = near[d2 <= thr]
        if tied.size > m:
            ties += 1
        tied = np.sort(tied)[:m]  # candidates are in data order (c_idx ascending): the first M
        used[tied] = True
        n_used += tied.size
        rows.extend([row] * tied.size)
        cols.extend(c_idx[tied].tolist())
        n_per[row] = m
    return rows, cols, n_per, ties
