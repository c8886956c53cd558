"""Honest DiD relative-magnitude sets: diff-diff on HonestDiD's Medicaid example, and properties.

The comparison with the sets HonestDiD's READMEs print is tests/reference/did/test_honestdid_medicaid.py; the
example's data (``ehec_data.csv``) and event study come from tests/reference/did/sources.py.
"""

from __future__ import annotations

import numpy as np
import pytest

from causalcli.designs.did.honest import (RelativeMagnitudes, _levels, dual_vertices, identified_set,
                                  relative_magnitude_sets)
from causalcli.study.run import run_study
from tests.reference.did.sources import MPDTA, medicaid_event_study, medicaid_nonstaggered

Z975 = 1.959963984540054


@pytest.fixture(scope="module")
def medicaid(tmp_path_factory):
    return medicaid_event_study(tmp_path_factory)


@pytest.mark.peer
def test_identified_sets_and_mbar0_interval_equal_diff_diff(medicaid):
    """diff-diff's HonestDiD on the same betahat/sigma (its MultiPeriodDiD event study of the same data).

    Documented difference: diff-diff builds the Delta^RM interval as the identified set +/- z SE ("naive
    FLCI", its code says ARP is disabled pending calibration), which takes the largest pre-period change
    as known; causalcli and R's HonestDiD use the C-LF hybrid test, which allows for its estimation. So
    the identified sets agree (same LPs, 1e-9) and at Mbar = 0 (no post-period change: point
    identification) both intervals are the conventional one; for Mbar > 0 the sets differ by design.
    """
    import warnings

    from diff_diff import MultiPeriodDiD
    from diff_diff.honest_did import HonestDiD, _extract_event_study_params

    res, b_ours = medicaid
    d = medicaid_nonstaggered()
    d["D"] = (d.cohort > 0).astype(int)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        fit = MultiPeriodDiD(cluster="stfips").fit(d, outcome="dins", treatment="D", time="year",
                                                   post_periods=[2014, 2015], unit="stfips", absorb=["stfips"])
        beta, sigma, n_pre, n_post, *_ = _extract_event_study_params(fit)
        peer = {m: HonestDiD(method="relative_magnitude", M=m).fit(fit) for m in (0.0, 0.5, 1.0, 2.0)}
    assert (n_pre, n_post) == (5, 2)
    np.testing.assert_allclose(beta, b_ours, atol=1e-8)  # the same event study
    out = relative_magnitude_sets(beta, sigma, [-6, -5, -4, -3, -2, 0, 1], 0.95)
    sets = {s["mbar"]: s for s in out["sets"]}
    for m, p in peer.items():
        assert sets[m]["identified_lb"] == pytest.approx(p.lb, abs=1e-9)
        assert sets[m]["identified_ub"] == pytest.approx(p.ub, abs=1e-9)
    step = sets[0.0]["grid_step"]
    assert peer[0.0].ci_lb <= sets[0.0]["lb"] <= peer[0.0].ci_lb + step
    assert peer[0.0].ci_ub - step <= sets[0.0]["ub"] <= peer[0.0].ci_ub


def _random_case(rng, n_pre, n_post, effect=0.3):
    n = n_pre + n_post
    Q = rng.normal(size=(n, n))
    S = (Q @ Q.T / n + np.eye(n)) * 0.01
    b = rng.multivariate_normal(np.r_[np.zeros(n_pre), np.full(n_post, effect)], S)
    return b, S


@pytest.mark.parametrize("n_pre,n_post", [(1, 1), (3, 1), (2, 3), (4, 2)])
def test_mbar0_is_the_conventional_interval_on_the_grid(n_pre, n_post):
    """Mbar = 0: no post-period trend change, theta point identified; the C-LF set is l'b +/- z SE.

    The set is reported as the extreme accepted grid points, so each end lies within one grid step
    inside the conventional interval.
    """
    b, S = _random_case(np.random.default_rng(n_pre * 10 + n_post), n_pre, n_post)
    rm = RelativeMagnitudes(b, S, n_pre, np.full(n_post, 1.0 / n_post))
    cs = rm.confidence_set(0.0)
    lo, hi = rm.theta - Z975 * rm.se, rm.theta + Z975 * rm.se
    assert cs["identified_lb"] == pytest.approx(rm.theta, abs=1e-12)
    assert cs["identified_ub"] == pytest.approx(rm.theta, abs=1e-12)
    assert lo - 1e-12 <= cs["lb"] <= lo + cs["grid_step"]
    assert hi - cs["grid_step"] <= cs["ub"] <= hi + 1e-12


@pytest.mark.parametrize("seed,n_post", [(0, 3), (1, 3), (2, 3), (3, 1), (4, 1)])
def test_sets_widen_with_mbar_and_contain_the_identified_set(seed, n_post):
    """Several post periods (nuisance-parameter test) and one (the test without nuisance parameters)."""
    rng = np.random.default_rng(seed)
    b, S = _random_case(rng, 3, n_post)
    rm = RelativeMagnitudes(b, S, 3, np.full(n_post, 1 / n_post))
    sets = [rm.confidence_set(m) for m in (0.0, 0.25, 0.5, 1.0, 1.5, 2.0, 3.0)]
    for a, c in zip(sets, sets[1:]):
        assert c["lb"] <= a["lb"] + 1e-12 and c["ub"] >= a["ub"] - 1e-12
        assert c["identified_lb"] <= a["identified_lb"] + 1e-12 and c["identified_ub"] >= a["identified_ub"] - 1e-12
    for s in sets:
        assert s["lb"] - s["grid_step"] <= s["identified_lb"] <= s["identified_ub"] <= s["ub"] + s["grid_step"]


def test_breakdown_is_where_zero_enters_the_set():
    b, S = _random_case(np.random.default_rng(5), 3, 2, effect=0.5)
    rm = RelativeMagnitudes(b, S, 3, np.full(2, 0.5))
    bd, how = rm.breakdown()
    assert bd is not None and bd > 0 and "bisection" in how
    assert not rm.accept(0.0, bd)[0]
    assert rm.accept(0.0, bd + 1e-3)[0]


def test_identified_set_has_the_closed_form_of_one_post_period():
    """One post period: |delta_1| <= Mbar * max pre change, so the set is b_post -/+ Mbar * max|change|."""
    b = np.array([0.02, -0.01, 0.5])  # levels at -3, -2 (HonestDiD -2, -1); post 0
    changes = np.abs(np.diff([0.02, -0.01, 0.0]))
    lo, hi = identified_set(b, np.array([1.0]), 2, 1.5)
    assert (lo, hi) == pytest.approx((0.5 - 1.5 * changes.max(), 0.5 + 1.5 * changes.max()), abs=1e-12)


def test_vertex_enumeration_gives_the_lp_value():
    """eta = min over (eta, delta) s.t. y - X delta <= eta * sd equals max over the dual vertices of gamma'y."""
    from scipy.optimize import linprog

    rng = np.random.default_rng(3)
    for m, k in [(4, 1), (6, 2), (8, 3)]:
        X = rng.normal(size=(m, k))
        sd = rng.uniform(0.5, 2.0, size=m)
        G = dual_vertices(sd, X)
        for _ in range(5):
            y = rng.normal(size=m)
            lp = linprog(np.r_[1.0, np.zeros(k)], A_ub=-np.column_stack([sd, X]), b_ub=-y, bounds=(None, None),
                         method="highs")
            assert lp.status == 0
            assert (G @ y).max() == pytest.approx(lp.fun, abs=1e-9)


def test_callaway_santanna_changes_are_cumulated_into_levels():
    """Varying base period: the estimate at -k is delta_-k - delta_-k-1; levels relative to -1 are sums."""
    b = np.array([0.03, -0.02, 0.05, 0.4, 0.6])   # event times -3, -2, -1 (changes), 0, 1
    V = np.diag([1.0, 2.0, 3.0, 4.0, 5.0])
    beta, sigma, n_pre, n_post = _levels(b, V, [-3, -2, -1, 0, 1], reference_included=True)
    assert (n_pre, n_post) == (3, 2)
    # levels at -4, -3, -2: -(c-1 + c-2 + c-3), -(c-1 + c-2), -c-1
    np.testing.assert_allclose(beta, [-(0.05 - 0.02 + 0.03), -(0.05 - 0.02), -0.05, 0.4, 0.6])
    np.testing.assert_allclose(np.diag(sigma), [6.0, 5.0, 3.0, 4.0, 5.0])
    # TWFE: leads are already levels; gaps are refused with a reason
    beta, _, n_pre, _ = _levels(b, V, [-4, -3, -2, 0, 1], reference_included=False)
    np.testing.assert_allclose(beta, b)
    assert "consecutive" in relative_magnitude_sets(b, V, [-5, -3, -2, 0, 1], 0.95)["skipped"]


def test_callaway_santanna_reports_honest_did_on_mpdta():
    res = run_study({"version": 1, "data": {"path": str(MPDTA)}, "outcome": "lemp",
                     "design": {"method": "did", "unit": "countyreal", "time": "year", "cohort": "first.treat",
                                "estimator": "callaway_santanna"}, "refute": []})
    hd = res.diagnostics["sensitivity"]["honest_did"]
    assert (hd["pre_periods"], hd["post_periods"]) == (3, 4)
    dyn = res.diagnostics["aggregations"]["dynamic"]["elements"]
    post = [el["att"] for el in dyn if float(el["label"].split("=")[1]) >= 0]
    assert hd["estimate"] == pytest.approx(np.mean(post), abs=1e-12)
    assert hd["sets"][0]["mbar"] == 0.0 and hd["sets"][0]["ub"] < 0  # significant under parallel trends
    assert 0 < hd["breakdown_mbar"] < 2


@pytest.mark.slow
@pytest.mark.parametrize("n_pre,n_post", [(5, 2), (3, 1)])
def test_coverage_is_nominal_when_parallel_trends_hold(n_pre, n_post):
    """Draws of betahat ~ N(beta, Sigma) with no trend violation (correlated Sigma; with one post period the
    test without nuisance parameters).

    Coverage of theta (average of the post effects) at Mbar = 0 should be 95% (the conventional interval)
    and at Mbar = 1 at least that (the true delta = 0 lies in every piece of Delta^RM). 2000 draws:
    binomial SE 0.5%, so we accept 0.95 +/- 0.015 (3 SE) and above 0.935.
    """
    rng = np.random.default_rng(11)
    _, Sigma = _random_case(np.random.default_rng(7), n_pre, n_post)
    beta = np.r_[np.zeros(n_pre), 0.05, 0.07][: n_pre + n_post]
    l_vec = np.full(n_post, 1.0 / n_post)
    theta = float(l_vec @ beta[n_pre:])
    hits = {0.0: 0, 1.0: 0}
    n = 2000
    for _ in range(n):
        b = rng.multivariate_normal(beta, Sigma)
        rm = RelativeMagnitudes(b, Sigma, n_pre, l_vec, sims=20_000)
        for m in hits:
            hits[m] += bool(rm.accept(theta, m)[0])
    assert hits[0.0] / n == pytest.approx(0.95, abs=0.015)
    assert hits[1.0] / n > 0.935


def test_up_to_nine_post_periods_enumerate_the_dual_vertices():
    """Beyond MAX_SUPPORTED_POST linear programs replace the enumeration (tests/test_did_honest_lp.py)."""
    rel = [-3, -2, 0, 1, 2]
    out = relative_magnitude_sets(np.r_[0.0, 0.0, 0.5, 0.5, 0.5], np.eye(5) * 0.01, rel, 0.95)
    assert out["nuisance_solver"] == "exact enumeration of the dual vertices" and "lp_work_units" not in out
    assert out["least_favourable_draws"] == 100_000

