"""DiD inference with few clusters (SPEC v1.1 "Inference with few clusters"; causalcli/designs/did/clusters.py).

The tests on published data (the Mississippi banks of Mastering 'Metrics, Kessler and Roth's (2014) organ
donation panel) are in tests/reference/did/; this file uses the organ panel (27 states, California treated
from 2011 Q3, as the package causaldata ships it) through tests/reference/did/sources.py.
"""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest

from causalcli.study.run import run_study
from tests.reference.did.sources import no_runtime_warnings, organ_frame, organ_spec, wildboottest_wcr

COEF_TOL = 1e-8  # the same normal equations as pyfixest (tests/test_did.py)
SE_RTOL = 1e-6   # CRV1 against pyfixest (demeaning tolerances, tests/test_did.py)


# ---------------------------------------------------------------- two clusters: no inference, and why


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
    from causalcli.inference.cluster_robust import ols_crv1

    assert "no residual degrees of freedom: 4 observations for 4 parameters" in no_inference_reason(10, 4, 4)
    assert no_inference_reason(43, 100, 10) is None
    # one cluster: no exception, a covariance of NaN that callers report as null
    y = np.arange(6.0)
    fit = ols_crv1(y, np.column_stack([np.ones(6), y ** 2]), ["c", "x"], (np.zeros(6, dtype=np.int64), 1), [])
    assert np.isnan(fit.vcov).all() and np.isfinite(fit.coef).all()


# ---------------------------------------------------------------- organ donations: one treated state of 27


def test_wild_bootstrap_with_fixed_effects_equals_the_dummy_regression():
    """The WCR with two-way fixed effects partialled out equals the WCR of the full regression on unit and period
    dummies (what wildboottest/pyfixest run), draw by draw, with and without weights: the period effects are not
    nested in the clusters, so each draw's residuals are re-projected (without that, organ donations gave p =
    0.21 instead of 0.45)."""
    from causalcli.inference.wild import bootstrap_weights, wcr_test

    df = organ_frame()
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
    from causalcli.inference.wild import WEBB_POINTS, bootstrap_weights, wcr_test

    unit, time, cluster, g, d, y = _small_panel(5, 2, seed=4, effect=0.8, units_per_cluster=3)
    tr = (g[unit] >= 0).astype(float)
    post = (time >= 4).astype(float)
    X = np.column_stack([np.ones_like(y), tr, post, tr * post])
    a = np.array([0, 0, 0, 1.0])

    def peer(B: int, seed: int):
        boot = wildboottest_wcr(X, y, cluster, a, B, seed, "webb")
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
    res = no_runtime_warnings(spec)
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
    res = no_runtime_warnings(spec)
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
    from causalcli.inference.cluster_robust import ols_crv1
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
    res = no_runtime_warnings(organ_spec(tmp_path, estimator="callaway_santanna"))
    assert res.estimate.inference == "randomization_inference_units" and res.estimate.p_value > 0.05
    assert res.effects and all(e.p_value is None and e.ci_lower is None and e.std_error > 0 for e in res.effects)
    assert any("carry their analytic standard errors but no p-value" in w for w in res.warnings)
    pre = {c.name: c for c in res.checks}["pre_trend"]
    assert pre.passed is None and "not judged" in pre.detail and res.diagnostics["pre_trend"]["passed"] is None


@pytest.mark.parametrize("estimator", ["imputation", "sun_abraham"])
def test_staggered_pre_test_with_one_treated_state_is_reported_not_judged(tmp_path, estimator):
    """Organ donations under imputation and Sun-Abraham: their pre-trend tests are CRV1 Wald tests on one treated
    cluster, which over-reject as twfe's does (F = 4.1, p = 0.03 failed the study, while twfe on the same panel
    reports its own test as not judged); now reported, not judged, in the check and in diagnostics.pre_trend."""
    twfe = no_runtime_warnings(organ_spec(tmp_path, estimator="twfe"))
    res = no_runtime_warnings(organ_spec(tmp_path, estimator=estimator))
    pre = {c.name: c for c in res.checks}["pre_trend"]
    assert res.diagnostics["pre_trend"]["p_value"] <= 0.05  # the test still runs and is shown
    assert pre.passed is None and "not judged" in pre.detail and res.diagnostics["pre_trend"]["passed"] is None
    assert {c.name: c for c in twfe.checks}["pre_trend"].passed is None
    assert res.passed is not False
