"""The structural model's Kalman filter in numpy: every series filtered at once, regressors by augmentation.

The model (structural.py) is rewritten with the diffuse parts as regression columns (de Jong 1991,
"diffuse regression by augmentation"; Durbin and Koopman 2012, section 6.4):

    y_t = w_t' beta + r_t + a_t + e_t,      w_t = (1, seasonal contrasts, controls)
    r_t+1 = r_t + u_t,  r_1 = 0             (the level's walk from its diffuse start, which is beta's constant)
    a_t+1 = phi a_t + v_t,  a_1 stationary  (AR(1), options.ar1)

so the state is only (r, a) (m = 2, or m = 1 without AR(1)) and starts known. Fixed seasonal effects
(a seasonal state without noise, diffuse at the start) are the same as S - 1 sum-to-zero contrast
columns. Given the parameters the covariance recursion (Riccati) does not depend on the data, so it
runs once and the same filter maps y and every column of w to their one-step innovations. After the
recursion converges the filter is time-invariant: a linear recursion of order m that
``scipy.signal.lfilter`` runs over all columns at once.

The likelihood is statsmodels' for ``UnobservedComponents`` (its default diffuse start and burn of
one period per diffuse element), computed exactly: the density of the periods after the first p
(p = columns of w) given those first p, with beta flat: l(n) - l(p), where
l(m) = -1/2 [m log 2 pi + sum log F_t + RSS_m + log |W~_m' W~_m|] is the marginal likelihood of the
first m periods (de Jong's diffuse likelihood; W~ the standardised filtered columns).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

LOG_2PI = float(np.log(2 * np.pi))


@dataclass(frozen=True)
class Gains:
    """The data-independent part of the filter at one parameter vector."""

    F: np.ndarray  # (n,) innovation variances
    K: np.ndarray  # (n, m) Kalman gains (of the transition: a_t+1 = T a_t + K_t v_t)
    steady: int  # from this period on F and K are constant
    P_next: np.ndarray  # (m, m) covariance of the state after the last period
    T: np.ndarray  # (m, m) transition
    Q: np.ndarray  # (m, m) state noise covariance
    h: float  # irregular variance


def unpack(params: np.ndarray, ar1: bool) -> tuple[float, float, float, float]:
    """(s2_irregular, s2_level, s2_ar, phi) from statsmodels' parameter order."""
    if ar1:
        return float(params[0]), float(params[1]), float(params[2]), float(params[3])
    return float(params[0]), float(params[1]), 0.0, 0.0


def riccati(params: np.ndarray, ar1: bool, n: int, tol: float = 1e-14) -> Gains:
    """F_t and K_t for t < n. Scalar arithmetic (m <= 2) is faster than small numpy arrays here; once
    an update changes nothing beyond ``tol`` the rest is filled with the steady values."""
    h, q_level, q_ar, phi = unpack(params, ar1)
    F = np.empty(n)
    K = np.empty((n, 2 if ar1 else 1))
    steady = n
    if ar1:
        p00, p01, p11 = 0.0, 0.0, q_ar / (1 - phi * phi)
        for t in range(n):
            f = p00 + 2 * p01 + p11 + h
            k0, k1 = (p00 + p01) / f, phi * (p01 + p11) / f
            F[t], K[t, 0], K[t, 1] = f, k0, k1
            n00 = p00 + q_level - k0 * k0 * f
            n01 = phi * p01 - k0 * k1 * f
            n11 = phi * phi * p11 + q_ar - k1 * k1 * f
            if t and abs(f - F[t - 1]) <= tol * f and abs(k0 - K[t - 1, 0]) <= tol and abs(k1 - K[t - 1, 1]) <= tol:
                steady = t
                F[t:], K[t:] = f, (k0, k1)
                break
            p00, p01, p11 = n00, n01, n11
        P_next = np.array([[n00, n01], [n01, n11]]) if n else np.array([[p00, p01], [p01, p11]])
        return Gains(F, K, steady, P_next, np.diag([1.0, phi]), np.diag([q_level, q_ar]), h)
    p = 0.0
    nxt = p
    for t in range(n):
        f = p + h
        k = p / f
        F[t], K[t, 0] = f, k
        nxt = p + q_level - k * k * f
        if t and abs(f - F[t - 1]) <= tol * f and abs(k - K[t - 1, 0]) <= tol:
            steady = t
            F[t:], K[t:] = f, k
            break
        p = nxt
    return Gains(F, K, steady, np.array([[nxt]]), np.eye(1), np.array([[q_level]]), h)


def predicted_states(g: Gains, C: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """The one-step predicted states of every column of C (n, c): (n, m, c) before each period and the
    (m, c) state after the last one. A python loop until the gains settle, then the time-invariant
    recursion a_t+1 = L a_t + K c_t (L = T - K Z') by lfilter, as its order-m difference equation
    (Cayley-Hamilton: det(zI - L) a = adj(zI - L) K c), started from the loop's last m states."""
    n, c = C.shape
    m = g.T.shape[0]
    A = np.empty((n + 1, m, c))
    a = np.zeros((m, c))
    loop_end = min(n, g.steady + m)
    Tdiag = np.diag(g.T)[:, None]
    for t in range(loop_end):
        A[t] = a
        v = C[t] - a.sum(axis=0)
        a = Tdiag * a + g.K[t][:, None] * v[None, :]
    A[loop_end] = a
    if loop_end < n:
        from scipy.signal import lfilter

        K = g.K[-1]
        L = g.T - np.outer(K, np.ones(m))
        den = np.poly(L)  # (1, d1, ..., dm)
        B = np.eye(m)
        numer = [B @ K]
        for j in range(1, m):
            B = L @ B + den[j] * np.eye(m)
            numer.append(B @ K)
        s0 = loop_end  # first period the difference equation gives: the m before it are known
        x = np.vstack([C[s0:n], np.zeros((1, c))])  # output i is a_(s0+i), from inputs before it: the last is unused
        past_a = A[s0 - m:s0][::-1]  # most recent first
        past_c = C[s0 - m:s0][::-1]
        for i in range(m):
            b = np.concatenate([[0.0], [e[i] for e in numer]])
            zi = np.zeros((m, c))
            for k in range(m):  # transposed direct form II state from the past inputs and outputs
                for j in range(k + 1, m + 1):
                    zi[k] += b[j] * past_c[j - k - 1] - den[j] * past_a[j - k - 1, i]
            A[s0:n + 1, i] = lfilter(b, den, x, axis=0, zi=zi)[0]
    return A[:n], A[n]


@dataclass(frozen=True)
class Filtered:
    """y and the regression columns through the filter at one parameter vector."""

    gains: Gains
    u: np.ndarray  # (n,) standardised innovations of y
    U: np.ndarray  # (n, p) standardised innovations of the columns of w
    a_y: np.ndarray  # (m,) state of y after the last period
    A_w: np.ndarray  # (m, p) states of the columns after the last period


def filter_series(params: np.ndarray, ar1: bool, y: np.ndarray, W: np.ndarray) -> Filtered:
    g = riccati(params, ar1, y.size)
    C = np.column_stack([y, W])
    A, after = predicted_states(g, C)
    V = C - A.sum(axis=1)
    scale = 1.0 / np.sqrt(g.F)
    return Filtered(g, V[:, 0] * scale, V[:, 1:] * scale[:, None], after[:, 0], after[:, 1:])


def _marginal_terms(u: np.ndarray, U: np.ndarray) -> tuple[float, float]:
    """(log |U'U|, residual sum of squares of u on U) by QR."""
    R = np.linalg.qr(np.column_stack([U, u]), mode="r")
    p = U.shape[1]
    return 2.0 * float(np.sum(np.log(np.abs(np.diag(R)[:p])))), float(R[p, p] ** 2)


def diffuse_loglike(f: Filtered) -> float:
    """statsmodels' log-likelihood: the periods after the first p given those, beta flat."""
    n, p = f.U.shape
    logdet_n, rss = _marginal_terms(f.u, f.U)
    logdet_p = 2.0 * float(np.linalg.slogdet(f.U[:p])[1])
    return -0.5 * ((n - p) * LOG_2PI + float(np.sum(np.log(f.gains.F[p:]))) + rss + logdet_n - logdet_p)


def loglike(params: np.ndarray, ar1: bool, y: np.ndarray, W: np.ndarray) -> float:
    with np.errstate(all="ignore"):
        value = diffuse_loglike(filter_series(params, ar1, y, W))
    return value if np.isfinite(value) else -np.inf


# ---------------------------------------------------------------- parameters


def to_unconstrained(params: np.ndarray, ar1: bool) -> np.ndarray:
    """statsmodels' optimiser space: square roots of the variances, phi = -x / sqrt(1 + x^2)."""
    out = np.sqrt(np.maximum(np.asarray(params[:3 if ar1 else 2], dtype=float), 0.0))
    if ar1:
        phi = float(params[3])
        out = np.append(out, -phi / np.sqrt(1 - phi * phi))
    return out


def to_constrained(u: np.ndarray, ar1: bool) -> np.ndarray:
    out = np.asarray(u, dtype=float).copy()
    out[:3 if ar1 else 2] **= 2
    if ar1:
        out[3] = -u[3] / np.sqrt(1 + u[3] ** 2)
    return out


def _concentrated(theta: np.ndarray, ar1: bool, y: np.ndarray, W: np.ndarray) -> tuple[float, float]:
    """(-log-likelihood with the irregular variance profiled out, that variance). theta: log variance
    ratios to the irregular variance (level[, AR]) and phi's unconstrained value."""
    ratios = np.exp(theta[:2 if ar1 else 1])
    params = np.array([1.0, ratios[0], ratios[1], -theta[2] / np.sqrt(1 + theta[2] ** 2)] if ar1
                      else [1.0, ratios[0]])
    with np.errstate(all="ignore"):
        f = filter_series(params, ar1, y, W)
        n, p = f.U.shape
        logdet_n, rss = _marginal_terms(f.u, f.U)
        logdet_p = 2.0 * float(np.linalg.slogdet(f.U[:p])[1])
        s2 = rss / (n - p)
        value = 0.5 * ((n - p) * (LOG_2PI + np.log(s2) + 1) + float(np.sum(np.log(f.gains.F[p:])))
                       + logdet_n - logdet_p)
    return (float(value), float(s2)) if np.isfinite(value) and s2 > 0 else (np.inf, np.nan)


def maximise(y: np.ndarray, W: np.ndarray, ar1: bool) -> tuple[np.ndarray, float, bool]:
    """The MLE (statsmodels' parameter order), its log-likelihood and whether the optimiser converged.
    The irregular variance is profiled out, so the search is over 1 (local level) or 3 parameters, from
    the best point of a coarse grid (the likelihood of these models can have several local maxima)."""
    from scipy.optimize import minimize

    def objective(theta: np.ndarray) -> float:
        return _concentrated(theta, ar1, y, W)[0]

    grid_ratios = np.log([1e-4, 1e-2, 1.0])
    if ar1:
        grid = [np.array([lv, la, x]) for lv in grid_ratios for la in np.log([0.1, 1.0, 10.0])
                for x in (-1.0, 0.0, 1.0)]  # phi 0.71, 0, -0.71
    else:
        grid = [np.array([lv]) for lv in np.log([1e-6, 1e-4, 1e-2, 1.0, 100.0])]
    start = min(grid, key=objective)
    bounds = [(-30.0, 15.0)] * (2 if ar1 else 1) + ([(-50.0, 50.0)] if ar1 else [])
    res = minimize(objective, start, method="L-BFGS-B", bounds=bounds, options={"maxiter": 500})
    theta = res.x
    value, s2 = _concentrated(theta, ar1, y, W)
    ratios = np.exp(theta[:2 if ar1 else 1])
    params = (np.array([s2, s2 * ratios[0], s2 * ratios[1], -theta[2] / np.sqrt(1 + theta[2] ** 2)]) if ar1
              else np.array([s2, s2 * ratios[0]]))
    return params, -value, bool(res.success)


def param_names(ar1: bool) -> tuple[str, ...]:
    return ("sigma2.irregular", "sigma2.level", *(("sigma2.ar", "ar.L1") if ar1 else ()))


# ---------------------------------------------------------------- regressors and one-step predictions


def seasonal_columns(n: int, season: int | None) -> np.ndarray:
    """Sum-to-zero contrasts: the fixed seasonal effects of the last S - 1 positions, the first
    position minus their sum (the same span as statsmodels' deterministic seasonal states)."""
    if not season:
        return np.empty((n, 0))
    position = np.arange(n) % season
    D = (position[:, None] == np.arange(1, season)[None, :]).astype(float)
    D[position == 0] = -1.0
    return D


def one_step(f: Filtered, offset: np.ndarray, diffuse: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """One-step-ahead standardised errors and their variance ratios (to F_t) of y - w' offset, the
    coefficients of the columns ``diffuse`` (bool, p) learned as the periods come (flat prior: the
    Kalman filter with those coefficients as diffuse states), the others fixed at ``offset``."""
    u = f.u - f.U @ offset
    D = f.U[:, diffuse]
    n, d = D.shape
    err, ratio = u.copy(), np.ones(n)
    if d:
        S = np.cumsum(D[:, :, None] * D[:, None, :], axis=0)  # S[t]: information up to and including t
        s = np.cumsum(D * u[:, None], axis=0)
        err[:d] = ratio[:d] = np.nan
        with np.errstate(all="ignore"):
            b = np.linalg.solve(S[d - 1:n - 1], s[d - 1:n - 1][:, :, None])[:, :, 0]
            Sinv_D = np.linalg.solve(S[d - 1:n - 1], D[d:, :, None])[:, :, 0]
        err[d:] = u[d:] - np.sum(D[d:] * b, axis=1)
        ratio[d:] = 1.0 + np.sum(D[d:] * Sinv_D, axis=1)
    return err, ratio
