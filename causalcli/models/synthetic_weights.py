"""The synthetic control estimator of Abadie, Diamond and Hainmueller, in numpy.

Notation (Abadie and Gardeazabal 2003; Abadie, Diamond and Hainmueller 2010):
``X1`` (k) and ``X0`` (k x J) are the predictors of the treated unit and of the
J donors, each predictor row divided by its standard deviation over all J + 1
units (as R ``Synth`` does); ``Z1`` (T0) and ``Z0`` (T0 x J) are the outcomes
over the periods whose fit is optimised. For diagonal predictor weights
``V = diag(v)``, the donor weights solve the quadratic programme

    W(V) = argmin_{w >= 0, sum w = 1} (X1 - X0 w)' V (X1 - X0 w),

and V itself minimises the pre-period outcome loss
``L(V) = ||Z1 - Z0 W(V)||^2 / T0`` (the "nested" optimisation).

The inner programme is solved exactly by an active-set method on the simplex
(Lawson-Hanson style: the solution has at most k + 1 positive weights, so a few
small KKT solves find it); the outer one by L-BFGS-B with the analytic gradient
of ``L`` through the KKT system of the inner optimum (implicit differentiation
on the active set), from several deterministic starting points, keeping the V
with the lowest loss. Everything here is deterministic: no random stream enters.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

TOL = 1e-10
FTOL = 1e-5  # relative decrease of the outer loss per step below which a V search stops; 100x finer than TIE_RTOL
EPS_W = 1e-6  # ||w||^2 penalty of the inner QP: unique W (the least-norm one among tied fits), smooth in V
TIE_RTOL = 1e-3  # outcome losses within 0.1% count as tied (see ``choose``)
MAX_STEP = 3.0  # largest move of log V per BFGS step
MAX_ACTIVE_SET_ITER = 500
# Up to this many donors the inner QP forms G = X0'VX0 (J x J); beyond, it works from the factors (``_FactoredGram``).
# Both give the same G to rounding, but not the same last digits, and the studies users fit
# (and the golden files) have tens of donors; past ~230 donors the dense G's last digits already
# depended on the BLAS thread count, so no reproducible digits are lost above this.
DENSE_MAX_DONORS = 200
STARTS_SEED = 20100601  # fixed stream for the extra Dirichlet starts (ADH 2010's JASA issue date)


@dataclass(frozen=True)
class SimplexFit:
    w: np.ndarray
    passive: np.ndarray  # indices with positive weight
    loss: float
    capped: bool = False  # stopped at MAX_ACTIVE_SET_ITER steps: feasible weights, the optimum not certified


class _DenseGram:
    """``G`` given as a matrix (conformal and augmented fits pass ``Y0'Y0``)."""

    def __init__(self, G: np.ndarray):
        self.G = G
        self.diag = np.diag(G)

    def block(self, p: np.ndarray) -> np.ndarray:
        return self.G[np.ix_(p, p)]

    def times(self, w: np.ndarray, p: np.ndarray | None = None) -> np.ndarray:
        return self.G @ w

    def quadratic(self, w: np.ndarray) -> float:
        return float(w @ self.G @ w)


class _FactoredGram:
    """``G = X0' diag(v) X0 + eps I`` kept as its factors: the J x J matrix is never formed.

    Forming it costs k J^2 time and J^2 memory per inner solve, while the active set only
    ever reads the block of its few passive donors and the product ``G w``, each O(k J)
    from the factors. The numbers are G's to rounding; BLAS sums the short dot products
    of a small block in another order than those of the full matrix, so the last digits
    may differ (hence ``DENSE_MAX_DONORS``).
    """

    def __init__(self, X0: np.ndarray, Xv: np.ndarray, eps: float):
        self.X0, self.Xv, self.eps = X0, Xv, eps
        self.diag = np.einsum("kj,kj->j", X0, Xv) + eps

    def block(self, p: np.ndarray) -> np.ndarray:
        H = self.X0[:, p].T @ self.Xv[:, p]
        H.flat[::H.shape[0] + 1] += self.eps
        return H

    def times(self, w: np.ndarray, p: np.ndarray | None = None) -> np.ndarray:
        """``G w``; ``p``: the indices where w is non-zero, in order, when the caller knows them."""
        p = np.flatnonzero(w) if p is None else p
        out = self.X0.T @ (self.Xv[:, p] @ w[p])
        out[p] += self.eps * w[p]
        return out

    def quadratic(self, w: np.ndarray) -> float:
        p = np.flatnonzero(w)
        return float(w[p] @ self.block(p) @ w[p])


class _WeightedGram(_FactoredGram):
    """``_FactoredGram`` of ``X0' diag(v) X0 + eps I`` without forming ``X0 diag(v)``: the columns of it that
    a block or a product reads are made on demand, ``diag`` comes from the squares of X0 (``squares``,
    computed once per fit). The inner solve then costs two O(k J) products per iteration instead of four;
    the numbers are ``_FactoredGram``'s to rounding."""

    def __init__(self, X0: np.ndarray, v: np.ndarray, eps: float, squares: np.ndarray):
        self.X0, self.v, self.eps = X0, v, eps
        self.diag = squares.T @ v + eps

    def block(self, p: np.ndarray) -> np.ndarray:
        Xp = self.X0[:, p]
        H = Xp.T @ (Xp * self.v[:, None])
        H.flat[::H.shape[0] + 1] += self.eps
        return H

    def times(self, w: np.ndarray, p: np.ndarray | None = None) -> np.ndarray:
        p = np.flatnonzero(w) if p is None else p
        out = self.X0.T @ ((self.X0[:, p] * self.v[:, None]) @ w[p])
        out[p] += self.eps * w[p]
        return out


# the squares of the last large X0 seen (one fit calls weights_for_v a few hundred times with the same X0)
_squares_of: list = [None, None]


def _squares(X0: np.ndarray) -> np.ndarray:
    if _squares_of[0] is not X0:
        _squares_of[:] = [X0, X0 * X0]
    return _squares_of[1]


def simplex_ls(G: np.ndarray, c: np.ndarray, b2: float = 0.0, warm: np.ndarray | None = None) -> SimplexFit:
    """Minimise 0.5 w'Gw - c'w (+ 0.5 b2) over the unit simplex, exactly (active set).

    ``G = A'A`` and ``c = A'b`` for the least-squares form ``0.5 ||Aw - b||^2``
    (``b2 = b'b`` only makes the reported loss that of the least-squares form).
    Starts at the best single vertex, or at ``warm`` (weights on the simplex from a
    nearby problem, which saves most KKT solves inside the outer loop), adds the
    donor whose KKT multiplier is most violated, and steps back to the simplex
    whenever the equality-constrained solution on the passive set leaves it.
    """
    return _active_set(_DenseGram(G), c, b2, warm)


def rows_gram(A: np.ndarray) -> "_DenseGram | _FactoredGram":
    """G = A'A for ``simplex_ls_rows``: formed only up to ``DENSE_MAX_DONORS`` columns, else kept as its factor.

    A caller refitting one A against many b (the conformal test inversion) builds it once."""
    if A.shape[1] <= DENSE_MAX_DONORS:
        return _DenseGram(A.T @ A)
    return _FactoredGram(A, A, 0.0)


def simplex_ls_rows(A: np.ndarray, b: np.ndarray, gram: "_DenseGram | _FactoredGram | None" = None,
                    warm: np.ndarray | None = None) -> SimplexFit:
    """``simplex_ls`` for ``0.5 ||Aw - b||^2`` given A (rows x J) and, optionally, ``rows_gram(A)`` and weights
    ``warm`` of a nearby problem to start from (the reported loss leaves out 0.5 b'b, as ``simplex_ls(A'A, A'b)``)."""
    c = A.T @ b
    return _active_set(rows_gram(A) if gram is None else gram, c, 0.0, warm)


def _active_set(gram: "_DenseGram | _FactoredGram", c: np.ndarray, b2: float,
                warm: np.ndarray | None) -> SimplexFit:
    J = c.shape[0]
    diag = gram.diag
    scale = max(float(np.max(np.abs(diag))), 1e-300)
    tol = TOL * scale
    ridge = 1e-13 * scale
    if warm is not None:
        w = warm.copy()
        passive = [int(q) for q in np.flatnonzero(w > 0)]
        settle = len(passive) > 1
    else:
        w = np.zeros(J)
        j0 = int(np.argmin(0.5 * diag - c))  # best vertex: 0.5 G_jj - c_j
        w[j0] = 1.0
        passive = [j0]
        settle = False
    capped = False
    for _ in range(MAX_ACTIVE_SET_ITER):
        if settle:
            while True:
                p = np.asarray(passive)
                z = _kkt_solve(gram.block(p), c[p], ridge)
                if z.min() > 0:
                    w[:] = 0.0
                    w[p] = z
                    break
                wp = w[p]
                neg = z <= 0
                step = np.min(wp[neg] / (wp[neg] - z[neg]))
                wp = wp + step * (z - wp)
                w[:] = 0.0
                w[p] = wp
                keep = wp > 1e-14
                passive = [int(q) for q, k in zip(p, keep) if k]
                if not passive:  # cannot happen for a convex combination; guard anyway
                    passive = [int(p[np.argmax(wp)])]
                    w[:] = 0.0
                    w[passive[0]] = 1.0
                    break
        g = gram.times(w, np.sort(np.asarray(passive))) - c  # w is non-zero exactly on the passive set
        gp = float(g[passive].sum()) / len(passive)
        reduced = g - gp
        reduced[passive] = 0.0
        j = int(np.argmin(reduced))
        if reduced[j] >= -tol:
            break
        passive.append(j)
        settle = True
    else:
        capped = True
    w = np.clip(w, 0.0, None)
    w /= w.sum()
    loss = float(0.5 * gram.quadratic(w) - c @ w + 0.5 * b2)
    return SimplexFit(w, np.flatnonzero(w > 0), loss, capped)


def _kkt_solve(H: np.ndarray, c: np.ndarray, ridge: float) -> np.ndarray:
    """Minimise 0.5 z'Hz - c'z subject to sum z = 1 (H may be singular: tiny ridge)."""
    p = H.shape[0]
    if p == 1:
        return np.ones(1)
    K = np.ones((p + 1, p + 1))
    K[:p, :p] = H
    K.flat[:p * (p + 2):p + 2] += ridge  # the diagonal of the H block
    K[p, p] = 0.0
    rhs = np.empty(p + 1)
    rhs[:p] = c
    rhs[p] = 1.0
    try:
        sol = np.linalg.solve(K, rhs)
    except np.linalg.LinAlgError:
        sol = np.linalg.lstsq(K, rhs, rcond=None)[0]
    return sol[:p]


# ---------------------------------------------------------------- nested V


@dataclass(frozen=True)
class NestedFit:
    """The synthetic control fit for one treated unit."""

    w: np.ndarray  # donor weights (J)
    v: np.ndarray  # predictor weights (k), sum 1
    loss_v: float  # pre-period outcome MSPE over the optimised periods
    loss_w: float  # predictor loss (X1 - X0 w)'V(X1 - X0 w)
    start: str  # which start gave the kept solution
    starts_tried: int
    lowest_loss: float | None = None  # the lowest loss any start reached (ties: see ``choose``)
    local_optima: tuple[tuple[str, float, np.ndarray], ...] = ()  # (start, outcome loss, w) of every start
    capped: bool = False  # the kept W's inner solve stopped at MAX_ACTIVE_SET_ITER steps (``SimplexFit.capped``)


def scale_predictors(X1: np.ndarray, X0: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Divide each predictor by its SD over all units (treated and donors), as R Synth."""
    both = np.column_stack([X0, X1])
    sd = np.std(both, axis=1, ddof=1)
    sd = np.where(sd > 0, sd, 1.0)
    return X1 / sd, X0 / sd[:, None], sd


def weights_for_v(v: np.ndarray, X1: np.ndarray, X0: np.ndarray, warm: np.ndarray | None = None) -> SimplexFit:
    if X0.shape[1] <= DENSE_MAX_DONORS:
        Xv = X0 * v[:, None]
        c = Xv.T @ X1
        G = X0.T @ Xv
        G.flat[::G.shape[0] + 1] += EPS_W
        return _active_set(_DenseGram(G), c, float(X1 @ (v * X1)), warm)
    c = X0.T @ (v * X1)
    return _active_set(_WeightedGram(X0, v, EPS_W, _squares(X0)), c, float(X1 @ (v * X1)), warm)


def _loss_and_grad(x: np.ndarray, X1, X0, Z1, Z0, warm=None, lazy: bool = False):
    """Outcome loss L(v(x)), v = x / sum x, and its gradient in x (through the inner KKT system).

    With ``lazy`` the gradient comes back as a function, so line-search points that
    are rejected never pay for it.
    """
    S = float(x.sum())
    v = x / S
    fit = weights_for_v(v, X1, X0, warm)
    w = fit.w
    T0 = Z1.shape[0]
    e = Z1 - Z0 @ w
    loss = float(e @ e) / T0

    def gradient() -> np.ndarray:
        P = fit.passive
        p = P.size
        if p <= 1:
            return np.zeros_like(x)
        XP = X0[:, P]
        r = X1 - XP @ w[P]  # predictor residuals
        K = np.ones((p + 1, p + 1))
        K[:p, :p] = XP.T @ (XP * v[:, None])
        K.flat[:p * (p + 2):p + 2] += EPS_W
        K[p, p] = 0.0
        rhs = np.zeros(p + 1)
        rhs[:p] = Z0[:, P].T @ e
        try:
            lam = np.linalg.solve(K, rhs)[:p]
        except np.linalg.LinAlgError:
            lam = np.linalg.lstsq(K, rhs, rcond=None)[0][:p]
        grad_v = -2.0 / T0 * r * (XP @ lam)
        return (grad_v - float(grad_v @ v)) / S

    if lazy:
        return loss, gradient, fit
    return loss, gradient(), fit


def _softmax(theta: np.ndarray) -> np.ndarray:
    e = np.exp(theta - theta.max())
    return e / e.sum()


def _loss_and_grad_softmax(theta: np.ndarray, X1, X0, Z1, Z0, warm=None, lazy: bool = False):
    """L(v) with v = softmax(theta): V stays positive and scale-free without bounds."""
    v = _softmax(theta)
    loss, grad_x, fit = _loss_and_grad(v, X1, X0, Z1, Z0, warm, lazy=True)
    # _loss_and_grad differentiates in x with v = x / sum x; at x = v (sum 1) that is grad_v - (grad_v . v)
    if lazy:
        return loss, (lambda: v * grad_x()), fit
    return loss, v * grad_x(), fit


def _bfgs(fun, theta0: np.ndarray, max_iter: int) -> tuple[np.ndarray, float]:
    """A small BFGS with Armijo backtracking; ``fun(theta)`` returns (loss, gradient function).

    Hand-written: the problem has at most a few dozen parameters, and scipy's
    L-BFGS-B costs more per iteration in its wrapper than a whole inner QP here.
    """
    n = theta0.size
    theta = theta0.copy()
    f, gfun = fun(theta)
    g = gfun()
    H = np.eye(n)
    first = True
    for _ in range(max_iter):
        p = -H @ g
        slope = float(g @ p)
        if slope >= 0:
            H = np.eye(n)
            p = -g
            slope = -float(g @ g)
        if slope > -1e-14 * max(1.0, abs(f)):
            break
        big = float(np.max(np.abs(p)))
        step = min(1.0, MAX_STEP / big) if big > 0 else 1.0
        while True:
            cand = theta + step * p
            f_new, gfun = fun(cand)
            if f_new <= f + 1e-4 * step * slope:
                g_new = gfun()
                break
            step *= 0.25
            if step < 1e-12:
                return theta, f
        s = cand - theta
        y = g_new - g
        sy = float(s @ y)
        if sy > 1e-12 * float(np.sqrt((s @ s) * (y @ y))):
            if first:  # scale the initial inverse Hessian (Nocedal and Wright, eq. 6.20)
                H = np.eye(n) * (sy / float(y @ y))
                first = False
            rho = 1.0 / sy
            Hy = H @ y
            H = H + ((sy + y @ Hy) * rho * rho) * np.outer(s, s) - rho * (np.outer(Hy, s) + np.outer(s, Hy))
        done = f - f_new <= FTOL * max(1.0, abs(f))
        theta, f, g = cand, f_new, g_new
        if done:
            break
    return theta, f


def regression_v(X1: np.ndarray, X0: np.ndarray, Z1: np.ndarray, Z0: np.ndarray) -> np.ndarray:
    """R Synth's regression-based V: diag(B B') of the OLS of outcomes on predictors (with intercept)."""
    X = np.column_stack([np.ones(X0.shape[1] + 1), np.column_stack([X0, X1]).T])
    Z = np.column_stack([Z0, Z1]).T
    beta = np.linalg.lstsq(X, Z, rcond=None)[0][1:]
    v = np.einsum("ij,ij->i", beta, beta)
    if not np.all(np.isfinite(v)) or v.sum() <= 0:
        return np.full(X0.shape[0], 1.0 / X0.shape[0])
    return v / v.sum()


def start_points(k: int, X1, X0, Z1, Z0, starts: int) -> list[tuple[str, np.ndarray]]:
    """Deterministic starts: equal weights, the regression V, then Dirichlet draws from a fixed stream."""
    out = [("equal", np.full(k, 1.0 / k)), ("regression", regression_v(X1, X0, Z1, Z0))]
    rng = np.random.default_rng(STARTS_SEED)
    for i in range(max(0, starts - 2)):
        out.append((f"dirichlet_{i + 1}", rng.dirichlet(np.ones(k))))
    return out[:max(starts, 1)]


def choose(found: list[tuple[float, np.ndarray, SimplexFit, str]]) -> tuple[float, np.ndarray, SimplexFit, str]:
    """The kept solution: the lowest outcome loss; near-ties go to the earliest start.

    The nested problem has near-ties (Kuosmanen et al. 2021; Becker and Kloessner
    2018): a V that ignores most predictors can leave W non-unique, and very
    different W then fit the pre-period outcome almost equally well. Losses within
    ``TIE_RTOL`` (0.1%) of the lowest count as equal, and the first of them in the
    fixed order of starts (equal, regression, then the Dirichlet draws) is kept, so
    the answer does not hinge on differences below what the data can tell apart:
    rounding the Proposition 99 weights to the paper's three decimals alone moves
    the loss by 0.4%.
    """
    best = min(x[0] for x in found)
    return next(x for x in found if x[0] <= best * (1.0 + TIE_RTOL) + 1e-300)


def fit_nested(X1: np.ndarray, X0: np.ndarray, Z1: np.ndarray, Z0: np.ndarray, *, v_method: str = "nested",
               starts: int = 8, max_iter: int = 200) -> NestedFit:
    """Donor and predictor weights for one treated unit (predictors already scaled).

    ``v_method``: ``nested`` optimises V from ``starts`` deterministic starts and keeps the
    lowest outcome loss; ``equal`` and ``regression`` fix V and solve W once.
    """
    k = X0.shape[0]
    T0 = Z1.shape[0]

    def outcome_loss(w: np.ndarray) -> float:
        e = Z1 - Z0 @ w
        return float(e @ e) / T0

    if v_method in ("equal", "regression") or k == 1:
        v = np.full(k, 1.0 / k) if v_method == "equal" or k == 1 else regression_v(X1, X0, Z1, Z0)
        f = weights_for_v(v, X1, X0)
        return NestedFit(f.w, v, outcome_loss(f.w), 2 * f.loss, v_method if k > 1 else "single predictor", 1,
                         capped=f.capped)

    found: list[tuple[float, np.ndarray, SimplexFit, str]] = []
    for name, v0 in start_points(k, X1, X0, Z1, Z0, starts):
        theta0 = np.log(np.clip(v0 / v0.max(), 1e-6, 1.0))
        state: dict[str, np.ndarray | None] = {"warm": None}

        def fun(theta: np.ndarray):
            loss, grad, f = _loss_and_grad_softmax(theta, X1, X0, Z1, Z0, state["warm"], lazy=True)
            state["warm"] = f.w
            return loss, grad

        theta, loss = _bfgs(fun, theta0, max_iter)
        v = _softmax(theta)
        found.append((loss, v, weights_for_v(v, X1, X0), name))
    loss, v, f, name = choose(found)
    lowest = min(x[0] for x in found)
    optima = tuple((x[3], float(x[0]), x[2].w) for x in found)
    return NestedFit(f.w, v, loss, 2 * f.loss, name, starts, lowest, optima, f.capped)
