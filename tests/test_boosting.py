"""The gbm learners of dml and weighting (causalcli/models/boosting.py) stop early at every size, are fixed by
the seed, and above scikit-learn's 10,000-row threshold are its default fit bit for bit."""

from __future__ import annotations

import numpy as np
import pytest
from threadpoolctl import threadpool_limits

from causalcli.models.boosting import boosting_classifier, boosting_regressor


@pytest.fixture(autouse=True)
def one_thread():
    """OpenMP threads cost more than they save on these sizes on a busy machine (as in causalcli's own fits);
    scikit-learn's OpenMP runtime is loaded first, so that the limit reaches it."""
    import sklearn.ensemble  # noqa: F401

    with threadpool_limits(limits=1):
        yield


def _data(n: int, seed: int = 0) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    X = rng.normal(size=(n, 4))
    y = X[:, 0] + np.sin(2 * X[:, 1]) + rng.normal(size=n)
    t = (rng.uniform(size=n) < 1 / (1 + np.exp(-X[:, 0]))).astype(int)
    return X, y, t


def test_small_data_stops_early_and_beats_scikit_learns_default_out_of_sample():
    """On 800 rows scikit-learn's default runs all 100 iterations; ours stops before, on a validation share drawn
    from the seed (the same seed, the same model), and predicts fresh rows better."""
    from sklearn.ensemble import HistGradientBoostingClassifier, HistGradientBoostingRegressor
    from sklearn.metrics import brier_score_loss, mean_squared_error

    X, y, t = _data(800)
    Xn, yn, tn = _data(5000, seed=1)
    reg, clf = boosting_regressor(0).fit(X, y), boosting_classifier(0).fit(X, t)
    default_reg = HistGradientBoostingRegressor(random_state=0).fit(X, y)
    default_clf = HistGradientBoostingClassifier(random_state=0).fit(X, t)
    assert default_reg.n_iter_ == default_clf.n_iter_ == 100
    assert reg.do_early_stopping_ and clf.do_early_stopping_ and reg.n_iter_ < 100 and clf.n_iter_ < 100
    assert np.array_equal(reg.predict(Xn), boosting_regressor(0).fit(X, y).predict(Xn))
    assert np.array_equal(clf.predict_proba(Xn), boosting_classifier(0).fit(X, t).predict_proba(Xn))
    assert mean_squared_error(yn, reg.predict(Xn)) < mean_squared_error(yn, default_reg.predict(Xn))
    assert brier_score_loss(tn, clf.predict_proba(Xn)[:, 1]) < brier_score_loss(tn, default_clf.predict_proba(Xn)[:, 1])


@pytest.mark.parametrize("classifier", [False, True])
def test_above_ten_thousand_rows_it_is_scikit_learns_default_bit_for_bit(classifier):
    """scikit-learn's early_stopping='auto' stops early above 10,000 rows: there the fits are unchanged."""
    from sklearn.ensemble import HistGradientBoostingClassifier, HistGradientBoostingRegressor

    X, y, t = _data(10_001)
    if classifier:
        ours, default = boosting_classifier(3).fit(X, t), HistGradientBoostingClassifier(random_state=3).fit(X, t)
        assert np.array_equal(ours.predict_proba(X), default.predict_proba(X))
    else:
        ours, default = boosting_regressor(3).fit(X, y), HistGradientBoostingRegressor(random_state=3).fit(X, y)
        assert np.array_equal(ours.predict(X), default.predict(X))
    assert ours.n_iter_ == default.n_iter_ < 100
