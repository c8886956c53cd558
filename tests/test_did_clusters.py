"""DiD inference with few clusters (SPEC v1.1 "Inference with few clusters"; causalcli/did_clusters.py).

Reference data under tests/reference/did/ (see its README): the Mississippi banks 2 x 2 of Mastering
'Metrics Table 5.1 and Kessler and Roth's (2014) organ donation panel (27 states, California treated
from 2011 Q3) as the R/Python package causaldata ships it.
"""

from __future__ import annotations

import math
import warnings
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from causalcli.study.run import run_study
from tests.conftest import run_json

REF = Path(__file__).resolve().parent / "reference" / "did"
BANKS = REF / "mississippi_banks_1930_1931.csv"
BANKS_YEARLY = REF / "mississippi_banks_1929_1934.csv"
ORGANS = REF / "organ_donations.csv"
COEF_TOL = 1e-8  # the same normal equations as pyfixest (tests/test_did.py)
SE_RTOL = 1e-6   # CRV1 against pyfixest (demeaning tolerances, tests/test_did.py)


def _no_runtime_warnings(spec: dict):
    """run_study with every RuntimeWarning turned into an error (none may leak to stderr)."""
    with warnings.catch_warnings():
        warnings.simplefilter("error", RuntimeWarning)
        return run_study(spec)


def _organ_frame() -> pd.DataFrame:
    df = pd.read_csv(ORGANS)
    df["treated"] = ((df.State == "California") & (df.Quarter_Num >= 4)).astype(int)
    return df


def _organ_spec(tmp_path: Path, **design) -> dict:
    path = tmp_path / "organs.csv"
    _organ_frame().to_csv(path, index=False)
    return {"version": 1, "data": {"path": str(path)}, "outcome": "Rate", "treatment": "treated",
            "design": {"method": "did", "unit": "State", "time": "Quarter_Num", **design}, "refute": []}


# ---------------------------------------------------------------- two clusters: no inference, and why


def test_textbook_2x2_two_units_two_years_gives_19_and_no_inference(runner, tmp_path, write_spec):
    """Mastering 'Metrics Table 5.1: 6th district 135 -> 121, 8th 165 -> 132 banks; DD = (121-135)-(132-165) = 19.
    n = k = 4 and 2 clusters: used to be ZeroDivisionError (exit 4); now 19 with null SE, p and interval."""
    spec = {"version": 1, "data": {"path": str(BANKS)}, "outcome": "banks", "treatment": "atlanta_fed",
            "design": {"method": "did", "unit": "district", "time": "year", "estimator": "2x2"}}
    code, payload, res = run_json(runner, [str(write_spec(spec))])
    est = payload["estimate"]
    assert est["value"] == pytest.approx(19.0, abs=1e-9)
    assert est["std_error"] is None and est["p_value"] is None and est["ci_lower"] is None
    assert est["ci_upper"] is None and est["inference"] == "none"
    assert any("no standard error, p-value or interval: 2 clusters" in w for w in payload["warnings"])
    assert any(w.startswith("one treated cluster (6)") for w in payload["warnings"])
    clusters = {c["name"]: c for c in payload["checks"]}["clusters"]
    assert clusters["passed"] is False and "no inference is possible" in clusters["detail"]
    assert payload["diagnostics"]["clusters"]["n_clusters"] == 2
    assert payload["diagnostics"]["clusters"]["crv1_se"] is None
    # the z-refuters are not run on a missing SE; nothing prints a shift in standard errors
    for r in payload["refutations"]:
        if r["name"] != "placebo_treatment":
            assert r["passed"] is None and "standard error" in r["detail"] and "shift" not in r["detail"]
    assert code == 1  # the clusters check fails: CI must not take this estimate as established
    assert "RuntimeWarning" not in res.stderr and "internal error" not in res.stderr


@pytest.mark.parametrize("design", [{"estimator": "2x2"}, {"estimator": "twfe"},
                                    {"estimator": "twfe", "event_study": {"leads": 2, "lags": 3}},
                                    {"estimator": "callaway_santanna"}])
def test_mississippi_banks_1929_1934_every_null_has_its_reason(tmp_path, design):
    """Banks in business on July 1, 1929-1934, two districts (the book's data): TWFE gave 20.5 with SE 4e-15,
    F = 3e28 and refuter shifts of -5.6e13 SE; now SE, p, CI null with the reason, pre-trend / honest-DiD /
    z-refuters not run, no RuntimeWarning."""
    df = pd.read_csv(BANKS_YEARLY)
    spec = {"version": 1, "data": {"path": str(BANKS_YEARLY)}, "outcome": "banks", "treatment": "atlanta_fed",
            "design": {"method": "did", "unit": "district", "time": "year", **design},
            "refute": [{"random_common_cause": {"simulations": 20}}, {"data_subset": {"simulations": 20}}]}
    res = _no_runtime_warnings(spec)
    # 2x2 and TWFE: mean gap after 1930 minus mean gap before (-8.5 - (-29) = 20.5), computed independently
    gap = df[df.district == 6].banks.to_numpy() - df[df.district == 8].banks.to_numpy()
    if "event_study" not in design and design["estimator"] != "callaway_santanna":
        assert res.estimate.value == pytest.approx(gap[2:].mean() - gap[:2].mean(), abs=1e-9)
        assert res.estimate.value == pytest.approx(20.5, abs=1e-9)
    assert 15 < res.estimate.value < 25
    e = res.estimate
    assert (e.std_error, e.p_value, e.ci_lower, e.ci_upper, e.inference) == (None, None, None, None, "none")
    assert any(("2 clusters" in w or "2 units" in w) and "no standard error" in w for w in res.warnings)
    checks = {c.name: c for c in res.checks}
    assert checks["clusters"].passed is False
    assert checks["pre_trend"].passed is None and "F =" not in checks["pre_trend"].detail
    for r in res.refutations:
        assert r.passed is None and r.p_value is None and "shift" not in r.detail
    honest = res.diagnostics.get("sensitivity", {}).get("honest_did")
    assert honest is None or "skipped" in honest
    for eff in res.effects:
        assert eff.p_value is None and eff.ci_lower is None


def test_refuter_z_is_not_computed_on_a_near_zero_standard_error():
    """A 4e-15 SE against an estimate of 20.5 (the issue's Mississippi TWFE) is rounding noise: passed null."""
    from causalcli.inference.estimate import SE_RELATIVE_TOLERANCE, unusable_se_reason
    from causalcli.checks.refutation import summarise
    from causalcli.result import Estimate

    est = Estimate(20.5, 4e-15, 20.5, 20.5, 0.95, 1e-30, "crv1_fixest")
    ref = summarise("data_subset", np.array([20.4, 20.6, 20.45]), est, 0.05)
    assert ref.passed is None and ref.p_value is None and "rounding noise" in ref.detail
    assert unusable_se_reason(20.5 * SE_RELATIVE_TOLERANCE * 2, 20.5) is None      # just above: usable
    assert unusable_se_reason(20.5 * SE_RELATIVE_TOLERANCE / 2, 20.5) is not None  # just below: not
    assert unusable_se_reason(0.0, 0.0) == "the standard error is zero"
    assert unusable_se_reason(1e-20, 0.0) is None  # an estimate of exactly 0 with a tiny SE may be real: kept
    # a genuine SE is left alone
    ok = summarise("data_subset", np.array([20.4, 20.6]), Estimate(20.5, 0.5, 19.5, 21.5, 0.95, 0.0, "x"), 0.05)
    assert ok.passed is True


def test_no_residual_degrees_of_freedom_and_one_cluster_give_reasons():
    from causalcli.designs.did.clusters import no_inference_reason
    from causalcli.models.fixed_effects import ols_crv1

    assert "no residual degrees of freedom: 4 observations for 4 parameters" in no_inference_reason(10, 4, 4)
    assert no_inference_reason(43, 100, 10) is None
    # one cluster: no exception, a covariance of NaN that callers report as null
    y = np.arange(6.0)
    fit = ols_crv1(y, np.column_stack([np.ones(6), y ** 2]), ["c", "x"], (np.zeros(6, dtype=np.int64), 1), [])
    assert np.isnan(fit.vcov).all() and np.isfinite(fit.coef).all()


# ---------------------------------------------------------------- organ donations: one treated state of 27


@pytest.mark.peer
def test_organ_donations_twfe_equals_pyfixest_and_uses_randomization_inference(tmp_path):
    """Kessler and Roth (2014): California (1 of 27 states) from 2011 Q3. Point and CRV1 SE equal pyfixest's;
    p and interval from randomization inference over the 27 states, equal to a brute-force placebo loop with
    pyfixest; the CRV1 p (about 0.001) is shown in the check, not used."""
    import pyfixest as pf

    df = _organ_frame()
    res = _no_runtime_warnings(_organ_spec(tmp_path))
    m = pf.feols("Rate ~ treated | State + Quarter_Num", df, vcov={"CRV1": "State"})
    assert res.estimate.value == pytest.approx(m.coef()["treated"], abs=COEF_TOL)
    assert res.estimate.std_error == pytest.approx(m.se()["treated"], rel=SE_RTOL)
    assert m.pvalue()["treated"] < 0.01  # what CRV1 t(26) claims with one treated cluster
    assert res.estimate.inference == "randomization_inference_units"
    c = res.diagnostics["clusters"]
    assert (c["n_clusters"], c["treated_clusters"], c["untreated_clusters"]) == (27, 1, 26)
    assert c["crv1_se"] == pytest.approx(m.se()["treated"], rel=SE_RTOL)
    ri = c["randomization"]
    assert ri["assignments"] == 27 and ri["enumerated"] is True
    # brute force, by least squares on explicit state and quarter dummies (not our demeaning): give California's
    # path to each state in turn (California's own rows then count as untreated)
    D0 = df.treated.to_numpy(float)
    dummies = pd.get_dummies(df[["State", "Quarter_Num"]].astype(str), drop_first=False).to_numpy(float)[:, :-1]
    b, cc = [], []
    for s in sorted(df.State.unique()):
        placebo = ((df.State == s) & (df.Quarter_Num >= 4)).to_numpy(float)
        X = np.column_stack([placebo, dummies])
        coef = np.linalg.lstsq(X, np.column_stack([df.Rate.to_numpy(float), D0]), rcond=None)[0]
        b.append(coef[0, 0])
        cc.append(coef[0, 1])
    b, cc = np.array(b), np.array(cc)
    beta = m.coef()["treated"]
    assert res.estimate.p_value == pytest.approx(np.mean(np.abs(b) >= abs(beta) - 1e-12), abs=1e-12)
    assert res.estimate.p_value > 0.05  # the one treated state is not distinguishable from the others

    def p_at(tau: float) -> float:  # randomization p of H0: effect = tau, from the peer's placebo fits
        return float(np.mean(np.abs(b - tau * cc) >= abs(beta - tau) - 1e-12))

    lo, hi = res.estimate.ci_lower, res.estimate.ci_upper
    assert lo < beta < hi
    eps = 1e-6 * (hi - lo)
    assert p_at(lo + eps) > 0.05 and p_at(hi - eps) > 0.05   # just inside: accepted
    assert p_at(lo - eps) <= 0.05 and p_at(hi + eps) <= 0.05  # just outside: rejected
    checks = {ch.name: ch for ch in res.checks}
    assert checks["clusters"].passed is None and "randomization p" in checks["clusters"].detail
    # the pre-trend Wald test is CRV1 too: reported (F and p) but not judged with one treated cluster
    assert checks["pre_trend"].passed is None and "not judged" in checks["pre_trend"].detail
    assert res.diagnostics["pre_trend"]["statistic"] > 0
    assert any(w.startswith("one treated cluster (California)") for w in res.warnings)


@pytest.mark.peer
def test_organ_donations_wild_bootstrap_equals_wildboottest_on_the_same_draws(tmp_path):
    """The wild bootstrap shown beside randomization inference (27 clusters: Rademacher, 999 random draws).
    On the same weight vectors as wildboottest (its WCR, 2x2 regression without fixed effects, which it takes
    directly), every |t*| and the p-value agree to 1e-10; the run's own draws agree within Monte Carlo error."""
    from wildboottest.wildboottest import WildboottestCL

    from causalcli.inference.wild import wcr_test

    df = _organ_frame()
    codes = pd.factorize(df.State, sort=True)[0]
    ca = (df.State == "California").to_numpy(float)
    post = (df.Quarter_Num >= 4).to_numpy(float)
    X = np.column_stack([np.ones(len(df)), ca, post, ca * post])
    y = df.Rate.to_numpy(float)
    boot = WildboottestCL(X=X, Y=y, cluster=codes, R=np.array([0, 0, 0, 1.0]), B=999, seed=11, parallel=False)
    boot.get_scores(bootstrap_type="11", impose_null=True, adj=False, cluster_adj=False)
    boot.get_weights(weights_type="rademacher")
    boot.get_numer()
    boot.get_denom()
    boot.get_tboot()
    boot.get_vcov()
    boot.get_tstat()
    ours = wcr_test(y, X, np.array([0, 0, 0, 1.0]), codes, 27, [], None, 999, 0, V=boot.v.T)
    assert np.sort(np.abs(ours["tstar"])) == pytest.approx(np.sort(np.abs(np.ravel(boot.t_boot))), rel=1e-10)
    assert abs(ours["t"]) == pytest.approx(abs(float(np.ravel(boot.t_stat)[0])), rel=1e-10)
    # ties count as extreme in ours (the identity draw), strictly in wildboottest: none here
    boot.get_pvalue(pval_type="two-tailed")
    assert ours["p_value"] == pytest.approx(float(np.ravel(boot.pvalue)[0]), abs=1e-12)
    # the run itself (2x2 estimator, own draws): Monte Carlo error of two independent 999-draw p-values,
    # sd <= sqrt(2 * 0.25 / 999) = 0.022; 4 sd
    res = run_study(_organ_spec(tmp_path, estimator="2x2"))
    wild = res.diagnostics["clusters"]["wild"]
    assert wild["weights"] == "rademacher" and wild["draws"] == 999 and wild["enumerated"] is False
    assert abs(wild["p_value"] - ours["p_value"]) <= 4 * math.sqrt(2 * 0.25 / 999)
    # TWFE (fixed effects swept out): pyfixest's wildboottest on the same model, 999 draws each (4 sd as above);
    # about 0.45, where CRV1 claims 0.001
    import pyfixest as pf

    twfe = run_study(_organ_spec(tmp_path))
    df["sid"] = codes  # wildboottest's compiled kernel takes numeric cluster ids
    m = pf.feols("Rate ~ treated | sid + Quarter_Num", df, vcov={"CRV1": "sid"})
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        peer = float(np.ravel(m.wildboottest(param="treated", reps=999, seed=1)["Pr(>|t|)"])[0])
    assert abs(twfe.diagnostics["clusters"]["wild"]["p_value"] - peer) <= 4 * math.sqrt(2 * 0.25 / 999)
    assert peer > 0.2


def test_wild_bootstrap_with_fixed_effects_equals_the_dummy_regression():
    """The WCR with two-way fixed effects partialled out equals the WCR of the full regression on unit and period
    dummies (what wildboottest/pyfixest run), draw by draw, with and without weights: the period effects are not
    nested in the clusters, so each draw's residuals are re-projected (without that, organ donations gave p =
    0.21 instead of 0.45)."""
    from causalcli.inference.wild import bootstrap_weights, wcr_test

    df = _organ_frame()
    sid = pd.factorize(df.State, sort=True)[0]
    q = df.Quarter_Num.to_numpy() - 1
    y, D = df.Rate.to_numpy(float), df.treated.to_numpy(float)
    V, _ = bootstrap_weights(27, 999, np.random.default_rng(5))
    dummies = np.column_stack([np.eye(27)[sid], np.eye(6)[q][:, 1:]])
    for w in (None, np.random.default_rng(1).uniform(0.5, 2, y.size)):
        fe = wcr_test(y, D[:, None], np.ones(1), sid, 27, [(sid, 27), (q, 6)], w, 999, 0, V=V)
        full = wcr_test(y, np.column_stack([D, dummies]), np.eye(33)[0], sid, 27, [], w, 999, 0, V=V)
        assert fe["tstar"] == pytest.approx(full["tstar"], rel=1e-8, abs=1e-10)
        assert fe["p_value"] == full["p_value"]


# ---------------------------------------------------------------- Webb weights


def _small_panel(G: int, treated: int, seed: int, effect: float = 0.0, units_per_cluster: int = 1,
                 periods: int = 8, start: int = 4):
    """G clusters of units over ``periods``; the first ``treated`` clusters treated from ``start``; a cluster
    shock per period (so clustering matters) and AR(1) unit noise."""
    rng = np.random.default_rng(seed)
    n_units = G * units_per_cluster
    unit = np.repeat(np.arange(n_units), periods)
    time = np.tile(np.arange(periods), n_units)
    cl_of_unit = np.arange(n_units) // units_per_cluster
    cluster = cl_of_unit[unit]
    e = np.empty((n_units, periods))
    e[:, 0] = rng.normal(size=n_units)
    for t in range(1, periods):
        e[:, t] = 0.5 * e[:, t - 1] + math.sqrt(0.75) * rng.normal(size=n_units)
    shock = rng.normal(size=(G, periods))
    g_unit = np.where(cl_of_unit < treated, start, -1)
    d = ((g_unit[unit] >= 0) & (time >= g_unit[unit])).astype(float)
    y = rng.normal(size=n_units)[unit] + 0.1 * time + effect * d + e.reshape(-1) + shock[cluster, time]
    return unit, time, cluster, g_unit, d, y


@pytest.mark.peer
def test_webb_weights_equal_wildboottest_on_its_draws_and_enumeration_matches_its_monte_carlo():
    """5 clusters, 2 treated, 2x2 regression: with wildboottest's own Webb draws (weights_type="webb") every |t*|
    and the p-value agree to 1e-10; our default enumerates all 6^5 = 7776 Webb vectors (exact), and
    wildboottest's 99,999-draw Monte Carlo p lies within 4 of its sd (sqrt(p(1-p)/99,999) <= 0.0016)."""
    from wildboottest.wildboottest import WildboottestCL

    from causalcli.inference.wild import WEBB_POINTS, bootstrap_weights, wcr_test

    unit, time, cluster, g, d, y = _small_panel(5, 2, seed=4, effect=0.8, units_per_cluster=3)
    tr = (g[unit] >= 0).astype(float)
    post = (time >= 4).astype(float)
    X = np.column_stack([np.ones_like(y), tr, post, tr * post])
    a = np.array([0, 0, 0, 1.0])

    def peer(B: int, seed: int):
        boot = WildboottestCL(X=X, Y=y, cluster=cluster, R=a, B=B, seed=seed, parallel=False)
        boot.get_scores(bootstrap_type="11", impose_null=True, adj=False, cluster_adj=False)
        boot.get_weights(weights_type="webb")
        boot.get_numer()
        boot.get_denom()
        boot.get_tboot()
        boot.get_vcov()
        boot.get_tstat()
        boot.get_pvalue(pval_type="two-tailed")
        return boot

    boot = peer(999, 3)
    assert set(np.round(np.unique(boot.v), 12)) <= set(np.round(WEBB_POINTS, 12))
    same = wcr_test(y, X, a, cluster, 5, [], None, 999, 0, weights="webb", V=boot.v.T)
    assert np.sort(np.abs(same["tstar"])) == pytest.approx(np.sort(np.abs(np.ravel(boot.t_boot))), rel=1e-10)
    ties = np.isclose(np.abs(np.ravel(boot.t_boot)), abs(same["t"]), rtol=1e-9)
    assert same["p_value"] == pytest.approx(float(np.ravel(boot.pvalue)[0]) + ties.mean(), abs=1e-12)
    exact = wcr_test(y, X, a, cluster, 5, [], None, 999, 0, weights="webb")
    assert exact["enumerated"] is True and exact["draws"] == 6 ** 5
    V, enumerated = bootstrap_weights(5, 999, np.random.default_rng(0), "webb")
    assert enumerated and len({tuple(v) for v in V}) == 6 ** 5  # every vector once
    mc = float(np.ravel(peer(99_999, 5).pvalue)[0])
    assert 0.02 < exact["p_value"] < 0.98
    assert abs(mc - exact["p_value"]) <= 4 * math.sqrt(exact["p_value"] * (1 - exact["p_value"]) / 99_999) + 1e-4


def test_few_clusters_headline_uses_webb_below_12_and_names_it(tmp_path):
    """8 state clusters, 3 treated: CRV1 SE kept, p and interval from the wild bootstrap with Webb weights; event
    effects too. 60 clusters with 20 treated: CRV1 t, clusters check passed."""
    unit, time, cluster, g, d, y = _small_panel(8, 3, seed=2, effect=1.0, units_per_cluster=4)
    path = tmp_path / "p.csv"
    pd.DataFrame({"unit": unit, "time": time, "state": cluster, "d": d, "y": y}).to_csv(path, index=False)
    spec = {"version": 1, "data": {"path": str(path)}, "outcome": "y", "treatment": "d",
            "design": {"method": "did", "unit": "unit", "time": "time", "cluster": "state",
                       "event_study": {"leads": 3, "lags": 3}}, "refute": []}
    res = _no_runtime_warnings(spec)
    assert res.estimate.inference == "wild_cluster_bootstrap_webb"
    c = res.diagnostics["clusters"]
    assert c["wild"]["weights"] == "webb" and c["wild"]["draws"] == 999 and c["wild"]["enumerated"] is False
    assert res.estimate.p_value == c["wild"]["p_value"] and res.estimate.ci_lower == c["wild"]["ci_lower"]
    assert res.estimate.std_error == pytest.approx(c["crv1_se"], rel=1e-12)
    assert {c.name: c for c in res.checks}["clusters"].passed is None
    assert all(e.inference == "wild_cluster_bootstrap_webb" and e.p_value is not None for e in res.effects)
    # many clusters: analytic inference is trusted
    unit, time, cluster, g, d, y = _small_panel(60, 20, seed=2, effect=1.0)
    pd.DataFrame({"unit": unit, "time": time, "d": d, "y": y}).to_csv(path, index=False)
    spec["design"].pop("cluster")
    res = run_study(spec)
    assert res.estimate.inference == "crv1_fixest"
    assert {c.name: c for c in res.checks}["clusters"].passed is True


def test_callaway_santanna_with_few_treated_units_uses_randomization(tmp_path):
    """CS clusters on units (its influence function): 30 units of which 2 treated is too few treated for its
    analytic SE; the headline p comes from randomization inference over units (C(30, 2) = 435 assignments,
    enumerated), the analytic SE is kept and shown."""
    unit, time, cluster, g, d, y = _small_panel(30, 2, seed=8, effect=1.0)
    path = tmp_path / "p.csv"
    pd.DataFrame({"unit": unit, "time": time + 1, "y": y,
                  "cohort": np.where(g[unit] >= 0, g[unit] + 1, 0)}).to_csv(path, index=False)
    spec = {"version": 1, "data": {"path": str(path)}, "outcome": "y",
            "design": {"method": "did", "unit": "unit", "time": "time", "cohort": "cohort",
                       "estimator": "callaway_santanna", "options": {"honest_did": False}}, "refute": []}
    res = _no_runtime_warnings(spec)
    assert res.estimate.inference == "randomization_inference_units"
    c = res.diagnostics["clusters"]
    assert (c["n_clusters"], c["treated_clusters"]) == (30, 2)
    assert c["randomization"]["assignments"] == math.comb(30, 2) and c["randomization"]["enumerated"]
    assert c["analytic_se"] == res.estimate.std_error and res.estimate.std_error > 0
    assert 1 / 435 <= res.estimate.p_value <= 1
    assert {ch.name: ch for ch in res.checks}["clusters"].passed is None


# ---------------------------------------------------------------- coverage with 6 clusters


def _coverage(reps: int, treated: int, seed: int) -> dict[str, float]:
    """Share of simulated 6-cluster panels (one unit per cluster, true effect 0) whose 95% test does not reject
    the truth, for CRV1 t(G-1), the wild bootstrap (Rademacher, Webb; both enumerated) and randomization
    inference over units."""
    from causalcli.designs.did.spec import DidOptions
    from causalcli.designs.did.design import DidDesign, PanelData
    from causalcli.designs.did.clusters import randomization_inference
    from causalcli.inference.estimate import t_estimate
    from causalcli.models.fixed_effects import ols_crv1
    from causalcli.inference.wild import wcr_test

    design = DidDesign()
    hold = {"crv1": 0, "wild_rademacher": 0, "wild_webb": 0, "randomization": 0}
    for r in range(reps):
        unit, time, cluster, g, d, y = _small_panel(6, treated, seed=seed * 100_003 + r, effect=0.0, periods=6,
                                                    start=3)
        groups = [(unit, 6), (time, 6)]
        fit = ols_crv1(y, d[:, None], ["d"], (cluster, 6), groups)
        crv1 = t_estimate(fit.coef[0], float(np.sqrt(fit.vcov[0, 0])), fit.df_t, 0.95, "crv1_fixest")
        hold["crv1"] += crv1.p_value > 0.05
        for w in ("rademacher", "webb"):
            hold[f"wild_{w}"] += wcr_test(y, d[:, None], np.ones(1), cluster, 6, groups, None, 999, r,
                                          weights=w)["p_value"] > 0.05
        p = PanelData(estimator="twfe", unit=unit, n_units=6, time=time, times=np.arange(6.0), y=y, g=g, d=None,
                      X=np.empty((y.size, 0)), xnames=(), w=None, cluster=cluster, n_clusters=6, cluster_name="c",
                      leads=None, lags=None, options=DidOptions(), n={}, panel={}, warnings=(),
                      unit_labels=np.arange(6))
        ri = randomization_inference(p, design.point, float(fit.coef[0]), 0.95, 999, r)
        hold["randomization"] += ri["p_value"] > 0.05
    return {k: v / reps for k, v in hold.items()}


def test_coverage_with_six_clusters_quick():
    """100 panels with 1 treated of 6 clusters: CRV1 t(5) rejects the true null far more than 5% (coverage about
    0.7), the wild bootstrap (both weights) and randomization inference do not: they cover at least 0.95 up to
    Monte Carlo error (binomial sd at 0.95 over 100 draws: 0.022; bound 3 sd). The full version is slow."""
    one = _coverage(100, treated=1, seed=1)
    assert one["crv1"] < 0.85                      # under-covers: the point of the rule
    for k in ("wild_rademacher", "wild_webb", "randomization"):
        assert one[k] >= 0.95 - 3 * 0.022, (k, one)


@pytest.mark.slow
def test_coverage_with_six_clusters_full():
    """2000 panels each (binomial sd at 0.95: 0.0049). These seeds give, with 1 treated cluster: CRV1 0.669, wild
    Rademacher 0.996, wild Webb 0.997, randomization 1.0 (it cannot reject at 5% with 6 assignments); with 3
    treated: CRV1 0.930, Rademacher 0.940, Webb 0.911, randomization 1.0 (docs/designs/did.md). Asserted: CRV1
    under-covers in both; with 1 treated the wild bootstrap (both weights) and randomization hold 0.95 within
    3 sd; with 3 treated randomization and Rademacher do. Webb's shortfall with 3 of 6 treated is reported in
    the docs, not hidden: the wild bootstrap is a large improvement with one or two treated clusters, not a cure
    with six clusters in all."""
    sd = math.sqrt(0.95 * 0.05 / 2000)
    one = _coverage(2000, treated=1, seed=11)
    assert one["crv1"] < 0.95 - 10 * sd, one
    for k in ("wild_rademacher", "wild_webb", "randomization"):
        assert one[k] >= 0.95 - 3 * sd, (k, one)
    three = _coverage(2000, treated=3, seed=12)
    assert three["crv1"] < 0.95 - 3 * sd, three
    for k in ("wild_rademacher", "randomization"):
        assert three[k] >= 0.95 - 3 * sd, (k, three)


def test_callaway_santanna_with_one_treated_state_gives_no_analytic_p_for_its_effects(tmp_path):
    """Organ donations under Callaway-Sant'Anna: the headline p is randomization inference over the 27 states;
    the event-time effects keep their analytic SEs but no p or interval (analytic p for event time 0 was 6.5e-6),
    and the analytic pre-test is reported, not judged."""
    res = _no_runtime_warnings(_organ_spec(tmp_path, estimator="callaway_santanna"))
    assert res.estimate.inference == "randomization_inference_units" and res.estimate.p_value > 0.05
    assert res.effects and all(e.p_value is None and e.ci_lower is None and e.std_error > 0 for e in res.effects)
    assert any("carry their analytic standard errors but no p-value" in w for w in res.warnings)
    pre = {c.name: c for c in res.checks}["pre_trend"]
    assert pre.passed is None and "not judged" in pre.detail and res.diagnostics["pre_trend"]["passed"] is None
