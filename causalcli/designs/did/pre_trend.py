"""The pre-trend test of the regressions: a joint Wald test of the event-study leads.

The event study tests its own leads. 2x2, plain TWFE and event studies without leads run an auxiliary event
study (``auxiliary_pre_trend``): unit and period fixed effects, every pre-treatment period as a lead (-L..-2,
L the longest pre-period of any cohort, so nothing is binned), -1 the reference, post periods 0..K (K the
longest post-period, or the event study's own lags), the same covariates, weights and clusters (CRV1). The
joint Wald test of the leads is F = W/q against F(q, G-1), as fixest's ``wald``. The wording and the verdict
are the shared ``causalcli.checks.pretrend``; with few clusters the test is reported but not judged.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np

from causalcli.checks.pretrend import not_judged, pre_trend_check, pre_trend_not_run, with_caveat
from causalcli.designs.did.panel import PanelData, subset_units
from causalcli.designs.did.regression import event_dummies, regress, standard_error
from causalcli.errors import EstimationError

if TYPE_CHECKING:  # pragma: no cover
    from causalcli.inference.cluster_robust import OlsFit
    from causalcli.records import Check
    from causalcli.spec.models import Study


def unusable_leads(fit: "OlsFit", pre: list[int]) -> str | None:
    """Why a Wald test of the leads cannot be trusted to mean anything (no inference, or a zero or near-zero SE)."""
    from causalcli.designs.did.clusters import no_inference_reason
    from causalcli.inference.estimate import unusable_se_reason

    reason = no_inference_reason(fit.clusters, fit.n, fit.df_k)
    if reason is not None:
        return reason
    for j in pre:
        why = unusable_se_reason(standard_error(float(fit.vcov[j, j])), float(fit.coef[j]))
        if why is not None:
            return f"a lead's standard error cannot be used: {why}"
    return None


def not_run(diag: dict, reason: str) -> "Check":
    diag["pre_trend"] = {"passed": None, "reason": reason}
    return pre_trend_not_run(reason)


def leads_test(fit: "OlsFit", pre: list[int], rel: list[int], alpha: float, test: str, diag: dict,
               **recorded) -> "Check":
    """The joint Wald test of the leads ``pre`` (coefficient indices) and its check, judged for the clusters.

    ``diagnostics.pre_trend`` gets the test, the verdict, the leads and ``recorded``.
    """
    from causalcli.inference.estimate import wald_f

    result = wald_f(fit.coef[pre], fit.vcov[np.ix_(pre, pre)], fit.df_t)
    check = pre_trend_check(result["statistic"], result["p_value"], alpha, test.format(q=len(pre)))
    diag["pre_trend"] = {**result, "passed": check.passed, "leads": [rel[j] for j in pre], **recorded}
    return judged_for_clusters(check, diag)


def judged_for_clusters(check: "Check", diag: dict) -> "Check":
    """The pre-trend Wald test is a CRV1 test: with one treated cluster it over-rejects as badly as the headline
    t-test would (MacKinnon and Webb 2017), so it is reported but not judged; with few clusters it says so."""
    method = diag.get("clusters", {}).get("method", "crv1_fixest")
    if method == "randomization_inference_units":
        diag["pre_trend"]["passed"] = None
        diag["pre_trend"]["not_judged"] = "one treated cluster: the CRV1 Wald test cannot be trusted"
        return not_judged(check, "with one treated cluster this CRV1 test over-rejects (see the clusters check); "
                                 "look at the leads in diagnostics.pre_trend")
    if method.startswith("wild_cluster_bootstrap"):
        return with_caveat(check, "a CRV1 test: with few clusters it tends to over-reject, see the clusters check")
    return check


def _auxiliary_fit(p: PanelData, leads: int, k: int) -> tuple["OlsFit", list[int]]:
    """The auxiliary event study with leads -leads..-2 and lags 0..k, and its relative periods."""
    T = int(p.times.size)
    if p.w is None and p.y.size == p.n_units * T and p.cells is None:
        # balanced, unweighted: the dummies depend on cohort x period only; demeaned on that table
        from types import SimpleNamespace

        from causalcli.inference.cluster_robust import ols_crv1_cells

        present = np.unique(p.g)
        cells = np.arange(present.size * T)
        D, _, rel = event_dummies(SimpleNamespace(unit=cells // T, time=cells % T), present, leads, k)
        cell = np.searchsorted(present, p.g)[p.unit] * T + p.time
        fit = ols_crv1_cells(p.y, p.X, list(p.xnames), cell, D, [f"event_{e}" for e in rel],
                             (p.cluster, p.n_clusters), (p.unit, p.n_units), (p.time, T), p.options.tolerance)
        return fit, rel
    D, _, rel = event_dummies(p, p.g, leads, k)
    X = np.column_stack([D, p.X])
    return regress(p, X, [f"event_{e}" for e in rel] + list(p.xnames), fe=True), rel


def auxiliary_pre_trend(p: PanelData, study: "Study", diag: dict, lags: int | None = None) -> "Check":
    """``pre_trend`` for 2x2, plain TWFE and event studies without leads: the auxiliary event study (module
    docstring), recorded in ``diagnostics.pre_trend`` with its source."""
    if p.d is not None:
        return not_run(diag, "the treatment switches off, so units have no single event time to build leads from")
    always = int((p.g == 0).sum())
    if always:
        # units treated in every period have no pre-period: they carry no lead, and their event time is unknown
        p = subset_units(p, np.flatnonzero(p.g != 0), p.g)[0]
    cohorts = p.g[p.g >= 0]
    if cohorts.size == 0:
        return not_run(diag, "no treated unit")
    leads = int(cohorts.max())  # periods before the latest first treated period
    if leads < 2:
        return not_run(diag, "one pre-treatment period only: the reference period -1, nothing to test against it")
    horizon = int(p.times.size - 1 - cohorts.min())
    k = horizon if lags is None else min(lags, horizon)
    effects = "group" if p.cross_sections else "unit"  # repeated cross-sections: unit effects absorb every row
    source = (f"auxiliary event study: {effects} and period fixed effects, leads -{leads}..-2 (every pre-treatment "
              f"period), reference -1, lags 0..{k}{' (binned)' if k < horizon else ''}, the same covariates, "
              + ("weights and standard errors (HC1)" if p.hc1 else "weights and clusters (CRV1)")
              + (f"; the {always} units treated in every period are left out (no pre-period)" if always else ""))
    try:
        fit, rel = _auxiliary_fit(p, leads, k)
        pre = [j for j, e in enumerate(rel) if e < 0]
        if not pre:
            return not_run(diag, "no unit is observed before its treatment beyond the reference period")
        unusable = unusable_leads(fit, pre)
        if unusable is not None:
            return not_run(diag, unusable)
        return leads_test(fit, pre, rel, study.thresholds.alpha, "joint Wald test of {q} leads in an auxiliary "
                          "event study (every pre-period, reference -1)", diag, source=source,
                          coefficients={f"event_time={rel[j]}": float(fit.coef[j]) for j in pre})
    except (EstimationError, np.linalg.LinAlgError) as exc:
        why = exc.message if isinstance(exc, EstimationError) else exc
        return not_run(diag, f"the auxiliary event study cannot be estimated ({why})")

