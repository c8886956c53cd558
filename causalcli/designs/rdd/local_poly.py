"""Local-polynomial pieces of regression discontinuity: kernels, weighted fits, nearest-neighbour residuals, meats.

The conventions are rdrobust's (Calonico, Cattaneo and Titiunik 2014; Calonico, Cattaneo, Farrell and Titiunik
2019; the Python package ``rdrobust`` 2.x): kernel weights K(u)/h, the rows with a positive weight, the
nearest-neighbour residuals of ``vce: nn`` (at least ``matches`` neighbours, whole ties added at once), and the
cluster meat with its (n-1)/(n-k) G/(G-1) factor. Every array here is one side of the cutoff, sorted by the
running variable, which is centred at the cutoff: a bandwidth window is then a contiguous slice.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

KERNELS = ("triangular", "uniform", "epanechnikov")
# The constants of the rule-of-thumb pilot bandwidth, by kernel (rdrobust's C_c).
PILOT_CONSTANT = {"triangular": 2.576, "uniform": 1.843, "epanechnikov": 2.34}
_TIE_TOLERANCE = float(np.sqrt(np.finfo(np.float64).eps))


class NoJump(ValueError):
    """The take-up's fitted jump at the cutoff is exactly zero: the fuzzy ratio is not defined."""


def fuzzy_gradient(tau_y: float, tau_t: float) -> np.ndarray:
    """The gradient of tau_y / tau_t in (tau_y, tau_t): the linearisation of the fuzzy ratio."""
    if tau_t == 0:
        raise NoJump()
    return np.array([1 / tau_t, -tau_y / tau_t ** 2])


def kernel_weights(x: np.ndarray, h: float, kernel: str) -> np.ndarray:
    """K(x/h)/h for x centred at the cutoff."""
    u = np.abs(x) / h
    inside = u <= 1
    if kernel == "uniform":
        return 0.5 * inside / h
    if kernel == "epanechnikov":
        return 0.75 * (1 - u * u) * inside / h
    return (1 - u) * inside / h


@dataclass(frozen=True)
class WeightedSums:
    """Per distinct value, the sums a collapsed side needs under observation weights w (rdrobust's ``weights``,
    which multiply the kernel): the Gram's sum of w, X'WD's sum of w d, and for the nearest-neighbour meat, whose
    row terms carry w^2 (the weights enter RX, the residuals stay unweighted), the sum of w^2, the w^2-weighted
    mean of d and the w^2-weighted scatter about it."""

    total: np.ndarray  # (n,) sum of w
    sums: np.ndarray  # (n, k) sum of w d
    square_total: np.ndarray  # (n,) sum of w^2
    square_mean: np.ndarray  # (n, k) sum of w^2 d / sum of w^2
    square_scatter: np.ndarray  # (n, k, k) sum of w^2 (d - square_mean)(d - square_mean)'

    def part(self, part: slice, k: int) -> "WeightedSums":
        return WeightedSums(self.total[part], self.sums[part, :k], self.square_total[part],
                            self.square_mean[part, :k], self.square_scatter[part, :k, :k])

    def scaled(self, y_scale: float, k: int) -> "WeightedSums":
        """The outcome (column 0) divided by ``y_scale``; the first ``k`` columns."""
        sums, mean = self.sums[:, :k].copy(), self.square_mean[:, :k].copy()
        scatter = self.square_scatter[:, :k, :k].copy()
        sums[:, 0] /= y_scale
        mean[:, 0] /= y_scale
        scatter[:, 0, :] /= y_scale
        scatter[:, :, 0] /= y_scale
        return WeightedSums(self.total, sums, self.square_total, mean, scatter)

    def merged(self, starts: np.ndarray) -> "WeightedSums":
        """Entries from each of ``starts`` to the next made one (values that became equal)."""
        square_total = np.add.reduceat(self.square_total, starts)
        square_sums = np.add.reduceat(self.square_mean * self.square_total[:, None], starts, axis=0)
        mean = square_sums / square_total[:, None]
        sizes = np.diff(np.r_[starts, self.total.size])
        gaps = self.square_mean - np.repeat(mean, sizes, axis=0)
        between = self.square_total[:, None, None] * gaps[:, :, None] * gaps[:, None, :]
        return WeightedSums(np.add.reduceat(self.total, starts), np.add.reduceat(self.sums, starts, axis=0),
                            square_total, mean, np.add.reduceat(self.square_scatter + between, starts, axis=0))


@dataclass(frozen=True)
class Side:
    """The rows on one side of the cutoff, sorted by the running variable; or, collapsed (``counts`` given),
    its distinct values of the running variable with each one's row count, sums and scatter of D.
    Observation weights (rdrobust's ``weights``): each row's in ``weights``; collapsed, their sums in ``weighted``
    (``D``, ``counts`` and ``scatter`` stay the unweighted ones: rdrobust standardises, counts and finds
    nearest neighbours without the weights).

    Every statistic of a fit without clusters (Gram matrices, X'WD, the nearest-neighbour meat) is a sum over
    rows of a function of x times D, DD' or a count, so the collapsed form gives the same numbers from one
    entry per distinct value (a score with 4 decimals: 20,001 entries for a million rows)."""

    x: np.ndarray  # running variable minus the cutoff (possibly divided by a scale); distinct when collapsed
    D: np.ndarray  # (n, k): the outcome, then the treatment in a fuzzy design; collapsed: their sums by value
    clusters: np.ndarray | None = None  # integer codes (rows only)
    counts: np.ndarray | None = None  # collapsed: rows at each value (float)
    scatter: np.ndarray | None = None  # collapsed: (n, k, k) sum of (d - mean)(d - mean)' within each value
    weights: np.ndarray | None = None  # rows: each row's observation weight (positive)
    weighted: WeightedSums | None = None  # collapsed: the weighted sums by value

    @property
    def rows(self) -> int:
        return self.x.size if self.counts is None else int(self.counts.sum())

    def part(self, part: slice, columns: int | None = None) -> "Side":
        """The rows (or values) of a slice, with the first ``columns`` columns of D (all by default)."""
        k = self.D.shape[1] if columns is None else columns
        return Side(self.x[part], self.D[part, :k], None if self.clusters is None else self.clusters[part],
                    None if self.counts is None else self.counts[part],
                    None if self.scatter is None else self.scatter[part, :k, :k],
                    None if self.weights is None else self.weights[part],
                    None if self.weighted is None else self.weighted.part(part, k))

    def scaled(self, x_scale: float, y_scale: float, columns: int) -> "Side":
        """x divided by ``x_scale``, the outcome by ``y_scale``; the first ``columns`` columns of D."""
        D = self.D[:, :columns].copy()
        D[:, 0] /= y_scale
        scatter = None
        if self.scatter is not None:
            scatter = self.scatter[:, :columns, :columns].copy()
            scatter[:, 0, :] /= y_scale
            scatter[:, :, 0] /= y_scale
        weighted = None if self.weighted is None else self.weighted.scaled(y_scale, columns)
        return merge_equal(Side(self.x / x_scale, D, self.clusters, self.counts, scatter, self.weights, weighted))

    def gram(self, part: slice, RW: np.ndarray, R: np.ndarray) -> np.ndarray:
        """sum over the rows of ``part`` of RW_i R_i' (RW, R given per entry of the slice)."""
        if self.counts is not None:  # each value's rows (with weights, their weights: the rows' RW lack them)
            RW = RW * (self.counts if self.weighted is None else self.weighted.total)[part, None]
        return RW.T @ R

    def fit_D(self, part: slice) -> np.ndarray:
        """What X'WD multiplies for the rows (values) of ``part``: D, or collapsed its (weighted) sums."""
        return self.D[part] if self.weighted is None else self.weighted.sums[part]

    def kernel(self, part: slice, h: float, kernel: str) -> np.ndarray:
        """The fits' weights of the rows (values) of ``part`` at bandwidth h: K(x/h)/h, times each row's
        observation weight (collapsed, the weights' sums enter through ``gram`` and ``fit_D``)."""
        w = kernel_weights(self.x[part], h, kernel)
        return w if self.weights is None else w * self.weights[part]

    def window(self, h: float, kernel: str) -> tuple[slice, np.ndarray]:
        """The contiguous rows with a positive kernel weight at bandwidth h, and their weights (``kernel``).

        x is sorted, so |x| <= h is a slice found by bisection; the weights are computed on a slightly wider
        slice and trimmed to the positive ones, so the rows are exactly those K(x/h) > 0 selects."""
        wide = h * (1 + 1e-9)
        start = int(np.searchsorted(self.x, -wide, side="left"))
        stop = int(np.searchsorted(self.x, wide, side="right"))
        w = kernel_weights(self.x[start:stop], h, kernel)
        rows = np.flatnonzero(w > 0)
        if rows.size == 0:
            return slice(0, 0), w[:0]
        part = slice(start + int(rows[0]), start + int(rows[-1]) + 1)
        w = w[rows[0]:rows[-1] + 1]
        return part, w if self.weights is None else w * self.weights[part]


def distinct(x: np.ndarray) -> int:
    """Distinct values of a sorted array."""
    return int(x.size and 1 + np.count_nonzero(x[1:] != x[:-1]))


def powers(x: np.ndarray, p: int) -> np.ndarray:
    """Columns 1, x, ..., x^p."""
    out = np.empty((x.size, p + 1))
    out[:, 0] = 1.0
    for j in range(1, p + 1):
        out[:, j] = out[:, j - 1] * x
    return out


def inverse(G: np.ndarray) -> np.ndarray:
    """Inverse of a symmetric positive (semi)definite Gram matrix: Cholesky, else the pseudo-inverse."""
    try:
        L = np.linalg.cholesky(G)
    except np.linalg.LinAlgError:
        return np.linalg.pinv(G)
    Linv = np.linalg.solve(L, np.eye(G.shape[0]))
    return Linv.T @ Linv


def _neighbours(values: np.ndarray, counts: np.ndarray, matches: int) -> tuple[np.ndarray, np.ndarray]:
    """For each distinct value (ascending, with its row count), the first and last value whose rows are the
    neighbours of its rows: the other rows at its own value, then whole groups of tied rows taken from the
    closer side (both when equally close) until there are at least ``matches`` of them (rdrobust's ``nn``)."""
    K = values.size
    cap = min(matches, int(counts.sum()) - 1)
    lo = np.arange(K)
    hi = np.arange(K)
    have = counts - 1
    active = np.flatnonzero(have < cap)
    while active.size:
        a, b = lo[active], hi[active]
        has_left, has_right = a > 0, b < K - 1
        d_left = np.where(has_left, values[active] - values[np.maximum(a - 1, 0)], 0.0)
        d_right = np.where(has_right, values[np.minimum(b + 1, K - 1)] - values[active], 0.0)
        tol = np.maximum(d_left, d_right) * _TIE_TOLERANCE
        both = has_left & has_right
        right_closer = both & (d_left - d_right > tol)
        left_closer = both & (d_right - d_left > tol)
        go_right = ~has_left | right_closer | (both & ~left_closer)
        go_left = ~has_right | left_closer | (both & ~right_closer)
        r, l = active[go_right], active[go_left]
        have[r] += counts[hi[r] + 1]
        hi[r] += 1
        have[l] += counts[lo[l] - 1]
        lo[l] -= 1
        active = active[have[active] < cap]
    return lo, hi


def nn_residuals(x: np.ndarray, D: np.ndarray, matches: int) -> np.ndarray:
    """Nearest-neighbour residuals (Abadie-Imbens style, as rdrobust's ``vce='nn'``) of rows sorted by x.

    The residual is sqrt(J/(J+1)) (d_i - mean of the J neighbours); rows at the same x share their
    neighbours (``_neighbours``), so the search runs over the distinct values.
    """
    n = x.size
    starts = np.flatnonzero(np.r_[True, x[1:] != x[:-1]])
    ends = np.r_[starts[1:], n]
    counts = ends - starts
    lo, hi = _neighbours(x[starts], counts, matches)
    group = np.repeat(np.arange(starts.size), counts)
    first, last = starts[lo][group], ends[hi][group]
    centred = D - D.mean(axis=0)  # the residual is shift-invariant; centring keeps the running sums exact
    cum = np.vstack([np.zeros((1, D.shape[1])), np.cumsum(centred, axis=0)])
    J = (last - first - 1).astype(np.float64)[:, None]
    others = (cum[last] - cum[first] - centred) / J
    return np.sqrt(J / (J + 1)) * (centred - others)


@dataclass(frozen=True)
class RowResiduals:
    """Residuals row by row: nearest-neighbour ones, or with clusters the fit's (rdrobust's CR1)."""

    res: np.ndarray  # (n, k)
    clusters: np.ndarray | None

    def meat(self, RX: np.ndarray, s: np.ndarray, k_df: int) -> np.ndarray:
        return meat(RX, self.res @ s, self.clusters, k_df)


class ValueResiduals:
    """The nearest-neighbour residuals of collapsed rows, as the sum of their squares at each value.

    A row i at value g with J neighbours (the rows of values lo..hi, itself left out) has the residual
    sqrt(J/(J+1)) (a d_i - T/J) with a = 1 + 1/J and T the sum of d over values lo..hi; for r_i = s'res_i,
    the sum over the value's rows is J/(J+1) (a^2 s'M s + n (a s'mean - s'T/J)^2), M the value's scatter:
    what the meat needs, since every row at a value has the same regressors. With observation weights w the row
    terms are w_i^2 (s'res_i)^2 (rdrobust puts the weights in RX, not in the residuals): the same sum with n, the
    mean and M the w^2-weighted ones (``WeightedSums``), the neighbours still the unweighted rows."""

    def __init__(self, side: Side, part: slice, matches: int) -> None:
        counts, sums = side.counts[part], side.D[part]
        lo, hi = _neighbours(side.x[part], counts, matches)
        shift = sums.sum(axis=0) / counts.sum()
        centred = sums - counts[:, None] * shift  # shift-invariant, as in rows
        cum = np.vstack([np.zeros((1, sums.shape[1])), np.cumsum(centred, axis=0)])
        cum_n = np.r_[0.0, np.cumsum(counts)]
        self.J = cum_n[hi + 1] - cum_n[lo] - 1
        self.total = cum[hi + 1] - cum[lo]
        self.mean = centred / counts[:, None]
        self.counts, self.scatter = counts, side.scatter[part]
        if side.weighted is not None:
            weighted = side.weighted
            self.mean = weighted.square_mean[part] - shift
            self.counts, self.scatter = weighted.square_total[part], weighted.square_scatter[part]

    def squares(self, s: np.ndarray) -> np.ndarray:
        """sum over each value's rows of (s' residual)^2."""
        J = self.J
        a = 1 + 1 / J
        within = np.einsum("i,gij,j->g", s, self.scatter, s) if s.size > 1 else self.scatter[:, 0, 0] * s[0] ** 2
        gap = a * (self.mean @ s) - (self.total @ s) / J
        return J / (J + 1) * (a * a * within + self.counts * gap * gap)

    def meat(self, RX: np.ndarray, s: np.ndarray, k_df: int) -> np.ndarray:
        return (RX * self.squares(s)[:, None]).T @ RX


def meat(RX: np.ndarray, r: np.ndarray, clusters: np.ndarray | None, k_df: int) -> np.ndarray:
    """sum_i RX_i RX_i' r_i^2, or with clusters sum_g (sum_i RX_i r_i)(...)' times (n-1)/(n-k) G/(G-1)."""
    score = RX * r[:, None]
    if clusters is None:
        return score.T @ score
    codes = np.unique(clusters, return_inverse=True)[1].reshape(-1)
    G = int(codes.max()) + 1
    n = r.size
    sums = np.column_stack([np.bincount(codes, weights=score[:, j], minlength=G) for j in range(RX.shape[1])])
    factor = ((n - 1) / (n - k_df)) * (G / (G - 1)) if G > 1 else np.nan
    return factor * (sums.T @ sums)


def residuals(side: Side, part: slice, fitted: np.ndarray | None, matches: int) -> RowResiduals | ValueResiduals:
    """The residuals of the rows (values) of ``part``: nearest-neighbour ones without clusters; with clusters,
    the fit's (rdrobust's CR1), ``fitted`` being the fit at those rows."""
    if side.counts is not None:
        return ValueResiduals(side, part, matches)
    x, D = side.x[part], side.D[part]
    if side.clusters is None:
        return RowResiduals(nn_residuals(x, D, matches), None)
    return RowResiduals(D - fitted, side.clusters[part])


def collapse(side: Side) -> Side:
    """The collapsed form of a side's rows (sorted by x, no clusters): per distinct x, the row count, the sums of
    D and their scatter about the value's mean (two passes, so no precision is lost to large means)."""
    x, D, k = side.x, side.D, side.D.shape[1]
    if x.size == 0:
        weighted = None if side.weights is None else WeightedSums(
            np.zeros(0), np.zeros((0, k)), np.zeros(0), np.zeros((0, k)), np.zeros((0, k, k)))
        return Side(x, D, None, np.zeros(0), np.zeros((0, k, k)), None, weighted)
    starts = np.flatnonzero(np.r_[True, x[1:] != x[:-1]])
    sizes = np.diff(np.r_[starts, x.size])
    sums = np.add.reduceat(D, starts, axis=0)
    scatter = _scatter(D, sums / sizes[:, None], None, starts, sizes)
    weighted = None
    if side.weights is not None:
        w = side.weights
        square = w * w
        square_total = np.add.reduceat(square, starts)
        square_mean = np.add.reduceat(D * square[:, None], starts, axis=0) / square_total[:, None]
        weighted = WeightedSums(np.add.reduceat(w, starts), np.add.reduceat(D * w[:, None], starts, axis=0),
                                square_total, square_mean, _scatter(D, square_mean, square, starts, sizes))
    return Side(x[starts], sums, None, sizes.astype(np.float64), scatter, None, weighted)


def _scatter(D: np.ndarray, means: np.ndarray, weights: np.ndarray | None, starts: np.ndarray, sizes: np.ndarray
             ) -> np.ndarray:
    """Per value (rows ``starts`` to the next), sum of weight (d - mean)(d - mean)' (weight 1 without weights)."""
    deviations = D - np.repeat(means, sizes, axis=0)
    k = D.shape[1]
    scatter = np.empty((starts.size, k, k))
    for i in range(k):  # one column pair at a time: temporaries of one float per row
        for j in range(i, k):
            product = deviations[:, i] * deviations[:, j]
            if weights is not None:
                product *= weights
            scatter[:, i, j] = scatter[:, j, i] = np.add.reduceat(product, starts)
    return scatter


def merge_equal(side: Side) -> Side:
    """A collapsed side whose values became equal (centring or scaling can round two adjacent doubles to one
    number) with those entries merged, as rows at one x are one tie: counts and sums add, and scatters add
    with the spread of the entries' means about the merged mean."""
    x = side.x
    if side.counts is None or x.size < 2 or not np.any(x[1:] == x[:-1]):
        return side
    starts = np.flatnonzero(np.r_[True, x[1:] != x[:-1]])
    counts = np.add.reduceat(side.counts, starts)
    sums = np.add.reduceat(side.D, starts, axis=0)
    gaps = side.D / side.counts[:, None] - np.repeat(sums / counts[:, None], np.diff(np.r_[starts, x.size]), axis=0)
    between = side.counts[:, None, None] * gaps[:, :, None] * gaps[:, None, :]
    weighted = None if side.weighted is None else side.weighted.merged(starts)
    return Side(x[starts], sums, None, counts, np.add.reduceat(side.scatter + between, starts, axis=0), None, weighted)
