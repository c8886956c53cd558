"""The imputation estimator of Borusyak, Jaravel and Spiess (2024): event-time and overall effects.

* Step 1: unit and period fixed effects (and covariates) are fitted by OLS on the untreated rows (never
  treated, and treated units before their first treated period);
* Step 2: each treated row's effect is its outcome minus the imputed untreated outcome; an estimand is a
  weighted mean of these effects: the overall effect weighs every treated row alike, the event-time effect
  at horizon h every treated row at h alike (as diff-diff's ``ImputationDiD`` and R ``didimputation``);
* standard errors: the conservative clustered variance of the paper's Theorem 3, sum over clusters of
  (sum_it v_it e_it)^2, where v_it is the estimand's weight on a treated row and -A_0 (A_0'A_0)^-1 A_1' w on
  an untreated one, e_it the Step 1 residual on untreated rows and, on treated rows, the effect minus its
  cohort x horizon average weighted by v^2 (the paper's Equation 8, as diff-diff's default partition);
* the normal equations A_0'A_0 are solved by eliminating the unit block (diagonal: each unit's untreated
  row count), leaving a dense system in the periods and covariates, so a 20,000-unit panel is a few
  grouped sums (``bincount``) and one small solve per estimand;
* pre-trend: the paper's test (Section 4.4, Equation 9): on the untreated rows alone, unit and period fixed
  effects plus a dummy per event time before -1, CRV1 on the clusters, joint Wald F(q, G-1) as diff-diff's
  ``pretrend_test``.

Treated rows whose unit or period has no untreated row cannot be imputed: they are left out of every
estimand, with a warning, as diff-diff does (R ``didimputation`` drops them too).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import numpy as np

from causalcli.errors import EstimationError

if TYPE_CHECKING:  # pragma: no cover
    from causalcli.designs.base import Fit
    from causalcli.designs.did.panel import PanelData
    from causalcli.records import Check
    from causalcli.spec.models import Study


@dataclass
class UntreatedSystem:
    """The normal equations of Step 1 with the unit block eliminated (Schur complement)."""

    n_u: np.ndarray      # untreated rows per unit
    B: np.ndarray        # units x (periods - 1 + k): untreated rows per unit and period, covariate sums
    S: np.ndarray        # E - B' diag(1/n_u) B
    cols: np.ndarray     # period index of each period column (the first untreated period has none)
    k: int               # covariates

    def solve(self, rhs_u: np.ndarray, rhs_rest: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """z = (A_0'A_0)^-1 rhs for right-hand sides in columns: (unit part, period and covariate part)."""
        inv_n = np.where(self.n_u > 0, 1.0 / np.maximum(self.n_u, 1), 0.0)
        z_rest = np.linalg.solve(self.S, rhs_rest - self.B.T @ (rhs_u * inv_n[:, None]))
        return (rhs_u - self.B @ z_rest) * inv_n[:, None], z_rest


@dataclass
class Imputed:
    tau: np.ndarray          # effect per treated row (NaN: not imputable)
    treated: np.ndarray      # row mask of the treated rows
    rel: np.ndarray          # event time per treated row (in time units)
    cohort: np.ndarray       # cohort index per treated row
    resid0: np.ndarray       # Step 1 residual per untreated row
    system: UntreatedSystem
    period_col: np.ndarray   # period index -> column in the system (-1: none)
    dropped_rows: int


def _design_rest(p: "PanelData", rows: np.ndarray, period_col: np.ndarray, k: int) -> np.ndarray:
    """Period dummies and covariates of ``rows`` as a dense matrix (periods without a column are zero)."""
    ncols = int(period_col.max()) + 1 if period_col.size else 0
    out = np.zeros((rows.size, ncols + k))
    col = period_col[p.time[rows]]
    has = col >= 0
    out[np.flatnonzero(has), col[has]] = 1.0
    if k:
        out[:, ncols:] = p.X[rows]
    return out


def _untreated_system(p: "PanelData", rows0: np.ndarray) -> tuple[UntreatedSystem, np.ndarray]:
    T = int(p.times.size)
    k = p.X.shape[1]
    n_t = np.bincount(p.time[rows0], minlength=T)
    present = np.flatnonzero(n_t > 0)
    period_col = np.full(T, -1, dtype=np.int64)
    period_col[present[1:]] = np.arange(present.size - 1)  # the first period's effect is in the unit effects
    R = _design_rest(p, rows0, period_col, k)
    u0 = p.unit[rows0]
    n_u = np.bincount(u0, minlength=p.n_units).astype(np.float64)
    B = np.zeros((p.n_units, R.shape[1]))
    for j in range(R.shape[1]):
        B[:, j] = np.bincount(u0, weights=R[:, j], minlength=p.n_units)
    inv_n = np.where(n_u > 0, 1.0 / np.maximum(n_u, 1), 0.0)
    S = R.T @ R - B.T @ (B * inv_n[:, None])
    if S.size and np.linalg.matrix_rank(S) < S.shape[0]:
        raise EstimationError("the untreated rows cannot identify the period effects and covariates of the "
                              "imputation model (a covariate is constant within units or collinear with the "
                              "fixed effects): drop it", key="covariates")
    return UntreatedSystem(n_u, B, S, period_col, k), period_col


def impute(p: "PanelData", g: np.ndarray | None = None) -> Imputed:
    """Steps 1 and 2 for cohorts ``g`` (default: the panel's)."""
    g = p.g if g is None else g
    gr = g[p.unit]
    treated = (gr >= 0) & (p.time >= gr)
    rows0 = np.flatnonzero(~treated)
    rows1 = np.flatnonzero(treated)
    if rows1.size == 0:
        raise EstimationError("no treated row: nothing to impute")
    system, period_col = _untreated_system(p, rows0)
    R0 = _design_rest(p, rows0, period_col, system.k)
    rhs_u = np.bincount(p.unit[rows0], weights=p.y[rows0], minlength=p.n_units)[:, None]
    z_u, z_rest = system.solve(rhs_u, (R0.T @ p.y[rows0])[:, None])
    z_u, z_rest = z_u[:, 0], z_rest[:, 0]
    resid0 = p.y[rows0] - z_u[p.unit[rows0]] - R0 @ z_rest
    R1 = _design_rest(p, rows1, period_col, system.k)
    tau = p.y[rows1] - z_u[p.unit[rows1]] - R1 @ z_rest
    u1, t1 = p.unit[rows1], p.time[rows1]
    imputable = (system.n_u[u1] > 0) & (np.bincount(p.time[rows0], minlength=p.times.size)[t1] > 0)
    tau = np.where(imputable, tau, np.nan)
    rel = p.times[t1] - p.times[gr[rows1]]
    return Imputed(tau, treated, rel, gr[rows1], resid0, system, period_col, int((~imputable).sum()))


def _targets(imp: Imputed) -> tuple[list[tuple[str, float | None]], np.ndarray]:
    """Estimands (label, horizon) and their weights on the treated rows (columns)."""
    ok = np.isfinite(imp.tau)
    horizons = np.unique(imp.rel[ok])
    W = np.zeros((imp.tau.size, horizons.size + 1))
    W[ok, 0] = 1.0 / ok.sum()
    labels: list[tuple[str, float | None]] = [("overall", None)]
    for j, h in enumerate(horizons, start=1):
        m = ok & (imp.rel == h)
        W[m, j] = 1.0 / m.sum()
        labels.append((f"event_time={h:g}", float(h)))
    return labels, W


def standard_errors(p: "PanelData", imp: Imputed, W: np.ndarray) -> np.ndarray:
    """Theorem 3's conservative clustered standard error of each estimand (columns of ``W``)."""
    rows0 = np.flatnonzero(~imp.treated)
    rows1 = np.flatnonzero(imp.treated)
    R1 = _design_rest(p, rows1, imp.period_col, imp.system.k)
    R0 = _design_rest(p, rows0, imp.period_col, imp.system.k)
    rhs_u = np.zeros((p.n_units, W.shape[1]))
    for j in range(W.shape[1]):
        rhs_u[:, j] = np.bincount(p.unit[rows1], weights=W[:, j], minlength=p.n_units)
    z_u, z_rest = imp.system.solve(rhs_u, R1.T @ W)
    v0 = -(z_u[p.unit[rows0]] + R0 @ z_rest)
    # Equation 8: the effect's v^2-weighted average within cohort x horizon (= cohort x period), per estimand
    ok = np.isfinite(imp.tau)
    tau = np.where(ok, imp.tau, 0.0)
    T = int(p.times.size)
    cell = imp.cohort * T + p.time[rows1]
    by_cluster = np.zeros((p.n_clusters, W.shape[1]))
    cl0, cl1 = p.cluster[rows0], p.cluster[rows1]
    for j in range(W.shape[1]):
        v = np.where(ok, W[:, j], 0.0)
        num = np.bincount(cell, weights=v * v * tau, minlength=T * T)
        den = np.bincount(cell, weights=v * v, minlength=T * T)
        tilde = np.divide(num, den, out=np.zeros_like(num), where=den > 1e-300)
        by_cluster[:, j] = (np.bincount(cl1, weights=v * (tau - tilde[cell]), minlength=p.n_clusters)
                            + np.bincount(cl0, weights=v0[:, j] * imp.resid0, minlength=p.n_clusters))
    return np.sqrt((by_cluster ** 2).sum(axis=0))


def point_imputation(p: "PanelData", g: np.ndarray) -> float:
    """The overall effect with cohorts ``g`` (refuters)."""
    imp = impute(p, g)
    return float(np.nanmean(imp.tau))


def pre_trend(p: "PanelData", study: "Study", diag: dict) -> "Check":
    """The paper's pre-trend test: lead dummies on the untreated rows with the two-way fixed effects."""
    from causalcli.designs.did.pre_trend import leads_test, not_run, unusable_leads
    from causalcli.designs.did.regression import fixed_effects
    from causalcli.inference.cluster_robust import ols_crv1

    gr = p.g[p.unit]
    rows0 = np.flatnonzero(~((gr >= 0) & (p.time >= gr)))
    ever = gr[rows0] >= 0
    rel = np.where(ever, p.times[p.time[rows0]] - p.times[np.maximum(gr[rows0], 0)], 0.0)
    leads = [int(e) if float(e).is_integer() else float(e) for e in np.unique(rel[ever & (rel < -1)])]  # -1 is the reference, as diff-diff
    if not leads:
        return not_run(diag, "no treated unit is observed before its treatment beyond the reference period -1")
    D = np.column_stack([((gr[rows0] >= 0) & (rel == e)).astype(np.float64) for e in leads])
    fe = []
    for codes, _ in fixed_effects(p):  # recoded: a period may have no untreated row
        levels, code = np.unique(codes[rows0], return_inverse=True)
        fe.append((code.ravel(), int(levels.size)))
    try:
        fit = ols_crv1(p.y[rows0], np.column_stack([D, p.X[rows0]]), [f"lead_{-e:g}" for e in leads] +
                       list(p.xnames), (p.cluster[rows0], p.n_clusters), fe, None, p.options.tolerance)
    except (EstimationError, np.linalg.LinAlgError) as exc:
        return not_run(diag, f"the pre-trend regression cannot be estimated ({exc})")
    pre = list(range(len(leads)))
    unusable = unusable_leads(fit, pre)
    if unusable is not None:
        return not_run(diag, unusable)
    return leads_test(fit, pre, leads, study.thresholds.alpha, "joint Wald test of {q} leads on the untreated "
                      "rows (Borusyak, Jaravel and Spiess 2024, Section 4.4)", diag,
                      source="untreated rows only: unit and period fixed effects plus a dummy per event time "
                             "before -1 (the reference), CRV1 on the clusters; diff-diff ImputationDiD.pretrend_test",
                      coefficients={f"event_time={e:g}": float(fit.coef[j]) for j, e in enumerate(leads)})


def fit_imputation(p: "PanelData", study: "Study", seed: int) -> "Fit":
    from causalcli.designs.base import Fit
    from causalcli.inference.estimate import normal_estimate

    imp = impute(p)
    labels, W = _targets(imp)
    if len(labels) < 2:
        raise EstimationError("no treated row can be imputed: every treated unit or period lacks untreated rows")
    ok = np.isfinite(imp.tau)
    values = np.where(ok, imp.tau, 0.0) @ W
    ses = standard_errors(p, imp, W)
    conf = study.conf_level
    # the headline names its aggregation: diff-diff's overall_att (every imputable treated row alike)
    estimate = normal_estimate(float(values[0]), float(ses[0]), conf, "imputation_conservative_clustered_overall_att")
    effects = [normal_estimate(float(v), float(s), conf, "imputation_conservative_clustered", lab)
               for (lab, _), v, s in zip(labels[1:], values[1:], ses[1:])]
    warnings = list(p.warnings)
    if imp.dropped_rows:
        warnings.append(f"{imp.dropped_rows} treated rows cannot be imputed (their unit or period has no untreated "
                        "row) and are left out of every estimate, as diff-diff's ImputationDiD")
    horizons = [h for _, h in labels[1:]]
    counts = [int((ok & (imp.rel == h)).sum()) for h in horizons]
    post_mean = float(np.mean(values[1:]))
    diagnostics: dict[str, Any] = {
        "panel": p.panel,
        "imputation": {
            "headline": "overall: every imputable treated row weighted alike (diff-diff ImputationDiD.overall_att, "
                        "R didimputation's default, fixest-style observation weighting)",
            "event_time": "each horizon: its treated rows weighted alike",
            "untreated_rows": int((~imp.treated).sum()), "treated_rows": int(imp.treated.sum()),
            "treated_rows_not_imputable": imp.dropped_rows,
            "covariates": list(p.xnames), "cluster": p.cluster_name, "clusters": p.n_clusters,
            "standard_errors": "conservative clustered variance, Borusyak, Jaravel and Spiess (2024) Theorem 3, "
                               "auxiliary residuals by cohort x horizon (Equation 8); normal p-values",
            "treated_rows_by_horizon": {lab: c for (lab, _), c in zip(labels[1:], counts)},
        },
        "aggregations": {
            "observations": {"att": float(values[0]), "std_error": float(ses[0])},
            "event_time_average": {"att": post_mean, "note": "plain mean of the event-time effects (as "
                                   "Callaway-Sant'Anna's dynamic aggregation); no standard error"},
        },
    }
    checks = [pre_trend(p, study, diagnostics)]
    if p.options.honest_did:
        # the leads come from a separate regression on the untreated rows, with no joint covariance with the
        # imputed effects: the event study HonestDiD needs (estimates and covariance together) does not exist
        diagnostics.setdefault("sensitivity", {})["honest_did"] = {
            "skipped": "the imputation estimator has no pre-period effects estimated jointly with its post-period "
                       "effects (its pre-trend test is a separate regression on the untreated rows); use "
                       "estimator: sun_abraham or callaway_santanna for honest-DiD sets"}
    nn = dict(p.n)
    nn.update({"used": int(p.y.size), "treated_rows": int(imp.treated.sum())})
    return Fit("imputation", "att", estimate, nn, effects=effects, diagnostics=diagnostics, checks=checks,
               warnings=warnings)

