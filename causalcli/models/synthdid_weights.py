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
    if variant == "sc":
        lam, t_lam = np.zeros(T0), 0
        omega, t_om = two_pass(Yc[:, :T0].T, tuning.zeta_omega, False, omega_start, tuning.min_decrease)
    else:
        lam, t_lam = two_pass(Yc[:N0], tuning.zeta_lambda, True, lambda_start, tuning.min_decrease)
        omega, t_om = two_pass(Yc[:, :T0].T, tuning.zeta_omega, True, omega_start, tuning.min_decrease)
    return SdidFit(weighted_did(Y, N0, T0, omega, lam), omega, lam, tuning, (t_om, t_lam))
