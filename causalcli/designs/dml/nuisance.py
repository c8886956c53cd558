"""The nuisance stage of dml: the learners of E[Y|X] and E[T|X], the EconML estimator that
cross-fits them on explicit folds, and the out-of-fold diagnostics (fit scores, propensity range)."""

from __future__ import annotations

import warnings
from typing import TYPE_CHECKING, Any

import numpy as np

from causalcli.checks.overlap import (arm_ranges, no_propensity_check, one_sided_shares, overlap_check,
                                      score_histogram)
from causalcli.designs.dml.data import CrossFit, DmlData
from causalcli.errors import EstimationError
from causalcli.models.boosting import NAME_SUFFIX, boosting_classifier, boosting_regressor
from causalcli.models.folds import fold_ids, splits

if TYPE_CHECKING:  # pragma: no cover
    from causalcli.records import Check

THREADED_ROWS = 20_000  # below this, nuisance models fit on one thread (see thread_limit)
EXTREME = 1e-6  # a cross-fitted propensity this close to 0 or 1 counts as "at 0 or 1"
EXTRAPOLATION = ("the covariates nearly determine treatment there, so the effect rests on extrapolation: "
                 "restrict the sample (data.filter) or drop covariates that decide treatment")


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
        "gbm": (f"HistGradientBoostingRegressor{NAME_SUFFIX}", f"HistGradientBoostingClassifier{NAME_SUFFIX}"),
        "lasso": ("StandardScaler + LassoCV(cv=3)", "StandardScaler + LogisticRegressionCV(penalty='l1', cv=3)"),
        "forest": ("RandomForestRegressor(100 trees, min_samples_leaf=5)",
                   "RandomForestClassifier(100 trees, min_samples_leaf=5)"),
        "linear": ("LinearRegression", "LogisticRegression(unpenalised, Newton)"),
    }[learner]
    return {"outcome": names[0], "treatment": names[1] if binary else names[0]}


def make_learners(learner: str, binary: bool, seed: int) -> tuple[Any, Any]:
    """(model_y, model_t) for a learner name; every random_state is the seed."""
    from sklearn.base import clone

    if learner == "gbm":
        reg, clf = boosting_regressor(seed), boosting_classifier(seed)  # early stopping at every size
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

        # Newton steps reach the maximum likelihood whatever the covariates' scales; lbfgs stopped far
        # from it on squared covariates (NHEFS weight^2 ~ 10^4: propensities off by 0.16, 4 s a fold)
        reg = LinearRegression()
        clf = LogisticRegression(penalty=None, solver="newton-cholesky", tol=1e-10, max_iter=100)
    return reg, (clf if binary else clone(reg))


def step_weights(model: Any, sample_weight: np.ndarray | None) -> dict[str, np.ndarray]:
    """``fit``'s keyword for observation weights: ``sample_weight``, or for a pipeline (``learner: lasso``) the
    weights of every step (the scaler's weighted mean and SD, the lasso's weighted loss): scikit-learn's
    ``Pipeline.fit`` takes no ``sample_weight`` of its own."""
    if sample_weight is None:
        return {}
    steps = getattr(model, "steps", None)
    if steps is None:
        return {"sample_weight": sample_weight}
    return {f"{name}__sample_weight": sample_weight for name, _ in steps}


def fit_weighted(model: Any, X: np.ndarray, y: np.ndarray, sample_weight: np.ndarray | None = None) -> Any:
    """``model.fit`` with the observation weights passed as the model takes them (``step_weights``)."""
    return model.fit(X, y, **step_weights(model, sample_weight))


def weighted_cv_selector(pipeline: Any) -> Any:
    """EconML's selector of a cross-validated pipeline (the lasso's: the penalty chosen once on every row over
    the cross-fitting folds, then a fixed-penalty lasso fitted in each fold), with ``sample_weight`` handed to
    every step of the pipeline: EconML passes it to ``Pipeline.fit`` as is, which refuses it. Without weights
    this is EconML's own selector, step for step."""
    from econml.sklearn_extensions.model_selection import SklearnCVSelector

    class WeightedPipelineSelector(SklearnCVSelector):
        def train(self, is_selecting, folds, X, y, groups=None, sample_weight=None):
            return super().train(is_selecting, folds, X, y, groups=groups,
                                 **step_weights(self.searcher, sample_weight))

    return WeightedPipelineSelector(pipeline)


def build_estimator(d: DmlData, seed: int, ids: np.ndarray) -> Any:
    model_y, model_t = make_learners(d.learner, d.binary, seed)
    if d.learner == "lasso":
        model_y, model_t = weighted_cv_selector(model_y), weighted_cv_selector(model_t)
    cv = splits(ids, d.folds)
    if d.model == "linear":
        LinearDML = econml_dml().LinearDML
        return LinearDML(model_y=model_y, model_t=model_t, discrete_treatment=d.binary, cv=cv, random_state=seed)
    return forest_dml_class()(model_y=model_y, model_t=model_t, discrete_treatment=d.binary, cv=cv,
                              random_state=seed, n_estimators=d.trees, min_samples_leaf=d.min_leaf, drate=True,
                              n_jobs=1)  # predictions on one thread: see forest_dml_class


def econml_dml() -> Any:
    """``econml.dml``, imported without DoWhy unless something already imported it.

    ``econml.dml`` imports ``econml.dowhy``, which imports DoWhy when it is installed (an optional dependency
    of EconML: without it the wrapper is a placeholder raising on use). causalcli never calls that wrapper,
    and DoWhy's import (sympy, its plotting) took 1.2 s of a 5 s dml command on the 401(k) data. DoWhy is
    made unimportable for that one import, so EconML takes its own without-DoWhy path; a study whose graph
    already imported DoWhy (``causalcli.graph``) keeps it.
    """
    import importlib
    import sys

    if "econml.dml" in sys.modules or "dowhy" in sys.modules:
        return importlib.import_module("econml.dml")
    sys.modules["dowhy"] = None  # type: ignore[assignment]  # None in sys.modules: `import dowhy` raises ImportError
    try:
        return importlib.import_module("econml.dml")
    finally:
        if sys.modules.get("dowhy", 0) is None:
            del sys.modules["dowhy"]


_FOREST_DML: list[type] = []  # the class forest_dml_class builds, once a process


def forest_dml_class() -> type:
    """EconML's CausalForestDML whose final forest grows its trees on every core and predicts on one thread.

    EconML's forest sums tree predictions in the order its threads finish, so with ``n_jobs`` > 1 the
    last digits of a prediction vary from run to run. Growing the trees is most of the cost and is
    order-free (each tree has its seed and subsample drawn before the threads start, and comes back
    in its place): only that runs on every core (``n_jobs=-1`` during ``fit``, as EconML's default).
    The class is built on first use because econml is imported on use.
    """
    if _FOREST_DML:
        return _FOREST_DML[0]
    CausalForestDML = econml_dml().CausalForestDML
    from econml.grf import CausalForest, MultiOutputGRF

    class ThreadedGrowthForest(CausalForest):
        def fit(self, X, T, y, **kwargs):
            jobs, self.n_jobs = self.n_jobs, -1
            try:
                return super().fit(X, T, y, **kwargs)
            finally:
                self.n_jobs = jobs

    class ThreadedGrowthCausalForestDML(CausalForestDML):
        def _gen_model_final(self):
            return MultiOutputGRF(ThreadedGrowthForest(**super()._gen_model_final().estimator.get_params()))

    _FOREST_DML.append(ThreadedGrowthCausalForestDML)
    return ThreadedGrowthCausalForestDML


def plain_final_forest(est: Any) -> Any:
    """The fit's final forest, unfitted, as EconML's own classes (picklable for the refuters' workers)."""
    from econml.grf import CausalForest, MultiOutputGRF

    return MultiOutputGRF(CausalForest(**est.model_final.estimator.get_params()))


def fit_quietly(est: Any, y: np.ndarray, t: np.ndarray, X: np.ndarray | None, W: np.ndarray | None,
                sample_weight: np.ndarray | None = None) -> list[str]:
    """Fit with EconML's and scikit-learn's warnings caught; returns the distinct ones worth reporting.
    ``sample_weight``: the observation weights, which EconML passes to every nuisance fit and the final stage."""
    from sklearn.exceptions import ConvergenceWarning

    from causalcli.runtime import progress

    with warnings.catch_warnings(record=True) as caught, progress.task("dml: cross-fitting", 1) as advance:
        warnings.simplefilter("always")
        try:
            est.fit(y, t, X=X, W=W, cache_values=True, **({} if sample_weight is None else
                                                          {"sample_weight": sample_weight}))
            advance(1)
        except (ValueError, np.linalg.LinAlgError) as exc:
            raise EstimationError(f"EconML could not fit the model ({exc.__class__.__name__}: "
                                  f"{str(exc).splitlines()[0]})") from exc
    out = []
    if any(issubclass(w.category, ConvergenceWarning) for w in caught):
        out.append("a nuisance learner did not converge in some fold (scikit-learn ConvergenceWarning); "
                   "consider another learner or scaling the covariates")
    return out


def cross_fit(d: DmlData, X: np.ndarray | None, seed: int) -> tuple[Any, CrossFit, list[str]]:
    """The fitted EconML estimator, its ``CrossFit`` (folds drawn from the seed, out-of-fold
    residuals) and the warnings worth reporting; exit 4 when the residuals cannot carry an effect."""
    ids = fold_ids(d.t, d.binary, d.folds, seed)
    est = build_estimator(d, seed, ids)
    with thread_limit(d.t.size):
        caught = fit_quietly(est, d.y, d.t, X, d.W if d.model == "linear" else None, d.sample_weights)
    y_res, t_res, _, _ = est.residuals_
    y_res = np.asarray(y_res, dtype=np.float64).ravel()
    t_res = np.asarray(t_res, dtype=np.float64).ravel()
    if not np.isfinite(y_res).all() or not np.isfinite(t_res).all():
        raise EstimationError("the nuisance models gave non-finite predictions; try another learner",
                              key="design.options.learner")
    if np.dot(t_res, t_res) <= 1e-12 * max(np.dot(d.t - d.t.mean(), d.t - d.t.mean()), 1e-300):
        raise EstimationError("the covariates predict the treatment perfectly: no treatment variation is left "
                              "to estimate an effect (no overlap at all)", key="covariates")
    # model: forest: the final forest unfitted, same parameters: refuters refit the final forest only
    final = plain_final_forest(est) if d.model == "forest" else None
    # the fold models (first of EconML's Monte Carlo iterations, the only one here): random_common_cause continues them
    cf = CrossFit(seed=seed, ids=ids, y_res=y_res, t_res=t_res, final=final, models_y=tuple(est.models_y[0]),
                  models_t=tuple(est.models_t[0]))
    return est, cf, caught


def nuisance_summary(est: Any, d: DmlData, y_res: np.ndarray, t_res: np.ndarray,
                     bounds: tuple[float, float]) -> dict[str, Any]:
    """Cross-fitted (out-of-fold) fit of the nuisance models, and the propensity range for a binary treatment.
    With observation weights the scores and shares are weighted (EconML's by-fold scores too); the counts and
    the histogram count rows."""
    s = d.sample_weights
    w = np.ones(d.t.size) if s is None else s

    def r2(res: np.ndarray, v: np.ndarray) -> float:
        if s is None:
            ss = float(np.dot(v - v.mean(), v - v.mean()))
            return 1.0 - float(np.dot(res, res)) / ss if ss > 0 else float("nan")
        centred = v - float(np.dot(w, v)) / float(w.sum())
        ss = float(np.dot(w, centred * centred))
        return 1.0 - float(np.dot(w, res * res)) / ss if ss > 0 else float("nan")

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
    out.update({
        "propensity_auc": float(roc_auc_score(t, p, sample_weight=s)),
        "propensity_brier": float(np.average((d.t - p) ** 2, weights=s)),
        "treatment_accuracy_by_fold": [float(v) for v in np.ravel(est.nuisance_scores_t)],
        **arm_ranges(p, t),
        "bounds": [lo, hi],
        "share_all_outside": float(np.average(outside, weights=s)),
        "share_treated_outside": float(np.average(outside[t], weights=None if s is None else s[t])),
        "share_treated_above": one_sided_shares(p, t, bounds, sample_weights=s)["share_treated_above"],
        "at_zero_or_one": int(np.count_nonzero((p <= EXTREME) | (p >= 1 - EXTREME))),
        "histogram": score_histogram(p, t, clip=True),  # learners may stray a hair outside [0, 1]
    })
    return out


def worse_than_constant(nuisance: dict[str, Any], d: DmlData) -> list[str]:
    """Warnings for nuisance models that predict worse out of fold than a constant does (the mean, or the
    treated share): such a learner overfits the rows, and its residuals add noise to the effect."""
    others = ", ".join(name for name in ("lasso", "linear", "gbm") if name != d.learner)
    advice = (f"learner: {d.learner} overfits these {d.t.size:,} rows, which adds noise to the estimate; "
              f"try another learner (design.options.learner: {others})")
    poor = []
    if nuisance["outcome_r2"] < 0:
        poor.append(f"the outcome model predicts worse than the outcome's mean (out-of-fold R^2 "
                    f"{nuisance['outcome_r2']:.3f})")
    if d.binary:
        share = float(np.average(d.t, weights=d.sample_weights))
        constant = share * (1 - share)
        if nuisance["propensity_brier"] > constant:
            poor.append(f"the treatment model predicts worse than the treated share (out-of-fold Brier score "
                        f"{nuisance['propensity_brier']:.3f} against {constant:.3f})")
    elif nuisance["treatment_r2"] < 0:
        poor.append(f"the treatment model predicts worse than the treatment's mean (out-of-fold R^2 "
                    f"{nuisance['treatment_r2']:.3f})")
    return [f"{'; '.join(poor)}: {advice}"] if poor else []


def dml_overlap_check(nuisance: dict[str, Any], d: DmlData, max_outside: float,
                      bounds: tuple[float, float]) -> Check:
    """Overlap of the cross-fitted propensity (of all units for the ATE, of the treated for the ATT)."""
    if not d.binary:
        return no_propensity_check("the treatment is continuous: there is no propensity score; "
                                   "diagnostics.nuisance.treatment_residual_share shows how much of the "
                                   "treatment the covariates leave unexplained")
    return overlap_check(nuisance, max_outside, bounds, "all" if d.estimand == "ate" else "treated",
                         score="cross-fitted propensity", extreme=nuisance["at_zero_or_one"], advice=EXTRAPOLATION,
                         narrower=("att",))
