"""Honest DiD: relative-magnitude robust confidence sets of Rambachan and Roth (2023).

Event-study coefficients beta = (beta_pre, beta_post) estimate tau + delta,
where tau_pre = 0 and delta is the violation of parallel trends (relative to
the reference period -1, whose delta is 0). Delta^RM(Mbar) bounds every
post-treatment one-period change of delta by Mbar times the largest
pre-treatment one-period change (the change into the reference period
included). The target is theta = l' tau_post: ``l`` is the average of the
post periods (headline) or the first post period.

Delta^RM(Mbar) is a union of polyhedra, one for each location s of the largest
pre-period change and its sign; the confidence set is the union over them of
the sets given by inverting the moment-inequality tests of Andrews, Roth and
Pakes (ARP) with the conditional / least-favourable hybrid ("C-LF"), as R's
HonestDiD ``createSensitivityResults_relativeMagnitudes`` computes it (its
default method for Delta^RM):

* each polyhedron is {delta: A delta <= 0}, with the rows of HonestDiD's
  ``.create_A_RM``; only the rows that involve post periods enter the test
  (``postPeriodMomentsOnly``);
* one post period: the test without nuisance parameters
  (``.testInIdentifiedSet_LF_Hybrid``): the largest standardized moment,
  least-favourable first stage, then a truncated-normal conditional test at
  size alpha (as the R code does, which does not shrink alpha there);
* several post periods: theta is isolated by a change of basis Gamma whose
  first row is l', the other post coordinates are nuisance parameters and the
  statistic is eta = min over them of the largest standardized moment, a
  linear program. Its dual is max gamma'y over the polytope {gamma >= 0,
  sd'gamma = 1, X'gamma = 0}. The conditioning bounds vlo/vup are the range of
  eta over which the optimal dual vertex g stays optimal when y moves along
  b = Sigma g / g'Sigma g (HonestDiD's ``.vlo_vup_dual_fn`` finds it by
  bisection over LPs). The least-favourable critical value is the 1 - kappa
  quantile of eta under y ~ N(0, Sigma), kappa = alpha / 10 (fixed seed; HonestDiD
  uses 1000 draws from R's generator); the second stage has size
  (alpha - kappa) / (1 - kappa) and vup is capped at that critical value.
  Two exact ways to compute eta, g and vlo/vup:

  - up to MAX_SUPPORTED_POST (6) post periods, we enumerate the polytope's
    vertices once per polyhedron (every basic solution): eta = max over them of
    gamma'y, and with y = s + b c (s = y - b eta) g stays optimal while
    v's + (v'b) c <= c for every vertex v, so vlo/vup are the max/min of
    v's / (1 - v'b) over the v with 1 - v'b > 0 / < 0, vectorised over the theta
    grid; 100,000 least-favourable draws;
  - beyond that the candidate bases are too many (C(2T, T)) and each eta is a
    linear program solved by HiGHS, vlo/vup two more (``causalcli.designs.did.honest_lp``,
    whose docstring derives them); 10,000 least-favourable draws on this path
    (``least_favourable_draws``) and a deterministic work limit beyond which the
    analysis is skipped with the reason.
    Where both run the two give the same eta, g, vlo/vup (to rounding) and the
    same accepted grid points (tests/test_did_honest_lp.py).

The confidence set is reported as HonestDiD does: the smallest and largest
accepted points of a grid of 1000 values of theta on [-20, 20] standard
errors of l'beta_post (widened when the set reaches an end of the grid, or
when it lies beyond the grid: |t| > 20, where the set was otherwise empty). The
identified set (the same union with beta known) comes from two linear
programs per polyhedron (scipy ``linprog``). The breakdown value is the
largest Mbar at which the test rejects theta = 0 (the set excludes zero):
found on the Mbar grid, then refined by bisection to 1e-3.

Inputs: the TWFE event study gives levels relative to -1 (the reference is
omitted). Callaway-Sant'Anna's dynamic effects with a varying base period give
one-period changes before treatment; they are cumulated into levels relative
to -1 (exact with one cohort; with several cohorts the cohort weights differ
across event times, which R's HonestDiD avoids by asking for a universal base
period).

References: Rambachan, A. and Roth, J. (2023). A more credible approach to
parallel trends. Review of Economic Studies 90(5), 2555-2591. Andrews, I.,
Roth, J. and Pakes, A. (2023). Inference for linear conditional moment
inequalities. Review of Economic Studies 90(6), 2763-2791.
"""

from __future__ import annotations

from itertools import combinations
from math import comb
from typing import Any

import numpy as np

from causalcli.designs.did.honest_lp import LF_UNIT, BatchLP, LPBudgetExceeded, WorkBudget, independent_columns
from causalcli.inference.distributions import normal_cdf_array, normal_quantile_array

GRID_POINTS = 1000   # HonestDiD's gridPoints default
GRID_HALF_WIDTH = 20.0  # standard errors of l'beta_post, HonestDiD's default grid
LF_SIMS = 100_000    # draws for the least-favourable critical value (HonestDiD: 1000; see the docstring)
LF_SIMS_LP = 10_000  # the same on the LP path (each draw's eta is a linear program; see the docstring)
LF_SEED = 0          # HonestDiD's default seed (its draws come from R's generator, ours from numpy's)
MAX_BASES = 60_000   # vertex enumeration: at most this many candidate bases (9 post periods)
MAX_SUPPORTED_POST = 6  # beyond it (or beyond MAX_BASES) the pieces solve linear programs instead: from 7
#                         post periods on the enumeration is slower (3 s at 7, 21 s at 9, 4 pre periods)
MBAR_GRID = (0.0, 0.25, 0.5, 0.75, 1.0, 1.25, 1.5, 1.75, 2.0)
BREAKDOWN_TOL = 1e-3
_TOL = 1e-10


# ---------------------------------------------------------------- Delta^RM polyhedra


def rm_constraints(n_pre: int, n_post: int, mbar: float, s: int, positive: bool) -> np.ndarray:
    """Rows A of {delta: A delta <= 0} = Delta^RM_{s,sign}(Mbar), columns (delta_pre, delta_post).

    s in -(n_pre-1)..0 locates the largest pre-period change delta_s - delta_{s-1}
    (HonestDiD's indexing: the reference period is 0, post periods 1..n_post).
    """
    n = n_pre + n_post
    diff = np.zeros((n, n + 1))
    diff[np.arange(n), np.arange(n)] = -1.0
    diff[np.arange(n), np.arange(n) + 1] = 1.0
    v = np.zeros(n + 1)
    v[n_pre + s - 1], v[n_pre + s] = -1.0, 1.0
    if not positive:
        v = -v
    bound = np.vstack([np.tile(v, (n_pre, 1)), np.tile(mbar * v, (n_post, 1))])
    A = np.vstack([diff - bound, -diff - bound])
    A = A[np.einsum("ij,ij->i", A, A) > _TOL]
    return np.delete(A, n_pre, axis=1)  # delta_0 = 0


def identified_set(beta: np.ndarray, l_vec: np.ndarray, n_pre: int, mbar: float) -> tuple[float, float]:
    """Bounds of l'tau_post when beta is known: union over (s, sign) of two LPs each."""
    from scipy.optimize import linprog

    n_post = l_vec.size
    theta = float(l_vec @ beta[n_pre:])
    c = np.concatenate([np.zeros(n_pre), l_vec])
    A_eq = np.hstack([np.eye(n_pre), np.zeros((n_pre, n_post))])
    lo, hi = np.inf, -np.inf
    for s in range(-(n_pre - 1), 1):
        for positive in (True, False):
            A = rm_constraints(n_pre, n_post, mbar, s, positive)
            kw = dict(A_ub=A, b_ub=np.zeros(A.shape[0]), A_eq=A_eq, b_eq=beta[:n_pre], bounds=(None, None),
                      method="highs")
            low = linprog(c, **kw)
            high = linprog(-c, **kw)
            if low.status != 0 or high.status != 0:
                continue  # this sign/location is not the largest pre-period change: empty piece
            lo = min(lo, theta + high.fun)   # theta - max l'delta
            hi = max(hi, theta - low.fun)    # theta - min l'delta
    if not np.isfinite(lo):
        return theta, theta
    return float(lo), float(hi)


# ---------------------------------------------------------------- ARP pieces


def _truncnorm_quantile(p: float, lo: np.ndarray, hi: np.ndarray) -> np.ndarray:
    """Quantile p of N(0,1) truncated to [lo, hi], computed on the side of the smaller tail."""
    lo, hi = np.broadcast_arrays(np.asarray(lo, float), np.asarray(hi, float))
    out = np.empty(lo.shape)
    right = lo > 0  # mass far in the right tail: use survival functions -x
    a, b = normal_cdf_array(lo[~right]), normal_cdf_array(hi[~right])
    out[~right] = normal_quantile_array(a + p * (b - a))
    sa, sb = normal_cdf_array(-lo[right]), normal_cdf_array(-hi[right])
    out[right] = -normal_quantile_array(sa - p * (sa - sb))
    return np.clip(out, lo, hi)


def _gamma_basis(l_vec: np.ndarray) -> np.ndarray:
    """An invertible matrix whose first row is l' (HonestDiD's .construct_Gamma: pivots of [l, I])."""
    B = np.column_stack([l_vec, np.eye(l_vec.size)])
    cols: list[int] = []
    for j in range(B.shape[1]):
        if np.linalg.matrix_rank(B[:, cols + [j]]) > len(cols):
            cols.append(j)
        if len(cols) == l_vec.size:
            break
    return B[:, cols].T


_GAMMA_INV: dict[bytes, np.ndarray] = {}


def _gamma_inverse(l_vec: np.ndarray) -> np.ndarray:
    key = np.asarray(l_vec, float).tobytes()
    if key not in _GAMMA_INV:
        _GAMMA_INV[key] = np.linalg.inv(_gamma_basis(l_vec))
    return _GAMMA_INV[key]


def dual_vertices(sd: np.ndarray, X: np.ndarray) -> np.ndarray:
    """Vertices of {gamma >= 0, sd'gamma = 1, X'gamma = 0} (rows), by enumerating basic solutions."""
    W = np.column_stack([sd, X])
    keep: list[int] = []
    for j in range(W.shape[1]):  # independent equality constraints, sd first
        if np.linalg.matrix_rank(W[:, keep + [j]], tol=1e-9) > len(keep):
            keep.append(j)
    W = W[:, keep]
    m, r = W.shape
    if comb(m, r) > MAX_BASES:
        raise ValueError(f"{comb(m, r)} candidate vertices")
    subsets = np.array(list(combinations(range(m), r)), dtype=np.int64).reshape(-1, r)
    M = np.transpose(W[subsets], (0, 2, 1))  # (n, r, r): W_S'
    scale = np.abs(W).max()
    ok = np.abs(np.linalg.det(M / scale)) > 1e-10
    subsets, M = subsets[ok], M[ok]
    rhs = np.zeros(r)
    rhs[0] = 1.0
    g = np.linalg.solve(M, np.broadcast_to(rhs, (M.shape[0], r))[..., None])[..., 0]
    feasible = (g >= -1e-10).all(axis=1)
    G = np.zeros((int(feasible.sum()), m))
    np.put_along_axis(G, subsets[feasible], np.clip(g[feasible], 0.0, None), axis=1)
    if G.shape[0] == 0:
        return G
    return np.unique(np.round(G, 12), axis=0)


class _Piece:
    """The ARP C-LF test for one polyhedron {A delta <= 0}, vectorised over theta.

    With nuisance parameters, eta, its dual vertex and vlo/vup come from the enumerated dual vertices
    (``method="vertices"``) or from linear programs (``method="lp"``); ``"auto"`` takes the vertices when
    there are at most MAX_BASES candidate bases.
    """

    def __init__(self, A: np.ndarray, beta: np.ndarray, sigma: np.ndarray, l_vec: np.ndarray, n_pre: int,
                 alpha: float, kappa: float, z: np.ndarray, method: str = "auto", budget: WorkBudget | None = None):
        n_post = l_vec.size
        post_rows = np.flatnonzero(np.abs(A[:, n_pre:]).sum(axis=1) > 0)
        self.alpha, self.kappa = alpha, kappa
        if n_post == 1:
            self.nuisance = False
            A = A[post_rows]
            self.A, self.beta, self.sigma, self.n_pre = A, beta, sigma, n_pre
            cov = A @ sigma @ A.T
            self.sd = np.sqrt(np.clip(np.diag(cov), 0.0, None))
            stat = (_root(cov) / self.sd[:, None]) @ z[: cov.shape[0]]  # (rows, sims) standardized draws
            self.lf_cv = float(np.quantile(stat.max(axis=0), 1 - kappa))
            return
        self.nuisance = True
        AG = A[:, n_pre:] @ _gamma_inverse(l_vec)
        Y = A @ beta
        cov = A @ sigma @ A.T
        r = post_rows
        self.Y, self.one, self.cov = Y[r], AG[r, 0], cov[np.ix_(r, r)]
        sd = np.sqrt(np.clip(np.diag(self.cov), 0.0, None))
        X = AG[r, 1:]
        if method == "auto":
            W = np.column_stack([sd, X])
            rank = np.linalg.matrix_rank(W, tol=1e-9)
            method = "vertices" if comb(r.size, rank) <= MAX_BASES else "lp"
        self.method = method
        root = _root(self.cov)   # y = root z ~ N(0, cov): the least-favourable draws
        if method == "vertices":
            self.G = dual_vertices(sd, X)
            self.empty = self.G.shape[0] == 0
            if not self.empty:
                eta = ((self.G @ root) @ z[: r.size]).max(axis=0)   # eta of each draw: max over vertices
                self.lf_cv = float(np.quantile(eta, 1 - kappa))
            return
        self.sd, self.X = sd, X[:, independent_columns(X)]
        self.budget = budget if budget is not None else WorkBudget()
        self.budget.spend(r.size * z.shape[1] / LF_UNIT)
        self.eta_lp = BatchLP(np.column_stack([sd, self.X]), np.eye(1 + self.X.shape[1])[0], self.budget, "eta")
        draws_t = z[: r.size].T @ root.T  # the draws as rows (sims, m), contiguous
        eta, _ = self.eta_lp.solve(draws_t, want_gamma=False, rows=True)
        self.empty = self.eta_lp.unbounded
        if not self.empty:  # draws whose LP failed are left out, as HonestDiD's quantile(na.rm = TRUE)
            self.lf_cv = float(np.nanquantile(eta, 1 - kappa))
        self._bound_lps: dict[bytes, tuple[BatchLP, BatchLP]] = {}

    def accept(self, theta: np.ndarray) -> np.ndarray:
        theta = np.asarray(theta, float)
        if self.nuisance:
            return self._accept_nuisance(theta)
        return self._accept_no_nuisance(theta)

    def _accept_no_nuisance(self, theta: np.ndarray) -> np.ndarray:
        y = self.beta[:, None] - np.outer(np.eye(self.beta.size)[self.n_pre], theta)   # (n, P)
        At = self.A / self.sd[:, None]
        moments = At @ y
        top = moments.argmax(axis=0)
        stat = moments[top, np.arange(theta.size)]
        g = At[top]                                          # (P, n)
        s2 = np.einsum("pi,ij,pj->p", g, self.sigma, g)
        c = (g @ self.sigma) / s2[:, None]                   # (P, n)
        zz = y.T - c * np.einsum("pi,ip->p", g, y)[:, None]  # (P, n)
        Abar = At[None, :, :] - g[:, None, :]                # (P, rows, n)
        Ac = np.einsum("pri,pi->pr", Abar, c)
        obj = -np.einsum("pri,pi->pr", Abar, zz) / np.where(Ac != 0, Ac, 1.0)
        vlo = np.where(Ac < 0, obj, -np.inf).max(axis=1)
        vup = np.where(Ac > 0, obj, np.inf).min(axis=1)
        sb = np.sqrt(s2)
        crit = sb * _truncnorm_quantile(1 - self.alpha, vlo / sb, vup / sb)
        reject = (stat > self.lf_cv) | (stat > crit)
        return ~reject

    def conditioning(self, theta: np.ndarray):
        """(eta, dual vertex g (P, m), g'cov g, vlo, vup) at each theta, by the piece's method."""
        y = self.Y[:, None] - np.outer(self.one, theta)     # (m, P)
        if self.method == "vertices":
            G = self.G
            Gy = G @ y                                       # (V, P)
            top = Gy.argmax(axis=0)
            eta = Gy[top, np.arange(theta.size)]
            g = G[top]                                       # (P, m)
        else:
            eta, g = self.eta_lp.solve(y)
        gc = g @ self.cov
        s2 = (gc * g).sum(axis=1)
        degenerate = s2 < np.finfo(float).eps
        s2 = np.where(degenerate, 1.0, s2)
        b = gc / s2[:, None]                                 # (P, m)
        sT = y.T - b * eta[:, None]                          # y = s + b eta
        if self.method == "vertices":
            a = sT @ G.T                                     # (P, V)
            slope = 1.0 - b @ G.T
            with np.errstate(divide="ignore", invalid="ignore"):
                root = a / slope
            vlo = np.where(slope > 1e-10, root, -np.inf).max(axis=1)
            vup = np.where(slope < -1e-10, root, np.inf).min(axis=1)
        else:
            vlo, vup = self._vlo_vup_lp(g, b, sT, degenerate)
            # an LP HiGHS did not solve: HonestDiD's fallback (vlo = eta, vup = inf); a failed eta LP gives
            # NaN, which rejects nothing (HonestDiD: "not rejecting")
            vlo, vup = np.where(np.isnan(vlo), eta, vlo), np.where(np.isnan(vup), np.inf, vup)
        return eta, g, s2, degenerate, vlo, vup

    def _vlo_vup_lp(self, g, b, sT, degenerate):
        """vlo/vup with the dual vertex g held fixed, two linear programs in (c, delta).

        With y = s + b c (b = cov g / g'cov g, s = y - b eta, so g's = 0 and g'y = c), g stays optimal at c
        iff max over the dual polytope of gamma'(s + b c) <= c, iff (LP duality) some delta has
        s + b c - X delta <= c sd, i.e. c (sd - b) + X delta >= s. That set of c is an interval (the
        projection of a polyhedron in (c, delta)) containing eta: vlo = min c and vup = max c over it, two
        LPs with the same constraints. (Their duals are max gamma's over {gamma >= 0, X'gamma = 0,
        (sd - b)'gamma = +1 or -1}, whose vertices are the dual vertices v rescaled by 1/(1 - v'b): the
        closed form max/min of v's / (1 - v'b) of the vertex path.) Unbounded: vlo = -inf / vup = +inf.
        """
        P = g.shape[0]
        vlo, vup = np.full(P, -np.inf), np.full(P, np.inf)
        live = np.flatnonzero(~degenerate)
        if not live.size:
            return vlo, vup
        # group the columns by dual vertex: by the basis that certified them (HiGHS's own dual otherwise)
        which = self.eta_lp.which[live]
        groups: dict[bytes, list[np.ndarray]] = {}
        for w in np.unique(which):
            cols = live[which == w]
            if w >= 0:
                groups.setdefault(np.round(g[cols[0]], 10).tobytes(), []).append(cols)
            else:
                for c in cols:
                    groups.setdefault(np.round(g[c], 10).tobytes(), []).append(np.array([c]))
        k = self.X.shape[1]
        for key, parts in groups.items():
            cols = np.concatenate(parts)
            if key not in self._bound_lps:
                W = np.column_stack([self.sd - b[cols[0]], self.X])
                e1 = np.eye(1 + k)[0]
                self._bound_lps[key] = (BatchLP(W, e1, self.budget, "vlo"), BatchLP(W, -e1, self.budget, "vup"))
            lo_lp, up_lp = self._bound_lps[key]
            S = sT[cols].T
            vlo[cols] = lo_lp.solve(S, want_gamma=False)[0]
            vup[cols] = -up_lp.solve(S, want_gamma=False)[0]
        return vlo, vup

    def _accept_nuisance(self, theta: np.ndarray) -> np.ndarray:
        if self.empty:
            return np.ones(theta.size, dtype=bool)  # the LP is unbounded below: never rejects
        eta, _, s2, degenerate, vlo, vup = self.conditioning(theta)
        sb = np.sqrt(s2)
        first_stage = eta > self.lf_cv
        mod_size = (self.alpha - self.kappa) / (1 - self.kappa)
        zlo, zup, stat = vlo / sb, np.minimum(vup, self.lf_cv) / sb, eta / sb
        inside = (zlo <= stat) & (stat <= zup)
        crit = np.full(theta.size, np.inf)
        if inside.any():
            crit[inside] = np.maximum(0.0, _truncnorm_quantile(1 - mod_size, zlo[inside], zup[inside]))
        reject = first_stage | (inside & (stat > crit))
        reject = np.where(degenerate, eta > 0, reject)
        return ~reject


def _root(cov: np.ndarray) -> np.ndarray:
    """R with R R' = cov (symmetric eigen square root; cov may be singular): R z ~ N(0, cov)."""
    w, U = np.linalg.eigh((cov + cov.T) / 2)
    return U * np.sqrt(np.clip(w, 0.0, None))


# ---------------------------------------------------------------- confidence sets


class RelativeMagnitudes:
    """C-LF confidence sets for l'tau_post under Delta^RM(Mbar) (levels relative to the reference period)."""

    def __init__(self, beta: np.ndarray, sigma: np.ndarray, n_pre: int, l_vec: np.ndarray, alpha: float = 0.05,
                 seed: int = LF_SEED, sims: int | None = None, method: str = "auto", budget: WorkBudget | None = None):
        self.beta, self.sigma, self.n_pre = np.asarray(beta, float), np.asarray(sigma, float), int(n_pre)
        self.l_vec = np.asarray(l_vec, float)
        self.alpha, self.kappa = alpha, alpha / 10
        # common draws for every piece; a piece tests at most the 2 * n_post post-period rows
        n_post = self.l_vec.size
        if method == "auto":  # vertex enumeration while the candidate bases are few enough
            method = "vertices" if n_post == 1 or _enumerable(n_post) else "lp"
        self.method = method
        self.sims = sims if sims is not None else (LF_SIMS if method == "vertices" else LF_SIMS_LP)
        self.z = np.random.default_rng(seed).standard_normal((2 * n_post, self.sims))
        post = slice(self.n_pre, None)
        self.theta = float(self.l_vec @ self.beta[post])
        self.se = float(np.sqrt(self.l_vec @ self.sigma[post, post] @ self.l_vec))
        self._pieces: dict[float, list[_Piece]] = {}
        self.budget = budget if budget is not None else WorkBudget()

    def _iter_pieces(self, mbar: float):
        """The polyhedra of Delta^RM(Mbar) as tests, built on first use and kept."""
        built = self._pieces.setdefault(mbar, [])
        locations = [(s, positive) for s in range(-(self.n_pre - 1), 1) for positive in (True, False)]
        for i, (s, positive) in enumerate(locations):
            if i == len(built):
                built.append(_Piece(rm_constraints(self.n_pre, self.l_vec.size, mbar, s, positive), self.beta,
                                    self.sigma, self.l_vec, self.n_pre, self.alpha, self.kappa, self.z, self.method,
                                    self.budget))
            yield built[i]

    def pieces(self, mbar: float) -> list[_Piece]:
        return list(self._iter_pieces(mbar))

    def accept(self, theta: np.ndarray, mbar: float) -> np.ndarray:
        """theta in the union over the polyhedra of their acceptance regions (stops once all are in)."""
        theta = np.atleast_1d(np.asarray(theta, float))
        out = np.zeros(theta.size, dtype=bool)
        for piece in self._iter_pieces(mbar):
            out |= piece.accept(theta)
            if out.all():
                break
        return out

    def confidence_set(self, mbar: float) -> dict[str, Any]:
        half = GRID_HALF_WIDTH * self.se
        lo_id, hi_id = identified_set(self.beta, self.l_vec, self.n_pre, mbar)
        for _ in range(6):
            grid = np.linspace(-half, half, GRID_POINTS)
            acc = self.accept(grid, mbar)
            beyond = max(abs(lo_id), abs(hi_id)) > half   # a set far from 0 (|t| > 20) can miss the grid
            if not (acc[0] or acc[-1]) and (acc.any() or not beyond):
                break
            half *= 4  # the set reaches an end of the grid (HonestDiD only warns) or lies beyond it: widen it
        out: dict[str, Any] = {"mbar": float(mbar), "lb": None, "ub": None, "identified_lb": lo_id,
                               "identified_ub": hi_id, "grid_step": float(grid[1] - grid[0])}
        if acc.any():
            out["lb"], out["ub"] = float(grid[acc].min()), float(grid[acc].max())
        out["open"] = bool(acc[0] or acc[-1])
        return out

    def breakdown(self, mbars: tuple[float, ...] = MBAR_GRID, tol: float = BREAKDOWN_TOL) -> tuple[float | None, str]:
        """Largest Mbar at which the test rejects theta = 0 (grid, then bisection)."""
        if self.accept(0.0, 0.0)[0]:
            return 0.0, "zero is in the confidence set even at Mbar = 0"
        lo = 0.0
        candidates = [m for m in mbars if m > 0]
        top = max(candidates) if candidates else 1.0
        while top < 100:
            candidates.append(top * 2)
            top *= 2
        for m in candidates:
            if self.accept(0.0, m)[0]:
                hi = m
                break
            lo = m
        else:
            return None, f"zero stays outside the confidence set up to Mbar = {lo:g}"
        while hi - lo > tol:
            mid = (lo + hi) / 2
            if self.accept(0.0, mid)[0]:
                hi = mid
            else:
                lo = mid
        return lo, f"bisection on Mbar to {tol:g}"


# ---------------------------------------------------------------- from an event study


def _levels(b: np.ndarray, V: np.ndarray, rel: list[int], reference_included: bool):
    """(beta, sigma, n_pre, n_post) in HonestDiD's layout, or a reason why not."""
    rel_arr = np.asarray(rel)
    post = np.flatnonzero(rel_arr >= 0)
    if reference_included:
        pre = np.flatnonzero(rel_arr <= -1)
        # one-period changes c_e = delta_e - delta_{e-1}, e = -1, -2, ...: delta_{e-1} = -(c_{-1} + ... + c_e)
        changes = sorted(pre, key=lambda j: -rel_arr[j])
        wanted_pre = list(range(-1, -len(pre) - 1, -1))
    else:
        pre = np.flatnonzero(rel_arr <= -2)
        changes = sorted(pre, key=lambda j: -rel_arr[j])
        wanted_pre = list(range(-2, -len(pre) - 2, -1))
    if not pre.size:
        return "no pre-treatment coefficient"
    if sorted(rel_arr[pre].tolist(), reverse=True) != wanted_pre:
        return "the pre-treatment relative periods are not consecutive"
    if sorted(rel_arr[post].tolist()) != list(range(post.size)) or not post.size:
        return "the post-treatment relative periods are not consecutive from 0"
    n_pre, n_post = len(pre), post.size
    L = np.zeros((n_pre + n_post, b.size))
    if reference_included:
        for k in range(n_pre):  # level at event time -(k+2), row n_pre-1-k (earliest first)
            L[n_pre - 1 - k, changes[: k + 1]] = -1.0
    else:
        for k, j in enumerate(changes):  # changes sorted -2, -3, ...: level rows earliest first
            L[n_pre - 1 - k, j] = 1.0
    post_sorted = sorted(post, key=lambda j: rel_arr[j])
    L[n_pre + np.arange(n_post), post_sorted] = 1.0
    return L @ b, L @ V @ L.T, n_pre, n_post


def _enumerable(n_post: int) -> bool:
    """Whether the dual vertices are enumerated (few post periods) rather than found by linear programs."""
    return n_post <= MAX_SUPPORTED_POST and comb(2 * n_post, n_post) <= MAX_BASES


def relative_magnitude_sets(b: np.ndarray, V: np.ndarray, rel: list[int], conf_level: float,
                            reference_included: bool = False, mbars: tuple[float, ...] = MBAR_GRID,
                            inputs: str | None = None) -> dict[str, Any]:
    """``diagnostics.sensitivity.honest_did`` for an event study with relative periods ``rel``.

    Without ``reference_included`` (TWFE event study) -1 is the omitted reference
    and the leads are levels; with it (Callaway-Sant'Anna, varying base period)
    the estimates before treatment are one-period changes.
    """
    method = ("relative magnitudes Delta^RM(Mbar) (Rambachan and Roth 2023): conditional/least-favourable hybrid "
              "(C-LF, Andrews, Roth and Pakes) confidence sets, union over the location and sign of the largest "
              "pre-period change, as R HonestDiD createSensitivityResults_relativeMagnitudes")
    lay = _levels(np.asarray(b, float), np.asarray(V, float), rel, reference_included)
    if isinstance(lay, str):
        return {"method": method, "skipped": lay}
    beta, sigma, n_pre, n_post = lay
    use_lp = n_post > 1 and not _enumerable(n_post)
    alpha = round(1.0 - conf_level, 12)
    changes = np.diff(np.concatenate([beta[:n_pre], [0.0]]))
    out: dict[str, Any] = {
        "method": method,
        "pre_periods": n_pre, "post_periods": n_post,
        "max_pre_period_change": float(np.max(np.abs(changes))),
        "alpha": alpha, "hybrid_kappa": alpha / 10, "least_favourable_draws": LF_SIMS_LP if use_lp else LF_SIMS,
        "nuisance_solver": ("none (one post period)" if n_post == 1 else
                            f"linear programs (HiGHS) with reused optimal bases: {n_post} post-treatment periods "
                            f"are too many to enumerate the dual vertices (more than {MAX_SUPPORTED_POST})"
                            if use_lp else "exact enumeration of the dual vertices"),
        "theta_grid": f"{GRID_POINTS} points on +/- {GRID_HALF_WIDTH:g} standard errors of the target around 0",
        "inputs": inputs or ("Callaway-Sant'Anna dynamic effects; pre-period one-period changes (varying base "
                             "period) cumulated into levels relative to event time -1" if reference_included else
                             "TWFE event study, levels relative to event time -1 (omitted)"),
    }
    targets = [("average", "average of the post-treatment event-time effects", np.full(n_post, 1.0 / n_post))]
    if n_post > 1:
        targets.append(("first_post_period", "effect at event time 0", np.eye(n_post)[0]))
    budget = WorkBudget()
    if use_lp:
        # pieces built: 2 n_pre per Mbar, for the grid and about 4 more Mbar in the breakdown bisection (which
        # stops at the first piece that accepts), per target; linear programs: about 150 + 30 per piece of one
        # Mbar (seen from 2 to 14 pre and 12 to 40 post periods). Skipped at once near the limit.
        pieces = len(targets) * 2 * n_pre * (len(mbars) + 4)
        expected = pieces * 2 * n_post * LF_SIMS_LP / LF_UNIT + 150 + 30 * 2 * n_pre
        if expected > 0.9 * budget.limit:  # margin: the estimate is rough, the limit itself is hard
            return {"method": method, "pre_periods": n_pre, "post_periods": n_post,
                    "skipped": f"{n_pre} pre- and {n_post} post-treatment periods: the linear-programming path "
                               f"would need about {expected:.0f} units of work, more than {0.9 * budget.limit:.0f} (one "
                               f"unit: one linear program; the limit keeps the command fast)"}
    for key, label, l_vec in targets:
        try:
            rm = RelativeMagnitudes(beta, sigma, n_pre, l_vec, alpha, method="lp" if use_lp else "vertices",
                                    budget=budget)
            sets = [rm.confidence_set(m) for m in mbars]
            bd, how = rm.breakdown(mbars)
        except LPBudgetExceeded as exc:
            return {"method": method, "pre_periods": n_pre, "post_periods": n_post,
                    "skipped": f"{n_pre} pre- and {n_post} post-treatment periods: the linear-programming path "
                               f"would need {exc} (the limit keeps the command fast)"}
        entry = {"target": label, "estimate": rm.theta, "std_error": rm.se, "sets": sets, "breakdown_mbar": bd,
                 "breakdown_search": how}
        if key == "average":
            out.update(entry)
        else:
            out[key] = entry
    bd = out["breakdown_mbar"]
    if use_lp:
        out["lp_work_units"] = round(budget.used, 1)
    if bd == 0.0:
        out["note"] = "the average post-treatment effect is not significant even with no post-treatment trend change"
    elif bd is None:
        out["note"] = "the average post-treatment effect stays significant for every Mbar tried"
    else:
        out["note"] = (f"the average post-treatment effect stays significant while post-treatment changes of the "
                       f"trend violation are at most {bd:.3g} times the largest pre-treatment change")
    return out
