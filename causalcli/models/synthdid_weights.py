"""Synthetic difference-in-differences: unit and time weights, and the weighted DiD they give.

The estimator of Arkhangelsky, Athey, Hirshberg, Imbens and Wager (2021), "Synthetic
Difference-in-Differences", AER 111(12), eqs. (2)-(6), with the weights computed as R
``synthdid`` (``synthdid_estimate``) computes them, so the numbers are synthdid's:

* the panel is ``Y`` (units x periods), controls in rows ``0..N0-1``, treated after them,
  pre-periods in columns ``0..T0-1``;
* unit weights ``omega`` (simplex, with an intercept) make the controls' weighted pre-period
  path parallel to the treated units' mean, penalised by ``zeta_omega^2 * T0 * ||omega||^2``
  where ``zeta_omega = (N_tr T_post)^(1/4) * sigma`` and ``sigma`` is the standard deviation
  of the controls' first differences over the pre-period (paper eq. 5);
* time weights ``lambda`` (simplex, with an intercept) make the weighted pre-periods of the
  controls predict their post-period mean, with a tiny ridge ``zeta_lambda = 1e-6 * sigma``;
* each is solved by Frank-Wolfe with exact line search on the quadratic, from uniform
  weights (or a given start), stopping when an iteration lowers the objective by less than
  ``(1e-5 sigma)^2``; as synthdid, a first pass of 100 iterations is sparsified (weights at
  or below a quarter of the largest set to zero) and a second pass of up to 10,000 follows;
* the estimate is ``(-omega, 1/N1)' Y (-lambda, 1/T1)``.

The variants of synthdid's Table 1 use the same machinery: ``sc`` (synthdid's
``sc_estimate``: no time weights, no intercept, zeta_omega = 1e-6 sigma) and ``did``
(uniform weights). Pure numpy on matrices: the design families build the matrix, so the
did family's comparison view can call the same code.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

VARIANTS = ("sdid", "sc", "did")
PRE_SPARSIFY_ITERATIONS = 100  # synthdid's max.iter.pre.sparsify
MAX_ITERATIONS = 10_000  # synthdid's max.iter
MIN_DECREASE_SCALE = 1e-5  # min.decrease = 1e-5 * sigma
ETA_LAMBDA = 1e-6  # zeta_lambda = 1e-6 * sigma
ETA_OMEGA_SC = 1e-6  # sc_estimate's eta.omega


@dataclass(frozen=True)
class Tuning:
    """The regularisation of one estimate; placebo and bootstrap refits keep the original one (as synthdid)."""

    variant: str
    noise_level: float  # sigma: sd of the controls' pre-period first differences
    zeta_omega: float
    zeta_lambda: float
    min_decrease: float


@dataclass(frozen=True)
class SdidFit:
    estimate: float
    omega: np.ndarray  # unit weights over the N0 controls
    lam: np.ndarray  # time weights over the T0 pre-periods (zeros for sc)
    tuning: Tuning
    iterations: tuple[int, int]  # Frank-Wolfe iterations of (omega, lambda), both passes; 0 when fixed


def noise_level(Y_pre_controls: np.ndarray) -> float:
    """sd (n - 1) of all first differences over time of the controls' pre-period outcomes (units x periods)."""
    diffs = np.diff(Y_pre_controls, axis=1)
    return float(np.std(diffs, ddof=1)) if diffs.size > 1 else 0.0


def tuning_for(Y: np.ndarray, N0: int, T0: int, variant: str = "sdid") -> Tuning:
    """synthdid's defaults: eta_omega = (N1 T1)^(1/4) (sdid) or 1e-6 (sc), eta_lambda = 1e-6, times sigma."""
    N1, T1 = Y.shape[0] - N0, Y.shape[1] - T0
    sigma = noise_level(Y[:N0, :T0])
    eta_omega = ETA_OMEGA_SC if variant == "sc" else (N1 * T1) ** 0.25
    return Tuning(variant, sigma, eta_omega * sigma, ETA_LAMBDA * sigma, MIN_DECREASE_SCALE * sigma)


def collapsed(Y: np.ndarray, N0: int, T0: int) -> np.ndarray:
    """(N0 + 1) x (T0 + 1): controls' pre-periods, their post-period mean; the treated mean as last row."""
    top = np.column_stack([Y[:N0, :T0], Y[:N0, T0:].mean(axis=1)])
    bottom = np.append(Y[N0:, :T0].mean(axis=0), Y[N0:, T0:].mean())
    return np.vstack([top, bottom])


def sum_normalize(x: np.ndarray) -> np.ndarray:
    """x / sum(x), or uniform when the sum is zero (synthdid's sum_normalize)."""
    s = x.sum()
    return x / s if s > 0 else np.full(x.size, 1.0 / x.size)


def sparsify(x: np.ndarray) -> np.ndarray:
    """Weights at or below a quarter of the largest set to zero, the rest renormalised (synthdid)."""
    return sum_normalize(np.where(x <= x.max() / 4, 0.0, x))


def frank_wolfe(M: np.ndarray, zeta: float, intercept: bool, start: np.ndarray | None, min_decrease: float,
                max_iter: int) -> tuple[np.ndarray, int]:
    """min over the simplex of zeta^2 ||x||^2 + ||A x - b||^2 / n, where M = [A | b] (n rows), A's columns
    centred first when ``intercept`` (synthdid's sc.weight.fw).

    Frank-Wolfe with exact line search; stops after two iterations once one lowers the objective by at
    most ``min_decrease^2``, or after ``max_iter``. The iterates are synthdid's; only the bookkeeping
    differs, because synthdid's default runs 10,000 iterations on problems with a thousand weights:
    a step moves x toward a vertex e_i, so x and the half-gradient A'(Ax - b) + eta x are kept as a
    scale times a vector (a step rescales and adds one cached vector), and every other quantity of the
    line search has length n (the periods), not k.
    """
    from scipy.linalg.blas import get_blas_funcs

    if intercept:
        M = M - M.mean(axis=0)
    n, k = M.shape[0], M.shape[1] - 1
    A, b = M[:, :k], M[:, k]
    AT = np.ascontiguousarray(A.T)
    x0 = np.full(k, 1.0 / k) if start is None else np.array(start, dtype=float)
    eta = n * zeta * zeta
    zeta2 = zeta * zeta
    Atb = AT @ b
    axpy = get_blas_funcs("axpy", (AT,))
    towards: dict[int, np.ndarray] = {}  # the half-gradient at vertex e_i, for the vertices visited

    def at_vertex(i: int) -> np.ndarray:
        h = towards.get(i)
        if h is None:
            h = AT @ AT[i] - Atb
            h[i] += eta
            towards[i] = h
        return h

    v, cx = x0, 1.0  # x = cx * v
    Ax = A @ x0
    u, cg = AT @ Ax - Atb + eta * x0, 1.0  # half-gradient = cg * u
    xx = float(x0 @ x0)
    prev = cur = np.inf
    t = 0
    threshold = min_decrease * min_decrease
    while t < max_iter and (t < 2 or prev - cur > threshold):
        t += 1
        i = int(np.argmin(u))
        xi = cx * v[i]
        r = Ax - b
        gd = cg * u[i] - (float(Ax @ r) + eta * xx)  # half-gradient' (e_i - x)
        d_err = AT[i] - Ax  # A (e_i - x)
        dd = 1.0 - 2.0 * xi + xx  # ||e_i - x||^2
        denom = float(d_err @ d_err) + eta * dd
        step = min(1.0, max(0.0, -gd / denom)) if dd > 0.0 and denom > 0.0 else 0.0
        if step > 0.0:
            h = at_vertex(i)
            if step >= 1.0:
                v, cx, u, cg = np.zeros(k), 1.0, h.copy(), 1.0
                v[i] = 1.0
            else:
                keep = 1.0 - step
                cx *= keep
                cg *= keep
                v[i] += step / cx
                u = axpy(h, u, a=step / cg)
                if cg < 1e-100:  # rescale before the scales underflow
                    u, cg = u * cg, 1.0
                if cx < 1e-100:
                    v, cx = v * cx, 1.0
            xx = (1.0 - step) ** 2 * xx + 2.0 * step * (1.0 - step) * xi + step * step
            Ax = Ax + step * d_err
        err = Ax - b
        prev, cur = cur, zeta2 * xx + float(err @ err) / n
    return cx * v, t


def two_pass(M: np.ndarray, zeta: float, intercept: bool, start: np.ndarray | None,
             min_decrease: float) -> tuple[np.ndarray, int]:
    """synthdid's weights: 100 iterations, sparsify, then up to 10,000 from the sparsified weights."""
    x, t1 = frank_wolfe(M, zeta, intercept, start, min_decrease, PRE_SPARSIFY_ITERATIONS)
    x, t2 = frank_wolfe(M, zeta, intercept, sparsify(x), min_decrease, MAX_ITERATIONS)
    return x, t1 + t2


def weighted_did(Y: np.ndarray, N0: int, T0: int, omega: np.ndarray, lam: np.ndarray) -> float:
    """(-omega, 1/N1)' Y (-lambda, 1/T1): the treated-minus-weighted-control change from the weighted
    pre-period to the post-period mean (paper eq. 1 with the weights substituted)."""
    path = Y[N0:].mean(axis=0) - omega @ Y[:N0]  # treated mean minus weighted controls, every period
    return float(path[T0:].mean() - path[:T0] @ lam)


def effect_path(Y: np.ndarray, N0: int, T0: int, omega: np.ndarray, lam: np.ndarray) -> np.ndarray:
    """The effect of every post-period (synthdid_effect_curve): its gap minus the lambda-weighted pre gap."""
    path = Y[N0:].mean(axis=0) - omega @ Y[:N0]
    return path[T0:] - path[:T0] @ lam


def fit(Y: np.ndarray, N0: int, T0: int, variant: str = "sdid", tuning: Tuning | None = None,
        omega_start: np.ndarray | None = None, lambda_start: np.ndarray | None = None) -> SdidFit:
    """One estimate on ``Y`` (controls first, pre-periods first). ``tuning`` defaults to synthdid's from
    this panel; refits of the standard errors pass the original one and the original weights as starts."""
    if variant not in VARIANTS:
        raise ValueError(f"variant must be one of {VARIANTS}, got {variant!r}")
    tuning = tuning or tuning_for(Y, N0, T0, variant)
    if variant == "did":
        omega, lam, its = np.full(N0, 1.0 / N0), np.full(T0, 1.0 / T0), (0, 0)
        return SdidFit(weighted_did(Y, N0, T0, omega, lam), omega, lam, tuning, its)
    Yc = collapsed(Y, N0, T0)
    lam, t_lam = time_weights(Yc, N0, T0, tuning, lambda_start)
    omega, t_om = two_pass(Yc[:, :T0].T, tuning.zeta_omega, variant == "sdid", omega_start, tuning.min_decrease)
    return SdidFit(weighted_did(Y, N0, T0, omega, lam), omega, lam, tuning, (t_om, t_lam))


def time_weights(Yc: np.ndarray, N0: int, T0: int, tuning: Tuning, start: np.ndarray | None) -> tuple[np.ndarray, int]:
    """lambda from the collapsed panel: synthdid's for sdid, zeros for sc (no time weights)."""
    if tuning.variant == "sc":
        return np.zeros(T0), 0
    return two_pass(Yc[:N0], tuning.zeta_lambda, True, start, tuning.min_decrease)


# ---------------------------------------------------------------- many unit-weight problems at once
# The placebo standard error solves B unit-weight problems that share their columns: every draw's
# donors and pseudo-treated units are some of the same controls, whose pre-period paths (centred over
# time, the intercept) do not depend on the draw. Solving them side by side, one Frank-Wolfe iteration
# for all at each step, turns B x 10,000 small Python steps into 10,000 steps on B-row arrays. Each row's
# arithmetic is its own (row-wise products, no matrix product across rows), so a draw's weights do not
# depend on which other draws share its batch, and the answer does not depend on the number of workers.
BATCH_MAX_CONTROLS = 3000  # the controls' Gram matrix (N0 x N0) is formed once: at most 72 MB


def _frank_wolfe_rows(C: np.ndarray, gram: np.ndarray, B: np.ndarray, eligible: np.ndarray, X: np.ndarray,
                      zeta: float, min_decrease: float, max_iter: int) -> tuple[np.ndarray, np.ndarray]:
    """``frank_wolfe`` (intercept) for each row r: weights over the columns ``eligible[r]`` of the centred
    ``C`` (n x N0) reproducing ``B[r]`` (n), from ``X[r]`` (zero off ``eligible[r]``). Returns weights, iterations."""
    R, n = B.shape
    eta, zeta2, threshold = n * zeta * zeta, zeta * zeta, min_decrease * min_decrease
    CT = np.ascontiguousarray(C.T)
    X = X.copy()
    AX = np.vstack([C @ x for x in X])  # row by row: the same bits whatever the batch
    GXe = np.vstack([gram @ x for x in X]) + eta * X  # A'A x + eta x, over every control
    ATB = np.vstack([CT @ b for b in B])
    ATB[~eligible] = -np.inf  # a control outside the problem never has the smallest gradient
    xx = np.einsum("ij,ij->i", X, X)
    V, cx = X, np.ones(R)  # x = cx * V: a step rescales cx and moves one entry of V
    err = AX - B
    ax_err = np.einsum("ij,ij->i", AX, err)
    prev = np.full(R, np.inf)
    cur = np.full(R, np.inf)
    done_at = np.zeros(R, dtype=int)
    out = np.zeros_like(X)
    active = np.arange(R)
    HG, towards = np.empty_like(GXe), np.empty_like(GXe)  # reused: fresh large arrays cost page faults
    t = 0
    with np.errstate(divide="ignore", invalid="ignore"):  # 0/0 where x is the vertex already: step 0 (fmax)
        while active.size:
            t += 1
            rows = np.arange(active.size)
            np.subtract(GXe, ATB, out=HG)
            i = np.argmin(HG, axis=1)
            xi = cx * V[rows, i]
            d_err = CT[i] - AX
            dd = 1.0 - 2.0 * xi + xx
            step = np.fmin(np.fmax((ax_err + eta * xx - HG[rows, i]) / (np.einsum("ij,ij->i", d_err, d_err) + eta * dd),
                                   0.0), 1.0)
            keep = 1.0 - step
            GXe *= keep[:, None]
            np.take(gram, i, axis=0, out=towards)
            towards *= step[:, None]
            GXe += towards
            GXe[rows, i] += eta * step
            vertex = keep == 0.0
            cx *= keep
            if vertex.any():  # a full step: x is the vertex e_i
                V[vertex] = 0.0
                cx[vertex] = 1.0
            V[rows, i] += np.where(vertex, 1.0, step / np.where(vertex, 1.0, cx))
            small = cx < 1e-100 if t % 64 == 0 else None  # cx falls by at most the steps' product
            if small is not None and small.any():  # rescale before cx underflows
                V[small] *= cx[small, None]
                cx[small] = 1.0
            xx = (keep * xx + 2.0 * step * xi) * keep + step * step
            AX += step[:, None] * d_err
            err = AX - B
            ax_err = np.einsum("ij,ij->i", AX, err)
            prev, cur = cur, zeta2 * xx + np.einsum("ij,ij->i", err, err) / n
            going = (prev - cur > threshold) | (t < 2)
            if t >= max_iter:
                going[:] = False
            if not going.all():
                done_at[active[~going]] = t
                out[active[~going]] = cx[~going, None] * V[~going]
                active = active[going]
                V, cx, AX, GXe, ATB, B = V[going], cx[going], AX[going], GXe[going], ATB[going], B[going]
                xx, err, ax_err, prev, cur = xx[going], err[going], ax_err[going], prev[going], cur[going]
                HG, towards = HG[:active.size], towards[:active.size]
    return out, done_at


def placebo_unit_weights(Y_controls: np.ndarray, T0: int, perms: list[np.ndarray], N1: int, tuning: Tuning,
                         starts: np.ndarray, intercept: bool) -> tuple[np.ndarray, np.ndarray]:
    """Unit weights of every placebo draw (``two_pass``): draw r treats controls ``perms[r][n0:]`` as
    treated and ``perms[r][:n0]`` as donors, starting from ``starts[r]`` (over the donors, in draw order).
    Returns weights (draws x donors, in draw order) and iterations."""
    N0 = Y_controls.shape[0]
    n0 = len(perms[0]) - N1  # full permutations of the controls, or (staggered) donors then one cohort's placebos
    C = Y_controls[:, :T0].T  # periods x controls
    if intercept:
        C = C - C.mean(axis=0)
    gram = C.T @ C
    R = len(perms)
    P = np.vstack(perms)
    B = np.vstack([C[:, p[n0:]].mean(axis=1) for p in P])
    eligible = np.zeros((R, N0), dtype=bool)
    X = np.zeros((R, N0))
    for r, p in enumerate(P):
        eligible[r, p[:n0]] = True
        X[r, p[:n0]] = starts[r]
    X, t1 = _frank_wolfe_rows(C, gram, B, eligible, X, tuning.zeta_omega, tuning.min_decrease,
                              PRE_SPARSIFY_ITERATIONS)
    X = np.vstack([np.where(e, _sparsify_on(x, e), 0.0) for x, e in zip(X, eligible)])
    X, t2 = _frank_wolfe_rows(C, gram, B, eligible, X, tuning.zeta_omega, tuning.min_decrease, MAX_ITERATIONS)
    return np.vstack([x[p[:n0]] for x, p in zip(X, P)]), t1 + t2


def _sparsify_on(x: np.ndarray, eligible: np.ndarray) -> np.ndarray:
    """``sparsify`` of the weights on the eligible controls, zeros elsewhere."""
    out = np.zeros_like(x)
    out[eligible] = sparsify(x[eligible])
    return out


# ---------------------------------------------------------------- many time-weight problems at once
# Each placebo draw has its own donors, so its time-weight problem (the donors' pre-periods predicting
# their post-period mean) has its own rows; the problems are small (periods x donors) and many. They
# are solved side by side: ``frank_wolfe``'s iterates for every draw at each step, on stacked arrays.
BATCH_MAX_CELLS = 20_000_000  # draws x donors x pre-periods held at once (160 MB)


def placebo_time_weights(Y: np.ndarray, donors: list[np.ndarray], T0: int, tuning: Tuning,
                         start: np.ndarray) -> np.ndarray:
    """``time_weights`` of every draw, all started from ``start``: draw r's donors are the rows
    ``donors[r]`` of ``Y`` (every draw the same number). Returns draws x T0, in draw order."""
    if tuning.variant == "sc":
        return np.zeros((len(donors), T0))
    pre, post = Y[:, :T0], Y[:, T0:].mean(axis=1)
    per_draw = max(1, BATCH_MAX_CELLS // (len(donors[0]) * (T0 + 1)))
    out = []
    for first in range(0, len(donors), per_draw):  # draws are independent: chunks change no number
        M = np.stack([np.column_stack([pre[d], post[d]]) for d in donors[first:first + per_draw]])
        M = M - M.mean(axis=1, keepdims=True)  # the intercept: columns centred within each draw's donors
        X = np.tile(np.asarray(start, dtype=float), (M.shape[0], 1))
        X = _frank_wolfe_stacked(M, X, tuning.zeta_lambda, tuning.min_decrease, PRE_SPARSIFY_ITERATIONS)
        X = np.vstack([sparsify(x) for x in X])
        out.append(_frank_wolfe_stacked(M, X, tuning.zeta_lambda, tuning.min_decrease, MAX_ITERATIONS))
    return np.vstack(out)


def _frank_wolfe_stacked(M: np.ndarray, X: np.ndarray, zeta: float, min_decrease: float, max_iter: int) -> np.ndarray:
    """``frank_wolfe`` (columns already centred) for each draw r: min over the simplex of
    zeta^2 ||x||^2 + ||A_r x - b_r||^2 / n, M[r] = [A_r | b_r]; the same steps and stopping rule, each
    draw's arithmetic its own (no product across draws), so a draw's weights do not depend on the batch."""
    R, n, k1 = M.shape
    k = k1 - 1
    A, b = M[:, :, :k], M[:, :, k]
    eta, zeta2, threshold = n * zeta * zeta, zeta * zeta, min_decrease * min_decrease
    G = np.einsum("rni,rnj->rij", A, A)
    Atb = np.einsum("rni,rn->ri", A, b)
    X = X.copy()
    Ax = np.einsum("rni,ri->rn", A, X)
    U = np.einsum("rij,rj->ri", G, X) - Atb + eta * X  # the half-gradient
    xx = np.einsum("ri,ri->r", X, X)
    out = np.empty_like(X)
    active = np.arange(R)
    prev = np.full(R, np.inf)
    cur = np.full(R, np.inf)
    t = 0
    while active.size:
        t += 1
        rows = np.arange(active.size)
        i = np.argmin(U, axis=1)
        xi = X[rows, i]
        r = Ax - b
        gd = U[rows, i] - (np.einsum("rn,rn->r", Ax, r) + eta * xx)
        d_err = A[rows, :, i] - Ax
        dd = 1.0 - 2.0 * xi + xx
        denom = np.einsum("rn,rn->r", d_err, d_err) + eta * dd
        ok = (dd > 0.0) & (denom > 0.0)
        step = np.where(ok, np.clip(-gd / np.where(ok, denom, 1.0), 0.0, 1.0), 0.0)
        keep = 1.0 - step
        h = G[rows, :, i] - Atb
        h[rows, i] += eta
        U = keep[:, None] * U + step[:, None] * h
        X *= keep[:, None]
        X[rows, i] += step
        xx = keep * keep * xx + 2.0 * step * keep * xi + step * step
        Ax = Ax + step[:, None] * d_err
        err = Ax - b
        prev, cur = cur, zeta2 * xx + np.einsum("rn,rn->r", err, err) / n
        going = (prev - cur > threshold) | (t < 2)
        if t >= max_iter:
            going[:] = False
        if not going.all():
            out[active[~going]] = X[~going]
            active = active[going]
            A, b, G, Atb, X, Ax, U = A[going], b[going], G[going], Atb[going], X[going], Ax[going], U[going]
            xx, prev, cur = xx[going], prev[going], cur[going]
    return out
