"""``causalcli plan``: sample sizes and detectable effects against statsmodels' and tea-tasting's power.

Tolerances. Both peers solve the same two-sided z power (both tails counted) with scipy's brentq:
statsmodels' ``NormalIndPower.solve_power`` and tea-tasting's ``solve_power`` with ``use_t=False``.
causalcli solves the same equation once by Newton's method to the last bit, so the answers agree to
the root finders' tolerance: 1e-9 relative (brentq's default xtol is 2e-12 absolute on sizes in the
hundreds or thousands and on effects of order 0.1-10). Sample sizes are compared before rounding up.
Variances come from DuckDB (causalcli) and pandas (tea-tasting) in double precision (~1e-14 apart).
"""

from __future__ import annotations

import json
import math
from pathlib import Path

import numpy as np
import pytest
import yaml
from typer.testing import CliRunner

from causalcli.cli import app
from causalcli.designs.experiment.plan import detectable_effect, detectable_multiplier, power_at, units_needed
from causalcli.study.plan import PLAN_SCHEMA, plan_study

RTOL = 1e-9
runner = CliRunner()


def _equal_statsmodels(nobs1: float, effect_size: float, alpha: float, power: float, ratio: float) -> None:
    """``nobs1`` (control units, before rounding up) against statsmodels: its power function there gives the
    target power to 1e-12 (the exact check); its brentq answer stops at ~1e-9 relative, so 1e-8."""
    NormalIndPower = pytest.importorskip("statsmodels.stats.power").NormalIndPower
    got = NormalIndPower().power(effect_size=effect_size, nobs1=nobs1, alpha=alpha, ratio=ratio)
    assert got == pytest.approx(power, abs=1e-12)
    theirs = NormalIndPower().solve_power(effect_size=effect_size, nobs1=None, alpha=alpha, power=power, ratio=ratio)
    assert nobs1 == pytest.approx(theirs, rel=1e-8)


def _frame(n: int = 4000, seed: int = 3, arms: bool = False, days: int = 0):
    pd = pytest.importorskip("pandas")
    rng = np.random.default_rng(seed)
    pre = rng.gamma(2.0, 5.0, n)
    df = pd.DataFrame({
        "revenue": pre * 0.8 + rng.normal(0, 4, n),
        "pre_revenue": pre,
        "converted": (rng.random(n) < 0.12).astype(np.int64),
        "sessions": rng.poisson(3, n) + 1,
    })
    df["watch"] = df["sessions"] * rng.gamma(3.0, 2.0, n)
    if arms:
        df["variant"] = np.where(rng.random(n) < 0.5, "control", "treatment")
    if days:
        df["day"] = pd.to_datetime("2026-03-01") + pd.to_timedelta(np.arange(n) % days, unit="D")
    return df


def _spec(tmp_path: Path, df, metrics: list[dict], **design) -> Path:
    data = tmp_path / "pre.parquet"
    if df is not None:
        df.to_parquet(data)
    spec = {"version": 1, "name": "plan-test", "data": {"path": data.name}, "treatment": "variant",
            "design": {"method": "experiment", "control": "control", "correction": "none", "metrics": metrics,
                       **design}}
    path = tmp_path / "plan.yaml"
    path.write_text(yaml.safe_dump(spec, sort_keys=False))
    return path


# ---------------------------------------------------------------- the formulas against statsmodels


@pytest.mark.parametrize("alpha,power,ratio", [(0.05, 0.8, 1.0), (0.01, 0.9, 0.5), (0.0125, 0.8, 2.0)])
def test_sample_size_and_mde_equal_statsmodels_normal_ind_power(alpha, power, ratio):
    NormalIndPower = pytest.importorskip("statsmodels.stats.power").NormalIndPower
    k = detectable_multiplier(alpha, power)
    assert power_at(k, alpha) == pytest.approx(power, rel=1e-14)
    sd, delta = 2.5, 0.4
    # statsmodels: nobs1 = control, ratio = nobs2 / nobs1 = share_arm / share_control
    share_control, share_arm = 1 / (1 + ratio), ratio / (1 + ratio)
    _equal_statsmodels(units_needed(sd * sd, delta, k, share_control, share_arm) * share_control, delta / sd,
                       alpha, power, ratio)
    mde = detectable_effect(sd * sd, 800, 800 * ratio, k) / sd
    # statsmodels' solver for the effect size stops early (its power there is ~4e-6 off the target):
    # its own power function at our MDE is the exact check, its solver's answer agrees to 1e-4
    assert NormalIndPower().power(effect_size=mde, nobs1=800, alpha=alpha, ratio=ratio) == pytest.approx(power,
                                                                                                          abs=1e-12)
    theirs = NormalIndPower().solve_power(effect_size=None, nobs1=800, alpha=alpha, power=power, ratio=ratio)
    assert mde == pytest.approx(theirs, rel=1e-4)


def test_the_t_test_needs_about_one_unit_more_per_arm():
    # statsmodels' tt_ind_solve_power is the t test (noncentral t): the z plan is its large-sample limit,
    # short by about z_(1-alpha/2)^2 / 4 ~ 1 unit per arm (Guenther 1981), whatever the size.
    tt_ind_solve_power = pytest.importorskip("statsmodels.stats.power").tt_ind_solve_power
    k = detectable_multiplier(0.05, 0.8)
    for d in (0.5, 0.2, 0.05):
        ours = units_needed(1.0, d, k, 0.5, 0.5) * 0.5
        theirs = tt_ind_solve_power(effect_size=d, nobs1=None, alpha=0.05, power=0.8, ratio=1.0)
        assert 0.5 < theirs - ours < 1.5


# ---------------------------------------------------------------- plans from data against tea-tasting


def _tea(df, metric):
    return metric.solve_power(df, "rel_effect_size")[0].rel_effect_size


@pytest.mark.parametrize("kind", ["mean", "cuped", "ratio"])
def test_mde_at_the_data_size_equals_tea_tasting(tmp_path, kind):
    tt = pytest.importorskip("tea_tasting")
    df = _frame()
    metric = {"mean": {"name": "m", "outcome": "revenue"},
              "cuped": {"name": "m", "outcome": "revenue", "covariate": "pre_revenue"},
              "ratio": {"name": "m", "numerator": "watch", "denominator": "sessions"}}[kind]
    plan = plan_study(_spec(tmp_path, df, [{**metric, "mde": 0.03}]))
    row = plan["metrics"][0]
    assert plan["data"]["variant_column"] is False and row["n_control"] == row["n_arm"] == len(df) / 2
    peer = {"mean": tt.Mean("revenue", use_t=False),
            "cuped": tt.Mean("revenue", "pre_revenue", use_t=False),
            "ratio": tt.RatioOfMeans("watch", "sessions", use_t=False)}[kind]
    assert row["mde_relative"] == pytest.approx(_tea(df, peer), rel=RTOL)
    # the sample size for the spec's mde: tea-tasting's n_obs is both arms together, rounded up
    peer_n = {"mean": tt.Mean("revenue", use_t=False, rel_effect_size=0.03),
              "cuped": tt.Mean("revenue", "pre_revenue", use_t=False, rel_effect_size=0.03),
              "ratio": tt.RatioOfMeans("watch", "sessions", use_t=False, rel_effect_size=0.03)}[kind]
    n_obs = peer_n.solve_power(df, "n_obs")[0].n_obs
    k = detectable_multiplier(0.05, 0.8)
    exact = units_needed(row["sd"] ** 2, 0.03 * row["baseline"], k, 0.5, 0.5)
    assert math.ceil(exact) == n_obs
    assert row["sample_size_per_arm"] == math.ceil(exact / 2)
    if kind == "cuped":  # variance times (1 - rho^2), rho the correlation in the same rows
        rho = np.corrcoef(df["revenue"], df["pre_revenue"])[0, 1]
        assert row["variance_reduction"] == pytest.approx(rho ** 2, rel=1e-12)


def test_a_proportion_uses_p_times_1_minus_p(tmp_path):
    tt = pytest.importorskip("tea_tasting")
    NormalIndPower = pytest.importorskip("statsmodels.stats.power").NormalIndPower
    proportion_effectsize = pytest.importorskip("statsmodels.stats.proportion").proportion_effectsize
    df = _frame()
    row = plan_study(_spec(tmp_path, df, [{"name": "c", "outcome": "converted", "mde": 0.1}]))["metrics"][0]
    p, n = df["converted"].mean(), len(df)
    assert row["kind"] == "proportion" and row["sd"] == pytest.approx(math.sqrt(p * (1 - p)), rel=1e-12)
    # tea-tasting's Mean on a 0/1 column uses the sample variance p(1-p) n / (n - 1)
    assert row["mde_relative"] * math.sqrt(n / (n - 1)) == pytest.approx(_tea(df, tt.Mean("converted", use_t=False)),
                                                                          rel=RTOL)
    # statsmodels with the effect in Bernoulli standard deviations: the same equation
    k = detectable_multiplier(0.05, 0.8)
    nobs1 = units_needed(p * (1 - p), 0.1 * p, k, 0.5, 0.5) / 2
    _equal_statsmodels(nobs1, 0.1 * p / math.sqrt(p * (1 - p)), 0.05, 0.8, 1.0)
    assert row["sample_size_per_arm"] == math.ceil(nobs1)
    # Cohen's arcsine h (proportion_effectsize) is another effect size: within 5% here, not equal
    cohen = NormalIndPower().solve_power(effect_size=proportion_effectsize(p * 1.1, p), nobs1=None, alpha=0.05,
                                         power=0.8)
    assert abs(cohen / nobs1 - 1) < 0.05


def test_abn_allocation_and_bonferroni_equal_statsmodels(tmp_path):
    split = {"control": 0.5, "b": 0.3, "c": 0.2}
    path = _spec(tmp_path, None, [{"name": "m", "outcome": "y", "mean": 10.0, "sd": 4.0, "mde": 0.05},
                                  {"name": "n", "outcome": "z", "mean": 2.0, "sd": 1.0, "mde": 0.1}],
                 expected_split=split, correction="holm", power=0.9)
    plan = plan_study(path)
    assert plan["alpha_per_test"] == 0.05 / 4 and plan["power"] == 0.9 and plan["data"] is None
    for row in plan["metrics"]:
        ratio = split[row["arm"]] / split["control"]
        nobs1 = 0.5 * units_needed(row["sd"] ** 2, row["mde"] * row["baseline"], plan["multiplier"], 0.5,
                                   split[row["arm"]])
        _equal_statsmodels(nobs1, row["mde"] * row["baseline"] / row["sd"], 0.05 / 4, 0.9, ratio)
        assert row["sample_size_control"] == math.ceil(nobs1)
        assert row["sample_size_per_arm"] == math.ceil(nobs1 * ratio)
        assert row["days"] is None and row["mde_relative"] == row["mde"]


def test_days_from_the_units_per_day_of_the_data(tmp_path):
    df = _frame(n=7000, days=7)
    plan = plan_study(_spec(tmp_path, df, [{"name": "m", "outcome": "revenue", "mde": 0.02}], time="day"))
    row = plan["metrics"][0]
    assert plan["data"]["days"] == 7 and plan["data"]["units_per_day"] == 1000
    assert row["days"] == math.ceil(row["sample_size_total"] / 1000)


def test_with_a_variant_column_the_control_arm_gives_the_variance(tmp_path):
    df = _frame(arms=True)
    row = plan_study(_spec(tmp_path, df, [{"name": "m", "outcome": "revenue", "mde": 0.05}]))["metrics"][0]
    control = df.loc[df["variant"] == "control", "revenue"]
    assert row["sd"] == pytest.approx(control.std(ddof=1), rel=1e-12)
    assert row["n_control"] == len(control) and row["n_arm"] == len(df) - len(control)


# ---------------------------------------------------------------- the command


def test_plan_json_shape_and_table(tmp_path):
    path = _spec(tmp_path, _frame(), [{"name": "revenue", "outcome": "revenue", "mde": 0.05}])
    res = runner.invoke(app, ["plan", str(path), "--format", "json"])
    assert res.exit_code == 0, res.output
    plan = json.loads(res.stdout)
    assert plan["schema"] == PLAN_SCHEMA and plan["study"] == "plan-test"
    assert {"name", "arm", "sample_size_per_arm", "mde_absolute", "mde_relative", "days"} <= set(plan["metrics"][0])
    out = tmp_path / "plan.txt"
    res = runner.invoke(app, ["plan", str(path), "--output", str(out)])
    assert res.exit_code == 0
    text = out.read_text()
    assert "metric" in text and "n arm" in text and "revenue" in text


def test_plan_refuses_other_designs_and_missing_keys(tmp_path):
    spec = {"version": 1, "data": {"path": "x.csv"}, "treatment": "t", "outcome": "y", "covariates": ["a"],
            "design": {"method": "matching"}}
    other = tmp_path / "m.yaml"
    other.write_text(yaml.safe_dump(spec))
    res = runner.invoke(app, ["plan", str(other)])
    assert res.exit_code == 2 and "plan is for method: experiment" in res.stderr
    no_mde = _spec(tmp_path, None, [{"name": "m", "outcome": "y", "mean": 1.0, "sd": 1.0}])
    res = runner.invoke(app, ["plan", str(no_mde)])
    assert res.exit_code == 2 and "design.metrics[0].mde" in res.stderr
    no_column = _spec(tmp_path, _frame(), [{"name": "m", "outcome": "missing", "mde": 0.1}])
    res = runner.invoke(app, ["plan", str(no_column)])
    assert res.exit_code == 2 and ".mean and .sd" in res.stderr


def test_zero_variance_is_a_data_error(tmp_path):
    df = _frame()
    df["flat"] = 3.0
    res = runner.invoke(app, ["plan", str(_spec(tmp_path, df, [{"name": "m", "outcome": "flat", "mde": 0.1}]))])
    assert res.exit_code == 3 and "zero variance" in res.stderr


def test_three_arm_results_data_plans_each_arm_against_control():
    from tests.conftest import SPECS

    plan = plan_study(SPECS / "ab_test.yaml", ["design.power=0.9"])
    assert list(plan["allocation"]) == ["control", "new_feed", "new_feed_plus"] and plan["power"] == 0.9
    assert plan["alpha_per_test"] == 0.05 / 4 and plan["data"]["variant_column"] is True
    rows = {(m["name"], m["arm"]): m for m in plan["metrics"]}
    assert set(rows) == {(n, a) for n in ("revenue", "watch_per_session") for a in ("new_feed", "new_feed_plus")}
    revenue = rows[("revenue", "new_feed")]
    assert revenue["adjustment"] == "cuped" and 0 < revenue["variance_reduction"] < 1
    assert rows[("watch_per_session", "new_feed")]["kind"] == "ratio"
    k = plan["multiplier"]
    assert revenue["mde_absolute"] == pytest.approx(
        detectable_effect(revenue["sd"] ** 2, revenue["n_control"], revenue["n_arm"], k), rel=1e-15)
    # the same digits on a rerun (exact sums, whatever the order DuckDB's threads add rows in)
    assert plan_study(SPECS / "ab_test.yaml", ["design.power=0.9"]) == plan


def test_a_zero_baseline_says_which_key_to_change(tmp_path):
    # from the spec: mean 0 is the user's own value, so the advice is to change it (exit 2), not to give it
    given = _spec(tmp_path, None, [{"name": "m", "outcome": "y", "mean": 0.0, "sd": 1.0, "mde": 0.05}])
    res = runner.invoke(app, ["plan", str(given)])
    assert res.exit_code == 2 and "design.metrics[0].mean" in res.stderr and "is 0" in res.stderr
    # from the data: mean alone is refused without sd, so the advice names both
    df = _frame()
    df["centred"] = np.tile([-1.5, 1.5], len(df) // 2)  # mean exactly 0, variance 2.25
    read = _spec(tmp_path, df, [{"name": "m", "outcome": "centred", "mde": 0.05}])
    res = runner.invoke(app, ["plan", str(read)])
    assert res.exit_code == 3 and "design.metrics[0].mean and .sd" in res.stderr


def test_a_data_mean_that_is_zero_up_to_rounding_is_refused_not_sized(tmp_path):
    # a centred column's mean is rounding noise (~1e-15 sd): a relative mde of it asked for ~1e28 units per arm
    df = _frame()
    df["centred"] = df["revenue"] - df["revenue"].mean()
    baseline = df["centred"].mean()
    assert baseline != 0 and abs(baseline) < 1e-9 * df["centred"].std()
    res = runner.invoke(app, ["plan", str(_spec(tmp_path, df, [{"name": "m", "outcome": "centred", "mde": 0.05}]))])
    assert res.exit_code == 3 and "0 up to rounding" in res.stderr and ".mean and .sd" in res.stderr
    # a small mean that is not noise still plans: a rate of 1e-4 with sd 1e-2 is an ordinary metric
    df["rare"] = df["revenue"] / df["revenue"].std() * 1e-2
    df["rare"] += 1e-4 - df["rare"].mean()
    row = plan_study(_spec(tmp_path, df, [{"name": "m", "outcome": "rare", "mde": 0.5}]))["metrics"][0]
    assert row["baseline"] == pytest.approx(1e-4, rel=1e-9) and row["sample_size_per_arm"] > 0


def test_the_table_shows_the_control_size_of_an_unequal_split(tmp_path):
    # with 40/35/25 the control needs more units than either arm: the table must show it, not only the arm's
    path = _spec(tmp_path, None, [{"name": "m", "outcome": "y", "mean": 10.0, "sd": 4.0, "mde": 0.05}],
                 expected_split={"control": 0.4, "b": 0.35, "c": 0.25})
    res = runner.invoke(app, ["plan", str(path)])
    assert res.exit_code == 0, res.output
    plan = plan_study(path)
    lines = res.stdout.splitlines()
    assert "n control" in lines[1]
    for row in plan["metrics"]:
        cells = next(line for line in lines if line.split()[:2] == ["m", row["arm"]]).split()
        assert row["sample_size_control"] > row["sample_size_per_arm"]
        assert f"{row['sample_size_control']:,}" in cells and f"{row['sample_size_per_arm']:,}" in cells
