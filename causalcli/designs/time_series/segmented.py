"""Interrupted time series: segmented regression with Newey-West (HAC) standard errors.

The model, on every period t = 0..T-1 with the intervention at t0 (Wagner et al. 2002;
Bernal, Cummins and Gasparrini 2017):

    y_t = b0 + b1 t + b2 D_t + b3 (t - t0) D_t + controls_t' g + seasonal dummies + e_t,   D_t = 1[t >= t0]

(``options.trend: false`` drops b1 and b3: a level change only). The effect at post period t is
b2 + b3 (t - t0); the average, pointwise and cumulative effects are linear in b, so their
standard errors are sqrt(c' V c) with V the HAC covariance:

    V = n / (n - k) (X'X)^-1 S (X'X)^-1,  S = G_0 + sum_{j=1..L} (1 - j / (L + 1)) (G_j + G_j'),
    G_j = sum_t x_t e_t e_{t-j} x_{t-j}'

(Bartlett kernel, Newey and West 1987), with L = max(floor(4 (T/100)^(2/9)), floor(T1 / 4)) for T1
post periods unless ``options.hac_lags`` gives it, and the small-sample factor n / (n - k): the
settings of statsmodels' ``OLS.fit(cov_type="HAC", cov_kwds={"maxlags": L, "use_correction": True})``,
which the tests match (standard errors equal to statsmodels').

Intervals and p-values are not normal (statsmodels' default for HAC). The effects' scores live in
the T1 post periods, and with L a sizeable fraction b = (L + 1) / T1 of them the HAC variance is
itself noisy and biased down by the fitted level; the normal reference then under-covers (measured
0.85-0.88 for a 95% interval with 40 post periods and AR(0.5) noise, and worse with more lags, as
Turner et al. 2021 found for Newey-West in short interrupted series). The reference is instead the
fixed-b distribution (Kiefer and Vogelsang 2005) of the same t statistic in a location model of T1
periods with the same lags: the mean of T1 independent normal draws over its Bartlett HAC standard
error, simulated once per (T1, L) (``FIXED_B_DRAWS`` draws, fixed seed). Its 97.5% point grows with
b as KV's polynomial 1.96 + 2.9694 b + 0.4160 b^2 - 0.5324 b^3; the larger post-period lag rule
keeps b near 1/4, where the fixed-b reference holds its level (coverage 0.94-0.95 in the slow test).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from functools import lru_cache

import numpy as np


FIXED_B_DRAWS = 10_000
FIXED_B_SEED = 20_050_101  # the reference distribution is a constant of (T1, L): one fixed stream


def newey_west_lags(T: int) -> int:
    """Newey and West (1994)'s rule of thumb for the Bartlett kernel: floor(4 (T/100)^(2/9))."""
    return int(math.floor(4 * (T / 100) ** (2 / 9)))


def default_lags(T: int, post: int) -> int:
    """The lags when ``options.hac_lags`` is unset: Newey-West's rule, or a quarter of the post periods
    when that is more (module docstring: the fixed-b reference keeps its level near b = 1/4)."""
    return max(newey_west_lags(T), post // 4)


@lru_cache(maxsize=64)
def fixed_b_reference(periods: int, lags: int) -> np.ndarray:
    """|t| of a location model's mean over its Bartlett HAC standard error (``lags`` lags, residuals
    about the mean, factor m / (m - 1)), ``FIXED_B_DRAWS`` simulations of ``periods`` standard normal
    draws each, sorted: the fixed-b reference of the segmented effects' t statistics."""
    m = int(periods)
    rng = np.random.default_rng([FIXED_B_SEED, m, int(lags)])
    out = []
    for left in range(FIXED_B_DRAWS, 0, -2500):  # chunks bound memory; the stream is the same
        e = rng.standard_normal((m, min(left, 2500)))
        mean = e.mean(axis=0)
        u = e - mean
        size = 1 << (2 * m - 1).bit_length()  # the autocovariances by FFT: O(m log m) whatever the lags
        spectrum = np.fft.rfft(u, n=size, axis=0)
        acov = np.fft.irfft(spectrum.real ** 2 + spectrum.imag ** 2, n=size, axis=0)
        j = np.arange(min(lags, m - 1) + 1)
        weights = np.where(j == 0, 1.0, 2.0 * (1.0 - j / (lags + 1)))
        s = weights @ acov[:j.size]
        var = np.maximum(s, 0.0) / m * (m / max(m - 1, 1)) / m
        with np.errstate(divide="ignore", invalid="ignore"):
            out.append(np.abs(mean) / np.sqrt(var))
    return np.sort(np.concatenate(out))


def fixed_b_critical(reference: np.ndarray, level: float) -> float:
    """The ``level`` quantile of |t| under the reference (its order statistic)."""
    return float(reference[min(reference.size - 1, int(math.ceil(level * reference.size)) - 1)])


def fixed_b_p_value(reference: np.ndarray, t: float) -> float:
    """Share of the reference at least as extreme, (1 + #{|T| >= |t|}) / (1 + draws)."""
    extreme = reference.size - int(np.searchsorted(reference, abs(t), side="left"))
    return (1 + extreme) / (1 + reference.size)


@dataclass(frozen=True)
class SegmentedFit:
    beta: np.ndarray
    V: np.ndarray  # HAC covariance
    names: tuple[str, ...]
    fitted: np.ndarray
    residuals: np.ndarray
    counterfactual: np.ndarray  # fitted values with the intervention terms set to zero
    counterfactual_se: np.ndarray  # standard error of the counterfactual mean by period
    effect_rows: np.ndarray  # (post periods, k): c_t with effect_t = c_t' beta
    lags: int
    counterfactual_mean_row: np.ndarray  # (k,): c with the post-period mean of the counterfactual = c' beta


def seasonal_dummies(T: int, season: int | None) -> tuple[np.ndarray, list[str]]:
    """Dummies for positions 1..s-1 of the season (position 0, the first period's, is the baseline)."""
    if not season:
        return np.empty((T, 0)), []
    position = np.arange(T) % season
    return (position[:, None] == np.arange(1, season)[None, :]).astype(float), \
        [f"season_{j}" for j in range(1, season)]


def design_matrix(T: int, start: int, controls: np.ndarray, control_names: tuple[str, ...], season: int | None,
                  trend: bool) -> tuple[np.ndarray, list[str], list[int]]:
    """The regressors, their names, and the columns of the intervention terms (level, then slope)."""
    t = np.arange(T, dtype=float)
    post = (t >= start).astype(float)
    cols, names = [np.ones(T)], ["intercept"]
    if trend:
        cols.append(t)
        names.append("trend")
    cols.append(post)
    names.append("level_change")
    if trend:
        cols.append((t - start) * post)
        names.append("slope_change")
    dummies, dummy_names = seasonal_dummies(T, season)
    X = np.column_stack([*cols, controls, dummies])
    names += [f"control:{c}" for c in control_names] + dummy_names
    effect_cols = [names.index("level_change")] + ([names.index("slope_change")] if trend else [])
    return X, names, effect_cols


def hac_covariance(X: np.ndarray, residuals: np.ndarray, lags: int, bread: np.ndarray) -> np.ndarray:
    """Newey-West covariance with the Bartlett kernel and the n / (n - k) factor (statsmodels' HAC)."""
    n, k = X.shape
    scores = X * residuals[:, None]
    S = scores.T @ scores
    for j in range(1, lags + 1):
        G = scores[j:].T @ scores[:-j]
        S += (1 - j / (lags + 1)) * (G + G.T)
    return bread @ S @ bread * (n / (n - k))


def fit_segmented(y: np.ndarray, controls: np.ndarray, control_names: tuple[str, ...], start: int,
                  season: int | None, trend: bool = True, lags: int | None = None) -> SegmentedFit:
    """Least squares of the segmented model on every period, HAC covariance."""
    T = y.size
    X, names, effect_cols = design_matrix(T, start, controls, control_names, season, trend)
    L = default_lags(T, T - start) if lags is None else int(lags)
    bread = np.linalg.pinv(X.T @ X)
    beta = bread @ (X.T @ y)
    fitted = X @ beta
    residuals = y - fitted
    V = hac_covariance(X, residuals, L, bread)
    Xcf = X.copy()
    Xcf[:, effect_cols] = 0.0
    counterfactual = Xcf @ beta
    cf_se = np.sqrt(np.maximum(np.einsum("ij,jk,ik->i", Xcf, V, Xcf), 0.0))
    rows = np.zeros((T - start, X.shape[1]))
    rows[:, effect_cols] = X[start:, effect_cols]
    return SegmentedFit(beta, V, tuple(names), fitted, residuals, counterfactual, cf_se, rows, L,
                        Xcf[start:].mean(axis=0))


def linear_effect(fit: SegmentedFit, c: np.ndarray) -> tuple[float, float]:
    """c' beta and its HAC standard error."""
    return float(c @ fit.beta), float(math.sqrt(max(float(c @ fit.V @ c), 0.0)))


def placebo_effect(y: np.ndarray, controls: np.ndarray, control_names: tuple[str, ...], fake: int, end: int,
                   season: int | None, trend: bool, lags: int | None) -> float:
    """The average effect of a fake intervention at ``fake``, fitted on the periods before ``end`` only."""
    f = fit_segmented(y[:end], controls[:end], control_names, fake, season, trend, lags)
    return float(f.effect_rows.mean(axis=0) @ f.beta)
