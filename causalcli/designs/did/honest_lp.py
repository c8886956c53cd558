"""Linear programs of the honest-DiD test on long event studies (many post-treatment periods).

With more post-treatment periods than the vertex enumeration of ``honest`` affords, each eta of the ARP
test is a linear program solved by HiGHS (``scipy.optimize.linprog``; the dual vertex g from its marginals).
vlo/vup, derived here: g stays optimal at c iff max over the polytope of gamma'(s + b c) <= c, iff (LP
duality) some delta has s + b c - X delta <= c sd, i.e. c (sd - b) + X delta >= s. The c with such a delta
form an interval (a projection of a polyhedron in (c, delta)) holding eta, so vlo = min c and vup = max c
over it are two LPs in (c, delta) with the same constraints, exact where HonestDiD's bisection stops at a
tolerance (unbounded: -inf / +inf). Their duals, max gamma's over {gamma >= 0, X'gamma = 0,
(sd - b)'gamma = +1 / -1}, have the rescaled vertices v / (1 - v'b) as vertices: the closed form of the
vertex path.

To keep the thousands of programs (grid points, draws, both bounds) affordable, the programs of one shape
keep the optimal bases they have met (a basis S with dual W_S^{-T} f >= 0 is optimal for all y with
W W_S^{-1} y_S >= y, checked for all columns at once; the value is then exact, computed by numpy) and call
HiGHS only for the columns no stored basis certifies (``BatchLP``): a few hundred programs for a whole
analysis. A deterministic work limit (``LP_BUDGET``, in units of one linear program, the least-favourable
draws counted too: about 10 s on two cores; ``WorkBudget``) stops an analysis that would take longer. If
HiGHS fails on a program, eta is NaN and the test does not reject, vlo = eta and vup = inf (HonestDiD's
fallbacks).
"""

from __future__ import annotations

import numpy as np

# LP path work limit, in units of one HiGHS solve with what goes with it (about 5 ms on the 2 development cores);
# the least-favourable draws of a piece cost rows * draws / LF_UNIT units. 2200 units is about 10 s there; a
# bigger analysis is skipped with the reason (a count, not a clock: the outcome does not depend on the machine).
LP_BUDGET = 2_200
LF_UNIT = 255_000


class LPBudgetExceeded(ValueError):
    """The LP path would need more HiGHS solves than its budget."""


class WorkBudget:
    """Counts HiGHS solves (deterministic limit) and keeps the optimal row sets found so far.

    Row sets are shared between linear programs of the same kind and shape (the pieces, Mbar values and
    targets of one analysis): a row set optimal for one is tried on the others before HiGHS is called.
    """

    def __init__(self, limit: int = LP_BUDGET):
        self.limit, self.used = limit, 0
        self.row_sets: dict[tuple, dict[bytes, np.ndarray]] = {}

    def spend(self, units: float = 1.0) -> None:
        self.used += units
        if self.used > self.limit:
            raise LPBudgetExceeded(f"more than {self.limit} units of work (one unit: one linear program)")


class BatchLP:
    """min f'u s.t. W u >= y for many right-hand sides y, each certified optimal by a stored basis.

    A basis S (len(u) rows of W, W_S invertible) with dual gamma_S = W_S^{-T} f >= 0 is optimal for every y
    whose basic solution u = W_S^{-1} y_S is feasible (W u >= y): that check is a matrix product over all
    columns at once. Columns no stored basis certifies are solved by HiGHS (``scipy.optimize.linprog``);
    the basis read from its solution (the support of its dual, the marginals, completed by active rows) joins
    the store. The value is f'u, the dual vertex gamma (zero off S). If the LP is unbounded (its dual
    polytope is empty, which does not depend on y) the value is -inf for every y.
    """

    def __init__(self, W: np.ndarray, f: np.ndarray, budget: WorkBudget, kind: str):
        self.W, self.f, self.budget = W, f, budget
        self.m, self.r = W.shape
        self.bases: list[tuple[np.ndarray, np.ndarray, np.ndarray]] = []  # (rows S, K = W W_S^{-1}, gamma)
        self.tried: set[bytes] = set()
        self.shared = budget.row_sets.setdefault((kind, self.m, self.r), {})
        self.unbounded = False

    def _basis(self, S: np.ndarray):
        """(S, W W_S^{-1}, gamma) if the rows S form a dual-feasible basis, else None."""
        WS = self.W[S]
        try:
            WS_inv = np.linalg.inv(WS)
        except np.linalg.LinAlgError:
            return None
        if np.abs(WS).sum(axis=1).max() * np.abs(WS_inv).sum(axis=1).max() > 1e10:  # condition number (inf-norm)
            return None
        gS = WS_inv.T @ self.f
        if (gS < -1e-12).any():
            return None
        g = np.zeros(self.m)
        g[S] = np.clip(gS, 0.0, None)
        return S, self.W @ WS_inv, g

    def solve(self, Y: np.ndarray, want_gamma: bool = True, rows: bool = False
              ) -> tuple[np.ndarray, np.ndarray | None]:
        """(values (P,), dual vertices (P, m) or None) for the columns of Y (m, P) (the rows if ``rows``)."""
        if rows:
            Y = Y.T
        P = Y.shape[1]
        value = np.full(P, np.nan)
        which = np.full(P, -1)              # index of the certifying basis
        own: dict[int, np.ndarray] = {}     # columns kept with HiGHS's own dual
        failed: list[int] = []
        self.which = which
        if self.unbounded or P == 0:
            return np.full(P, -np.inf), (np.zeros((P, self.m)) if want_gamma else None)
        Yt = Y.T if rows else np.ascontiguousarray(Y.T)   # (P, m): rows gathered contiguously
        tol = 1e-9 * (1.0 + float(np.abs(Yt).max(initial=0.0)))
        for key, S in list(self.shared.items()):  # row sets optimal in related programs
            if key not in self.tried:
                self.tried.add(key)
                basis = self._basis(S)
                if basis is not None:
                    self.bases.append(basis)
        pending = np.arange(P)
        best_val = np.full(P, -np.inf)   # max over the stored dual vertices of gamma'y: a lower bound
        if self.bases:
            # each column against the basis whose dual vertex gives it the largest value (the optimum when
            # that vertex is optimal), then the few left against the bases of tied vertices (degenerate)
            vals = Yt @ np.stack([bs[2] for bs in self.bases]).T     # (P, B)
            best = vals.argmax(axis=1)
            best_val = vals[np.arange(P), best]
            order = np.argsort(best, kind="stable")
            bounds = np.searchsorted(best[order], np.arange(len(self.bases) + 1))
            for k in range(len(self.bases)):
                cols = order[bounds[k]:bounds[k + 1]]
                if cols.size:
                    self._certify(k, Yt, cols, value, which, tol)
            pending = np.flatnonzero(np.isnan(value))
            if pending.size:
                top = vals[pending] >= best_val[pending, None] - tol
                for k in range(len(self.bases)):
                    cols = pending[top[:, k] & np.isnan(value[pending])]
                    if cols.size:
                        self._certify(k, Yt, cols, value, which, tol)
                pending = pending[np.isnan(value[pending])]
        while pending.size:
            j = pending[0]
            found = self._lp(Yt[j])
            if found is None:  # unbounded
                return np.full(P, -np.inf), (np.zeros((P, self.m)) if want_gamma else None)
            if found == "failed":  # HiGHS did not solve it: NaN (callers then act as HonestDiD does)
                failed.append(j)
                pending = pending[1:]
                continue
            basis, val_j, g_j = found
            if basis is not None:
                self.bases.append(basis)
                key = basis[0].tobytes()
                self.tried.add(key)
                self.shared.setdefault(key, basis[0])
                v = Yt[pending] @ basis[2]
                cand = pending[v >= best_val[pending] - tol]   # only where the new vertex is (tied) best
                best_val[pending] = np.maximum(best_val[pending], v)
                self._certify(len(self.bases) - 1, Yt, cand, value, which, tol)
                pending = pending[np.isnan(value[pending])]
            if pending.size and pending[0] == j:  # no basis, or not certified to tol: HiGHS's own optimum
                value[j], own[j] = val_j, g_j
                pending = pending[1:]
        value[failed] = np.nan
        if not want_gamma:
            return value, None
        gamma = np.zeros((P, self.m))
        ok = which >= 0
        if ok.any():
            gamma[ok] = np.stack([bs[2] for bs in self.bases])[which[ok]]
        for j, g in own.items():
            gamma[j] = g
        return value, gamma

    def _certify(self, k, Yt, cols, value, which, tol) -> None:
        S, K, g = self.bases[k]
        Yp = Yt[cols]
        YS = Yp[:, S]
        ok = (YS @ K.T - Yp >= -tol).all(axis=1)
        done = cols[ok]
        value[done] = YS[ok] @ g[S]
        which[done] = k

    def _lp(self, y: np.ndarray):
        from scipy.optimize import linprog

        self.budget.spend()
        res = linprog(self.f, A_ub=-self.W, b_ub=-y, bounds=(None, None), method="highs",
                      options={"primal_feasibility_tolerance": 1e-10, "dual_feasibility_tolerance": 1e-10})
        if res.status == 3:
            self.unbounded = True
            return None
        if res.status != 0:
            return "failed"
        g = np.clip(-res.ineqlin.marginals, 0.0, None)   # duals of W u >= y
        val = float(res.fun)
        # basis: the rows with a positive dual, completed by the tightest other rows while they add rank
        slack = res.ineqlin.residual
        support = np.flatnonzero(g > 1e-12)
        others = [i for i in np.argsort(slack, kind="stable") if g[i] <= 1e-12]
        S: list[int] = []
        Q = np.zeros((0, self.r))   # orthonormal basis of the chosen rows (Gram-Schmidt)
        for i in [*support, *others]:
            if len(S) == self.r or (g[i] <= 1e-12 and slack[i] > 1e-7 * (1.0 + np.abs(y).max())):
                break
            w = self.W[i]
            res_w = w - Q.T @ (Q @ w)
            norm = np.linalg.norm(res_w)
            if norm > 1e-9 * np.linalg.norm(w):
                S.append(i)
                Q = np.vstack([Q, res_w / norm])
            elif g[i] > 1e-12:
                return None, val, g  # the dual's support is not independent: no basis from it
        if len(S) < self.r:
            return None, val, g
        basis = self._basis(np.sort(np.array(S)))
        return basis, val, g


def independent_columns(X: np.ndarray) -> np.ndarray:
    """Columns of X spanning its column space (a dependent nuisance direction changes no moment's reach)."""
    from scipy.linalg import qr

    if X.shape[1] == 0:
        return np.arange(0)
    _, R, piv = qr(X, mode="economic", pivoting=True)
    d = np.abs(np.diag(R))
    rank = int((d > 1e-9 * max(d[0], 1e-300)).sum())
    return np.sort(piv[:rank])
