"""The structural model's likelihood and forecasts in numpy: a banded Cholesky factor instead of a Python
loop over periods, every series at once, the regressors by augmentation.

The model (structural.py), with the diffuse parts as regression columns (de Jong 1991, "diffuse
regression by augmentation"; Durbin and Koopman 2012, section 6.4):

    y_t = w_t' beta + r_t + a_t + e_t,      w_t = (1, seasonal contrasts, controls)
    r_t+1 = r_t + u_t,  r_1 = 0             (the level's walk from its diffuse start, which is beta's constant)
    a_t+1 = phi a_t + v_t,  a_1 stationary  (AR(1), options.ar1; else phi = 0 and no v)

Fixed seasonal effects (a seasonal state without noise, diffuse at the start) are S - 1 sum-to-zero
contrast columns. Differencing, then the AR filter, w_t = (1 - phi B)(1 - B) y_t, turns the noise
r + a + e into an MA(2) (its first value y_2 - y_1 apart), so Cov(w) is banded: its Cholesky factor L
(LAPACK, O(n)) gives the standardised one-step prediction errors L^-1 w of y and of every regression
column, the same numbers the Kalman filter with the regression coefficients as states would give (the
innovations are unique). Differencing removes the constant, the level's diffuse start, with Jacobian
1: the likelihood of the differences is the marginal likelihood with the start integrated out.

The likelihood is statsmodels' for ``UnobservedComponents`` with its exact diffuse start: the density
of the periods after the first p + 1 given those (p regression columns besides the constant, one
period each, plus the level's), with beta flat: l(n) - l(p + 1), where
l(m) = -1/2 [m' log 2 pi + sum log F_t + RSS_m + log |W~_m' W~_m|] over the m' = m - 1 differences
(de Jong's diffuse likelihood; W~ the standardised columns). tests/test_time_series_prior.py checks
it against statsmodels to 1e-8.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

LOG_2PI = float(np.log(2 * np.pi))
GRADIENT_TOLERANCE = 1e-4  # BFGS's gtol on the profile likelihood (``maximise``)


def unpack(params: np.ndarray, ar1: bool) -> tuple[float, float, float, float]:
    """(s2_irregular, s2_level, s2_ar, phi) from statsmodels' parameter order."""
    if ar1:
        return float(params[0]), float(params[1]), float(params[2]), float(params[3])
    return float(params[0]), float(params[1]), 0.0, 0.0


def _autocovariances(params: np.ndarray, ar1: bool) -> tuple[float, float, float]:
    """gamma_0, gamma_1, gamma_2 of w_t = (1 - phi B)(1 - B) y_t's noise, an MA(2):
    u_t-1 - phi u_t-2 + v_t-1 - v_t-2 + e_t - (1 + phi) e_t-1 + phi e_t-2."""
    h, q, s, phi = unpack(params, ar1)
    return (q * (1 + phi * phi) + 2 * s + h * (1 + (1 + phi) ** 2 + phi * phi),
            -phi * q - s - h * (1 + phi) ** 2, phi * h)


def transform(C: np.ndarray, phi: float) -> np.ndarray:
    """w = (y_2 - y_1, then (1 - phi B)(1 - B) y_t for t >= 3) for every column: n - 1 rows."""
    d = np.diff(C, axis=0)
    w = d.copy()
    w[1:] -= phi * d[:-1]
    return w


def covariance_band(params: np.ndarray, ar1: bool, rows: int) -> np.ndarray:
    """Cov(w) in LAPACK's lower band form (3, rows): the first row holds y_2 - y_1 = u_1 + (phi - 1) a_1
    + v_1 + e_2 - e_1 (a_1 stationary), whose covariances with the others differ from the MA's."""
    h, q, s, phi = unpack(params, ar1)
    g0, g1, g2 = _autocovariances(params, ar1)
    band = np.empty((3, rows))
    band[0], band[1], band[2] = g0, g1, g2
    band[0, 0] = q + 2 * s / (1 + phi) + 2 * h
    band[1, 0] = -phi * q - s - h * (1 + 2 * phi)
    return band


@dataclass(frozen=True)
class Filtered:
    """y and the regression columns (the constant dropped: differencing removes it) at one parameter
    vector: standardised one-step innovations of periods 2..n, and, with a horizon, the forecast."""

    u: np.ndarray  # (n - 1,) of y
    U: np.ndarray  # (n - 1, p) of the columns
    F: np.ndarray  # (n - 1,) innovation variances
    M_y: np.ndarray  # (H,) forecast of y given the past (coefficients zero)
    M_w: np.ndarray  # (H, p) the same for each column: the forecast of y - W b is M_y - M_w b
    root: np.ndarray  # (H, H) R with R R' the forecast's covariance given the coefficients


def filter_series(params: np.ndarray, ar1: bool, y: np.ndarray, W: np.ndarray, horizon: int = 0) -> Filtered:
    """Innovations by the banded Cholesky factor L of Cov(w): L^-1 w (the prediction errors of the
    Kalman filter, with the level's diffuse start integrated out by the differencing, Jacobian 1)."""
    from scipy.linalg import cholesky_banded

    phi = unpack(params, ar1)[3]
    C = np.column_stack([y, W])
    w = transform(C, phi)
    L = cholesky_banded(covariance_band(params, ar1, w.shape[0]), lower=True, check_finite=False)
    Z = _triangular_solve(L, w)
    F = L[0] ** 2
    u, U = Z[:, 0], Z[:, 1:]
    if not horizon:
        empty = np.empty((0, C.shape[1] - 1))
        return Filtered(u, U, F, np.empty(0), empty, np.empty((0, 0)))
    M, root = _forecast(params, ar1, C, Z, L, horizon)
    return Filtered(u, U, F, M[:, 0], M[:, 1:], root)


def _forecast(params: np.ndarray, ar1: bool, C: np.ndarray, Z: np.ndarray, L: np.ndarray, H: int
              ) -> tuple[np.ndarray, np.ndarray]:
    """Each column's forecast mean over H periods and the forecast covariance's root. The future w are
    MA(2): only the first two covary with the past (with its last two), so E[w_f | past] =
    Cov(w_f, w_p) Cov(w_p)^-1 w_p needs x = Cov(w_p)^-1 w_p = L'^-1 Z at the last two rows, and their conditional
    covariance corrects only the top-left 2 x 2 block (by the last 2 x 2 block of Cov(w_p)^-1, from
    L's last 2 x 2 block, L being lower triangular). Then d_t = w_t + phi d_t-1 and y_t = y_t-1 + d_t."""
    from scipy.linalg import cholesky_banded

    phi = unpack(params, ar1)[3]
    g0, g1, g2 = _autocovariances(params, ar1)
    x = _triangular_solve(L, Z, transpose=True)
    B = np.array([[g2, g1], [0.0, g2]])  # Cov(w_n+1, w_n+2 ; w_n-1, w_n)
    w_mean = np.zeros((H, C.shape[1]))
    w_mean[:min(H, 2)] = (B @ x[-2:])[:min(H, 2)]
    last = np.array([[L[0, -2], 0.0], [L[1, -2], L[0, -1]]])
    corner = np.linalg.inv(last)
    S = corner.T @ corner  # last 2 x 2 block of Cov(w_p)^-1
    band = np.zeros((3, H))  # Cov(w_f | past) in lower band form: the MA(2)'s, its first 2 x 2 corrected
    band[0], band[1], band[2] = g0, g1, g2
    k = min(H, 2)
    corrected = (B @ S @ B.T)[:k, :k]
    band[0, :k] -= np.diag(corrected)
    if k == 2:
        band[1, 0] -= corrected[1, 0]
    # y_f = y_n + (AR(1) filter, then cumulative sum) of w_f + g d_n, g[h] = phi + ... + phi^(h + 1)
    powers = phi ** np.arange(1, H + 1)
    g = np.cumsum(powers)
    d_n = C[-1] - C[-2]
    M = C[-1][None, :] + _integrate(w_mean, phi) + g[:, None] * d_n[None, :]
    try:
        root_w = _dense_lower(cholesky_banded(band, lower=True, check_finite=False))
    except np.linalg.LinAlgError:  # a zero variance: only semi-definite
        vals, vecs = np.linalg.eigh(_dense_symmetric(band))
        root_w = vecs * np.sqrt(np.maximum(vals, 0.0))
    root = _integrate(root_w, phi)
    return M, root


def _triangular_solve(L: np.ndarray, B: np.ndarray, transpose: bool = False) -> np.ndarray:
    """L^-1 B (or L'^-1 B) for L lower triangular in band form (LAPACK dtbtrs)."""
    from scipy.linalg import lapack

    out, info = lapack.dtbtrs(L, B, uplo="L", trans="T" if transpose else "N")
    if info != 0:
        raise np.linalg.LinAlgError(f"singular banded factor (dtbtrs info {info})")
    return out


def _integrate(w: np.ndarray, phi: float) -> np.ndarray:
    """From future w to future y (minus the last value and the d_n term): d_t = w_t + phi d_t-1 from
    d = 0, then y_t = y_t-1 + d_t from 0, down the rows (the AR filter as a bidiagonal solve: scipy.signal
    would import scipy.stats, a third of a second)."""
    band = np.zeros((2, w.shape[0]))
    band[0], band[1] = 1.0, -phi
    return np.cumsum(_triangular_solve(band, w), axis=0)


def _dense_lower(band: np.ndarray) -> np.ndarray:
    H = band.shape[1]
    out = np.zeros((H, H))
    for k in range(band.shape[0]):
        out[np.arange(k, H), np.arange(H - k)] = band[k, :H - k]
    return out


def _dense_symmetric(band: np.ndarray) -> np.ndarray:
    lower = _dense_lower(band)
    return lower + lower.T - np.diag(np.diag(lower))


def _marginal_terms(u: np.ndarray, U: np.ndarray) -> tuple[float, float]:
    """(log |U'U|, residual sum of squares of u on U) by QR."""
    R = np.linalg.qr(np.column_stack([U, u]), mode="r")
    p = U.shape[1]
    return 2.0 * float(np.sum(np.log(np.abs(np.diag(R)[:p])))), float(R[p, p] ** 2)


def _likelihood_terms(f: Filtered) -> tuple[int, float, float]:
    """(periods counted, sum of log F over them + log |S_n| - log |S_p|, RSS): the density of the
    periods after the first p + 1 given those (p columns besides the constant)."""
    rows, p = f.U.shape
    logdet_n, rss = _marginal_terms(f.u, f.U)
    logdet_p = 2.0 * float(np.linalg.slogdet(f.U[:p])[1]) if p else 0.0
    return rows - p, float(np.sum(np.log(f.F[p:]))) + logdet_n - logdet_p, rss


def loglike(params: np.ndarray, ar1: bool, y: np.ndarray, W: np.ndarray) -> float:
    """statsmodels' log-likelihood (W without the constant)."""
    from numpy.linalg import LinAlgError

    try:
        with np.errstate(all="ignore"):
            count, logs, rss = _likelihood_terms(filter_series(params, ar1, y, W))
    except (LinAlgError, ValueError):
        return -np.inf
    value = -0.5 * (count * LOG_2PI + logs + rss)
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


def _shares(theta: np.ndarray, ar1: bool) -> np.ndarray:
    """The parameters with variances summing to 1, from angles: irregular cos^2 a, level sin^2 a cos^2 b,
    AR sin^2 a sin^2 b (no bounds, and every variance can reach 0 at a finite angle, where the
    likelihood is smooth in the angle: the optimiser is not slowed by a boundary), phi's unconstrained x."""
    if ar1:
        a, b, x = theta
        return np.array([np.cos(a) ** 2, np.sin(a) ** 2 * np.cos(b) ** 2, np.sin(a) ** 2 * np.sin(b) ** 2,
                         -x / np.sqrt(1 + x * x)])
    return np.array([np.cos(theta[0]) ** 2, np.sin(theta[0]) ** 2])


def _concentrated(theta: np.ndarray, ar1: bool, y: np.ndarray, W: np.ndarray) -> tuple[float, float]:
    """(-log-likelihood with the variances' total profiled out, that total)."""
    from numpy.linalg import LinAlgError

    try:
        with np.errstate(all="ignore"):
            count, logs, rss = _likelihood_terms(filter_series(_shares(theta, ar1), ar1, y, W))
    except (LinAlgError, ValueError):
        return np.inf, np.nan
    s2 = rss / count
    value = 0.5 * (count * (LOG_2PI + np.log(s2) + 1) + logs)
    return (float(value), float(s2)) if np.isfinite(value) and s2 > 0 else (np.inf, np.nan)


def _converged(res) -> bool:
    # BFGS stops with "precision loss" when the finite-difference gradient cannot be brought lower: at
    # an optimum when that gradient is already small
    return bool(res.success or (res.status == 2 and float(np.max(np.abs(res.jac))) < 1e-3))


def maximise(y: np.ndarray, W: np.ndarray, ar1: bool) -> tuple[np.ndarray, float, bool]:
    """The MLE (statsmodels' parameter order), its log-likelihood and whether the optimiser converged.
    The variances' total is profiled out, so BFGS searches 1 (local level) or 3 parameters, from the
    best point of a coarse grid (the likelihood of these models can have several local maxima)."""
    from scipy.optimize import minimize

    def objective(theta: np.ndarray) -> float:
        return _concentrated(theta, ar1, y, W)[0]

    if ar1:
        grid = [np.array([a, b, x]) for a in (0.3, 0.8, 1.3) for b in (0.4, 0.8, 1.2)
                for x in (-1.0, 0.0, 1.0)]  # phi 0.71, 0, -0.71
    else:
        grid = [np.array([a]) for a in np.linspace(0.05, 1.5, 6)]
    start = min(grid, key=objective)
    # gtol: BFGS differentiates by forward differences, whose error here is about 1e-5 (sqrt of the machine
    # epsilon times the objective, of the order of the periods): a tighter gtol (1e-6 before) is below that
    # noise, and the search ended in "precision loss" after hundreds of evaluations for an objective already
    # within 1e-10 of its best (three years of daily data: 562 evaluations, 0.35 s -> 172, 0.05 s)
    res = minimize(objective, start, method="BFGS", options={"maxiter": 500, "gtol": GRADIENT_TOLERANCE})
    value, s2 = _concentrated(res.x, ar1, y, W)
    params = _shares(res.x, ar1)
    params[:3 if ar1 else 2] *= s2
    converged = _converged(res)
    if not converged:  # finish in statsmodels' own space (square roots of the variances)
        polish = minimize(lambda v: -loglike(to_constrained(v, ar1), ar1, y, W), to_unconstrained(params, ar1),
                          method="BFGS", options={"maxiter": 500, "gtol": GRADIENT_TOLERANCE})
        if polish.fun <= value:
            params, value, converged = to_constrained(polish.x, ar1), float(polish.fun), _converged(polish)
    return params, -value, converged


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
    """One-step-ahead standardised errors and their variance ratios (to F_t) of y - w' offset in
    periods 2..n (the first has no prediction: the level starts diffuse), the
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
