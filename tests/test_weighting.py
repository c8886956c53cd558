"""Weighting (IPW, AIPW) against DoubleML and DoWhy, an independent sandwich, and simulated truths.

The tests pinned to R (survey::svyglm and MatchIt::summary) are in
``tests/reference/weighting/test_r_survey_matchit.py``.
"""

from __future__ import annotations

import json
import math

import numpy as np
import pandas as pd
import pytest

from causalcli.designs.weighting.design import aipw, fit_outcome, fit_propensity, ipw
from causalcli.study.run import run_study
from tests.conftest import SPECS, invoke, simulate
from tests.reference.weighting.studies import NSW_COVS, spec_for


# ---------------------------------------------------------------- the stacked-equation SE


def _stacked_sandwich_se(X, t, y, estimand):
    """Independent check: the M-estimation sandwich with a numerical Jacobian.

    Parameters (beta, mu1, mu0); estimating functions: the logistic score and
    the two weighted-mean equations. V = A^-1 B A^-T / n.
    """
    from causalcli.models.logit import fit_logit

    Z = np.column_stack([np.ones(len(t)), X])
    beta = fit_logit(X, t.astype(float)).coef
    tf = t.astype(float)

    def w(b):
        e = 1 / (1 + np.exp(-(Z @ b)))
        return {"ate": (1 / e, 1 / (1 - e)), "att": (np.ones_like(e), e / (1 - e)),
                "atc": ((1 - e) / e, np.ones_like(e)), "ato": (1 - e, e)}[estimand], e

    (w1, w0), e = w(beta)
    mu1 = np.sum(tf * w1 * y) / np.sum(tf * w1)
    mu0 = np.sum((1 - tf) * w0 * y) / np.sum((1 - tf) * w0)
    theta = np.r_[beta, mu1, mu0]
    k = Z.shape[1]

    def g(th):
        b, m1, m0 = th[:k], th[k], th[k + 1]
        (a1, a0), ee = w(b)
        return np.column_stack([Z * (tf - ee)[:, None], tf * a1 * (y - m1), (1 - tf) * a0 * (y - m0)])

    n = len(y)
    A = np.empty((k + 2, k + 2))
    for j in range(k + 2):
        h = 1e-6 * max(1.0, abs(theta[j]))
        up, dn = theta.copy(), theta.copy()
        up[j] += h
        dn[j] -= h
        A[:, j] = (g(up).mean(0) - g(dn).mean(0)) / (2 * h)
    G = g(theta)
    B = G.T @ G / n
    Ainv = np.linalg.inv(A)
    V = Ainv @ B @ Ainv.T / n
    c = np.zeros(k + 2)
    c[k], c[k + 1] = 1, -1
    return mu1 - mu0, math.sqrt(c @ V @ c)


@pytest.mark.parametrize("estimand", ["ate", "att", "atc", "ato"])
def test_ipw_influence_function_se_equals_stacked_sandwich(estimand):
    df = simulate(800, seed=3)
    X = df[["x1", "x2"]].to_numpy()
    t = df["t"].to_numpy().astype(bool)
    y = df["y"].to_numpy()
    e = fit_propensity(X, t).e
    r = ipw(y, t, e, estimand, Z=np.column_stack([np.ones(len(t)), X]))
    value, se = _stacked_sandwich_se(X, t, y, estimand)
    assert r["value"] == pytest.approx(value, rel=1e-9)
    # numerical Jacobian by central differences: accurate to ~1e-7 relative
    assert r["std_error"] == pytest.approx(se, rel=1e-5)


# ---------------------------------------------------------------- simulated truths and coverage


def _draw(n, seed, effect=2.0):
    rng = np.random.default_rng(seed)
    X = rng.normal(size=(n, 2))
    e = 1 / (1 + np.exp(-(-0.3 + 0.8 * X[:, 0] - 0.5 * X[:, 1])))
    t = rng.uniform(size=n) < e
    y = effect * t + 1.5 * X[:, 0] + X[:, 1] + rng.normal(size=n)
    return X, t, y


@pytest.mark.parametrize("estimator,estimand", [("ipw", "ate"), ("ipw", "att"), ("aipw", "ate"),
                                                ("aipw", "att"), ("aipw", "atc")])
def test_interval_covers_the_known_effect_at_its_nominal_rate(estimator, estimand):
    """95% coverage over 200 simulated studies of 400 units (binomial SE of the rate: 1.5 points)."""
    hits = 0
    draws = 200
    for s in range(draws):
        X, t, y = _draw(400, 500 + s)
        e = fit_propensity(X, t).e
        if estimator == "ipw":
            r = ipw(y, t, e, estimand, Z=np.column_stack([np.ones(len(t)), X]))
        else:
            m0, m1 = fit_outcome(X, t, y)
            r = aipw(y, t, e, m0, m1, estimand)
        hits += abs(r["value"] - 2.0) <= 1.959964 * r["std_error"]
    assert 0.91 <= hits / draws <= 0.99, hits / draws


def test_aipw_is_doubly_robust_to_a_wrong_propensity_model():
    """A useless propensity score (constant) with a right outcome model still recovers the effect."""
    X, t, y = _draw(20000, 7)
    m0, m1 = fit_outcome(X, t, y)
    r = aipw(y, t, np.full(t.size, t.mean()), m0, m1, "ate")
    assert abs(r["value"] - 2.0) < 3 * r["std_error"]
    # while IPW with that score is confounded (x1 raises treatment odds and outcome)
    assert abs(ipw(y, t, np.full(t.size, t.mean()), "ate")["value"] - 2.0) > 0.5


def test_heterogeneous_effect_separates_ate_att_atc(tmp_path):
    """Effect 1 + 2 x1: the ATT exceeds the ATE exceeds the ATC, each recovered within 3 SEs."""
    rng = np.random.default_rng(2)
    n = 6000
    x1, x2 = rng.normal(size=n), rng.normal(size=n)
    e = 1 / (1 + np.exp(-(0.8 * x1 - 0.4 * x2)))
    t = (rng.uniform(size=n) < e).astype(int)
    tau = 1 + 2 * x1
    y = tau * t + x1 + x2 + rng.normal(size=n)
    path = tmp_path / "het.csv"
    pd.DataFrame({"t": t, "y": y, "x1": x1, "x2": x2}).to_csv(path, index=False)
    truth = {"ate": tau.mean(), "att": tau[t == 1].mean(), "atc": tau[t == 0].mean()}
    for estimand, true in truth.items():
        spec = {"version": 1, "data": {"path": str(path)}, "treatment": "t", "outcome": "y",
                "covariates": ["x1", "x2"], "refute": [],
                "design": {"method": "weighting", "estimand": estimand, "options": {"estimator": "aipw"}}}
        est = run_study(spec).estimate
        assert abs(est.value - true) < 3 * est.std_error, (estimand, est.value, true)
    assert truth["att"] > truth["ate"] + 0.3 > truth["atc"] + 0.6


@pytest.mark.slow
def test_gbm_cross_fitted_aipw_recovers_a_nonlinear_confounded_effect(tmp_path):
    rng = np.random.default_rng(4)
    n = 3000
    x1, x2 = rng.normal(size=n), rng.normal(size=n)
    e = 1 / (1 + np.exp(-(np.sin(2 * x1) + 0.5 * x2 ** 2 - 0.5)))
    t = (rng.uniform(size=n) < e).astype(int)
    y = 2.0 * t + 2 * np.sin(2 * x1) + x2 ** 2 + rng.normal(size=n)
    path = tmp_path / "nl.csv"
    pd.DataFrame({"t": t, "y": y, "x1": x1, "x2": x2}).to_csv(path, index=False)
    spec = {"version": 1, "data": {"path": str(path)}, "treatment": "t", "outcome": "y", "covariates": ["x1", "x2"],
            "refute": [], "design": {"method": "weighting", "estimand": "ate",
                                     "options": {"estimator": "aipw", "propensity_model": "gbm",
                                                 "outcome_model": "gbm", "folds": 3}}}
    a = run_study(spec)
    assert abs(a.estimate.value - 2.0) < 3 * a.estimate.std_error
    assert "cross-fitted" in a.diagnostics["propensity_model"]["model"]
    b = run_study(spec)
    assert a.estimate == b.estimate  # seeded folds and boosting: the same numbers


def test_gbm_cross_fitting_is_seeded():
    """Small and fast: the same seed gives the same cross-fitted scores, another seed other folds."""
    X, t, _ = _draw(300, 9)
    a = fit_propensity(X, t, "gbm", folds=2, seed=1).e
    assert np.array_equal(a, fit_propensity(X, t, "gbm", folds=2, seed=1).e)
    assert not np.array_equal(a, fit_propensity(X, t, "gbm", folds=2, seed=2).e)
    assert np.all((a > 0) & (a < 1))


@pytest.mark.slow
def test_gbm_study_names_its_inference(tmp_path):
    df = simulate(600, seed=9)
    df.to_csv(tmp_path / "g.csv", index=False)
    spec = {"version": 1, "data": {"path": str(tmp_path / "g.csv")}, "treatment": "t", "outcome": "y",
            "covariates": ["x1", "x2"], "refute": [], "seed": 1,
            "design": {"method": "weighting", "options": {"estimator": "aipw", "propensity_model": "gbm",
                                                          "outcome_model": "gbm", "folds": 2}}}
    a = run_study(spec)
    assert a.estimate.inference == "influence_function"
    assert abs(a.estimate.value - 2.0) < 4 * a.estimate.std_error
    ipw_spec = {**spec, "design": {"method": "weighting", "options": {"propensity_model": "gbm", "folds": 2}}}
    assert run_study(ipw_spec).estimate.inference == "robust_weights_known"


# ---------------------------------------------------------------- peers


def _nsw_nuisances():
    df = pd.read_csv(SPECS / "data" / "nsw_experimental.csv")
    X = df[NSW_COVS].to_numpy(float)
    t = df["treat"].to_numpy() == 1
    y = df["re78"].to_numpy(float)
    e = fit_propensity(X, t).e
    m0, m1 = fit_outcome(X, t, y)
    return df, X, t, y, e, m0, m1


def _doubleml_irm(X, t, y, e, m0, m1, score):
    import doubleml as dml
    from doubleml.utils.propensity_score_processing import PSProcessorConfig
    from sklearn.linear_model import LinearRegression, LogisticRegression

    data = dml.DoubleMLData.from_arrays(X, y, t.astype(float))
    irm = dml.DoubleMLIRM(data, LinearRegression(), LogisticRegression(), score=score, n_folds=2,
                          ps_processor_config=PSProcessorConfig(clipping_threshold=1e-12))
    irm.fit(external_predictions={"d": {"ml_g0": m0[:, None], "ml_g1": m1[:, None], "ml_m": e[:, None]}})
    return float(irm.coef[0]), float(irm.se[0])


@pytest.mark.peer
@pytest.mark.parametrize("estimand", ["ate", "att", "atc"])
def test_aipw_equals_doubleml_irm_on_the_same_nuisances(estimand):
    """DoubleML 0.11 IRM (scores ATE / ATTE) given our nuisance predictions: same estimate and SE.

    DoubleML has no ATC score; the ATC is its ATTE with the arms swapped, negated.
    """
    _, X, t, y, e, m0, m1 = _nsw_nuisances()
    ours = aipw(y, t, e, m0, m1, estimand)
    if estimand == "atc":
        v, se = _doubleml_irm(X, ~t, y, 1 - e, m1, m0, "ATTE")
        v = -v
    else:
        v, se = _doubleml_irm(X, t, y, e, m0, m1, estimand.upper().replace("ATT", "ATTE"))
    assert ours["value"] == pytest.approx(v, rel=1e-9)
    assert ours["std_error"] == pytest.approx(se, rel=1e-9)


@pytest.mark.peer
def test_aipw_agrees_with_doubleml_own_cross_fitting():
    """DoubleML IRM with its own 5-fold cross-fitted logistic / linear learners lands within 0.1 SE of ours.

    The gap is the cross-fitting (DoubleML) against in-sample parametric nuisances (causalcli's default).
    """
    import doubleml as dml
    from doubleml.utils.propensity_score_processing import PSProcessorConfig
    from sklearn.linear_model import LinearRegression, LogisticRegression

    _, X, t, y, e, m0, m1 = _nsw_nuisances()
    ours = aipw(y, t, e, m0, m1, "ate")
    np.random.seed(0)
    data = dml.DoubleMLData.from_arrays(X, y, t.astype(float))
    irm = dml.DoubleMLIRM(data, LinearRegression(), LogisticRegression(penalty=None, max_iter=10000),
                          n_folds=5, ps_processor_config=PSProcessorConfig(clipping_threshold=1e-12)).fit()
    assert abs(float(irm.coef[0]) - ours["value"]) < 0.1 * ours["std_error"]
    # cross-fitted nuisances on 445 rows are noisier than in-sample ones: 730 against 671 measured
    assert float(irm.se[0]) == pytest.approx(ours["std_error"], rel=0.15)


@pytest.mark.peer
@pytest.mark.parametrize("estimand", ["ate", "att", "atc"])
def test_ipw_equals_dowhy_propensity_score_weighting(estimand):
    """DoWhy 0.14 ``backdoor.propensity_score_weighting`` (normalised weights) on our scores: same estimate."""
    from dowhy.causal_estimator import estimate_effect
    from dowhy.causal_estimators.propensity_score_weighting_estimator import PropensityScoreWeightingEstimator
    from dowhy.causal_identifier import identify_effect

    from tests.peers.dowhy_peer import _default_graph

    df, X, t, y, e, _, _ = _nsw_nuisances()
    data = df[["treat", "re78", *NSW_COVS]].copy()
    data["_given_ps"] = e
    ident = identify_effect(_default_graph("treat", "re78", NSW_COVS), action_nodes="treat", outcome_nodes="re78",
                            observed_nodes=["treat", "re78", *NSW_COVS])
    ident.set_identifier_method("backdoor")
    ident.set_backdoor_variables(NSW_COVS)
    est = PropensityScoreWeightingEstimator(ident, propensity_score_column="_given_ps", min_ps_score=1e-12,
                                            max_ps_score=1 - 1e-12, weighting_scheme="ips_normalized_weight")
    theirs = estimate_effect(data, "treat", "re78", "backdoor", est, control_value=0, treatment_value=1,
                             target_units=estimand, method_params={}).value
    assert ipw(y, t, e, estimand)["value"] == pytest.approx(theirs, rel=1e-9)


# ---------------------------------------------------------------- diagnostics, checks and bad input


def test_sensitivity_e_value_is_reported_with_a_sentence():
    res = run_study(spec_for("nsw_experimental", "att", 0, estimator="aipw"))
    ev = res.diagnostics["sensitivity"]["e_value"]
    assert ev["e_value"] > ev["e_value_ci"] >= 1.0
    assert "risk ratio of at least" in ev["detail"]


def test_failed_balance_check_exits_1_with_result_written(runner, tmp_path, write_spec):
    spec = spec_for("nsw_experimental", "att", 0)
    spec["thresholds"] = {"balance_smd": 1e-6}
    code, payload, _ = _run_cli(runner, write_spec(spec))
    assert code == 1
    bal = next(c for c in payload["checks"] if c["name"] == "balance")
    assert bal["passed"] is False and "imbalanced" in bal["detail"]


def _run_cli(runner, path, *extra):
    res = invoke(runner, ["estimate", str(path), "--format", "json", *extra])
    return res.exit_code, (json.loads(res.stdout) if res.stdout.strip() else None), res


def test_poor_overlap_fails_the_check_and_trim_is_reported(runner, write_spec):
    spec = {"version": 1, "data": {"path": str(SPECS / "data" / "nsw_cps.parquet")}, "treatment": "treat",
            "outcome": "re78", "covariates": NSW_COVS, "refute": [],
            "design": {"method": "weighting", "estimand": "ate"}}
    code, payload, _ = _run_cli(runner, write_spec(spec))
    assert code == 1
    ov = next(c for c in payload["checks"] if c["name"] == "overlap")
    assert ov["passed"] is False
    spec["design"]["options"] = {"trim": 0.05}
    code, payload, _ = _run_cli(runner, write_spec(spec, "trimmed.yaml"))
    assert payload["n"]["trimmed_control"] > 1000
    assert any("trim" in w for w in payload["warnings"])


def test_no_overlap_exits_4_naming_the_units(runner, tmp_path, write_spec):
    rng = np.random.default_rng(0)
    x = np.r_[rng.normal(-5, 1, 50), rng.normal(5, 1, 50)]
    pd.DataFrame({"t": np.r_[np.zeros(50), np.ones(50)].astype(int), "y": rng.normal(size=100), "x": x,
                  "z": rng.normal(size=100)}).to_csv(tmp_path / "apart.csv", index=False)
    spec = {"version": 1, "data": {"path": "apart.csv"}, "treatment": "t", "outcome": "y", "covariates": ["x", "z"],
            "refute": [], "design": {"method": "weighting"}}
    code, _, res = _run_cli(runner, write_spec(spec))
    assert code == 4
    # the arms are 10 SD apart on x: every unit is beyond every unit of the other arm
    assert "100 of 100 units (50 treated, 50 control) lack common support" in res.stderr
    assert "the one on 'x' most" in res.stderr and "drop or coarsen 'x'" in res.stderr
    assert "apart.csv" in res.stderr and "column 0" not in res.stderr
    assert len(res.stderr.strip().splitlines()) == 1


def test_constant_covariate_exits_3(runner, tmp_path, write_spec):
    df = simulate(200, seed=1)
    df["k"] = 1.0
    df.to_csv(tmp_path / "k.csv", index=False)
    spec = {"version": 1, "data": {"path": "k.csv"}, "treatment": "t", "outcome": "y", "covariates": ["x1", "k"],
            "refute": [], "design": {"method": "weighting"}}
    code, _, res = _run_cli(runner, write_spec(spec))
    assert code == 3 and "'k'" in res.stderr and "constant" in res.stderr


def test_categorical_with_a_level_per_row_exits_3(runner, tmp_path, write_spec):
    df = simulate(100, seed=1)
    df["id"] = [f"u{i}" for i in range(len(df))]
    df.to_csv(tmp_path / "ids.csv", index=False)
    spec = {"version": 1, "data": {"path": "ids.csv"}, "treatment": "t", "outcome": "y", "covariates": ["x1", "id"],
            "categorical": ["id"], "refute": [], "design": {"method": "weighting"}}
    code, _, res = _run_cli(runner, write_spec(spec))
    assert code == 3 and "levels" in res.stderr


def test_overlap_weights_with_aipw_is_refused_as_not_built(runner, write_spec):
    spec = spec_for("nsw_experimental", "ato", 0, estimator="aipw")
    code, _, res = _run_cli(runner, write_spec(spec))
    assert code == 2 and "not built yet" in res.stderr


def test_refuters_run_and_json_is_reproducible(runner, write_spec):
    spec = spec_for("nsw_experimental", "ate", 0, estimator="aipw")
    spec["refute"] = [{"placebo_treatment": {"simulations": 20}}, {"data_subset": {"simulations": 20}}]
    path = write_spec(spec)
    out = []
    for jobs in ("1", "2"):
        code, payload, _ = _run_cli(runner, path, "--jobs", jobs)
        payload.pop("timing_s")
        out.append(json.dumps(payload, sort_keys=True))
    assert out[0] == out[1]
    refs = {r["name"]: r for r in json.loads(out[0])["refutations"]}
    assert abs(refs["placebo_treatment"]["new_effect"]) < 0.5 * abs(json.loads(out[0])["estimate"]["value"])


def test_e_value_reproduces_vanderweele_ding_published_example():
    """VanderWeele and Ding (2017), Ann Intern Med: smoking and lung cancer, RR 10.73 (CI lower 8.02)
    gives E-values 20.95 and 15.52 (published to two decimals)."""
    from causalcli.checks.sensitivity import evalue, evalue_rr

    assert evalue_rr(10.73) == pytest.approx(20.95, abs=0.005)
    assert evalue_rr(8.02) == pytest.approx(15.52, abs=0.005)
    assert evalue_rr(1 / 10.73) == pytest.approx(evalue_rr(10.73))
    # a mean difference of d outcome SDs is RR exp(0.91 d); an interval across 0 has E-value 1
    e = evalue(0.5, -0.1, 1.1, 1.0)
    assert e["e_value"] == pytest.approx(evalue_rr(math.exp(0.455)))
    assert e["e_value_ci"] == 1.0 and "includes no effect" in e["detail"]


def test_plots_love_and_propensity_are_written_for_weighting_and_matching(runner, write_spec, tmp_path):
    spec = spec_for("nsw_experimental", "att", 0, estimator="aipw")
    out = tmp_path / "plots"
    code, _, _ = _run_cli(runner, write_spec(spec), "--plots", str(out))
    assert code == 0
    spec["design"] = {"method": "matching", "estimand": "ate"}
    spec["name"] = "m"
    _run_cli(runner, write_spec(spec, "m.yaml"), "--plots", str(out))
    names = sorted(p.name for p in out.iterdir())
    assert names == ["m-love.png", "m-propensity.png", "nsw_experimental-att-love.png",
                     "nsw_experimental-att-propensity.png"]
    assert all(p.read_bytes().startswith(b"\x89PNG") and p.stat().st_size > 5000 for p in out.iterdir())
