"""Double machine learning (EconML) against known truths, DoubleML, and itself.

Simulated data carry a known effect: constant, by segment, or varying with a
covariate, with confounding through the covariates. Unless a test says
otherwise the nuisance learners are ``linear`` (OLS / logistic regression),
which are exact for these data-generating processes and fast; gradient boosting
is exercised on a nonlinear one. The comparisons with DoubleML and EconML are in
``tests/reference/dml``; the data-generating process is ``tests/reference/dml/simulate.py``.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from causalcli.study.run import run_study
from tests.conftest import json_whatever_jobs, invoke, run_json
from tests.reference.dml.simulate import SEGMENT_EFFECTS, dml_spec, simulate_dml


@pytest.fixture
def csv(tmp_path: Path):
    def _csv(df: pd.DataFrame, name: str = "d.csv") -> Path:
        path = tmp_path / name
        df.to_csv(path, index=False)
        return path

    return _csv


# ---------------------------------------------------------------- priority 1: ATE / ATT


def test_linear_dml_recovers_a_constant_effect_with_nuisance_diagnostics(csv):
    df, _ = simulate_dml(3000, seed=3)
    res = run_study(dml_spec(csv(df)))
    e = res.estimate
    assert res.estimator == "linear_dml" and e.inference == "econml_linear_dml_hc1"
    assert e.ci_lower < 2.0 < e.ci_upper
    # n = 3000, SE about 0.04: four SEs is a loose bound a biased estimator would still miss
    assert abs(e.value - 2.0) < 4 * e.std_error
    nuis = res.diagnostics["nuisance"]
    assert 0.3 < nuis["outcome_r2"] < 1 and len(nuis["outcome_r2_by_fold"]) == 5
    assert 0.6 < nuis["propensity_auc"] < 0.95
    assert 0 < nuis["propensity_treated"]["min"] < nuis["propensity_treated"]["max"] < 1
    assert [c.name for c in res.checks] == ["overlap"] and res.checks[0].passed is True
    assert res.n["treated"] + res.n["control"] == 3000


def test_provenance_names_the_learners_libraries(csv):
    # EconML and scikit-learn fit the nuisance models and the final stage: their versions change the numbers
    from importlib import metadata

    df, _ = simulate_dml(300, seed=3)
    versions = run_study(dml_spec(csv(df), _study={"refute": []})).provenance["versions"]
    assert versions["econml"] == metadata.version("econml")
    assert versions["scikit-learn"] == metadata.version("scikit-learn")


def test_gbm_learners_remove_nonlinear_confounding(csv):
    """Nonlinear confounding that a linear adjustment gets wrong; gradient boosting must not."""
    df, _ = simulate_dml(3000, seed=5, nonlinear=True)
    gbm = run_study(dml_spec(csv(df), learner="gbm")).estimate
    assert gbm.ci_lower < 2.0 < gbm.ci_upper
    naive = run_study(dml_spec(csv(df), learner="linear")).estimate
    # the linear adjustment is biased by x1**2 and sin(x0): it must land further from the truth
    assert abs(naive.value - 2.0) > abs(gbm.value - 2.0)


def test_att_with_segments_is_the_treated_average_of_segment_effects(csv):
    df, effect = simulate_dml(4000, seed=7, heterogeneous=True)
    res = run_study(dml_spec(csv(df), estimand="att", _study={"segments": ["seg"]}))
    true_att = effect[df.t.to_numpy() == 1].mean()
    e = res.estimate
    assert res.estimand == "att" and e.ci_lower < true_att < e.ci_upper
    ate = run_study(dml_spec(csv(df), _study={"segments": ["seg"]})).estimate
    # treated units lean to no segment here, so ATT and ATE are close but computed over other rows
    assert ate.value != e.value


def test_continuous_treatment_effect_per_unit(csv):
    df, _ = simulate_dml(2000, seed=9, binary=False)
    res = run_study(dml_spec(csv(df)))
    e = res.estimate
    assert e.ci_lower < 2.0 < e.ci_upper
    assert res.diagnostics["dml"]["treatment_type"] == "continuous"
    assert res.diagnostics["nuisance"]["treatment_r2"] > 0.3
    assert res.checks[0].passed is None and "continuous" in res.checks[0].detail


def _squared_covariates(seed: int, n: int = 800) -> pd.DataFrame:
    """Covariates with their squares, as NHEFS is analysed (weight^2 about 5,000), a confounded 0/1 treatment."""
    rng = np.random.default_rng(seed)
    df = pd.DataFrame({"sex": rng.integers(0, 2, n), "age": rng.integers(25, 75, n).astype(float),
                       "cig": rng.integers(1, 60, n).astype(float), "yrs": rng.integers(1, 60, n).astype(float),
                       "wt": rng.normal(70, 15, n)})
    for c in ("age", "cig", "yrs", "wt"):
        df[f"{c}_sq"] = df[c] ** 2
    eta = -1 + 0.4 * df.sex + 0.05 * (df.age - 45) - 0.02 * (df.cig - 20) + 0.01 * (df.wt - 70)
    df["t"] = (rng.uniform(size=n) < 1 / (1 + np.exp(-eta))).astype(int)
    df["y"] = 3 * df.t + 0.1 * df.wt + rng.normal(size=n)
    return df


@pytest.mark.parametrize("seed", [1, 3])
def test_linear_learner_propensity_is_the_logistic_mle_on_squared_covariates(csv, seed):
    """Found on NHEFS (age^2, weight^2, ...): lbfgs stopped short of the maximum likelihood on covariates
    of large scale (up to 0.28 off in a propensity here, with a ConvergenceWarning); the linear learner's
    logistic regression must be the MLE that causalcli's own Newton-Raphson fit finds."""
    from causalcli.designs.dml.nuisance import make_learners
    from causalcli.models.logit import fit_logit

    df = _squared_covariates(seed)
    X = df.drop(columns=["t", "y"]).to_numpy(float)
    _, clf = make_learners("linear", True, 0)
    p = clf.fit(X, df.t).predict_proba(X)[:, 1]
    np.testing.assert_allclose(p, fit_logit(X, df.t.to_numpy()).probability, rtol=0, atol=1e-8)
    spec = dml_spec(csv(df))
    spec["covariates"] = list(df.columns.drop(["t", "y"]))
    res = run_study(spec)
    assert not any("did not converge" in w for w in res.warnings)
    assert abs(res.estimate.value - 3) < 4 * res.estimate.std_error


@pytest.mark.parametrize("binary", [True, False])
def test_a_nuisance_model_worse_than_a_constant_is_a_warning(csv, binary):
    """Found on NHEFS: the default gbm learners on 1,566 rows predicted the outcome worse than its mean out
    of fold (R^2 -0.07) and the treatment worse than the treated share, with nothing said. Covariates of
    pure noise make any flexible learner do that; the linear learner on covariates that matter does not."""
    rng = np.random.default_rng(0)
    n = 400
    df = pd.DataFrame(rng.normal(size=(n, 6)), columns=[f"x{j}" for j in range(6)])
    df["t"] = rng.integers(0, 2, n) if binary else rng.normal(size=n)
    df["y"] = 0.5 * df.t + rng.normal(size=n)
    spec = dml_spec(csv(df), learner="gbm")
    spec["covariates"] = [f"x{j}" for j in range(6)]
    res = run_study(spec)
    nuis = res.diagnostics["nuisance"]
    poor = [w for w in res.warnings if "predicts worse than" in w]
    assert nuis["outcome_r2"] < 0 and len(poor) == 1
    assert "learner: gbm overfits these 400 rows" in poor[0] and "lasso, linear" in poor[0]
    if binary:
        assert ("Brier" in poor[0]) == (nuis["propensity_brier"] > df.t.mean() * (1 - df.t.mean()))
    else:
        assert ("treatment's mean" in poor[0]) == (nuis["treatment_r2"] < 0)
    good = run_study(dml_spec(csv(simulate_dml(3000, seed=3)[0], "s.csv")))
    assert not [w for w in good.warnings if "predicts worse than" in w]


@pytest.mark.parametrize("binary", [True, False])
@pytest.mark.parametrize("model", ["linear", "forest"])
def test_lasso_learners_both_models_both_treatment_types(csv, binary, model):
    """LassoCV / L1 logistic nuisances: exact-enough for linear confounding, so 2 lies in the interval."""
    df, _ = simulate_dml(1500, seed=3, binary=binary)
    res = run_study(dml_spec(csv(df), model=model, learner="lasso", **({"trees": 40} if model == "forest" else {})))
    e = res.estimate
    assert e.ci_lower < 2.0 < e.ci_upper
    assert res.diagnostics["dml"]["learners"]["treatment"].startswith(
        "StandardScaler + LogisticRegressionCV" if binary else "StandardScaler + LassoCV")
    expected = {(True, "forest"): "econml_forest_doubly_robust", (False, "forest"): "econml_forest_blb_conservative"}
    assert e.inference == expected.get((binary, model), "econml_linear_dml_hc1")


def test_overlap_check_fails_when_propensities_sit_at_zero_or_one(csv, runner, write_spec):
    """Treatment decided by x0 for |x0| > 0.8 (about 42% of units): forest propensities hit 0 and 1."""
    rng = np.random.default_rng(4)
    df, _ = simulate_dml(1000, seed=4)
    x0 = df.x0.to_numpy()
    df["t"] = np.where(x0 > 0.8, 1, np.where(x0 < -0.8, 0, rng.integers(0, 2, size=len(df))))
    spec = write_spec(dml_spec(csv(df), learner="forest"))
    code, payload, _ = run_json(runner, [str(spec)])
    assert code == 1 and payload["passed"] is False
    check = payload["checks"][0]
    assert check["name"] == "overlap" and check["passed"] is False
    assert payload["diagnostics"]["nuisance"]["at_zero_or_one"] > 0 and "0 or 1" in check["detail"]


# ---------------------------------------------------------------- priority 2: segments


def test_segment_effects_recovered_with_heterogeneity_test(csv):
    df, _ = simulate_dml(4000, seed=21, heterogeneous=True)
    res = run_study(dml_spec(csv(df), _study={"segments": ["seg"]}))
    labels = [e.label for e in res.effects]
    assert labels == ["seg=a", "seg=b", "seg=c"]
    for e in res.effects:
        truth = SEGMENT_EFFECTS[e.label.split("=")[1]]
        assert e.ci_lower < truth < e.ci_upper, e
        assert e.inference == "econml_linear_dml_hc1; p_value_adjusted: holm over 3 values of seg"
    # Holm over the column's three values, as every design's segments (statsmodels' multipletests)
    from statsmodels.stats.multitest import multipletests

    holm = multipletests([e.p_value for e in res.effects], method="holm")[1]
    assert [e.p_value_adjusted for e in res.effects] == pytest.approx(list(holm), rel=1e-12)
    het = res.diagnostics["heterogeneity"][0]
    assert het["segment"] == "seg" and het["df"] == 2 and het["p_value"] < 1e-6
    # the ATE is the average of the segment effects over all rows
    shares = df.seg.value_counts(normalize=True).sort_index().to_numpy()
    assert res.estimate.value == pytest.approx(float(np.dot(shares, [e.value for e in res.effects])), rel=1e-9)


def test_heterogeneity_test_does_not_reject_a_constant_effect(csv):
    df, _ = simulate_dml(3000, seed=23)
    res = run_study(dml_spec(csv(df), _study={"segments": ["seg"]}))
    assert res.diagnostics["heterogeneity"][0]["p_value"] > 0.01
    for e in res.effects:
        assert e.ci_lower < 2.0 < e.ci_upper


# ---------------------------------------------------------------- priority 3: forest


def test_causal_forest_cate_distribution_and_effect_modifiers(csv):
    df, effect = simulate_dml(3000, seed=31, forest_cate=True)
    res = run_study(dml_spec(csv(df), model="forest", trees=100, _study={"segments": ["seg"]}))
    e = res.estimate
    assert res.estimator == "causal_forest_dml" and e.inference == "econml_forest_doubly_robust"
    assert e.ci_lower < effect.mean() < e.ci_upper
    cate = res.diagnostics["cate"]
    q = cate["quantiles"]
    assert q["q05"] < q["q25"] < q["q50"] < q["q75"] < q["q95"]
    # the true CATE 1 + x0 has quartiles 1 -+ 0.67: the forest must spread them the right way
    assert q["q25"] < 1.0 < q["q75"]
    assert cate["effect_modifiers"][0]["name"] == "x0"
    assert [x.label for x in res.effects] == ["seg=a", "seg=b", "seg=c"]
    assert all(x.inference.split(";")[0] == "econml_forest_blb_conservative" for x in res.effects)
    assert res.diagnostics["heterogeneity"][0]["p_value"] > 0.001  # seg does not modify the effect here


# ---------------------------------------------------------------- refuters, determinism, errors


def test_refuter_points_reuse_the_fit(csv):
    """With nothing changed, the refuters' recomputation gives the reported estimate back."""
    from causalcli.designs import get_design
    from causalcli.designs.dml.final import final_stage_point
    from causalcli.study.run import as_loaded, prepare_study

    df, _ = simulate_dml(1500, seed=41, heterogeneous=True)
    for model, estimand in (("linear", "att"), ("forest", "ate")):
        forest = {"trees": 40} if model == "forest" else {}  # a linear model refuses the forest's size
        loaded = as_loaded(dml_spec(csv(df), model=model, estimand=estimand, _study={"segments": ["seg"]}, **forest))
        prep = prepare_study(loaded)
        design = get_design("dml")
        data = design.prepare(loaded.study, prep.table, prep.identification, loaded)
        fit = design.fit(data, loaded.study, 0)
        learned = fit.refute_on  # the data with the fit's cross-fitted residuals, as the refuters get them
        # the refuters' forests are smaller than the fit's (final.REFUTER_TREES): at the fit's size the
        # recomputation is the fit's; at theirs it moves within a fraction of the standard error
        again = final_stage_point(learned, learned.cross_fit, rows=np.arange(len(df)), trees=None)
        assert again == pytest.approx(fit.estimate.value, rel=1e-9, abs=1e-9), model
        refuters_size = design.point(learned, rows=np.arange(len(df)))
        assert abs(refuters_size - fit.estimate.value) < (0 if model == "linear" else 0.5) * fit.estimate.std_error \
            or refuters_size == pytest.approx(fit.estimate.value, rel=1e-9, abs=1e-9)
        placebo = design.point(learned, treatment=np.random.default_rng(0).permutation(data.t))
        assert abs(placebo) < 4 * fit.estimate.std_error


def test_forest_placebos_on_a_heavy_tailed_outcome_spread_as_the_fits_forest(csv):
    """401(k)-like wealth (a log-normal outcome): 2-tree placebo forests spread 3-5 times wider than the fit's
    forest, so a real effect of 3-7 SEs failed placebo_treatment (1 of 19 placebos as large; on the 401(k) data
    3 of 19). The refuters' forest must spread its placebos as the fit's does."""
    from causalcli.designs import get_design
    from causalcli.designs.dml.final import final_stage_point
    from causalcli.study.run import as_loaded, prepare_study

    rng = np.random.default_rng(2)
    n = 1000
    x = rng.normal(size=(n, 4))
    t = (rng.uniform(size=n) < 1 / (1 + np.exp(-(x[:, 0] - 0.5)))).astype(int)
    y = 8 * t + x[:, 0] + np.exp(1.5 * x[:, 1] + rng.normal(size=n))
    df = pd.DataFrame({"t": t, "y": y, **{f"x{j}": x[:, j] for j in range(4)}})
    spec = dml_spec(csv(df), model="forest", trees=40, _study={"refute": [{"placebo_treatment": {}}]})
    res = run_study(spec)
    assert res.estimate.value > 5 * res.estimate.std_error
    assert res.refutations[0].passed is True, res.refutations[0].detail
    loaded = as_loaded(spec)
    prep = prepare_study(loaded)
    design = get_design("dml")
    data = design.prepare(loaded.study, prep.table, prep.identification, loaded)
    learned = design.fit(data, loaded.study, 0).refute_on
    perms = [np.random.default_rng(i).permutation(data.t) for i in range(19)]
    refuters = np.array([design.point(learned, treatment=p) for p in perms])
    fits_size = np.array([final_stage_point(learned, learned.cross_fit, p, trees=None) for p in perms])
    # an SD from 19 draws is within about 17% of its value (1 / sqrt(2 * 18)); measured ratio 0.99 (2 trees: 4.7)
    assert refuters.std(ddof=1) < 1.5 * fits_size.std(ddof=1)


def test_default_refuters_settle_in_the_fewest_rounds_and_pass(csv):
    """Under the one refuter budget (checks.refutation.BUDGET): the placebo runs the 19 simulations that
    can reach alpha, and the stability refuters settle after their first round of 5 (dml's own
    budget, 20 / 5 / 20, is gone)."""
    df, _ = simulate_dml(1500, seed=43)
    spec = dml_spec(csv(df))
    spec.pop("refute")
    res = run_study(spec, jobs=2)
    sims = {r.name: r.simulations for r in res.refutations}
    assert sims == {"placebo_treatment": 19, "random_common_cause": 5, "data_subset": 5}
    assert all(r.passed for r in res.refutations), [r.detail for r in res.refutations]


def test_forest_refuters_run_in_forked_workers(csv):
    """The final forest refits inside forked workers (one thread each) and gives finite, passing results."""
    df, _ = simulate_dml(800, seed=47, heterogeneous=True)
    spec = dml_spec(csv(df), model="forest", trees=40)
    spec["refute"] = [{"placebo_treatment": {"simulations": 4}}, {"random_common_cause": {"simulations": 2}},
                      {"data_subset": {"simulations": 4}}]
    res = run_study(spec, jobs=2)
    assert [r.name for r in res.refutations] == ["placebo_treatment", "random_common_cause", "data_subset"]
    assert all(r.new_effect is not None and np.isfinite(r.new_effect) for r in res.refutations)
    assert abs(res.refutations[0].new_effect) < abs(res.estimate.value) / 2


def test_same_seed_same_json_whatever_jobs(csv, runner, write_spec):
    df, _ = simulate_dml(800, seed=45, heterogeneous=True)
    spec = dml_spec(csv(df), learner="gbm", _study={"segments": ["seg"]})
    spec["refute"] = [{"placebo_treatment": {"simulations": 4}}, {"random_common_cause": {"simulations": 2}},
                      {"data_subset": {"simulations": 4}}]
    path = write_spec(spec)
    fixed = json_whatever_jobs(runner, path)
    code, other, _ = run_json(runner, [str(path), "--seed", "1", "--no-refute"])
    assert other["estimate"]["value"] != json.loads(fixed)["estimate"]["value"]


@pytest.mark.parametrize("change, code, words", [
    ({"design": {"method": "dml", "estimand": "atc"}}, 2, "estimand"),
    ({"design": {"method": "dml", "options": {"learner": "svm"}}}, 2, "learner"),
    ({"design": {"method": "dml", "options": {"model": "forest", "trees": 10}}}, 2, "multiple of 4"),
    ({"segments": ["nope"]}, 3, "nope"),
    ({"weights": "x3"}, 3, "negative"),  # x3 is normal: negative weights are refused before any work
    ({"covariates": []}, 2, "covariates"),
])
def test_bad_input_gives_one_line_and_exit_code(csv, runner, write_spec, change, code, words):
    df, _ = simulate_dml(300, seed=1)
    spec = dml_spec(csv(df))
    spec.update(change)
    res = invoke(runner, ["estimate", str(write_spec(spec)), "--format", "json"])
    assert res.exit_code == code, res.stderr
    assert words in res.stderr and len(res.stderr.strip().splitlines()) == 1


def test_att_with_continuous_treatment_is_refused(csv, runner, write_spec):
    df, _ = simulate_dml(300, seed=1, binary=False)
    res = invoke(runner, ["estimate", str(write_spec(dml_spec(csv(df), estimand="att")))])
    assert res.exit_code == 2 and "binary treatment" in res.stderr


def test_plots_drawn_from_the_result(csv, tmp_path):
    from causalcli.render.plots import write_plots

    df, _ = simulate_dml(1500, seed=51, heterogeneous=True)
    linear = run_study(dml_spec(csv(df), _study={"segments": ["seg"]}))
    forest = run_study(dml_spec(csv(df), model="forest", trees=40, _study={"segments": ["seg"]}))
    names = {p.name for p in write_plots(linear, tmp_path)} | {p.name for p in write_plots(forest, tmp_path)}
    assert {"dml-segments.png", "dml-propensity.png", "dml-cate.png"} <= names


# ---------------------------------------------------------------- coverage (slow)


@pytest.mark.slow
def test_ate_and_segment_intervals_cover_at_their_nominal_rate():
    """Coverage of the 95% intervals over 200 simulated studies (binomial SE of the rate: 1.5 points).

    Calls the design's estimator directly on each draw (no files). The bounds 0.91-0.99 are
    about three binomial SEs around 0.95.
    """
    from causalcli.designs.dml.data import DmlData
    from causalcli.designs.dml.design import DmlDesign

    draws, hits_ate, hits_seg, seg_total = 200, 0, 0, 0
    design = DmlDesign()
    for r in range(draws):
        df, _ = simulate_dml(1000, seed=10_000 + r, heterogeneous=True)
        S = pd.get_dummies(df.seg, drop_first=True).to_numpy(float)
        data = DmlData(W=df[["x0", "x1", "x2", "x3"]].to_numpy(), covariates=("x0", "x1", "x2", "x3"),
                       t=df.t.to_numpy(float), y=df.y.to_numpy(), binary=True, S=S,
                       segment_dummies=("seg=b", "seg=c"), segment_columns=("seg",),
                       segment_values=(df.seg.to_numpy().astype(str),), model="linear", learner="linear", folds=5,
                       trees=100, min_leaf=5, estimand="ate", treatment="t", rows=1000, dropped_missing=0, file="-")

        class _Study:  # the fields fit reads
            conf_level = 0.95

            class thresholds:
                propensity_bounds = (0.01, 0.99)
                max_outside = 0.05

        fit = design.fit(data, _Study, r)
        truth = np.mean([SEGMENT_EFFECTS[s] for s in df.seg])  # the sample ATE the estimator targets
        hits_ate += fit.estimate.ci_lower < truth < fit.estimate.ci_upper
        for e in fit.effects:
            seg_total += 1
            hits_seg += e.ci_lower < SEGMENT_EFFECTS[e.label.split("=")[1]] < e.ci_upper
    assert 0.91 <= hits_ate / draws <= 0.99
    assert 0.91 <= hits_seg / seg_total <= 0.99


def test_report_shows_the_nuisance_scores_outside_the_json_block(csv):
    """The out-of-fold R² and AUC that say whether the learners fit sat only in the collapsed JSON of the report."""
    from causalcli.numbers import num
    from causalcli.render.html import render_html

    df, _ = simulate_dml(300, seed=3)
    res = run_study(dml_spec(csv(df)))
    page = render_html([res])
    table = page[page.index("diagnostics in numbers"):page.index("all diagnostics")]
    nuisance = res.diagnostics["nuisance"]
    for name in ("outcome_r2", "propensity_auc", "propensity_brier", "at_zero_or_one"):
        assert f"<td>nuisance</td><td>{name}</td><td class=num>{num(nuisance[name])}</td>" in table
    assert "<td>dml</td><td>folds</td><td class=num>5</td>" in table
    # a whole number stored as a float (did's first period) reads as the integer, not "2,003.0"
    from dataclasses import replace

    page = render_html([replace(res, diagnostics={"panel": {"first_period": 2003.0, "share": 0.25}})])
    assert "<td>panel</td><td>first_period</td><td class=num>2003</td>" in page
    assert f"<td>panel</td><td>share</td><td class=num>{num(0.25)}</td>" in page
