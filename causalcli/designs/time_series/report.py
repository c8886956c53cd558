"""From either estimator's counterfactual to the result: effects, checks, diagnostics; the placebo-in-time refits.

Effects (``Fit.effects``), labelled by period:

* ``pointwise/<period>``: observed minus counterfactual in that post period (segmented: the modelled
  effect b2 + b3 (t - t0));
* ``cumulative/<period>``: their sum from the intervention to that period;
* ``relative/average``: the average effect over the average counterfactual of the post-period, with the
  average effect's p-value; no standard error or interval when the counterfactual mean's interval includes 0
  (``_relative``).

The headline ``estimate`` is the average effect per post period.
"""

from __future__ import annotations

from dataclasses import replace
from typing import TYPE_CHECKING, Any

import numpy as np

from causalcli.designs.base import Fit
from causalcli.errors import EstimationError
from causalcli.records import Estimate

if TYPE_CHECKING:  # pragma: no cover
    from causalcli.designs.time_series.design import TimeSeriesData
    from causalcli.spec.models import Study

STRUCTURAL_INFERENCE = "structural_kalman_mle_simulated"
SEGMENTED_INFERENCE = "segmented_ols_hac_newey_west"


def _simulated(value: float, draws: np.ndarray, level: float, inference: str, label: str | None = None) -> Estimate:
    """An estimate whose interval and two-sided tail-area p come from simulated draws of it."""
    tail = (1 - level) / 2
    lo, hi = np.quantile(draws, [tail, 1 - tail])
    one_sided = (1 + min(int(np.count_nonzero(draws <= 0)), int(np.count_nonzero(draws >= 0)))) / (1 + draws.size)
    return Estimate(float(value), float(draws.std(ddof=1)), float(lo), float(hi), level,
                    float(min(1.0, 2 * one_sided)), inference, label)


def _structural(d: "TimeSeriesData", study: "Study", seed: int) -> dict[str, Any]:
    from causalcli.designs.time_series.structural import fit_structural

    s = d.series
    start, level = s.start, study.conf_level
    try:
        f = fit_structural(s.y, s.X, start, s.seasonality, d.ar1, d.draws, d.parameter_draws, seed,
                           d.expected_model_size, d.prior_information_weight)
    except np.linalg.LinAlgError as exc:
        raise EstimationError(f"the structural model could not be fitted: {exc}") from None
    observed = s.y[start:]
    point = f.point[start:]
    effect_draws = observed[None, :] - f.paths
    average_draws = effect_draws.mean(axis=1)
    cumulative_draws = np.cumsum(effect_draws, axis=1)
    gaps = observed - point
    inference = f"{STRUCTURAL_INFERENCE} ({d.draws} paths over {d.parameter_draws} parameter draws)"
    labels = s.labels[start:]
    pointwise = [_simulated(gaps[t], effect_draws[:, t], level, inference, f"pointwise/{labels[t]}")
                 for t in range(gaps.size)]
    cumulative = [_simulated(float(np.sum(gaps[:t + 1])), cumulative_draws[:, t], level, inference,
                             f"cumulative/{labels[t]}") for t in range(gaps.size)]
    headline = _simulated(float(gaps.mean()), average_draws, level, inference)
    denominators = f.paths.mean(axis=1)
    with np.errstate(divide="ignore", invalid="ignore"):  # a draw at 0 only happens where the interval is dropped
        relative = _simulated(float(gaps.mean()) / _nonzero(float(point.mean())), average_draws / denominators,
                              level, inference, "relative/average")
    tail = (1 - level) / 2
    relative, relative_warnings = _relative(relative, headline, float(point.mean()),
                                            *(float(q) for q in np.quantile(denominators, [tail, 1 - tail])))
    one_sided = (1 + min(int(np.count_nonzero(average_draws <= 0)), int(np.count_nonzero(average_draws >= 0)))) \
        / (1 + average_draws.size)
    z = _z(level)
    lower = np.concatenate([f.point[:start] - z * f.point_sd[:start], np.quantile(f.paths, tail, axis=0)])
    upper = np.concatenate([f.point[:start] + z * f.point_sd[:start], np.quantile(f.paths, 1 - tail, axis=0)])
    model = {"estimator": "structural", "components": ["local level", *(["AR(1)"] if d.ar1 else []),
                                                          *([f"seasonal({s.seasonality})"] if s.seasonality else []),
                                                          *(["regression on controls"] if s.controls else [])],
             "parameters": dict(zip(f.param_names, (float(x) for x in f.params))),
             "scale": "y and controls standardised by their pre-period mean and sd",
             "loglike": f.loglike, "converged": f.converged, "diffuse_periods": f.burn,
             "draws": d.draws, "parameter_draws": d.parameter_draws}
    if s.controls:
        model["controls"] = {name: {"inclusion_probability": float(p), "coefficient": float(b)}
                             for name, p, b in zip(s.controls, f.inclusion, f.coefficients)}
        model["prior"] = _prior(f.prior, d.expected_model_size, len(s.controls))
    return {"headline": headline, "pointwise": pointwise, "cumulative": cumulative, "relative": relative,
            "counterfactual": f.point, "lower": lower, "upper": upper, "pre_prediction": f.point[:start],
            "residuals": f.residuals, "model": model, "posterior_probability": 1 - one_sided,
            "tail_area_p": one_sided, "params": f.params,
            "warnings": relative_warnings + ([] if f.converged else [
                "the likelihood maximisation did not converge: read the parameters in diagnostics.model before "
                "trusting the intervals"])}


def _prior(prior: Any, expected_model_size: float | None, k: int) -> dict[str, Any]:
    """diagnostics.model.prior: the controls' spike-and-slab prior as used (selection.py)."""
    from causalcli.designs.time_series.selection import ENUMERATE_UP_TO, GIBBS_SWEEPS

    if prior.inclusion is None:
        return {"kind": "flat (no sparsity prior: every control in)"}
    return {"kind": "spike and slab (Zellner slab)", "expected_model_size": expected_model_size,
            "prior_inclusion_probability": prior.inclusion, "prior_information_weight": prior.information_weight,
            "diagonal_shrinkage": prior.diagonal_shrinkage,
            "subsets": "all in (inclusion probability 1)" if prior.search == "none"
            else f"all {2 ** k} enumerated" if k <= ENUMERATE_UP_TO
            else f"Gibbs sampler over the inclusion indicators ({GIBBS_SWEEPS} sweeps at the MLE, seeded)"}


def _z(level: float) -> float:
    from causalcli.inference.distributions import normal_quantile

    return normal_quantile(0.5 + level / 2)


def _segmented(d: "TimeSeriesData", study: "Study") -> dict[str, Any]:
    from causalcli.designs.time_series.segmented import (fit_segmented, fixed_b_critical, fixed_b_reference,
                                                        linear_effect)

    s = d.series
    start, level = s.start, study.conf_level
    f = fit_segmented(s.y, s.X, s.controls, start, s.seasonality, d.trend, d.hac_lags)
    inference = (f"{SEGMENTED_INFERENCE} (Bartlett kernel, {f.lags} lags, n/(n-k) correction, fixed-b reference "
                 f"over {s.y.size - start} post periods)")
    reference = fixed_b_reference(s.y.size - start, f.lags)
    crit = fixed_b_critical(reference, level)

    def estimate(c: np.ndarray, label: str | None = None) -> Estimate:
        return _fixed_b_estimate(*linear_effect(f, c), level, crit, reference, inference, label)

    labels = s.labels[start:]
    rows = f.effect_rows
    pointwise = [estimate(rows[t], f"pointwise/{labels[t]}") for t in range(rows.shape[0])]
    sums = np.cumsum(rows, axis=0)
    cumulative = [estimate(sums[t], f"cumulative/{labels[t]}") for t in range(rows.shape[0])]
    headline = estimate(rows.mean(axis=0))
    base = float(f.counterfactual[start:].mean())
    relative = Estimate(headline.value / _nonzero(base), _ratio(headline.std_error, base),
                        _ratio(headline.ci_lower, base), _ratio(headline.ci_upper, base), level, headline.p_value,
                        f"{inference}; divided by the mean counterfactual, its uncertainty ignored", "relative/average")
    if base < 0 and relative.ci_lower is not None:
        relative = replace(relative, ci_lower=relative.ci_upper, ci_upper=relative.ci_lower,
                           std_error=abs(relative.std_error))
    base_se = linear_effect(f, f.counterfactual_mean_row)[1]
    relative, relative_warnings = _relative(relative, headline, base, base - crit * base_se, base + crit * base_se)
    z = crit
    coefficients = {n: {"estimate": float(b), "std_error": float(np.sqrt(max(v, 0.0)))}
                    for n, b, v in zip(f.names, f.beta, np.diag(f.V))}
    model = {"estimator": "segmented", "coefficients": coefficients, "hac_lags": f.lags,
             "hac_lag_rule": "max(floor(4 (T/100)^(2/9)) (Newey and West 1994), floor(post periods / 4))"
             if d.hac_lags is None else "design.options.hac_lags", "trend": d.trend,
             "critical_value": crit, "critical_value_rule": "fixed-b (Kiefer and Vogelsang 2005): the "
             f"{level:g} quantile of |t| in a location model of the post periods with the same lags, "
             "simulated"}
    return {"headline": headline, "pointwise": pointwise, "cumulative": cumulative, "relative": relative,
            "counterfactual": f.counterfactual, "lower": f.counterfactual - z * f.counterfactual_se,
            "upper": f.counterfactual + z * f.counterfactual_se, "pre_prediction": f.fitted[:start],
            "residuals": f.residuals[:start], "model": model, "params": None, "warnings": relative_warnings}


def _fixed_b_estimate(value: float, std_error: float, level: float, crit: float, reference: np.ndarray,
                      inference: str, label: str | None) -> Estimate:
    """An effect with its interval value -/+ crit SE and its p-value from the fixed-b reference."""
    from causalcli.designs.time_series.segmented import fixed_b_p_value

    if std_error is None or not np.isfinite(std_error) or std_error <= 0:
        return Estimate(value, None, None, None, level, None, inference, label)
    return Estimate(float(value), float(std_error), float(value - crit * std_error), float(value + crit * std_error),
                    level, fixed_b_p_value(reference, value / std_error), inference, label)


def _relative(relative: Estimate, headline: Estimate, mean: float, lower: float, upper: float
              ) -> tuple[Estimate, list[str]]:
    """``relative/average`` as reported: its p-value is the average effect's (the same null, no effect, since
    the ratio is 0 exactly when the effect is), and when the interval of its denominator, the counterfactual's
    post-period mean, includes 0 the ratio's sign and size are unknown, so its standard error and interval are
    null and a warning says why (a return, a growth rate, a difference hovering around 0)."""
    relative = replace(relative, p_value=headline.p_value)
    if lower > 0 or upper < 0:
        return relative, []
    return replace(relative, std_error=None, ci_lower=None, ci_upper=None), [
        f"relative/average has no standard error or interval: the counterfactual's post-period mean, its "
        f"denominator, is {mean:.4g} with a {relative.conf_level:.0%} interval [{lower:.4g}, {upper:.4g}] that "
        f"includes 0, so the effect's size relative to it is unknown; read the average effect and its interval "
        f"(a relative effect needs an outcome whose counterfactual is clearly away from 0, as levels rather than "
        f"returns or differences)"]


def _nonzero(base: float) -> float:
    """The ratio's denominator, NaN at exactly 0 (the ratio then reads as null, not as a division error)."""
    return base if base != 0 else float("nan")


def _ratio(x: float | None, base: float) -> float | None:
    return None if x is None or base == 0 else x / base


def _json(values: np.ndarray) -> list[float | None]:
    return [float(x) if np.isfinite(x) else None for x in values]


def build_fit(d: "TimeSeriesData", study: "Study", seed: int) -> Fit:
    from causalcli.designs.time_series.checks import autocorrelation_check, controls_check, mape_check

    s = d.series
    start = s.start
    out = _structural(d, study, seed) if d.estimator == "structural" else _segmented(d, study)
    alpha = study.thresholds.alpha
    fit_check, mape = mape_check(s.y[:start], out["pre_prediction"], study.thresholds.pre_fit)
    lb_check, lb = autocorrelation_check(out["residuals"], s.seasonality, alpha, d.estimator == "structural")
    controls, control_tests = controls_check(s.X, s.controls, start, s.seasonality, alpha)
    pointwise, cumulative = out["pointwise"], out["cumulative"]
    none = [None] * start
    diagnostics: dict[str, Any] = {
        "path": {
            "time": list(s.labels), "observed": _json(s.y), "counterfactual": _json(out["counterfactual"]),
            "lower": _json(out["lower"]), "upper": _json(out["upper"]), "intervention": s.labels[start],
            "pointwise": none + [e.value for e in pointwise],
            "pointwise_lower": none + [e.ci_lower for e in pointwise],
            "pointwise_upper": none + [e.ci_upper for e in pointwise],
            "cumulative": none + [e.value for e in cumulative],
            "cumulative_lower": none + [e.ci_lower for e in cumulative],
            "cumulative_upper": none + [e.ci_upper for e in cumulative],
        },
        "relative_effect": out["relative"].to_dict(),
        "series": {"outcome": s.outcome, "time": s.time, "period": s.period, "periods": s.periods, "pre_periods": start, "post_periods": s.periods - start,
                   "first": s.labels[0], "last": s.labels[-1], "controls": list(s.controls),
                   "seasonality": s.seasonality, "aggregate": d.aggregate},
        "model": out["model"],
        "pre_fit": {"mape": mape, "threshold": study.thresholds.pre_fit},
        "ljung_box": lb,
        "controls": control_tests,
    }
    if "posterior_probability" in out:
        diagnostics["posterior_probability"] = out["posterior_probability"]
        diagnostics["tail_area_p"] = out["tail_area_p"]
    n = {"rows": s.rows, "periods": s.periods, "pre_periods": start, "post_periods": s.periods - start,
         "controls": len(s.controls)}
    return Fit(d.estimator, "att", out["headline"], n, effects=[*pointwise, *cumulative, out["relative"]],
               diagnostics=diagnostics, checks=[fit_check, lb_check, controls],
               warnings=[*s.notes, *out["warnings"]], refute_on=replace(d, params=out["params"]))


# ---------------------------------------------------------------- placebo in time


def _window(d: "TimeSeriesData") -> tuple[int, int]:
    """The fewest pre-periods a fake start leaves before it, and the fake post-period's length: the real
    one's, or half of what the pre-period allows when it is shorter."""
    from causalcli.designs.time_series.series import MIN_PRE_PERIODS

    s = d.series
    needed = max(MIN_PRE_PERIODS, 2 * s.seasonality if s.seasonality else 0, s.X.shape[1] + 3)
    return needed, min(s.periods - s.start, (s.start - needed) // 2)


def fake_starts(d: "TimeSeriesData", options: Any) -> np.ndarray:
    needed, width = _window(d)
    first = max(needed, options.min_pre)
    if width < 1 or first > d.series.start - width:
        raise EstimationError(f"the pre-period ({d.series.start} periods) is too short for a fake intervention "
                              f"that leaves {first} periods before it")
    return np.arange(first, d.series.start - width + 1)


def placebo_at(d: "TimeSeriesData", fake: int) -> float:
    """The average effect of a fake intervention at period ``fake`` over a window as long as the real
    post-period, using only data before the real intervention."""
    s = d.series
    end = fake + _window(d)[1]
    if d.estimator == "segmented":
        from causalcli.designs.time_series.segmented import placebo_effect

        return placebo_effect(s.y, s.X, s.controls, fake, end, s.seasonality, d.trend, d.hac_lags)
    from causalcli.designs.time_series.structural import placebo_effect as structural_placebo

    return structural_placebo(s.y, s.X, s.start, fake, end, s.seasonality, d.ar1, d.params, d.expected_model_size,
                              d.prior_information_weight)
