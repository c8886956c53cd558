"""Quantile metrics of experiments (issue 17, point 3): `design.metrics[].quantile`.

The quantile is numpy's ``quantile(method="inverted_cdf")``; the interval is the order-statistic one
GrowthBook documents (causalcli/designs/experiment/quantile.py). Tolerances:
* order statistics are values of the data: compared with ``==``;
* HAND = 1e-12: effects and intervals computed by hand from the formula (a few floating-point operations);
* GBSTATS = 1e-9: gbstats on the same order statistics (scipy's t quantile, the same formulas).
"""

from __future__ import annotations

import json
import math
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
import yaml

from causalcli.designs.experiment import quantile as quantile_module
from causalcli.designs.experiment.quantile import ArmQuantile, interval_levels, minimum_units, ranks_for
from causalcli.study.run import run_study
from tests.conftest import invoke

HAND = 1e-12
GBSTATS = 1e-9
Z95 = 1.959963984540054  # the normal quantile at 0.975


def spec(path: Path, metrics: list[dict], **design) -> dict:
    return {"version": 1, "name": "quantiles", "data": {"path": str(path)}, "treatment": "variant",
            "design": {"method": "experiment", "control": "control", "metrics": metrics, **design}}


def effects(result) -> dict:
    return {e.label: e for e in result.effects}


def by_metric(result) -> dict:
    return {(m["metric"], m["arm"]): m for m in result.diagnostics["metrics"]}


# ---------------------------------------------------------------- by hand


@pytest.fixture
def small_csv(tmp_path: Path) -> Path:
    """Control 1..20 and treatment 2, 4, .., 40, shuffled together."""
    rng = np.random.default_rng(0)
    values = np.r_[np.arange(1, 21), 2 * np.arange(1, 21)].astype(float)
    arms = np.array(["control"] * 20 + ["treatment"] * 20)
    order = rng.permutation(40)
    path = tmp_path / "small.csv"
    pd.DataFrame({"variant": arms[order], "y": values[order]}).to_csv(path, index=False)
    return path


def test_median_difference_and_interval_by_hand(small_csv):
    """n = 20 per arm, q = 0.5: h = z sqrt(0.25 / 20) = 0.21913, levels 0.28087 and 0.71913, ranks
    ceil(5.617) = 6, ceil(10) = 10 and ceil(14.383) = 15. Control: L, Q, U = 6, 10, 15; treatment: 12, 20, 30.
    SE_c = 9 / (2z), SE_t = 18 / (2z): the absolute effect 10 has the interval 10 +/- sqrt(81 + 324) / 2, and the
    relative effect 20 / 10 - 1 = 1 has SE^2 = SE_t^2 / 10^2 + 20^2 SE_c^2 / 10^4, interval 1 +/- sqrt(6.48) / 2."""
    res = run_study(spec(small_csv, [{"name": "p50", "outcome": "y", "quantile": 0.5}],
                         options={"distribution": "normal"}, correction="none"))
    e = effects(res)
    row = by_metric(res)[("p50", "treatment")]
    assert row["control"]["ranks"] == {"lower": 6, "quantile": 10, "upper": 15}
    assert row["control"]["order_statistics"] == {"lower": 6.0, "quantile": 10.0, "upper": 15.0}
    assert row["treatment"]["order_statistics"] == {"lower": 12.0, "quantile": 20.0, "upper": 30.0}
    assert row["control"]["std_error"] == pytest.approx(9 / (2 * Z95), rel=HAND)
    a = e["p50/treatment/abs"]
    assert a.value == 10.0
    assert a.std_error == pytest.approx(math.sqrt(405) / (2 * Z95), rel=HAND)
    assert (a.ci_lower, a.ci_upper) == pytest.approx((10 - math.sqrt(405) / 2, 10 + math.sqrt(405) / 2), rel=HAND)
    p = math.erfc(10 / a.std_error / math.sqrt(2))
    assert a.p_value == pytest.approx(p, rel=1e-9)
    r = e["p50/treatment/rel"]
    assert r.value == 1.0
    assert r.std_error == pytest.approx(math.sqrt(6.48) / (2 * Z95), rel=HAND)
    assert (r.ci_lower, r.ci_upper) == pytest.approx((1 - math.sqrt(6.48) / 2, 1 + math.sqrt(6.48) / 2), rel=HAND)
    assert a.inference == "quantile_order_statistics+welch_z"
    assert res.estimate.value == 10.0  # the first metric's absolute effect is the headline


def test_student_t_uses_welch_degrees_of_freedom(small_csv):
    """distribution: t (the default): Welch's df from the arms' squared errors a = 18^2, b = 9^2 (over 4 z^2):
    df = 19 (a + b)^2 / (a^2 + b^2) = 19 x 405^2 / (324^2 + 81^2)."""
    from scipy import stats

    res = run_study(spec(small_csv, [{"name": "p50", "outcome": "y", "quantile": 0.5}]))
    df = 19 * 405 ** 2 / (324 ** 2 + 81 ** 2)
    a = effects(res)["p50/treatment/abs"]
    assert by_metric(res)[("p50", "treatment")]["df"] == pytest.approx(df, rel=HAND)
    half = stats.t.ppf(0.975, df) * math.sqrt(405) / (2 * Z95)
    assert (a.ci_lower, a.ci_upper) == pytest.approx((10 - half, 10 + half), rel=1e-9)
    assert a.inference.startswith("quantile_order_statistics+welch_t")


def test_ranks_and_the_smallest_arm_follow_the_formula():
    # q = 0.99, 95%: n > z^2 x 99 = 380.3; at n = 381 the upper level is below 1
    assert minimum_units(0.99, Z95) == 381
    assert ranks_for(380, 0.99, Z95) is None and ranks_for(381, 0.99, Z95) is not None
    assert minimum_units(0.5, Z95) == 4  # n > z^2 = 3.84
    lower, upper = interval_levels(1000, 0.9, Z95)
    assert ranks_for(1000, 0.9, Z95) == (math.ceil(1000 * lower), 900, math.ceil(1000 * upper))
    arm = ArmQuantile(1000, 0.9, (882, 900, 919), (1.0, 2.0, 1.0 + 2 * Z95), Z95)
    assert arm.estimate == 2.0 and arm.std_error == pytest.approx(1.0, rel=HAND)


# ---------------------------------------------------------------- numpy's definition, exactly


def awkward(n: int, seed: int) -> pd.DataFrame:
    """Ties, negatives, a heavy tail, missing values, and three arms of unequal sizes."""
    rng = np.random.default_rng(seed)
    arm = rng.choice(["control", "a", "b"], n, p=[0.5, 0.3, 0.2])
    y = rng.lognormal(0, 1.5, n) * np.where(arm == "a", 1.2, 1.0) - 1.0
    y[rng.random(n) < 0.05] = np.nan
    ties = np.where(rng.random(n) < 0.3, 0.0, np.round(y, 1))  # a third of the values are exactly zero
    return pd.DataFrame({"variant": arm, "y": y, "ties": ties})


def numpy_order_statistics(values: np.ndarray, q: float) -> dict[str, float]:
    values = values[~np.isnan(values)]
    lower, upper = interval_levels(len(values), q, Z95)
    got = np.quantile(values, [lower, q, upper], method="inverted_cdf")
    return {"lower": float(got[0]), "quantile": float(got[1]), "upper": float(got[2])}


QUANTILE_METRICS = [{"name": "p50", "outcome": "y", "quantile": 0.5},
                    {"name": "p90", "outcome": "y", "quantile": 0.9},
                    {"name": "p99", "outcome": "y", "quantile": 0.99},
                    {"name": "p37_ties", "outcome": "ties", "quantile": 0.37}]


@pytest.mark.parametrize("fetch_rows, bins", [(10_000, 4096), (20, 4)])  # fetched at once; many histogram passes
def test_order_statistics_equal_numpy_inverted_cdf(tmp_path, monkeypatch, fetch_rows, bins):
    monkeypatch.setattr(quantile_module, "FETCH_ROWS", fetch_rows)
    monkeypatch.setattr(quantile_module, "BINS", bins)
    monkeypatch.setattr(quantile_module, "FIRST_BINS", 4 * bins)
    df = awkward(6000, seed=2)
    path = tmp_path / "awkward.csv"
    df.to_csv(path, index=False)
    res = run_study(spec(path, [{"name": "mean", "outcome": "y"}, *QUANTILE_METRICS]))
    rows = by_metric(res)
    for m in QUANTILE_METRICS:
        for arm in ("a", "b"):
            row = rows[(m["name"], arm)]
            for side, name in (("control", "control"), ("treatment", arm)):
                values = df.loc[df.variant == name, m["outcome"]].to_numpy()
                assert row[side]["order_statistics"] == numpy_order_statistics(values, m["quantile"]), (m, arm, side)
                assert row[side]["n"] == int((~np.isnan(values)).sum())
            assert effects(res)[f"{m['name']}/{arm}/abs"].value == \
                row["treatment"]["quantile"] - row["control"]["quantile"]
    passes = res.diagnostics["quantiles"]["passes"]
    # two columns; with 4 bins and windows of 20 values, many passes
    # the first histogram comes out of the statistics pass (not counted): a fetch per column at 10,000 rows
    assert passes <= 2 if fetch_rows == 10_000 else passes > 6
    targets = 3 * 3 * 3 + 3 * 1  # ranks x arms x metrics on y, and on ties
    assert res.diagnostics["quantiles"]["fetched_values"] <= targets * fetch_rows


def test_the_passes_take_a_grouping_and_a_condition_for_segments(monkeypatch):
    """order_statistics by (arm, segment) under a WHERE, without a starting range (one more pass finds it)."""
    import duckdb

    from causalcli.data.table import Table
    from causalcli.designs.experiment.quantile import order_statistics

    monkeypatch.setattr(quantile_module, "FETCH_ROWS", 5)
    monkeypatch.setattr(quantile_module, "FIRST_BINS", 8)
    monkeypatch.setattr(quantile_module, "BINS", 4)
    rng = np.random.default_rng(8)
    n = 900
    df = pd.DataFrame({"arm": rng.integers(0, 2, n), "country": rng.choice(["de", "fr", None], n),
                       "y": rng.gamma(2.0, 3.0, n), "keep": rng.random(n) < 0.8})
    con = duckdb.connect()
    con.register("frame", df)
    con.execute("CREATE VIEW study_data AS SELECT * FROM frame")
    table = Table(con, "frame", n, {"arm": "BIGINT", "country": "VARCHAR", "y": "DOUBLE", "keep": "BOOLEAN"})
    got = order_statistics(table, ["arm", "country"], "y", lambda group, size: [1, size // 2, size], where="keep")
    kept = df[df.keep]
    assert got.passes > 3
    assert len(got.counts) == 6  # 2 arms x (de, fr, missing country)
    for (arm, country), size in got.counts.items():
        ys = np.sort(kept.y[(kept.arm == arm) & (kept.country.isna() if country is None else kept.country == country)])
        assert size == len(ys)
        assert got.values[(arm, country)] == {1: ys[0], size // 2: ys[size // 2 - 1], size: ys[-1]}


def test_extreme_values_are_found_exactly(tmp_path, monkeypatch):
    """Huge, tiny (subnormal) and signed-zero values, on Parquet, through many
    histogram passes."""
    monkeypatch.setattr(quantile_module, "FETCH_ROWS", 3)
    monkeypatch.setattr(quantile_module, "BINS", 4)
    rng = np.random.default_rng(4)
    specials = np.array([1e40, -1e40, 5e-324, 1e-320, -5e-324, 0.0, -0.0, 1e-300, 2.5, 2.5000000000000004])
    n = 400
    y = rng.choice(specials, n)
    arm = np.where(np.arange(n) % 2 == 0, "control", "treatment")
    path = tmp_path / "extreme.parquet"
    pq.write_table(pa.table({"variant": arm, "y": y}), path)
    metrics = [{"name": f"q{q}", "outcome": "y", "quantile": q} for q in (0.1, 0.3, 0.5, 0.7, 0.9)]
    res = run_study(spec(path, metrics))
    for m in metrics:
        row = by_metric(res)[(m["name"], "treatment")]
        for side, name in (("control", "control"), ("treatment", "treatment")):
            assert row[side]["order_statistics"] == numpy_order_statistics(y[arm == name], m["quantile"])


def test_a_value_repeated_around_the_quantile_warns_of_a_zero_width_interval(tmp_path):
    n = 400
    arm = np.where(np.arange(n) % 2 == 0, "control", "treatment")
    y = np.where(np.arange(n) % 10 == 0, 5.0, 0.0)  # 90% zeros: the median and its order statistics are 0
    path = tmp_path / "zeros.csv"
    pd.DataFrame({"variant": arm, "y": y}).to_csv(path, index=False)
    res = run_study(spec(path, [{"name": "p50", "outcome": "y", "quantile": 0.5}]))
    a = effects(res)["p50/treatment/abs"]
    assert a.value == 0.0 and a.std_error == 0.0 and math.isnan(a.p_value)
    assert any("zero width" in w for w in res.warnings)


def test_quantile_metrics_are_not_capped_and_leave_other_metrics_as_they_were(tmp_path):
    df = awkward(3000, seed=5)
    path = tmp_path / "d.csv"
    df.to_csv(path, index=False)
    plain = [{"name": "mean", "outcome": "y"}, {"name": "ratio", "numerator": "y", "denominator": "ties"}]
    before = run_study(spec(path, plain, options={"cap_quantile": 0.95}))
    after = run_study(spec(path, [*plain, {"name": "p99", "outcome": "y", "quantile": 0.99}],
                           options={"cap_quantile": 0.95}, correction="none"))
    for label in ("mean/a/abs", "ratio/b/rel"):
        assert effects(after)[label].value == effects(before)[label].value
    row = by_metric(after)[("p99", "a")]
    raw = df.loc[df.variant == "a", "y"].to_numpy()
    assert row["treatment"]["order_statistics"] == numpy_order_statistics(raw, 0.99)  # above the 0.95 cap
    assert after.diagnostics["quantiles"]["capped"] is False


@pytest.mark.parametrize("margin, passed", [(0.01, False), (0.5, True)])
def test_a_quantile_guardrail_reads_the_relative_change_of_the_quantile(tmp_path, margin, passed):
    """Treatment multiplies every value by 1.2: its P90 is about 20% higher, a harm beyond 1% and within 50%."""
    rng = np.random.default_rng(9)
    arm = rng.choice(["control", "treatment"], 4000)
    path = tmp_path / "latency.csv"
    pd.DataFrame({"variant": arm, "y": rng.lognormal(0, 1, 4000) * np.where(arm == "treatment", 1.2, 1.0)}).to_csv(
        path, index=False)
    res = run_study(spec(path, [{"name": "p90", "outcome": "y", "quantile": 0.9,
                                 "guardrail": {"direction": "increase_is_bad", "margin": margin}}]))
    check = next(c for c in res.checks if c.name == "guardrail:p90")
    assert check.passed is passed
    assert 0.1 < effects(res)["p90/treatment/rel"].value < 0.3


# ---------------------------------------------------------------- GrowthBook


@pytest.mark.peer
def test_equal_to_gbstats_on_the_same_order_statistics(tmp_path):
    """gbstats 0.8's QuantileStatistic and two-sided t-test on our order statistics.

    gbstats' code multiplies the documented variance ((U - L) / 2z)^2 by (n - 1) / n (its per-unit
    variance is (n - 1) ((U - L) / 2z)^2, later divided by n); we follow the documentation. The upper
    order statistic handed to gbstats is moved so that U - L grows by sqrt(n / (n - 1)), which cancels that
    factor: what remains to compare is the difference, Welch's df, the t interval and the delta method."""
    from gbstats.frequentist.tests import FrequentistConfig, TwoSidedTTest
    from gbstats.models.statistics import QuantileStatistic

    rng = np.random.default_rng(3)
    arm = rng.choice(["control", "a"], 8000)
    path = tmp_path / "d.csv"
    pd.DataFrame({"variant": arm, "y": rng.lognormal(np.where(arm == "a", 0.1, 0.0), 1.0)}).to_csv(path, index=False)
    res = run_study(spec(path, QUANTILE_METRICS[:3], correction="none"))
    for m in QUANTILE_METRICS[:3]:
        row = by_metric(res)[(m["name"], "a")]

        def stat(side: dict) -> QuantileStatistic:
            o, n = side["order_statistics"], side["n"]
            upper = o["lower"] + (o["upper"] - o["lower"]) * math.sqrt(n / (n - 1))
            return QuantileStatistic(n=n, n_star=n, nu=m["quantile"], quantile_hat=o["quantile"],
                                     quantile_lower=o["lower"], quantile_upper=upper)

        ours = effects(res)
        for kind in ("absolute", "relative"):
            test = TwoSidedTTest(stat(row["control"]), stat(row["treatment"]),
                                 FrequentistConfig(difference_type=kind))
            got = ours[f"{m['name']}/a/{kind[:3]}"]
            out = test.compute_result()
            assert got.value == pytest.approx(out.expected, rel=GBSTATS)
            assert got.std_error == pytest.approx(out.uplift.stddev, rel=GBSTATS)
            if kind == "absolute":  # gbstats takes the absolute effect's df for the relative one too
                assert [got.ci_lower, got.ci_upper] == pytest.approx(out.ci, rel=GBSTATS)
                assert got.p_value == pytest.approx(out.p_value, rel=1e-6)


# ---------------------------------------------------------------- bad input


@pytest.mark.parametrize("metric, design, code, needle", [
    ({"quantile": 1.5}, {}, 2, "strictly between 0 and 1"),
    ({"quantile": 0}, {}, 2, "strictly between 0 and 1"),
    ({"quantile": 90}, {}, 2, "did you mean 0.9?"),
    ({"quantile": 0.5, "covariate": "ties"}, {}, 2, "CUPED"),
    ({"quantile": 0.5, "outcome": None, "numerator": "y", "denominator": "ties"}, {}, 2, "quantiles of ratios"),
    ({"quantile": 0.999}, {}, 3, "needs at least 3838"),  # z^2 x 999 = 3837.6
    ({"quantile": 0.5}, {"time": "day"}, 2, "list a mean or ratio metric first"),
])
def test_bad_input_is_one_line_with_its_exit_code(tmp_path, runner, write_spec, metric, design, code, needle):
    df = awkward(2000, seed=1)
    df["day"] = np.arange(len(df)) % 5 + 1
    path = tmp_path / "bad.csv"
    df.to_csv(path, index=False)
    m = {k: v for k, v in {"name": "q", "outcome": "y", **metric}.items() if v is not None}
    res = invoke(runner, ["estimate", str(write_spec(spec(path, [m], **design))), "--format", "json"])
    assert res.exit_code == code, (res.exit_code, res.stderr)
    err = res.stderr.strip()
    assert needle in err and "\n" not in err and "Traceback" not in err


def test_segments_with_a_quantile_metric_give_effects_by_value(tmp_path, runner, write_spec):
    """Refused before issue 17 point 7; exactness by segment: tests/test_experiment_quantile_scale.py."""
    df = awkward(600, seed=1)
    df["country"] = np.where(np.arange(len(df)) % 2 == 0, "de", "fr")
    path = tmp_path / "seg.csv"
    df.to_csv(path, index=False)
    s = {**spec(path, [{"name": "q", "outcome": "y", "quantile": 0.5}]), "segments": ["country"]}
    res = invoke(runner, ["estimate", str(write_spec(s)), "--format", "json"])
    assert res.exit_code in (0, 1), res.stderr
    labels = {e["label"] for e in json.loads(res.stdout)["effects"]}
    assert {"q/a/abs/country=de", "q/b/rel/country=fr"} <= labels


def test_plan_refuses_a_quantile_metric(tmp_path, runner, write_spec):
    s = spec(tmp_path / "none.csv", [{"name": "q", "outcome": "y", "quantile": 0.9, "mde": 0.05, "mean": 1.0,
                                      "sd": 1.0}])
    res = invoke(runner, ["plan", str(write_spec(s))])
    assert res.exit_code == 2 and "plan does not size quantile metrics" in res.stderr


def test_a_spec_without_quantile_dumps_as_before():
    from causalcli.designs.experiment.spec import Metric

    assert "quantile" not in Metric(name="m", outcome="y").model_dump()
    assert Metric(name="m", outcome="y", quantile=0.9).model_dump()["quantile"] == 0.9


# ---------------------------------------------------------------- engines


@pytest.mark.engines
@pytest.mark.xdist_group("spark")
def test_postgres_and_spark_give_the_same_json_as_duckdb(tmp_path, monkeypatch, runner, spark, postgres_url):
    """The passes' SQL, written once for DuckDB, rendered for PostgreSQL and Spark: the histogram passes are
    forced (few rows fetched per window) so that every query runs there."""
    from tests.engines import load_postgres, register_spark
    from tests.test_engines import ENV, differences, estimate

    monkeypatch.setattr(quantile_module, "FETCH_ROWS", 30)
    monkeypatch.setattr(quantile_module, "BINS", 16)
    monkeypatch.setattr(quantile_module, "FIRST_BINS", 16)
    monkeypatch.setenv(ENV, postgres_url)
    df = awkward(3000, seed=6)
    df["cont"] = np.random.default_rng(7).lognormal(0, 1, len(df))  # no ties: the last windows are fetched
    path = tmp_path / "q.parquet"
    df.to_parquet(path, index=False)
    arrow = pq.read_table(path)
    load_postgres(postgres_url, "quantiles", arrow)
    register_spark("quantiles", arrow)
    metrics = [{"name": "mean", "outcome": "y"}, QUANTILE_METRICS[1], {"name": "p75", "outcome": "cont", "quantile": 0.75}]
    results = []
    for name, data in [("file", {"path": str(path)}),
                       ("pg", {"backend": "postgres", "table": "quantiles", "connection_env": ENV}),
                       ("spark", {"backend": "spark", "table": "quantiles"})]:
        s = {**spec(path, metrics), "data": data}
        file = tmp_path / f"{name}.yaml"
        file.write_text(yaml.safe_dump(s))
        code, got, err = estimate(runner, file)
        assert code == 0, (name, err)
        results.append(got)
    how = results[0]["diagnostics"]["quantiles"]
    assert how["passes"] > 2 * 2 and how["fetched_values"] > 0  # histogram passes after the first, and a fetch
    for other in results[1:]:
        assert not differences(other, results[0]), differences(other, results[0])[:5]
    assert results[1]["provenance"]["fetched_rows"] < 2000  # counts, target bins and a few windows' values


# ---------------------------------------------------------------- coverage (slow)


def _coverage(q: float, n_control: int, n_treatment: int, draws: int, seed: int) -> float:
    """Share of draws whose 95% interval holds the true difference of lognormal quantiles.

    Vectorised: the same ranks (ranks_for) and standard errors (ArmQuantile) as the design, on arrays of
    draws; the interval is the normal one (Welch's df exceed 1,000 here, where t and z agree to 0.05%)."""
    from statistics import NormalDist

    rng = np.random.default_rng(seed)
    zq = NormalDist().inv_cdf(q)
    truth = math.exp(0.1 + 1.2 * zq) - math.exp(zq)  # control lognormal(0, 1), treatment lognormal(0.1, 1.2)
    hits = 0
    chunk = max(1, 4_000_000 // (n_control + n_treatment))
    for start in range(0, draws, chunk):
        size = min(chunk, draws - start)
        arms = []
        for n, mu, sigma in ((n_control, 0.0, 1.0), (n_treatment, 0.1, 1.2)):
            ranks = ranks_for(n, q, Z95)
            x = np.partition(rng.lognormal(mu, sigma, (size, n)), [k - 1 for k in ranks], axis=1)
            arms.append(ArmQuantile(n, q, ranks, tuple(x[:, k - 1] for k in ranks), Z95))
        control, treatment = arms
        se = np.sqrt(control.std_error ** 2 + treatment.std_error ** 2)
        hits += int(np.sum(np.abs(treatment.estimate - control.estimate - truth) <= Z95 * se))
    return hits / draws


@pytest.mark.slow
@pytest.mark.parametrize("q", [0.5, 0.9, 0.99])
@pytest.mark.parametrize("n_control, n_treatment", [(2000, 2000), (5000, 3000), (20000, 20000)])
def test_intervals_cover_the_difference_of_lognormal_quantiles(q, n_control, n_treatment):
    """2,000 simulated experiments per case: the binomial SE of a 95% rate is 0.5 points."""
    rate = _coverage(q, n_control, n_treatment, draws=2000, seed=int(q * 1000) + n_control)
    assert 0.90 <= rate <= 0.97, rate


@pytest.mark.slow
@pytest.mark.parametrize("q, n, low, high", [(0.5, 200, 0.93, 0.97), (0.9, 500, 0.93, 0.97),
                                            (0.99, 1000, 0.96, 0.995)])
def test_small_arms_keep_their_coverage_and_the_far_tail_errs_wide(q, n, low, high):
    """Near the smallest arms the interval allows (381 units at q = 0.99), the far tail's order statistics
    spread out and the interval is conservative (about 98% at 1,000 units per arm): never too narrow."""
    rate = _coverage(q, n, n, draws=2000, seed=11)
    assert low <= rate <= high, rate


def test_a_column_of_quantile_metrics_alone_is_not_summed_by_the_statistics_pass(small_csv, tmp_path):
    """A quantile's counts and order statistics come from aggregates of its own: the pass sums (and centres) a
    column only for the mean, ratio or covariate metrics that read it, and the quantile is the same either way."""
    frame = pd.read_csv(small_csv)
    frame["x"] = np.arange(len(frame), dtype=float)
    path = tmp_path / "two.csv"
    frame.to_csv(path, index=False)
    alone = run_study(spec(path, [{"name": "p50", "outcome": "y", "quantile": 0.5},
                                  {"name": "mean_x", "outcome": "x"}]))
    both = run_study(spec(path, [{"name": "p50", "outcome": "y", "quantile": 0.5},
                                 {"name": "mean_y", "outcome": "y"}]))
    assert set(alone.diagnostics["sufficient_statistics"]["centres"]) == {"x"}
    assert set(both.diagnostics["sufficient_statistics"]["centres"]) == {"y"}
    a, b = effects(alone)["p50/treatment/abs"], effects(both)["p50/treatment/abs"]
    assert (a.value, a.std_error, a.ci_lower, a.ci_upper, a.p_value) == (b.value, b.std_error, b.ci_lower, b.ci_upper,
                                                                         b.p_value)  # adjusted: with another metric's


def test_a_quantile_metric_says_how_many_rows_its_missing_values_leave_out(tmp_path):
    """A quantile column is not summed by the statistics pass, yet its missing values (NULL and NaN) are still
    counted per metric, as for a mean: ``n.missing_in_metric`` and the warning."""
    rng = np.random.default_rng(3)
    n = 400
    frame = pd.DataFrame({"variant": rng.choice(["control", "treatment"], n), "y": rng.lognormal(size=n)})
    frame.loc[rng.random(n) < 0.1, "y"] = np.nan
    frame.loc[:4, "y"] = None
    path = tmp_path / "gaps.parquet"
    frame.to_parquet(path, index=False)
    res = run_study(spec(path, [{"name": "p90", "outcome": "y", "quantile": 0.9}]))
    missing = int(frame["y"].isna().sum())
    assert missing > 5
    assert res.n["missing_in_metric[p90]"] == missing
    assert any(f"metric 'p90' leaves out {missing} of {n} rows" in w for w in res.warnings)


def test_an_arm_without_any_value_of_a_quantile_metric_is_a_data_error(tmp_path):
    """Exit 3 naming the metric and the arm (not an internal error): the quantile passes have no group for an arm
    whose values are all missing."""
    from causalcli.errors import DataError

    rng = np.random.default_rng(4)
    frame = pd.DataFrame({"variant": rng.choice(["control", "treatment"], 300), "y": rng.lognormal(size=300)})
    frame.loc[frame.variant == "treatment", "y"] = np.nan
    path = tmp_path / "empty_arm.csv"
    frame.to_csv(path, index=False)
    with pytest.raises(DataError, match=r"metric 'p90': arm 'treatment' has 0 complete unit\(s\)") as caught:
        run_study(spec(path, [{"name": "p90", "outcome": "y", "quantile": 0.9}]))
    assert caught.value.exit_code == 3 and caught.value.key == "design.metrics[0]"
