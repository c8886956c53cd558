"""Two-way fixed effects: the TWFE coefficient of the treatment, and the event study.

* ``twfe``: y on the treatment with unit and time fixed effects absorbed (``causalcli.models.fixed_effects``);
  on/off treatments are used as given. Staggered adoption adds the Goodman-Bacon decomposition (``bacon``).
* with ``event_study``: one coefficient per relative period -leads..-2 and 0..lags (end points binned, -1 the
  reference); the estimate is the average of the post-treatment coefficients, the leads are tested jointly
  (``pre_trend``) and feed the honest-DiD sets (``honest``).
"""

from __future__ import annotations

from dataclasses import replace
from typing import TYPE_CHECKING

import numpy as np

from causalcli.designs.base import Fit
from causalcli.designs.did.bacon import staggered_adoption
from causalcli.designs.did.panel import PanelData
from causalcli.designs.did.pre_trend import auxiliary_pre_trend, leads_test, not_run, unusable_leads
from causalcli.designs.did.regression import (event_dummies, headline, panel_diagnostics, regress, standard_error,
                                              treatment_column, unit_vector, used_n, wild_bootstrap)
from causalcli.errors import EstimationError

if TYPE_CHECKING:  # pragma: no cover
    from causalcli.inference.cluster_robust import OlsFit
    from causalcli.records import Check, Estimate
    from causalcli.spec.models import Study


def fit_twfe(p: PanelData, study: "Study", seed: int) -> Fit:
    X = np.column_stack([treatment_column(p, p.g), p.X])
    names = ["treatment", *p.xnames]
    fit = regress(p, X, names, fe=True)
    est, cdiag, ccheck, cwarn = headline(p, fit, unit_vector(X.shape[1], 0), X, True, study, seed)
    diag = panel_diagnostics(p, fit)
    diag["coefficients"] = {nm: float(b) for nm, b in zip(names, fit.coef)}
    diag["clusters"] = cdiag
    warnings = [*p.warnings, *cwarn]
    checks: list[Check] = [auxiliary_pre_trend(p, study, diag), ccheck]
    staggered_adoption(p, diag, warnings)
    return Fit("twfe", "att", est, used_n(p, fit.n), diagnostics=diag, checks=checks, warnings=warnings)


def fit_event_study(p: PanelData, study: "Study", seed: int) -> Fit:
    from causalcli.inference.estimate import t_estimate

    D, labels, rel = event_dummies(p, p.g, p.leads, p.lags)
    X = np.column_stack([D, p.X])
    names = [f"event_{e}" for e in rel] + list(p.xnames)
    fit = regress(p, X, names, fe=True)
    m = len(rel)
    effects = [t_estimate(fit.coef[j], standard_error(float(fit.vcov[j, j])), fit.df_t, study.conf_level,
                          "crv1_fixest", lab) for j, lab in enumerate(labels)]
    post = [j for j, e in enumerate(rel) if e >= 0]
    pre = [j for j, e in enumerate(rel) if e < 0]
    if not post:
        raise EstimationError("the event study has no post-treatment period in the data")
    a = np.zeros(X.shape[1])
    a[post] = 1.0 / len(post)
    est, cdiag, ccheck, cwarn = headline(p, fit, a, X, True, study, seed)
    effects = few_cluster_effects(p, fit, X, effects, cdiag, cwarn, study, seed)
    diag = panel_diagnostics(p, fit)
    diag["clusters"] = cdiag
    wanted = [e for e in range(-p.leads, -1) if p.leads >= 2] + list(range(0, p.lags + 1))
    diag["event_study"] = {"reference_period": -1, "leads": p.leads, "lags": p.lags,
                           "relative_periods": rel,
                           "relative_periods_without_data": [e for e in wanted if e not in rel],
                           "binned": {"first": f"<= {rel[0]}" if rel[0] < 0 else None, "last": f">= {rel[-1]}"},
                           "estimate": f"average of the {len(post)} post-treatment coefficients 0..{rel[post[-1]]}"}
    checks = [ccheck]
    unusable = unusable_leads(fit, pre) if pre else None
    if pre and unusable is not None:
        checks.insert(0, not_run(diag, unusable))
        if p.options.honest_did:
            diag.setdefault("sensitivity", {})["honest_did"] = {"skipped": unusable}
    elif pre:
        checks.insert(0, leads_test(fit, pre, rel, study.thresholds.alpha, "joint Wald test of {q} leads", diag))
        if p.options.honest_did:
            from causalcli.designs.did.honest import relative_magnitude_sets

            diag.setdefault("sensitivity", {})["honest_did"] = relative_magnitude_sets(
                fit.coef[:m], fit.vcov[:m, :m], rel, study.conf_level)
    else:
        checks.insert(0, auxiliary_pre_trend(p, study, diag, lags=p.lags))
    warnings = [*p.warnings, *cwarn]
    staggered_adoption(p, diag, warnings)
    return Fit("twfe_event_study", "att", est, used_n(p, fit.n), effects=effects, diagnostics=diag,
               checks=checks, warnings=warnings)


def few_cluster_effects(p: PanelData, fit: "OlsFit", X: np.ndarray, effects: list["Estimate"], cdiag: dict,
                        warnings: list[str], study: "Study", seed: int) -> list["Estimate"]:
    """Event-time effects under the headline's few-cluster rule: wild bootstrap p and interval per effect when
    the headline uses it; none (with a warning) when it uses randomization inference or has no inference."""
    method = cdiag.get("method", "crv1_fixest")
    if method == "crv1_fixest":
        return effects
    if method.startswith("wild_cluster_bootstrap"):
        rows = wild_bootstrap(p, X, True, [unit_vector(X.shape[1], j) for j in range(len(effects))], fit.vcov,
                              study.conf_level, seed, cdiag["wild"]["weights"])
        return [replace(e, p_value=r["p_value"], ci_lower=r["ci_lower"], ci_upper=r["ci_upper"],
                        inference=method if r["p_value"] is not None else "none") for e, r in zip(effects, rows)]
    if method == "none":
        return [replace(e, std_error=None, p_value=None, ci_lower=None, ci_upper=None, inference="none")
                for e in effects]
    warnings.append("event-time effects carry their CRV1 standard errors but no p-value or interval: with one "
                    "treated cluster neither CRV1 t nor the wild bootstrap can be trusted, and randomization "
                    "inference is run for the headline average only")
    return [replace(e, p_value=None, ci_lower=None, ci_upper=None, inference="none") for e in effects]
