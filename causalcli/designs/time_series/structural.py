"""The structural time-series model: local level + AR(1) + seasonal + controls, by Kalman filter and MLE.

The model (Harvey 1989; Brodersen et al. 2015 without the spike-and-slab prior), on the
pre-period, with y and the controls standardised by their pre-period mean and standard deviation:

    y_t = mu_t + s_t + a_t + x_t' b + e_t,       e_t ~ N(0, s2_irregular)
    mu_t+1 = mu_t + u_t,                         u_t ~ N(0, s2_level)
    a_t+1 = phi a_t + v_t,                       v_t ~ N(0, s2_ar)      (options.ar1; else no a_t)
    s_t = -(s_t-1 + ... + s_t-S+1)               (seasonality S: fixed seasonal effects)

statsmodels' ``UnobservedComponents`` with ``mle_regression=False``: the regression coefficients b
are states, so the Kalman filter estimates them (GLS, with their uncertainty carried into the
forecast), and the variances and phi are estimated by maximum likelihood.

Parameter uncertainty is propagated by simulation: the MLE's unconstrained parameters (the
square roots of the variances, phi's stationarity transform) are drawn from their asymptotic
normal (the inverse of the negative Hessian of the log-likelihood there, numerically); for each
of ``parameter_draws`` draws the pre-period is filtered, the state at the intervention drawn from
its filtered distribution and ``draws / parameter_draws`` post-period paths simulated forward
with state and observation noise. The point counterfactual is the plug-in forecast at the MLE
(no simulation noise); intervals are quantiles of the simulated paths; everything is seeded by
the study's seed.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np


@dataclass(frozen=True)
class StructuralFit:
    params: np.ndarray  # MLE, constrained
    param_names: tuple[str, ...]
    param_cov: np.ndarray  # asymptotic covariance of the unconstrained parameters
    unconstrained: np.ndarray
    point: np.ndarray  # (T,) one-step-ahead predictions in the pre-period, the plug-in forecast after
    point_sd: np.ndarray  # (T,) their standard deviations
    paths: np.ndarray  # (draws, post periods) simulated counterfactual paths
    residuals: np.ndarray  # standardised one-step-ahead errors of the pre-period after the diffuse start
    burn: int  # pre-periods of the diffuse start (no prediction)
    loglike: float
    converged: bool


@dataclass(frozen=True)
class Scaling:
    y_mean: float
    y_sd: float
    x_mean: np.ndarray
    x_sd: np.ndarray


def scaling(y: np.ndarray, X: np.ndarray, start: int) -> Scaling:
    y_sd = float(y[:start].std())
    x_sd = X[:start].std(axis=0) if X.shape[1] else np.empty(0)
    return Scaling(float(y[:start].mean()), y_sd if y_sd > 0 else 1.0, X[:start].mean(axis=0) if X.shape[1]
                   else np.empty(0), np.where(x_sd > 0, x_sd, 1.0))


def model(y_std: np.ndarray, X_std: np.ndarray, season: int | None, ar1: bool):
    from statsmodels.tsa.statespace.structural import UnobservedComponents

    return UnobservedComponents(y_std, level="llevel", autoregressive=1 if ar1 else None,
                                seasonal=season, stochastic_seasonal=False,
                                exog=X_std if X_std.shape[1] else None, mle_regression=False)


def _hessian(f, x: np.ndarray) -> np.ndarray:
    """Central-difference Hessian of ``f`` at ``x``."""
    k = x.size
    h = 1e-4 * np.maximum(np.abs(x), 1e-2)
    H = np.empty((k, k))
    f0 = f(x)
    for i in range(k):
        ei = np.zeros(k)
        ei[i] = h[i]
        H[i, i] = (f(x + ei) - 2 * f0 + f(x - ei)) / h[i] ** 2
        for j in range(i):
            ej = np.zeros(k)
            ej[j] = h[j]
            H[i, j] = H[j, i] = (f(x + ei + ej) - f(x + ei - ej) - f(x - ei + ej) + f(x - ei - ej)) / (4 * h[i] * h[j])
    return H


def _covariance(H: np.ndarray) -> np.ndarray:
    """Inverse of the negative Hessian, its non-positive directions set to no variance (a flat or bent
    likelihood there: the MLE sits on a boundary)."""
    vals, vecs = np.linalg.eigh(-(H + H.T) / 2)
    inv = np.where(vals > 1e-10 * max(vals.max(), 1e-300), 1.0 / np.where(vals > 0, vals, 1.0), 0.0)
    return (vecs * inv) @ vecs.T


def _matrices(mod):
    """The state-space matrices of ``mod`` at its current parameters (time-invariant parts)."""
    ssm = mod.ssm

    def first(name: str) -> np.ndarray:  # statsmodels squeezes the time axis of a time-invariant matrix
        a = np.asarray(getattr(ssm, name))
        return (a[..., 0] if a.ndim == 3 else a).copy()

    return first("design")[0], first("transition"), first("selection"), first("state_cov"), \
        float(first("obs_cov")[0, 0])


def _root(S: np.ndarray) -> np.ndarray:
    """A square root L (L L' = S) of a covariance that may be singular (a variance at zero)."""
    vals, vecs = np.linalg.eigh((S + S.T) / 2)
    return vecs * np.sqrt(np.maximum(vals, 0.0))


def _start(mod, a: np.ndarray, P: np.ndarray) -> tuple:
    """What a forward simulation from N(a, P) under ``mod``'s current parameters needs."""
    Z0, Tm, R, Q, h = _matrices(mod)
    return a, _root(P), Z0, Tm, R @ _root(Q), np.sqrt(max(h, 0.0))


def _forward(starts: list[tuple], X_post: np.ndarray, reps: int, rng: np.random.Generator) -> np.ndarray:
    """``reps`` paths of y over the post-period for each parameter draw (``_start``), all draws advanced
    together: (draws * reps, post periods), the draws' paths in order."""
    a, root, Z0, Tm, shock_root, obs_sd = (np.stack([s[i] for s in starts]) for i in range(6))
    D, m = a.shape
    k = X_post.shape[1]
    H = X_post.shape[0]
    state = a[:, None, :] + np.matmul(rng.standard_normal((D, reps, m)), root.transpose(0, 2, 1))
    Tt = Tm.transpose(0, 2, 1)
    shock_t = shock_root.transpose(0, 2, 1)
    Z = np.repeat(Z0[:, None, :], H, axis=1)  # (D, H, m): the controls' values in the regression states
    if k:
        Z[:, :, m - k:] = X_post[None, :, :]
    out = np.empty((D, reps, H))
    for t in range(H):
        out[:, :, t] = np.einsum("drm,dm->dr", state, Z[:, t]) + obs_sd[:, None] * rng.standard_normal((D, reps))
        state = np.matmul(state, Tt) + np.matmul(rng.standard_normal((D, reps, shock_t.shape[1])), shock_t)
    return out.reshape(D * reps, H)


def _plug_in(mod, a: np.ndarray, P: np.ndarray, X_post: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """The forecast's mean and variance by period at the current parameters (the Kalman prediction)."""
    Z0, Tm, R, Q, h = _matrices(mod)
    k = X_post.shape[1]
    m = a.size
    mean, var = np.empty(X_post.shape[0]), np.empty(X_post.shape[0])
    state, cov = a.copy(), P.copy()
    RQR = R @ Q @ R.T
    for t in range(X_post.shape[0]):
        Z = Z0.copy()
        if k:
            Z[m - k:] = X_post[t]
        mean[t] = Z @ state
        var[t] = Z @ cov @ Z + h
        state = Tm @ state
        cov = Tm @ cov @ Tm.T + RQR
    return mean, var


def fit_structural(y: np.ndarray, X: np.ndarray, start: int, season: int | None, ar1: bool, draws: int,
                   parameter_draws: int, seed: int) -> StructuralFit:
    """Fit on the pre-period, forecast and simulate the post-period (in the data's units)."""
    sc = scaling(y, X, start)
    y_std = (y - sc.y_mean) / sc.y_sd
    X_std = (X - sc.x_mean) / sc.x_sd if X.shape[1] else X
    mod = model(y_std[:start], X_std[:start], season, ar1)
    import warnings

    with warnings.catch_warnings():  # non-convergence is reported in the result (diagnostics.model, a warning)
        warnings.simplefilter("ignore")
        res = mod.fit(disp=False, cov_type="none", maxiter=500)
    params = np.asarray(res.params, dtype=float)
    u = np.asarray(mod.untransform_params(params), dtype=float)
    H = _hessian(lambda v: float(mod.loglike(v, transformed=False)), u)
    cov = _covariance(H)
    # the fit at the MLE: one-step-ahead predictions before, plug-in forecast after
    kf = mod.filter(params, return_ssm=True, cov_type="none")
    burn = int(mod.loglikelihood_burn)  # the approximate diffuse start: no real prediction
    X_post = X_std[start:]
    a_end, P_end = np.asarray(kf.predicted_state)[:, -1], np.asarray(kf.predicted_state_cov)[:, :, -1]
    pre_mean = np.asarray(kf.forecasts)[0]
    pre_var = np.asarray(kf.forecasts_error_cov)[0, 0]
    errors = np.asarray(kf.forecasts_error)[0][burn:] / np.sqrt(np.maximum(pre_var[burn:], 1e-300))
    post_mean, post_var = _plug_in(mod, a_end, P_end, X_post)
    # parameter uncertainty: draws of the unconstrained parameters, each filtered and simulated forward
    rng = np.random.default_rng(seed)
    per = int(np.ceil(draws / parameter_draws))
    root = _root(cov)
    starts = []
    for _ in range(parameter_draws):
        theta = mod.transform_params(u + root @ rng.standard_normal(u.size))
        f = mod.filter(theta, return_ssm=True, cov_type="none")
        starts.append(_start(mod, np.asarray(f.predicted_state)[:, -1], np.asarray(f.predicted_state_cov)[:, :, -1]))
    mod.update(params)
    sim = _forward(starts, X_post, per, rng)[:draws]
    point = np.concatenate([pre_mean, post_mean]) * sc.y_sd + sc.y_mean
    point_sd = np.sqrt(np.concatenate([pre_var, post_var])) * sc.y_sd
    point[:burn] = np.nan
    point_sd[:burn] = np.nan
    return StructuralFit(params, tuple(mod.param_names), cov, u, point, point_sd, sim * sc.y_sd + sc.y_mean,
                         errors, burn, float(res.llf), bool(res.mle_retvals.get("converged", True)))


def placebo_effect(y: np.ndarray, X: np.ndarray, start: int, fake: int, end: int, season: int | None, ar1: bool,
                   params: np.ndarray) -> float:
    """The mean gap between y and the plug-in forecast over [fake, end), with the fit's parameters and the
    state filtered on the periods before ``fake`` only (the parameters are not re-estimated)."""
    sc = scaling(y, X, start)
    y_std = (y - sc.y_mean) / sc.y_sd
    X_std = (X - sc.x_mean) / sc.x_sd if X.shape[1] else X
    mod = model(y_std[:fake], X_std[:fake], season, ar1)
    kf = mod.filter(params, return_ssm=True, cov_type="none")
    a, P = np.asarray(kf.predicted_state)[:, -1], np.asarray(kf.predicted_state_cov)[:, :, -1]
    forecast = _plug_in(mod, a, P, X_std[fake:end])[0] * sc.y_sd + sc.y_mean
    return float(np.mean(y[fake:end] - forecast))
