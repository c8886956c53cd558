"""Inverse-probability weighting (IPW) and augmented IPW (AIPW, doubly robust).

Estimators (``e`` the propensity score, ``t`` the treatment, ``y`` the outcome):

* **IPW** with normalised (Hajek) weights: ``mu1 = sum t w1 y / sum t w1``,
  ``mu0 = sum (1-t) w0 y / sum (1-t) w0``, effect ``mu1 - mu0``, with
  ``(w1, w0)`` = ``(1/e, 1/(1-e))`` for the ATE, ``(1, e/(1-e))`` for the ATT,
  ``((1-e)/e, 1)`` for the ATC and ``(1-e, e)`` for overlap weights (the ATO,
  Li, Morgan and Zaslavsky 2018). The point estimate is the coefficient of
  ``t`` in a weighted regression of ``y`` on ``t``, as R ``survey::svyglm``
  computes it (the tests pin both to R).
  Standard error: the influence function of the stacked estimating equations
  (logistic score and the two weighted means; Lunceford and Davidian 2004),
  so the estimation of the propensity score is accounted for
  (``inference: influence_function``). ``svyglm``'s sandwich, which treats the
  weights as known, is reported beside it (``std_error_weights_known``). With a
  gradient-boosted propensity score no such correction exists and the
  weights-known sandwich is the estimate's SE (``inference: robust_weights_known``).
* **AIPW**: with outcome models ``m1, m0`` fitted per arm, the efficient
  influence-function estimators (Robins, Rotnitzky and Zhao 1994; for the ATT
  Hahn 1998, as DoubleML's IRM ``ATTE`` score)::

      ATE: mean[m1 - m0 + t (y - m1) / e - (1 - t) (y - m0) / (1 - e)]
      ATT: mean[t (y - m0) - (1 - t) e (y - m0) / (1 - e)] / mean(t)
      ATC: mean[(1 - t) (m1 - y) + t (1 - e) (y - m1) / e] / mean(1 - t)

  with the standard error ``sqrt(mean(psi^2) / n)`` of the influence function
  ``psi`` (``inference: influence_function``). The ATC is the ATT with the
  arms swapped.

Nuisance models: logistic regression (``causalcli.models.logit.fit_logit``) and
OLS per arm by default; gradient boosting (scikit-learn's histogram GBM, stopping early at every
size: ``causalcli.models.boosting``) with ``folds``-fold cross-fitting (Chernozhukov et al. 2018) as
options.

``trim: c`` drops the units whose propensity score (fitted on all units) lies
outside ``[c, 1 - c]`` (Crump, Hotz, Imbens and Mitnik 2009); the scores are not
refitted (a refit on a trimmed sample often separates), and the IPW standard
error still accounts for the score fitted on all units. The result is the
effect in the trimmed population, and the counts are reported.

Observation weights ``s`` (the top-level ``weights``) are probability weights: every estimating equation is
multiplied by them (the logit's score, the Hajek means, the outcome models' normal equations, the AIPW scores),
and the influence terms with them, so the SE is the norm of the ``s``-weighted stacked influence function. Rows
of weight 0 are dropped in ``prepare`` and counted.

The estimators themselves are in ``estimators.py``; effects by the top-level ``segments``, from the
same fitted nuisance models, in ``segments.py``.

References
----------
Lunceford, J. K. and Davidian, M. (2004). Stratification and weighting via the
propensity score in estimation of causal treatment effects. Statistics in
Medicine 23, 2937-2960.
Robins, J. M., Rotnitzky, A. and Zhao, L. P. (1994). Estimation of regression
coefficients when some regressors are not always observed. JASA 89, 846-866.
Li, F., Morgan, K. L. and Zaslavsky, A. M. (2018). Balancing covariates via
propensity score weighting. JASA 113, 390-400.
Crump, R. K., Hotz, V. J., Imbens, G. W. and Mitnik, O. A. (2009). Dealing with
limited overlap in estimation of average treatment effects. Biometrika 96, 187-199.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, replace
from functools import cached_property
from typing import TYPE_CHECKING, Any

import numpy as np

from causalcli.data.missing import study_roles_missing
from causalcli.data.table import MissingRows, binary_study_arrays, single_treated_warning
from causalcli.data.weights import keep_positive_weights, zero_weight_warning
from causalcli.designs.base import Fit
from causalcli.designs.binary_treatment import BinaryTreatmentDesign
from causalcli.designs.weighting.estimators import _hajek_means, aipw, aipw_score, ipw, ipw_weights
from causalcli.data.segments import SEGMENT_ROLE, check_segment_columns, check_segment_levels, segment_labels
from causalcli.designs.weighting.segments import segment_effects
from causalcli.errors import DataError, EstimationError, SpecError
from causalcli.inference.estimate import normal_estimate
from causalcli.models.boosting import boosting_classifier, boosting_regressor
from causalcli.models.folds import permuted_fold_ids
from causalcli.models.logit import LogitDesign

if TYPE_CHECKING:  # pragma: no cover
    from causalcli.data.missing import Roles
    from causalcli.data.table import Table
    from causalcli.graph import Identification
    from causalcli.spec.loading import LoadedSpec
    from causalcli.spec.models import Study

__all__ = ["WeightingDesign", "Nuisance", "fit_propensity", "fit_outcome", "ipw", "aipw", "aipw_score", "ipw_weights"]


# ------------------------------------------------------------------ nuisance models

# OpenMP threads for scikit-learn's boosting: on small folds and a busy 2-core
# machine, more threads spin and cost 10x (measured 2.1 s against 0.22 s on
# 2,000 rows); the result does not depend on it.
_GBM_THREADS = 1


@dataclass(frozen=True)
class Nuisance:
    """A fitted propensity score and what the IPW variance correction needs."""

    e: np.ndarray
    model: str
    coef: np.ndarray | None = None  # logistic: intercept first
    iterations: int | None = None


def fit_propensity(X: np.ndarray | None, t: np.ndarray, model: str = "logistic", *, folds: int = 5, seed: int = 0,
                   start: np.ndarray | None = None, names: tuple[str, ...] | None = None,
                   design: LogitDesign | None = None, s: np.ndarray | None = None) -> Nuisance:
    """Propensity scores: logistic regression (in sample) or cross-fitted gradient boosting, both fitted with
    the observation weights ``s`` (the weighted pseudo-likelihood; boosting's ``sample_weight``).

    ``design`` with ``start``: a refuter's refit of the logistic model on the fit's shared design
    (``X`` is then not read)."""
    if model == "logistic":
        from causalcli.models.logit import fit_logit, refit_logit

        if design is not None and start is not None:
            f = refit_logit(design, t, start, weights=s)
        else:
            f = fit_logit(X, t.astype(np.float64), s, start=start, names=names)
        return Nuisance(f.probability, model, f.coef, f.iterations)
    from threadpoolctl import threadpool_limits

    label = permuted_fold_ids(t.size, folds, seed)
    e = np.empty(t.size)
    for k in range(folds):
        test = label == k
        train = ~test
        if t[train].all() or not t[train].any():
            raise EstimationError(f"cross-fitting: fold {k + 1} leaves only one arm to train on; use fewer folds")
        clf = boosting_classifier(seed)  # made (scikit-learn's OpenMP loaded) before the limit, which then reaches it
        with threadpool_limits(_GBM_THREADS):
            clf.fit(X[train], t[train], sample_weight=None if s is None else s[train])
        e[test] = clf.predict_proba(X[test])[:, 1]
    return Nuisance(e, model)


def _ols_predict(Xa: np.ndarray, ya: np.ndarray, Xall: np.ndarray, sa: np.ndarray | None = None) -> np.ndarray:
    """OLS (WLS with the observation weights ``sa``) of ``ya`` on ``[1, Xa]``, predicted at ``Xall``.

    Normal equations on centred columns (a k x k solve, single-threaded BLAS:
    4x faster than an SVD on 100,000 rows); least squares by SVD when they are
    ill-conditioned (collinear covariates within an arm).
    """
    from causalcli.runtime.threads import single_threaded_blas

    # pairwise sums, not BLAS products, outside the single-threaded block: the same digits in every process
    centre = Xa.mean(axis=0) if sa is None else (sa[:, None] * Xa).sum(axis=0) / sa.sum()
    level = ya.mean() if sa is None else float(np.sum(sa * ya)) / float(sa.sum())
    with single_threaded_blas():
        Xc = Xa - centre
        Xs = Xc if sa is None else Xc * sa[:, None]  # X' S: the weighted normal equations
        G = Xs.T @ Xc
        d = np.sqrt(np.diag(G))
        ok = bool(np.all(d > 0))
        if ok:
            Gs = G / np.outer(d, d)
            ok = np.linalg.cond(Gs) < 1e10
        if ok:
            slopes = np.linalg.solve(Gs, (Xs.T @ (ya - level)) / d) / d
        else:
            root = np.ones(ya.size) if sa is None else np.sqrt(sa)
            slopes = np.linalg.lstsq(Xc * root[:, None], (ya - level) * root, rcond=None)[0]
        return level + (Xall - centre) @ slopes


def fit_outcome(X: np.ndarray, t: np.ndarray, y: np.ndarray, model: str = "linear", *, folds: int = 5,
                seed: int = 0, s: np.ndarray | None = None) -> tuple[np.ndarray, np.ndarray]:
    """Outcome predictions ``(m0, m1)`` for every unit from models fitted within each arm (weighted by the
    observation weights ``s``: WLS, or boosting's ``sample_weight``)."""
    if model == "linear":
        if s is None:
            return _ols_predict(X[~t], y[~t], X), _ols_predict(X[t], y[t], X)
        return _ols_predict(X[~t], y[~t], X, s[~t]), _ols_predict(X[t], y[t], X, s[t])
    from threadpoolctl import threadpool_limits

    label = permuted_fold_ids(t.size, folds, seed + 1)
    m0, m1 = np.empty(t.size), np.empty(t.size)
    for k in range(folds):
        test = label == k
        for arm, out in ((False, m0), (True, m1)):
            train = (label != k) & (t == arm)
            reg = boosting_regressor(seed)  # made before the limit, as in fit_propensity
            with threadpool_limits(_GBM_THREADS):
                reg.fit(X[train], y[train], sample_weight=None if s is None else s[train])
            out[test] = reg.predict(X[test])
    return m0, m1


# ------------------------------------------------------------------ the design


@dataclass(frozen=True)
class WeightingData:
    """Arrays the estimator and the refuters share (picklable for joblib workers)."""

    X: np.ndarray
    t: np.ndarray
    y: np.ndarray
    covariates: tuple[str, ...]
    X_balance: np.ndarray  # every level of a categorical covariate, for the balance table
    balance_names: tuple[str, ...]
    estimand: str
    estimator: str
    trim: float | None
    propensity_model: str
    outcome_model: str
    folds: int
    seed: int
    rows: int
    dropped_missing: int
    file: str
    categorical: tuple[str, ...] = ()  # categorical covariates, to name a level that separates the arms
    missing: MissingRows | None = None  # rows dropped for a missing value, by role
    # the fit's logistic coefficients (intercept first) and X's centre and SD: the refuters' refits
    # start there and scale by them (no pass over X to recompute them)
    start_coef: np.ndarray | None = None
    scaling: tuple[np.ndarray, np.ndarray] | None = None
    segment_columns: tuple[str, ...] = ()  # the top-level segments
    segment_values: tuple[np.ndarray, ...] = ()  # their values as text, one array per column
    sample_weights: np.ndarray | None = None  # the top-level weights (rows of weight 0 dropped), or None
    weights_column: str | None = None
    zero_weight: int = 0  # rows of weight 0, dropped

    @cached_property
    def logit(self) -> LogitDesign | None:
        """The logistic propensity model's design the refuters' refits share (None before the fit, or
        with gradient boosting); its matrix is built by ``before_refuters``, before the workers fork."""
        if self.start_coef is None or self.scaling is None:
            return None
        return LogitDesign(self.X, self.scaling, names=self.covariates)


@dataclass(frozen=True)
class _Run:
    keep: np.ndarray
    nuisance: Nuisance
    value: float
    std_error: float
    extra: dict[str, Any]
    e_all: np.ndarray


def _estimand_of(estimand: str, overlap: bool) -> str:
    return "ato" if overlap else estimand


def _run(d: WeightingData, X: np.ndarray | None, t: np.ndarray, y: np.ndarray, seed: int, *, with_se: bool = True,
         start: np.ndarray | None = None, design: LogitDesign | None = None, s: np.ndarray | None = None) -> _Run:
    """Fit the nuisance models, trim if asked, and estimate; ``s``: the observation weights of these rows."""
    if with_se:  # the study's own fit (refuters' refits skip this): say which units lack support and why
        from causalcli.checks.overlap import require_common_support
        from causalcli.models.logit import SeparationError, explain_separation

        try:
            nu = fit_propensity(X, t, d.propensity_model, folds=d.folds, seed=seed, start=start,
                                names=d.covariates, s=s)
        except SeparationError as err:
            raise explain_separation(err, d.X_balance, d.balance_names, d.categorical, t, d.file) from None
        require_common_support(nu.e, t, d.file)
    else:
        nu = fit_propensity(X, t, d.propensity_model, folds=d.folds, seed=seed, start=start, design=design, s=s)
    keep = np.ones(t.size, dtype=bool)
    if d.trim:
        keep = (nu.e >= d.trim) & (nu.e <= 1.0 - d.trim)
        if t[keep].all() or not t[keep].any():
            raise EstimationError(f"trim {d.trim} leaves only one treatment arm ({int(keep.sum())} units kept); "
                                  "lower trim or restrict the covariates")
    e = nu.e[keep]
    if np.any(e <= 0) or np.any(e >= 1):
        raise EstimationError("propensity scores of exactly 0 or 1: some units have no chance of the other arm; "
                              "set design.options.trim or drop the covariate that separates the arms")
    if d.estimator == "ipw" and not with_se:  # a refuter's refit: the value alone
        _, _, _, _, _, _, mu1, mu0 = _hajek_means(y, t, nu.e, d.estimand, keep, s)
        return _Run(keep, nu, mu1 - mu0, float("nan"), {}, nu.e)
    if d.estimator == "ipw":
        Z = np.column_stack([np.ones(t.size), X]) if (with_se and nu.coef is not None) else None
        r = ipw(y, t, nu.e, d.estimand, Z=Z, keep=keep, s=s)
        r["Z"] = Z  # segments reuse the logistic design of the correction term
    else:
        Xk, tk, yk, sk = (X, t, y, s) if keep.all() else (X[keep], t[keep], y[keep], None if s is None else s[keep])
        m0, m1 = fit_outcome(Xk, tk, yk, d.outcome_model, folds=d.folds, seed=seed, s=sk)
        r = aipw(yk, tk, e, m0, m1, d.estimand, sk)
        if with_se:  # the balance table's weights; a refuter's refit needs the value alone
            r["weights"] = ipw(yk, tk, e, d.estimand, s=sk)["weights"]
            r["m0"], r["m1"] = m0, m1  # segments average the same fitted outcome models' scores
    return _Run(keep, nu, r["value"], r["std_error"], r, nu.e)


class WeightingDesign(BinaryTreatmentDesign[WeightingData]):
    name = "weighting"
    estimators = ("ipw", "aipw")
    estimands = ("ate", "att", "atc")
    inference = ("influence_function", "robust_weights_known")
    reference = "Lunceford and Davidian (2004); Robins, Rotnitzky and Zhao (1994); pinned to R survey::svyglm"
    provenance_packages = ("scikit-learn",)  # its boosting fits the propensity and outcome models
    weights_built = True  # the top-level weights as probability weights: every estimating equation times them
    segments_built = True  # segments.py: the effect within each segment value from the headline's nuisances

    def check_spec(self, study: "Study", spec: "LoadedSpec") -> None:
        super().check_spec(study, spec)
        check_segment_columns(study, spec.source.display)
        opts = study.design.options
        if opts.overlap and opts.estimator == "aipw":
            raise SpecError("overlap weights with estimator aipw are not built yet; use estimator: ipw "
                            "with overlap: true, or aipw without overlap", file=spec.source.display,
                            key="design.options.overlap")
        if opts.overlap and study.design.estimand not in (None, "ate"):
            raise SpecError("overlap weights estimate the effect in the overlap population (ATO), not "
                            f"{study.design.estimand!r}; remove design.estimand or overlap",
                            file=spec.source.display, key="design.estimand")

    def validate(self, study: "Study", table: "Table", spec: "LoadedSpec") -> None:
        super().validate(study, table, spec)
        check_segment_levels(study.segments, table)

    def missing_roles(self, study: "Study", identification: "Identification") -> "Roles":
        """Treatment, outcome, the adjustment set's covariates, the segment columns, then the weights (their rows
        are dropped), the order ``binary_study_arrays`` attributes them in."""
        roles = study_roles_missing(study.treatment, study.outcome, list(identification.adjustment_set),
                                    tuple(study.segments), SEGMENT_ROLE)
        used = {column for column, _, _ in roles}
        return roles + ([(study.weights, "weights", "weights")] if study.weights and study.weights not in used else [])

    def prepare(self, study: "Study", table: "Table", identification: "Identification",
                spec: "LoadedSpec") -> WeightingData:
        covs = list(identification.adjustment_set)
        categorical = tuple(c for c in study.categorical if c in covs)
        segs = tuple(study.segments)
        # a numeric segment is read as numbers (labelled 25, not 25.0), unless a categorical covariate; others as text
        as_text = tuple(c for c in segs if not table.is_numeric(c) or c in categorical)
        arrays = binary_study_arrays(table, study.treatment, study.outcome, covs, list(categorical), extra=segs,
                                     extra_text=as_text, extra_role=SEGMENT_ROLE, weights=study.weights)
        cols, X, names, t, dropped = arrays.cols, arrays.X, arrays.names, arrays.t, arrays.dropped
        cols, X, t, sample_weights, zero_weight = keep_positive_weights(cols, X, t, study.weights, table.file)
        if zero_weight and (t.all() or not t.any()):
            raise DataError(f"treatment {study.treatment!r} has only one arm in the rows of positive weight "
                            f"({study.weights!r})", file=table.file, column=study.treatment, key="treatment")
        opts = study.design.options
        from causalcli.checks.balance import balance_matrix

        Xb, bnames = balance_matrix(cols, covs, categorical)
        return WeightingData(
            X=X, t=t, y=np.asarray(cols[study.outcome], dtype=np.float64), covariates=tuple(names),
            X_balance=Xb, balance_names=tuple(bnames),
            estimand=_estimand_of(self.estimand(study, spec), opts.overlap), estimator=opts.estimator,
            trim=opts.trim, propensity_model=opts.propensity_model, outcome_model=opts.outcome_model,
            folds=opts.folds, seed=study.seed, rows=table.rows, dropped_missing=dropped, file=table.file,
            categorical=categorical, missing=arrays.missing,
            segment_columns=segs, segment_values=tuple(segment_labels(cols[c]) for c in segs),
            sample_weights=sample_weights, weights_column=study.weights, zero_weight=zero_weight,
        )

    def fit(self, prepared: WeightingData, study: "Study", seed: int, jobs: int | None = None) -> Fit:
        from causalcli.checks.balance import balance_check, balance_table
        from causalcli.checks.overlap import overlap_check, overlap_summary
        from causalcli.checks.sensitivity import evalue

        d = prepared
        sw = d.sample_weights
        run = _run(d, d.X, d.t, d.y, seed, s=sw)
        keep = run.keep
        X, t, y = d.X[keep], d.t[keep], d.y[keep]
        s_kept = None if sw is None else sw[keep]
        e = run.nuisance.e[keep]
        known = run.nuisance.coef is None and d.estimator == "ipw"
        inference = "robust_weights_known" if known else "influence_function"
        estimate = normal_estimate(run.value, run.std_error, study.conf_level, inference)
        weights = run.extra["weights"]
        n_trim_t = int((~keep & d.t).sum())
        n_trim_c = int((~keep & ~d.t).sum())
        missing = d.missing or MissingRows({"dropped_missing": d.dropped_missing})
        n = {"rows": d.rows, **missing.n, **({"dropped_zero_weight": d.zero_weight} if d.zero_weight else {}),
             "treated": int(d.t.sum()),
             "control": int((~d.t).sum()), "used": int(keep.sum()), "trimmed_treated": n_trim_t,
             "trimmed_control": n_trim_c}
        warnings = [*missing.warnings, *single_treated_warning(d.t)]
        warnings += zero_weight_warning(d.zero_weight, d.weights_column or "")
        if n_trim_t + n_trim_c:
            warnings.append(f"trim {d.trim} dropped {n_trim_t} treated and {n_trim_c} control units with a "
                            f"propensity score outside [{d.trim}, {1 - d.trim}]; the estimate is the effect in "
                            "the remaining population")
        bounds = study.thresholds.propensity_bounds
        sd_convention = "ate" if d.estimand == "ato" else d.estimand  # overlap weights: pooled SD, as MatchIt
        # before: the arms weighted by the observation weights alone, as MatchIt's s.weights
        balance = balance_table(d.X_balance[keep], t, d.balance_names, weights, sd_convention, sample_weights=s_kept)
        # Overlap is judged on the scores before trimming, the population the user gave.
        trimmed = float((~keep).mean()) if sw is None else float(sw[~keep].sum() / sw.sum())
        overlap = overlap_summary(run.e_all, d.t, bounds, _expand(weights, keep), share_trimmed=trimmed,
                                  propensity_after_trim={"min": float(e.min()), "max": float(e.max())},
                                  sample_weights=sw)
        arm = {"att": "treated", "atc": "control"}.get(d.estimand, "all")
        checks = [balance_check(balance, study.thresholds.balance_smd, "weighting"),
                  overlap_check(overlap, study.thresholds.max_outside, bounds, arm, narrower=self.estimands)]
        if d.trim:
            checks[1] = overlap_check(overlap_summary(e, t, bounds, weights, sample_weights=s_kept),
                                      study.thresholds.max_outside, bounds, arm, narrower=self.estimands)
        sd_y = float(np.std(y, ddof=1)) if s_kept is None else math.sqrt(float(np.cov(y, aweights=s_kept)))
        sens = {"e_value": evalue(estimate.value, estimate.ci_lower, estimate.ci_upper, sd_y)}
        sens["rosenbaum"] = {"detail": "Rosenbaum bounds need matched sets; they are reported by method: matching."}
        w_raw, _ = ipw_weights(e, t, d.estimand)
        diagnostics = {
            "balance": balance,
            "balance_threshold": study.thresholds.balance_smd,
            "overlap": overlap,
            "sensitivity": sens,
            "weighting": {
                "estimator": d.estimator,
                "estimand": d.estimand,
                "normalisation": "Hajek (weights sum to 1 within each arm)",
                "max_weight_share": float(weights.max()),
                "max_raw_weight": float(w_raw.max()),
                "trim": d.trim,
                "mean_treated": run.extra.get("mean_treated"),
                "mean_control": run.extra.get("mean_control"),
                "std_error_weights_known": run.extra.get("std_error_weights_known"),
                "std_error_note": ("std_error accounts for the estimated propensity score (stacked estimating "
                                   "equations); std_error_weights_known is R survey::svyglm's sandwich"
                                   if d.estimator == "ipw" and not known else
                                   "influence-function standard error" if d.estimator == "aipw" else
                                   "weights-known sandwich (as survey::svyglm): the gbm propensity score is "
                                   "not corrected for; prefer aipw"),
            },
            "propensity_model": _model_info(run.nuisance, d),
        }
        if sw is not None:
            diagnostics["weights"] = {
                "column": d.weights_column, "zero_weight_rows": d.zero_weight, "sum": float(sw.sum()),
                "note": "probability (sampling) weights: every estimating equation is multiplied by them (the "
                        "propensity logit, the weighted means or outcome models, the balance table's means and the "
                        "overlap shares); rows of weight 0 are dropped"}
        if d.estimator == "aipw":
            diagnostics["outcome_model"] = {"model": "OLS per arm" if d.outcome_model == "linear" else
                                            f"gradient boosting per arm, {d.folds}-fold cross-fitted"}
        effects = []
        if d.segment_columns:
            by_segment = segment_effects(d, run, study.conf_level, study.thresholds.alpha, inference)
            effects, diagnostics["heterogeneity"] = by_segment.effects, by_segment.heterogeneity
            warnings += by_segment.warnings
        return Fit(d.estimator, d.estimand, estimate, n, effects=effects, diagnostics=diagnostics, checks=checks,
                   warnings=warnings,
                   refute_on=replace(d, start_coef=run.nuisance.coef, scaling=(d.X.mean(axis=0), d.X.std(axis=0))))

    def before_refuters(self, prepared: WeightingData, names: list[str]) -> None:
        if prepared.logit is not None:
            prepared.logit.matrix  # built here, in the main process: forked workers share its pages

    def point(self, prepared: WeightingData, *, treatment=None, extra_covariate=None, rows=None) -> float:
        d = prepared
        X, t, y, s = d.X, d.t, d.y, d.sample_weights
        start, design = d.start_coef, d.logit
        # with the shared design, X itself is read only by aipw's outcome models
        reads_x = design is None or d.estimator == "aipw"
        if rows is not None:
            X, t, y = X[rows] if reads_x else None, t[rows], y[rows]
            s = None if s is None else s[rows]
            design = None if design is None else design.subset(rows)
        if treatment is not None:
            t = treatment
            if start is not None:  # a permuted treatment is independent of X: start from no slopes
                share = float(np.mean(t))
                start = np.zeros_like(start)
                start[0] = math.log(share / (1.0 - share)) if 0.0 < share < 1.0 else 0.0
        if extra_covariate is not None:
            X = np.column_stack([X, extra_covariate]) if reads_x else None
            start = None if start is None else np.append(start, 0.0)
            design = None if design is None else design.with_column(extra_covariate)
        # Newton from a nearby start reaches the same optimum (to fit_logit's tolerance) in fewer steps
        return _run(d, X, t, y, d.seed, with_se=False, start=start, design=design, s=s).value


def _expand(w: np.ndarray, keep: np.ndarray) -> np.ndarray:
    out = np.zeros(keep.size)
    out[keep] = w
    return out


def _model_info(nu: Nuisance, d: WeightingData) -> dict[str, Any]:
    if nu.coef is not None:
        return {"model": "logistic regression (unpenalised maximum likelihood)", "iterations": nu.iterations,
                "coefficients": dict(zip(("(intercept)", *d.covariates), map(float, nu.coef)))}
    return {"model": f"histogram gradient boosting, {d.folds}-fold cross-fitted"}
