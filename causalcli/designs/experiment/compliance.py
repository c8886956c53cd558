"""Partial compliance (``uptake:`` on a metric): the complier average effect beside the intention-to-treat effect.

An arm offers something (an invitation, a nudge, a feature flag) that only some units take up. The
effects ``metric/arm/abs|rel`` compare the arms as randomised (intention to treat, ITT). With
``uptake: u`` the metric also gets ``metric/arm/cace``, the Wald estimate

    CACE = (ybar_t - ybar_c) / (ubar_t - ubar_c),

the ITT over the uptake difference: the effect of taking up on the units that take up because of
their arm (the compliers), under the exclusion restriction (the arm changes the metric only
through uptake) and monotonicity (Bloom 1984; Imbens and Angrist 1994; Angrist, Imbens and Rubin
1996). A ``u`` other than 0/1 is a dose: the ratio is then an average effect per unit of uptake
(Angrist and Imbens 1995). It is two-stage least squares of ``y`` on a constant and ``u`` with the
arm as the instrument, on the rows of control and that arm.

Everything comes from the pass's per-arm sums: ``u`` is one more column of the metric, so each arm's
moments hold the means, variances and covariance of ``y`` and ``u`` (and of the CUPED covariates).
Each of ``y``, ``u`` and the covariates is a ratio over the metric's denominator (none for a mean
metric; the unit's rows with ``design.unit``), and the delta method linearises the ratio: per arm,
the per-unit variance of ``y - theta x - beta u`` (``theta`` the ITT's CUPED coefficients, fixed as the
ITT treats them), so that

    SE(CACE)^2 = (v_t / n_t + v_c / n_c) / (ubar_t - ubar_c)^2.

With the sample variances (n - 1) of the ITT, ``v_a / n_a`` is linearmodels' ``IV2SLS`` robust
(``debiased=False``) term of arm ``a`` times ``n_a / (n_a - 1)``; for a 0/1 metric (variances over
``n``, as the ITT's proportion test) the two are equal, and with ``design.unit`` the same holds for
the clustered covariance with the unit as the cluster. The interval uses the ITT's distribution
(Welch t on the linearised terms, or the normal). CUPED adjusts the ITT numerator only: the uptake
difference is the raw one, so that with full uptake the CACE and its interval are the ITT's.

A small uptake difference makes the ratio's normal interval unreliable (a weak instrument): the
check ``uptake:<metric>`` fails when the first-stage F, ``((ubar_t - ubar_c) / SE)^2`` (the effective F
of one instrument), is below Montiel Olea and Pflueger's 23.109, and ``diagnostics.compliance`` gives
Fieller's set (the Anderson-Rubin set of one instrument), which stays valid and may be unbounded.
An uptake difference of exactly zero gives no CACE.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, replace
from typing import TYPE_CHECKING, Any

from causalcli.errors import SpecError
from causalcli.inference.weak_instruments import MOP_CRITICAL_10PCT, quadratic_set

if TYPE_CHECKING:  # pragma: no cover
    from causalcli.designs.experiment.analysis import MetricShape, Test
    from causalcli.designs.experiment.stats import ArmSums, Statistics
    from causalcli.records import Check, Estimate
    from causalcli.spec.models import Study

INFERENCE = "cace_wald"
METHOD = ("Wald: the ITT (CUPED-adjusted when the metric has covariates) over the raw uptake difference, as "
          "2SLS of the metric on uptake with the arm as instrument; delta-method variance with each arm's "
          "variance convention of the ITT (n - 1; n for a 0/1 metric), which is linearmodels' robust IV2SLS "
          "covariance (debiased=False; clustered on design.unit) times n_a / (n_a - 1) in each arm's term")
FIRST_STAGE = ("first-stage F = (uptake difference / its SE)^2, the effective F of one instrument; fails below "
               "Montiel Olea and Pflueger's critical value (worst-case 2SLS bias 10% of OLS's, at 5%)")


def check_uptake_spec(study: "Study", metrics: list[Any], file: str) -> None:
    """Combinations not built with ``uptake``: exit 2, naming the key."""
    for i, m in enumerate(metrics):
        if m.uptake is None:
            continue
        key = f"design.metrics[{i}].uptake"
        if m.quantile is not None:
            raise SpecError(f"metric {m.name!r}: uptake with a quantile metric is not built (the complier quantile "
                            "effect is not a ratio of means); remove uptake or quantile", file=file, key=key)
        if m.numerator is not None:
            raise SpecError(f"metric {m.name!r}: uptake with a ratio metric is not built (the complier effect on a "
                            "ratio of means is no IV on the rows); give the metric as outcome: (a mean per unit), "
                            "with design.unit when rows are finer than units", file=file, key=key)
        if study.design.sequential is not None:
            raise SpecError(f"metric {m.name!r}: uptake with design.sequential is not built (the complier effect "
                            "has a fixed-horizon interval only); remove uptake or design.sequential", file=file,
                            key=key)


@dataclass(frozen=True)
class Compliance:
    """One metric, control against one arm: the uptake difference (the first stage) and the complier effect."""

    uptake_control: float
    uptake_treatment: float
    difference: float
    difference_se: float
    first_stage_f: float
    itt: float
    cace: "Test | None"  # None when the uptake difference is zero
    fieller: tuple[float, float, str]


def _ratio_covariances(m: Any, terms: list[tuple[str | None, str | None]], scale: float) -> Any:
    """The per-unit delta-method covariance matrix of the ratios ``terms`` in one arm's moments."""
    import numpy as np

    from causalcli.designs.experiment.analysis import _ratio_cov

    return scale * np.array([[_ratio_cov(m, a, b) for b in terms] for a in terms])


def complier_test(shape: "MetricShape", control: "ArmSums", treatment: "ArmSums", stats: "Statistics",
                  pairs: tuple, arm: str, file: str, conf: float, opts: Any) -> Compliance:
    """The ITT as ``effects`` reports it, the uptake difference and the CACE with its interval."""
    import numpy as np

    from causalcli.designs.experiment.analysis import Test, welch_df
    from causalcli.designs.experiment.proportions import arm_tests, is_proportion
    from causalcli.designs.experiment.stats import moments
    from causalcli.inference.distributions import t_quantile, t_two_sided

    c = arm_tests(shape, control, treatment, stats, pairs, arm, file, conf, opts).comparison
    proportion = is_proportion(shape, stats)
    distribution = "normal" if proportion else opts.distribution
    terms = [(shape.num, shape.den), (shape.uptake, shape.den), *shape.covariates]
    arms = []
    for sums in (treatment, control):
        m = moments([sums], stats.centres, pairs)
        # a 0/1 metric's ITT uses variances over n (proportions.wald): the same convention here
        arms.append((m.n, m.m(shape.uptake) / m.m(shape.den),
                     _ratio_covariances(m, terms, (m.n - 1) / m.n if proportion else 1.0)))
    (nt, ut, St), (nc, uc, Sc) = arms
    dy, du = c.mean_treatment - c.mean_control, ut - uc
    theta = np.asarray(c.theta if shape.covariates else (), dtype=float)
    g = np.concatenate([[1.0, 0.0], -theta])  # the CUPED-adjusted metric y - theta x
    h = np.zeros(len(terms))
    h[1] = 1.0  # the uptake

    def variance(w: Any) -> tuple[float, float]:  # kept off rounding below zero (a ratio constant in an arm)
        return max(float(w @ St @ w), 0.0) / nt, max(float(w @ Sc @ w), 0.0) / nc

    vu = sum(variance(h))
    se_u = math.sqrt(vu)
    f = du * du / vu if vu > 0 else (math.inf if du != 0 else math.nan)
    a, b = variance(g)
    df_itt = welch_df(a, b, nt, nc) if distribution == "t" else None
    cace = None
    if du != 0:
        beta = dy / du
        vt, vc = variance(g - beta * h)
        se = math.sqrt(vt + vc) / abs(du)
        df = welch_df(vt, vc, nt, nc) if distribution == "t" else None
        q = t_quantile((1 + conf) / 2, df)
        p = t_two_sided(beta / se, df) if se > 0 else math.nan
        cace = Test(beta, se, beta - q * se, beta + q * se, p, df)
    # Fieller: {b : (dy - b du)^2 <= q^2 Var(dy - b du)}, at the quantile of the interval (the ITT's without a CACE)
    q2 = t_quantile((1 + conf) / 2, cace.df if cace is not None else df_itt) ** 2
    A, C = a + b, vu
    B = float(g @ St @ h) / nt + float(g @ Sc @ h) / nc
    fieller = quadratic_set(du * du - q2 * C, -2 * (dy * du - q2 * B), dy * dy - q2 * A)
    return Compliance(uc, ut, du, se_u, f, dy, cace, fieller)


def complier_effects(d: Any, study: "Study", effects: list["Estimate"], checks: list["Check"], warnings: list[str],
                     diagnostics: dict, inference: Any) -> None:
    """Insert ``metric/arm/cace`` after each metric and arm's ITT effects, the checks ``uptake:<metric>`` and
    ``diagnostics.compliance``; nothing without ``uptake``. ``inference(shape, "abs", opts, stats)`` names the
    ITT's inference, which the CACE's extends."""
    from causalcli.inference.multiplicity import adjust
    from causalcli.records import Check, Estimate

    shapes = [s for s in d.shapes if s.uptake is not None]
    if not shapes:
        return
    opts, conf, stats = study.design.options, study.conf_level, d.stats
    rows, found = [], []  # (label after which the effect goes, Estimate without adjusted p)
    for s in shapes:
        group = stats.groups[s.name if stats.complete_cases_by_metric else None]
        column = _source_uptake(study, s)
        parts = []
        for arm in d.arms:
            label = f"{s.name}/{d.labels[arm]}"
            r = complier_test(s, group[d.control], group[arm], stats, d.pairs[s.name], d.labels[arm], d.file, conf,
                              opts)
            name = "+".join(dict.fromkeys([INFERENCE, "delta_method", *inference(s, "abs", opts, stats).split("+")]))
            if r.cace is not None:
                t = r.cace
                found.append((label + "/rel", Estimate(t.value, t.std_error, t.ci_lower, t.ci_upper, conf, t.p_value,
                                                       name, label + "/cace")))
            rows.append(_diagnostics_row(s, column, d.labels[arm], r, stats, conf))
            parts.append(_arm_detail(d.labels[arm], r))
            if r.fieller[2] != "interval" and r.cace is not None:
                warnings.append(f"{label}/cace: Fieller's {conf:.0%} set for the complier effect is {r.fieller[2]} "
                                "(diagnostics.compliance): the uptake difference is too small to bound it")
        weak = [r for r in rows[-len(d.arms):] if not r["first_stage_f"] >= MOP_CRITICAL_10PCT]
        detail = "; ".join(parts)
        if weak:
            detail += ("; the complier effect's interval cannot be trusted with so small an uptake difference: read "
                       "Fieller's set in diagnostics.compliance, or raise uptake")
        checks.append(Check(f"uptake:{s.name}", not weak, f"uptake {column!r}: {detail}"))
    method = study.design.correction
    adjusted = adjust([e.p_value for _, e in found], method)
    suffix = "" if method == "none" else \
        f"; p_value_adjusted: {method} over {len(found)} complier effect{'s' if len(found) > 1 else ''}"
    for (after, e), pa in zip(found, adjusted):
        at = next(k for k, x in enumerate(effects) if x.label == after) + 1
        effects.insert(at, replace(e, inference=e.inference + suffix, p_value_adjusted=float(pa)))
    diagnostics["compliance"] = {"method": METHOD, "first_stage": FIRST_STAGE, "critical_f": MOP_CRITICAL_10PCT,
                                 "rows": rows}


def _source_uptake(study: "Study", shape: "MetricShape") -> str:
    """The uptake column as the spec names it (with design.unit the shape holds its unit-level sum)."""
    return next(m.uptake for m in study.design.metrics if m.name == shape.name)


def _arm_detail(arm: str, r: Compliance) -> str:
    if r.cace is None:
        return (f"arm {arm!r}: the same uptake in both arms ({r.uptake_control:.4g}), so no complier effect (the "
                "Wald ratio divides by the uptake difference)")
    verdict = ">=" if r.first_stage_f >= MOP_CRITICAL_10PCT else "<"
    return (f"arm {arm!r}: uptake {r.uptake_treatment:.4g} vs {r.uptake_control:.4g} in control (difference "
            f"{r.difference:.4g}, SE {r.difference_se:.3g}), first-stage F {r.first_stage_f:,.1f} {verdict} "
            f"{MOP_CRITICAL_10PCT:g}")


def _diagnostics_row(shape: "MetricShape", column: str, arm: str, r: Compliance, stats: "Statistics",
                     conf: float) -> dict[str, Any]:
    lower, upper, kind = r.fieller
    binary = stats.not_binary.get(shape.uptake)
    return {"metric": shape.name, "arm": arm, "uptake": column,
            "uptake_is_binary": None if binary is None else binary == 0,
            "uptake_control": r.uptake_control, "uptake_treatment": r.uptake_treatment,
            "uptake_difference": r.difference, "uptake_difference_se": r.difference_se,
            "first_stage_f": r.first_stage_f, "itt": r.itt,
            "cace": None if r.cace is None else r.cace.value,
            "fieller": {"lower": _finite(lower), "upper": _finite(upper), "shape": kind, "conf_level": conf}}


def _finite(v: float) -> float | None:
    return v if math.isfinite(v) else None
