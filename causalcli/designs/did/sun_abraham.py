"""Sun and Abraham (2021): the interaction-weighted event study.

* one regression: y on a dummy per cohort x event time (every event time a cohort has except -1, the
  reference; nothing binned) with unit and period fixed effects, never-treated units the only controls;
  CRV1 on the clusters with fixest's small-sample corrections (``causalcli.inference.cluster_robust``);
* the event-time effect at e averages the cohorts' coefficients at e with weights their shares of the
  treated rows at e; its standard error is w'Vw (the weights taken as known), as diff-diff's ``SunAbraham``
  and ``fixest::sunab``;
* the overall effect averages the post-treatment event-time effects (e >= 0) with weights their treated
  rows: every treated row after adoption weighted alike, which is diff-diff's ``overall_att`` and fixest's
  ``aggregate(..., "att")`` alike;
* the leads (e <= -2) are tested jointly (F = W/q against F(q, G-1), the pre-trend check) and, with the post
  effects, feed the honest-DiD sets; p-values and intervals from t on the residual degrees of freedom, as
  diff-diff.
"""

from __future__ import annotations

from types import SimpleNamespace
from typing import TYPE_CHECKING, Any

import numpy as np

from causalcli.errors import DataError, EstimationError

if TYPE_CHECKING:  # pragma: no cover
    from causalcli.designs.base import Fit
    from causalcli.designs.did.panel import PanelData
    from causalcli.inference.cluster_robust import OlsFit
    from causalcli.spec.models import Study


def _interactions(p: "PanelData", g: np.ndarray, unit: np.ndarray, time: np.ndarray):
    """Dummy matrix of cohort x event time for the rows (unit, time), and the (cohort, event time) pairs."""
    gr = g[unit]
    rel = np.where(gr >= 0, p.times[time] - p.times[np.maximum(gr, 0)], np.nan)
    pairs = [(c, e) for c in np.unique(g[g >= 0]) for e in np.unique(rel[gr == c]) if e != -1]
    # event time -1 is the reference; elsewhere in time units (years as years, dates as days)
    if not pairs:
        raise EstimationError("no cohort has an event time other than the reference -1")
    D = np.column_stack([((gr == c) & (rel == e)).astype(np.float64) for c, e in pairs])
    return D, pairs


def saturated_fit(p: "PanelData", g: np.ndarray) -> tuple["OlsFit", list[tuple[int, float]], np.ndarray]:
    """The cohort x event time regression; also the treated rows per pair."""
    from causalcli.designs.did.regression import regress

    if not (g < 0).any():
        raise DataError("sun_abraham needs never-treated units as controls (Sun and Abraham's control cohort) and "
                        "the panel has none; use estimator: imputation or callaway_santanna with control_group: "
                        "not_yet_treated", key="design.cohort")
    T = int(p.times.size)
    names_of = (lambda pairs: [f"cohort{c}_e{e:g}" for c, e in pairs])
    if p.y.size == p.n_units * T and p.w is None:
        # balanced: the dummies depend on cohort x period only; demeaned on that table
        from causalcli.inference.cluster_robust import ols_crv1_cells

        present = np.unique(g)
        cells = np.arange(present.size * T)
        table, pairs = _interactions(p, present, cells // T, cells % T)
        cell = np.searchsorted(present, g)[p.unit] * T + p.time
        fit = ols_crv1_cells(p.y, p.X, list(p.xnames), cell, table, names_of(pairs), (p.cluster, p.n_clusters),
                             (p.unit, p.n_units), (p.time, T), p.options.tolerance)
        counts = np.bincount(cell, minlength=cells.size) @ table
        return fit, pairs, counts
    D, pairs = _interactions(p, g, p.unit, p.time)
    fit = regress(p, np.column_stack([D, p.X]), names_of(pairs) + list(p.xnames), fe=True)
    # treated rows per pair; on the engine's cells (``cells_regression``) a row is a cohort's cell
    return fit, pairs, D.sum(axis=0) if p.cells is None else np.repeat(p.cells.counts, T) @ D


def interaction_weights(pairs: list[tuple[int, float]], counts: np.ndarray) -> tuple[list[float], np.ndarray]:
    """Event times and the matrix (event times x pairs) of cohort shares within each event time."""
    events = sorted({e for _, e in pairs})
    A = np.zeros((len(events), len(pairs)))
    for j, (_, e) in enumerate(pairs):
        A[events.index(e), j] = counts[j]
    A /= A.sum(axis=1, keepdims=True)
    return [float(e) for e in events], A


def _overall_weights(events: list[float], A: np.ndarray, pairs, counts: np.ndarray) -> np.ndarray:
    """Weights on the pairs of the overall effect: post event times by their treated rows."""
    n_e = np.array([counts[[j for j, (_, e) in enumerate(pairs) if e == ev]].sum() for ev in events])
    post = np.array(events) >= 0
    if not post.any():
        raise EstimationError("no cohort is observed after its treatment starts")
    share = np.where(post, n_e, 0.0) / n_e[post].sum()
    return share @ A


def point_sun_abraham(p: "PanelData", g: np.ndarray) -> float:
    fit, pairs, counts = saturated_fit(p, g)
    events, A = interaction_weights(pairs, counts)
    return float(_overall_weights(events, A, pairs, counts) @ fit.coef[:len(pairs)])


def fit_sun_abraham(p: "PanelData", study: "Study", seed: int) -> "Fit":
    from causalcli.designs.base import Fit
    from causalcli.designs.did.regression import panel_diagnostics, used_n
    from causalcli.inference.estimate import t_estimate

    fit, pairs, counts = saturated_fit(p, p.g)
    m = len(pairs)
    events, A = interaction_weights(pairs, counts)
    b, V = fit.coef[:m], fit.vcov[:m, :m]
    beta = A @ b
    Vbeta = A @ V @ A.T
    w_all = _overall_weights(events, A, pairs, counts)
    conf = study.conf_level
    se = float(np.sqrt(max(w_all @ V @ w_all, 0.0)))
    # t on the residual degrees of freedom (rows - unit and period effects - regressors), as diff-diff
    df_resid = int(fit.n - (p.n_units + p.times.size - 1) - fit.coef.size)
    # the headline names its aggregation: diff-diff's overall_att (post event times by their treated rows)
    estimate = t_estimate(float(w_all @ b), se, df_resid, conf, "sun_abraham_crv1_overall_att")
    effects = [t_estimate(float(v), float(np.sqrt(max(Vbeta[i, i], 0.0))), df_resid, conf, "sun_abraham_crv1",
                          f"event_time={e:g}") for i, (e, v) in enumerate(zip(events, beta))]
    post = np.array(events) >= 0
    diag: dict[str, Any] = panel_diagnostics(p, fit)
    diag["sun_abraham"] = {
        "reference_period": -1, "control": "never-treated units",
        "headline": "overall: the post-treatment event-time effects weighted by their treated rows (diff-diff "
                    "SunAbraham.overall_att; the same as fixest's aggregate(..., 'att'), observation-weighted)",
        "event_time": "cohort coefficients weighted by the cohort's share of the treated rows at that event time",
        "interactions": m, "t_df": df_resid,
        "cohort_weights": {f"event_time={e:g}": {_cohort_label(p, c): float(A[i, j]) for j, (c, ev) in
                                                   enumerate(pairs) if ev == e} for i, e in enumerate(events)},
    }
    diag["aggregations"] = {
        "observations": {"att": estimate.value, "std_error": se},
        "event_time_average": {"att": float(beta[post].mean()),
                               "std_error": float(np.sqrt(max(np.full(post.sum(), 1 / post.sum()) @
                                                              Vbeta[np.ix_(post, post)] @
                                                              np.full(post.sum(), 1 / post.sum()), 0.0))),
                               "note": "plain mean of the post-treatment event-time effects"},
    }
    rel = [int(round(e)) for e in events]
    checks = [_pre_trend(beta, Vbeta, rel, fit, study, diag)]
    if p.options.honest_did:
        if "reason" in diag.get("pre_trend", {}):
            diag.setdefault("sensitivity", {})["honest_did"] = {"skipped": diag["pre_trend"]["reason"]}
        else:
            from causalcli.designs.did.honest import relative_magnitude_sets

            diag.setdefault("sensitivity", {})["honest_did"] = relative_magnitude_sets(
                beta, Vbeta, rel, conf, inputs="Sun-Abraham interaction-weighted event study, levels relative to "
                                               "event time -1 (omitted)")
    return Fit("sun_abraham", "att", estimate, used_n(p, fit.n), effects=effects, diagnostics=diag,
               checks=checks, warnings=list(p.warnings))


def _cohort_label(p: "PanelData", c: int) -> str:
    from causalcli.data.types import period_text

    return period_text(p.times[c], p.time_labels)


def _pre_trend(beta: np.ndarray, Vbeta: np.ndarray, rel: list[int], fit: "OlsFit", study: "Study", diag: dict):
    """Joint Wald test of the interaction-weighted leads, F = W/q against F(q, G-1)."""
    from causalcli.designs.did.pre_trend import leads_test, not_run, unusable_leads

    pre = [j for j, e in enumerate(rel) if e < 0]
    if not pre:
        return not_run(diag, "no event time before -1: nothing to test against the reference period")
    lead_fit = SimpleNamespace(coef=beta, vcov=Vbeta, clusters=fit.clusters, n=fit.n, df_k=fit.df_k,
                               df_t=fit.df_t)
    unusable = unusable_leads(lead_fit, pre)
    if unusable is not None:
        return not_run(diag, unusable)
    return leads_test(lead_fit, pre, rel, study.thresholds.alpha, "joint Wald test of {q} interaction-weighted "
                      "leads (Sun and Abraham 2021)", diag)
