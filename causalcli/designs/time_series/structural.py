"""The structural time-series model: local level + AR(1) + seasonal + controls with a spike-and-slab prior.

The model (Harvey 1989; Brodersen et al. 2015), on the pre-period, with y and the controls
standardised by their pre-period mean and standard deviation:

    y_t = mu_t + s_t + a_t + x_t' b + e_t,       e_t ~ N(0, s2_irregular)
    mu_t+1 = mu_t + u_t,                         u_t ~ N(0, s2_level)
    a_t+1 = phi a_t + v_t,                       v_t ~ N(0, s2_ar)      (options.ar1; else no a_t)
    s_t = -(s_t-1 + ... + s_t-S+1)               (seasonality S: fixed seasonal effects)
    b: spike and slab (selection.py; options.expected_model_size: null gives a flat prior)

Empirical Bayes: the variances and phi are the maximum of statsmodels' ``UnobservedComponents``
likelihood with every control a diffuse regression state (kalman.py computes it, exactly, in
numpy); given them the level's start, the seasonal effects and b are regression coefficients of a
Gaussian linear model (the filter is linear), so the controls' posterior (which are in, with what
coefficients) is exact and in closed form (selection.py).

Parameter uncertainty is propagated by simulation: the MLE's unconstrained parameters (the
square roots of the variances, phi's stationarity transform, as statsmodels' optimiser) are drawn
from their asymptotic normal (the inverse of the negative Hessian of the log-likelihood there,
numerically); for each of ``parameter_draws`` draws the pre-period is filtered, the controls'
posterior computed, and ``draws / parameter_draws`` paths simulated: a subset of controls and the
coefficients from their posterior, then the path from the forecast's exact Gaussian distribution
given them (its mean from the filtered series, its covariance, state and observation noise
together, from kalman.py). The point counterfactual is the forecast at the MLE with the
coefficients' posterior mean (no simulation noise); intervals are quantiles of the simulated
paths; everything is seeded by the study's seed.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np

if TYPE_CHECKING:  # pragma: no cover
    from causalcli.designs.time_series.kalman import Filtered
    from causalcli.designs.time_series.selection import Regression, SlabPrior

PLACEBO_SWEEPS = 200  # Gibbs sweeps for a placebo's coefficients (more than 12 controls only)


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
    inclusion: np.ndarray  # (k,) posterior inclusion probability of each control, at the MLE
    coefficients: np.ndarray  # (k,) their posterior mean coefficients (data units; 0 when excluded)
    prior: "SlabPrior"


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


def _parameter_covariance(u: np.ndarray, ar1: bool, y: np.ndarray, W: np.ndarray) -> np.ndarray:
    """The asymptotic covariance of the unconstrained parameters, a variance at its boundary (zero, to
    1e-6 of the variances' total) held there: at u = 0 the likelihood's curvature in u = sqrt(variance)
    misses how that variance trades off with the others (the cross derivatives vanish there), and
    draws of it would only add noise (intervals over-covered: every A/A series passed)."""
    from causalcli.designs.time_series import kalman

    n_var = 3 if ar1 else 2
    free = np.ones(u.size, dtype=bool)
    free[:n_var] = u[:n_var] ** 2 > 1e-6 * float(np.sum(u[:n_var] ** 2))
    cov = np.zeros((u.size, u.size))
    if free.any():

        def loglike(v: np.ndarray) -> float:
            full = u.copy()
            full[free] = v
            return kalman.loglike(kalman.to_constrained(full, ar1), ar1, y, W)

        cov[np.ix_(free, free)] = _covariance(_hessian(loglike, u[free]))
    return cov


def _root(S: np.ndarray) -> np.ndarray:
    """A square root L (L L' = S) of a covariance that may be singular (a variance at zero)."""
    vals, vecs = np.linalg.eigh((S + S.T) / 2)
    return vecs * np.sqrt(np.maximum(vals, 0.0))




@dataclass(frozen=True)
class Posterior:
    """The model at one parameter vector: filtered series and the controls' posterior."""

    filtered: "Filtered"
    regression: "Regression"
    subsets: np.ndarray
    probs: np.ndarray
    chain_end: np.ndarray | None


def _design(n: int, season: int | None, X_std: np.ndarray) -> tuple[np.ndarray, int]:
    """The regression columns [seasonal contrasts, controls] and how many are flat (the seasonal ones); the
    level's start, the constant, is integrated out by the filter's differencing (kalman.py)."""
    from causalcli.designs.time_series.kalman import seasonal_columns

    flat = seasonal_columns(n, season)
    return np.column_stack([flat, X_std]), flat.shape[1]


def _posterior(params: np.ndarray, ar1: bool, y: np.ndarray, W: np.ndarray, flat: int, prior: "SlabPrior",
               rng: np.random.Generator, sweeps: int, horizon: int, chain: np.ndarray | None = None) -> Posterior:
    from causalcli.designs.time_series.kalman import filter_series
    from causalcli.designs.time_series.selection import Regression

    f = filter_series(params, ar1, y, W, horizon)
    reg = Regression.of(f, flat, prior)
    subsets, probs, end = reg.posterior(rng, sweeps, chain)
    return Posterior(f, reg, subsets, probs, end)


def _forecast(post: Posterior, W_post: np.ndarray, beta: np.ndarray, beta_cov: np.ndarray
              ) -> tuple[np.ndarray, np.ndarray]:
    """Mean and variance of the post-period forecast with the coefficients' posterior mean and covariance:
    the forecast of y - W b plus W_post b, where the first is M_y - M_w b (the filter is linear)."""
    f = post.filtered
    loading = W_post - f.M_w  # (H, p): how y_T+h moves with b
    mean = f.M_y + loading @ beta
    var = np.sum(f.root ** 2, axis=1) + np.einsum("hp,pq,hq->h", loading, beta_cov, loading)
    return mean, var


def _simulate(posts: list[Posterior], betas: list[np.ndarray], W_post: np.ndarray, rng: np.random.Generator
              ) -> np.ndarray:
    """For each parameter draw and each of its coefficient draws one post-period path: the forecast given
    the coefficients plus a draw of its (data-independent) error: (draws * reps, post periods), the
    parameter draws' paths in order."""
    out = []
    for post, b in zip(posts, betas):
        f = post.filtered
        mean = f.M_y[None, :] + b @ (W_post - f.M_w).T
        out.append(mean + rng.standard_normal((b.shape[0], f.root.shape[1])) @ f.root.T)
    return np.concatenate(out)


def fit_structural(y: np.ndarray, X: np.ndarray, start: int, season: int | None, ar1: bool, draws: int,
                   parameter_draws: int, seed: int, expected_model_size: float | None = 3.0,
                   information_weight: float = 0.01) -> StructuralFit:
    """Fit on the pre-period, forecast and simulate the post-period (in the data's units)."""
    from causalcli.runtime.threads import single_threaded_blas

    with single_threaded_blas():  # thin (periods x columns) products: threads only contend
        return _fit(y, X, start, season, ar1, draws, parameter_draws, seed, expected_model_size, information_weight)


def _fit(y: np.ndarray, X: np.ndarray, start: int, season: int | None, ar1: bool, draws: int, parameter_draws: int,
         seed: int, expected_model_size: float | None, information_weight: float) -> StructuralFit:
    from causalcli.designs.time_series import kalman
    from causalcli.designs.time_series.selection import GIBBS_SWEEPS, prior_for

    sc = scaling(y, X, start)
    y_std = (y - sc.y_mean) / sc.y_sd
    X_std = (X - sc.x_mean) / sc.x_sd if X.shape[1] else X
    W, flat = _design(y.size, season, X_std)
    if start <= W.shape[1] + 1:
        from causalcli.errors import EstimationError

        raise EstimationError(f"the structural model has {W.shape[1] + 1} regression terms (level, seasonal "
                              f"effects, controls) and needs more pre-periods than that ({start}): use fewer controls")
    y_pre, W_pre, W_post = y_std[:start], W[:start], W[start:]
    params, llf, converged = kalman.maximise(y_pre, W_pre, ar1)
    u = kalman.to_unconstrained(params, ar1)
    cov = _parameter_covariance(u, ar1, y_pre, W_pre)
    prior = prior_for(X.shape[1], expected_model_size, information_weight)
    rng = np.random.default_rng(seed)
    horizon = y.size - start
    at_mle = _posterior(params, ar1, y_pre, W_pre, flat, prior, rng, GIBBS_SWEEPS, horizon)
    reg = at_mle.regression
    beta, beta_cov = reg.moments(at_mle.subsets, at_mle.probs)
    # one-step-ahead predictions of the pre-period: the flat coefficients learned as the periods come
    # (the Kalman filter's diffuse states), the controls' at their posterior mean (with no prior: learned too)
    learned = np.arange(W.shape[1]) < flat if prior.inclusion is not None else np.ones(W.shape[1], dtype=bool)
    err, ratio = kalman.one_step(at_mle.filtered, np.where(learned, 0.0, beta), learned)
    burn = 1 + int(learned.sum())  # the level's start, then one period per learned coefficient
    pre_sd = np.concatenate([[np.nan], np.sqrt(at_mle.filtered.F * ratio)])
    pre_mean = y_pre - np.concatenate([[np.nan], err * np.sqrt(at_mle.filtered.F)])
    post_mean, post_var = _forecast(at_mle, W_post, beta, beta_cov)
    # parameter uncertainty: each parameter draw filtered, its controls' posterior computed, then
    # draws / parameter_draws (subset, coefficients, path) triples
    per = int(np.ceil(draws / parameter_draws))
    root = _root(cov)
    posts, betas = [], []
    chain = at_mle.chain_end
    for _ in range(parameter_draws):
        theta = kalman.to_constrained(u + root @ rng.standard_normal(u.size), ar1)
        post = _posterior(theta, ar1, y_pre, W_pre, flat, prior, rng, per, horizon, chain)
        chain = post.chain_end
        posts.append(post)
        betas.append(post.regression.draw_beta(post.subsets, post.probs, per, rng))
    sim = _simulate(posts, betas, W_post, rng)[:draws]
    point = np.concatenate([pre_mean, post_mean]) * sc.y_sd + sc.y_mean
    point_sd = np.concatenate([pre_sd, np.sqrt(post_var)]) * sc.y_sd
    point[:burn] = np.nan
    point_sd[:burn] = np.nan
    inclusion = (at_mle.subsets * at_mle.probs[:, None]).sum(axis=0) if X.shape[1] else np.empty(0)
    return StructuralFit(params, kalman.param_names(ar1), cov, u, point, point_sd, sim * sc.y_sd + sc.y_mean,
                         err[burn - 1:] / np.sqrt(ratio[burn - 1:]), burn, llf, converged, inclusion,
                         beta[flat:] * sc.y_sd / sc.x_sd, prior)


def placebo_effect(y: np.ndarray, X: np.ndarray, start: int, fake: int, end: int, season: int | None, ar1: bool,
                   params: np.ndarray, expected_model_size: float | None = 3.0, information_weight: float = 0.01
                   ) -> float:
    """The mean gap between y and the forecast over [fake, end), with the fit's variance parameters and
    the state and the controls' posterior computed from the periods before ``fake`` only (the variances
    are not re-estimated)."""
    from causalcli.designs.time_series.selection import prior_for

    sc = scaling(y, X, start)
    y_std = (y - sc.y_mean) / sc.y_sd
    X_std = (X - sc.x_mean) / sc.x_sd if X.shape[1] else X
    W, flat = _design(y.size, season, X_std)
    prior = prior_for(X.shape[1], expected_model_size, information_weight)
    from causalcli.runtime.threads import single_threaded_blas

    with single_threaded_blas():
        post = _posterior(params, ar1, y_std[:fake], W[:fake], flat, prior, np.random.default_rng(fake),
                          PLACEBO_SWEEPS, end - fake)
    beta, beta_cov = post.regression.moments(post.subsets, post.probs)
    forecast = _forecast(post, W[fake:end], beta, beta_cov)[0] * sc.y_sd + sc.y_mean
    return float(np.mean(y[fake:end] - forecast))
