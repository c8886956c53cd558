"""Difference-in-differences against pyfixest, linearmodels, diff-diff and known truths.

The comparison with R's did on its published outputs is tests/reference/did/test_r_did_mpdta.py; the
scenarios and data (``mpdta.csv``) come from tests/reference/did/sources.py.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from causalcli.errors import EstimationError
from causalcli.study.run import run_study
from tests.conftest import invoke, run_json
from tests.reference.did.sources import MPDTA, R_TOL, SCENARIOS, cs_spec

COEF_TOL = 1e-8  # regression coefficients vs pyfixest/linearmodels (both solve the same normal equations)
SE_RTOL = 1e-6   # clustered SEs (fixest's demeaning tolerance is 1e-8 relative; ours 1e-10)


def mpdta_with_d(tmp_path: Path) -> Path:
    df = pd.read_csv(MPDTA)
    df["d"] = ((df["first.treat"] > 0) & (df.year >= df["first.treat"])).astype(int)
    path = tmp_path / "mp.csv"
    df.to_csv(path, index=False)
    return path


def simulate_panel(units: int = 300, periods: int = 8, seed: int = 3, dynamic: float = 0.0, pretrend: float = 0.0,
                   cohorts=(4, 6), never_share: float = 0.3) -> pd.DataFrame:
    """Staggered panel: effect 1 + dynamic * (t - g) from period g on; unit and period effects; x time-varying."""
    rng = np.random.default_rng(seed)
    g = np.where(rng.uniform(size=units) < never_share, 0, rng.choice(cohorts, size=units))
    rows = []
    alpha = rng.normal(size=units)
    lam = rng.normal(size=periods + 1)
    for i in range(units):
        for t in range(1, periods + 1):
            treated = g[i] > 0 and t >= g[i]
            x = rng.normal() + 0.1 * t
            eff = (1.0 + dynamic * (t - g[i])) if treated else 0.0
            trend = pretrend * t * (g[i] > 0)
            y = alpha[i] + lam[t] + 0.5 * x + eff + trend + rng.normal()
            rows.append((i, t, g[i], int(treated), x, y, 1.0 + (i % 3), i % 30))
    return pd.DataFrame(rows, columns=["unit", "time", "g", "d", "x", "y", "w", "state"])


# ---------------------------------------------------------------- Callaway-Sant'Anna vs R did


def test_callaway_santanna_headline_follows_the_aggregation_option():
    res = run_study(cs_spec("mpdta_nev_dr", aggregation="dynamic"))
    assert res.estimate.value == pytest.approx(-0.0772398214573151, abs=R_TOL)  # R aggte(type = "dynamic")
    assert [e.label for e in res.effects][0] == "event_time=-3"


@pytest.mark.peer
@pytest.mark.parametrize("scenario", ["mpdta_nev_dr", "mpdta_nyt_dr", "mpdta_nev_ipw", "mpdta_nev_reg_cov"])
def test_callaway_santanna_agrees_with_diff_diff(scenario):
    """diff-diff's CallawaySantAnna (validated against R) on the same data."""
    import warnings

    from diff_diff import CallawaySantAnna

    s = SCENARIOS[scenario]
    df = pd.read_csv(MPDTA)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        peer = CallawaySantAnna(control_group=s["control_group"], estimation_method=s["method"]).fit(
            df, "lemp", "countyreal", "year", "first.treat", covariates=s["covariates"] or None, aggregate="all")
    res = run_study(cs_spec(scenario))
    gt = {(r["group"], r["time"]): r for r in res.diagnostics["group_time"]}
    for (g, t), eff in peer.group_time_effects.items():
        assert gt[(float(g), float(t))]["att"] == pytest.approx(eff["effect"], abs=1e-8)
        assert gt[(float(g), float(t))]["std_error"] == pytest.approx(eff["se"], abs=1e-6)
    assert res.diagnostics["aggregations"]["simple"]["att"] == pytest.approx(peer.overall_att, abs=1e-8)
    assert res.diagnostics["aggregations"]["simple"]["std_error"] == pytest.approx(peer.overall_se, abs=1e-6)
    dyn = {float(e["label"].split("=")[1]): e for e in res.diagnostics["aggregations"]["dynamic"]["elements"]}
    for e, eff in peer.event_study_effects.items():
        if eff.get("n_groups", 1) == 0:
            continue
        assert dyn[float(e)]["att"] == pytest.approx(float(eff["effect"]), abs=1e-8)


def test_multiplier_bootstrap_is_close_to_analytic_and_bands_are_uniform():
    res = run_study(cs_spec("mpdta_nev_dr", bootstrap="multiplier", draws=999))
    assert res.estimate.inference == "cs_multiplier_bootstrap"
    # IQR-scaled bootstrap SE with 999 draws: sampling error of a few percent; 15% bounds it with room
    assert res.estimate.std_error == pytest.approx(0.0120340127701854, rel=0.15)
    crit = res.diagnostics["callaway_santanna"]["uniform_band_critical_value"]
    assert 1.96 < crit < 4.0  # a uniform band over 7 event times is wider than the pointwise one
    e = res.effects[-1]
    assert e.inference == "cs_multiplier_bootstrap_uniform_band"
    assert (e.ci_upper - e.value) == pytest.approx(crit * e.std_error)
    again = run_study(cs_spec("mpdta_nev_dr", bootstrap="multiplier", draws=999))
    assert again.estimate == res.estimate


def test_callaway_santanna_recovers_heterogeneous_truth_where_twfe_is_biased(tmp_path):
    """Effects grow with time since treatment: TWFE's already-treated comparisons bias it; CS is unbiased."""
    df = simulate_panel(units=1500, periods=8, seed=5, dynamic=0.5, cohorts=(3, 5, 7), never_share=0.3)
    path = tmp_path / "p.csv"
    df.to_csv(path, index=False)
    # truth: simple ATT = average over treated unit-periods (cohort-size weighted) of 1 + 0.5 (t - g)
    post = df[(df.g > 0) & (df.time >= df.g)]
    truth = float((1 + 0.5 * (post.time - post.g)).mean())
    base = {"version": 1, "data": {"path": str(path)}, "treatment": "d", "outcome": "y",
            "design": {"method": "did", "unit": "unit", "time": "time"}, "refute": []}
    cs = run_study({**base, "design": {**base["design"], "estimator": "callaway_santanna"}})
    tw = run_study({**base, "design": {**base["design"], "estimator": "twfe"}})
    assert abs(cs.estimate.value - truth) < 3 * cs.estimate.std_error
    assert abs(tw.estimate.value - truth) > 5 * tw.estimate.std_error  # TWFE far off the truth
    assert any("Goodman-Bacon" in w and "callaway_santanna" in w for w in tw.warnings)
    dyn = {e.label: e for e in cs.effects}
    for k in range(0, 4):
        est = dyn[f"event_time={k}"]
        assert abs(est.value - (1 + 0.5 * k)) < 3.5 * est.std_error


# ---------------------------------------------------------------- TWFE, 2x2 and event study vs pyfixest


def _pf(formula, df, cluster="unit", weights=None):
    import pyfixest as pf

    return pf.feols(formula, data=df, vcov={"CRV1": cluster}, weights=weights)


@pytest.mark.peer
@pytest.mark.parametrize("weights", [None, "w"])
def test_twfe_equals_pyfixest(tmp_path, weights):
    df = simulate_panel(seed=7)
    path = tmp_path / "p.csv"
    df.to_csv(path, index=False)
    spec = {"version": 1, "data": {"path": str(path)}, "treatment": "d", "outcome": "y", "covariates": ["x"],
            "weights": weights, "design": {"method": "did", "unit": "unit", "time": "time", "estimator": "twfe"},
            "refute": []}
    res = run_study(spec)
    m = _pf("y ~ d + x | unit + time", df, weights=weights)
    assert res.estimate.value == pytest.approx(m.coef()["d"], abs=COEF_TOL)
    assert res.estimate.std_error == pytest.approx(m.se()["d"], rel=SE_RTOL)
    assert res.estimate.p_value == pytest.approx(m.pvalue()["d"], rel=1e-6)
    ci = m.confint().loc["d"].to_numpy()
    assert [res.estimate.ci_lower, res.estimate.ci_upper] == pytest.approx(list(ci), rel=1e-6)
    assert res.diagnostics["coefficients"]["x"] == pytest.approx(m.coef()["x"], abs=COEF_TOL)
    # cluster on a coarser column, where the unit effects are nested in the clusters
    spec["design"]["cluster"] = "state"
    res = run_study(spec)
    m = _pf("y ~ d + x | unit + time", df, cluster="state", weights=weights)
    assert res.estimate.std_error == pytest.approx(m.se()["d"], rel=SE_RTOL)
    assert res.n["clusters"] == 30


@pytest.mark.peer
def test_twfe_equals_linearmodels_with_the_same_corrections(tmp_path):
    from linearmodels import PanelOLS

    path = mpdta_with_d(tmp_path)
    df = pd.read_csv(path)
    res = run_study({"version": 1, "data": {"path": str(path)}, "treatment": "d", "outcome": "lemp",
                     "design": {"method": "did", "unit": "countyreal", "time": "year"}, "refute": []})
    m = PanelOLS(df.set_index(["countyreal", "year"]).lemp, df.set_index(["countyreal", "year"])[["d"]],
                 entity_effects=True, time_effects=True).fit(
        cov_type="clustered", cluster_entity=True, debiased=False, auto_df=False, count_effects=False,
        group_debias=True)
    assert res.estimate.value == pytest.approx(m.params["d"], abs=COEF_TOL)
    n, K = len(df), res.diagnostics["standard_errors"]["K"]
    assert K == 1 + 5  # fixest: the regressor plus the 5 periods (unit effects nested in the clusters)
    # linearmodels with its scale switched off and group_debias multiplies the sandwich by g/(g-1) (n-1)/n;
    # fixest's is g/(g-1) (n-1)/(n-K): the same corrections differ by n/(n-K)
    assert res.estimate.std_error == pytest.approx(np.sqrt(m.cov.iloc[0, 0] * n / (n - K)), rel=SE_RTOL)


@pytest.mark.peer
def test_2x2_equals_pyfixest(tmp_path):
    df = simulate_panel(seed=9, cohorts=(5,))
    df["treated"] = (df.g > 0).astype(int)
    df["post"] = (df.time >= 5).astype(int)
    path = tmp_path / "p.csv"
    df.to_csv(path, index=False)
    res = run_study({"version": 1, "data": {"path": str(path)}, "treatment": "d", "outcome": "y",
                     "covariates": ["x"],
                     "design": {"method": "did", "unit": "unit", "time": "time", "estimator": "2x2"}, "refute": []})
    m = _pf("y ~ treated * post + x", df)
    assert res.estimator == "2x2"
    assert res.estimate.value == pytest.approx(m.coef()["treated:post"], abs=COEF_TOL)
    assert res.estimate.std_error == pytest.approx(m.se()["treated:post"], rel=SE_RTOL)


@pytest.mark.peer
def test_event_study_equals_pyfixest_with_binned_endpoints(tmp_path):
    df = simulate_panel(seed=11, periods=10, cohorts=(4, 6, 8))
    path = tmp_path / "p.csv"
    df.to_csv(path, index=False)
    leads, lags = 3, 2
    res = run_study({"version": 1, "data": {"path": str(path)}, "treatment": "d", "outcome": "y",
                     "design": {"method": "did", "unit": "unit", "time": "time",
                                "event_study": {"leads": leads, "lags": lags}}, "refute": []})
    rel = np.where(df.g > 0, df.time - df.g, -1)
    names = {}
    for e in (-3, -2, 0, 1, 2):
        col = f"e_m{-e}" if e < 0 else f"e_{e}"
        mask = (df.g > 0) & ((rel <= e) if e == -leads else (rel >= e) if e == lags else (rel == e))
        df[col] = mask.astype(int)
        names[e] = col
    m = _pf("y ~ " + " + ".join(names.values()) + " | unit + time", df)
    got = {e.label: e for e in res.effects}
    labels = {-3: "event_time=<=-3", -2: "event_time=-2", 0: "event_time=0", 1: "event_time=1",
              2: "event_time=>=2"}
    for e, col in names.items():
        assert got[labels[e]].value == pytest.approx(m.coef()[col], abs=COEF_TOL)
        assert got[labels[e]].std_error == pytest.approx(m.se()[col], rel=SE_RTOL)
    # the pre-trend test is fixest's wald() on the leads: F(q, G-1)
    w = m.wald_test(R=np.array([[1, 0, 0, 0, 0], [0, 1, 0, 0, 0]]), distribution="chi2")
    assert res.diagnostics["pre_trend"]["wald"] == pytest.approx(float(w["statistic"]), rel=1e-6)
    assert res.diagnostics["pre_trend"]["statistic"] == pytest.approx(float(w["statistic"]) / 2, rel=1e-6)
    assert res.diagnostics["pre_trend"]["passed"] is True


def test_pre_trend_rejection_fails_the_study(runner, tmp_path, write_spec):
    df = simulate_panel(units=600, seed=13, pretrend=0.4, cohorts=(5, 6))
    (tmp_path / "p.csv").write_text(df.to_csv(index=False))
    spec = write_spec({"version": 1, "data": {"path": "p.csv"}, "treatment": "d", "outcome": "y",
                       "design": {"method": "did", "unit": "unit", "time": "time",
                                  "event_study": {"leads": 4, "lags": 2}}, "refute": []})
    code, payload, _ = run_json(runner, [str(spec)])
    assert code == 1
    assert payload["diagnostics"]["pre_trend"]["passed"] is False
    assert [c for c in payload["checks"] if c["name"] == "pre_trend"][0]["passed"] is False
    hd = payload["diagnostics"]["sensitivity"]["honest_did"]
    assert hd["max_pre_period_change"] > 0.2


def test_goodman_bacon_weights_sum_to_one_and_rebuild_twfe(tmp_path):
    path = mpdta_with_d(tmp_path)
    res = run_study({"version": 1, "data": {"path": str(path)}, "treatment": "d", "outcome": "lemp",
                     "design": {"method": "did", "unit": "countyreal", "time": "year"}, "refute": []})
    gb = res.diagnostics["goodman_bacon"]
    assert gb["weight_total"] == pytest.approx(1.0, abs=1e-12)
    assert gb["twfe_from_decomposition"] == pytest.approx(res.estimate.value, abs=1e-12)
    assert 0 < gb["weight_later_vs_earlier_treated"] < 0.5


def _staggered_warning(res):
    hits = [w for w in res.warnings if w.startswith("staggered adoption")]
    assert len(hits) == 1, res.warnings
    return hits[0]


def test_staggered_adoption_warns_with_the_bacon_share_when_the_decomposition_runs(tmp_path):
    path = _write(tmp_path, simulate_panel(units=200, seed=4, cohorts=(4, 6)))
    for design in ({}, {"event_study": {"leads": 2, "lags": 2}}):
        res = run_study(_panel_spec(path, **design))
        w = _staggered_warning(res)
        share = res.diagnostics["goodman_bacon"]["weight_later_vs_earlier_treated"]
        assert f"{share:.1%}" in w and "estimator: callaway_santanna" in w


@pytest.mark.parametrize("case", ["covariate", "weights", "unbalanced"])
def test_staggered_adoption_warns_when_the_decomposition_is_skipped(tmp_path, case):
    """No decomposition (covariates, weights or an unbalanced panel): still a plain warning, saying why."""
    df = simulate_panel(units=200, seed=4, cohorts=(4, 6))
    spec_extra: dict = {}
    if case == "covariate":
        spec_extra = {"covariates": ["x"]}
    elif case == "weights":
        spec_extra = {"weights": "w"}
    else:
        df = df.drop(index=[7, 40])
    path = _write(tmp_path, df)
    for design in ({}, {"event_study": {"leads": 2, "lags": 2}}):
        res = run_study({**_panel_spec(path, **design), **spec_extra})
        reason = res.diagnostics["goodman_bacon"]["skipped"]
        w = _staggered_warning(res)
        assert "2 cohorts" in w and "not computed" in w and reason in w
        assert "estimator: callaway_santanna" in w


def test_one_cohort_twfe_gives_no_staggered_warning(tmp_path):
    path = _write(tmp_path, simulate_panel(units=200, seed=4, cohorts=(5,)))
    res = run_study({**_panel_spec(path), "covariates": ["x"]})
    assert not any(w.startswith("staggered adoption") for w in res.warnings)


# ---------------------------------------------------------------- panel checks (exit 3)


def _write(tmp_path, df):
    path = tmp_path / "p.csv"
    df.to_csv(path, index=False)
    return path


def _panel_spec(path, **design):
    return {"version": 1, "data": {"path": str(path)}, "treatment": "d", "outcome": "y",
            "design": {"method": "did", "unit": "unit", "time": "time", **design}, "refute": []}


def test_duplicate_unit_time_is_exit_3_naming_unit_and_period(runner, tmp_path, write_spec):
    df = simulate_panel(units=20, seed=1)
    df = pd.concat([df, df.iloc[[5]]])
    path = _write(tmp_path, df)
    res = invoke(runner, ["estimate", str(write_spec(_panel_spec(path.name)))])
    assert res.exit_code == 3
    assert "not unique on unit x time" in res.stderr and "unit 0" in res.stderr and "period 6" in res.stderr


def test_non_binary_treatment_is_exit_3(runner, tmp_path, write_spec):
    df = simulate_panel(units=20, seed=1)
    df.loc[3, "d"] = 2
    path = _write(tmp_path, df)
    res = invoke(runner, ["estimate", str(write_spec(_panel_spec(path.name)))])
    assert res.exit_code == 3 and "binary" in res.stderr


def test_treatment_switching_off_is_exit_3_when_assumed_absorbing(runner, tmp_path, write_spec):
    df = simulate_panel(units=20, seed=1)
    i = df.index[(df.d == 1)][0]
    df.loc[i + 1, "d"] = 0
    path = _write(tmp_path, df)
    u, t = df.loc[i + 1, "unit"], df.loc[i + 1, "time"]
    res = invoke(runner, ["estimate", str(write_spec(_panel_spec(path.name, event_study={"leads": 2, "lags": 1})))])
    assert res.exit_code == 3
    assert "switches off" in res.stderr and f"unit {u}" in res.stderr and f"period {t}" in res.stderr
    # plain TWFE accepts on/off treatments
    res = invoke(runner, ["estimate", str(write_spec(_panel_spec(path.name)))])
    assert res.exit_code in (0, 1)


def test_cohort_inconsistent_with_treatment_is_exit_3(runner, tmp_path, write_spec):
    df = pd.read_csv(MPDTA)  # its `treat` is an ever-treated indicator, not treated-in-period
    path = _write(tmp_path, df)
    spec = {"version": 1, "data": {"path": path.name}, "treatment": "treat", "outcome": "lemp",
            "design": {"method": "did", "unit": "countyreal", "time": "year", "cohort": "first.treat",
                       "estimator": "callaway_santanna"}, "refute": []}
    res = invoke(runner, ["estimate", str(write_spec(spec))])
    assert res.exit_code == 3
    assert "inconsistent" in res.stderr and "ever-treated indicator" in res.stderr and "unit 8001" in res.stderr


def test_units_treated_in_first_period_are_dropped_and_counted(tmp_path):
    df = simulate_panel(units=200, seed=2)
    df.loc[df.unit < 5, "g"] = 1
    df.loc[df.unit < 5, "d"] = 1
    path = _write(tmp_path, df)
    res = run_study({**_panel_spec(path), "design": {"method": "did", "unit": "unit", "time": "time",
                                                   "cohort": "g", "estimator": "callaway_santanna"}})
    assert res.n["units_treated_first_period_dropped"] == 5
    assert res.n["units"] == 195
    assert any("treated in the first period" in w for w in res.warnings)


# (plain twfe keeps such units: tests/test_did_always_treated.py)
@pytest.mark.parametrize("estimator", ["2x2", "callaway_santanna"])
def test_every_treated_unit_treated_in_the_first_period_is_exit_3_saying_they_were_dropped(
        runner, tmp_path, write_spec, estimator):
    df = simulate_panel(units=60, seed=2)
    df["g"] = np.where(df.g > 0, 1, 0)
    df["d"] = (df.g > 0).astype(int)
    n_treated = int(df.loc[df.g > 0, "unit"].nunique())
    path = _write(tmp_path, df)
    spec = _panel_spec(path.name, cohort="g", estimator=estimator)
    res = invoke(runner, ["estimate", str(write_spec(spec))])
    assert res.exit_code == 3
    assert (f"the {n_treated} units treated in the first period (1) were dropped (no pre-treatment period) and "
            "no treated unit remains") in res.stderr
    assert "no unit is ever treated" not in res.stderr


def test_unbalanced_panel_is_accepted_and_reported(tmp_path):
    df = simulate_panel(units=200, seed=2).drop(index=[3, 50, 51])
    path = _write(tmp_path, df)
    res = run_study(_panel_spec(path))
    assert res.diagnostics["panel"]["balanced"] is False
    assert res.diagnostics["panel"]["missing_unit_periods"] == 3
    assert any("unbalanced" in w for w in res.warnings)
    cs = run_study({**_panel_spec(path), "design": {"method": "did", "unit": "unit", "time": "time",
                                                  "estimator": "callaway_santanna"}})
    assert cs.n["units_dropped_unbalanced"] == 2


def test_missing_unit_column_is_exit_3(runner, tmp_path, write_spec):
    path = _write(tmp_path, simulate_panel(units=20))
    res = invoke(runner, ["estimate", str(write_spec(_panel_spec(path.name) | {"design": {
        "method": "did", "unit": "county", "time": "time"}}))])
    assert res.exit_code == 3 and "county" in res.stderr


def test_unknown_option_is_exit_2(runner, tmp_path, write_spec):
    path = _write(tmp_path, simulate_panel(units=20))
    spec = _panel_spec(path.name)
    spec["design"]["options"] = {"contol_group": "never_treated"}
    res = invoke(runner, ["estimate", str(write_spec(spec))])
    assert res.exit_code == 2


# ---------------------------------------------------------------- refuters, determinism, plots


def test_refuters_permute_units_and_are_deterministic_across_jobs(runner, tmp_path, write_spec):
    df = simulate_panel(units=120, seed=4)
    _write(tmp_path, df)
    spec = _panel_spec("p.csv", event_study={"leads": 3, "lags": 2})
    spec["refute"] = [{"placebo_treatment": {"simulations": 20}}, {"random_common_cause": {"simulations": 10}},
                      {"data_subset": {"fraction": 0.8, "simulations": 10}}]
    path = write_spec(spec)
    outs = []
    for jobs in ("1", "2"):
        res = invoke(runner, ["estimate", str(path), "--format", "json", "--jobs", jobs])
        payload = json.loads(res.stdout)
        payload.pop("timing_s")
        outs.append(json.dumps(payload, sort_keys=True))
    assert outs[0] == outs[1]
    refs = {r["name"]: r for r in json.loads(outs[0])["refutations"]}
    assert refs["placebo_treatment"]["passed"] is True  # the effect of 1 stands out from permuted cohorts
    assert abs(refs["placebo_treatment"]["new_effect"]) < 0.3
    assert refs["data_subset"]["passed"] is True


def test_placebo_permutes_whole_units():
    from causalcli.designs.did.design import DidDesign

    calls = []

    class Spy(DidDesign):
        def point(self, prepared, *, treatment=None, extra_covariate=None, rows=None):
            calls.append((treatment, rows))
            return 0.0

    class P:  # minimal prepared stand-in
        g = np.array([-1, 2, 3, -1, 2])
        n_units = 5
        y = np.zeros(20)
        estimator = "twfe"
        unit = np.repeat(np.arange(5), 4)

    class O:
        fraction = 0.6

    rng = np.random.default_rng(0)
    Spy().refute_once(P, "placebo_treatment", None, rng)
    assert sorted(calls[-1][0].tolist()) == sorted(P.g.tolist())  # cohorts permuted across units
    Spy().refute_once(P, "data_subset", O, rng)
    assert calls[-1][1].size == 3  # 60% of units, not rows


def test_event_study_plot_is_drawn(tmp_path):
    from causalcli.render.plots import draw

    df = simulate_panel(units=150, seed=4)
    path = _write(tmp_path, df)
    res = run_study(_panel_spec(path, event_study={"leads": 3, "lags": 2}))
    pngs = draw(res)
    assert pngs["event_study"][:4] == b"\x89PNG"
    assert pngs["honest_did"][:4] == b"\x89PNG"
    cs = run_study(cs_spec("mpdta_nev_dr"))
    assert draw(cs)["event_study"][:4] == b"\x89PNG"
    assert draw(cs)["honest_did"][:4] == b"\x89PNG"
    assert "honest_did" not in draw(run_study(_panel_spec(path)))  # plain TWFE: no sets


# ---------------------------------------------------------------- weights and the wild cluster bootstrap


@pytest.mark.peer
@pytest.mark.parametrize("design", [{}, {"event_study": {"leads": 3, "lags": 2}}])
def test_wild_cluster_bootstrap_equals_wildboottest(tmp_path, design):
    """pyfixest's wildboottest (WCR, Rademacher) with 8 clusters: both enumerate all 2^8 sign vectors."""
    import warnings

    import pyfixest as pf

    df = simulate_panel(units=200, seed=21)
    df["state"] = df.unit % 8
    df["y"] = df.y - 0.95 * df.d  # a small effect, so the p-value is not at its floor
    path = _write(tmp_path, df)
    spec = _panel_spec(path, cluster="state", options={"bootstrap": "wild", "draws": 999,
                                                        "wild_weights": "rademacher"}, **design)
    spec["covariates"] = ["x"]
    res = run_study(spec)
    assert res.estimate.inference == "wild_cluster_bootstrap_rademacher"
    assert res.diagnostics["clusters"]["wild"]["enumerated"] is True
    if design:
        assert 0 < res.estimate.p_value < 1
        return
    m = pf.feols("y ~ d + x | unit + time", data=df, vcov={"CRV1": "state"})
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        peer = m.wildboottest(param="d", reps=999, seed=1)
    # wildboottest runs the regression with unit and period dummies; so do we, in each draw (did_wild). Both
    # enumerate the 2^8 sign vectors; they may differ only by the two draws v = +/-1, which reproduce |t| exactly:
    # counted by us (>=), by wildboottest's strict > only as rounding falls
    gap = res.estimate.p_value - float(peer["Pr(>|t|)"])
    assert -1e-12 <= gap <= 2 / 2 ** 8 + 1e-12
    assert 0.05 < res.estimate.p_value < 0.95
    assert res.estimate.std_error == pytest.approx(m.se()["d"], rel=SE_RTOL)


@pytest.mark.peer
@pytest.mark.parametrize("estimator", ["2x2", "event_study"])
def test_weights_equal_pyfixest(tmp_path, estimator):
    import pyfixest as pf

    df = simulate_panel(seed=9, cohorts=(5,))
    df["treated"] = (df.g > 0).astype(int)
    df["post"] = (df.time >= 5).astype(int)
    df["e0"] = ((df.g > 0) & (df.time >= 5)).astype(int)
    df["em2"] = ((df.g > 0) & (df.time <= 3)).astype(int)
    path = _write(tmp_path, df)
    spec = _panel_spec(path, estimator="twfe" if estimator == "event_study" else "2x2")
    spec["weights"] = "w"
    if estimator == "event_study":
        spec["design"]["event_study"] = {"leads": 2, "lags": 0}
        m = pf.feols("y ~ em2 + e0 | unit + time", data=df, vcov={"CRV1": "unit"}, weights="w")
        res = run_study(spec)
        got = {e.label: e for e in res.effects}
        assert got["event_time=<=-2"].value == pytest.approx(m.coef()["em2"], abs=COEF_TOL)
        assert got["event_time=>=0"].std_error == pytest.approx(m.se()["e0"], rel=SE_RTOL)
    else:
        m = pf.feols("y ~ treated * post", data=df, vcov={"CRV1": "unit"}, weights="w")
        res = run_study(spec)
        assert res.estimate.value == pytest.approx(m.coef()["treated:post"], abs=COEF_TOL)
        assert res.estimate.std_error == pytest.approx(m.se()["treated:post"], rel=SE_RTOL)


@pytest.mark.parametrize("estimator", ["twfe", "event_study"])
def test_zero_weight_rows_are_dropped_as_fixest_drops_them(tmp_path, estimator):
    """A row of weight 0 adds nothing to the fit, but counted in N (and a unit of zero weights in G) it moved
    the CRV1 small-sample factor: causaldata's abortion (one state-year of population 0) gave SEs 3.7e-5 off
    fixest's. Dropped, the result is the panel without those rows, to the last bits."""
    df = simulate_panel(units=80, periods=6, cohorts=(4,), seed=11)
    zero = (df.unit == 3) | df.index.isin([10, 200, 333])
    df.loc[zero, "w"] = 0.0
    spec = _panel_spec(_write(tmp_path, df), estimator="twfe")
    spec.update(weights="w", covariates=["x"])
    if estimator == "event_study":
        spec["design"]["event_study"] = {"leads": 2, "lags": 2}
    res = run_study(spec)
    (tmp_path / "kept").mkdir()
    ref = run_study({**spec, "data": {"path": str(_write(tmp_path / "kept", df[~zero]))}})
    assert res.estimate.value == pytest.approx(ref.estimate.value, rel=1e-12)
    assert res.estimate.std_error == pytest.approx(ref.estimate.std_error, rel=1e-12)
    assert res.n["dropped_zero_weight"] == int(zero.sum()) and res.n["used"] == ref.n["used"]
    assert res.n["clusters"] == ref.n["clusters"] == 79
    assert any("with a weight of 0 ('w') left out" in w for w in res.warnings)


def test_callaway_santanna_weights_equal_duplicated_units(tmp_path):
    """Integer unit weights give the ATT(g,t) and aggregations of the panel with each unit repeated."""
    df = pd.read_csv(MPDTA)
    wt = (df.countyreal % 3 + 1).astype(int)
    df["w"] = wt
    weighted = _write(tmp_path, df)
    dup = df.loc[df.index.repeat(df.w)].copy()
    dup["copy"] = dup.groupby(["countyreal", "year"]).cumcount()
    dup["countyreal"] = dup.countyreal * 10 + dup["copy"]
    dup_path = tmp_path / "dup.csv"
    dup.to_csv(dup_path, index=False)
    for method, covs in (("dr", ["lpop"]), ("ipw", []), ("reg", ["lpop"])):
        base = cs_spec("mpdta_nev_dr", method=method)
        base["covariates"] = covs
        a = run_study({**base, "data": {"path": str(weighted)}, "weights": "w"})
        b = run_study({**base, "data": {"path": str(dup_path)}})
        np.testing.assert_allclose([r["att"] for r in a.diagnostics["group_time"]],
                                   [r["att"] for r in b.diagnostics["group_time"]], atol=1e-10)
        for kind in ("simple", "group", "dynamic", "calendar"):
            assert a.diagnostics["aggregations"][kind]["att"] == pytest.approx(
                b.diagnostics["aggregations"][kind]["att"], abs=1e-10)
    unweighted = run_study({**base, "data": {"path": str(weighted)}})
    assert abs(a.estimate.value - unweighted.estimate.value) > 1e-4  # the weights did change the estimate


def test_stdlib_distributions_match_scipy():
    """did_dist avoids importing scipy (0.4-1 s); lgamma cancellation limits it to ~1e-10 at df = 1e5."""
    from scipy import stats

    from causalcli.inference.distributions import chi2_sf, f_sf, t_quantile, t_two_sided

    for df in (1, 3, 29, 499, 99_999):
        for t in (0.01, 1.0, 1.96, 4.0, 10.0):
            assert t_two_sided(t, df) == pytest.approx(2 * stats.t.sf(t, df), rel=1e-9)
        for p in (0.9, 0.975, 0.995):
            assert t_quantile(p, df) == pytest.approx(stats.t.ppf(p, df), rel=1e-9)
        for f in (0.1, 1.0, 10.0):
            for d1 in (1, 5, 12):
                assert f_sf(f, d1, df) == pytest.approx(stats.f.sf(f, d1, df), rel=1e-9)
    for k in (1, 2, 5, 40):
        for x in (0.1, 3.0, 7.79, 60.0):
            assert chi2_sf(x, k) == pytest.approx(stats.chi2.sf(x, k), rel=1e-9)


@pytest.mark.peer
def test_not_yet_treated_without_never_treated_agrees_with_diff_diff(tmp_path):
    """No never-treated units: the last cohort only serves as a control (R did's rule); diff-diff agrees."""
    import warnings

    from diff_diff import CallawaySantAnna

    df = pd.read_csv(MPDTA)
    df = df[df["first.treat"] > 0]
    path = _write(tmp_path, df)
    spec = cs_spec("mpdta_nyt_dr")
    spec["data"] = {"path": str(path)}
    res = run_study(spec)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        peer = CallawaySantAnna(control_group="not_yet_treated").fit(df, "lemp", "countyreal", "year",
                                                                      "first.treat", aggregate="all")
    assert {r["group"] for r in res.diagnostics["group_time"]} == {2004.0, 2006.0}
    assert res.estimate.value == pytest.approx(peer.overall_att, abs=1e-8)
    assert res.estimate.std_error == pytest.approx(peer.overall_se, abs=1e-6)


# ---------------------------------------------------------------- coverage (a few seconds: kept in make test)


def _fast_panel(units: int, periods: int, rng: np.random.Generator, rho_noise: float = 0.6):
    """Staggered panel with serially correlated errors within units (what clustering must handle)."""
    g = np.where(rng.uniform(size=units) < 0.3, 0, rng.choice([3, 5], size=units))
    unit = np.repeat(np.arange(units), periods)
    time = np.tile(np.arange(1, periods + 1), units)
    e = np.empty((units, periods))
    e[:, 0] = rng.normal(size=units)
    for t in range(1, periods):
        e[:, t] = rho_noise * e[:, t - 1] + np.sqrt(1 - rho_noise ** 2) * rng.normal(size=units)
    gr = g[unit]
    d = ((gr > 0) & (time >= gr)).astype(float)
    y = rng.normal(size=units)[unit] + 0.2 * time + 1.0 * d + e.reshape(-1)
    return unit, time, gr, d, y


def test_crv1_twfe_interval_covers_at_its_nominal_rate():
    """400 panels with AR(1) errors: the 95% CRV1 t(G-1) interval covers the true 1.0 (binomial SE 1.1 points)."""
    from causalcli.inference.estimate import t_estimate
    from causalcli.inference.cluster_robust import ols_crv1

    rng = np.random.default_rng(2024)
    hits, draws = 0, 400
    for _ in range(draws):
        unit, time, gr, d, y = _fast_panel(60, 8, rng)
        fit = ols_crv1(y, d[:, None], ["d"], (unit, 60), [(unit, 60), (time - 1, 8)])
        e = t_estimate(fit.coef[0], float(np.sqrt(fit.vcov[0, 0])), fit.df_t, 0.95, "crv1_fixest")
        hits += e.ci_lower <= 1.0 <= e.ci_upper
    assert 0.915 <= hits / draws <= 0.98


def test_callaway_santanna_analytic_interval_covers_at_its_nominal_rate():
    """300 panels: the 95% interval of the simple ATT (truth 1.0) covers at about 95%."""
    from causalcli.designs.did.callaway_santanna import aggregate, group_time, se_of

    rng = np.random.default_rng(7)
    hits, draws = 0, 300
    for _ in range(draws):
        unit, time, gr, d, y = _fast_panel(300, 6, rng)
        Y = y.reshape(300, 6)
        g = np.where(gr.reshape(300, 6)[:, 0] > 0, gr.reshape(300, 6)[:, 0] - 1, -1)  # period index
        gt = group_time(Y, np.zeros((300, 6, 0)), np.ones(300), g, "never_treated", "dr")
        value, inf = aggregate(gt, np.arange(1.0, 7.0))["simple"]["overall"]
        se = float(se_of(inf[:, None], gt.n)[0])
        hits += abs(value - 1.0) <= 1.959963984540054 * se
    assert 0.92 <= hits / draws <= 0.98


def test_absorbed_or_collinear_covariates_are_exit_4(runner, tmp_path, write_spec):
    df = simulate_panel(units=60, seed=3)
    df["x3"] = 2 * df.x
    _write(tmp_path, df)
    spec = _panel_spec("p.csv")
    spec["covariates"] = ["g"]  # constant within units: absorbed by the unit effects
    res = invoke(runner, ["estimate", str(write_spec(spec))])
    assert res.exit_code == 4 and "absorbed by the fixed effects" in res.stderr
    spec["covariates"] = ["x", "x3"]
    res = invoke(runner, ["estimate", str(write_spec(spec))])
    assert res.exit_code == 4 and "collinear" in res.stderr


@pytest.mark.parametrize("control", ["never_treated", "not_yet_treated"])
@pytest.mark.parametrize("method", ["dr", "ipw", "reg"])
def test_group_time_closed_form_without_covariates_equals_the_2x2_estimators(control, method):
    """Without covariates ATT(g,t) and its influence function have a closed form; the per-cell DRDID
    estimators must give the same numbers (weighted units, staggered cohorts, never-treated units)."""
    from causalcli.designs.did.callaway_santanna import group_time

    rng = np.random.default_rng(0)
    N, T = 3000, 8
    g = rng.choice([-1, 3, 5, 6], size=N)
    Y = (rng.normal(size=(N, T)) + 0.2 * np.arange(T)
         + (g[:, None] >= 0) * (np.arange(T)[None, :] >= g[:, None]) * rng.normal(1.0, 0.5, size=(N, 1)))
    X = np.zeros((N, T, 0))
    w = rng.uniform(0.5, 2.0, size=N)
    fast = group_time(Y, X, w, g, control, method, closed_form=True)
    cells = group_time(Y, X, w, g, control, method, closed_form=False)
    assert np.array_equal(fast.group, cells.group) and np.array_equal(fast.time, cells.time)
    np.testing.assert_allclose(fast.att, cells.att, rtol=0, atol=1e-12)
    np.testing.assert_allclose(fast.inf, cells.inf, rtol=0, atol=1e-10)


@pytest.mark.peer
def test_universal_base_period_agrees_with_diff_diff():
    """base_period: universal (every period against g - 1) equals diff-diff's, which follows R did;
    diff-diff also lists the zero reference cells ATT(g, g-1), which causalcli omits as an event
    study omits its reference period."""
    import warnings

    from diff_diff import CallawaySantAnna

    df = pd.read_csv(MPDTA)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        peer = CallawaySantAnna(control_group="never_treated", estimation_method="dr", base_period="universal").fit(
            df, "lemp", "countyreal", "year", "first.treat", aggregate="all")
    res = run_study(cs_spec("mpdta_nev_dr", base_period="universal"))
    assert res.diagnostics["callaway_santanna"]["base_period"] == "universal"
    gt = {(r["group"], r["time"]): r for r in res.diagnostics["group_time"]}
    references = 0
    for (g, t), eff in peer.group_time_effects.items():
        if t == g - 1:
            assert eff["effect"] == 0.0 and (float(g), float(t)) not in gt
            references += 1
            continue
        assert gt[(float(g), float(t))]["att"] == pytest.approx(eff["effect"], abs=1e-8)
        assert gt[(float(g), float(t))]["std_error"] == pytest.approx(eff["se"], abs=1e-6)
    assert references == 3 and len(gt) == len(peer.group_time_effects) - 3
    dyn = {float(e["label"].split("=")[1]): e for e in res.diagnostics["aggregations"]["dynamic"]["elements"]}
    for e, eff in peer.event_study_effects.items():
        if e == -1:
            assert -1.0 not in dyn
            continue
        assert dyn[float(e)]["att"] == pytest.approx(float(eff["effect"]), abs=1e-8)
        assert dyn[float(e)]["std_error"] == pytest.approx(float(eff["se"]), abs=1e-6)


def test_universal_base_period_changes_only_the_pre_period_cells():
    """Post-period ATT(g,t) use g - 1 either way, so they and every post aggregation are equal; the
    Wald pre-test is the same too (within a cohort, levels and one-period changes are an invertible
    linear map of each other, and the Wald statistic is invariant to it)."""
    varying = run_study(cs_spec("mpdta_nev_dr"))
    universal = run_study(cs_spec("mpdta_nev_dr", base_period="universal"))
    post_v = {(r["group"], r["time"]): r["att"] for r in varying.diagnostics["group_time"] if r["time"] >= r["group"]}
    post_u = {(r["group"], r["time"]): r["att"] for r in universal.diagnostics["group_time"]
              if r["time"] >= r["group"]}
    assert post_v == pytest.approx(post_u, abs=1e-12)
    assert universal.estimate.value == pytest.approx(varying.estimate.value, abs=1e-12)
    pre_v = sorted(r["att"] for r in varying.diagnostics["group_time"] if r["time"] < r["group"])
    pre_u = sorted(r["att"] for r in universal.diagnostics["group_time"] if r["time"] < r["group"])
    assert pre_v != pytest.approx(pre_u, abs=1e-6)
    assert universal.diagnostics["pre_trend"]["statistic"] == pytest.approx(
        varying.diagnostics["pre_trend"]["statistic"], rel=1e-9)


def test_honest_did_is_the_same_from_either_base_period_with_one_cohort(tmp_path):
    """With one cohort, cumulating the varying base period's one-period changes gives exactly the
    universal base period's levels, so the honest-DiD sets must agree; with several cohorts only
    base_period: universal gives HonestDiD the levels it assumes (docs/designs/did.md)."""
    df = pd.read_csv(MPDTA)
    df = df[df["first.treat"].isin([0, 2007])]
    df.to_csv(tmp_path / "one_cohort.csv", index=False)
    results = []
    for base in ("varying", "universal"):
        spec = cs_spec("mpdta_nev_dr", base_period=base)
        spec["data"]["path"] = str(tmp_path / "one_cohort.csv")
        results.append(run_study(spec).diagnostics["sensitivity"]["honest_did"])
    a, b = results
    assert a["inputs"] != b["inputs"] and "caveat" not in a and "caveat" not in b
    assert len(a["sets"]) == len(b["sets"]) > 0
    for x, y in zip(a["sets"], b["sets"]):
        assert x["lb"] == pytest.approx(y["lb"], abs=1e-9) and x["ub"] == pytest.approx(y["ub"], abs=1e-9)
    assert a["breakdown_mbar"] == pytest.approx(b["breakdown_mbar"], abs=1e-9)


def test_honest_did_warns_of_the_approximation_with_several_cohorts_and_a_varying_base():
    varying = run_study(cs_spec("mpdta_nev_dr")).diagnostics["sensitivity"]["honest_did"]
    universal = run_study(cs_spec("mpdta_nev_dr", base_period="universal")).diagnostics["sensitivity"]["honest_did"]
    assert "base_period: universal" in varying["caveat"] and "caveat" not in universal
    assert "significant" in varying["note"] and "significant" in universal["note"]


def test_callaway_santanna_with_more_covariates_than_control_units_says_so(tmp_path):
    """Castle doctrine from a careless starter spec: CS regresses on the covariates over the never-treated units
    of each group-time cell; with as many columns as those units the message gives both counts and what to do."""
    rng = np.random.default_rng(3)
    units, periods = 8, 5
    unit = np.repeat(np.arange(units), periods)
    time = np.tile(np.arange(1, periods + 1), units)
    cohort = np.array([0, 0, 0, 3, 3, 4, 4, 4])[unit]
    frame = pd.DataFrame({"unit": unit, "time": time, "cohort": cohort, "y": rng.normal(size=unit.size)})
    for j in range(3):  # 3 covariates + intercept = 4 columns over 3 never-treated units
        frame[f"x{j}"] = rng.normal(size=units)[unit]
    path = tmp_path / "p.csv"
    frame.to_csv(path, index=False)
    spec = {"version": 1, "data": {"path": str(path)}, "outcome": "y", "covariates": ["x0", "x1", "x2"],
            "design": {"method": "did", "unit": "unit", "time": "time", "cohort": "cohort",
                       "estimator": "callaway_santanna"}, "refute": []}
    with pytest.raises(EstimationError) as err:
        run_study(spec)
    assert err.value.key == "covariates"
    assert "(4 columns with the intercept, 3 control units)" in err.value.message
    assert "keep fewer covariates than control units" in err.value.message


def test_callaway_santanna_with_a_separated_cohort_points_to_method_reg(tmp_path):
    """A one-unit cohort with two covariates: its propensity logit separates (castle's 2006 and 2010 cohorts);
    the message says what to use instead, and method: reg then estimates."""
    rng = np.random.default_rng(4)
    units, periods = 12, 5
    unit = np.repeat(np.arange(units), periods)
    time = np.tile(np.arange(1, periods + 1), units)
    cohort = np.array([0] * 9 + [3, 4, 4])[unit]
    frame = pd.DataFrame({"unit": unit, "time": time, "cohort": cohort, "y": rng.normal(size=unit.size)})
    for j in range(2):
        frame[f"x{j}"] = rng.normal(size=units)[unit]
    path = tmp_path / "p.csv"
    frame.to_csv(path, index=False)
    spec = {"version": 1, "data": {"path": str(path)}, "outcome": "y", "covariates": ["x0", "x1"],
            "design": {"method": "did", "unit": "unit", "time": "time", "cohort": "cohort",
                       "estimator": "callaway_santanna"}, "refute": []}
    with pytest.raises(EstimationError) as err:
        run_study(spec)
    assert err.value.key == "design.options.method" and "use options.method: reg" in err.value.message
    spec["design"]["options"] = {"method": "reg"}
    assert run_study(spec).estimate.value is not None


def test_the_design_keeps_no_state_and_its_prepared_panel_pickles(tmp_path):
    """What prepare learns travels in the PanelData it returns (picklable, unchanged by fit); the design
    instance holds nothing between validate, prepare, fit and point."""
    import pickle

    from causalcli.study.load import as_loaded
    from causalcli.study.run import prepare_study

    path = tmp_path / "p.csv"
    simulate_panel(units=60).to_csv(path, index=False)
    loaded = as_loaded({"version": 1, "data": {"path": str(path)}, "outcome": "y", "treatment": "d",
                        "design": {"method": "did", "unit": "unit", "time": "time"}, "refute": []})
    prep = prepare_study(loaded)
    design = prep.design
    panel = design.prepare(loaded.study, prep.table, prep.identification, loaded)
    copy = pickle.loads(pickle.dumps(panel))
    fit = design.fit(panel, loaded.study, 0)
    assert vars(design) == {}
    assert np.array_equal(copy.y, panel.y) and np.array_equal(copy.g, panel.g)
    assert design.point(copy) == pytest.approx(fit.estimate.value, abs=1e-12)
