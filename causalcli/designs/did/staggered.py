"""The imputation and Sun-Abraham estimators' entry points: spec checks, dispatch and the refuters' point.

Both estimate event-time effects and an overall effect for staggered, absorbing adoption (``imputation``,
``sun_abraham``); the pre-trend test and, for Sun-Abraham's event study, the honest-DiD sets come with them.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np

from causalcli.errors import SpecError

if TYPE_CHECKING:  # pragma: no cover
    from causalcli.designs.base import Fit
    from causalcli.records import Check
    from causalcli.designs.did.panel import PanelData
    from causalcli.spec.models import Study

STAGGERED = ("imputation", "sun_abraham")


def check_staggered_spec(study: "Study", file: str) -> None:
    """Keys the two estimators do not take: one line each, exit 2."""
    d = study.design
    if study.weights:
        raise SpecError(f"weights are not built yet for estimator: {d.estimator}; remove 'weights' or use "
                        "estimator: callaway_santanna", file=file, key="weights")
    o = d.options
    if o.control_group != "never_treated":
        why = ("imputation fits its model on every untreated row, never and not-yet treated alike, by construction"
               if d.estimator == "imputation" else "Sun and Abraham's controls are the never-treated units")
        raise SpecError(f"control_group: {o.control_group} does not apply to estimator: {d.estimator} ({why}); "
                        "remove design.options.control_group", file=file, key="design.options.control_group")
    if o.aggregation != "simple":
        raise SpecError(f"aggregation: {o.aggregation} is a Callaway-Sant'Anna option; estimator: {d.estimator} "
                        "reports the overall effect as its estimate and the event-time effects in effects",
                        file=file, key="design.options.aggregation")
    if d.options.bootstrap != "none":
        raise SpecError(f"bootstrap: {d.options.bootstrap} does not apply to estimator: {d.estimator} (analytic "
                        "standard errors only); remove design.options.bootstrap", file=file,
                        key="design.options.bootstrap")


def fit_staggered(p: "PanelData", study: "Study", seed: int) -> "Fit":
    from dataclasses import replace

    if p.estimator == "imputation":
        from causalcli.designs.did.imputation import fit_imputation

        fit = fit_imputation(p, study, seed)
    else:
        from causalcli.designs.did.sun_abraham import fit_sun_abraham

        fit = fit_sun_abraham(p, study, seed)
    return _with_few_clusters(p, fit, study, seed)


def _with_few_clusters(p: "PanelData", fit: "Fit", study: "Study", seed: int) -> "Fit":
    """``diagnostics.clusters`` and the ``clusters`` check; with few (treated) clusters the headline's p-value and
    interval come from randomization inference over units (both estimators are linear in the outcome, so the test
    of a constant effect inverts exactly), and the event-time effects lose theirs, as Callaway-Sant'Anna's do."""
    from dataclasses import replace

    from causalcli.designs.did.clusters import RI, apply

    est, diag, check, warns = apply(p, estimate=fit.estimate, n_obs=None, k=None, conf_level=study.conf_level,
                                    draws=p.options.draws, seed=seed, wild=None,
                                    point=lambda q, treatment: point_staggered(q, treatment),
                                    analytic_name=fit.estimate.inference)
    fit.diagnostics["clusters"] = diag
    effects, warnings = fit.effects, [*fit.warnings, *warns]
    if est.std_error is None:
        effects = [replace(e, std_error=None, ci_lower=None, ci_upper=None, p_value=None, inference="none")
                   for e in effects]
    elif diag.get("method") == RI:
        effects = [replace(e, ci_lower=None, ci_upper=None, p_value=None, inference="none") for e in effects]
        warnings.append(f"estimator: {p.estimator}'s event-time effects carry their analytic standard errors but no "
                        "p-value or interval: with this few (treated) clusters the analytic inference cannot be "
                        "trusted, and randomization inference is run for the headline only")
    checks = list(fit.checks)
    if check.passed is not True:  # few clusters: the pre-trend Wald test is CRV1 too
        checks = [_pre_trend_for_clusters(c, p, fit.diagnostics) for c in checks]
    return replace(fit, estimate=est, effects=effects, warnings=warnings, checks=[*checks, check])


def _pre_trend_for_clusters(check: "Check", p: "PanelData", diag: dict) -> "Check":
    """The pre-trend test is a CRV1 Wald test: with one treated (or untreated) cluster it over-rejects as the
    headline t-test does, so it is reported but not judged, as for twfe (``pre_trend.judged_for_clusters``); with
    few clusters otherwise it carries the caveat."""
    from causalcli.checks.pretrend import not_judged, with_caveat
    from causalcli.designs.did.clusters import cluster_counts

    if check.name != "pre_trend" or check.passed is None:
        return check
    if min(cluster_counts(p)) == 1:
        if isinstance(diag.get("pre_trend"), dict):
            diag["pre_trend"]["passed"] = None
            diag["pre_trend"]["not_judged"] = "one treated (or untreated) cluster: the CRV1 Wald test cannot be trusted"
        return not_judged(check, "with one treated (or untreated) cluster this CRV1 test over-rejects, as the "
                                 "headline's standard errors do (see the warnings); look at the leads in "
                                 "diagnostics.pre_trend")
    return with_caveat(check, "a CRV1 test: with few clusters it tends to over-reject (see the warnings)")


def point_staggered(p: "PanelData", g: np.ndarray) -> float:
    if p.estimator == "imputation":
        from causalcli.designs.did.imputation import point_imputation

        return point_imputation(p, g)
    from causalcli.designs.did.sun_abraham import point_sun_abraham

    return point_sun_abraham(p, g)
