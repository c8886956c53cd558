"""Sequential testing of experiments (`design.sequential`): always-valid confidence sequences and group
sequential boundaries.

Tolerances:
* GBSTATS = 1e-9 relative: gbstats computes the same closed forms from the same per-arm sums (its
  variances are the n - 1 sample variances of the sums we give it, and p (1 - p) for a 0/1 metric, its
  proportion statistic), in another order of operations.
* Published tables (tests/fixtures/group_sequential_boundaries.json) print 3 decimals: equal within
  half a unit of the last digit (5e-4), plus 1e-6 for our integration (accurate to about 1e-7).
* spotify-confidence: 2e-3. It computes the one-sided upper boundary with alpha / 2 (its two-sided bounds
  ignore the lower boundary), where we integrate over both; the difference is the chance of crossing
  one boundary after the other, below 1e-3 in z here.
* Simulations: the false-positive rate of 2,000 A/A runs has Monte Carlo sd sqrt(0.05 x 0.95 / 2000) =
  0.0049; "at most alpha" is checked as at most alpha + 3 sd.
"""

from __future__ import annotations

import importlib.util
import json
import math
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from causalcli.designs.experiment import sequential as seq
from causalcli.designs.experiment.analysis import Comparison, Test as FixedTest
from causalcli.designs.experiment.sequential_fit import SequentialAnalysis
from causalcli.errors import DataError, SpecError
from causalcli.study.run import run_study
from tests.conftest import run_json

GBSTATS = 1e-9
TABLE = 5e-4 + 1e-6
SPOTIFY = 2e-3
FIXTURE = json.loads((Path(__file__).parent / "fixtures" / "group_sequential_boundaries.json").read_text())


# ---------------------------------------------------------------- always valid: equal to gbstats


def ab_data(n: int = 4000, seed: int = 11) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    arm = rng.integers(0, 2, n)
    pre = rng.gamma(2.0, 5.0, n)
    y = 0.8 * pre + rng.normal(0, 4, n) + 0.6 * arm
    sessions = rng.poisson(4, n) + 1
    clicks = rng.binomial(sessions, 0.3 + 0.02 * arm)
    bought = (rng.random(n) < 0.1 + 0.015 * arm).astype(int)
    return pd.DataFrame({"variant": arm, "y": y, "pre": pre, "clicks": clicks, "sessions": sessions,
                         "bought": bought, "day": rng.integers(1, 15, n)})


METRICS = [{"name": "y", "outcome": "y"}, {"name": "bought", "outcome": "bought"},
           {"name": "ctr", "numerator": "clicks", "denominator": "sessions"},
           {"name": "y_cuped", "outcome": "y", "covariate": "pre"}]


def ab_spec(path: Path, sequential: dict, time: str | None = None, metrics: list[dict] = METRICS, **design) -> dict:
    d = {"method": "experiment", "control": 0, "metrics": metrics, "correction": "none", "sequential": sequential}
    return {"version": 1, "name": "ab", "data": {"path": str(path)}, "treatment": "variant",
            "design": d | ({"time": time} if time else {}) | design}


@pytest.fixture(scope="module")
def ab_file(tmp_path_factory) -> tuple[Path, pd.DataFrame]:
    df = ab_data()
    path = tmp_path_factory.mktemp("seq") / "ab.csv"
    df.to_csv(path, index=False)
    return path, df


def _gbstats_statistic(df: pd.DataFrame, metric: dict):
    from gbstats.models.statistics import (ProportionStatistic, RatioStatistic, RegressionAdjustedStatistic,
                                           SampleMeanStatistic)

    def mean_stat(x: np.ndarray) -> SampleMeanStatistic:
        return SampleMeanStatistic(n=len(x), sum=float(x.sum()), sum_squares=float((x * x).sum()))

    if "numerator" in metric:
        m, d = df[metric["numerator"]].to_numpy(float), df[metric["denominator"]].to_numpy(float)
        return RatioStatistic(n=len(m), m_statistic=mean_stat(m), d_statistic=mean_stat(d),
                              m_d_sum_of_products=float((m * d).sum()))
    y = df[metric["outcome"]].to_numpy(float)
    if "covariate" in metric:
        x = df[metric["covariate"]].to_numpy(float)
        return RegressionAdjustedStatistic(n=len(y), post_statistic=mean_stat(y), pre_statistic=mean_stat(x),
                                           post_pre_sum_of_products=float((x * y).sum()), theta=0.0)
    if set(np.unique(y)) <= {0.0, 1.0}:  # a proportion: variance p (1 - p), as ours
        return ProportionStatistic(n=len(y), sum=float(y.sum()))
    return mean_stat(y)


def _gbstats(df: pd.DataFrame, metric: dict, relative: bool, tuning: float = 5000):
    from gbstats.frequentist.tests import SequentialConfig, SequentialTwoSidedTTest

    a, b = (_gbstats_statistic(df[df.variant == v], metric) for v in (0, 1))
    config = SequentialConfig(alpha=0.05, sequential_tuning_parameter=tuning,
                              difference_type="relative" if relative else "absolute")
    return SequentialTwoSidedTTest(a, b, config)


@pytest.mark.parametrize("tuning", [5000, 300])
def test_always_valid_equals_gbstats_sequential_test_on_mean_proportion_ratio_and_cuped(ab_file, tuning):
    path, df = ab_file
    result = run_study(ab_spec(path, {"method": "always_valid", "tuning": tuning}))
    effects = {e.label: e for e in result.effects}
    for metric in METRICS:
        for which in ("abs", "rel"):
            if which == "rel" and "covariate" in metric:
                continue  # gbstats divides a CUPED lift by the unadjusted control mean: the next test
            ours = effects[f"{metric['name']}/1/{which}"]
            theirs = _gbstats(df, metric, which == "rel", tuning)
            lo, hi = theirs.confidence_interval
            assert ours.value == pytest.approx(theirs.point_estimate, rel=GBSTATS)
            assert ours.std_error == pytest.approx(math.sqrt(theirs.variance), rel=GBSTATS)
            assert (ours.ci_lower, ours.ci_upper) == pytest.approx((lo, hi), rel=GBSTATS)
            assert ours.p_value == pytest.approx(theirs.p_value, rel=GBSTATS)
            assert ours.inference.split(";")[0].endswith("always_valid")
    assert result.diagnostics["sequential"]["tuning"] == tuning


def test_the_sequence_on_gbstats_own_cuped_lift_equals_its_sequential_test(ab_file):
    """Given gbstats' point estimate and variance (its relative CUPED lift divides by the unadjusted control
    mean), the sequence's interval and p-value are gbstats'."""
    _, df = ab_file
    metric = METRICS[3]
    for relative in (False, True):
        theirs = _gbstats(df, metric, relative)
        n_a, n_b = theirs.stat_a.n, theirs.stat_b.n
        fixed = FixedTest(theirs.point_estimate, math.sqrt(theirs.variance), math.nan, math.nan, math.nan, 12.0)
        c = Comparison("m", "1", n_a, n_b, *[math.nan] * 8, ())
        t = SequentialAnalysis("always_valid", 0.05, 5000, None, None).test(fixed, c)
        assert (t.ci_lower, t.ci_upper) == pytest.approx(tuple(theirs.confidence_interval), rel=GBSTATS)
        assert t.p_value == pytest.approx(theirs.p_value, rel=GBSTATS)
        assert t.df is None


def test_always_valid_p_value_reaches_alpha_exactly_where_the_interval_reaches_zero():
    for units in (50, 5000, 10 ** 6):
        m = seq.always_valid_multiplier(units, 0.05, 5000)
        assert seq.always_valid_p(m, units, 0.05, 5000) == pytest.approx(0.05, rel=1e-12)
        assert seq.always_valid_p(0.0, units, 0.05, 5000) == 1.0
        assert m > 1.96  # always wider than the fixed-horizon interval
    # narrowest relative to the fixed-horizon interval near the tuning size
    sizes = np.geomspace(100, 10 ** 6, 200)
    ratio = seq.always_valid_multipliers(sizes, 0.05, 5000)
    assert 1500 < sizes[np.argmin(ratio)] < 15000


def test_log_scale_relative_interval_is_the_sequence_on_the_log_ratio(ab_file):
    path, _ = ab_file
    delta = run_study(ab_spec(path, {"method": "always_valid"}, metrics=METRICS[:1]))
    log = {e.label: e for e in run_study(ab_spec(path, {"method": "always_valid"}, metrics=METRICS[:1],
                                                 options={"relative_ci": "log"})).effects}
    e = log["y/1/rel"]
    scale = e.std_error / (1 + e.value)
    m = (math.log(1 + e.ci_upper) - math.log(1 + e.value)) / scale
    assert m == pytest.approx((math.log(1 + e.value) - math.log(1 + e.ci_lower)) / scale, rel=1e-12)
    n = delta.diagnostics["metrics"][0]
    assert m == pytest.approx(seq.always_valid_multiplier(n["n_control"] + n["n_treatment"], 0.05, 5000), rel=1e-12)
    assert delta.effects[0].ci_lower == log["y/1/abs"].ci_lower  # the absolute effect does not change


# ---------------------------------------------------------------- group sequential: published tables


@pytest.mark.parametrize("spending", ["obrien_fleming", "pocock"])
def test_lan_demets_boundaries_equal_the_published_table(spending):
    table = FIXTURE["lan_demets_spending"]
    ours = seq.spending_boundaries(seq.equally_spaced(table["looks"]), table["alpha"], spending)
    assert ours == pytest.approx(table[spending], abs=TABLE)


def _constant(shape, looks: int, alpha: float) -> float:
    """The constant C with boundaries C x shape(k) whose exit probabilities total alpha (bisection on the recursion)."""
    from scipy.optimize import brentq

    fractions = seq.equally_spaced(looks)
    return brentq(lambda c: sum(seq.exit_probabilities([c * shape(k, looks) for k in range(1, looks + 1)],
                                                        fractions)) - alpha, 1.5, 5.0, xtol=1e-10)


SHAPES = {"pocock": lambda k, K: 1.0, "obrien_fleming": lambda k, K: math.sqrt(K / k)}


@pytest.mark.parametrize("test", ["pocock", "obrien_fleming"])
def test_the_recursion_gives_jennison_and_turnbull_constants_and_inflation_factors(test):
    from causalcli.designs.experiment.plan import detectable_multiplier

    constants = FIXTURE[f"{test}_constant"]
    for looks, published in constants["by_looks"].items():
        assert _constant(SHAPES[test], int(looks), constants["alpha"]) == pytest.approx(published, abs=TABLE)
    inflation = FIXTURE[f"{test}_inflation"]
    for looks, published in inflation["by_looks"].items():
        K = int(looks)
        c = _constant(SHAPES[test], K, inflation["alpha"])
        drift = seq.drift_for_power([c * SHAPES[test](k, K) for k in range(1, K + 1)], seq.equally_spaced(K),
                                    inflation["power"])
        ratio = (drift / detectable_multiplier(inflation["alpha"], inflation["power"])) ** 2
        assert ratio == pytest.approx(published, abs=TABLE)


def test_power_family_boundaries_equal_spotify_confidence():
    """spotify-confidence spends alpha t**rho (Kim and DeMets' power family) with the same recursion."""
    # its package imports chartify and bokeh (plots) on import; the solver needs only numpy, pandas and scipy
    package = importlib.util.find_spec("spotify_confidence")
    solver_path = Path(package.origin).parent / "analysis" / "frequentist" / "sequential_bound_solver.py"
    spec = importlib.util.spec_from_file_location("spotify_bound_solver", solver_path)
    solver = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(solver)
    for fractions in ([0.2, 0.4, 0.6, 0.8, 1.0], [0.1, 0.35, 0.5, 0.9, 1.0]):
        for rho in (1.0, 2.0, 3.0):
            theirs = solver.bounds(np.array(fractions), 0.05, rho, 8, 2).df["zb"].to_numpy()
            ours = seq.spending_boundaries(fractions, 0.05, lambda t, a, r=rho: a * t ** r)
            assert ours == pytest.approx(theirs, abs=SPOTIFY)


def test_repeated_p_value_is_the_level_at_which_the_boundary_is_reached():
    fractions = [0.25, 0.5, 0.8]
    for z in (1.5, 2.5, 3.5):
        p = seq.repeated_p_value(z, fractions, "obrien_fleming")
        assert seq.spending_boundaries(fractions, p, "obrien_fleming")[-1] == pytest.approx(z, abs=1e-6)
    assert seq.repeated_p_value(0.01, fractions, "pocock") == 1.0


# ---------------------------------------------------------------- the design with design.time


def test_group_sequential_by_day_gives_the_per_look_sequence_and_the_last_look_as_the_estimate(ab_file):
    path, df = ab_file
    result = run_study(ab_spec(path, {"method": "group_sequential", "looks": 14}, time="day", metrics=METRICS[:1]))
    about = result.diagnostics["sequential"]
    points = result.diagnostics["cumulative"]
    units = np.cumsum(np.bincount(df.day)[1:])
    assert about["information_fractions"] == pytest.approx(list(units / units[-1]), rel=1e-15)
    assert about["boundaries"] == pytest.approx(seq.spending_boundaries(about["information_fractions"], 0.05,
                                                                        "obrien_fleming"), rel=1e-12)
    for p, c in zip(points, about["boundaries"]):
        assert p["critical_z"] == c
        assert p["sequential_lower"] == pytest.approx(p["value"] - c * p["std_error"], rel=1e-12)
    last, e = points[-1], result.effects[0]
    assert (e.ci_lower, e.ci_upper) == pytest.approx((last["sequential_lower"], last["sequential_upper"]), rel=1e-12)
    assert e.inference == "group_sequential_obrien_fleming"
    assert e.p_value == pytest.approx(seq.repeated_p_value(e.value / e.std_error, about["information_fractions"],
                                                           "obrien_fleming"), rel=1e-9)
    # the first look of O'Brien-Fleming-type spending is far wider than the last
    assert points[0]["critical_z"] > 2 * points[-1]["critical_z"] > 2 * 1.96


def test_fewer_periods_than_looks_project_the_planned_size_and_more_are_a_data_error(ab_file, tmp_path,
                                                                                    runner, write_spec):
    path, df = ab_file
    early = df[df.day <= 7]
    early.to_csv(tmp_path / "early.csv", index=False)
    about = run_study(ab_spec(tmp_path / "early.csv", {"method": "group_sequential", "looks": 14, "spending": "pocock"},
                              time="day", metrics=METRICS[:1])).diagnostics["sequential"]
    units = np.cumsum(np.bincount(early.day)[1:])
    assert about["information_fractions"] == pytest.approx(list(units / (units[-1] * 14 / 7)), rel=1e-15)
    assert about["look"] == 7
    with pytest.raises(DataError, match="has 14 periods but design.sequential.looks is 10") as info:
        run_study(ab_spec(path, {"method": "group_sequential", "looks": 10}, time="day"))
    assert info.value.key == "design.sequential.looks"
    code, payload, _ = run_json(runner, [str(write_spec(ab_spec(path, {"method": "group_sequential", "looks": 10},
                                                                time="day")))])
    assert code == 3 and "\n" not in payload["error"]["message"]


def test_always_valid_by_day_widens_each_look_by_its_own_sample_size(ab_file):
    path, _ = ab_file
    result = run_study(ab_spec(path, {"method": "always_valid"}, time="day", metrics=METRICS[:1]))
    for p in result.diagnostics["cumulative"]:
        m = seq.always_valid_multiplier(p["n_control"] + p["n_treatment"], 0.05, 5000)
        assert p["critical_z"] == pytest.approx(m, rel=1e-15)
        assert p["sequential_upper"] - p["sequential_lower"] > p["ci_upper"] - p["ci_lower"]
    assert result.diagnostics["cumulative_method"]["interval"] == "fixed-horizon and sequential"


@pytest.mark.parametrize("sequential, message", [
    ({"method": "always_valid", "looks": 14}, "'looks' does not apply to method always_valid"),
    ({"method": "group_sequential", "looks": 14, "tuning": 100}, "'tuning' does not apply"),
    ({"method": "group_sequential"}, "group_sequential needs 'looks'"),
    ({"method": "mixture"}, "always_valid"),
])
def test_sequential_keys_are_checked_in_one_line(ab_file, runner, write_spec, sequential, message):
    path, _ = ab_file
    code, payload, _ = run_json(runner, [str(write_spec(ab_spec(path, sequential, time="day")))])
    assert code == 2 and message in payload["error"]["message"] and "\n" not in payload["error"]["message"]


def test_a_spec_without_sequential_is_unchanged(ab_file):
    path, _ = ab_file
    spec = ab_spec(path, {"method": "always_valid"})
    del spec["design"]["sequential"]
    result = run_study(spec)
    assert "sequential" not in result.diagnostics
    assert result.effects[0].inference == "welch_t"


# ---------------------------------------------------------------- peeking: A/A simulations


def _aa_peeking(runs: int, days: int = 14, per_day: int = 60, seed: int = 5) -> dict[str, float]:
    """False-positive rates of A/A experiments read after every day: naive, always valid, group sequential."""
    rng = np.random.default_rng(seed)
    y = rng.exponential(1.0, size=(runs, days, 2, per_day))  # skewed outcomes, two equal arms
    n = per_day * np.arange(1, days + 1)
    s = np.cumsum(y.sum(axis=3), axis=1)
    ss = np.cumsum((y * y).sum(axis=3), axis=1)
    var = (ss - s * s / n[None, :, None]) / (n[None, :, None] - 1)
    se = np.sqrt(var.sum(axis=2) / n[None, :])
    z = np.abs((s[:, :, 1] - s[:, :, 0]) / n[None, :] / se)
    av = seq.always_valid_multipliers(2 * n, 0.05, 5000)
    gs = np.array(seq.spending_boundaries(seq.equally_spaced(days), 0.05, "obrien_fleming"))
    return {"naive": float((z >= 1.959963984540054).any(axis=1).mean()),
            "always_valid": float((z >= av[None, :]).any(axis=1).mean()),
            "group_sequential": float((z >= gs[None, :]).any(axis=1).mean())}


def test_daily_peeking_a_few_hundred_aa_runs():
    rates = _aa_peeking(400, seed=8)
    sd = math.sqrt(0.05 * 0.95 / 400)
    assert rates["naive"] > 0.15
    assert rates["always_valid"] <= 0.05 + 3 * sd
    assert rates["group_sequential"] <= 0.05 + 3 * sd


@pytest.mark.slow
def test_daily_peeking_keeps_the_false_positive_rate_at_alpha_over_2000_aa_runs():
    runs = 4000
    rates = _aa_peeking(runs, seed=1)
    sd = math.sqrt(0.05 * 0.95 / runs)
    assert rates["naive"] > 0.15
    assert rates["always_valid"] <= 0.05 + 3 * sd
    assert rates["group_sequential"] <= 0.05 + 3 * sd
    assert rates["group_sequential"] >= 0.05 - 3 * sd  # spending uses the whole alpha, not less


# ---------------------------------------------------------------- causalcli plan


def _plan(tmp_path: Path, sequential: dict | None, df: pd.DataFrame | None = None, **design) -> dict:
    from tests.test_plan import _spec
    from causalcli.study.plan import plan_study

    metric = {"name": "m", "outcome": "y", "mde": 0.05} | ({} if df is not None else {"mean": 10.0, "sd": 4.0})
    extra = {"sequential": sequential} if sequential else {}
    return plan_study(_spec(tmp_path, df, [metric], **extra, **design))


@pytest.mark.parametrize("spending", ["obrien_fleming", "pocock"])
def test_group_sequential_plan_inflates_the_fixed_size_by_the_boundaries_drift(tmp_path, spending):
    from causalcli.designs.experiment.plan import detectable_multiplier, units_needed

    fixed = _plan(tmp_path, None)["metrics"][0]
    plan = _plan(tmp_path, {"method": "group_sequential", "looks": 5, "spending": spending})
    row, about = plan["metrics"][0], plan["sequential"]
    fractions = seq.equally_spaced(5)
    bounds = seq.spending_boundaries(fractions, 0.05, spending)
    # the drift gives the power against the boundaries, and the inflation is (drift / k)**2
    assert sum(seq.exit_probabilities(bounds, fractions, about["drift"])) == pytest.approx(0.8, abs=1e-9)
    assert about["inflation"] == pytest.approx((about["drift"] / detectable_multiplier(0.05, 0.8)) ** 2, rel=1e-12)
    # O'Brien-Fleming-type spending costs a few percent, Pocock-type about a fifth (J&T Table 2.2: R_P(5) ~ 1.23
    # for Pocock's own test, which spends alpha in the same way)
    assert (1.01 < about["inflation"] < 1.05) if spending == "obrien_fleming" else (1.18 < about["inflation"] < 1.24)
    fixed_total = units_needed(4.0 ** 2, 0.05 * 10.0, detectable_multiplier(0.05, 0.8), 0.5, 0.5)
    assert row["sample_size_per_arm"] == math.ceil(fixed_total * about["inflation"] / 2 * (1 - 4e-16))
    assert row["sample_size_per_arm"] > fixed["sample_size_per_arm"]


def test_always_valid_plan_reaches_the_power_at_the_planned_size(tmp_path):
    plan = _plan(tmp_path, {"method": "always_valid", "tuning": 5000})
    row = plan["metrics"][0]
    n = row["sample_size_per_arm"]  # equal arms
    se = 4.0 * math.sqrt(2 / n)
    m = seq.always_valid_multiplier(2 * n, 0.05, 5000)
    k = 0.05 * 10.0 / se
    power = 0.5 * math.erfc((m - k) / math.sqrt(2)) + 0.5 * math.erfc((m + k) / math.sqrt(2))
    assert 0.8 <= power < 0.8 + 1e-3  # rounded up to whole units
    se_less = 4.0 * math.sqrt(2 / (n - 2))
    k_less = 0.05 * 10.0 / se_less
    m_less = seq.always_valid_multiplier(2 * n - 4, 0.05, 5000)
    assert 0.5 * math.erfc((m_less - k_less) / math.sqrt(2)) < 0.8
    assert plan["sequential"]["method"] == "always_valid"


def test_plan_mde_at_the_data_size_uses_the_sequential_multiplier(tmp_path):
    rng = np.random.default_rng(2)
    df = pd.DataFrame({"variant": np.repeat(["control", "b"], 2000), "y": rng.normal(10, 4, 4000)})
    fixed = _plan(tmp_path, None, df)["metrics"][0]
    plan = _plan(tmp_path, {"method": "group_sequential", "looks": 7}, df)
    row = plan["metrics"][0]
    assert row["mde_absolute"] == pytest.approx(fixed["mde_absolute"] * plan["sequential"]["drift"] /
                                                plan["multiplier"], rel=1e-12)


def test_the_cumulative_plot_draws_the_sequential_band(ab_file):
    from causalcli.designs.experiment.plots import cumulative
    from causalcli.render.plots import plots_for

    path, _ = ab_file
    result = run_study(ab_spec(path, {"method": "always_valid"}, time="day", metrics=METRICS[:1]))
    assert "cumulative" in plots_for("experiment")  # the report and --plots draw every plot with something to draw
    with_band = cumulative(result)
    result.diagnostics.pop("sequential")
    assert with_band[:8] == b"\x89PNG\r\n\x1a\n" and cumulative(result) != with_band


def test_a_group_sequential_plan_longer_than_its_looks_warns_that_estimate_would_refuse(tmp_path):
    from typer.testing import CliRunner

    from causalcli.cli import app
    from causalcli.study.plan import plan_study
    from tests.test_plan import _frame, _spec

    df = _frame(n=1400, days=7)  # 200 units a day
    metric = [{"name": "m", "outcome": "revenue", "mde": 0.1}]
    short = {"method": "group_sequential", "looks": 7}
    plan = plan_study(_spec(tmp_path, df, metric, time="day", sequential=short))
    days = plan["metrics"][0]["days"]
    assert 7 < days < 30 and len(plan["warnings"]) == 1
    assert f"at least {days}" in plan["warnings"][0] and "design.sequential.looks is 7" in plan["warnings"][0]
    res = CliRunner().invoke(app, ["plan", str(tmp_path / "plan.yaml")])
    assert res.exit_code == 0 and f"set looks to at least {days}" in res.stdout
    # with looks enough for the days, or without group_sequential, nothing to say
    enough = {"method": "group_sequential", "looks": days + 2}
    assert plan_study(_spec(tmp_path, df, metric, time="day", sequential=enough))["warnings"] == []
    assert plan_study(_spec(tmp_path, df, metric, time="day"))["warnings"] == []

