"""Experiments randomised by unit with few units: wild cluster bootstrap p-values and intervals over units.

References:
* the row-level regression of the outcome on (1, treated), clustered on the unit, bootstrapped by
  ``inference.wild.wcr_test`` (the routine did's tests compare with pyfixest's wildboottest): its scores
  per unit are the unit-level regression's, so with the same sign vectors the p-values are equal to
  rounding (1e-12);
* pyfixest's wildboottest on the same rows (peer): with 8 units both enumerate the 2^8 Rademacher sign
  vectors; they may differ only by the two draws v = +/-1, which reproduce |t| exactly and are counted by
  us (>=) but by wildboottest's strict > only as rounding falls (a gap of at most 2 / 256);
* simulated A/A experiments with 10 units of unequal sizes and heavy-tailed unit effects: the wild
  bootstrap's 5% test rejects 6.1% of 4,000 runs (MacKinnon and Webb 2017 report 5-7% for WCR with about
  10 unequal clusters), the delta method's z test 11.4%.
"""

from __future__ import annotations

import numpy as np
import pytest

from causalcli.study.run import run_study
from tests.test_experiment_units import sessions, spec


def _few(tmp_path, units_per_arm: int, seed: int = 8):
    df = sessions(units_per_arm=units_per_arm, seed=seed, effect=0.6)
    path = tmp_path / "few.parquet"
    df.to_parquet(path, index=False)
    return df, path


def _row_level_wcr(df, y, w=None):
    from causalcli.inference.wild import wcr_test

    codes, G = np.unique(df.user, return_inverse=True)[1], df.user.nunique()
    X = np.column_stack([np.ones(len(df)), df.variant.to_numpy(float)])
    return wcr_test(y, X, np.array([0.0, 1.0]), codes, G, [], w, 999, 0, weights="rademacher")


@pytest.mark.parametrize("metric", ["mean", "ratio"])
def test_the_wild_bootstrap_over_units_equals_the_row_level_one(tmp_path, metric):
    df, path = _few(tmp_path, 4)
    m = ({"name": "m", "outcome": "y"} if metric == "mean" else {"name": "m", "numerator": "num", "denominator": "den"})
    res = run_study(spec(path, [m], options={"wild_weights": "rademacher"}))
    e = res.effects[0]
    assert e.inference.split(";")[0] == "delta_method+clustered_by_unit+wild_cluster_bootstrap_rademacher"
    rec = res.diagnostics["clusters"]["by_effect"]["m/1/abs"]
    assert rec["enumerated"] is True and rec["draws"] == 2 ** 8
    y = df.y.to_numpy() if metric == "mean" else (df.num / df.den).to_numpy()
    ref = _row_level_wcr(df, y, None if metric == "mean" else df.den.to_numpy(float))
    assert ref["theta"] == pytest.approx(e.value, rel=1e-9)
    assert e.p_value == pytest.approx(ref["p_value"], abs=1e-12)
    crit = float(np.quantile(np.abs(ref["tstar"]), 0.95, method="inverted_cdf"))
    assert rec["critical_value"] == pytest.approx(crit, rel=1e-9)
    assert (e.ci_lower, e.ci_upper) == pytest.approx((e.value - crit * e.std_error, e.value + crit * e.std_error),
                                                     rel=1e-12)
    rel = res.effects[1]
    assert rel.p_value == e.p_value  # the same null: no effect
    assert rel.ci_upper - rel.ci_lower > 0 and rel.ci_lower < rel.value < rel.ci_upper


@pytest.mark.peer
def test_the_wild_bootstrap_over_units_equals_wildboottest(tmp_path):
    import warnings

    import pyfixest as pf

    df, path = _few(tmp_path, 4)
    res = run_study(spec(path, [{"name": "y", "outcome": "y"}], options={"wild_weights": "rademacher"}))
    m = pf.feols("y ~ variant", data=df, vcov={"CRV1": "user"})
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        peer = m.wildboottest(param="variant", reps=999, seed=1)
    gap = res.estimate.p_value - float(peer["Pr(>|t|)"])
    assert -1e-12 <= gap <= 2 / 2 ** 8 + 1e-12
    assert 0.05 < res.estimate.p_value < 0.95


def test_few_units_take_webb_weights_below_12_and_pass_the_check_as_null(tmp_path):
    _, path = _few(tmp_path, 5)
    res = run_study(spec(path, [{"name": "y", "outcome": "y"}]))
    assert res.estimate.inference.split(";")[0].endswith("+wild_cluster_bootstrap_webb")
    check = next(c for c in res.checks if c.name == "clusters")
    assert check.passed is None and "10 units of 'user'" in check.detail
    assert "wild_cluster_bootstrap_webb" in check.detail
    clusters = res.diagnostics["clusters"]
    assert clusters["method"] == "wild_cluster_bootstrap_webb"
    assert clusters["wild"]["p_value"] == res.estimate.p_value
    assert clusters["crv1_se"] == res.estimate.std_error
    # the bootstrap's critical value is above the t quantile with so few units: the interval widens
    assert clusters["wild"]["critical_value"] > 2.0
    timed = run_study(spec(path, [{"name": "y", "outcome": "y"}], time="day"))
    assert "too narrow" in timed.diagnostics["cumulative_method"]["few_units"]


def test_cuped_and_segments_with_few_units(tmp_path):
    df, _ = _few(tmp_path, 9, seed=3)
    df["region"] = np.where(df.user % 2 == 0, "north", "south")  # a property of the unit
    path = tmp_path / "seg.parquet"
    df.to_parquet(path, index=False)
    plain = run_study(spec(path, [{"name": "y", "outcome": "y"}]))
    res = run_study({**spec(path, [{"name": "y", "outcome": "y", "covariate": "pre"}]), "segments": ["region"]})
    by = res.diagnostics["clusters"]["by_effect"]
    assert by["y/1/abs"]["covariates"] == 1
    # the pre-period value predicts the unit's level: the adjusted interval is narrower
    assert res.estimate.ci_upper - res.estimate.ci_lower < plain.estimate.ci_upper - plain.estimate.ci_lower
    seg = [e for e in res.effects if "/region=" in e.label]
    assert seg and all("wild_cluster_bootstrap" in e.inference for e in seg)
    north = by["y/1/abs/region=north"]
    assert north["units"] == int((df.groupby("user").region.first() == "north").sum())


def test_sequential_with_few_units_fails_the_clusters_check(tmp_path):
    _, path = _few(tmp_path, 5)
    res = run_study(spec(path, [{"name": "y", "outcome": "y"}], time="day",
                         sequential={"method": "always_valid", "tuning": 100}))
    check = next(c for c in res.checks if c.name == "clusters")
    assert check.passed is False and "design.sequential" in check.detail
    assert "wild" not in res.estimate.inference


@pytest.mark.slow  # a statistical check of size or coverage over many draws (make test-slow)
def test_the_wild_bootstrap_holds_its_size_where_the_delta_method_does_not():
    """4,000 A/A experiments of 10 units (5 per arm), 1-29 rows each, t(3) unit effects: see the module's
    docstring. Bounds: the wild test within 0.04-0.075 (MC standard error 0.004), the z test above 0.09."""
    from causalcli.designs.experiment.analysis import MetricShape, Test
    from causalcli.designs.experiment.few_units import FewUnitInference, UnitValues
    from causalcli.inference.distributions import t_two_sided

    rng = np.random.default_rng(1)
    shape = MetricShape("y", "s", "k", (), "mean", "none", "user")
    runs, wild, analytic = 4000, 0, 0
    for i in range(runs):
        arm = rng.permutation(np.repeat([0, 1], 5))
        k = rng.integers(1, 30, 10).astype(float)
        level = rng.standard_t(3, 10) * 2
        s = np.array([(level[j] + rng.normal(0, 1, int(k[j]))).sum() for j in range(10)])
        est, var = 0.0, 0.0
        for a, sign in ((1, 1), (0, -1)):  # the delta method on unit sums, per arm
            m = arm == a
            r = s[m].sum() / k[m].sum()
            var += ((s[m] - r * k[m]) / k[m].mean()).var(ddof=1) / m.sum()
            est += sign * r
        se = float(np.sqrt(var))
        p = t_two_sided(est / se, None)
        test = Test(est, se, est - 1.96 * se, est + 1.96 * se, p, None)
        few = FewUnitInference(UnitValues(list(arm), {}, {"s": s, "k": k}), 0.95, 999, "auto", "delta", i)
        boot, _, _ = few.tests(shape, 0, 1, test, test, "y/1/abs")
        wild += boot.p_value <= 0.05
        analytic += p <= 0.05
    assert 0.04 <= wild / runs <= 0.075
    assert analytic / runs > 0.09


def test_complier_effects_with_few_units_fail_the_clusters_check(tmp_path):
    df, _ = _few(tmp_path, 6)
    rng = np.random.default_rng(0)
    df["used"] = ((df.variant == 1) & (rng.random(len(df)) < 0.7)).astype(int)
    path = tmp_path / "uptake.parquet"
    df.to_parquet(path, index=False)
    res = run_study(spec(path, [{"name": "y", "outcome": "y", "uptake": "used"}]))
    check = next(c for c in res.checks if c.name == "clusters")
    assert check.passed is False and "y/1/cace" in check.detail and "delta method" in check.detail
    assert "wild_cluster_bootstrap" in res.estimate.inference  # the ITT effects still get the bootstrap
