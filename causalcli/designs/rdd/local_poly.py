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
class Side:
    """The rows on one side of the cutoff, sorted by the running variable."""

    x: np.ndarray  # running variable minus the cutoff (possibly divided by a scale)
    D: np.ndarray  # (n, k): the outcome, then the treatment in a fuzzy design
    clusters: np.ndarray | None = None  # integer codes

    def window(self, h: float, kernel: str) -> tuple[slice, np.ndarray]:
        """The contiguous rows with a positive kernel weight at bandwidth h, and their weights.

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
        return part, w[rows[0]:rows[-1] + 1]


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


def nn_residuals(x: np.ndarray, D: np.ndarray, matches: int) -> np.ndarray:
    """Nearest-neighbour residuals (Abadie-Imbens style, as rdrobust's ``vce='nn'``), vectorised by distinct x.

    Each row's neighbours are the other rows at its own x, then whole groups of tied rows taken from the
    closer side (both when equally close) until there are at least ``matches`` of them; the residual is
    sqrt(J/(J+1)) (d_i - mean of the J neighbours). Rows at the same x share their neighbours, so the search
    runs over the distinct values, at most ``matches`` vectorised steps.
    """
    n = x.size
    starts = np.flatnonzero(np.r_[True, x[1:] != x[:-1]])
    ends = np.r_[starts[1:], n]
    counts = ends - starts
    values = x[starts]
    K = starts.size
    cap = min(matches, n - 1)
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
    group = np.repeat(np.arange(K), counts)
    first, last = starts[lo][group], ends[hi][group]
    centred = D - D.mean(axis=0)  # the residual is shift-invariant; centring keeps the running sums exact
    cum = np.vstack([np.zeros((1, D.shape[1])), np.cumsum(centred, axis=0)])
    J = (last - first - 1).astype(np.float64)[:, None]
    others = (cum[last] - cum[first] - centred) / J
    return np.sqrt(J / (J + 1)) * (centred - others)


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


def residuals(x: np.ndarray, D: np.ndarray, fitted: np.ndarray | None, matches: int) -> np.ndarray:
    """Nearest-neighbour residuals without clusters; with clusters, the fit's residuals (rdrobust's CR1)."""
    if fitted is None:
        return nn_residuals(x, D, matches)
    return D - fitted
