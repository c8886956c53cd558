"""Least squares with absorbed fixed effects: the within transformation and the fit.

The within transformation is computed in numpy by alternating projections
(Gaure 2013): subtract weighted group means of each fixed effect in turn until
the largest change is below ``tol``. A balanced panel without weights is
exact after one sweep. The fit returns what any sandwich variance needs, the
coefficients, the bread (X'WX)^-1 and the scores w_i x_i e_i summed within
groups; the cluster-robust variance built from them (CRV1) is
``causalcli.inference.cluster_robust``.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from causalcli.errors import EstimationError


@dataclass(frozen=True)
class WithinFit:
    """OLS (WLS) on demeaned data, before any variance."""
    coef: np.ndarray
    bread: np.ndarray  # (X'WX)^-1 of the demeaned regressors
    scores: np.ndarray  # G x k: the scores w_i x_i e_i summed within each group of ``score_groups``
    resid: np.ndarray  # of the demeaned outcome
    n: int


def codes_of(values: np.ndarray, labels: bool = False):
    """Dense integer codes 0..L-1 (in sorted order of the values) of a 1-d array, L, and the sorted levels.

    Integer-valued ids with a compact range are coded in O(n) by a lookup table
    instead of a sort (a million rows: 10 ms instead of 80).
    """
    v = values
    if v.dtype.kind in "iuf" and v.size:
        lo, hi = v.min(), v.max()
        if np.isfinite(lo) and np.isfinite(hi) and hi - lo < 4 * v.size + 1024:
            iv = v.astype(np.int64)
            if v.dtype.kind != "f" or np.array_equal(iv, v):
                off = iv - int(lo)
                present = np.zeros(int(hi - lo) + 1, dtype=bool)
                present[off] = True
                lookup = np.cumsum(present) - 1
                codes = lookup[off]
                levels = (np.flatnonzero(present) + int(lo)).astype(v.dtype)
                return (codes, int(levels.size), levels) if labels else (codes, int(levels.size))
    uniq, inv = np.unique(v, return_inverse=True)
    inv = inv.astype(np.int64, copy=False).reshape(-1)
    return (inv, int(uniq.size), uniq) if labels else (inv, int(uniq.size))


def demean(M: np.ndarray, groups: list[tuple[np.ndarray, int]], w: np.ndarray | None = None,
           tol: float = 1e-10, max_iter: int = 10_000) -> np.ndarray:
    """Residuals of the columns of ``M`` (n x k, float) on the fixed effects ``groups`` (codes, levels)."""
    out = np.array(M, dtype=np.float64, copy=True, order="F")
    if not groups:
        return out
    sums_w = [np.bincount(c, weights=w, minlength=L) if w is not None else np.bincount(c, minlength=L).astype(float)
              for c, L in groups]
    # a balanced two-way panel without weights (each unit x period once: n = L1 * L2 with unique cells,
    # which the design checks) is exact after one sweep: x - mean_unit - mean_period + mean
    one_sweep = (w is None and len(groups) == 2 and out.shape[0] == groups[0][1] * groups[1][1]
                 and np.all(sums_w[0] == groups[1][1]))
    for j in range(out.shape[1]):
        x = out[:, j]
        xw = None
        # tol is relative to the column's size: sums of values in the millions (jtrain sales) carry rounding
        # above an absolute 1e-10, and the sweeps never got below it (exit 4 "did not converge")
        scale = max(1.0, float(np.max(np.abs(x)))) if x.size else 1.0
        for it in range(max_iter):
            change = 0.0
            for (c, L), sw in zip(groups, sums_w):
                xw = x * w if w is not None else x
                m = np.bincount(c, weights=xw, minlength=L) / sw
                change = max(change, float(np.max(np.abs(m))))
                x -= m[c]
            if len(groups) == 1 or one_sweep or change <= tol * scale:
                break
        else:  # pragma: no cover - needs a pathological design
            raise EstimationError(f"fixed-effect demeaning did not converge in {max_iter} sweeps")
        out[:, j] = x
    return out


def within_ols(y: np.ndarray, X: np.ndarray, names: list[str], score_groups: tuple[np.ndarray, int],
               fixed_effects: list[tuple[np.ndarray, int]], w: np.ndarray | None = None,
               tol: float = 1e-10) -> WithinFit:
    """OLS (WLS with ``w``) of y on X absorbing ``fixed_effects``; scores summed within ``score_groups``."""
    n, k = X.shape
    Z = demean(np.column_stack([y, X]), fixed_effects, w, tol)
    yd, Xd = Z[:, 0], Z[:, 1:]
    # a regressor that the fixed effects absorb (or a collinear set) cannot be estimated
    raw = np.sqrt(np.einsum("ij,ij->j", X, X) / n) + 1e-300
    left = np.sqrt(np.einsum("ij,ij->j", Xd, Xd) / n)
    for j in range(k):
        if left[j] <= 1e-9 * max(raw[j], 1.0):
            raise EstimationError(f"regressor {names[j]!r} is absorbed by the fixed effects (constant within "
                                  "units or periods); it cannot be estimated")
    Xw = Xd * w[:, None] if w is not None else Xd
    XtX = Xw.T @ Xd
    Xty = Xw.T @ yd
    coef, bread = _solve(XtX, Xty, names)
    resid = yd - Xd @ coef
    cl, G = score_groups
    S = np.empty((G, k))
    for j in range(k):  # group sums of the scores, one column at a time (no n x k scores matrix)
        S[:, j] = np.bincount(cl, weights=Xw[:, j] * resid, minlength=G)
    return WithinFit(coef, bread, S, resid, n)


def _solve(XtX: np.ndarray, Xty: np.ndarray, names: list[str]) -> tuple[np.ndarray, np.ndarray]:
    try:
        bread = np.linalg.inv(XtX)
        scale = np.sqrt(np.diag(XtX))
        if not np.all(np.isfinite(bread)) or np.linalg.cond(XtX / np.outer(scale, scale)) > 1e12:
            raise np.linalg.LinAlgError
    except np.linalg.LinAlgError:
        redundant = _redundant(XtX)
        if redundant:  # which to drop: each a combination of the fixed effects and the regressors before it
            shown = [names[j] for j in redundant]
            raise EstimationError(
                f"{len(shown)} of the {len(names)} regressors {'is' if len(shown) == 1 else 'are'} a linear "
                f"combination of the fixed effects and the regressors before {'it' if len(shown) == 1 else 'them'}: "
                f"{', '.join(shown)}; remove {'it' if len(shown) == 1 else 'them'} from covariates (e.g. one "
                "dummy of each set the fixed effects already span)") from None
        raise EstimationError(f"the regressors {', '.join(names)} are collinear after the fixed effects; "
                              "drop one") from None
    return bread @ Xty, bread


def _redundant(XtX: np.ndarray, tol: float = 1e-10) -> list[int]:
    """The columns, in order, whose residual on the columns kept before them is below ``tol`` of their own norm
    (Gram matrix in, sequential Gram-Schmidt): what a fit keeping the first of each dependent set drops, as
    Stata and fixest do. Region x year dummies beside unit and year effects: the last region of each year and
    the last year of each region."""
    from scipy.linalg import solve_triangular

    k = XtX.shape[0]
    R = np.zeros((k, k))  # the Cholesky factor of the kept columns' Gram matrix, grown a column at a time
    kept: list[int] = []
    out = []
    for j in range(k):
        own = float(XtX[j, j])
        m = len(kept)
        z = solve_triangular(R[:m, :m], XtX[kept, j], trans="T") if m else np.zeros(0)
        left = own - float(z @ z)
        if own <= 0 or left <= tol * own:
            out.append(j)
            continue
        R[:m, m] = z
        R[m, m] = np.sqrt(left)
        kept.append(j)
    return out


def within_ols_cells(y: np.ndarray, X: np.ndarray, names: list[str], cell: np.ndarray, table: np.ndarray,
                     table_names: list[str], score_groups: tuple[np.ndarray, int], unit: tuple[np.ndarray, int],
                     time: tuple[np.ndarray, int], tol: float = 1e-10) -> WithinFit:
    """``within_ols`` of y on [table[cell], X] with unit and period fixed effects, balanced panel, no weights.

    Regressors that depend on the row only through its cell (``cell`` = cohort x period, every unit of a
    cohort sharing its periods), such as event-time dummies, are demeaned on the cell table, where the
    within transformation of a balanced panel is exact: value - unit mean - period mean + grand mean. The
    normal equations and the group score sums then need cell sums only, never an n x k matrix. Same
    result as ``within_ols`` on the expanded design (tests: 1e-10).
    """
    uc, n_units = unit
    tc, n_times = time
    n = y.size
    ncell = table.shape[0]
    counts = np.bincount(cell, minlength=ncell).astype(float)
    # cell -> cohort (the cells of a cohort are its n_times periods, in order) and period
    cohort_of = np.arange(ncell) // n_times
    time_of = np.arange(ncell) % n_times
    size = counts.reshape(-1, n_times)[:, 0]                       # units per cohort
    unit_mean = table.reshape(-1, n_times, table.shape[1]).mean(axis=1)          # per cohort
    time_mean = np.einsum("c,ctk->tk", size, table.reshape(-1, n_times, table.shape[1])) / size.sum()
    grand = size @ unit_mean / size.sum()
    Dt = table - unit_mean[cohort_of] - time_mean[time_of] + grand
    raw = np.sqrt(np.einsum("c,ck->k", counts, table ** 2) / n) + 1e-300
    left = np.sqrt(np.einsum("c,ck->k", counts, Dt ** 2) / n)
    for j in range(table.shape[1]):
        if left[j] <= 1e-9 * max(raw[j], 1.0):
            raise EstimationError(f"regressor {table_names[j]!r} is absorbed by the fixed effects; it cannot be "
                                  "estimated")
    Z = demean(np.column_stack([y, X]), [unit, time], None, tol)
    yd, Xd = Z[:, 0], Z[:, 1:]
    cy = np.bincount(cell, weights=yd, minlength=ncell)
    cX = np.column_stack([np.bincount(cell, weights=Xd[:, j], minlength=ncell) for j in range(Xd.shape[1])]) \
        if Xd.shape[1] else np.zeros((ncell, 0))
    kd, kx = Dt.shape[1], Xd.shape[1]
    XtX = np.block([[Dt.T @ (Dt * counts[:, None]), Dt.T @ cX], [cX.T @ Dt, Xd.T @ Xd]])
    Xty = np.concatenate([Dt.T @ cy, Xd.T @ yd])
    coef, bread = _solve(XtX, Xty, list(table_names) + list(names))
    resid = yd - (Dt @ coef[:kd])[cell] - Xd @ coef[kd:]
    cl, G = score_groups
    S = np.empty((G, kd + kx))
    if G * ncell <= 20_000_000:
        E = np.bincount(cl * ncell + cell, weights=resid, minlength=G * ncell).reshape(G, ncell)
        S[:, :kd] = E @ Dt
    else:  # pragma: no cover - very many clusters and cells
        for j in range(kd):
            S[:, j] = np.bincount(cl, weights=Dt[cell, j] * resid, minlength=G)
    for j in range(kx):
        S[:, kd + j] = np.bincount(cl, weights=Xd[:, j] * resid, minlength=G)
    return WithinFit(coef, bread, S, resid, n)
