"""Effects of an experiment from per-arm moments: Welch, delta method, CUPED, corrections, SRM, MDE.

Only small numbers live here (means and covariance matrices per arm), never rows.
Distributions come from ``causalcli.inference.distributions``.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

from causalcli.errors import EstimationError
from causalcli.designs.experiment.stats import Moments
from causalcli.inference.distributions import chi2_sf, normal_quantile, t_quantile, t_two_sided


@dataclass(frozen=True)
class MetricShape:
    """A metric as ratios of column means: value num/den and covariates (x/w); ``None`` means the constant 1."""

    name: str
    num: str
    den: str | None
    covariates: tuple[tuple[str, str | None], ...]
    kind: str  # "mean" or "ratio"
    adjustment: str  # "none", "cuped" or "regression"
    unit: str | None = None  # design.unit: the columns are sums per unit (mean metrics then have a denominator)
    uptake: str | None = None  # partial compliance: the uptake column, a ratio over ``den`` like the metric

    @property
    def summed(self) -> bool:
        """Whether the statistics pass sums the metric's columns: all but a quantile of rows, whose counts and order
        statistics come from aggregates of its own (10^8 rows by two segments: the pass 4.1 s -> 2.8 s without its
        sums); a quantile of unit sums keeps them (the units' checks read them)."""
        return not (self.kind == "quantile" and self.unit is None)


@dataclass(frozen=True)
class Comparison:
    """One metric, control against one treatment arm."""

    metric: str
    arm: str
    n_control: int
    n_treatment: int
    mean_control: float       # adjusted (CUPED) means when covariates are used
    mean_treatment: float
    raw_mean_control: float
    raw_mean_treatment: float
    var_control: float        # per-unit (delta-method) variance after adjustment
    var_treatment: float
    var_control_unadjusted: float
    var_treatment_unadjusted: float
    theta: tuple[float, ...]


def _ratio_cov(m: Moments, a: tuple[str, str | None], b: tuple[str, str | None]) -> float:
    """Delta-method covariance of two ratios of means (per unit; divide by n for the means)."""
    an, ad = a
    bn, bd = b
    ra = m.m(an) / m.m(ad)
    rb = m.m(bn) / m.m(bd)
    return (m.c(an, bn) - m.c(an, bd) * rb - m.c(ad, bn) * ra + m.c(ad, bd) * ra * rb) / m.m(ad) / m.m(bd)


def _value(m: Moments, a: tuple[str, str | None]) -> float:
    return m.m(a[0]) / m.m(a[1])


def compare(shape: MetricShape, control: Moments, treatment: Moments, pooled: Moments, arm: str,
            file: str | None = None) -> Comparison:
    """Adjusted means and variances of one metric in two arms (tea-tasting's RatioOfMeans, k covariates)."""
    import numpy as np

    y = (shape.num, shape.den)
    covs = list(shape.covariates)
    theta = np.zeros(len(covs))
    if covs:
        A = np.array([[_ratio_cov(pooled, ci, cj) for cj in covs] for ci in covs])
        b = np.array([_ratio_cov(pooled, ci, y) for ci in covs])
        if len(covs) == 1:
            theta[0] = 0.0 if A[0, 0] == 0 else b[0] / A[0, 0]  # tea-tasting: a constant covariate adjusts nothing
        else:
            if np.linalg.matrix_rank(A) < len(covs):
                raise EstimationError(f"metric {shape.name!r}: the covariates are collinear in the arms compared; "
                                      "drop one of them", file=file, key="design.metrics")
            theta = np.linalg.solve(A, b)
        centre = np.array([_value(pooled, c) for c in covs])

    def adjusted(m: Moments) -> tuple[float, float, float, float]:
        raw = _value(m, y)
        var_raw = _ratio_cov(m, y, y)
        if not covs:
            return raw, var_raw, raw, var_raw
        cvals = np.array([_value(m, c) for c in covs])
        cy = np.array([_ratio_cov(m, c, y) for c in covs])
        cc = np.array([[_ratio_cov(m, ci, cj) for cj in covs] for ci in covs])
        mean = raw - float(theta @ (cvals - centre))
        var = var_raw - 2 * float(theta @ cy) + float(theta @ cc @ theta)
        return mean, var, raw, var_raw

    mc, vc, rc, vrc = adjusted(control)
    mt, vt, rt, vrt = adjusted(treatment)
    return Comparison(shape.name, arm, control.n, treatment.n, mc, mt, rc, rt, vc, vt, vrc, vrt,
                      tuple(float(t) for t in theta))


# ---------------------------------------------------------------- tests and intervals


@dataclass(frozen=True)
class Test:
    value: float
    std_error: float
    ci_lower: float
    ci_upper: float
    p_value: float
    df: float | None


def welch_df(a: float, b: float, na: int, nb: int) -> float:
    """Welch-Satterthwaite degrees of freedom for two variance-of-mean terms a = v_a/n_a, b = v_b/n_b."""
    den = a * a / (na - 1) + b * b / (nb - 1)
    return (a + b) ** 2 / den if den > 0 else float("inf")


def _quantile(q: float, df: float | None) -> float:
    return t_quantile(q, df)


def _two_sided(stat: float, df: float | None) -> float:
    if not math.isfinite(stat):
        return float("nan")
    return t_two_sided(stat, df)


def absolute(c: Comparison, conf_level: float, distribution: str) -> Test:
    a, b = c.var_treatment / c.n_treatment, c.var_control / c.n_control
    se = math.sqrt(a + b)
    df = welch_df(a, b, c.n_treatment, c.n_control) if distribution == "t" else None
    effect = c.mean_treatment - c.mean_control
    half = _quantile((1 + conf_level) / 2, df) * se
    p = _two_sided(effect / se, df) if se > 0 else float("nan")
    return Test(effect, se, effect - half, effect + half, p, df)


def relative_delta(c: Comparison, conf_level: float, distribution: str) -> Test:
    """mean_t / mean_c - 1 with the delta-method standard error (arms independent)."""
    mc, mt = c.mean_control, c.mean_treatment
    if mc == 0 or mc ** 4 == 0:  # a control value so near zero (a subnormal quantile) that its powers vanish
        nan = float("nan")
        return Test(nan, nan, nan, nan, nan, None)
    a = c.var_treatment / c.n_treatment / (mc * mc)
    b = mt * mt * c.var_control / c.n_control / mc ** 4
    se = math.sqrt(a + b)
    df = welch_df(a, b, c.n_treatment, c.n_control) if distribution == "t" else None
    rel = mt / mc - 1
    half = _quantile((1 + conf_level) / 2, df) * se
    p = _two_sided(rel / se, df) if se > 0 else float("nan")
    return Test(rel, se, rel - half, rel + half, p, df)


def relative_log(c: Comparison, conf_level: float, distribution: str) -> Test:
    """tea-tasting's interval: Welch on log(mean_t / mean_c) with variances v / mean**2, exponentiated."""
    mc, mt = c.mean_control, c.mean_treatment
    if mc <= 0 or mt <= 0:
        nan = float("nan")
        return Test(nan, nan, nan, nan, nan, None)
    a = c.var_treatment / mt / mt / c.n_treatment
    b = c.var_control / mc / mc / c.n_control
    scale = math.sqrt(a + b)
    df = welch_df(a, b, c.n_treatment, c.n_control) if distribution == "t" else None
    ratio = mt / mc
    factor = math.exp(_quantile((1 + conf_level) / 2, df) * scale)
    p = _two_sided(math.log(ratio) / scale, df) if scale > 0 else float("nan")
    return Test(ratio - 1, ratio * scale, ratio / factor - 1, ratio * factor - 1, p, df)


def mde(se: float, alpha: float, power: float) -> float:
    """Minimum detectable effect of a two-sided level-alpha z test with the given power: (z_{1-a/2} + z_power) se."""
    return (normal_quantile(1 - alpha / 2) + normal_quantile(power)) * se


# ---------------------------------------------------------------- sample-ratio mismatch


def srm(observed: dict[str, int], expected_share: dict[str, float]) -> dict:
    """Pearson chi-square goodness of fit of the arm counts against the planned shares (k - 1 df)."""
    total = sum(observed.values())
    share_total = sum(expected_share.values())
    stat = 0.0
    expected = {}
    for arm, share in expected_share.items():
        e = total * share / share_total
        expected[arm] = e
        stat += (observed.get(arm, 0) - e) ** 2 / e
    df = len(expected_share) - 1
    return {"statistic": stat, "df": df, "p_value": chi2_sf(stat, df), "expected": expected,
            "observed": dict(observed), "expected_share": {a: s / share_total for a, s in expected_share.items()}}


def srm_check(observed: dict[str, int], expected_split: dict[str, float] | None, srm_alpha: float) -> tuple[dict, Any]:
    """The sample-ratio check against the planned allocation; not run (passed null) without one.

    Equal shares are not assumed: a trial planned with unequal arms would fail such a check
    for no fault of its randomisation.
    """
    from causalcli.records import Check

    total = sum(observed.values())
    if expected_split is None:
        reason = ("not run: no planned allocation given (design.expected_split), so the arm sizes cannot be "
                  "checked against a plan; add expected_split to check the randomisation")
        s = {"statistic": None, "df": None, "p_value": None, "expected": None, "observed": dict(observed),
             "expected_share": None, "passed": None, "expected_split_given": False, "reason": reason}
        shares = ", ".join(f"{a}: {k:,} ({k / total:.2%})" for a, k in observed.items())  # 0: 2,023, not 0 2,023
        return s, Check("srm", None, f"{reason}; observed: {shares}")
    s = srm(observed, expected_split)
    passed = bool(s["p_value"] >= srm_alpha)
    s["passed"] = passed
    s["expected_split_given"] = True
    shares = ", ".join(f"{a}: {observed[a]:,} ({observed[a] / total:.2%} vs {s['expected_share'][a]:.2%})"
                       for a in observed)
    detail = (f"chi-square {s['statistic']:.2f} on {s['df']} df, p = {s['p_value']:.3g} "
              f"{'>=' if passed else '<'} {srm_alpha}: {shares}")
    if not passed:
        detail += ("; the arms are not the sizes planned, so the randomisation or logging is broken and the "
                   "effects cannot be trusted: find the cause before reading them")
    return s, Check("srm", passed, detail)
