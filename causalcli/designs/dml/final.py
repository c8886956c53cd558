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
    # with the top-level weights (docs/designs/dml.md, "Observation weights"): every fit weighted, the averages
    # weighted means
    "linear_weighted": "econml_linear_dml_hc1_weighted",  # weighted final stage, EconML's weighted HC1
    "forest_dr_weighted": "econml_forest_doubly_robust_weighted",  # weighted mean of the DR scores
    "forest_blb_weighted": "econml_forest_blb_conservative_weighted",  # weighted mean CATE, weighted bound
}


def _scalar(x: Any) -> float:
    return float(np.ravel(np.asarray(x, dtype=np.float64))[0])


def inference_name(d: DmlData, kind: str) -> str:
    """The estimate's inference name (``INFERENCE``), ``_weighted`` when the top-level weights were used."""
    return INFERENCE[kind if d.sample_weights is None else f"{kind}_weighted"]


def headline(est: Any, d: DmlData, X: np.ndarray | None, conf_level: float) -> Estimate:
    """The ATE or ATT with EconML's inference (with observation weights: their weighted mean, ``weighted_mean``)."""
    target = np.ones(d.t.size, dtype=bool) if d.estimand == "ate" else d.t == 1
    if d.model == "forest" and d.binary:
        if d.sample_weights is not None:
            value, se = weighted_dr_mean(est, d, X, target)
            return normal_estimate(value, se, conf_level, inference_name(d, "forest_dr"))
        inf = est.ate__inference() if d.estimand == "ate" else est.att__inference(T=1)
        return normal_estimate(_scalar(inf.point_estimate), _scalar(inf.stderr), conf_level, INFERENCE["forest_dr"])
    kind = "linear" if d.model == "linear" else "forest_blb"
    if d.sample_weights is not None:
        return normal_estimate(*weighted_mean(est, d, X, target), conf_level, inference_name(d, kind))
    rows = X if (X is None or d.estimand == "ate") else X[d.t == 1]
    inf = est.ate_inference(X=rows, T0=0, T1=1)
    return normal_estimate(_scalar(inf.mean_point), _scalar(inf.stderr_mean), conf_level, INFERENCE[kind])


def weighted_mean(est: Any, d: DmlData, X: np.ndarray | None, mask: np.ndarray) -> tuple[float, float]:
    """The weighted mean effect over the rows of ``mask`` and its SE, as EconML's ``ate_inference`` reports the
    unweighted one: linear, the effect at the weighted mean of the effect modifiers (the effect is linear in them,
    so this is the weighted mean effect, and its SE the exact one); forest, the weighted mean of the rows' CATEs
    with the conservative bound sqrt(sum w se^2 / sum w) (Jensen: at least the SE of the weighted mean of
    correlated CATEs, as EconML's sqrt(mean se^2) is of the plain mean)."""
    w = d.sample_weights[mask]
    if d.model == "linear":
        centre = None if X is None else (np.sum(X[mask] * w[:, None], axis=0) / w.sum()).reshape(1, -1)
        inf = est.ate_inference(X=centre, T0=0, T1=1)
        return _scalar(inf.mean_point), _scalar(inf.stderr_mean)
    inf = est.effect_inference(X[mask], T0=0, T1=1)
    point, se = np.ravel(inf.point_estimate), np.ravel(inf.stderr)
    return float(np.dot(w, point) / w.sum()), float(np.sqrt(np.dot(w, se * se) / w.sum()))


def dr_scores(tau: np.ndarray, t: np.ndarray, t_res: np.ndarray, y_res: np.ndarray) -> np.ndarray:
    """CausalForestDML's doubly robust score of each row: tau + (y_res - tau t_res) t_res / clip(p (1 - p), 0.01),
    p = t - t_res (its ``ate_`` is their mean)."""
    p = t - t_res
    return tau + (y_res - tau * t_res) * t_res / np.clip(p * (1 - p), 1e-2, np.inf)


def weighted_score_mean(score: np.ndarray, w: np.ndarray) -> tuple[float, float]:
    """The weighted mean of the scores and its SE, the norm of its influence function w (score - mean) / sum w
    (EconML's nanstd / sqrt(n) when w = 1); rows without a score (no tree left them out) are left out, as EconML."""
    ok = np.isfinite(score)
    score, w = score[ok], w[ok]
    mean = float(np.dot(w, score) / w.sum())
    return mean, float(np.sqrt(np.dot(w * w, (score - mean) ** 2)) / w.sum())


def weighted_dr_mean(est: Any, d: DmlData, X: np.ndarray, mask: np.ndarray) -> tuple[float, float]:
    """The weighted ATE or ATT of CausalForestDML: the weighted mean of its doubly robust scores, recomputed from
    the (weighted) fitted forest's out-of-bag CATEs and the fit's residuals (EconML's ``ate_`` and ``att_`` are
    unweighted means)."""
    y_res, t_res, _, _ = est.residuals_
    tau = np.ravel(est.model_final_.oob_predict(X))
    score = dr_scores(tau, d.t, np.ravel(t_res), np.ravel(y_res))
    return weighted_score_mean(score[mask], d.sample_weights[mask])


def segment_effects(est: Any, d: DmlData, X: np.ndarray | None, conf_level: float) -> tuple[list[Estimate], list[str]]:
    """One effect per value of each segment column: the mean CATE over its rows (its treated rows for the ATT);
    with observation weights, their weighted mean (``weighted_mean``); p-values Holm-adjusted over the column's
    values (``p_value_adjusted``)."""
    from causalcli.inference.multiplicity import corrected_over_values

    out, notes = [], []
    name = inference_name(d, "linear" if d.model == "linear" else "forest_blb")
    for column, values in zip(d.segment_columns, d.segment_values):
        found: list[Estimate] = []
        for level in np.unique(values):
            mask = values == level
            if d.estimand == "att":
                mask = mask & (d.t == 1)
            if not mask.any():
                notes.append(f"segment {column}={level} has no treated units: no ATT reported for it")
                continue
            if d.sample_weights is not None:
                value, se = weighted_mean(est, d, X, mask)
            else:
                inf = est.ate_inference(X=X[mask], T0=0, T1=1)
                value, se = _scalar(inf.mean_point), _scalar(inf.stderr_mean)
            found.append(normal_estimate(value, se, conf_level, name, label=f"{column}={level}"))
        out += corrected_over_values(found, column, "holm")  # Holm per column, as every design's segments
    return out, notes


def final_ols(F: np.ndarray, t_res: np.ndarray, y_res: np.ndarray,
              weights: np.ndarray | None = None) -> tuple[np.ndarray, np.ndarray]:
    """The LinearDML final stage by hand: y_res on t_res * F, with the HC1 sandwich covariance.

    HC1 is the HC0 sandwich times n / (n - k), as EconML's LinearDML final stage reports it. With observation
    ``weights`` w: weighted least squares and EconML's weighted sandwich (its ``StatsModelsLinearRegression``
    scales the rows by sqrt(w)): bread Z'WZ, meat Z'W^2 diag(e^2) Z, n the rows.
    """
    Z = F * t_res[:, None]
    Zw = Z if weights is None else Z * weights[:, None]
    bread = Zw.T @ Z
    beta = np.linalg.solve(bread, Zw.T @ y_res)
    e = y_res - Z @ beta
    inv = np.linalg.inv(bread)
    meat = (Zw * (e * e)[:, None]).T @ Zw
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
        beta, cov = final_ols(final_features(d), t_res, y_res, d.sample_weights)
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
    """The distribution of the forest's CATE over the rows, and the most important effect modifiers; with
    observation weights, the distribution in the weighted population (``_weighted_distribution``)."""
    cate = np.ravel(est.effect(X, T0=0, T1=1))
    names = effect_modifier_names(d)
    importance = np.ravel(est.feature_importances_)
    order = np.argsort(-importance, kind="stable")[:TOP_MODIFIERS]
    if d.sample_weights is None:
        counts, edges = np.histogram(cate, bins=CATE_BINS)
        distribution = {
            "mean": float(cate.mean()),
            "sd": float(cate.std(ddof=1)) if cate.size > 1 else 0.0,
            "quantiles": {f"q{int(round(q * 100)):02d}": float(np.quantile(cate, q)) for q in CATE_QUANTILES},
            "share_positive": float(np.mean(cate > 0)),
            "histogram": {"edges": edges.tolist(), "counts": counts.tolist()},
        }
    else:
        distribution = _weighted_distribution(cate, d.sample_weights)
    return {
        **distribution,
        "effect_modifiers": [{"name": names[j], "importance": float(importance[j])} for j in order],
        "importance": "EconML CausalForestDML.feature_importances_: split-based heterogeneity importance",
    }


def _weighted_distribution(cate: np.ndarray, w: np.ndarray) -> dict[str, Any]:
    """The CATE's distribution with each row counted by its weight: the weighted mean, the weighted SD (times
    n / (n - 1), the unweighted one's correction, at w = 1 equal to it), quantiles of the weighted distribution
    function (its inverse: the smallest CATE at which the weight below reaches q; no interpolation), the
    weighted share positive, and the histogram's sums of weights."""
    total = float(w.sum())
    mean = float(np.dot(w, cate) / total)
    n = cate.size
    var = float(np.dot(w, (cate - mean) ** 2) / total) * (n / (n - 1)) if n > 1 else 0.0
    sums, edges = np.histogram(cate, bins=CATE_BINS, weights=w)
    return {
        "mean": mean,
        "sd": float(np.sqrt(var)),
        "quantiles": {f"q{int(round(q * 100)):02d}": float(np.quantile(cate, q, weights=w, method="inverted_cdf"))
                      for q in CATE_QUANTILES},
        "share_positive": float(np.dot(w, cate > 0) / total),
        "histogram": {"edges": edges.tolist(), "weights": sums.tolist()},
        "weighted": "every row counted by its observation weight; quantiles of the weighted distribution function "
                    "(inverted CDF); the histogram sums weights",
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
                       binary: bool, estimand: str, trees: int | None = REFUTER_TREES,
                       weights: np.ndarray | None = None) -> float:
    """Refit the final causal forest on given residuals (``refuter_forest``); the average EconML reports.

    Binary treatment: the doubly robust mean of out-of-bag CATE plus the residual correction
    (Y_res - tau T_res) T_res / clip(p (1 - p), 0.01), p = T - T_res (``dr_scores``); else the mean CATE. A row
    no tree left out (a few with a small forest) takes the forest's in-bag prediction. With observation
    ``weights`` the forest is grown with them and the means are weighted.
    """
    forest = refuter_forest(final, trees)
    forest.fit(X, t_res.reshape(-1, 1), y_res.reshape(-1, 1), **({} if weights is None else {"sample_weight": weights}))
    if not binary:
        return float(np.average(np.ravel(forest.predict(X)), weights=weights))
    tau = np.ravel(forest.oob_predict(X))
    unseen = ~np.isfinite(tau)
    if unseen.any():
        tau[unseen] = np.ravel(forest.predict(X[unseen]))
    score = dr_scores(tau, t, t_res, y_res)
    target = (t == 1) if estimand == "att" else slice(None)
    if weights is not None:
        return weighted_score_mean(score[target], weights[target])[0]
    return float(np.nanmean(score[target]))


def final_stage_point(d: DmlData, cf: CrossFit, treatment: np.ndarray | None = None,
                      rows: np.ndarray | None = None, trees: int | None = REFUTER_TREES) -> float:
    """The point estimate from a fit's out-of-fold residuals, refitting the final stage only.

    A permuted ``treatment`` is independent of the covariates by construction, so its
    cross-fitted propensity is its share in the training folds: the outcome residuals are
    reused. A subset of ``rows`` keeps the out-of-fold residuals (still out of fold).
    model: forest refits a forest of ``trees`` trees (None: the fit's size).
    """
    y_res, t_res, t, w = cf.y_res, cf.t_res, d.t, d.sample_weights
    if treatment is not None:
        t = np.asarray(treatment, dtype=np.float64)
        t_res = t - training_fold_means(t, cf.ids, d.folds, w)
    F = final_features(d)
    if rows is not None:
        y_res, t_res, t, F = y_res[rows], t_res[rows], t[rows], F[rows]
        w = None if w is None else w[rows]
    if d.model == "linear":
        beta = final_ols(F, t_res, y_res, w)[0]
        target = (t == 1) if d.estimand == "att" else slice(None)
        if w is not None:
            return float(np.average(F[target] @ beta, weights=w[target]))
        return float(np.mean(F[target] @ beta))
    with thread_limit():
        return forest_final_point(cf.final, F, t, t_res, y_res, d.binary, d.estimand, trees, w)
