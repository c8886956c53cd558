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
    few = few_clusters_warning(p)
    if not few:
        return fit
    return replace(fit, warnings=[*fit.warnings, few], checks=[_pre_trend_for_clusters(c, p, fit.diagnostics)
                                                               for c in fit.checks])


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


def few_clusters_warning(p: "PanelData") -> str | None:
    """These estimators have analytic cluster-robust SEs only: with few (treated) clusters they say so."""
    from causalcli.designs.did.clusters import MIN_CLUSTERS, MIN_TREATED_CLUSTERS, cluster_counts

    treated, untreated = cluster_counts(p)
    if p.n_clusters >= MIN_CLUSTERS and min(treated, untreated) >= MIN_TREATED_CLUSTERS:
        return None
    return (f"{p.n_clusters} clusters ({treated} treated, {untreated} not): the analytic cluster-robust standard "
            f"errors of estimator: {p.estimator} tend to be too small below about {MIN_CLUSTERS} clusters or "
            f"{MIN_TREATED_CLUSTERS} treated ones, and no few-cluster correction is built for it yet; "
            "twfe and callaway_santanna have one")


def point_staggered(p: "PanelData", g: np.ndarray) -> float:
    if p.estimator == "imputation":
        from causalcli.designs.did.imputation import point_imputation

        return point_imputation(p, g)
    from causalcli.designs.did.sun_abraham import point_sun_abraham

    return point_sun_abraham(p, g)
