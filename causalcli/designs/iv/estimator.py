"""k-class instrumental-variables estimators (2SLS, LIML), their covariances and weak-instrument diagnostics.

Notation: ``y`` the outcome, ``X = [exog, endog]`` the regressors (``exog`` with its constant), ``Z =
[exog, instruments]``. A k-class estimate solves ``((1 - k) X'X + k X'P_Z X) b = (1 - k) X'y + k X'P_Z y``:
k = 1 is two-stage least squares, k = the smallest root of ``det(W'M_exog W - k W'M_Z W) = 0`` with
``W = [y, endog]`` is LIML (Anderson and Rubin 1949). The covariances follow linearmodels' ``IV2SLS`` and
``IVLIML`` (whose defaults, ``debiased=False``, are the plain sandwich without small-sample factors): the
bread is ``(1 - k) X'X + k X'P_Z X`` and the score of observation i is ``(P_Z X)_i e_i`` for any k (LIML's
k - 1 is O(1/n), so the k-mix and P_Z X give the same asymptotic variance; linearmodels uses P_Z X). The effective F is Montiel
Olea and Pflueger's (2013); with one instrument it is the robust (or clustered) first-stage F.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from causalcli.errors import EstimationError
from causalcli.inference.weak_instruments import quadratic_set


@dataclass(frozen=True)
class Covariance:
    kind: str  # unadjusted | robust | clustered
    debiased: bool
    clusters: np.ndarray | None = None  # integer codes 0..G-1
    n_clusters: int = 0


@dataclass(frozen=True)
class KClassFit:
    params: np.ndarray  # in the order of X's columns
    cov: np.ndarray
    kappa: float
    resid: np.ndarray
    n: int
    k: int  # columns of X
    df_resid: int


def _solve(a: np.ndarray, b: np.ndarray, what: str) -> np.ndarray:
    try:
        return np.linalg.solve(a, b)
    except np.linalg.LinAlgError:
        raise EstimationError(f"{what} is singular: an instrument or covariate is constant or collinear "
                              "with the others; drop it") from None


def _residualise(a: np.ndarray, on: np.ndarray) -> np.ndarray:
    coef, *_ = np.linalg.lstsq(on, a, rcond=None)
    return a - on @ coef


def liml_kappa(y: np.ndarray, exog: np.ndarray, endog: np.ndarray, Z: np.ndarray) -> float:
    """LIML's k: the smallest generalised eigenvalue of (W'M_exog W, W'M_Z W), W = [y, endog]."""
    from scipy.linalg import eigh

    W = np.column_stack([y, endog])
    a, b = _residualise(W, exog), _residualise(W, Z)
    return float(eigh(a.T @ a, b.T @ b, eigvals_only=True)[0])


def _summed(scores: np.ndarray, cov: Covariance) -> np.ndarray:
    """Per-observation scores, or (clustered) their sums within clusters: the rows of the sandwich's meat."""
    if cov.kind != "clustered":
        return scores
    out = np.zeros((cov.n_clusters, scores.shape[1]))
    np.add.at(out, cov.clusters, scores)
    return out


def _scale(cov: Covariance, n: int, k: int) -> float:
    """The sandwich's small-sample factor: none, or with ``debiased`` n/(n-k) (clustered: (n-1)/(n-k) G/(G-1))."""
    if not cov.debiased:
        return 1.0
    if cov.kind == "clustered":
        G = cov.n_clusters
        return (n - 1) / (n - k) * G / (G - 1)
    return n / (n - k)


def kclass(y: np.ndarray, X: np.ndarray, Z: np.ndarray, kappa: float, cov: Covariance) -> KClassFit:
    """The k-class estimate of y on X with instruments Z, and its covariance (``cov``)."""
    n, k = X.shape
    zz = Z.T @ Z
    PzX = Z @ _solve(zz, Z.T @ X, "the instruments' cross-product matrix Z'Z")
    xhat = (1.0 - kappa) * X + kappa * PzX
    a = xhat.T @ X
    beta = _solve(a, xhat.T @ y, "the regressors' projection on the instruments")
    e = y - X @ beta
    ainv = np.linalg.inv(a)
    if cov.kind == "unadjusted":
        s2 = float(e @ e) / (n - k if cov.debiased else n)
        V = s2 * ainv
    else:
        scores = _summed(PzX * e[:, None], cov)
        V = _scale(cov, n, k) * ainv @ (scores.T @ scores) @ ainv.T
    return KClassFit(params=beta, cov=V, kappa=kappa, resid=e, n=n, k=k, df_resid=n - k)


@dataclass(frozen=True)
class FirstStage:
    coef: np.ndarray  # the instruments' coefficients in the first stage
    cov: np.ndarray
    wald: float  # chi-square with q degrees of freedom
    f: float  # wald / q
    effective_f: float  # Montiel Olea-Pflueger
    partial_r2: float
    q: int


def first_stage(endog: np.ndarray, exog: np.ndarray, instruments: np.ndarray, cov: Covariance) -> FirstStage:
    """The regression of the endogenous regressor on exog and the instruments, with the model's covariance."""
    X = np.column_stack([exog, instruments])
    fit = kclass(endog, X, X, 1.0, cov)  # OLS: X is its own instrument
    q = instruments.shape[1]
    pi, V = fit.params[-q:], fit.cov[-q:, -q:]
    wald = float(pi @ _solve(V, pi, "the first stage's covariance"))
    zt = _residualise(instruments, exog)  # the instruments net of the covariates
    qzz = zt.T @ zt
    effective = float(pi @ qzz @ pi) / float(np.trace(V @ qzz))
    et = _residualise(endog, exog)
    partial = 1.0 - float(fit.resid @ fit.resid) / float(et @ et)
    return FirstStage(coef=pi, cov=V, wald=wald, f=wald / q, effective_f=effective, partial_r2=partial, q=q)


def anderson_rubin_set(y: np.ndarray, endog: np.ndarray, exog: np.ndarray, instruments: np.ndarray,
                       cov: Covariance, critical: float) -> tuple[float, float, str]:
    """The Anderson-Rubin confidence set for the coefficient of the one endogenous regressor.

    For b0, the reduced form of y - b0 x on [exog, instruments] has instrument coefficients
    g_y - b0 g_x and covariance V(b0) = V_yy - 2 b0 V_yx + b0^2 V_xx (the scores are linear in b0),
    and AR(b0) = g(b0)' V(b0)^-1 g(b0); the set is {b0 : AR(b0) <= critical}. Returns (lower, upper,
    shape): shape "interval", "unbounded" (the whole line), "outside" (the complement of (lower, upper)),
    "empty", or "undefined" when V(b0) is singular for every b0: a clustered covariance has rank at most G - 1,
    so with G - 1 < q clusters it cannot weigh q instruments.
    """
    X = np.column_stack([exog, instruments])
    q = instruments.shape[1]
    if cov.kind == "clustered" and cov.n_clusters - 1 < q:
        return np.nan, np.nan, "undefined"
    fy, fx = kclass(y, X, X, 1.0, cov), kclass(endog, X, X, 1.0, cov)
    gy, gx = fy.params[-q:], fx.params[-q:]
    n, k = X.shape
    ainv = np.linalg.inv(X.T @ X)[-q:]

    def meat(ea: np.ndarray, eb: np.ndarray) -> np.ndarray:
        if cov.kind == "unadjusted":
            return float(ea @ eb) / (n - k if cov.debiased else n) * np.linalg.inv(X.T @ X)[-q:, -q:]
        sa, sb = _summed(X * ea[:, None], cov), _summed(X * eb[:, None], cov)
        return _scale(cov, n, k) * ainv @ (sa.T @ sb) @ ainv.T

    Vyy, Vxx = meat(fy.resid, fy.resid), meat(fx.resid, fx.resid)
    Vyx = meat(fy.resid, fx.resid)
    Vyx = (Vyx + Vyx.T) / 2

    def ar(b0: float) -> float:
        g = gy - b0 * gx
        return float(g @ np.linalg.solve(Vyy - 2 * b0 * Vyx + b0 * b0 * Vxx, g))

    if q == 1:  # AR(b0) <= c is a quadratic inequality: solved exactly
        a2 = float(gx[0] ** 2 - critical * Vxx[0, 0])
        a1 = float(-2 * (gy[0] * gx[0] - critical * Vyx[0, 0]))
        a0 = float(gy[0] ** 2 - critical * Vyy[0, 0])
        return quadratic_set(a2, a1, a0)
    return _numeric_set(ar, critical, gy, gx)


def _numeric_set(ar, critical: float, gy: np.ndarray, gx: np.ndarray) -> tuple[float, float, str]:
    """Several instruments: the set's ends found on a grid around the just-identified ratios, then by bisection."""
    from scipy.optimize import brentq

    centre = float(np.median(gy / np.where(gx == 0, np.nan, gx)))
    if not np.isfinite(centre):
        centre = 0.0
    span = 1e3 * (1.0 + abs(centre))
    grid = centre + span * np.sinh(np.linspace(-8, 8, 4001)) / np.sinh(8)
    inside = np.array([ar(b) <= critical for b in grid])
    if not inside.any():
        return np.nan, np.nan, "empty"
    if inside[0] or inside[-1]:
        return -np.inf, np.inf, "unbounded"
    first, last = np.flatnonzero(inside)[[0, -1]]
    f = lambda b: ar(b) - critical  # noqa: E731 - a root-finder's objective
    lower = brentq(f, grid[first - 1], grid[first], xtol=1e-12)
    upper = brentq(f, grid[last], grid[last + 1], xtol=1e-12)
    return lower, upper, "interval"


def sargan(fit: KClassFit, Z: np.ndarray) -> tuple[float, int]:
    """Sargan's over-identification statistic n R^2 of the IV residuals on all instruments, with its df."""
    e = fit.resid
    u = _residualise(e, Z)
    return float(fit.n * (1.0 - (u @ u) / (e @ e))), Z.shape[1] - fit.k


def score_overid(fit: KClassFit, exog: np.ndarray, endog: np.ndarray, instruments: np.ndarray,
                 cov: Covariance) -> tuple[float, int]:
    """Wooldridge's score test of over-identification, robust to heteroskedasticity (Wooldridge 2010,
    section 6.3.2; linearmodels' ``wooldridge_overid``) and, with clusters, to correlation within them.

    The surplus instruments (the first q - 1 of one endogenous regressor's q) are residualised on the
    exogenous regressors and the first-stage fit of the endogenous one; h = residual x that residual,
    summed within clusters when clustered, and the statistic is n R^2 of 1 regressed on h without a
    constant: s'(H'H)^{-1}s with s the column sums of H (the robust LM form), chi-square with q - 1 df."""
    Z = np.column_stack([exog, instruments])
    endog = endog.reshape(fit.n, -1)
    surplus = instruments.shape[1] - endog.shape[1]
    fitted_endog = endog - _residualise(endog, Z)
    q_res = _residualise(instruments[:, :surplus], np.column_stack([exog, fitted_endog]))
    H = _summed(q_res * fit.resid[:, None], cov)
    s = H.sum(axis=0)
    return float(s @ _solve(H.T @ H, s, "the over-identification test's score cross-product")), surplus
