"""Checks of a time-series fit: pre-period fit (MAPE), residual autocorrelation (Ljung-Box), and
``controls``: are the control series themselves broken at the intervention?"""

from __future__ import annotations

import numpy as np

from causalcli.records import Check


def mape_check(y: np.ndarray, predicted: np.ndarray, limit: float) -> tuple[Check, float | None]:
    """Mean absolute percentage error of the pre-period predictions (periods where y is 0 left out)."""
    ok = np.isfinite(predicted) & (y != 0)
    if ok.sum() < 2:
        return Check("pre_fit", None, "the pre-period has fewer than two non-zero values to measure the fit on"), None
    mape = float(np.mean(np.abs((y[ok] - predicted[ok]) / y[ok])))
    passed = mape <= limit
    zeros = int(np.count_nonzero(np.isfinite(predicted) & (y == 0)))
    detail = (f"pre-period MAPE {mape:.2%} ({'<=' if passed else '>'} {limit:.0%} allowed, thresholds.pre_fit)"
              + (f"; {zeros} periods with outcome 0 left out" if zeros else "")
              + ("" if passed else _misfit_hint(y[ok], predicted[ok], limit)))
    return Check("pre_fit", passed, detail), mape


def _misfit_hint(y: np.ndarray, predicted: np.ndarray, limit: float) -> str:
    """What a failed pre_fit means. When the errors are small next to the outcome's typical size (their mean
    over the mean |y|, the weighted APE) the MAPE is large only because y comes near 0 in some periods, where a
    percentage error blows up (an inflation rate, a difference): the fit is not what failed."""
    weighted = float(np.sum(np.abs(y - predicted)) / np.sum(np.abs(y)))
    if weighted <= limit:
        return (f"; but the errors are {weighted:.2%} of the mean |outcome|: the outcome comes near 0 in some "
                f"periods (smallest |value| {np.min(np.abs(y)):.4g}), where percentage errors blow up; judge the "
                "fit by the impact plot (--plots) and raise thresholds.pre_fit if it tracks the outcome")
    if y.min() < 0 < y.max():  # a return or growth rate: near 0 everywhere next to its spread
        return ("; the outcome takes both signs (a return, a growth rate, a difference): its percentage errors are "
                "large wherever it is near 0, so this MAPE cannot judge the fit; read the impact plot (--plots) and "
                "set thresholds.pre_fit, or add controls or seasonality if the plot shows a poor fit")
    return ("; the model does not track the outcome before the intervention, so its counterfactual after it is "
            "not credible: add controls or seasonality")


def ljung_box(residuals: np.ndarray, lags: int) -> tuple[float, float]:
    """Ljung-Box Q over ``lags`` autocorrelations and its chi-square(lags) p-value (Ljung and Box 1978)."""
    from causalcli.inference.distributions import chi2_sf

    e = residuals - residuals.mean()
    n = e.size
    denom = float(e @ e)
    q = sum((float(e[j:] @ e[:-j]) / denom) ** 2 / (n - j) for j in range(1, lags + 1)) * n * (n + 2)
    return q, chi2_sf(q, lags)


def ljung_box_lags(n: int, season: int | None) -> int:
    """min(10, n / 5), or two seasons when that is more and the series allows (Hyndman and Athanasopoulos)."""
    return max(1, min(2 * season if season else 10, n // 5))


def autocorrelation_check(residuals: np.ndarray, season: int | None, alpha: float, judged: bool) -> tuple[Check, dict]:
    lags = ljung_box_lags(residuals.size, season)
    q, p = ljung_box(residuals, lags)
    about = {"statistic": q, "lags": lags, "p_value": p}
    if not judged:
        return Check("residual_autocorrelation", None,
                     f"Ljung-Box Q = {q:.4g} over {lags} lags, p = {p:.3g}: not judged, the segmented model's "
                     "Newey-West standard errors allow for autocorrelated errors"), about
    passed = p > alpha
    detail = (f"Ljung-Box Q = {q:.4g} over {lags} lags of the pre-period one-step-ahead errors, p = {p:.3g} "
              + ("> alpha: no autocorrelation left" if passed else
                 "<= alpha: the model leaves autocorrelation, so its intervals are too narrow; add seasonality "
                 "or keep options.ar1"))
    return Check("residual_autocorrelation", passed, detail), about


def _deseasoned(x: np.ndarray, start: int, season: int | None) -> np.ndarray:
    """x (periods, or periods x series) less the pre-period mean of its position in the season (nothing without
    seasonality)."""
    if not season:
        return x
    position = np.arange(x.shape[0]) % season
    means = np.stack([x[:start][position[:start] == j].mean(axis=0) for j in range(season)])
    return x - means[position] + means.mean(axis=0)


LEVEL_RATIOS = np.concatenate([[0.0], np.logspace(-5, 2, 36)])  # s2_level / s2_noise tried by level_break


def level_break(x: np.ndarray, start: int, season: int | None) -> tuple[float, float, float]:
    """Does the series leave its own forecast at ``start``? (post mean - forecast, z, two-sided p): ``level_breaks``
    of one series."""
    return level_breaks(np.asarray(x, dtype=float)[:, None], start, season)[0]


def level_breaks(X: np.ndarray, start: int, season: int | None) -> list[tuple[float, float, float]]:
    """Does each series (a column of X) leave its own forecast at ``start``? A local level model with drift (random
    walk plus drift plus noise, Harvey 1989, ch. 2; q = 0 is a straight trend plus noise) fitted on the deseasoned
    pre-period by profile likelihood: the noise variance and the drift concentrated out (the drift enters the
    state linearly, so it is a GLS coefficient on the filter's innovations, de Jong 1991), the ratio
    q = s2_level / s2_noise on a grid. Then the post-period mean against the forecast, a straight line from the
    last filtered level, whose error variance is s2_noise (P + q sum_{j<H} (H - j)^2 / H^2 + 1 / H) plus the
    drift's own variance times its weight in the mean (orthogonal to the rest: the drift's estimate is a
    function of past innovations, the filtered state's error is not). A trending control therefore does not
    fail for its trend. The filter runs over every series and grid value at once (one loop over the periods).
    Returns (post mean - forecast, z, two-sided p) per series."""
    from causalcli.inference.distributions import normal_two_sided_p

    Z = _deseasoned(X, start, season)
    k = Z.shape[1]
    q = np.broadcast_to(LEVEL_RATIOS, (k, LEVEL_RATIOS.size))
    # after the first value, with a diffuse start: level = y_1 (plus the drift, in the prediction), P = 1 + q;
    # ``a`` is the level without the drift's part, ``c`` the drift's coefficient in the predicted level
    a = np.repeat(Z[0][:, None], q.shape[1], axis=1)
    c = np.ones(q.shape)
    P = 1.0 + q
    svv, svc, scc = np.zeros(q.shape), np.zeros(q.shape), np.zeros(q.shape)
    logdet = np.zeros(q.shape)
    for value in Z[1:start]:
        F = P + 1.0
        v = value[:, None] - a
        svv += v * v / F
        svc += v * c / F
        scc += c * c / F
        logdet += np.log(F)
        K = P / F
        a = a + K * v
        c = c * (1 - K) + 1.0  # the next prediction adds one more drift
        P = P * (1 - K) + q
    drift = svc / scc
    n = start - 2  # two diffuse elements: the first level and the drift
    noise = (svv - svc * drift) / n
    loglike = -0.5 * n * np.log(np.maximum(noise, 1e-300)) - 0.5 * logdet - 0.5 * np.log(scc)
    H = Z.shape[0] - start
    weights = np.arange(H - 1, 0, -1, dtype=float)
    out = []
    for j in range(k):
        best = int(np.argmax(loglike[j]))
        # the forecast of step h is a + drift * (c - 1 + h): c already holds the first step's drift
        lead = c[j, best] - 1.0 + (H + 1) / 2.0
        var = noise[j, best] * (P[j, best] + q[j, best] * float(weights @ weights) / H ** 2 + 1.0 / H
                                + lead ** 2 / scc[j, best])
        gap = float(Z[start:, j].mean() - (a[j, best] + drift[j, best] * lead))
        stat = gap / np.sqrt(var) if var > 0 else (0.0 if gap == 0 else np.inf)
        out.append((gap, float(stat), normal_two_sided_p(float(stat)) if np.isfinite(stat) else 0.0))
    return out


def controls_check(y_controls: np.ndarray, names: tuple[str, ...], start: int, season: int | None,
                   alpha: float) -> tuple[Check, dict]:
    """``level_break`` on each control; Bonferroni over controls."""
    if not names:
        return Check("controls", None, "no control series to check"), {}
    tests = {name: {"shift": gap, "z": z, "p_value": p}
             for name, (gap, z, p) in zip(names, level_breaks(np.asarray(y_controls, dtype=float), start, season))}
    level = alpha / len(names)
    broken = [n for n, t in tests.items() if t["p_value"] <= level]
    if broken:
        detail = (f"control(s) {', '.join(broken)} leave their own forecast after the intervention (local level "
                  f"model with drift of each control, p <= {level:.3g} = alpha / {len(names)} controls): if the intervention "
                  "reached them, the counterfactual absorbs part of the effect; drop them from design.controls")
    else:
        detail = (f"no control leaves its own forecast after the intervention (local level model with drift of each "
                  f"control; "
                  f"smallest p = {min(t['p_value'] for t in tests.values()):.3g} > alpha / {len(names)} = "
                  f"{level:.3g})")
    return Check("controls", not broken, detail), tests
