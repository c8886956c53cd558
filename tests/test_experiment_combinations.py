"""Experiment features together: sequential testing with proportions, segments and units; units with
segments; quantile metrics refused where they are not built.

Each test states the combination by what must hold: a sequential interval is the fixed-horizon estimate
and standard error of the same effect with a larger critical value (the always-valid multiplier at the
units compared, or the group sequential boundary of the latest look), so its fixed-horizon run is the
reference; a unit-level segment effect is the unit-level study on that segment's rows.

Tolerances: EXACT = 1e-9 relative (the same exact sums in another grouping; pandas' sums for the
proportions' Wald standard error).
"""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest

from causalcli.designs.experiment.sequential import always_valid_multiplier
from causalcli.errors import DataError
from causalcli.study.run import run_study
from tests.conftest import invoke
from tests.test_experiment_units import sessions

EXACT = 1e-9
ALPHA, TUNING = 0.05, 5000


def by_label(result) -> dict:
    return {e.label: e for e in result.effects}


def ab_data(n: int = 3000, seed: int = 5) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    arm = rng.integers(0, 2, n)
    return pd.DataFrame({"variant": arm, "y": rng.normal(0, 1, n) + 0.1 * arm,
                         "bought": (rng.random(n) < 0.1 + 0.02 * arm).astype(int),
                         "country": rng.choice(["DE", "FR", "US"], n), "day": rng.integers(1, 8, n)})


@pytest.fixture(scope="module")
def ab_file(tmp_path_factory):
    df = ab_data()
    path = tmp_path_factory.mktemp("combo") / "ab.csv"
    df.to_csv(path, index=False)
    return path, df


def ab_spec(path, sequential=None, segments=(), **design) -> dict:
    d = {"method": "experiment", "control": 0, "correction": "none",
         "metrics": [{"name": "y", "outcome": "y"}, {"name": "bought", "outcome": "bought"}], **design}
    if sequential is not None:
        d["sequential"] = sequential
    return {"version": 1, "name": "combo", "data": {"path": str(path)}, "treatment": "variant",
            "segments": list(segments), "design": d}


def half_width(e) -> float:
    return (e.ci_upper - e.ci_lower) / 2


# ---------------------------------------------------------------- sequential x proportions


def test_a_sequential_proportion_keeps_the_wald_standard_error(ab_file):
    path, df = ab_file
    fixed = by_label(run_study(ab_spec(path)))["bought/1/abs"]
    seq = by_label(run_study(ab_spec(path, {"method": "always_valid"})))["bought/1/abs"]
    assert fixed.inference.split(";")[0] == "difference_in_proportions_wald"
    assert seq.inference.split(";")[0] == "always_valid"
    c, t = (df.loc[df.variant == v, "bought"] for v in (0, 1))
    wald = math.sqrt(c.mean() * (1 - c.mean()) / len(c) + t.mean() * (1 - t.mean()) / len(t))  # divisor n
    assert seq.std_error == pytest.approx(wald, rel=EXACT) and fixed.std_error == pytest.approx(wald, rel=EXACT)
    assert seq.value == fixed.value
    assert half_width(seq) == pytest.approx(always_valid_multiplier(len(df), ALPHA, TUNING) * wald, rel=EXACT)


# ---------------------------------------------------------------- sequential x segments


@pytest.mark.parametrize("method", ["always_valid", "group_sequential"])
def test_segment_effects_are_sequential_at_the_segment_s_units_or_the_latest_boundary(ab_file, method):
    path, df = ab_file
    sequential = {"method": method} | ({"looks": 7} if method == "group_sequential" else {})
    design = {"time": "day"} if method == "group_sequential" else {}
    fixed = by_label(run_study(ab_spec(path, segments=["country"], **design)))
    result = run_study(ab_spec(path, sequential, segments=["country"], **design))
    got = by_label(result)
    segment_labels = [label for label in got if "country=" in label]
    assert len(segment_labels) == 2 * 2 * 3  # metrics x (abs, rel) x countries
    for label in segment_labels:
        e, want = got[label], fixed[label]
        value = label.split("=")[1]
        assert e.inference.split(";")[0].endswith(method if method == "always_valid" else "obrien_fleming")
        assert (e.value, e.std_error) == pytest.approx((want.value, want.std_error), rel=EXACT)
        if "/rel/" in label:
            continue  # the relative interval: the same critical value, on the delta method's scale
        if method == "always_valid":
            crit = always_valid_multiplier(int((df.country == value).sum()), ALPHA, TUNING)
        else:
            crit = result.diagnostics["sequential"]["boundaries"][-1]
        assert half_width(e) == pytest.approx(crit * e.std_error, rel=EXACT), label
        assert half_width(e) > half_width(want)


# ---------------------------------------------------------------- units x segments, units x sequential


@pytest.fixture(scope="module")
def unit_file(tmp_path_factory):
    df = sessions(units_per_arm=150, seed=2)
    rng = np.random.default_rng(7)
    users = np.sort(df.user.unique())
    df["country"] = df.user.map(dict(zip(users, rng.choice(["DE", "FR"], len(users)))))
    path = tmp_path_factory.mktemp("units_combo") / "s.parquet"
    df.to_parquet(path, index=False)
    return path, df


def unit_spec(path, **design) -> dict:
    d = {"method": "experiment", "control": 0, "unit": "user", "correction": "none",
         "metrics": [{"name": "y", "outcome": "y"}, {"name": "ctr", "numerator": "num", "denominator": "den"}],
         **design}
    return {"version": 1, "name": "units", "data": {"path": str(path)}, "treatment": "variant", "design": d}


def test_a_unit_segment_effect_is_the_unit_study_on_that_segment_s_rows(unit_file):
    path, _ = unit_file
    result = run_study({**unit_spec(path), "segments": ["country"]})
    got = by_label(result)
    for value in ("DE", "FR"):
        only = unit_spec(path)
        only["data"]["filter"] = f"country = '{value}'"
        for label, want in by_label(run_study(only)).items():
            metric, arm, kind = label.split("/")
            seg = got[f"{metric}/{arm}/{kind}/country={value}"]
            for field in ("value", "std_error", "ci_lower", "ci_upper", "p_value"):
                assert getattr(seg, field) == pytest.approx(getattr(want, field), rel=EXACT), (label, field)
            assert "clustered_by_unit" in seg.inference
    units = result.diagnostics["segments"]["units"]["country"]
    assert sum(sum(arms.values()) for arms in units.values()) == result.diagnostics["unit"]["units"]


def test_a_segment_that_varies_within_a_unit_is_exit_3_naming_it(unit_file, tmp_path):
    _, df = unit_file
    df = df.assign(platform=np.where(np.arange(len(df)) % 2 == 0, "ios", "web"))
    path = tmp_path / "varying.parquet"
    df.to_parquet(path, index=False)
    with pytest.raises(DataError) as err:
        run_study({**unit_spec(path), "segments": ["country", "platform"]})
    message = str(err.value)
    assert err.value.exit_code == 3 and "segments[1]" in message and "'platform'" in message
    assert "property of the unit" in message and "\n" not in message


def test_always_valid_with_units_counts_units_not_rows(unit_file):
    path, df = unit_file
    fixed = by_label(run_study(unit_spec(path)))
    got = by_label(run_study(unit_spec(path, sequential={"method": "always_valid"})))
    units = df.user.nunique()
    assert units < len(df)
    for label in ("y/1/abs", "ctr/1/abs"):
        e = got[label]
        assert e.inference.split(";")[0] == "delta_method+clustered_by_unit+always_valid"
        assert e.std_error == pytest.approx(fixed[label].std_error, rel=EXACT)
        assert half_width(e) == pytest.approx(always_valid_multiplier(units, ALPHA, TUNING) * e.std_error, rel=EXACT)


def test_group_sequential_with_units_takes_each_unit_at_its_first_exposure(unit_file):
    path, df = unit_file
    result = run_study(unit_spec(path, time="day", sequential={"method": "group_sequential", "looks": 7}))
    first = df.groupby("user").day.min()
    by_day = first.value_counts().sort_index().cumsum()
    assert result.diagnostics["sequential"]["information_fractions"] == pytest.approx(
        list(by_day / by_day.iloc[-1]), rel=EXACT)
    points = result.diagnostics["cumulative"]
    assert [p["n_control"] + p["n_treatment"] for p in points] == list(by_day)
    assert all(p["sequential_lower"] <= p["ci_lower"] for p in points if p["std_error"] is not None)


def test_a_0_1_outcome_with_units_is_a_ratio_of_unit_sums_not_a_proportion(unit_file, tmp_path):
    _, df = unit_file
    path = tmp_path / "bought.parquet"
    df.assign(bought=(df.y > 5).astype(int)).to_parquet(path, index=False)
    e = by_label(run_study(unit_spec(path, metrics=[{"name": "bought", "outcome": "bought"}])))["bought/1/abs"]
    assert e.inference.split(";")[0] == "delta_method+clustered_by_unit+welch_t"


@pytest.mark.engines
@pytest.mark.xdist_group("spark")
def test_units_segments_and_sequential_in_postgres_and_spark_give_the_file_s_json(unit_file, spark, postgres_url,
                                                                                 runner, tmp_path, monkeypatch):
    """The GROUP BY view carrying a segment and the first exposure renders for PostgreSQL and Spark: the same
    JSON (numbers to 1e-9, tests/test_engines.differences) as DuckDB on the file."""
    import pyarrow.parquet as pq
    import yaml

    from tests.engines import load_postgres, register_spark
    from tests.test_engines import ENV, differences, estimate

    path, _ = unit_file
    monkeypatch.setenv(ENV, postgres_url)
    arrow = pq.read_table(path)
    load_postgres(postgres_url, "sessions_combo", arrow)
    register_spark("sessions_combo", arrow)
    design = unit_spec(path, time="day", sequential={"method": "group_sequential", "looks": 7})["design"]
    results = []
    for name, source in [("file", {"path": str(path)}),
                         ("pg", {"backend": "postgres", "table": "sessions_combo", "connection_env": ENV}),
                         ("spark", {"backend": "spark", "table": "sessions_combo"})]:
        file = tmp_path / f"{name}.yaml"
        file.write_text(yaml.safe_dump({"version": 1, "name": "combo", "treatment": "variant", "segments": ["country"],
                                        "design": design, "data": source}))
        code, got, err = estimate(runner, file)
        assert code == 0, (name, err)
        results.append(got)
    assert results[0]["diagnostics"]["segments"]["values"]["country"] == ["DE", "FR"]
    for other in results[1:]:
        assert not differences(other, results[0]), differences(other, results[0])[:5]


# ---------------------------------------------------------------- quantile metrics x the others


@pytest.mark.parametrize("design, key", [
    ({"sequential": {"method": "always_valid"}}, "design.sequential"),
])
def test_a_quantile_metric_refuses_sequential_in_one_line(unit_file, runner, write_spec, design, key):
    """Units and segments are built for quantiles (tests/test_experiment_quantile_scale.py); sequential is not."""
    path, _ = unit_file
    d = {"method": "experiment", "control": 0, "metrics": [{"name": "y", "outcome": "y"},
                                                            {"name": "p90", "outcome": "y", "quantile": 0.9}]}
    spec = {"version": 1, "name": "q", "data": {"path": str(path)}, "treatment": "variant",
            "segments": design.pop("segments", []), "design": d | design}
    res = invoke(runner, ["estimate", str(write_spec(spec)), "--format", "json"])
    err = res.stderr.strip()
    assert res.exit_code == 2, (res.exit_code, err)
    assert key in err and "'p90'" in err and "remove" in err
    assert "\n" not in err and "Traceback" not in err
