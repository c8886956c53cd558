"""pre_trend for 2x2, plain TWFE and event studies without leads: the auxiliary event study's Wald test.

Simulated panels (``simulate_panel`` of tests/test_did.py): a violated pre-trend fails the study (exit 1),
a parallel one passes; the statistic equals pyfixest's ``wald_test`` on the same auxiliary event study and
our own event study with every pre-period as a lead.
"""

from __future__ import annotations

import numpy as np
import pytest

from causalcli.study.run import run_study
from tests.conftest import run_json
from tests.test_did import simulate_panel

RTOL = 1e-6  # Wald statistics: coefficients agree to 1e-8 and clustered covariances to 1e-6 (tests/test_did.py)


def _spec(path, estimator="twfe", **design):
    return {"version": 1, "data": {"path": str(path)}, "treatment": "d", "outcome": "y",
            "design": {"method": "did", "unit": "unit", "time": "time", "estimator": estimator, **design},
            "refute": []}


def _check(payload_or_result):
    checks = payload_or_result["checks"] if isinstance(payload_or_result, dict) else [
        c.to_dict() for c in payload_or_result.checks]
    return [c for c in checks if c["name"] == "pre_trend"][0]


@pytest.mark.parametrize("estimator", ["twfe", "2x2"])
def test_violated_pre_trend_fails_the_study(runner, tmp_path, write_spec, estimator):
    df = simulate_panel(units=600, seed=13, pretrend=0.3, cohorts=(5,))
    (tmp_path / "p.csv").write_text(df.to_csv(index=False))
    spec = write_spec(_spec("p.csv", estimator))
    code, payload, _ = run_json(runner, [str(spec)])
    assert code == 1
    check = _check(payload)
    assert check["passed"] is False and "auxiliary event study" in check["detail"]
    pt = payload["diagnostics"]["pre_trend"]
    assert pt["passed"] is False and pt["leads"] == [-4, -3, -2] and pt["source"].startswith("auxiliary event study")


@pytest.mark.parametrize("estimator", ["twfe", "2x2"])
def test_parallel_pre_trend_passes(runner, tmp_path, write_spec, estimator):
    df = simulate_panel(units=600, seed=14, cohorts=(5,))
    (tmp_path / "p.csv").write_text(df.to_csv(index=False))
    code, payload, _ = run_json(runner, [str(write_spec(_spec("p.csv", estimator)))])
    assert code == 0
    assert _check(payload)["passed"] is True
    assert payload["diagnostics"]["pre_trend"]["p_value"] > 0.05


@pytest.mark.peer
@pytest.mark.parametrize("weights", [True, False])
def test_auxiliary_wald_equals_pyfixest_with_weights_and_clusters(tmp_path, weights):
    """Staggered cohorts 4, 6: leads -5..-2 (every pre-period), lags 0..4, state clusters, with/without weights.

    Without weights the balanced panel takes the cell-level path (``ols_crv1_cells``), with them the
    general one (``ols_crv1``).
    """
    import pyfixest as pf

    df = simulate_panel(units=400, seed=21, cohorts=(4, 6), periods=8)
    path = tmp_path / "p.csv"
    df.to_csv(path, index=False)
    res = run_study({**_spec(path, "twfe", cluster="state"), "covariates": ["x"],
                     **({"weights": "w"} if weights else {})})
    pt = res.diagnostics["pre_trend"]
    assert pt["leads"] == [-5, -4, -3, -2]
    rel = np.where(df.g > 0, df.time - df.g, -99)
    cols = []
    for e in [-5, -4, -3, -2, 0, 1, 2, 3, 4]:
        name = f"e_m{-e}" if e < 0 else f"e_{e}"
        df[name] = ((df.g > 0) & (rel == e)).astype(int)
        cols.append(name)
    m = pf.feols("y ~ " + " + ".join(cols) + " + x | unit + time", df, vcov={"CRV1": "state"},
                 weights="w" if weights else None)
    R = np.zeros((4, len(cols) + 1))
    R[np.arange(4), np.arange(4)] = 1.0
    w = m.wald_test(R=R, distribution="chi2")
    assert pt["wald"] == pytest.approx(float(w["statistic"]), rel=RTOL)
    assert pt["df2"] == 29  # t(G-1), 30 states
    assert res.checks[0].passed == pt["passed"]


def test_auxiliary_wald_equals_our_event_study_with_every_lead(tmp_path):
    df = simulate_panel(units=300, seed=22, cohorts=(4, 6), periods=8)
    path = tmp_path / "p.csv"
    df.to_csv(path, index=False)
    aux = run_study(_spec(path, "twfe")).diagnostics["pre_trend"]
    es = run_study(_spec(path, "twfe", event_study={"leads": 5, "lags": 4})).diagnostics["pre_trend"]
    assert aux["wald"] == pytest.approx(es["wald"], rel=1e-10)
    assert aux["p_value"] == pytest.approx(es["p_value"], rel=1e-10)
    # an event study with leads < 2 keeps its own lags and tests every lead in the auxiliary one
    short = run_study(_spec(path, "twfe", event_study={"leads": 1, "lags": 4})).diagnostics["pre_trend"]
    assert short["wald"] == pytest.approx(es["wald"], rel=1e-10) and "lags 0..4" in short["source"]


def test_one_pre_period_reports_not_run_with_a_reason(runner, tmp_path, write_spec):
    df = simulate_panel(units=200, seed=23, cohorts=(2,), periods=4)  # treated from period 2: only -1 before
    (tmp_path / "p.csv").write_text(df.to_csv(index=False))
    code, payload, _ = run_json(runner, [str(write_spec(_spec("p.csv", "2x2")))])
    assert code == 0
    check = _check(payload)
    assert check["passed"] is None and "one pre-treatment period" in check["detail"]
    assert payload["diagnostics"]["pre_trend"]["passed"] is None


def test_on_off_treatment_reports_not_run(tmp_path):
    df = simulate_panel(units=200, seed=24, cohorts=(3,), periods=6)
    df.loc[(df.g > 0) & (df.time == 5), "d"] = 0  # switches off for one period: plain TWFE accepts it
    path = tmp_path / "p.csv"
    df.to_csv(path, index=False)
    res = run_study(_spec(path, "twfe"))
    check = [c for c in res.checks if c.name == "pre_trend"][0]
    assert check.passed is None and "switches off" in check.detail


def test_fail_on_chooses_whether_the_pre_trend_fails_the_study(runner, tmp_path, write_spec):
    df = simulate_panel(units=600, seed=13, pretrend=0.3, cohorts=(5,))
    (tmp_path / "p.csv").write_text(df.to_csv(index=False))
    spec = str(write_spec(_spec("p.csv", "twfe")))
    assert run_json(runner, [spec, "--fail-on", "checks"])[0] == 1
    assert run_json(runner, [spec, "--fail-on", "none"])[0] == 0


def test_cell_level_regression_equals_the_expanded_design():
    """ols_crv1_cells (dummies demeaned on the cohort x period table) = ols_crv1 on the n x k design."""
    from causalcli.inference.cluster_robust import ols_crv1, ols_crv1_cells

    rng = np.random.default_rng(4)
    n_units, T = 120, 6
    g = rng.choice([-1, 2, 4], size=n_units)  # cohort as a period index, -1 never treated
    unit, time = np.repeat(np.arange(n_units), T), np.tile(np.arange(T), n_units)
    y, x = rng.normal(size=n_units * T), rng.normal(size=(n_units * T, 1))
    present = np.unique(g)
    cell = np.searchsorted(present, g)[unit] * T + time
    table = np.zeros((present.size * T, 3))
    for c, gc in enumerate(present):
        for t in range(T):
            if gc >= 0:
                table[c * T + t] = [t - gc == -2, t - gc == 0, t - gc >= 1]
    cl = (unit % 17, 17)
    fes = [(unit, n_units), (time, T)]
    fast = ols_crv1_cells(y, x, ["x"], cell, table, ["a", "b", "c"], cl, fes[0], fes[1])
    slow = ols_crv1(y, np.column_stack([table[cell], x]), ["a", "b", "c", "x"], cl, fes)
    np.testing.assert_allclose(fast.coef, slow.coef, rtol=1e-10, atol=1e-12)
    np.testing.assert_allclose(fast.vcov, slow.vcov, rtol=1e-9, atol=1e-14)
    assert (fast.df_k, fast.df_t) == (slow.df_k, slow.df_t)


@pytest.mark.slow
def test_auxiliary_pre_trend_test_has_its_nominal_size(tmp_path):
    """300 panels with parallel trends (100 units, 6 periods, cohort 4): the Wald test rejects about 5% of them.

    Binomial SE of the rate 1.26%: we accept 0.05 +/- 0.035 (about 2.8 SE).
    """
    path = tmp_path / "p.csv"
    rejections = 0
    n = 300
    for seed in range(n):
        simulate_panel(units=100, periods=6, seed=1000 + seed, cohorts=(4,)).to_csv(path, index=False)
        res = run_study(_spec(path, "twfe"))
        rejections += res.diagnostics["pre_trend"]["passed"] is False
    assert rejections / n == pytest.approx(0.05, abs=0.035)


@pytest.mark.parametrize("control_group", ["never_treated", "not_yet_treated"])
def test_callaway_santanna_pre_trend_rejection_exits_1(runner, tmp_path, write_spec, control_group):
    """Treated units drift 0.3 per period before treatment: the Wald pre-test of the pre-treatment ATT(g,t)
    (R did's) rejects and the study fails; the same panel without the drift passes (exit 0)."""
    for pretrend, code_expected in ((0.3, 1), (0.0, 0)):
        df = simulate_panel(units=600, seed=15, pretrend=pretrend, cohorts=(4, 6))
        (tmp_path / "p.csv").write_text(df.to_csv(index=False))
        spec = _spec("p.csv", "callaway_santanna", cohort="g", options={"control_group": control_group})
        code, payload, res = run_json(runner, [str(write_spec(spec))])
        assert code == code_expected, res.stderr
        check = _check(payload)
        pt = payload["diagnostics"]["pre_trend"]
        if pretrend:
            assert check["passed"] is False and pt["passed"] is False and pt["p_value"] <= 0.05
            assert "Wald pre-test" in check["detail"] and "parallel trends look doubtful" in check["detail"]
            if control_group == "never_treated":
                # a pre-period ATT(g,t) against undrifting controls is one period's drift, 0.3 (varying base);
                # 6 cells with SEs about 0.16, so the mean's SE is about 0.07: 0.15 is over 2 SE (0 would fail)
                pre = [r for r in payload["diagnostics"]["group_time"] if r["time"] < r["group"]]
                assert len(pre) == 6
                assert np.mean([r["att"] for r in pre]) == pytest.approx(0.3, abs=0.15)
        else:
            assert check["passed"] is True and pt["p_value"] > 0.05


def test_a_pre_trend_check_that_cannot_apply_gives_its_reason_not_an_exception():
    """The shared check (causalcli.checks.pretrend): not run is passed None with the reason; p > alpha passes."""
    from causalcli.checks.pretrend import not_judged, pre_trend_check, pre_trend_not_run

    c = pre_trend_not_run("one pre-treatment period only")
    assert (c.name, c.passed, c.detail) == ("pre_trend", None, "pre-trend test not run: one pre-treatment period only")
    assert pre_trend_check(3.0, 0.01, 0.05, "joint Wald test of 2 leads").passed is False
    ok = pre_trend_check(0.5, 0.6, 0.05, "joint Wald test of 2 leads")
    assert ok.passed is True and ok.detail.startswith("joint Wald test of 2 leads: F = 0.5, p = 0.6 > 0.05")
    assert not_judged(ok, "few clusters").passed is None
