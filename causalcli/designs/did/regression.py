"""The regressions behind 2x2, TWFE and the event study: design matrices, the CRV1 fit, the headline's
inference and the point estimate the refuters and randomization inference recompute.

Standard errors are CRV1 on ``cluster`` (default: the unit) with fixest's small-sample corrections and t(G-1)
p-values (``causalcli.inference.cluster_robust``); with few clusters the headline's p-value and interval come from
the wild cluster bootstrap or randomization inference (``causalcli.designs.did.clusters``).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np

from causalcli.designs.did.panel import PanelData
from causalcli.errors import EstimationError

if TYPE_CHECKING:  # pragma: no cover
    from causalcli.inference.cluster_robust import OlsFit
    from causalcli.records import Check, Estimate
    from causalcli.spec.models import Study


def unit_vector(k: int, j: int) -> np.ndarray:
    a = np.zeros(k)
    a[j] = 1.0
    return a


def fixed_effects(p: PanelData) -> list[tuple[np.ndarray, int]]:
    """Unit and period fixed effects (codes, levels); for repeated cross-sections, whose unit effects would
    absorb every row, group (treated or comparison) and period effects."""
    if p.cross_sections:
        return [((p.g[p.unit] >= 0).astype(np.int64), 2), (p.time, int(p.times.size))]
    return [(p.unit, p.n_units), (p.time, int(p.times.size))]


def treatment_column(p: PanelData, g: np.ndarray) -> np.ndarray:
    """The row treatment: the on/off column as given for the actual cohorts, else 1(time >= first treated)."""
    if p.d is not None and g is p.g:
        return p.d
    gr = g[p.unit]
    return ((gr >= 0) & (p.time >= gr)).astype(np.float64)


def design_2x2(p: PanelData, g: np.ndarray) -> tuple[np.ndarray, list[str]]:
    gr = g[p.unit]
    treated = (gr >= 0).astype(np.float64)
    start = int(np.min(g[g >= 0])) if (g >= 0).any() else 0
    post = (p.time >= start).astype(np.float64)
    X = np.column_stack([np.ones_like(treated), treated, post, treated * post, p.X])
    return X, ["(intercept)", "treated", "post", "treated_x_post", *p.xnames]


def event_dummies(p: PanelData, g: np.ndarray, leads: int, lags: int) -> tuple[np.ndarray, list[str], list[int]]:
    """Relative-period dummies -leads..-2, 0..lags (end points binned); -1 and never-treated are 0."""
    gr = g[p.unit]
    treated = gr >= 0
    rel = np.where(treated, p.time - gr, 0)
    lo = -leads
    wanted = [e for e in range(lo, -1) if leads >= 2] + list(range(0, lags + 1))
    cols, labels, kept = [], [], []
    for e in wanted:
        if e == lo and e < -1:
            m = treated & (rel <= e)
        elif e == lags:
            m = treated & (rel >= e)
        else:
            m = treated & (rel == e)
        if not m.any():
            continue
        cols.append(m.astype(np.float64))
        kept.append(e)
        binned = (e == lo and e < -1) or e == lags
        labels.append(f"{'<=' if e == lo and e < -1 else '>=' if e == lags else ''}{e}" if binned else str(e))
    if not cols:
        raise EstimationError("no treated unit has a relative period inside the event window")
    return np.column_stack(cols), [f"event_time={lab}" for lab in labels], kept


def regress(p: PanelData, X: np.ndarray, names: list[str], fe: bool) -> "OlsFit":
    from causalcli.inference.cluster_robust import ols_crv1

    if p.cells is not None:  # the engine's cohort x period cells (``cells_regression``)
        return p.cells.ols(p.y, X, names, fe, p.options.tolerance)
    fit = ols_crv1(p.y, X, names, (p.cluster, p.n_clusters), fixed_effects(p) if fe else [], p.w,
                   p.options.tolerance)
    if p.hc1:  # HC1: t and F on the residual degrees of freedom N-K (statsmodels, Stata), not G-1
        from dataclasses import replace

        fit = replace(fit, df_t=fit.n - fit.df_k)
    return fit


def standard_error(var: float) -> float:
    """sqrt of a variance; NaN (reported as null) when it is not a finite non-negative number."""
    return float(np.sqrt(var)) if np.isfinite(var) and var >= 0 else float("nan")


def point_linear(p: PanelData, g: np.ndarray, own_treatment: bool = True) -> float:
    """The estimate of 2x2, TWFE or the event study (average of the post-period coefficients) with cohorts
    ``g``; ``own_treatment``: the treatment is the panel's own (an on/off column is then used as given)."""
    from causalcli.models.fixed_effects import demean

    if p.estimator == "2x2":
        X, _ = design_2x2(p, g)
        j = 3
        groups = []
    elif p.leads is not None:
        D, _, rel = event_dummies(p, g, p.leads, p.lags)
        X = np.column_stack([D, p.X])
        j = [k for k, e in enumerate(rel) if e >= 0]
        groups = fixed_effects(p)
    else:
        X = np.column_stack([p.d if own_treatment and p.d is not None else treatment_column(p, g), p.X])
        j = 0
        groups = fixed_effects(p)
    Z = demean(np.column_stack([p.y, X]), groups, p.w, p.options.tolerance)
    yd, Xd = Z[:, 0], Z[:, 1:]
    Xw = Xd * p.w[:, None] if p.w is not None else Xd
    try:
        coef = np.linalg.solve(Xw.T @ Xd, Xw.T @ yd)
    except np.linalg.LinAlgError:
        raise EstimationError("singular design in a refuter simulation") from None
    return float(np.mean(coef[j]))


def point_for_assignment(p: PanelData, treatment: np.ndarray) -> float:
    """``point_linear`` under a placebo assignment of cohorts (randomization inference)."""
    return point_linear(p, treatment, own_treatment=False)


def wild_bootstrap(p: PanelData, X: np.ndarray, fe: bool, contrasts: list[np.ndarray], vcov: np.ndarray,
                   conf_level: float, seed: int, weights: str) -> list[dict]:
    """The wild cluster bootstrap of contrasts of the panel regression (``causalcli.inference.wild``)."""
    from causalcli.inference.wild import wild_cluster_bootstrap

    return wild_cluster_bootstrap(p.y, X, (p.cluster, p.n_clusters), fixed_effects(p) if fe else [], p.w, contrasts,
                                  vcov, conf_level, p.options.draws, seed, weights, p.options.tolerance)


def headline(p: PanelData, fit: "OlsFit", a: np.ndarray, X: np.ndarray, fe: bool, study: "Study",
             seed: int) -> tuple["Estimate", dict, "Check", list[str]]:
    """The estimate a'b with CRV1 SE and, with few clusters, wild-bootstrap or randomization p and interval
    (``causalcli.designs.did.clusters``); also ``diagnostics.clusters``, the ``clusters`` check and warnings."""
    from causalcli.designs.did.clusters import apply
    from causalcli.inference.estimate import t_estimate

    se = standard_error(float(a @ fit.vcov @ a))
    # one cluster per row (repeated cross-sections): CRV1's G/(G-1) (N-1)/(N-K) is HC1's N/(N-K)
    name = "hc1" if p.hc1 else "crv1_fixest"
    est = t_estimate(float(a @ fit.coef), se, fit.df_t, study.conf_level, name)

    def wild(weights: str) -> dict:
        return wild_bootstrap(p, X, fe, [a], fit.vcov, study.conf_level, seed, weights)[0]

    return apply(p, estimate=est, n_obs=fit.n, k=fit.df_k, conf_level=study.conf_level, draws=p.options.draws,
                 seed=seed, wild=wild, point=point_for_assignment, analytic_name=name)


def used_n(p: PanelData, used: int) -> dict:
    n = dict(p.n)
    n["used"] = used
    return n


def panel_diagnostics(p: PanelData, fit: "OlsFit") -> dict:
    return {"panel": p.panel,
            "standard_errors": {"type": "HC1 (CRV1 with each row its own cluster)" if p.hc1
                                else "CRV1", "cluster": p.cluster_name, "clusters": fit.clusters,
                                "small_sample": "G/(G-1) * (N-1)/(N-K), fixest ssc(adj=TRUE, "
                                                "fixef.K='nested', cluster.adj=TRUE)",
                                "K": fit.df_k, "t_df": fit.df_t, "factor": fit.ssc}}
