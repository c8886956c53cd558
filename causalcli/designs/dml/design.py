"""Double machine learning through EconML.

``model: linear`` is EconML's ``LinearDML``: the outcome and the treatment are
residualised on the covariates with cross-fitted learners, and the outcome
residual is regressed on the treatment residual (times the segment dummies,
when ``segments`` are given), with a heteroskedasticity-robust (HC1) covariance.
``model: forest`` is EconML's ``CausalForestDML``: the same residuals feed a
generalised random forest over the covariates; for a binary treatment the ATE
and ATT are its doubly robust averages of out-of-bag forest predictions.

Cross-fitting folds are drawn once from the seed (stratified by a binary
treatment) and passed to EconML as explicit splits, so refuters reuse them.

References
----------
Chernozhukov, V., Chetverikov, D., Demirer, M., Duflo, E., Hansen, C., Newey, W.
and Robins, J. (2018). Double/debiased machine learning for treatment and
structural parameters. The Econometrics Journal 21(1), C1-C68.
Athey, S., Tibshirani, J. and Wager, S. (2019). Generalized random forests.
Annals of Statistics 47(2), 1148-1178.
Battocchi, K. et al. (2019). EconML: A Python package for ML-based heterogeneous
treatment effects estimation. https://github.com/py-why/EconML
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass, field, replace
from typing import TYPE_CHECKING, Any

import numpy as np

from causalcli.data.table import TABLE, MissingRows, require_columns, study_arrays, study_roles
from causalcli.data.table import quote_identifier as _quote
from causalcli.designs.base import Design, Fit, require
from causalcli.errors import DataError, EstimationError, SpecError
from causalcli.inference.estimate import normal_estimate
from causalcli.models.folds import fold_ids, splits, training_fold_means
from causalcli.records import Check, Estimate

if TYPE_CHECKING:  # pragma: no cover
    from causalcli.data.table import Table
    from causalcli.graph import Identification
    from causalcli.spec.loading import LoadedSpec
    from causalcli.spec.models import Study

HIST_BINS = 20
CATE_QUANTILES = (0.05, 0.1, 0.25, 0.5, 0.75, 0.9, 0.95)
TOP_MODIFIERS = 10
MAX_SEGMENT_LEVELS = 50
THREADED_ROWS = 20_000  # below this, nuisance models fit on one thread (see thread_limit)
EXTREME = 1e-6  # a cross-fitted propensity this close to 0 or 1 counts as "at 0 or 1"

INFERENCE = {
    "linear": "econml_linear_dml_hc1",  # LinearDML final stage: OLS with HC1 sandwich covariance
    "forest_dr": "econml_forest_doubly_robust",  # CausalForestDML ate_/att_: mean of DR scores over OOB predictions
    "forest_blb": "econml_forest_blb_conservative",  # mean CATE; EconML's upper bound from BLB pointwise variances
}


@dataclass(frozen=True)
class DmlData:
    """Arrays the estimator and the refuters share (picklable for joblib workers).

    ``state`` is filled by ``fit`` with the fold assignment and the cross-fitted
    residuals, which the refuters reuse.
    """

    W: np.ndarray  # covariates (controls), float
    covariates: tuple[str, ...]
    t: np.ndarray  # float; 0/1 when binary
    y: np.ndarray
    binary: bool
    S: np.ndarray  # segment dummies (first level of each column dropped); (n, 0) without segments
    segment_dummies: tuple[str, ...]
    segment_columns: tuple[str, ...]
    segment_values: tuple[np.ndarray, ...]  # text labels, one array per segment column
    model: str
    learner: str
    folds: int
    trees: int
    min_leaf: int
    estimand: str
    treatment: str
    rows: int
    dropped_missing: int
    file: str
    state: dict = field(default_factory=dict, compare=False)
    missing: MissingRows | None = None  # rows dropped for a missing value, by role


class DmlDesign(Design):
    name = "dml"
    summary = "Double machine learning through EconML: LinearDML and CausalForestDML, effects by segment"
    estimators = ("linear_dml", "causal_forest_dml")
    estimands = ("ate", "att")
    inference = tuple(INFERENCE.values())
    # Refuters reuse the cross-fitted residuals (placebo_treatment, data_subset) or the folds
    # (random_common_cause refits the nuisance models), so fewer simulations suffice by default.
    default_simulations = {"placebo_treatment": 20, "random_common_cause": 5, "data_subset": 20}
    reference = ("Chernozhukov et al. (2018), Econometrics Journal; Athey, Tibshirani and Wager (2019), "
                 "Annals of Statistics; EconML (py-why)")
    weights_built = False
    uses_adjustment_set = True  # covariates outside the graph's adjustment set are left out (and warned)

    # ------------------------------------------------------------ spec and data

    def check_spec(self, study: "Study", spec: "LoadedSpec") -> None:
        require(study, spec, "treatment", "outcome", "covariates")
        self.estimand(study, spec)
        if study.treatment in study.segments:
            raise SpecError("the treatment cannot be a segment", file=spec.source.display, key="segments")

    def validate(self, study: "Study", table: "Table", spec: "LoadedSpec") -> None:
        from causalcli.data.types import coded_binary

        roles = study_roles(study, "numeric")
        if coded_binary(table, study.treatment, study.design.treated_value):  # yes/no, true/false, two labels
            roles[study.treatment] = ("treatment", "binary")
        require_columns(table, roles, study.design.treated_value)
        binary = self._binary(study, table, spec)
        if self.estimand(study, spec) == "att" and not binary:
            raise SpecError(f"estimand 'att' needs a binary treatment; {study.treatment!r} is continuous "
                            "(use estimand: ate, the effect of one more unit of treatment)",
                            file=spec.source.display, key="design.estimand")
        for i, c in enumerate(study.segments):
            levels = table.sql(f"SELECT count(DISTINCT {_quote(c)}) FROM {TABLE}")[0][0]
            if levels > MAX_SEGMENT_LEVELS:
                raise DataError(f"segment column {c!r} has {levels} values (at most {MAX_SEGMENT_LEVELS}); "
                                "coarsen it into groups", file=table.file, key=f"segments[{i}]", column=c)

    def _binary(self, study: "Study", table: "Table", spec: "LoadedSpec") -> bool:
        kind = study.design.options.treatment_type
        q = _quote(study.treatment)
        distinct, outside = table.sql(
            f"SELECT count(DISTINCT {q}), count(*) FILTER (WHERE CAST({q} AS DOUBLE) NOT IN (0, 1)) FROM {TABLE}")[0]
        if distinct < 2:
            raise DataError(f"treatment column {study.treatment!r} has a single value; it must vary",
                            file=table.file, key="treatment", column=study.treatment)
        if kind == "binary" and outside:
            raise DataError(f"treatment_type is binary but {study.treatment!r} takes values other than 0 and 1",
                            file=table.file, key="treatment", column=study.treatment)
        if kind == "auto":
            return not outside
        return kind == "binary"

    def prepare(self, study: "Study", table: "Table", identification: "Identification", spec: "LoadedSpec") -> DmlData:
        covs = list(identification.adjustment_set)
        if not covs:
            raise SpecError("dml needs at least one covariate to adjust for", file=spec.source.display,
                            key="covariates")
        segs = list(study.segments)
        categorical = tuple(c for c in study.categorical if c in covs)
        arrays = study_arrays(table, study.treatment, study.outcome, covs, list(categorical), extra=tuple(segs),
                              extra_text=tuple(segs), extra_role=("segments", "segment"))
        cols, W, names, t, dropped = arrays.cols, arrays.X, arrays.names, arrays.t, arrays.dropped
        n = t.size
        binary = self._binary(study, table, spec)
        opts = study.design.options
        if binary:
            n_treated = int(t.sum())
            if min(n_treated, n - n_treated) < 2 * opts.folds:
                raise DataError(f"{min(n_treated, n - n_treated)} units in the smaller arm of {study.treatment!r}: "
                                f"too few for {opts.folds} cross-fitting folds (need {2 * opts.folds})",
                                file=table.file, key="design.options.folds", column=study.treatment)
        elif np.ptp(t) == 0:
            raise DataError(f"treatment {study.treatment!r} is constant in the complete rows", file=table.file,
                            key="treatment", column=study.treatment)
        seg_values = tuple(np.asarray(cols[c]).astype(str) for c in segs)
        dummies, dummy_names = [], []
        for c, values in zip(segs, seg_values):
            levels = np.unique(values)
            for level in levels[1:]:
                dummies.append((values == level).astype(np.float64))
                dummy_names.append(f"{c}={level}")
        S = np.column_stack(dummies) if dummies else np.empty((n, 0))
        return DmlData(
            W=W, covariates=tuple(names), t=t, y=np.asarray(cols[study.outcome], dtype=np.float64), binary=binary,
            S=S, segment_dummies=tuple(dummy_names), segment_columns=tuple(segs), segment_values=seg_values,
            model=opts.model, learner=opts.learner, folds=opts.folds, trees=opts.trees, min_leaf=opts.min_leaf,
            estimand=self.estimand(study, spec), treatment=study.treatment, rows=table.rows,
            dropped_missing=dropped, file=table.file, missing=arrays.missing,
        )

    # ------------------------------------------------------------ estimation

    def fit(self, prepared: DmlData, study: "Study", seed: int, jobs: int | None = None) -> Fit:
        d = prepared
        ids = fold_ids(d.t, d.binary, d.folds, seed)
        est, X, W = build_estimator(d, seed, ids), effect_modifiers(d), (d.W if d.model == "linear" else None)
        with thread_limit(d.t.size):
            caught = fit_quietly(est, d.y, d.t, X, W)
        y_res, t_res, _, _ = est.residuals_
        y_res = np.asarray(y_res, dtype=np.float64).ravel()
        t_res = np.asarray(t_res, dtype=np.float64).ravel()
        if not np.isfinite(y_res).all() or not np.isfinite(t_res).all():
            raise EstimationError("the nuisance models gave non-finite predictions; try another learner",
                                  key="design.options.learner")
        if np.dot(t_res, t_res) <= 1e-12 * max(np.dot(d.t - d.t.mean(), d.t - d.t.mean()), 1e-300):
            raise EstimationError("the covariates predict the treatment perfectly: no treatment variation is left "
                                  "to estimate an effect (no overlap at all)", key="covariates")
        d.state.update(seed=seed, ids=ids, y_res=y_res, t_res=t_res)
        if d.model == "forest":
            d.state["final"] = est.model_final  # unfitted, same parameters: refuters refit the final forest only
        treated = d.t == 1 if d.binary else None
        estimate = headline(est, d, X, study.conf_level)
        effects, warn_seg = segment_effects(est, d, X, study.conf_level)
        missing = d.missing or MissingRows({"dropped_missing": d.dropped_missing})
        n = {"rows": d.rows, **missing.n, "used": int(d.t.size)}
        if d.binary:
            n.update(treated=int(treated.sum()), control=int((~treated).sum()))
        nuisance = nuisance_summary(est, d, y_res, t_res, study.thresholds.propensity_bounds)
        checks = [overlap_check(nuisance, d, study.thresholds.max_outside, study.thresholds.propensity_bounds)]
        diagnostics: dict[str, Any] = {
            "nuisance": nuisance,
            "dml": {
                "estimator": "LinearDML" if d.model == "linear" else "CausalForestDML",
                "learner": d.learner,
                "learners": learner_names(d.learner, d.binary),
                "folds": d.folds,
                "fold_sizes": np.bincount(ids, minlength=d.folds).tolist(),
                "treatment_type": "binary" if d.binary else "continuous",
                "effect_scale": ("treated (1) against control (0)" if d.binary
                                 else "per one unit of treatment (a linear dose-response is assumed)"),
                "controls": list(d.covariates),
                "effect_modifiers": effect_modifier_names(d),
            },
        }
        if d.segment_columns:
            diagnostics["heterogeneity"] = heterogeneity_tests(est, d, effects, y_res, t_res)
        if d.model == "forest":
            diagnostics["cate"] = cate_summary(est, d, X)
        warnings_out = [*missing.warnings, *caught, *warn_seg]
        if d.model == "linear" and not d.segment_columns and d.estimand == "att":
            warnings_out.append("model: linear without segments estimates one constant effect, so the ATT equals "
                                "the ATE; use segments or model: forest for effects that differ among the treated")
        estimator = "linear_dml" if d.model == "linear" else "causal_forest_dml"
        return Fit(estimator, d.estimand, estimate, n, effects=effects, diagnostics=diagnostics, checks=checks,
                   warnings=warnings_out)

    # ------------------------------------------------------------ refuters

    def point(self, prepared: DmlData, *, treatment=None, extra_covariate=None, rows=None) -> float:
        """The point estimate under a refuter's change, recomputing only what it touches.

        * an added covariate changes the nuisance models: they are refitted on the same folds;
        * a permuted treatment is independent of the covariates by construction, so its
          cross-fitted propensity is its share in the training folds: the outcome residuals
          are reused and only the final stage is refitted;
        * a subset of rows keeps the out-of-fold residuals (still out of fold) and refits
          only the final stage.
        """
        d = prepared
        s = d.state
        seed = s["seed"]
        if extra_covariate is not None:
            W = np.column_stack([d.W, extra_covariate])
            e = replace(d, W=W, covariates=(*d.covariates, "random"), state={})
            est = build_estimator(e, seed, s["ids"])
            with thread_limit():
                fit_quietly(est, e.y, e.t, effect_modifiers(e), W if e.model == "linear" else None)
                return headline(est, e, effect_modifiers(e), 0.95).value
        y_res, t_res, t, ids = s["y_res"], s["t_res"], d.t, s["ids"]
        if treatment is not None:
            t = np.asarray(treatment, dtype=np.float64)
            t_res = t - training_fold_means(t, ids, d.folds)
        F = final_features(d)
        if rows is not None:
            y_res, t_res, t, F = y_res[rows], t_res[rows], t[rows], F[rows]
        target = (t == 1) if d.estimand == "att" else slice(None)
        if d.model == "linear":
            beta = final_ols(F, t_res, y_res)[0]
            return float(np.mean(F[target] @ beta))
        with thread_limit():
            return forest_final_point(s["final"], F, t, t_res, y_res, d.binary, d.estimand)

    def treatment_of(self, prepared: DmlData) -> np.ndarray:
        return prepared.t

    def units(self, prepared: DmlData) -> int:
        return int(prepared.t.size)


# ---------------------------------------------------------------- building blocks


def thread_limit(rows: int | None = None) -> Any:
    """The OpenMP/BLAS thread limit for a fit: none for the main fit of large data, else one thread.

    Refuter refits (``rows=None``) always run on one thread: the refuters fork their workers,
    and OpenMP (used by scikit-learn's gradient boosting) is not fork-safe once the parent has
    started its thread pool: a multi-threaded child can hang. One thread everywhere also keeps
    the refuters' numbers independent of ``--jobs`` (parallel sums may round differently), and
    the workers together still use every core. Below ``THREADED_ROWS`` rows the main fit also
    stays on one thread: starting and synchronising OpenMP threads costs more than it saves
    there (five times more on a busy 2-core machine).
    """
    import contextlib

    if rows is not None and rows >= THREADED_ROWS:
        return contextlib.nullcontext()
    from threadpoolctl import threadpool_limits

    return threadpool_limits(limits=1)


def learner_names(learner: str, binary: bool) -> dict[str, str]:
    names = {
        "gbm": ("HistGradientBoostingRegressor", "HistGradientBoostingClassifier"),
        "lasso": ("StandardScaler + LassoCV(cv=3)", "StandardScaler + LogisticRegressionCV(penalty='l1', cv=3)"),
        "forest": ("RandomForestRegressor(100 trees, min_samples_leaf=5)",
                   "RandomForestClassifier(100 trees, min_samples_leaf=5)"),
        "linear": ("LinearRegression", "LogisticRegression(unpenalised)"),
    }[learner]
    return {"outcome": names[0], "treatment": names[1] if binary else names[0]}


def make_learners(learner: str, binary: bool, seed: int) -> tuple[Any, Any]:
    """(model_y, model_t) for a learner name; every random_state is the seed."""
    from sklearn.base import clone

    if learner == "gbm":
        from sklearn.ensemble import HistGradientBoostingClassifier, HistGradientBoostingRegressor

        reg, clf = HistGradientBoostingRegressor(random_state=seed), HistGradientBoostingClassifier(random_state=seed)
    elif learner == "lasso":
        from sklearn.linear_model import LassoCV, LogisticRegressionCV
        from sklearn.pipeline import make_pipeline
        from sklearn.preprocessing import StandardScaler

        reg = make_pipeline(StandardScaler(), LassoCV(cv=3, random_state=seed))
        clf = make_pipeline(StandardScaler(), LogisticRegressionCV(Cs=10, cv=3, penalty="l1", solver="liblinear",
                                                                   random_state=seed))
    elif learner == "forest":
        from sklearn.ensemble import RandomForestClassifier, RandomForestRegressor

        # one job: with several, tree predictions are summed in thread-finishing order and the last digits vary
        reg = RandomForestRegressor(n_estimators=100, min_samples_leaf=5, random_state=seed, n_jobs=1)
        clf = RandomForestClassifier(n_estimators=100, min_samples_leaf=5, random_state=seed, n_jobs=1)
    else:
        from sklearn.linear_model import LinearRegression, LogisticRegression

        reg, clf = LinearRegression(), LogisticRegression(penalty=None, max_iter=2000)
    return reg, (clf if binary else clone(reg))


def build_estimator(d: DmlData, seed: int, ids: np.ndarray) -> Any:
    model_y, model_t = make_learners(d.learner, d.binary, seed)
    cv = splits(ids, d.folds)
    if d.model == "linear":
        from econml.dml import LinearDML

        return LinearDML(model_y=model_y, model_t=model_t, discrete_treatment=d.binary, cv=cv, random_state=seed)
    from econml.dml import CausalForestDML

    return CausalForestDML(model_y=model_y, model_t=model_t, discrete_treatment=d.binary, cv=cv, random_state=seed,
                           n_estimators=d.trees, min_samples_leaf=d.min_leaf, drate=True,
                           n_jobs=1)  # as the learners: reruns byte-identical (parallel predictions sum in any order)


def effect_modifiers(d: DmlData) -> np.ndarray | None:
    """X of EconML: the segment dummies (linear) or the covariates and segment dummies (forest)."""
    if d.model == "linear":
        return d.S if d.S.shape[1] else None
    return np.column_stack([d.W, d.S]) if d.S.shape[1] else d.W


def effect_modifier_names(d: DmlData) -> list[str]:
    if d.model == "linear":
        return list(d.segment_dummies)
    return [*d.covariates, *d.segment_dummies]


def final_features(d: DmlData) -> np.ndarray:
    """What the final stage models the effect on: [1, segment dummies] (linear) or X (forest)."""
    if d.model == "linear":
        return np.column_stack([np.ones(d.t.size), d.S])
    return effect_modifiers(d)


def fit_quietly(est: Any, y: np.ndarray, t: np.ndarray, X: np.ndarray | None, W: np.ndarray | None) -> list[str]:
    """Fit with EconML's and scikit-learn's warnings caught; returns the distinct ones worth reporting."""
    from sklearn.exceptions import ConvergenceWarning

    from causalcli.runtime import progress

    with warnings.catch_warnings(record=True) as caught, progress.task("dml: cross-fitting", 1) as advance:
        warnings.simplefilter("always")
        try:
            est.fit(y, t, X=X, W=W, cache_values=True)
            advance(1)
        except (ValueError, np.linalg.LinAlgError) as exc:
            raise EstimationError(f"EconML could not fit the model ({exc.__class__.__name__}: "
                                  f"{str(exc).splitlines()[0]})") from exc
    out = []
    if any(issubclass(w.category, ConvergenceWarning) for w in caught):
        out.append("a nuisance learner did not converge in some fold (scikit-learn ConvergenceWarning); "
                   "consider another learner or scaling the covariates")
    return out


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


def _chi2_sf(stat: float, df: int) -> float:
    from scipy.stats import chi2

    return float(chi2.sf(stat, df))


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
            out.append({"segment": column, "statistic": stat, "df": k, "p_value": _chi2_sf(stat, k),
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
        out.append({"segment": column, "statistic": stat, "df": len(rows) - 1, "p_value": _chi2_sf(stat, len(rows) - 1),
                    "test": "Wald chi-square of equal segment effects, segments treated as independent with "
                            "EconML's conservative standard errors"})
    return out


def nuisance_summary(est: Any, d: DmlData, y_res: np.ndarray, t_res: np.ndarray,
                     bounds: tuple[float, float]) -> dict[str, Any]:
    """Cross-fitted (out-of-fold) fit of the nuisance models, and the propensity range for a binary treatment."""

    def r2(res: np.ndarray, v: np.ndarray) -> float:
        ss = float(np.dot(v - v.mean(), v - v.mean()))
        return 1.0 - float(np.dot(res, res)) / ss if ss > 0 else float("nan")

    out: dict[str, Any] = {
        "outcome_r2": r2(y_res, d.y),
        "outcome_r2_by_fold": [float(v) for v in np.ravel(est.nuisance_scores_y)],
        "what": "out-of-fold scores of the nuisance models: each row predicted by a model fitted without its fold",
    }
    if not d.binary:
        out["treatment_r2"] = r2(t_res, d.t)
        out["treatment_r2_by_fold"] = [float(v) for v in np.ravel(est.nuisance_scores_t)]
        out["treatment_residual_share"] = float(np.dot(t_res, t_res) / np.dot(d.t - d.t.mean(), d.t - d.t.mean()))
        return out
    from sklearn.metrics import roc_auc_score

    p = d.t - t_res
    t = d.t == 1
    lo, hi = bounds
    outside = (p < lo) | (p > hi)
    edges = np.linspace(0.0, 1.0, HIST_BINS + 1)
    out.update({
        "propensity_auc": float(roc_auc_score(t, p)),
        "propensity_brier": float(np.mean((d.t - p) ** 2)),
        "treatment_accuracy_by_fold": [float(v) for v in np.ravel(est.nuisance_scores_t)],
        "propensity_treated": {"min": float(p[t].min()), "max": float(p[t].max()), "mean": float(p[t].mean())},
        "propensity_control": {"min": float(p[~t].min()), "max": float(p[~t].max()), "mean": float(p[~t].mean())},
        "bounds": [lo, hi],
        "share_all_outside": float(outside.mean()),
        "share_treated_outside": float(outside[t].mean()),
        "at_zero_or_one": int(np.count_nonzero((p <= EXTREME) | (p >= 1 - EXTREME))),
        "histogram": {
            "edges": edges.tolist(),
            "treated": np.histogram(np.clip(p[t], 0, 1), bins=edges)[0].tolist(),
            "control": np.histogram(np.clip(p[~t], 0, 1), bins=edges)[0].tolist(),
        },
    })
    return out


def overlap_check(nuisance: dict[str, Any], d: DmlData, max_outside: float, bounds: tuple[float, float]) -> Check:
    if not d.binary:
        return Check("overlap", None, "the treatment is continuous: there is no propensity score; "
                                      "diagnostics.nuisance.treatment_residual_share shows how much of the "
                                      "treatment the covariates leave unexplained")
    key, who = (("share_all_outside", "units") if d.estimand == "ate" else ("share_treated_outside", "treated units"))
    share = nuisance[key]
    extreme = nuisance["at_zero_or_one"]
    passed = bool(share <= max_outside)
    detail = (f"{share:.1%} of {who} have a cross-fitted propensity outside [{bounds[0]}, {bounds[1]}] "
              f"({'<=' if passed else '>'} {max_outside:.0%} allowed)")
    if extreme:
        detail += f"; {extreme} units sit at a propensity of 0 or 1"
    if not passed:
        detail += ("; the covariates nearly determine treatment there, so the effect rests on extrapolation: "
                   "restrict the sample (data.filter) or drop covariates that decide treatment")
    return Check("overlap", passed, detail)


def cate_summary(est: Any, d: DmlData, X: np.ndarray) -> dict[str, Any]:
    """The distribution of the forest's CATE over the rows, and the most important effect modifiers."""
    cate = np.ravel(est.effect(X, T0=0, T1=1))
    names = effect_modifier_names(d)
    importance = np.ravel(est.feature_importances_)
    order = np.argsort(-importance, kind="stable")[:TOP_MODIFIERS]
    counts, edges = np.histogram(cate, bins=HIST_BINS)
    return {
        "mean": float(cate.mean()),
        "sd": float(cate.std(ddof=1)) if cate.size > 1 else 0.0,
        "quantiles": {f"q{int(round(q * 100)):02d}": float(np.quantile(cate, q)) for q in CATE_QUANTILES},
        "share_positive": float(np.mean(cate > 0)),
        "histogram": {"edges": edges.tolist(), "counts": counts.tolist()},
        "effect_modifiers": [{"name": names[j], "importance": float(importance[j])} for j in order],
        "importance": "EconML CausalForestDML.feature_importances_: split-based heterogeneity importance",
    }


def forest_final_point(final: Any, X: np.ndarray, t: np.ndarray, t_res: np.ndarray, y_res: np.ndarray,
                       binary: bool, estimand: str) -> float:
    """Refit only the final causal forest on given residuals; the same average EconML reports.

    Binary treatment: the doubly robust mean of out-of-bag CATE plus the residual correction
    (Y_res - tau T_res) T_res / clip(p (1 - p), 0.01), p = T - T_res; else the mean CATE.
    """
    from sklearn.base import clone

    forest = clone(final)
    forest.fit(X, t_res.reshape(-1, 1), y_res.reshape(-1, 1))
    if not binary:
        return float(np.mean(np.ravel(forest.predict(X))))
    tau = np.ravel(forest.oob_predict(X))
    p = t - t_res
    score = tau + (y_res - tau * t_res) * t_res / np.clip(p * (1 - p), 1e-2, np.inf)
    if estimand == "att":
        score = score[t == 1]
    return float(np.nanmean(score))

