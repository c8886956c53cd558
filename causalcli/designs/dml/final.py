"""The final stage of dml and its inference: the headline and segment effects with EconML's
standard errors, the final-stage OLS by hand (HC1, for the heterogeneity tests and the refuters),
the CATE summary of the causal forest, and the point estimate the refuters recompute from a fit's
cross-fitted residuals."""

from __future__ import annotations

from typing import Any

import numpy as np

from causalcli.designs.dml.data import CrossFit, DmlData, effect_modifier_names, final_features
from causalcli.designs.dml.nuisance import thread_limit
from causalcli.inference.distributions import chi2_sf
from causalcli.inference.estimate import normal_estimate
from causalcli.models.folds import training_fold_means
from causalcli.records import Estimate

CATE_QUANTILES = (0.05, 0.1, 0.25, 0.5, 0.75, 0.9, 0.95)
CATE_BINS = 20  # bins of the CATE histogram (diagnostics.cate)
TOP_MODIFIERS = 10

INFERENCE = {
    "linear": "econml_linear_dml_hc1",  # LinearDML final stage: OLS with HC1 sandwich covariance
    "forest_dr": "econml_forest_doubly_robust",  # CausalForestDML ate_/att_: mean of DR scores over OOB predictions
    "forest_blb": "econml_forest_blb_conservative",  # mean CATE; EconML's upper bound from BLB pointwise variances
}


def _scalar(x: Any) -> float:
    return float(np.ravel(np.asarray(x, dtype=np.float64))[0])


def headline(est: Any, d: DmlData, X: np.ndarray | None, conf_level: float) -> Estimate:
    """The ATE or ATT with EconML's inference."""
    if d.model == "forest" and d.binary:
        inf = est.ate__inference() if d.estimand == "ate" else est.att__inference(T=1)
        return normal_estimate(_scalar(inf.point_estimate), _scalar(inf.stderr), conf_level, INFERENCE["forest_dr"])
    rows = X if (X is None or d.estimand == "ate") else X[d.t == 1]
    inf = est.ate_inference(X=rows, T0=0, T1=1)
    name = INFERENCE["linear"] if d.model == "linear" else INFERENCE["forest_blb"]
    return normal_estimate(_scalar(inf.mean_point), _scalar(inf.stderr_mean), conf_level, name)


def segment_effects(est: Any, d: DmlData, X: np.ndarray | None, conf_level: float) -> tuple[list[Estimate], list[str]]:
    """One effect per value of each segment column: the mean CATE over its rows (its treated rows for the ATT)."""
    out, notes = [], []
    name = INFERENCE["linear"] if d.model == "linear" else INFERENCE["forest_blb"]
    for column, values in zip(d.segment_columns, d.segment_values):
        for level in np.unique(values):
            mask = values == level
            if d.estimand == "att":
                mask = mask & (d.t == 1)
            if not mask.any():
                notes.append(f"segment {column}={level} has no treated units: no ATT reported for it")
                continue
            inf = est.ate_inference(X=X[mask], T0=0, T1=1)
            out.append(normal_estimate(_scalar(inf.mean_point), _scalar(inf.stderr_mean), conf_level, name,
                                       label=f"{column}={level}"))
    return out, notes


def final_ols(F: np.ndarray, t_res: np.ndarray, y_res: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """The LinearDML final stage by hand: y_res on t_res * F, with the HC1 sandwich covariance.

    HC1 is the HC0 sandwich times n / (n - k), as EconML's LinearDML final stage reports it.
    """
    Z = F * t_res[:, None]
    bread = Z.T @ Z
    beta = np.linalg.solve(bread, Z.T @ y_res)
    e = y_res - Z @ beta
    inv = np.linalg.inv(bread)
    meat = (Z * (e * e)[:, None]).T @ Z
    n, k = Z.shape
    return beta, inv @ meat @ inv * (n / (n - k) if n > k else 1.0)


def heterogeneity_tests(est: Any, d: DmlData, effects: list[Estimate], y_res: np.ndarray,
                        t_res: np.ndarray) -> list[dict[str, Any]]:
    """Does the effect differ across the values of each segment column? One Wald test per column.

    linear: H0 the column's dummy coefficients in the final stage are all zero (HC1 covariance, as EconML's).
    forest: H0 the segment effects are equal, treating them as independent with their EconML
    standard errors (approximate and conservative: those errors are upper bounds).
    """
    out = []
    if d.model == "linear":
        beta, cov = final_ols(final_features(d), t_res, y_res)
        start = 1
        for column, values in zip(d.segment_columns, d.segment_values):
            k = len(np.unique(values)) - 1
            idx = np.arange(start, start + k)
            start += k
            if k == 0:
                out.append({"segment": column, "statistic": None, "df": 0, "p_value": None,
                            "test": "single value: nothing to compare"})
                continue
            b, V = beta[idx], cov[np.ix_(idx, idx)]
            stat = float(b @ np.linalg.solve(V, b))
            out.append({"segment": column, "statistic": stat, "df": k, "p_value": chi2_sf(stat, k),
                        "test": "Wald chi-square: the segment's dummy coefficients in the LinearDML final stage "
                                "are all zero (HC1 covariance, as EconML's)"})
        return out
    for column in d.segment_columns:
        rows = [e for e in effects if e.label.startswith(f"{column}=") and e.std_error]
        if len(rows) < 2:
            out.append({"segment": column, "statistic": None, "df": 0, "p_value": None,
                        "test": "fewer than two segment effects: nothing to compare"})
            continue
        m = np.array([e.value for e in rows])
        w = 1.0 / np.array([e.std_error for e in rows]) ** 2
        pooled = float(np.dot(w, m) / w.sum())
        stat = float(np.dot(w, (m - pooled) ** 2))
        out.append({"segment": column, "statistic": stat, "df": len(rows) - 1, "p_value": chi2_sf(stat, len(rows) - 1),
                    "test": "Wald chi-square of equal segment effects, segments treated as independent with "
                            "EconML's conservative standard errors"})
    return out


def cate_summary(est: Any, d: DmlData, X: np.ndarray) -> dict[str, Any]:
    """The distribution of the forest's CATE over the rows, and the most important effect modifiers."""
    cate = np.ravel(est.effect(X, T0=0, T1=1))
    names = effect_modifier_names(d)
    importance = np.ravel(est.feature_importances_)
    order = np.argsort(-importance, kind="stable")[:TOP_MODIFIERS]
    counts, edges = np.histogram(cate, bins=CATE_BINS)
    return {
        "mean": float(cate.mean()),
        "sd": float(cate.std(ddof=1)) if cate.size > 1 else 0.0,
        "quantiles": {f"q{int(round(q * 100)):02d}": float(np.quantile(cate, q)) for q in CATE_QUANTILES},
        "share_positive": float(np.mean(cate > 0)),
        "histogram": {"edges": edges.tolist(), "counts": counts.tolist()},
        "effect_modifiers": [{"name": names[j], "importance": float(importance[j])} for j in order],
        "importance": "EconML CausalForestDML.feature_importances_: split-based heterogeneity importance",
    }


# Trees of the refuters' causal forests (docs/designs/dml.md): the fewest whose values spread as the fit's
# forest's do. A row's out-of-bag CATE comes from the few trees that left it out; with 2 or 8 trees their leaves
# (5 rows each) can hold nearly one arm only, whose local solve explodes on a heavy-tailed outcome (401(k)
# wealth: placebo SD 10.3 with 2 trees, 4.8 with 8, 1.33 with 16 and 24, 1.48 with the fit's 200).
REFUTER_TREES = 16
PLACEBO_TREES = 16


def refuter_forest(final: Any, trees: int | None = REFUTER_TREES) -> Any:
    """The final forest the refuters refit: the fit's parameters with ``trees`` trees (None: as many
    as the fit's) and no inference (the refuters use the point estimate only, so the trees need not
    come in the half-sampled groups EconML's confidence intervals need)."""
    from sklearn.base import clone

    forest = clone(final)
    if trees is not None:
        forest.set_params(estimator__n_estimators=min(trees, forest.get_params()["estimator__n_estimators"]),
                          estimator__inference=False)
    return forest


def forest_final_point(final: Any, X: np.ndarray, t: np.ndarray, t_res: np.ndarray, y_res: np.ndarray,
                       binary: bool, estimand: str, trees: int | None = REFUTER_TREES) -> float:
    """Refit the final causal forest on given residuals (``refuter_forest``); the average EconML reports.

    Binary treatment: the doubly robust mean of out-of-bag CATE plus the residual correction
    (Y_res - tau T_res) T_res / clip(p (1 - p), 0.01), p = T - T_res; else the mean CATE. A row no
    tree left out (a few with a small forest) takes the forest's in-bag prediction.
    """
    forest = refuter_forest(final, trees)
    forest.fit(X, t_res.reshape(-1, 1), y_res.reshape(-1, 1))
    if not binary:
        return float(np.mean(np.ravel(forest.predict(X))))
    tau = np.ravel(forest.oob_predict(X))
    unseen = ~np.isfinite(tau)
    if unseen.any():
        tau[unseen] = np.ravel(forest.predict(X[unseen]))
    p = t - t_res
    score = tau + (y_res - tau * t_res) * t_res / np.clip(p * (1 - p), 1e-2, np.inf)
    if estimand == "att":
        score = score[t == 1]
    return float(np.nanmean(score))


def final_stage_point(d: DmlData, cf: CrossFit, treatment: np.ndarray | None = None,
                      rows: np.ndarray | None = None, trees: int | None = REFUTER_TREES) -> float:
    """The point estimate from a fit's out-of-fold residuals, refitting the final stage only.

    A permuted ``treatment`` is independent of the covariates by construction, so its
    cross-fitted propensity is its share in the training folds: the outcome residuals are
    reused. A subset of ``rows`` keeps the out-of-fold residuals (still out of fold).
    model: forest refits a forest of ``trees`` trees (None: the fit's size).
    """
    y_res, t_res, t = cf.y_res, cf.t_res, d.t
    if treatment is not None:
        t = np.asarray(treatment, dtype=np.float64)
        t_res = t - training_fold_means(t, cf.ids, d.folds)
    F = final_features(d)
    if rows is not None:
        y_res, t_res, t, F = y_res[rows], t_res[rows], t[rows], F[rows]
    if d.model == "linear":
        beta = final_ols(F, t_res, y_res)[0]
        target = (t == 1) if d.estimand == "att" else slice(None)
        return float(np.mean(F[target] @ beta))
    with thread_limit():
        return forest_final_point(cf.final, F, t, t_res, y_res, d.binary, d.estimand, trees)
