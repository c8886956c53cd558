"""dml with observation weights (the top-level ``weights``: probability weights, every fit and average weighted).

Peers and truths:

* EconML's ``LinearDML`` fitted with ``sample_weight`` on the same rows, the same folds and the same learners
  (``linear``: OLS and the unpenalised logistic regression, written out here; ``lasso``: causalcli's adaptor,
  since EconML hands ``sample_weight`` to a scikit-learn ``Pipeline`` as is, which refuses it; that the adaptor
  gives every step the weights is tested on its own against a by-hand weighted scaler and lasso).
* Weights of 1 everywhere: the weighted code paths (the weighted mean of the forest's doubly robust scores,
  recomputed from its out-of-bag CATEs; the weighted mean of the CATEs) give EconML's unweighted numbers.
* Integer weights equal repeated rows, when every copy of a row is in that row's fold.
* A simulated population whose sampling weight is correlated with the effect: the weighted estimate recovers
  the population's effect where the unweighted one is far off.

DoubleML's ``DoubleMLIRM(weights=...)`` does not compute the same ATE, so it is no equality peer: its weights
enter only the score (the weighted mean of the AIPW scores, ``psi_a = -w / mean(w)``; its nuisance learners are
fitted without them; it reads the weights as w(X) of mean 1, so its estimate is mean(w x score), which is the
weighted mean only for weights normalised to mean 1), and IRM is AIPW while ``model: linear`` is the partially linear model and ``model: forest``
averages a causal forest's doubly robust scores. When the weights depend on the covariates only, both target the
same weighted-population ATE, so ``model: forest`` is held to DoubleML's weighted IRM within standard errors, as
``tests/reference/dml`` holds the unweighted fit to IRM.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from causalcli.designs import get_design
from causalcli.models.folds import fold_ids, splits
from causalcli.study.run import as_loaded, prepare_study, run_study
from tests.conftest import json_whatever_jobs, invoke, run_json
from tests.reference.dml.simulate import dml_spec, in_reading_order, simulate_dml

COVARIATES = ["x0", "x1", "x2", "x3"]
# The same estimator on the same rows, folds and learners: the numbers differ only in the order of sums
# (EconML's weighted mean row against our weighted mean of the effects); 1e-8 and 1e-6 leave room for a
# logistic regression stopped at tol 1e-10 and nothing more.
POINT_TOL = 1e-8
SE_RTOL = 1e-6


@pytest.fixture
def csv(tmp_path: Path):
    def _csv(df: pd.DataFrame, name: str = "d.csv") -> Path:
        path = tmp_path / name
        df.to_csv(path, index=False)
        return path

    return _csv


def weighted_sample(n: int, seed: int, **kwargs) -> pd.DataFrame:
    """simulate_dml's data with a positive weight column ``w`` depending on x0 and the segment (not on t or y)."""
    df, _ = simulate_dml(n, seed=seed, **kwargs)
    rng = np.random.default_rng(seed + 1000)
    df["w"] = np.exp(0.5 * df.x0) * np.where(df.seg == "a", 2.0, 1.0) * rng.uniform(0.5, 1.5, n)
    return df


def spec(path: Path, weights: str | None = "w", segments: list[str] | None = None, **options) -> dict:
    extra = {"segments": segments or []}
    if weights:
        extra["weights"] = weights
    return dml_spec(path, **options, _study=extra)


def econml_linear_dml(d: pd.DataFrame, learner: str, binary: bool, S: np.ndarray | None):
    """EconML LinearDML fitted with sample_weight on ``d`` (rows in causalcli's reading order), causalcli's folds."""
    from econml.dml import LinearDML
    from sklearn.linear_model import LassoCV, LinearRegression, LogisticRegression, LogisticRegressionCV
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    from causalcli.designs.dml.nuisance import weighted_cv_selector

    t = d.t.to_numpy(float)
    if learner == "linear":
        model_y = LinearRegression()
        model_t = (LogisticRegression(penalty=None, solver="newton-cholesky", tol=1e-10, max_iter=100) if binary
                   else LinearRegression())
    else:
        model_y = weighted_cv_selector(make_pipeline(StandardScaler(), LassoCV(cv=3, random_state=0)))
        model_t = weighted_cv_selector(make_pipeline(StandardScaler(), LogisticRegressionCV(
            Cs=10, cv=3, penalty="l1", solver="liblinear", random_state=0)) if binary
            else make_pipeline(StandardScaler(), LassoCV(cv=3, random_state=0)))
    est = LinearDML(model_y=model_y, model_t=model_t, discrete_treatment=binary,
                    cv=splits(fold_ids(t, binary, 5, 0), 5), random_state=0)
    est.fit(d.y.to_numpy(), t, X=S, W=d[COVARIATES].to_numpy(), sample_weight=d.w.to_numpy(), cache_values=True)
    return est


@pytest.mark.parametrize("learner", ["linear", "lasso"])
@pytest.mark.parametrize("binary", [True, False])
def test_equals_econml_linear_dml_with_sample_weight(csv, learner, binary):
    """LinearDML with sample_weight (EconML 0.17): the headline is the weighted mean of the effect over the
    rows, each segment's effect the weighted mean over its rows; the Wald test's covariance is EconML's
    weighted HC1 (``final_ols`` with weights)."""
    df = weighted_sample(1500, 21, binary=binary, heterogeneous=True)
    res = run_study(spec(csv(df), segments=["seg"], learner=learner))
    d = in_reading_order(df, "t", "y", COVARIATES)
    S = pd.get_dummies(d.seg, drop_first=True).to_numpy(float)
    est = econml_linear_dml(d, learner, binary, S)
    w = d.w.to_numpy()
    e = res.estimate
    assert e.inference == "econml_linear_dml_hc1_weighted"
    assert e.value == pytest.approx(float(np.average(est.effect(S), weights=w)), abs=POINT_TOL)
    centre = (S * w[:, None]).sum(axis=0, keepdims=True) / w.sum()
    assert e.std_error == pytest.approx(float(est.effect_inference(centre).stderr[0]), rel=SE_RTOL)
    for effect, level in zip(res.effects, ("a", "b", "c")):
        rows = S[(d.seg == level).to_numpy()][:1]
        assert effect.label == f"seg={level}" and effect.inference.split(";")[0] == e.inference
        assert effect.value == pytest.approx(float(est.effect(rows)[0]), abs=POINT_TOL)
        assert effect.std_error == pytest.approx(float(est.effect_inference(rows).stderr[0]), rel=SE_RTOL)
    from causalcli.designs.dml.final import final_ols

    y_res, t_res, _, _ = est.residuals_
    beta, cov = final_ols(np.column_stack([np.ones(len(d)), S]), np.ravel(t_res), np.ravel(y_res), w)
    inf = est.coef__inference()
    np.testing.assert_allclose(beta[1:], np.ravel(inf.point_estimate), rtol=1e-8)
    np.testing.assert_allclose(np.sqrt(np.diag(cov))[1:], np.ravel(inf.stderr), rtol=1e-6)
    b, V = beta[1:], cov[1:, 1:]
    assert res.diagnostics["heterogeneity"][0]["statistic"] == pytest.approx(float(b @ np.linalg.solve(V, b)),
                                                                            rel=1e-6)
    assert res.diagnostics["weights"]["column"] == "w"
    assert res.diagnostics["weights"]["sum"] == pytest.approx(float(w.sum()), rel=1e-12)


def test_lasso_pipeline_fits_every_step_with_the_weights():
    """causalcli's lasso adaptor (``weighted_cv_selector``) under EconML: each fold's scaler is the weighted
    mean and SD of its training rows, and its lasso is scikit-learn's weighted lasso at the chosen penalty."""
    from sklearn.linear_model import Lasso
    from sklearn.preprocessing import StandardScaler

    d = in_reading_order(weighted_sample(900, 23, binary=False), "t", "y", COVARIATES)
    est = econml_linear_dml(d, "lasso", False, None)
    XW, y, w = d[COVARIATES].to_numpy(), d.y.to_numpy(), d.w.to_numpy()
    for k, (train, _) in enumerate(splits(fold_ids(d.t.to_numpy(float), False, 5, 0), 5)):
        model = est.models_y[0][k]
        scaler = StandardScaler().fit(XW[train], sample_weight=w[train])
        np.testing.assert_allclose(model[0].mean_, scaler.mean_, rtol=1e-12)
        np.testing.assert_allclose(model[0].scale_, scaler.scale_, rtol=1e-12)
        assert not np.allclose(model[0].mean_, XW[train].mean(axis=0), rtol=1e-3)  # the weights made a difference
        lasso = Lasso(alpha=model[-1].alpha).fit(scaler.transform(XW[train]), y[train], sample_weight=w[train])
        np.testing.assert_allclose(model[-1].coef_, lasso.coef_, rtol=1e-6, atol=1e-10)


@pytest.mark.parametrize("model, binary, segments", [
    ("linear", True, ["seg"]),
    ("forest", True, ["seg"]),
    ("forest", False, []),
])
def test_weights_of_one_give_the_unweighted_numbers(csv, model, binary, segments):
    """With every weight 1 the weighted paths reproduce EconML's unweighted ones: the forest's weighted mean of
    doubly robust scores (recomputed from its out-of-bag CATEs) is its ``ate_`` with that SE, the weighted mean
    CATE with sqrt(sum w se^2 / sum w) is ``ate_inference``'s mean and conservative bound, the linear one the
    effect at the mean row."""
    df, _ = simulate_dml(900, seed=25, binary=binary, heterogeneous=True, forest_cate=model == "forest")
    df["one"] = 1.0
    path = csv(df)
    options = {"model": model, **({"trees": 40} if model == "forest" else {})}
    weighted = run_study(spec(path, weights="one", segments=segments, **options))
    plain = run_study(spec(path, weights=None, segments=segments, **options))
    assert weighted.estimate.inference == plain.estimate.inference + "_weighted"
    for a, b in zip([weighted.estimate, *weighted.effects], [plain.estimate, *plain.effects], strict=True):
        assert a.value == pytest.approx(b.value, abs=1e-10)
        assert a.std_error == pytest.approx(b.std_error, rel=1e-8)
    if model == "forest":
        w_cate, p_cate = weighted.diagnostics["cate"], plain.diagnostics["cate"]
        for key in ("mean", "sd", "share_positive"):
            assert w_cate[key] == pytest.approx(p_cate[key], rel=1e-10)
        assert w_cate["histogram"]["weights"] == pytest.approx(p_cate["histogram"]["counts"], abs=1e-9)


@pytest.mark.parametrize("binary", [True, False])
def test_integer_weights_equal_repeated_rows_in_the_same_fold(csv, binary):
    """A row of weight k is k copies of the row, for the point estimate, when every copy sits in the original
    row's fold: then each nuisance model's weighted fit is the fit on the copies (OLS; the logistic likelihood)
    and so are the final stage and the weighted means. Folds drawn afresh on the repeated rows would put a
    row's copies in different folds, each predicted by a model trained on its own twin: another estimate. The
    SE is not the repeated rows' one by design: probability weights enter the sandwich's meat squared (w^2 e^2),
    repeated rows once each (w e^2), the frequency-weight reading."""
    from econml.dml import LinearDML
    from sklearn.linear_model import LinearRegression, LogisticRegression

    df, _ = simulate_dml(800, seed=27, binary=binary, heterogeneous=True)
    df["w"] = np.random.default_rng(3).integers(1, 4, len(df))
    res = run_study(spec(csv(df), segments=["seg"]))
    d = in_reading_order(df, "t", "y", COVARIATES)
    ids = fold_ids(d.t.to_numpy(float), binary, 5, 0)  # causalcli's folds of the weighted rows
    copies = np.repeat(np.arange(len(d)), d.w.to_numpy())
    r = d.iloc[copies].reset_index(drop=True)
    S = pd.get_dummies(r.seg, drop_first=True).to_numpy(float)
    model_t = (LogisticRegression(penalty=None, solver="newton-cholesky", tol=1e-10, max_iter=100) if binary
               else LinearRegression())
    est = LinearDML(model_y=LinearRegression(), model_t=model_t, discrete_treatment=binary,
                    cv=splits(ids[copies], 5), random_state=0)
    est.fit(r.y.to_numpy(), r.t.to_numpy(float), X=S, W=r[COVARIATES].to_numpy())
    assert res.estimate.value == pytest.approx(float(np.mean(est.effect(S))), abs=POINT_TOL)
    for effect, level in zip(res.effects, ("a", "b", "c")):
        assert effect.value == pytest.approx(float(est.effect(S[(r.seg == level).to_numpy()][:1])[0]),
                                             abs=POINT_TOL)


def population_sample(seed: int, n: int = 4000) -> tuple[pd.DataFrame, float]:
    """A sample drawn from a population where the effect is 1 + x0 (population mean 1): units with a low x0
    (a small effect) are sampled more (probability logistic(-1.5 x0)), each carrying its inverse sampling
    probability as its weight. Confounding through x0 and x1 as in simulate_dml."""
    rng = np.random.default_rng(seed)
    N = 3 * n
    x = rng.normal(size=(N, 4))
    sampled = rng.uniform(size=N) < 1 / (1 + np.exp(1.5 * x[:, 0]))
    x = x[sampled][:n]
    keep_p = 1 / (1 + np.exp(1.5 * x[:, 0]))
    t = (rng.uniform(size=len(x)) < 1 / (1 + np.exp(-(0.8 * x[:, 0] - 0.5 * x[:, 1])))).astype(int)
    y = (1.0 + x[:, 0]) * t + 1.5 * x[:, 0] + x[:, 1] + 0.5 * x[:, 3] + rng.normal(size=len(x))
    df = pd.DataFrame({"t": t, "y": y, **{f"x{j}": x[:, j] for j in range(4)}, "w": 1 / keep_p,
                       "seg": np.where(x[:, 0] > 0, "high", "low")})
    return df, 1.0


def test_weighted_forest_recovers_the_population_effect(csv):
    """The sample over-represents small effects (its unweighted ATE is near 1 + E[x0 | sampled], about -0.7
    below the population's 1); the weighted ATE recovers the population's 1 within three SEs while the unweighted
    one is more than five SEs from it."""
    df, truth = population_sample(31)
    path = csv(df)
    weighted = run_study(spec(path, model="forest", trees=100)).estimate
    plain = run_study(spec(path, weights=None, model="forest", trees=100)).estimate
    assert abs(weighted.value - truth) < 3 * weighted.std_error
    assert abs(plain.value - truth) > 5 * plain.std_error
    assert weighted.inference == "econml_forest_doubly_robust_weighted"


def test_weighted_segments_recover_the_population_effect(csv):
    """model: linear with the effect's driver as a segment (the effect 1, 2 or 3 by segment; segment a
    oversampled, weight = population share / sample share): the weighted ATE is the population's 2, the
    unweighted one far below."""
    df, _ = simulate_dml(4000, seed=33, heterogeneous=True)
    rng = np.random.default_rng(34)
    keep = rng.uniform(size=len(df)) < np.where(df.seg == "a", 1.0, 0.2)
    df = df[keep].reset_index(drop=True)
    share = df.seg.value_counts(normalize=True)
    df["w"] = (1 / 3) / df.seg.map(share)
    path = csv(df)
    weighted = run_study(spec(path, segments=["seg"])).estimate
    plain = run_study(spec(path, weights=None, segments=["seg"])).estimate
    assert abs(weighted.value - 2.0) < 3 * weighted.std_error
    assert abs(plain.value - 2.0) > 5 * plain.std_error


@pytest.mark.peer
def test_forest_agrees_with_doubleml_irm_weights_within_standard_errors(csv):
    """DoubleML 0.11 IRM with ``weights`` (the weighted mean of AIPW scores from unweighted nuisance fits) and
    causalcli's weighted causal forest DR mean on the same population sample and folds: different estimators
    of the same weighted-population ATE (the weights depend on x0 alone, so the conditional outcome and
    propensity models are the population's). Their difference has an SD below either SE (shared data): 1.5
    times the larger SE bounds it, as tests/reference/dml's unweighted IRM comparison. IRM's estimate is
    mean(w x score) (``psi_a = -w / mean(w)``): the weights are handed over normalised to mean 1, so that it
    is the weighted mean."""
    import doubleml as dml
    from sklearn.linear_model import LinearRegression, LogisticRegression

    df, _ = population_sample(35, n=3000)
    e = run_study(spec(csv(df), model="forest", trees=100)).estimate
    d = in_reading_order(df, "t", "y", COVARIATES)
    data = dml.DoubleMLData(d, y_col="y", d_cols="t", x_cols=COVARIATES)
    irm = dml.DoubleMLIRM(data, LinearRegression(), LogisticRegression(penalty=None, max_iter=2000), n_folds=5,
                          draw_sample_splitting=False, weights=(d.w / d.w.mean()).to_numpy())
    irm.set_sample_splitting(splits(fold_ids(d.t.to_numpy(float), True, 5, 0), 5))
    irm.fit()
    assert abs(e.value - float(irm.coef[0])) < 1.5 * max(e.std_error, float(irm.se[0]))


def test_zero_weights_are_dropped_and_counted(csv):
    """Rows of weight 0 are in no fit: dropped and counted (n.dropped_zero_weight, a warning); the estimate is
    the one on the data without them (the same rows in the same order, hence the same folds)."""
    df = weighted_sample(700, 37, heterogeneous=True)
    df.loc[::10, "w"] = 0.0
    with_zeros = run_study(spec(csv(df, "zeros.csv"), segments=["seg"]))
    without = run_study(spec(csv(df[df.w > 0], "positive.csv"), segments=["seg"]))
    assert with_zeros.n["dropped_zero_weight"] == 70 and with_zeros.n["used"] == 630
    assert "dropped_zero_weight" not in without.n
    assert any("weight of 0" in w for w in with_zeros.warnings)
    assert with_zeros.estimate.value == pytest.approx(without.estimate.value, abs=1e-12)
    assert with_zeros.estimate.std_error == pytest.approx(without.estimate.std_error, rel=1e-12)


@pytest.mark.parametrize("values, words", [
    ({3: -1.0}, "negative"),
    ({3: np.inf}, "infinite"),
    ("zero", "sums to zero"),
])
def test_bad_weights_are_one_line_exit_3(csv, runner, write_spec, values, words):
    df = weighted_sample(300, 39)
    if values == "zero":
        df["w"] = 0.0
    else:
        for row, value in values.items():
            df.loc[row, "w"] = value
    res = invoke(runner, ["estimate", str(write_spec(spec(csv(df)))), "--format", "json"])
    assert res.exit_code == 3, res.stderr
    assert words in res.stderr and "'w'" in res.stderr and len(res.stderr.strip().splitlines()) == 1


def test_missing_weights_drop_their_rows_and_validate_counts_them(csv, runner, write_spec):
    df = weighted_sample(300, 41)
    df.loc[:4, "w"] = np.nan
    path = write_spec(spec(csv(df)))
    res = run_study(spec(csv(df)))
    assert res.n["dropped_missing_weights"] == 5 and res.n["used"] == 295
    checked = invoke(runner, ["validate", str(path), "--format", "json"])
    assert checked.exit_code == 0, checked.stderr
    assert "dropped_missing_weights" in checked.stdout


def fitted(path: Path, **options):
    """The fit of a weighted dml spec on ``path`` and the data its refuters get (``Fit.refute_on``)."""
    loaded = as_loaded(spec(path, **options))
    prep = prepare_study(loaded)
    design = get_design("dml")
    data = design.prepare(loaded.study, prep.table, prep.identification, loaded)
    fit = design.fit(data, loaded.study, 0)
    return design, fit, fit.refute_on


@pytest.mark.parametrize("model, binary", [("linear", True), ("linear", False), ("forest", True)])
def test_refuters_recompute_the_weighted_estimate_with_nothing_changed(csv, model, binary):
    """The refuters' recomputation (weighted final stage, weighted means; the forest at the fit's size) with
    nothing changed gives the weighted estimate back."""
    from causalcli.designs.dml.final import final_stage_point

    df = weighted_sample(900, 43, binary=binary, heterogeneous=True)
    options = {"model": model, **({"trees": 40} if model == "forest" else {})}
    _, fit, d = fitted(csv(df), segments=["seg"], **options)
    value = final_stage_point(d, d.cross_fit, trees=None)
    # the forest refitted on the same residuals with the same seed: the same trees, to rounding
    assert value == pytest.approx(fit.estimate.value, abs=1e-10 if model == "linear" else 1e-8)


def test_random_common_cause_warm_start_equals_the_weighted_full_refit(csv):
    """Frisch-Waugh holds for weighted least squares: with weights, the continued linear nuisances equal
    EconML's weighted full refit on [W, U]."""
    from causalcli.designs.dml.common_cause import refit_common_cause_point, warm_common_cause_point

    df = weighted_sample(900, 45, binary=False, heterogeneous=True)
    _, _, d = fitted(csv(df), segments=["seg"])
    for draw in range(2):
        u = np.random.default_rng(draw).standard_normal(len(df))
        assert warm_common_cause_point(d, d.cross_fit, u) == pytest.approx(
            refit_common_cause_point(d, d.cross_fit, u), abs=1e-8, rel=0)


def test_refuters_run_with_weights_and_a_seed_fixes_the_output(csv, runner, write_spec):
    """The three refuters with weights, in forked workers: finite values, the placebo near 0, the others near
    the estimate; the same seed gives the same JSON whatever --jobs, another seed another estimate."""
    df = weighted_sample(800, 47, heterogeneous=True)
    s = spec(csv(df), segments=["seg"], learner="gbm")
    s["refute"] = [{"placebo_treatment": {"simulations": 4}}, {"random_common_cause": {"simulations": 2}},
                   {"data_subset": {"simulations": 4}}]
    path = write_spec(s)
    fixed = json_whatever_jobs(runner, path)
    payload = json.loads(fixed)
    effect, se = payload["estimate"]["value"], payload["estimate"]["std_error"]
    refuted = {r["name"]: r["new_effect"] for r in payload["refutations"]}
    assert set(refuted) == {"placebo_treatment", "random_common_cause", "data_subset"}
    assert abs(refuted["placebo_treatment"]) < 3 * se
    assert abs(refuted["random_common_cause"] - effect) < se and abs(refuted["data_subset"] - effect) < 3 * se
    code, other, _ = run_json(runner, [str(path), "--seed", "1", "--no-refute"])
    assert other["estimate"]["value"] != payload["estimate"]["value"]


def test_forest_cate_summary_is_weighted(csv):
    """diagnostics.cate with weights: the weighted mean, share positive and quantiles of the weighted
    distribution of the forest's CATEs (numpy's inverted-CDF weighted quantile), the histogram summing weights."""
    df = weighted_sample(700, 49, forest_cate=True)
    res = run_study(spec(csv(df), model="forest", trees=40))
    cate = res.diagnostics["cate"]
    assert set(cate["histogram"]) == {"edges", "weights"}
    assert sum(cate["histogram"]["weights"]) == pytest.approx(float(df.w.sum()), rel=1e-9)
    assert cate["quantiles"]["q05"] <= cate["quantiles"]["q50"] <= cate["quantiles"]["q95"]
    assert "weighted" in cate
