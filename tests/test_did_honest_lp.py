"""Honest DiD, linear-programming path (long event studies): equal to the vertex enumeration where both run.

With more than MAX_SUPPORTED_POST post periods the nuisance-parameter test solves linear programs (HiGHS)
instead of enumerating the dual vertices. Where both run (forced by `method=`) they must give the same eta,
dual vertex, vlo/vup, least-favourable critical value and accepted grid points. Tolerance 1e-8 relative:
both are exact (the LP values are certified by a basis solved with numpy, like the vertex values), so they
differ by rounding only (about 1e-11 seen).
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from causalcli.designs.did.honest import LF_SIMS_LP, MAX_SUPPORTED_POST, RelativeMagnitudes, relative_magnitude_sets
from causalcli.designs.did.honest_lp import LP_BUDGET, BatchLP as _BatchLP, WorkBudget as _Budget
from causalcli.study.run import run_study
from tests.test_did_honest import _random_case

Z975 = 1.959963984540054


def _close(a, b, rel=1e-8):
    a, b = np.asarray(a, float), np.asarray(b, float)
    assert (np.isfinite(a) == np.isfinite(b)).all()
    f = np.isfinite(a)
    np.testing.assert_array_less(np.abs(a[f] - b[f]), rel * (1.0 + np.abs(a[f])))


def test_batch_lp_equals_highs_and_its_dual_is_a_certificate():
    """min eta s.t. y - X delta <= eta sd, many y: the value equals one HiGHS solve per y, and the returned
    dual vertex gamma is feasible (gamma >= 0, sd'gamma = 1, X'gamma = 0) with gamma'y = the value."""
    from scipy.optimize import linprog

    rng = np.random.default_rng(1)
    m, k = 12, 4
    X = rng.normal(size=(m, k))
    sd = rng.uniform(0.5, 2.0, size=m)
    W = np.column_stack([sd, X])
    Y = rng.normal(size=(m, 300))
    lp = _BatchLP(W, np.eye(k + 1)[0], _Budget(), "test")
    val, gam = lp.solve(Y)
    for j in range(0, 300, 37):
        ref = linprog(np.eye(k + 1)[0], A_ub=-W, b_ub=-Y[:, j], bounds=(None, None), method="highs")
        assert val[j] == pytest.approx(ref.fun, abs=1e-9)
    assert (gam >= 0).all()
    np.testing.assert_allclose(gam @ W, np.tile(np.eye(k + 1)[0], (300, 1)), atol=1e-9)
    np.testing.assert_allclose(np.einsum("pm,mp->p", gam, Y), val, atol=1e-9)
    assert len(lp.bases) < 300  # columns share optimal bases: fewer LPs than right-hand sides


@pytest.mark.parametrize("seed,n_pre,n_post", [(0, 2, 2), (1, 3, 3), (2, 4, 2), (3, 2, 5)])
def test_lp_path_equals_vertex_path(seed, n_pre, n_post):
    """Same eta, dual vertex, g'Sigma g, vlo, vup at every grid point of every piece, same least-favourable
    critical value, same accepted grid points; for the average and the first post period, several Mbar."""
    b, S = _random_case(np.random.default_rng(seed), n_pre, n_post)
    for l_vec in (np.full(n_post, 1.0 / n_post), np.eye(n_post)[0]):
        rv = RelativeMagnitudes(b, S, n_pre, l_vec, sims=4000, method="vertices")
        rl = RelativeMagnitudes(b, S, n_pre, l_vec, sims=4000, method="lp")
        grid = np.linspace(-20 * rv.se, 20 * rv.se, 1000)
        accepted = 0
        for m in (0.0, 0.5, 1.5):
            for pv, pl in zip(rv.pieces(m), rl.pieces(m)):
                assert pv.method == "vertices" and pl.method == "lp"
                assert pv.empty == pl.empty
                if pv.empty:
                    continue
                assert pl.lf_cv == pytest.approx(pv.lf_cv, rel=1e-8)
                ov, ol = pv.conditioning(grid), pl.conditioning(grid)
                for k in (0, 1, 2, 4, 5):  # eta, dual vertex, g'Sigma g, vlo, vup
                    _close(ov[k], ol[k])
                np.testing.assert_array_equal(ov[3], ol[3])
                acc = pv.accept(grid)
                np.testing.assert_array_equal(acc, pl.accept(grid))
                accepted += acc.sum()
            assert rv.confidence_set(m) == rl.confidence_set(m)
        assert accepted > 0


def test_more_than_nine_post_periods_returns_sets():
    """12 post periods (too many to enumerate): sets widen with Mbar, Mbar = 0 is the conventional interval
    within a grid step, the breakdown value is where zero enters the set."""
    n_pre, n_post = 2, MAX_SUPPORTED_POST + 3
    b, S = _random_case(np.random.default_rng(4), n_pre, n_post, effect=0.15)
    rel = [-3, -2] + list(range(n_post))
    out = relative_magnitude_sets(b, S, rel, 0.95)
    assert "skipped" not in out
    assert out["post_periods"] == n_post and "linear programs" in out["nuisance_solver"]
    assert out["least_favourable_draws"] == LF_SIMS_LP and 0 < out["lp_work_units"] <= LP_BUDGET
    sets = out["sets"]
    for a, c in zip(sets, sets[1:]):
        assert c["lb"] <= a["lb"] + 1e-12 and c["ub"] >= a["ub"] - 1e-12
    for s in sets:
        assert s["lb"] - s["grid_step"] <= s["identified_lb"] <= s["identified_ub"] <= s["ub"] + s["grid_step"]
    theta, se = out["estimate"], out["std_error"]
    s0 = sets[0]
    assert s0["mbar"] == 0.0
    assert theta - Z975 * se - 1e-12 <= s0["lb"] <= theta - Z975 * se + s0["grid_step"]
    assert theta + Z975 * se - s0["grid_step"] <= s0["ub"] <= theta + Z975 * se + 1e-12
    bd = out["breakdown_mbar"]
    assert bd is not None and bd > 0
    rm = RelativeMagnitudes(b, S, n_pre, np.full(n_post, 1.0 / n_post), 0.05, method="lp")  # same draws
    assert not rm.accept(0.0, bd)[0] and rm.accept(0.0, bd + 1e-3)[0]
    assert out["first_post_period"]["sets"][0]["lb"] is not None


def test_too_large_is_skipped_with_the_reason():
    n_pre, n_post = 30, 30
    rel = list(range(-n_pre - 1, -1)) + list(range(n_post))
    out = relative_magnitude_sets(np.zeros(len(rel)), np.eye(len(rel)), rel, 0.95)
    assert "30 pre- and 30 post-treatment periods" in out["skipped"] and "units of work" in out["skipped"]
    assert "sets" not in out


def _one_cohort_panel(units=240, periods=16, cohort=5, seed=8):
    """Treated from period 5 of 16 (ATT(g,t) at event times -3..11 with the varying base period),
    never-treated controls, parallel trends; the effect grows 0.5 + 0.05 e."""
    rng = np.random.default_rng(seed)
    g = np.where(rng.uniform(size=units) < 0.5, 0, cohort)
    t = np.arange(1, periods + 1)
    unit_fe, time_fe = rng.normal(size=units), rng.normal(size=periods)
    e = t[None, :] - g[:, None]
    eff = np.where((g[:, None] > 0) & (e >= 0), 0.5 + 0.05 * e, 0.0)
    y = unit_fe[:, None] + time_fe[None, :] + eff + rng.normal(size=(units, periods))
    return pd.DataFrame({"unit": np.repeat(np.arange(units), periods), "time": np.tile(t, units),
                         "g": np.repeat(g, periods), "y": y.ravel()})


def test_callaway_santanna_with_twelve_post_periods_reports_honest_did(tmp_path):
    path = tmp_path / "panel.csv"
    _one_cohort_panel().to_csv(path, index=False)
    res = run_study({"version": 1, "data": {"path": str(path)}, "outcome": "y",
                     "design": {"method": "did", "unit": "unit", "time": "time", "cohort": "g",
                                "estimator": "callaway_santanna"}, "refute": []})
    hd = res.diagnostics["sensitivity"]["honest_did"]
    assert "skipped" not in hd, hd.get("skipped")
    assert (hd["pre_periods"], hd["post_periods"]) == (3, 12)
    assert "linear programs" in hd["nuisance_solver"]
    sets = hd["sets"]
    assert [s["mbar"] for s in sets][:3] == [0.0, 0.25, 0.5]
    assert sets[0]["lb"] > 0  # the effect (0.5 + 0.05 e, about 0.8 on average) is significant at Mbar = 0
    for a, c in zip(sets, sets[1:]):
        assert c["lb"] <= a["lb"] + 1e-12 and c["ub"] >= a["ub"] - 1e-12
    assert hd["breakdown_mbar"] is not None and hd["breakdown_mbar"] > 0
    assert hd["first_post_period"]["breakdown_mbar"] is not None


@pytest.mark.slow
@pytest.mark.parametrize("seed,n_pre,n_post", [(5, 3, 8), (6, 5, 9)])
def test_lp_path_equals_vertex_path_at_nine_post_periods(seed, n_pre, n_post):
    """The largest sizes the vertex enumeration takes: same sets and breakdown values on the full grid."""
    b, S = _random_case(np.random.default_rng(seed), n_pre, n_post)
    l_vec = np.full(n_post, 1.0 / n_post)
    rv = RelativeMagnitudes(b, S, n_pre, l_vec, sims=10_000, method="vertices")
    rl = RelativeMagnitudes(b, S, n_pre, l_vec, sims=10_000, method="lp")
    for m in (0.0, 0.5, 1.0, 2.0):
        assert rv.confidence_set(m) == rl.confidence_set(m)
    assert rv.breakdown() == rl.breakdown()


def test_failed_linear_programs_give_nan(monkeypatch):
    """HiGHS failing (status 4) leaves the value NaN: the test then rejects nothing, as HonestDiD does."""
    import scipy.optimize

    class Failed:
        status, message = 4, "numerical difficulties"

    monkeypatch.setattr(scipy.optimize, "linprog", lambda *a, **k: Failed())
    lp = _BatchLP(np.column_stack([np.ones(4), np.eye(4)[:, :2]]), np.eye(3)[0], _Budget(), "test")
    val, _ = lp.solve(np.random.default_rng(0).normal(size=(4, 5)))
    assert np.isnan(val).all()


def test_a_set_beyond_twenty_standard_errors_is_found():
    """HonestDiD's grid is +/- 20 SE around 0; with |t| = 50 the set lies beyond it and was reported empty.
    The grid is widened until it holds the identified set: at Mbar = 0 the conventional interval."""
    n_pre, n_post = 2, 2
    S = np.eye(4) * 1e-4 + 1e-5
    b = np.r_[0.001, -0.002, 0.7, 0.72]
    rm = RelativeMagnitudes(b, S, n_pre, np.full(2, 0.5))
    assert rm.theta / rm.se > 40
    cs = rm.confidence_set(0.0)
    lo, hi = rm.theta - Z975 * rm.se, rm.theta + Z975 * rm.se
    assert lo - 1e-12 <= cs["lb"] <= lo + cs["grid_step"] and hi - cs["grid_step"] <= cs["ub"] <= hi + 1e-12


@pytest.mark.slow
def test_lp_path_is_deterministic():
    """Same input, same output (the shared basis store and lazy pieces depend only on the input)."""
    b, S = _random_case(np.random.default_rng(9), 3, 11)
    rel = [-4, -3, -2] + list(range(11))
    first = relative_magnitude_sets(b, S, rel, 0.95)
    assert "skipped" not in first
    assert relative_magnitude_sets(b, S, rel, 0.95) == first
