"""The structural model's numpy Kalman filter and the controls' spike-and-slab prior.

(a) the filter by augmentation reproduces statsmodels' UnobservedComponents with the controls as
diffuse regression states: the same log-likelihood at the same parameters, the same maximum, and
(with no sparsity prior, or inclusion probability 1 and a slab of negligible weight) the same
forecast, forecast sd and coefficients; (b) variable selection among 2 relevant and 8 noise
controls, enumerated and by the Gibbs sampler; (c) the same numbers for the same seed.
"""

from __future__ import annotations

import datetime as dt

import numpy as np
import pytest

import causalcli
from tests.test_time_series import START, frame


def _series(T: int, k: int, coefs: np.ndarray, seed: int, effect: float = 0.0, start: int | None = None):
    """y = 20 + X coefs + weekly pattern + AR(0.5) noise; the controls are independent random walks plus noise."""
    rng = np.random.default_rng(seed)
    X = 10 + np.cumsum(rng.normal(scale=0.3, size=(T, k)), axis=0) + rng.normal(size=(T, k))
    noise = np.zeros(T)
    for t in range(1, T):
        noise[t] = 0.5 * noise[t - 1] + rng.normal()
    y = 20 + X @ coefs + np.tile([0.0, 1.0, 2.0, 1.0, 0.0, -2.0, -2.0], T // 7 + 1)[:T] + noise
    if start is not None:
        y[start:] += effect
    return y, X


def _statsmodels(y_std: np.ndarray, X_std: np.ndarray, start: int, ar1: bool):
    from statsmodels.tsa.statespace.structural import UnobservedComponents

    def model(exact: bool):
        return UnobservedComponents(y_std[:start], level="llevel", autoregressive=1 if ar1 else None, seasonal=7,
                                    stochastic_seasonal=False, exog=X_std[:start], mle_regression=False,
                                    use_exact_diffuse=exact)
    return model


@pytest.mark.parametrize("ar1", [True, False])
def test_filter_by_augmentation_is_statsmodels(ar1):
    """Same log-likelihood as statsmodels' exact diffuse filter after its diffuse periods (1e-8) at fixed
    parameters; our maximum is at least statsmodels' (its default approximate diffuse start, 1e6,
    moves its own maximum slightly) and close to it; and the forecast with no sparsity prior is
    statsmodels' forecast at the same parameters (1e-6 of the pre-period sd)."""
    from causalcli.designs.time_series import kalman
    from causalcli.designs.time_series.structural import _design, fit_structural, scaling

    T, start, k = 150, 120, 3
    y, X = _series(T, k, np.array([1.0, 0.5, 0.0]), seed=3)
    sc = scaling(y, X, start)
    y_std, X_std = (y - sc.y_mean) / sc.y_sd, (X - sc.x_mean) / sc.x_sd
    W = _design(T, 7, X_std)[0]
    model = _statsmodels(y_std, X_std, start, ar1)
    exact = model(True)
    burn = 1 + 6 + k
    params = np.array([0.3, 0.01, 0.5, 0.6]) if ar1 else np.array([0.5, 0.05])
    ours = kalman.loglike(params, ar1, y_std[:start], W[:start])
    assert abs(ours - exact.filter(params).llf_obs[burn:].sum()) < 1e-8
    # the maximum: statsmodels' optimum under its default start, scored by the exact likelihood
    sm = model(False).fit(disp=False, cov_type="none", maxiter=500)
    mle, llf, converged = kalman.maximise(y_std[:start], W[:start], ar1)
    assert converged
    assert llf >= kalman.loglike(np.asarray(sm.params), ar1, y_std[:start], W[:start]) - 1e-6
    assert np.allclose(mle, sm.params, rtol=0.05, atol=2e-3)
    # forecasts at our MLE: no sparsity prior = statsmodels' diffuse regression states
    flat = fit_structural(y, X, start, 7, ar1, 100, 10, 1, expected_model_size=None)
    wide = fit_structural(y, X, start, 7, ar1, 100, 10, 1, expected_model_size=k, information_weight=1e-12)
    res = exact.filter(flat.params)
    fc = res.get_forecast(T - start, exog=X_std[start:])
    mean = np.asarray(fc.predicted_mean) * sc.y_sd + sc.y_mean
    sd = np.sqrt(np.asarray(fc.var_pred_mean)) * sc.y_sd
    coefficients = np.asarray(res.predicted_state)[-k:, -1] * sc.y_sd / sc.x_sd
    pre = np.asarray(res.forecasts[0])[burn:] * sc.y_sd + sc.y_mean
    tol = 1e-6 * sc.y_sd
    for fit in (flat, wide):
        assert np.abs(fit.point[start:] - mean).max() < tol
        assert np.abs(fit.point_sd[start:] - sd).max() < tol
        assert np.abs(fit.coefficients - coefficients).max() < 1e-6 * np.abs(coefficients).max()
    assert flat.burn == burn and np.abs(flat.point[burn:start] - pre).max() < tol
    assert np.array_equal(wide.inclusion, np.ones(k))


def _relevant_and_noise(seed: int = 7):
    T, start = 230, 200
    coefs = np.array([1.0, 0.8, *np.zeros(8)])
    return (*_series(T, 10, coefs, seed, effect=3.0, start=start), start)


def test_spike_and_slab_keeps_the_relevant_controls():
    """2 relevant and 8 pure-noise controls, CausalImpact's prior (expected model size 3: inclusion 0.3
    each, prior odds 3/7). A noise control's Bayes factor under the Zellner slab worth kappa = 0.01
    observations is about (1 + n/kappa)^(-1/2) exp(t^2/2) = exp(t^2/2) / 141 for n = 199 differences,
    so its posterior odds are exp(t^2/2) / 329: its inclusion is below 0.2 unless |t| > 2.97 (a 0.3%
    event) and below 0.03 for |t| < 2: each noise control < 0.2, their mean < 0.1; the relevant ones
    (t in the tens) >= 0.9. The average effect's interval covers 3."""
    y, X, start = _relevant_and_noise()
    spec = {"version": 1, "name": "ts", "outcome": "sales",
            "design": {"method": "time_series", "time": "date", "intervention": str(START + dt.timedelta(days=start)),
                       "controls": [f"c{j}" for j in range(10)], "estimator": "structural", "seasonality": 7,
                       "options": {"draws": 200, "parameter_draws": 10}}}
    r = causalcli.estimate(spec, data=frame(y, X), refute=False)
    controls = r.diagnostics["model"]["controls"]
    inclusion = np.array([controls[f"c{j}"]["inclusion_probability"] for j in range(10)])
    assert inclusion[:2].min() >= 0.9
    assert inclusion[2:].max() < 0.2 and inclusion[2:].mean() < 0.1
    assert abs(controls["c0"]["coefficient"] - 1.0) < 0.15 and abs(controls["c1"]["coefficient"] - 0.8) < 0.15
    assert r.diagnostics["model"]["prior"]["prior_inclusion_probability"] == pytest.approx(0.3)
    assert r.estimate.ci_lower < 3.0 < r.estimate.ci_upper


def test_gibbs_sampler_agrees_with_enumeration(monkeypatch):
    """Above ENUMERATE_UP_TO controls the subsets are sampled; on 10 controls the sampler's inclusion
    probabilities (1000 sweeps at the MLE) are the exact ones to Monte Carlo error (0.05)."""
    from causalcli.designs.time_series import selection
    from causalcli.designs.time_series.structural import fit_structural

    y, X, start = _relevant_and_noise()
    exact = fit_structural(y, X, start, 7, True, 100, 10, 5)
    monkeypatch.setattr(selection, "ENUMERATE_UP_TO", 5)
    sampled = fit_structural(y, X, start, 7, True, 100, 10, 5)
    assert np.abs(sampled.inclusion - exact.inclusion).max() < 0.05
    assert np.abs(sampled.coefficients - exact.coefficients).max() < 0.05
    # and the sampler is seeded too
    again = fit_structural(y, X, start, 7, True, 100, 10, 5)
    assert np.array_equal(again.paths, sampled.paths) and np.array_equal(again.inclusion, sampled.inclusion)


def test_same_seed_same_draws():
    from causalcli.designs.time_series.structural import fit_structural

    y, X, start = _relevant_and_noise(seed=11)
    a = fit_structural(y, X[:, :4], start, 7, True, 100, 10, 1)
    b = fit_structural(y, X[:, :4], start, 7, True, 100, 10, 1)
    c = fit_structural(y, X[:, :4], start, 7, True, 100, 10, 2)
    assert np.array_equal(a.paths, b.paths) and np.array_equal(a.inclusion, b.inclusion)
    assert not np.array_equal(a.paths, c.paths)
    assert np.array_equal(a.point, c.point, equal_nan=True)  # the point forecast is at the MLE: no draws in it
