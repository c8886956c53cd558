"""random_common_cause for dml: on small data the tree learners' fold models are refitted in full
on [W, U] (``refits_in_full``); otherwise, by warm start, the noise column enters the nuisance
models as a continuation of the fitted fold models, not through a full refit.

For fold k, with f_k the fitted nuisance model of fold k (EconML's ``models_y`` / ``models_t``), a
small model r_k is fitted on the training rows of fold k to the residual y - f_k(W), on [W, U],
and the held-out rows of fold k are predicted by f_k(W) + r_k([W, U]) (the same for the
treatment; for a binary treatment r_k regresses T - p_k with squared loss and the sum is clipped
into [0, 1], the range of the classifier's probabilities). The final stage is then refitted on
the new residuals. With ``learner: linear`` and a continuous treatment this is exactly the full
refit (Frisch-Waugh: least squares of y on [1, W, U] is least squares on [1, W] plus least
squares of its residual on [1, W, U]); with the other learners r_k continues the learner:

- gbm: histogram gradient boosting with a fifth of the iterations the fold model ran before it
  stopped early (at least ``MIN_BOOSTING_ITERATIONS``), its learning rate, tree size and
  regularisation, squared loss, no early stopping of its own;
- lasso: the lasso at the penalty the fold model chose by cross-validation (standardised
  [W, U]); a binary treatment's fold model is an L1 logistic regression, whose penalty is on
  another scale, so its residual's lasso chooses its own penalty (LassoCV, 3 folds);
- forest: a random forest of a fifth of the fold model's trees (same leaf size).

With observation weights every refit and continuation is fitted with them (the weighted residual of a
weighted fit: Frisch-Waugh holds for weighted least squares too), and the final stage is the weighted one.

f_k's predictions on every row do not depend on U, nor do the boosting bins of W: they are
computed once per process (``fold_cache``) and, through ``prime``, in the parent before the
refuters' workers fork, so the workers inherit them. ``refit_common_cause_point`` is the full refit through EconML, kept
for the tests that compare the two.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from typing import Any

import numpy as np

from causalcli.designs.dml.data import CrossFit, DmlData, effect_modifiers, nuisance_inputs
from causalcli.designs.dml.final import final_stage_point, headline
from causalcli.designs.dml.nuisance import build_estimator, fit_quietly, fit_weighted, thread_limit

MIN_BOOSTING_ITERATIONS = 10
# Tree learners fitted on at most this many rows per fold are refitted in full: exact, and cheap at this
# size. The warm start was measured 6.8 Monte Carlo SEs off the full refit on 1,500 rows when boosting ran
# all its 100 iterations there (a noise column displaces splits of W all through the fit, which no
# continuation of the fitted trees reproduces); boosting now stops early at every size
# (models/boosting.py), but the full refit stays where it costs little. The refit clones the fold model,
# early stopping included: its validation rows are drawn from the seed as the fit's were.
FULL_REFIT_TRAINING_ROWS = 10_000
TREE_LEARNERS = ("gbm", "forest")
CONTINUATION_SHARE = 5  # the continuation runs 1/5 of the fold model's boosting iterations or trees

# what random_common_cause reuses of the last fit seen in this process: {CrossFit.token: FoldCache}
_MEMO: dict[str, "FoldCache"] = {}
_PREBINNED_BOOSTING: list[type] = []  # the class prebinned_boosting builds, once a process


@dataclass(frozen=True)
class FoldCache:
    """What does not depend on U: the fold models' predictions (n x folds; column k is f_k on every
    row, on its own fold the out-of-fold prediction the residuals came from) and, for gbm, each
    fold's training rows of the nuisance inputs binned as boosting bins them (bin mapper, bins)."""

    outcome: np.ndarray
    treatment: np.ndarray
    binned: tuple = ()


def _predict(model: Any, Z: np.ndarray, classifier: bool, boosting: bool = False) -> np.ndarray:
    """The fold model's prediction. Boosting predicts from its own bins of Z (the same trees, the same
    sums, a third faster than on raw values), through scikit-learn's flag for predicting binned data."""
    if boosting:
        Z = model._bin_data(Z, is_training_data=False)
        model._in_fit = True
    try:
        return model.predict_proba(Z)[:, 1] if classifier else model.predict(Z)
    finally:
        if boosting:
            del model._in_fit


def fold_cache(d: DmlData, cf: CrossFit, rows: int | None = None) -> FoldCache:
    """The ``FoldCache`` of a fit, memoised per process by its token; ``rows`` (the data size) lets
    the parent use every core, the workers stay on one thread."""
    memo = _MEMO.get(cf.token)
    if memo is not None:
        return memo
    Z = nuisance_inputs(d)
    out = []
    for target, res, models, classifier in ((d.y, cf.y_res, cf.models_y, False),
                                            (d.t, cf.t_res, cf.models_t, d.binary)):
        P = np.empty((d.t.size, d.folds))
        for k, model in enumerate(models):
            train, held = cf.ids != k, cf.ids == k
            with thread_limit(rows):
                P[train, k] = _predict(model, Z[train], classifier, boosting=d.learner == "gbm")
            P[held, k] = target[held] - res[held]
        out.append(P)
    binned: tuple = ()
    if d.learner == "gbm":
        from sklearn.ensemble._hist_gradient_boosting.binning import _BinMapper

        with thread_limit(rows):
            binned = tuple(_bins(_BinMapper(n_bins=model.max_bins + 1, random_state=cf.seed), Z[cf.ids != k])
                           for k, model in enumerate(cf.models_y))
    _MEMO.clear()  # one fit at a time: a long batch does not accumulate them
    _MEMO[cf.token] = FoldCache(out[0], out[1], binned)
    return _MEMO[cf.token]


def _bins(mapper: Any, X: np.ndarray) -> tuple[Any, np.ndarray]:
    return mapper, mapper.fit_transform(X)


def with_noise_bins(binned: tuple[Any, np.ndarray], u: np.ndarray, seed: int) -> tuple[Any, np.ndarray]:
    """The fold's binned inputs with U's bins appended: what boosting's own binning of [inputs, U]
    gives, since each column is binned on its own."""
    from sklearn.ensemble._hist_gradient_boosting.binning import _BinMapper

    mapper, bins = binned
    noise, noise_bins = _bins(_BinMapper(n_bins=mapper.n_bins, random_state=seed), u.reshape(-1, 1))
    both = _BinMapper(n_bins=mapper.n_bins, random_state=seed)
    both.bin_thresholds_ = [*mapper.bin_thresholds_, *noise.bin_thresholds_]
    both.n_bins_non_missing_ = np.concatenate([mapper.n_bins_non_missing_, noise.n_bins_non_missing_])
    both.is_categorical_ = np.concatenate([mapper.is_categorical_, noise.is_categorical_])
    both.missing_values_bin_idx_ = mapper.missing_values_bin_idx_
    return both, np.asfortranarray(np.hstack([bins, noise_bins]))


def prebinned_boosting() -> type:
    """HistGradientBoostingRegressor that takes its training bins ready-made (``prebinned``) instead of
    binning [W, U] again in every simulation and fold: binning is most of a short continuation's cost.
    Built on first use (scikit-learn is imported on use)."""
    if _PREBINNED_BOOSTING:
        return _PREBINNED_BOOSTING[0]
    from sklearn.ensemble import HistGradientBoostingRegressor

    class PrebinnedBoosting(HistGradientBoostingRegressor):
        prebinned: tuple | None = None  # (bin mapper, bins of the training rows), set before fit

        def _bin_data(self, X, is_training_data):
            if is_training_data and self.prebinned is not None:
                self._bin_mapper, bins = self.prebinned
                return bins
            return super()._bin_data(X, is_training_data)

    _PREBINNED_BOOSTING.append(PrebinnedBoosting)
    return PrebinnedBoosting


def refits_in_full(d: DmlData, cf: CrossFit) -> bool:
    """Whether random_common_cause refits the fold models on [W, U] rather than continuing them."""
    training_rows = cf.ids.size - np.bincount(cf.ids).min()  # the largest fold's complement
    return d.learner in TREE_LEARNERS and int(training_rows) <= FULL_REFIT_TRAINING_ROWS


def prime(d: DmlData) -> None:
    """Compute the fold predictions here (the parent, every core) before the workers fork."""
    if d.cross_fit is not None and d.cross_fit.models_y and not refits_in_full(d, d.cross_fit):
        fold_cache(d, d.cross_fit, rows=d.t.size)


def continuation(fold_model: Any, learner: str, seed: int, classifier: bool) -> Any:
    """The small model that continues ``fold_model`` on [W, U] (squared loss; module docstring)."""
    if learner == "linear":
        from sklearn.linear_model import LinearRegression

        return LinearRegression()
    if learner == "gbm":
        m = fold_model
        return prebinned_boosting()(
            max_iter=max(MIN_BOOSTING_ITERATIONS, m.n_iter_ // CONTINUATION_SHARE), learning_rate=m.learning_rate,
            max_leaf_nodes=m.max_leaf_nodes, max_depth=m.max_depth, min_samples_leaf=m.min_samples_leaf,
            l2_regularization=m.l2_regularization, max_bins=m.max_bins, early_stopping=False, random_state=seed)
    if learner == "lasso":
        from sklearn.linear_model import Lasso, LassoCV
        from sklearn.pipeline import make_pipeline
        from sklearn.preprocessing import StandardScaler

        if classifier:  # an L1 logistic regression's penalty is on another scale: choose one
            return make_pipeline(StandardScaler(), LassoCV(cv=3, random_state=seed))
        # EconML refits LassoCV's choice as a Lasso at that penalty: the continuation keeps it
        return make_pipeline(StandardScaler(), Lasso(alpha=fold_model[-1].alpha))
    from sklearn.ensemble import RandomForestRegressor

    return RandomForestRegressor(n_estimators=max(1, fold_model.n_estimators // CONTINUATION_SHARE),
                                 min_samples_leaf=fold_model.min_samples_leaf, random_state=seed, n_jobs=1)


def common_cause_point(d: DmlData, cf: CrossFit, u: np.ndarray) -> float:
    """random_common_cause's value for one noise column: fold models refitted in full on small data
    of the tree learners (``refits_in_full``), continued (warm start) otherwise."""
    if refits_in_full(d, cf):
        return refitted_folds_point(d, cf, u)
    return warm_common_cause_point(d, cf, u)


def refitted_folds_point(d: DmlData, cf: CrossFit, u: np.ndarray) -> float:
    """The point estimate with ``u`` added, each fold model refitted from scratch on [W, U] (a clone:
    the same learner and seed, as EconML fits it) and the final stage refitted as the warm start's."""
    from sklearn.base import clone

    s = d.sample_weights

    def held_out(which, k, model, classifier, Z, target, train, held):
        refit = fit_weighted(clone(model), Z[train], target[train], None if s is None else s[train])
        return refit.predict_proba(Z[held])[:, 1] if classifier else refit.predict(Z[held])

    return _point_with_noise(d, cf, u, held_out)


def warm_common_cause_point(d: DmlData, cf: CrossFit, u: np.ndarray, prebinned: bool = True) -> float:
    """The point estimate with ``u`` added as a covariate, the nuisances continued fold by fold
    (``prebinned``: gbm continuations take the cached bins of the inputs, the same fit, faster)."""
    cache = fold_cache(d, cf)
    with thread_limit():
        bins = [with_noise_bins(b, u[cf.ids != k], cf.seed) for k, b in enumerate(cache.binned)] if prebinned else []
    fitted = (cache.outcome, cache.treatment)
    s = d.sample_weights

    def held_out(which, k, model, classifier, Z, target, train, held):
        P = fitted[which]
        r = continuation(model, d.learner, cf.seed, classifier)
        if bins:
            r.prebinned = bins[k]
        fit_weighted(r, Z[train], target[train] - P[train, k], None if s is None else s[train])
        pred = P[held, k] + r.predict(Z[held])
        return np.clip(pred, 0.0, 1.0) if classifier else pred

    return _point_with_noise(d, cf, u, held_out)


def _point_with_noise(d: DmlData, cf: CrossFit, u: np.ndarray, held_out: Any) -> float:
    """The final stage on the residuals of both nuisances (outcome: 0, treatment: 1) whose fold-k held-out
    predictions ``held_out(which, k, fold model, classifier, [W, U], target, train rows, held rows)`` gives."""
    Z = np.column_stack([nuisance_inputs(d), u])
    residuals = []
    with thread_limit():
        for which, (target, res, models, classifier) in enumerate(((d.y, cf.y_res, cf.models_y, False),
                                                                   (d.t, cf.t_res, cf.models_t, d.binary))):
            new = res.copy()
            for k, model in enumerate(models):
                train, held = cf.ids != k, cf.ids == k
                new[held] = target[held] - held_out(which, k, model, classifier, Z, target, train, held)
            residuals.append(new)
    return final_stage_point(with_covariate(d, u), replace(cf, y_res=residuals[0], t_res=residuals[1]))


def with_covariate(d: DmlData, u: np.ndarray) -> DmlData:
    """The data with ``u`` as one more covariate (for model: forest also an effect modifier, as in EconML)."""
    return replace(d, W=np.column_stack([d.W, u]), covariates=(*d.covariates, "random"), cross_fit=None)


def refit_common_cause_point(d: DmlData, cf: CrossFit, u: np.ndarray) -> float:
    """The point estimate with ``u`` added, every nuisance model refitted through EconML on the same folds."""
    e = with_covariate(d, u)
    est = build_estimator(e, cf.seed, cf.ids)
    with thread_limit():
        fit_quietly(est, e.y, e.t, effect_modifiers(e), e.W if e.model == "linear" else None, e.sample_weights)
        return headline(est, e, effect_modifiers(e), 0.95).value
