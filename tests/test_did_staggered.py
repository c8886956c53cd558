"""Imputation (Borusyak, Jaravel and Spiess 2024) and Sun-Abraham (2021) against diff-diff 3.13.

Tolerances: the estimates solve the same least-squares problems as diff-diff (its sparse LU, our
elimination of the unit block), so they agree to rounding, 1e-8 absolute (observed ~1e-12); the standard
errors are the same closed forms (Theorem 3's conservative variance; CRV1 with the same small-sample factor),
1e-6 relative (observed ~1e-12). p-values and intervals follow (imputation: normal; Sun-Abraham: t on the
residual degrees of freedom, as diff-diff).
"""

from __future__ import annotations

import json
import warnings

import numpy as np
import pandas as pd
import pytest

from causalcli.study.run import run_study
from tests.conftest import invoke
from tests.reference.did.sources import MPDTA

EST_TOL = 1e-8
SE_RTOL = 1e-6


def staggered_panel(units: int, periods: int = 10, seed: int = 7, covariate: bool = True) -> pd.DataFrame:
    """Balanced staggered panel: cohorts 4, 6, 8 and never treated; effects growing with event time."""
    rng = np.random.default_rng(seed)
    g = rng.choice([0, 4, 6, 8], size=units, p=[0.3, 0.25, 0.25, 0.2])
    unit = np.repeat(np.arange(units), periods)
    time = np.tile(np.arange(1, periods + 1), units)
    gr = g[unit]
    d = (gr > 0) & (time >= gr)
    x = rng.normal(size=unit.size) + 0.05 * time
    y = (rng.normal(size=units)[unit] + 0.2 * time + 0.5 * x * covariate
         + d * (1.0 + 0.2 * np.where(d, time - gr, 0)) + rng.normal(size=unit.size))
    return pd.DataFrame({"unit": unit, "time": time, "g": gr, "x": x, "y": y})


def spec(path, estimator, y="y", unit="unit", time="time", cohort="g", covariates=(), honest_did=True,
         **extra) -> dict:
    """``honest_did: false`` where the test is about something else: the sets take seconds with many periods."""
    return {"version": 1, "data": {"path": str(path)}, "outcome": y, "covariates": list(covariates),
            "design": {"method": "did", "unit": unit, "time": time, "cohort": cohort, "estimator": estimator,
                       "options": {"honest_did": honest_did}},
            "refute": [], **extra}


def mpdta_spec(estimator: str, honest_did: bool = False) -> dict:
    return spec(MPDTA, estimator, "lemp", "countyreal", "year", "first.treat", honest_did=honest_did)


def peer(estimator: str, df: pd.DataFrame, y="y", unit="unit", time="time", cohort="g", covariates=None):
    from diff_diff import ImputationDiD, SunAbraham

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        if estimator == "imputation":
            est = ImputationDiD()
            res = est.fit(df, y, unit, time, cohort, covariates=covariates)
            es = res.aggregate("event_study")
            effects = {float(e): (a, s) for e, a, s, ref in zip(es.event_time, es.att, es.se, es.is_reference)
                       if not ref}
            return res, effects, est._pretrend_test()
        res = SunAbraham().fit(df, y, unit, time, cohort, covariates=covariates)
        return res, {float(e): (v["effect"], v["se"]) for e, v in res.event_study_effects.items()}, None


def assert_same(res, peer_res, effects, pretrend, analytic_p: bool = True):
    """``analytic_p``: the p-value is the analytic one (not randomization inference with few clusters)."""
    assert res.estimate.value == pytest.approx(peer_res.overall_att, abs=EST_TOL)
    assert res.estimate.std_error == pytest.approx(peer_res.overall_se, rel=SE_RTOL)
    if analytic_p:
        assert res.estimate.p_value == pytest.approx(peer_res.overall_p_value, rel=1e-6)
    ours = {float(e.label.split("=")[1]): e for e in res.effects}
    effects = {e: v for e, v in effects.items() if np.isfinite(v[0])}  # diff-diff's NaN: horizons not imputable
    assert set(ours) == set(effects)
    for e, (att, se) in effects.items():
        assert ours[e].value == pytest.approx(att, abs=EST_TOL)
        assert ours[e].std_error == pytest.approx(se, rel=SE_RTOL)
    if pretrend is not None and np.isfinite(pretrend["f_stat"]):
        pt = res.diagnostics["pre_trend"]
        assert pt["statistic"] == pytest.approx(pretrend["f_stat"], rel=1e-6)
        assert pt["p_value"] == pytest.approx(pretrend["p_value"], rel=1e-6)
        assert pt["leads"] == sorted(pretrend["lead_coefficients"])


@pytest.mark.peer
@pytest.mark.parametrize("estimator", ["imputation", "sun_abraham"])
def test_mpdta_equals_diff_diff(estimator):
    res = run_study(mpdta_spec(estimator))
    assert_same(res, *peer(estimator, pd.read_csv(MPDTA), "lemp", "countyreal", "year", "first.treat"))
    assert res.estimator == estimator and res.estimate.inference.startswith(estimator)
    assert res.estimate.inference.endswith("_overall_att")  # the headline names diff-diff's aggregation
    assert all(e.inference == res.estimate.inference.removesuffix("_overall_att") for e in res.effects)


@pytest.mark.peer
@pytest.mark.parametrize("estimator", ["imputation", "sun_abraham"])
def test_simulated_staggered_panel_with_a_covariate_equals_diff_diff(tmp_path, estimator):
    df = staggered_panel(600)
    df.to_csv(tmp_path / "p.csv", index=False)
    res = run_study(spec(tmp_path / "p.csv", estimator, covariates=["x"], honest_did=False))
    assert_same(res, *peer(estimator, df, covariates=["x"]))


@pytest.mark.peer
@pytest.mark.parametrize("estimator", ["imputation", "sun_abraham"])
def test_unbalanced_panel_equals_diff_diff(tmp_path, estimator):
    df = staggered_panel(400, periods=8, seed=11)
    df = df.drop(index=np.random.default_rng(0).choice(df.index, size=len(df) // 20, replace=False))
    df.to_csv(tmp_path / "p.csv", index=False)
    res = run_study(spec(tmp_path / "p.csv", estimator, covariates=["x"], honest_did=False))
    assert res.diagnostics["panel"]["balanced"] is False
    assert_same(res, *peer(estimator, df, covariates=["x"]))


@pytest.mark.slow
@pytest.mark.peer
@pytest.mark.parametrize("estimator", ["imputation", "sun_abraham"])
def test_20000_unit_panel_equals_diff_diff(tmp_path, estimator):
    df = staggered_panel(20_000, covariate=False)
    df.to_parquet(tmp_path / "p.parquet", index=False)
    res = run_study(spec(tmp_path / "p.parquet", estimator, honest_did=False))
    assert_same(res, *peer(estimator, df))


def test_sun_abraham_event_study_feeds_the_pre_trend_test_and_honest_did():
    res = run_study(mpdta_spec("sun_abraham", honest_did=True))
    check = next(c for c in res.checks if c.name == "pre_trend")
    assert check.passed is True and res.diagnostics["pre_trend"]["leads"] == [-4, -3, -2]
    honest = res.diagnostics["sensitivity"]["honest_did"]
    assert "skipped" not in honest and honest["pre_periods"] == 3 and honest["post_periods"] == 4
    assert honest["inputs"].startswith("Sun-Abraham")
    # its target is the plain mean of the post-treatment effects, with the SE from their joint covariance
    average = res.diagnostics["aggregations"]["event_time_average"]
    assert honest["estimate"] == pytest.approx(average["att"], abs=1e-12)
    assert honest["std_error"] == pytest.approx(average["std_error"], rel=1e-9)
    assert honest["first_post_period"]["estimate"] == next(e.value for e in res.effects if e.label == "event_time=0")
    assert honest["sets"][0]["lb"] < honest["estimate"] < honest["sets"][0]["ub"]


def test_overall_effect_is_the_observation_weighted_mean_of_the_event_time_effects():
    """Both headlines weigh every treated row alike: the event-time effects averaged by their rows."""
    for estimator in ("imputation", "sun_abraham"):
        res = run_study(mpdta_spec(estimator))
        post = [e for e in res.effects if float(e.label.split("=")[1]) >= 0]
        rows = pd.read_csv(MPDTA)
        rows = rows[(rows["first.treat"] > 0) & (rows.year >= rows["first.treat"])]
        n = (rows.year - rows["first.treat"]).value_counts()
        avg = sum(e.value * n[int(float(e.label.split("=")[1]))] for e in post) / n.sum()
        assert res.estimate.value == pytest.approx(avg, abs=1e-12)
        assert res.diagnostics["aggregations"]["observations"]["att"] == res.estimate.value


@pytest.mark.parametrize("estimator", ["imputation", "sun_abraham"])
def test_refuters_run_and_recover_the_effect(tmp_path, estimator):
    df = staggered_panel(150, periods=8, covariate=False)
    df.to_csv(tmp_path / "p.csv", index=False)
    s = spec(tmp_path / "p.csv", estimator, honest_did=False)
    s["refute"] = [{"placebo_treatment": {"simulations": 19}}, {"random_common_cause": {"simulations": 5}},
                   {"data_subset": {"fraction": 0.8, "simulations": 5}}]
    res = run_study(s)
    refs = {r.name: r for r in res.refutations}
    assert refs["placebo_treatment"].passed is True and abs(refs["placebo_treatment"].new_effect) < 0.5
    assert refs["random_common_cause"].passed is True and refs["data_subset"].passed is True


# ---------------------------------------------------------------- bad input


@pytest.mark.parametrize("estimator", ["imputation", "sun_abraham"])
def test_cohort_with_no_pre_period_is_dropped_and_none_left_is_exit_3(runner, tmp_path, write_spec, estimator):
    df = staggered_panel(60, periods=6, covariate=False)
    df["g"] = np.where(df.g > 0, 1, 0)  # every treated cohort starts in the first period
    df.to_csv(tmp_path / "p.csv", index=False)
    res = invoke(runner, ["estimate", str(write_spec(spec("p.csv", estimator)))])
    assert res.exit_code == 3
    assert "treated in the first period (1) were dropped (no pre-treatment period)" in res.stderr


@pytest.mark.parametrize("estimator", ["imputation", "sun_abraham"])
def test_adoption_dates_outside_the_panel_are_exit_3(runner, tmp_path, write_spec, estimator):
    df = staggered_panel(60, periods=6, covariate=False)
    df["g"] = np.where(df.g > 0, 99, 0)  # after the last period: never treated in this panel
    df.to_csv(tmp_path / "p.csv", index=False)
    res = invoke(runner, ["estimate", str(write_spec(spec("p.csv", estimator)))])
    assert res.exit_code == 3 and "no unit is ever treated in the panel" in res.stderr


@pytest.mark.peer
def test_sun_abraham_without_never_treated_units_is_exit_3(runner, tmp_path, write_spec):
    df = staggered_panel(60, periods=10, covariate=False)
    df["g"] = np.where(df.g > 0, df.g, 9)
    df.to_csv(tmp_path / "p.csv", index=False)
    res = invoke(runner, ["estimate", str(write_spec(spec("p.csv", "sun_abraham")))])
    assert res.exit_code == 3 and "never-treated units" in res.stderr and "design.cohort" in res.stderr
    # imputation needs none: treated rows of periods without untreated rows are left out, as diff-diff
    res = run_study(spec(tmp_path / "p.csv", "imputation", honest_did=False))
    assert any("cannot be imputed" in w for w in res.warnings)
    # every unit is treated at some time, so no cluster is never treated: the few-clusters rule (fewer than 6
    # untreated clusters) takes randomization inference over units for the headline, as it does for twfe
    assert res.estimate.inference == "randomization_inference_units"
    assert_same(res, *peer("imputation", df), analytic_p=False)


def test_weights_are_a_spec_error(runner, tmp_path, write_spec):
    df = staggered_panel(40, periods=6, covariate=False).assign(w=1.0)
    df.to_csv(tmp_path / "p.csv", index=False)
    res = invoke(runner, ["estimate", str(write_spec(spec("p.csv", "imputation", weights="w")))])
    assert res.exit_code == 2 and "weights" in res.stderr


@pytest.mark.parametrize("estimator", ["imputation", "sun_abraham"])
def test_few_clusters_take_randomization_inference_over_units(tmp_path, estimator):
    """SPEC "Inference with few clusters": below 42 clusters the headline's p-value and interval come from
    randomization inference over units (no wild bootstrap is built for these estimators); both are linear in the
    outcome, so the interval inverts the test of a constant effect. The event-time effects keep their SEs only."""
    df = staggered_panel(200, periods=6, covariate=False)
    df["state"] = df.unit % 10
    df.to_csv(tmp_path / "p.csv", index=False)
    s = spec(tmp_path / "p.csv", estimator)
    s["design"]["cluster"] = "state"
    res = run_study(s)
    analytic = run_study(spec(tmp_path / "p.csv", estimator))  # clustered by unit: 200 clusters
    assert res.estimate.inference == "randomization_inference_units"
    assert res.estimate.value == pytest.approx(analytic.estimate.value, rel=1e-12)
    ri = res.diagnostics["clusters"]["randomization"]
    assert ri["p_value"] == res.estimate.p_value and ri["assignments"] >= 99
    assert res.estimate.ci_lower < res.estimate.value < res.estimate.ci_upper
    check = next(c for c in res.checks if c.name == "clusters")
    assert check.passed is None and "10 clusters" in check.detail and "randomization" in check.detail
    assert all(e.p_value is None and e.ci_lower is None and e.std_error is not None for e in res.effects)
    many = next(c for c in analytic.checks if c.name == "clusters")
    assert many.passed is True and analytic.estimate.inference != "randomization_inference_units"
    assert all(e.p_value is not None for e in analytic.effects)


@pytest.mark.parametrize("option, value", [("control_group", "not_yet_treated"), ("aggregation", "dynamic"),
                                           ("bootstrap", "multiplier")])
def test_callaway_santanna_options_are_a_spec_error(runner, tmp_path, write_spec, option, value):
    df = staggered_panel(40, periods=6, covariate=False)
    df.to_csv(tmp_path / "p.csv", index=False)
    s = spec("p.csv", "sun_abraham")
    s["design"]["options"][option] = value
    res = invoke(runner, ["estimate", str(write_spec(s))])
    assert res.exit_code == 2 and f"design.options.{option}" in res.stderr and value in res.stderr


@pytest.mark.parametrize("estimator", ["twfe", "callaway_santanna", "sun_abraham"])
@pytest.mark.parametrize("empty", ["", "NaN"])
def test_empty_cohort_is_never_treated_as_zero_is(runner, tmp_path, write_spec, estimator, empty):
    """SPEC: a cohort of 0 or empty means never treated. Empty (castle doctrine's effyear for its 29 control
    states) was read as missing: the never-treated units were dropped and TWFE ran on the treated alone."""
    df = staggered_panel(40, periods=6, covariate=False)
    df.to_csv(tmp_path / "zero.csv", index=False)
    df.astype({"g": "object"}).assign(g=df.g.where(df.g > 0, empty)).to_csv(tmp_path / "empty.csv", index=False)
    out = {}
    for name in ("zero", "empty"):
        res = invoke(runner, ["estimate", str(write_spec(spec(f"{name}.csv", estimator, honest_did=False),
                                                         f"{name}.yaml")), "--format", "json", "--quiet"])
        assert res.exit_code in (0, 1), res.stdout + res.stderr
        out[name] = json.loads(res.stdout)
    assert out["empty"]["n"] == out["zero"]["n"] and out["empty"]["n"]["dropped_missing"] == 0
    assert out["empty"]["estimate"] == out["zero"]["estimate"]
