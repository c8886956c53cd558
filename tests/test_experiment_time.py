"""Experiments with `design.time`: the cumulative effect by period, from the one grouped pass.

Tolerances:
* EXACT = 1e-12: the cumulative sums are sums of the periods' exact sums, so the last point is
  computed from the very numbers of the headline (equal to the bit in practice); a study on the
  data filtered to the first k periods sums the same rows on the same grid. 1e-12 leaves room
  only for the centres, which the filtered study takes from its own first rows.
* CLOSED_RTOL = 1e-9: against numpy's two-pass mean and variance (as in tests/test_experiment.py).
"""

from __future__ import annotations

import datetime as dt
import json
import math
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from causalcli.errors import DataError, SpecError
from causalcli.study.run import run_study
from tests.conftest import run_json

EXACT = 1e-12
CLOSED_RTOL = 1e-9
START = dt.date(2026, 3, 2)
BERLIN = "Europe/Berlin"


def exposures(n: int = 3000, seed: int = 3) -> pd.DataFrame:
    """Users exposed over 14 days (day 5 has no one: days are numbered by the dates present), with a
    Berlin exposure time that falls on a different UTC day for the hour after local midnight."""
    rng = np.random.default_rng(seed)
    day = rng.choice([d for d in range(14) if d != 5], n)
    variant = rng.integers(0, 2, n)
    pre = rng.normal(10, 2, n)
    y = pre + rng.normal(size=n) + 0.3 * variant
    sessions = rng.poisson(3, n) + 1
    orders = rng.binomial(sessions, 0.2 + 0.03 * variant)
    dates = [START + dt.timedelta(days=int(d)) for d in day]
    # seconds after local midnight: the first hour (10% of rows) is the previous day in UTC
    seconds = np.where(rng.random(n) < 0.1, rng.integers(0, 3600, n), rng.integers(3600, 86400, n))
    local = pd.to_datetime(pd.Series(dates)) + pd.to_timedelta(seconds, unit="s")
    stamps = local.dt.tz_localize(BERLIN).dt.tz_convert("UTC")
    return pd.DataFrame({"variant": variant, "y": y, "pre": pre, "orders": orders, "sessions": sessions,
                         "day": np.searchsorted(sorted(set(day)), day) + 1,  # period numbers 1..13
                         "date": dates, "stamp": stamps, "iso": [d.isoformat() for d in dates]})


METRICS = [{"name": "y", "outcome": "y"},
           {"name": "y_cuped", "outcome": "y", "covariate": "pre"},
           {"name": "orders_per_session", "numerator": "orders", "denominator": "sessions"}]


@pytest.fixture(scope="module")
def files(tmp_path_factory) -> dict[str, Path]:
    out = tmp_path_factory.mktemp("exposures")
    df = exposures()
    df.to_parquet(out / "e.parquet", index=False)
    df.drop(columns=["stamp"]).to_csv(out / "e.csv", index=False)
    return {"parquet": out / "e.parquet", "csv": out / "e.csv"}


def spec(path: Path, time: str, metrics=None, timezone: str | None = None, **design) -> dict:
    data = {"path": str(path)} | ({"timezone": timezone} if timezone else {})
    return {"version": 1, "name": "ab", "data": data, "treatment": "variant",
            "design": {"method": "experiment", "control": 0, "time": time, "metrics": metrics or METRICS, **design}}


def values(points: list[dict]) -> list[tuple]:
    return [(p["value"], p["std_error"], p["ci_lower"], p["ci_upper"], p["n_control"], p["n_treatment"])
            for p in points]


def test_integer_date_timestamp_and_iso_time_give_the_same_cumulative_effect(files):
    by_day = run_study(spec(files["parquet"], "day")).diagnostics["cumulative"]
    assert [p["label"] for p in by_day] == [str(k) for k in range(1, 14)]
    dates = sorted({(START + dt.timedelta(days=d)).isoformat() for d in range(14) if d != 5})
    for path, time, zone in [(files["parquet"], "date", None), (files["csv"], "date", None),
                             (files["parquet"], "stamp", BERLIN), (files["parquet"], "iso", None),
                             (files["csv"], "iso", None)]:
        res = run_study(spec(path, time, timezone=zone))
        points = res.diagnostics["cumulative"]
        assert [p["label"] for p in points] == dates, (path.suffix, time)
        assert values(points) == pytest.approx(values(by_day), rel=EXACT), (path.suffix, time)
        about = res.diagnostics["cumulative_method"]
        assert about["interval"] == "fixed-horizon" and "NOT valid for peeking" in about["note"]
        assert "design.sequential gives intervals that are" in about["note"]
    # the same timestamps cut to days in UTC put the first local hour on the day before
    utc = run_study(spec(files["parquet"], "stamp")).diagnostics["cumulative"]
    assert utc[0]["label"] == (START - dt.timedelta(days=1)).isoformat()
    assert values(utc) != values(by_day)


@pytest.mark.parametrize("metric", range(len(METRICS)), ids=[m["name"] for m in METRICS])
def test_last_point_equals_the_headline_and_each_point_is_the_study_up_to_that_day(files, metric):
    metrics = [METRICS[metric]]
    res = run_study(spec(files["parquet"], "date", metrics))
    points = res.diagnostics["cumulative"]
    last = points[-1]
    for key in ("value", "std_error", "ci_lower", "ci_upper"):
        assert last[key] == pytest.approx(getattr(res.estimate, key), rel=EXACT), key
    assert (last["n_control"], last["n_treatment"]) == (res.n["control"], res.n["treatment"])
    # a point is what the study would have said on that day: the study filtered to the days so far
    for k in (0, 6):
        day = points[k]["label"]
        then = run_study(spec(files["parquet"], "date", metrics) | {
            "data": {"path": str(files["parquet"]), "filter": f"date <= DATE '{day}'"}})
        for key in ("value", "std_error", "ci_lower", "ci_upper"):
            assert points[k][key] == pytest.approx(getattr(then.estimate, key), rel=EXACT), (k, key)


def test_a_point_is_welch_on_the_rows_so_far(files):
    df = exposures()
    res = run_study(spec(files["csv"], "iso", [METRICS[0]]))
    point = res.diagnostics["cumulative"][3]
    rows = df[df.iso <= point["label"]]
    c, t = rows[rows.variant == 0].y, rows[rows.variant == 1].y
    assert (point["n_control"], point["n_treatment"]) == (len(c), len(t))
    assert point["value"] == pytest.approx(t.mean() - c.mean(), rel=CLOSED_RTOL)
    assert point["std_error"] == pytest.approx(math.sqrt(t.var() / len(t) + c.var() / len(c)), rel=CLOSED_RTOL)


def test_cumulative_plot_is_drawn_from_the_result_and_json_reruns_are_byte_identical(files, runner, write_spec):
    from causalcli.render.plots import draw

    res = run_study(spec(files["parquet"], "stamp", timezone=BERLIN))
    pngs = draw(res)
    assert set(pngs) == {"lifts", "arm_sizes", "cumulative"}
    assert pngs["cumulative"].startswith(b"\x89PNG")
    assert "cumulative" not in draw(run_study({**spec(files["parquet"], "date"), "design": {
        k: v for k, v in spec(files["parquet"], "date")["design"].items() if k != "time"}}))
    path = write_spec(spec(files["parquet"], "stamp", timezone=BERLIN))
    outs = []
    for _ in range(2):
        code, payload, _ = run_json(runner, [str(path)])
        assert code == 0
        payload.pop("timing_s")
        outs.append(json.dumps(payload, sort_keys=True))
    assert outs[0] == outs[1]
    assert json.loads(outs[0])["diagnostics"]["cumulative"][-1]["label"] == "2026-03-15"


def test_periods_with_too_few_units_have_no_estimate_and_rows_without_time_are_warned(tmp_path):
    df = exposures(400).drop(columns=["stamp"])
    df.loc[0, "date"] = START - dt.timedelta(days=3)  # a first day with a single user
    df.loc[[5, 9], "date"] = None
    df.to_parquet(tmp_path / "e.parquet", index=False)
    res = run_study(spec(tmp_path / "e.parquet", "date", [METRICS[0]]))
    first = res.diagnostics["cumulative"][0]
    assert first["n_control"] + first["n_treatment"] == 1
    assert first["value"] is None and first["std_error"] is None and first["ci_lower"] is None
    assert res.diagnostics["cumulative_method"]["rows_without_time"] == 2
    assert any("2 of 400 rows have no value in time column 'date'" in w for w in res.warnings)
    last = res.diagnostics["cumulative"][-1]
    assert last["n_control"] + last["n_treatment"] == 398 and res.n["used"] == 400


def test_bad_time_values_name_the_row_as_for_did(tmp_path, files):
    df = pd.read_csv(files["csv"])
    df.loc[41, "iso"] = "March 3"
    df.to_csv(tmp_path / "bad.csv", index=False)
    with pytest.raises(DataError, match=r"column 'iso' \(time\) must hold numbers, dates \(YYYY-MM-DD\) or "
                                        r"timestamps: row 42 has 'March 3'") as info:
        run_study(spec(tmp_path / "bad.csv", "iso"))
    assert info.value.key == "design.time"
    with pytest.raises(DataError, match=r"time column 'dat' not found.*'date'") as info:
        run_study(spec(files["csv"], "dat"))
    assert info.value.key == "design.time"
    # a timestamp read as a number (epoch seconds) is not a day: one point per second is refused
    df["epoch"] = np.arange(len(df)) * 7 + 1_772_400_000
    df.loc[41, "iso"] = "2026-03-03"
    df.to_csv(tmp_path / "epoch.csv", index=False)
    with pytest.raises(DataError, match=r"time column 'epoch' has 3,000 distinct periods; .*at most 1,000"):
        run_study(spec(tmp_path / "epoch.csv", "epoch"))


def test_group_sequential_without_time_is_refused_in_one_line(files, runner, write_spec):
    # sequential testing is built (tests/test_experiment_sequential.py); its looks are the periods of design.time
    without_time = spec(files["csv"], "date", sequential={"method": "group_sequential", "looks": 14})
    del without_time["design"]["time"]
    with pytest.raises(SpecError, match="group_sequential needs design.time") as info:
        run_study(without_time)
    assert info.value.key == "design.sequential"
    code, payload, _ = run_json(runner, [str(write_spec(without_time))])
    assert code == 2 and "\n" not in payload["error"]["message"] and "always_valid" in payload["error"]["message"]


# ---------------------------------------------------------------- yes/no variants read as BOOLEAN


@pytest.mark.parametrize("control_yaml", ['"no"', "no", "'No'", "false"])
def test_quoted_or_unquoted_no_finds_the_control_of_a_boolean_variant(tmp_path, runner, write_spec, control_yaml):
    rng = np.random.default_rng(4)
    arm = rng.integers(0, 2, 500)
    y = rng.normal(size=500) + 0.4 * arm
    pd.DataFrame({"variant": np.where(arm == 1, "yes", "no"), "y": y}).to_csv(tmp_path / "yn.csv", index=False)
    text = (f"version: 1\ndata: {{path: yn.csv}}\ntreatment: variant\noutcome: y\n"
            f"design:\n  method: experiment\n  control: {control_yaml}\n"
            f"  expected_split: {{{control_yaml}: 0.5, \"yes\": 0.5}}\n")
    code, payload, res = run_json(runner, [str(write_spec(text))])
    assert code == 0, res.stderr
    assert payload["diagnostics"]["arms"] == {"control": "false", "treatment": ["true"],
                                              "units": {"false": int((arm == 0).sum()), "true": int(arm.sum())}}
    assert payload["estimate"]["value"] == pytest.approx(y[arm == 1].mean() - y[arm == 0].mean(), rel=CLOSED_RTOL)
    assert payload["checks"][0]["passed"] is True  # the split's keys matched the arms


@pytest.mark.parametrize("control", ["no", False])
def test_no_finds_the_control_of_a_text_yes_no_variant_from_parquet(tmp_path, control):
    rng = np.random.default_rng(4)
    arm = rng.integers(0, 2, 500)
    y = rng.normal(size=500) + 0.4 * arm
    pd.DataFrame({"variant": np.where(arm == 1, "yes", "no"), "y": y}).to_parquet(tmp_path / "yn.parquet")
    res = run_study({"version": 1, "data": {"path": str(tmp_path / "yn.parquet")}, "treatment": "variant",
                     "outcome": "y", "design": {"method": "experiment", "control": control}})
    assert res.diagnostics["arms"]["control"] == "no"
    assert res.estimate.value == pytest.approx(y[arm == 1].mean() - y[arm == 0].mean(), rel=CLOSED_RTOL)
