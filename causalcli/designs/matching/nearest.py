"""Nearest-neighbour matching with ties kept, as R's ``Matching::Match``.

:func:`match` is the one matching routine: the ATT, ATC and ATE, exact strata,
Mahalanobis distance, the bias adjustment and matching without replacement
(its docstring lists what each maps to in ``Match``; the greedy passes without
replacement are in ``causalcli.designs.matching.without_replacement``, the
Abadie-Imbens (2016) estimated-score terms in ``causalcli.inference.abadie_imbens``).
:func:`match_att_point` is its point estimate alone, for the refuters. The
rules below hold for all of them.

The semantics are those of R's ``Matching::Match(Y, Tr, X = score,
estimand = "ATT", M, caliper, replace = TRUE, ties = TRUE, Weight = 1,
Var.calc = 0, BiasAdjust = FALSE, distance.tolerance)`` (Sekhon 2011,
package version 4.10-8), and estimate and standard error equal Match's to
1e-6 (the tests compare with committed R output). The implementation is
independent and vectorised: a sort and binary searches instead of Match's
loop over treated units.

What Match does, and so what this module does (``N`` all units, ``N1``
treated, ``x`` the score):

* Distance. ``x`` is standardised as ``(x - mean) / s`` with
  ``s = sqrt(sum(x^2) / N - mean^2) * sqrt(N / (N - 1))`` (the sample SD,
  floored at ``sqrt(.Machine$double.eps)``), and the distance between a
  treated unit and a control is the *squared* difference of standardised
  scores (``Weight = 1``: inverse-variance weighting of the one column).
* Neighbours and ties. For each treated unit, ``D`` is the ``M``-th
  smallest distance to a control; every control with distance
  ``<= D + distance.tolerance`` is a match, each with weight ``1 / M_i``
  (``M_i`` the number of such controls). The tolerance is on the squared
  standardised scale: 1e-5 admits controls within about 0.003 SD of an
  exact match, and more than ``M`` controls are common.
* Caliper. ``caliper`` is in population SDs of the raw score (divisor
  ``N``, all units). A control farther than ``caliper * SD`` (raw units,
  strictly greater) is not a candidate; a treated unit with fewer than
  ``M`` candidates is dropped altogether. If every treated unit is
  dropped, Match returns NA (here: EstimationError).
* Estimate. ``sum_ij W_ij (Y_i - Y_j) / sum_ij W_ij`` over matched pairs,
  i.e. the mean over matched treated units of ``Y_i`` minus the mean
  outcome of its matches.
* Standard error (Abadie and Imbens 2006, Match's ``se`` with
  ``Var.calc = 0``): with ``K_j`` the summed weight of control ``j`` over
  all pairs, ``KK_j`` the sum of squared weights,
  ``sigma2 = 0.5 * sum W (tau_ij - est)^2 / sum W`` (one homoskedastic
  conditional variance from the pair differences ``tau_ij``), and
  ``YCAUS_i`` the treated unit's own contrast,

      var = [ sum_i (YCAUS_i - est)^2 + sigma2 * sum_j (K_j^2 - KK_j) ] / N1^2

  where the first sum and ``N1`` run over *all* treated units, those
  dropped by the caliper included with ``YCAUS_i = 0`` (Match's RmatchLoop
  and EstFuncC count them that way). This module does the same so that it
  reproduces Match. When the caliper drops many units this understates the
  SE of the matched-sample ATT: on the NSW experimental sample with M = 3
  and a 0.01 caliper (126 of 185 dropped), Match's SE is 280 against 853
  with ``N1`` the number of matched units.
* ``se.standard`` (``std_error_standard``): ``sqrt(sum W (tau - est)^2) /
  sum W``, the SE treating pair differences as independent.

References
----------
Abadie, A. and Imbens, G. W. (2006). Large sample properties of matching
estimators for average treatment effects. Econometrica 74(1), 235-267.
Sekhon, J. S. (2011). Multivariate and propensity score matching software
with automated balance optimization: the Matching package for R. Journal
of Statistical Software 42(7), 1-52.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from causalcli.designs.matching import runs
from causalcli.designs.matching.runs import expand_runs, match_runs
from causalcli.designs.matching.without_replacement import greedy_metric, greedy_scalar
from causalcli.errors import EstimationError

__all__ = ["MatchResult", "match", "match_att_point", "mahalanobis_coordinates"]

# Match's ``tolerance`` default, sqrt(.Machine$double.eps): the floor of the
# score's SD and of the sum of squares used to compute it.
_CCC = math.sqrt(np.finfo(np.float64).eps)


@dataclass(frozen=True)
class _Matches:
    """Matched pairs: focal ("treated") row per pair, matched unit per pair (input indices)."""

    tr_rows: np.ndarray  # index into tr_idx, per pair
    c_in: np.ndarray  # input index of the matched unit, per pair
    n_per_treated: np.ndarray  # M_i per focal unit (0 if dropped)
    tr_idx: np.ndarray  # input index of each focal unit, ascending
    # instead of pairs (tr_rows, c_in None): candidates in score order and each focal unit's run start
    runs: tuple[np.ndarray, np.ndarray] | None = None


def _rsum(x: np.ndarray) -> float:
    """Sum as R's sum() does for doubles: accumulated in long double, rounded once."""
    return float(np.sum(x, dtype=np.longdouble))


def _check(y, treated, score, neighbors, caliper, tolerance):
    y = np.asarray(y, dtype=np.float64)
    treated = np.asarray(treated)
    score = np.asarray(score, dtype=np.float64)
    if y.ndim != 1 or treated.shape != y.shape or score.shape != y.shape:
        raise EstimationError(f"matching needs y, treatment and score of one equal length; got shapes "
                              f"{y.shape}, {treated.shape}, {score.shape}")
    if treated.dtype != np.bool_:
        if not np.all((treated == 0) | (treated == 1)):
            raise EstimationError("matching: the treatment must be 0/1 or boolean")
        treated = treated.astype(bool)
    if not (np.all(np.isfinite(y)) and np.all(np.isfinite(score))):
        raise EstimationError("matching: outcome or score contains NaN or infinite values; drop those rows")
    if treated.all() or not treated.any():
        raise EstimationError("matching needs both treated and control units")
    if int(neighbors) != neighbors or neighbors < 1:
        raise ValueError(f"neighbors must be a positive integer, got {neighbors!r}")
    if caliper is not None and not (caliper >= 0 and math.isfinite(caliper)):
        raise ValueError(f"caliper must be a non-negative number of SDs or None, got {caliper!r}")
    if not (tolerance >= 0):
        raise ValueError(f"tolerance must be non-negative, got {tolerance!r}")
    return y, treated, score, int(neighbors)


def _standardise(score: np.ndarray, weights: np.ndarray | None = None) -> tuple[np.ndarray, float]:
    """Match's standardised score and the population SD that scales its caliper (both weighted with ``weights``)."""
    n = score.size
    # Standardise exactly as Match does (RmatchLoop / MatchGenoudStage1caliper).
    # R's sum() accumulates in long double; so does _rsum, so that tie
    # decisions at the tolerance boundary see the same numbers.
    if weights is None:
        total, mean = n, _rsum(score) / n
        var = max(_CCC, _rsum(score * score)) / n - mean * mean
        ss = _rsum((score - mean) ** 2)
    else:  # Match's weighted moments; the caliper's SD is the weighted one (see weighted.py's docstring)
        total = _rsum(weights)
        mean = _rsum(score * weights) / total
        var = max(_CCC, _rsum(score * score * weights)) / total - mean * mean
        ss = _rsum(weights * (score - mean) ** 2)
    sd = math.sqrt(var) * math.sqrt(n / (n - 1)) if var > 0 else 0.0
    if not sd >= _CCC:
        sd = _CCC
    return (score - mean) / sd, math.sqrt(ss / total)


def _match_within(tr_idx: np.ndarray, c_idx: np.ndarray, xs: np.ndarray, score: np.ndarray, m: int,
                  ecal: float, caliper: bool, tolerance: float,
                  weights: np.ndarray | None = None) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Matches of the focal units ``tr_idx`` among the candidates ``c_idx`` (both input indices).

    Returns ``(focal row per pair, matched input index per pair, M_i per focal unit)``.
    """
    c_sorted, lo, cnt = match_runs(tr_idx, c_idx, xs, score, m, ecal, caliper, tolerance, weights)
    rows, pos = expand_runs(lo, cnt)
    return rows, c_sorted[pos], cnt


def mahalanobis_coordinates(X: np.ndarray, weights: np.ndarray | None = None) -> np.ndarray:
    """Coordinates in which Match's ``Weight = 2`` distance is the squared Euclidean one.

    Match standardises each column (mean, sample SD floored at sqrt(eps)),
    takes ``W = solve(t(Xs) Xs / N)`` (the identity if its smallest eigenvalue
    is at most 1e-7), adds ``sqrt(eps) I`` if ``W`` is nearly singular, and
    measures ``(x_i - x_j)' W (x_i - x_j)``; with ``W = R'R`` (Cholesky) that is
    ``|R x_i - R x_j|^2``. With ``weights`` the columns are standardised by their weighted mean and SD
    (RmatchLoop); ``W`` stays the unweighted ``solve(t(Xs) Xs / N)``, as in Match.
    """
    X = np.asarray(X, dtype=np.float64).reshape(X.shape[0], -1)
    n = X.shape[0]
    w = np.ones(n) if weights is None else np.asarray(weights, dtype=np.float64)
    total = _rsum(w)
    Xs = np.empty_like(X)
    for k in range(X.shape[1]):
        col = X[:, k]
        mean = _rsum(col * w) / total
        sd = math.sqrt(max(_CCC, _rsum(col * col * w)) / total - mean * mean) * math.sqrt(n / (n - 1))
        Xs[:, k] = (col - mean) / max(sd, _CCC)
    S = Xs.T @ Xs / n
    W = np.linalg.inv(S) if np.min(np.linalg.eigvalsh(S)) > 1e-7 else np.eye(X.shape[1])
    if np.min(np.linalg.eigvalsh(W)) < _CCC:
        W = W + np.eye(X.shape[1]) * _CCC
    R = np.linalg.cholesky(W).T  # upper triangular, W = R'R (R's chol)
    return Xs @ R.T


def _match_within_metric(tr_idx: np.ndarray, c_idx: np.ndarray, U: np.ndarray, m: int, tolerance: float,
                         weights: np.ndarray | None = None) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """As :func:`_match_within` for a multivariate distance: squared Euclidean in ``U``."""
    from scipy.spatial import cKDTree

    nt = tr_idx.size
    tree = cKDTree(U[c_idx])
    a = U[tr_idx]
    if weights is None:
        dist, _ = tree.query(a, k=m)
        dm = (dist if m == 1 else dist[:, m - 1]) ** 2
    else:  # neighbours counted by weight (weighted.py); inf: the stratum's candidates weigh less than m
        from causalcli.designs.matching.weighted import weighted_metric_distmax

        dm = weighted_metric_distmax(tree, a, weights[c_idx], m)
        dm = np.where(np.isfinite(dm), dm, -1.0 - tolerance)  # a threshold of -1: no candidate qualifies
    thr = dm + tolerance
    hits = tree.query_ball_point(a, np.sqrt(np.maximum(thr, 0.0)) * (1 + 1e-9) + 1e-12)
    cnt = np.fromiter((len(h) for h in hits), dtype=np.int64, count=nt)
    rows = np.repeat(np.arange(nt), cnt)
    pos = np.fromiter((j for h in hits for j in h), dtype=np.int64, count=int(cnt.sum()))
    d2 = np.sum((U[c_idx[pos]] - a[rows]) ** 2, axis=1)
    good = d2 <= thr[rows]
    rows, pos = rows[good], pos[good]
    return rows, c_idx[pos], np.bincount(rows, minlength=nt)


def _find_matches(treated: np.ndarray, score: np.ndarray, neighbors: int, caliper: float | None,
                  tolerance: float, strata: np.ndarray | None = None, m_cap: int | None = None,
                  U: np.ndarray | None = None, replace: bool = True, as_runs: bool = False,
                  weights: np.ndarray | None = None) -> tuple[_Matches, int]:
    """Matches of every ``treated`` (focal) unit among the others (Match's MatchLoopC, one direction).

    ``strata`` (integer codes, optional) restricts matches to equal codes, as
    Match's ``exact``; the score is standardised over all units either way.
    ``m_cap`` caps M (Match: ``min(M, #controls)``, for the ATE ``min(M, #treated, #controls)``).
    ``U``: match on the squared Euclidean distance in these coordinates (see
    :func:`mahalanobis_coordinates`) instead of the score; no caliper then.
    ``replace = False``: each control is used at most once
    (``causalcli.designs.matching.without_replacement``). Returns the matches and
    the number of focal units whose ties were cut to M (0 with replacement).
    ``as_runs``: with a scalar score, replacement and no strata, return runs
    (``_Matches.runs``) instead of pairs when there are more than ``runs.PAIRS_LIMIT`` pairs.
    ``weights``: observation weights (``causalcli.designs.matching.weighted``; with replacement only).
    """
    xs, pop_sd = _standardise(score, weights)
    tr_idx = np.flatnonzero(treated)
    c_idx = np.flatnonzero(~treated)
    m = min(neighbors, c_idx.size if m_cap is None else m_cap)
    ecal = caliper * pop_sd if caliper is not None else math.inf
    if as_runs and replace and strata is None and U is None and c_idx.size >= m and weights is None:
        c_sorted, lo, cnt = match_runs(tr_idx, c_idx, xs, score, m, ecal, caliper is not None, tolerance)
        if int(cnt.sum()) > runs.PAIRS_LIMIT:
            return _Matches(None, None, cnt, tr_idx, runs=(c_sorted, lo)), 0
        rows, pos = expand_runs(lo, cnt)
        return _Matches(rows, c_sorted[pos], cnt, tr_idx), 0

    def within(ft: np.ndarray, fc: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray, int]:
        short = fc.size < m if weights is None else not _rsum(weights[fc]) >= m
        if short:  # fewer candidates (or less candidate weight) than M: every focal unit here is dropped
            return np.empty(0, np.int64), np.empty(0, np.int64), np.zeros(ft.size, np.int64), 0
        if replace:
            if U is not None:
                return (*_match_within_metric(ft, fc, U, m, tolerance, weights), 0)
            return (*_match_within(ft, fc, xs, score, m, ecal, caliper is not None, tolerance, weights), 0)
        if U is not None:
            return greedy_metric(ft, fc, U, m, tolerance)
        return greedy_scalar(ft, fc, xs, score, m, ecal, caliper is not None, tolerance)

    if strata is None:  # the common case: no copies of the matches
        rows, c_in, n_per, ties = within(tr_idx, c_idx)
        return _Matches(np.asarray(rows, dtype=np.int64), np.asarray(c_in, dtype=np.int64), n_per, tr_idx), ties
    n_per = np.zeros(tr_idx.size, dtype=np.int64)
    rows_all, c_all, ties = [], [], 0
    st_t, st_c = strata[tr_idx], strata[c_idx]
    for code in np.unique(st_t):
        ft = np.flatnonzero(st_t == code)
        rows, c_in, n_s, t = within(tr_idx[ft], c_idx[st_c == code])
        n_per[ft] = n_s
        rows_all.append(ft[np.asarray(rows, dtype=np.int64)])
        c_all.append(np.asarray(c_in, dtype=np.int64))
        ties += t
    rows = np.concatenate(rows_all) if rows_all else np.empty(0, np.int64)
    c_in = np.concatenate(c_all) if c_all else np.empty(0, np.int64)
    return _Matches(rows, c_in, n_per, tr_idx), ties


def _no_match_error(n_treated: int, caliper: float | None) -> EstimationError:
    if caliper is None:
        return EstimationError(
            f"none of the {n_treated} focal units has enough candidate matches (exact strata or too few units "
            "in the other arm); drop exact matching or lower neighbors"
        )
    return EstimationError(
        f"the caliper of {caliper} SD of the score leaves none of the {n_treated} treated units with a "
        "control close enough; widen the caliper or drop it"
    )


def match_att_point(
    y: np.ndarray,
    treated: np.ndarray,
    score: np.ndarray,
    *,
    neighbors: int = 1,
    caliper: float | None = None,
    tolerance: float = 1e-5,
    weights: np.ndarray | None = None,
) -> float:
    """ATT point estimate only: :func:`match` with ``estimand = "att"`` and no options, without SEs.

    Same matches as :func:`match` (so the same estimate up to summation order),
    skipping pair ordering, per-unit weights and variances: the design's
    ``point`` calls it for the refuters, which estimate many times.

    Raises
    ------
    EstimationError
        As :func:`match`.
    """
    if weights is not None:  # pair weights differ within a focal unit: no runs shortcut
        return match(y, treated, score, neighbors=neighbors, caliper=caliper, tolerance=tolerance,
                     weights=weights).estimate
    y, treated, score, m = _check(y, treated, score, neighbors, caliper, tolerance)
    mt = _find_matches(treated, score, m, caliper, tolerance, as_runs=True)[0]
    nt = mt.tr_idx.size
    matched = mt.n_per_treated > 0
    if not matched.any():
        raise _no_match_error(nt, caliper)
    if mt.runs is not None:
        return runs.run_statistics(y, *mt.runs, mt.n_per_treated, mt.tr_idx).estimate
    mean_c = np.bincount(mt.tr_rows, weights=y[mt.c_in], minlength=nt)[matched] / mt.n_per_treated[matched]
    return float(np.mean(y[mt.tr_idx[matched]] - mean_c))

# ---------------------------------------------------------------- every estimand, exact strata, bias adjustment


@dataclass(frozen=True)
class MatchResult:
    """Result of :func:`match` (any estimand).

    ``focal`` units are those that receive matches: the treated for the ATT,
    the controls for the ATC, every unit for the ATE. ``std_error`` is Match's
    ``se`` (focal units dropped by the caliper still count in N);
    ``std_error_matched`` the same formula over the matched focal units only.
    Each unit's weight in the matched sample is ``focal_matched`` (1 for a
    matched focal unit) plus ``match_weights`` (the total weight with which it
    serves as a match). ``pairs`` is ``(focal index, match index, weight)`` per
    matched pair, ordered by focal then match index (0-based; for the ATT,
    Match's ``index.treated``, ``index.control`` and ``weights``), the ATE's
    second direction (controls as focal units) after the first.
    """

    estimand: str
    estimate: float
    estimate_unadjusted: float
    std_error: float
    std_error_matched: float
    n_focal: int
    n_focal_matched: int
    n_dropped: int
    dropped: np.ndarray
    match_weights: np.ndarray  # K_j: total weight as a match
    focal_matched: np.ndarray  # bool per unit
    differences: np.ndarray  # per matched focal unit: treated minus matched-control outcome (bias adjusted)
    bias_coefficients: dict
    std_error_standard: float = math.nan  # Match's se.standard: pair differences as independent
    ties_broken: int = 0  # replace = False: focal units whose tied candidates were cut to M (data order)
    contrasts: np.ndarray | None = None  # per unit: own contrast S_i (treated minus control; 0 if unmatched)
    pairs: tuple[np.ndarray, np.ndarray, np.ndarray] | None = None  # None above runs.PAIRS_LIMIT pairs
    n_pairs: int = 0  # matched (focal, match) pairs, ties included


def _wls_slopes(Z: np.ndarray, y: np.ndarray, k: np.ndarray) -> np.ndarray:
    """Match's bias-adjustment regression: y on [1, Z] weighted by K, slopes only (ridge if singular)."""
    zz = np.column_stack([np.ones(Z.shape[0]), Z])
    xw = zz * np.sqrt(k)[:, None]
    a = xw.T @ xw
    if np.min(np.linalg.eigvalsh(a)) <= _CCC:
        a = a + np.eye(a.shape[0]) * _CCC * float(np.max(np.std(xw, axis=0, ddof=1)))
    return np.linalg.solve(a, xw.T @ (y * np.sqrt(k)))[1:]


def _direction(mt: _Matches, y: np.ndarray, Z: np.ndarray | None, n: int, weights: np.ndarray | None = None):
    """Pairs of one direction: focal index, match index, weight; per-focal mean outcome (and Z) of the matches.

    With observation ``weights`` a pair's weight is ``w_i w_j / sum_k w_k`` over the focal unit's matches
    (Match's MatchLoopC), and the matches' means are weighted by it."""
    f_in = mt.tr_idx[mt.tr_rows]
    c_in = mt.c_in
    if weights is None:
        w = 1.0 / mt.n_per_treated[mt.tr_rows]
    else:
        mass = np.bincount(mt.tr_rows, weights=weights[c_in], minlength=mt.tr_idx.size)
        w = weights[f_in] * weights[c_in] / mass[mt.tr_rows]
    o = np.argsort(f_in.astype(np.int64) * n + c_in, kind="stable")
    f_in, c_in, w = f_in[o], c_in[o], w[o]
    ybar = np.bincount(f_in, weights=w * y[c_in], minlength=n)
    zbar = None
    if Z is not None:
        zbar = np.zeros((n, Z.shape[1]))
        np.add.at(zbar, f_in, w[:, None] * Z[c_in])
    if weights is not None:  # the pair weights of a focal unit sum to its weight, not 1
        total = np.bincount(f_in, weights=w, minlength=n)
        total[total == 0] = 1.0
        ybar = ybar / total
        zbar = None if zbar is None else zbar / total[:, None]
    return f_in, c_in, w, ybar, zbar


def _pair_statistics(directions, y: np.ndarray, Z: np.ndarray | None, tr: np.ndarray, estimand: str,
                     caliper: float | None, weights: np.ndarray | None = None):
    """Weights, contrasts, estimates and pair variance of :func:`match` from the listed pairs.

    ``KK_j`` sums ``W_ij^2 / w_i`` (``W_ij^2`` without observation weights), as Match's EstFuncC."""
    n = y.size
    K = np.zeros(n)
    KK = np.zeros(n)
    parts = []
    focal_matched = np.zeros(n, dtype=bool)
    for mt, is_treated_focal in directions:
        f_in, c_in, w, ybar, zbar = _direction(mt, y, Z, n, weights)
        K += np.bincount(c_in, weights=w, minlength=n)
        KK += np.bincount(c_in, weights=w * w if weights is None else w * w / weights[f_in], minlength=n)
        focal_matched[mt.tr_idx[mt.n_per_treated > 0]] = True
        parts.append((f_in, c_in, w, ybar, zbar, is_treated_focal))
    if not focal_matched.any():
        raise _no_match_error(n if estimand == "ate" else int(tr.sum()), caliper)

    slopes_c = slopes_t = None
    if Z is not None:
        slopes_c = _wls_slopes(Z, y, np.where(~tr, K, 0.0))
        slopes_t = _wls_slopes(Z, y, np.where(tr, K, 0.0)) if estimand == "ate" else np.zeros(Z.shape[1])

    taus, ws = [], []
    S = np.zeros(n)
    raw = []
    for f_in, c_in, w, ybar, zbar, is_treated_focal in parts:
        sign = 1.0 if is_treated_focal else -1.0
        tau = sign * (y[f_in] - y[c_in])
        raw.append(tau)
        if Z is not None:
            # adjust the matched unit's outcome to the focal unit's covariates
            slopes = slopes_c if is_treated_focal else slopes_t
            tau = tau - sign * ((Z[f_in] - Z[c_in]) @ slopes)
        taus.append(tau)
        ws.append(w)
        foc = np.unique(f_in)
        s_i = sign * (y[foc] - ybar[foc])
        if Z is not None:
            s_i = s_i - sign * ((Z[foc] - zbar[foc]) @ slopes)
        S[foc] = s_i
    tau = np.concatenate(taus)
    w = np.concatenate(ws)
    sw = float(w.sum())
    est = float(np.dot(w, tau) / sw)
    raw = np.concatenate(raw)
    est_raw = float(np.dot(w, raw) / sw)
    se_standard = math.sqrt(float(np.dot(w, (raw - est_raw) ** 2))) / sw
    sigma2 = 0.5 * float(np.dot(w, (tau - est) ** 2)) / sw
    pairs = tuple(np.concatenate([part[i] for part in parts]) for i in range(3))
    return K, KK, focal_matched, S, est, est_raw, se_standard, sigma2, slopes_c, slopes_t, pairs


def match(
    y: np.ndarray,
    treated: np.ndarray,
    score: np.ndarray,
    *,
    estimand: str = "att",
    neighbors: int = 1,
    caliper: float | None = None,
    tolerance: float = 1e-5,
    strata: np.ndarray | None = None,
    Z: np.ndarray | None = None,
    U: np.ndarray | None = None,
    replace: bool = True,
    weights: np.ndarray | None = None,
) -> MatchResult:
    """Nearest-neighbour matching on a scalar score for the ATT, ATC or ATE, as R's ``Match``.

    Mirrors ``Match(Y, Tr, X = cbind(score, exact columns), Z = Z, estimand,
    M = neighbors, caliper, exact = c(FALSE, TRUE, ...), replace = TRUE,
    ties = TRUE, Weight = 1, Var.calc = 0, BiasAdjust = Z is not None)``
    (RmatchLoop, Matching 4.10-8):

    * ATC: the ATT with the arms swapped, negated (Match sets ``Tr <- 1 - Tr``).
    * ATE: every unit is matched in the other arm (``M`` capped by the smaller
      arm); the estimate averages each unit's contrast (treated minus control).
    * ``strata``: matches only within equal codes (Match's ``exact``); the score
      is standardised and the caliper scaled over all units, and a focal unit
      with fewer than ``M`` candidates in its stratum is dropped.
    * ``U``: Mahalanobis matching (``Weight = 2`` on the covariates, see
      :func:`mahalanobis_coordinates`) instead of the score.
    * ``replace = False``: each unit serves as a match at most once, focal
      units matched greedily in data order (see
      ``causalcli.designs.matching.without_replacement``); Match then forces ``ties =
      FALSE`` and computes no ``se``, so the standard error is its internal
      ``RmatchLoop(version = "standard")`` formula on these matches (below),
      where every ``K_j`` is at most ``1 / M``. No bias adjustment (Match
      switches it off without replacement).
    * ``Z``: Abadie and Imbens (2011) bias adjustment. The outcome is regressed
      on ``[1, Z]`` among the units used as matches, weighted by how often
      each is used (``K``), separately per arm; each matched outcome is moved
      by ``(Z_focal - Z_match) @ slopes``.
    * Standard error (Abadie and Imbens 2006, ``Var.calc = 0``)::

          var = [sum_i (S_i - est)^2 + sigma2 * sum_j c_j] / N^2

      over all focal units (``S_i`` the unit's own, bias-adjusted contrast, 0
      if dropped), ``sigma2 = 0.5 sum W (tau - est)^2 / sum W``,
      ``c_j = K_j^2 - KK_j`` (ATT, ATC) or ``K_j^2 + 2 K_j - KK_j`` (ATE).
    * ``weights``: observation weights, as ``Match(weights = w)`` (with
      replacement; see ``causalcli.designs.matching.weighted``): neighbours
      counted by weight, pair weights ``w_i w_j / sum w_matches``, and in the
      variance ``(S_i - est)^2`` times ``w_i`` and ``N`` the focal units'
      summed weight.

    Raises
    ------
    EstimationError
        Invalid data (non-finite values, one arm only) or every focal unit dropped
        (by the caliper or exact strata; Match returns NA).
    """
    y, treated, score, m = _check(y, treated, score, neighbors, caliper, tolerance)
    n = y.size
    if estimand not in ("att", "atc", "ate"):
        raise ValueError(f"estimand must be att, atc or ate, got {estimand!r}")
    tr = ~treated if estimand == "atc" else treated
    if Z is not None:
        Z = np.asarray(Z, dtype=np.float64).reshape(n, -1)
    cap = min(int(tr.sum()), int((~tr).sum())) if estimand == "ate" else None
    if U is not None and caliper is not None:
        raise ValueError("a caliper applies to the score; Mahalanobis matching takes none")
    if not replace and Z is not None:
        raise ValueError("Match has no bias adjustment without replacement")
    if weights is not None:
        weights = np.asarray(weights, dtype=np.float64)
        if weights.shape != y.shape or not np.all(np.isfinite(weights) & (weights > 0)):
            raise ValueError("weights must be positive and finite, one per unit")
        if not replace:
            raise ValueError("observation weights are built for matching with replacement only")
    # Without replacement Match visits all units in data order for the ATE, but a treated focal
    # unit only uses controls and a control only treated units: the two passes are independent.
    directions, ties = [], 0
    for arm, is_treated_focal in ((tr, True), (~tr, False))[: 2 if estimand == "ate" else 1]:
        mt, cut = _find_matches(arm, score, m, caliper, tolerance, strata, cap, U, replace,
                                as_runs=Z is None and estimand != "ate", weights=weights)
        directions.append((mt, is_treated_focal))
        ties += cut

    mt = directions[0][0]
    if mt.runs is not None:  # one direction, no bias adjustment: see causalcli.designs.matching.runs
        if not mt.n_per_treated.any():
            raise _no_match_error(int(tr.sum()), caliper)
        rs = runs.run_statistics(y, *mt.runs, mt.n_per_treated, mt.tr_idx)
        K, KK, focal_matched, S, est, sigma2 = rs.K, rs.KK, rs.focal_matched, rs.contrasts, rs.estimate, rs.sigma2
        est_raw, se_standard = est, math.sqrt(2.0 * sigma2 * rs.focal_matched.sum()) / rs.focal_matched.sum()
        slopes_c = slopes_t = pairs = None
    else:
        K, KK, focal_matched, S, est, est_raw, se_standard, sigma2, slopes_c, slopes_t, pairs = _pair_statistics(
            directions, y, Z, tr, estimand, caliper, weights)
    n_focal = n if estimand == "ate" else int(tr.sum())
    n_matched = int(focal_matched.sum())
    fw = np.ones(n) if weights is None else weights  # the focal units' weights: Match's iot.t
    if estimand == "ate":
        control_term = sigma2 * float(np.sum(K * K + 2.0 * K - KK))
        focal = np.ones(n, dtype=bool)
    else:
        control_term = sigma2 * float(np.sum(np.where(~tr, K * K - KK, 0.0)))
        focal = tr
    resid = np.where(focal, fw * (S - est) ** 2, 0.0)
    resid_dropped = np.where(focal & ~focal_matched, 0.0, resid)
    sn = n_focal if weights is None else _rsum(fw[focal])
    sn_matched = n_matched if weights is None else _rsum(fw[focal_matched])
    var = (float(resid.sum()) + control_term) / (sn * sn)
    var_m = (float(resid_dropped.sum()) + control_term) / (sn_matched * sn_matched)
    dropped = np.flatnonzero(focal & ~focal_matched)
    flip = -1.0 if estimand == "atc" else 1.0
    # per matched focal unit, treated minus (adjusted) control, for Rosenbaum bounds
    differences = flip * S[focal_matched]
    coefs = {}
    if Z is not None:
        coefs = {"control": slopes_c.tolist()}
        if estimand == "ate":
            coefs["treated"] = slopes_t.tolist()
        if estimand == "atc":
            coefs = {"treated": slopes_c.tolist()}
    return MatchResult(
        estimand=estimand, estimate=flip * est, estimate_unadjusted=flip * est_raw, std_error=math.sqrt(var),
        std_error_matched=math.sqrt(var_m), n_focal=n_focal, n_focal_matched=n_matched,
        n_dropped=int(dropped.size), dropped=dropped, match_weights=K, focal_matched=focal_matched,
        differences=differences, bias_coefficients=coefs, std_error_standard=se_standard, ties_broken=ties,
        contrasts=np.where(focal_matched, flip * S, 0.0),
        pairs=pairs, n_pairs=sum(int(mt.n_per_treated.sum()) for mt, _ in directions),
    )
