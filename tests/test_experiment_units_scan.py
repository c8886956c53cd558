"""design.unit's fast grouping (``causalcli.designs.experiment.unit_scan``): the same numbers as the grouping by
(unit, arm) with DECIMAL(38, s) sums, bit for bit, and the fallback to that grouping when the rows need it."""

from __future__ import annotations

import json

import duckdb
import numpy as np
import pandas as pd
import pytest
import yaml

from causalcli.designs.experiment import unit_scan
from causalcli.study.run import run_study


def adversarial_values(rng: np.random.Generator, n: int) -> np.ndarray:
    """Values of many magnitudes and signs, and exact halves at the scales tested (ties of the rounding)."""
    spread = rng.normal(size=n) * 10.0 ** rng.uniform(-9, 5, n)
    ties = (rng.integers(-10**6, 10**6, n) + 0.5) / 10.0 ** rng.choice([6, 8, 12], n)
    return np.where(rng.random(n) < 0.2, ties, spread)


@pytest.mark.parametrize("scale", [6, 8, 12, 20, 27, 30])
def test_the_parts_sum_the_decimal_integers_exactly_and_the_double_is_within_two_ulps(scale):
    from fractions import Fraction

    rng = np.random.default_rng(scale)
    n = 40_000
    con = duckdb.connect()
    frame = pd.DataFrame({"g": rng.integers(0, 300, n), "x": adversarial_values(rng, n)})
    con.register("frame", frame)
    # DuckDB's CAST(x AS DECIMAL(38, s)) is the integer round(x * 10^s) computed in DOUBLE: the unit sums are
    # the exact DECIMAL sums
    q = f"CAST(x AS DECIMAL(38, {scale}))"
    differ = con.execute(f"SELECT count(*) FILTER (WHERE replace(CAST({q} AS VARCHAR), '.', '')::HUGEINT <> "
                         f"CAST({unit_scan.scaled('x', scale)} AS HUGEINT)) FROM frame").fetchall()[0][0]
    assert differ == 0
    largest = float(np.abs(frame.x).max())
    parts, expression = unit_scan.scaled_sum_parts("x", "x IS NOT NULL", scale, largest)
    names = [f"p{j}" for j in range(len(parts))]
    fast = con.execute(f"SELECT g, {expression.format(*names)} FROM (SELECT g, "
                       f"{', '.join(f'{p} AS {m}' for p, m in zip(parts, names))} FROM frame GROUP BY g) ORDER BY g"
                       ).fetchall()
    integer = f"CAST({unit_scan.scaled('x', scale)} AS HUGEINT)"
    grouped = con.execute(f"SELECT g, {unit_scan.to_double(f'sum({integer})', scale)}, "
                          f"CAST(sum({q}) AS VARCHAR) FROM frame GROUP BY g ORDER BY g").fetchall()
    assert fast == [row[:2] for row in grouped]  # bit for bit: the grouping by (unit, arm) sums the same integers
    for (_, value), (_, _, decimal) in zip(fast, grouped):
        exact = Fraction(decimal)  # the DECIMAL sum, exactly
        assert abs(Fraction(value) - exact) <= 2 * Fraction(np.spacing(abs(float(exact))))
    assert (len(parts) == 2) == (largest * 10.0 ** scale >= 2.0 ** 62)  # the split only where a BIGINT cannot hold it


def sessions(seed: int, units: int = 300) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    arm = rng.integers(0, 2, units)
    country = rng.choice(["US", "DE", "FR"], units)
    user = rng.integers(0, units, 20 * units)
    y = rng.lognormal(3, 1, len(user)) + 2 * arm[user]
    pre = rng.gamma(2, 50, len(user))
    pre[rng.random(len(user)) < 0.05] = np.nan  # a covariate with missing values: sums over complete rows
    return pd.DataFrame({"user": user, "variant": np.where(arm[user] == 1, "treatment", "control"),
                         "country": country[user], "day": rng.integers(1, 8, len(user)), "y": y, "pre": pre,
                         "orders": rng.poisson(2, len(user))})


def run(tmp_path, df: pd.DataFrame, name: str) -> dict:
    folder = tmp_path / name
    folder.mkdir()
    path = folder / "s.parquet"
    df.to_parquet(path, index=False)
    spec = {"version": 1, "name": "units", "data": {"path": "s.parquet"}, "treatment": "variant", "segments": ["country"],
            "design": {"method": "experiment", "control": "control", "unit": "user", "time": "day",
                       "metrics": [{"name": "y", "outcome": "y", "covariate": "pre"},
                                   {"name": "per_order", "numerator": "y", "denominator": "orders"}]}}
    file = folder / "s.yaml"
    file.write_text(yaml.safe_dump(spec))
    result = run_study(str(file)).to_dict()
    return {k: v for k, v in result.items() if k not in ("timing_s", "provenance", "spec_path")}


@pytest.mark.parametrize("case", ["fast", "rows_without_unit", "null_segment_row", "null_variant_row",
                                  "unit_without_variant"])
def test_fast_grouping_gives_the_same_result_as_the_grouping_by_unit_and_arm(tmp_path, monkeypatch, case):
    df = sessions(3)
    if case == "rows_without_unit":  # counted and dropped alike (their NULL group holds both arms)
        df["user"] = df["user"].astype("Int64")
        df.loc[[11, 12, 13], "user"] = pd.NA
    elif case == "null_segment_row":  # a unit whose segment is missing on one row: the fast check refuses it
        df.loc[5, "country"] = None
    elif case == "null_variant_row":  # a row with a unit and no arm: two hashes in its unit, the old grouping
        df.loc[7, "variant"] = None
    elif case == "unit_without_variant":  # every row of a unit without an arm: its arm is NULL, the old grouping
        df.loc[df.user == df.user.iloc[9], "variant"] = None
    used = []
    real = unit_scan.group
    monkeypatch.setattr(unit_scan, "group", lambda *a, **k: used.append(real(*a, **k)) or used[-1])
    fast = run(tmp_path, df, "fast")
    assert used == [case in ("fast", "rows_without_unit")]
    monkeypatch.setattr(unit_scan, "applies", lambda table: False)
    old = run(tmp_path, df, "old")
    assert json.dumps(fast, sort_keys=True, default=str) == json.dumps(old, sort_keys=True, default=str)


def test_values_of_hashes_missing_from_the_first_rows_are_found_by_a_second_scan(tmp_path, monkeypatch):
    df = sessions(5)
    used = []
    real = unit_scan.group
    monkeypatch.setattr(unit_scan, "group", lambda *a, **k: used.append(real(*a, **k)) or used[-1])
    every = run(tmp_path, df, "every")
    monkeypatch.setattr(unit_scan, "LOOKUP_ROWS", 1)  # one (arm, country) of six named by the first rows
    few = run(tmp_path, df, "few")
    assert used == [True, True]  # the fast table kept both times
    assert json.dumps(every, sort_keys=True, default=str) == json.dumps(few, sort_keys=True, default=str)
    monkeypatch.setattr(unit_scan, "applies", lambda table: False)
    assert json.dumps(run(tmp_path, df, "old"), sort_keys=True, default=str) == json.dumps(every, sort_keys=True,
                                                                                          default=str)


def test_a_unit_in_two_arms_is_still_named(tmp_path):
    df = sessions(4)
    df.loc[df.user == df.user.iloc[0], "variant"] = ["control", "treatment"] * int((df.user == df.user.iloc[0]).sum() // 2) + \
        ["control"] * int((df.user == df.user.iloc[0]).sum() % 2)
    with pytest.raises(Exception, match=r"unit\(s\) of 'user' appear in more than one arm"):
        run(tmp_path, df, "mixed")


@pytest.mark.parametrize("view", ["file", "filtered"])
def test_size_pass_from_file_statistics_equals_a_scan_of_every_value(tmp_path, view):
    """The size pass's counts and extremes come from the Parquet statistics where DuckDB can use them (no filter)
    and NaN values from a scan: the same numbers as the old pass's per-value scan, NaN, NULL and infinities
    included."""
    from causalcli.data.table import Table
    from causalcli.designs.experiment.units import _size_pass

    rng = np.random.default_rng(8)
    n = 5_000
    df = pd.DataFrame({"y": adversarial_values(rng, n), "pre": rng.normal(size=n) * 1e6, "count": rng.integers(0, 9, n),
                       "flag": rng.random(n) < 0.5, "f32": rng.normal(size=n).astype(np.float32)})
    df.loc[rng.random(n) < 0.1, "pre"] = np.nan
    df.loc[3, "pre"] = -2e7  # the largest magnitude is a minimum
    df.loc[rng.random(n) < 0.05, "y"] = None
    df.loc[7, "f32"] = np.inf
    df["count"] = df["count"].astype("Int64")
    df.loc[11, "count"] = pd.NA
    path = tmp_path / "s.parquet"
    df.to_parquet(path, index=False, row_group_size=1_000)
    con = duckdb.connect()
    where = " WHERE count IS DISTINCT FROM 3" if view == "filtered" else ""
    con.execute(f"CREATE VIEW study_data AS SELECT * FROM read_parquet('{path}'){where}")
    types = dict(con.execute("SELECT column_name, column_type FROM (DESCRIBE study_data)").fetchall())
    rows = con.execute("SELECT count(*) FROM study_data").fetchall()[0][0]
    table = Table(con=con, file="s.parquet", rows=rows, types=types)
    source, floating = ["y", "pre", "count", "flag", "f32"], ["y", "pre", "flag", "f32"]
    got = _size_pass(table, source, floating)
    missing = [f"sum(CASE WHEN {c} IS NOT NULL AND NOT isnan(CAST({c} AS DOUBLE)) THEN 0 ELSE 1 END)" for c in source]
    largest = [f"max(abs(CASE WHEN NOT isnan(CAST({c} AS DOUBLE)) THEN CAST({c} AS DOUBLE) END))" for c in floating]
    expected = con.execute(f"SELECT count(*), {', '.join(missing + largest)} FROM study_data").fetchall()[0]
    assert got == expected
    assert got[2] > 0 and got[-3] == 2e7 and got[-1] == np.inf  # NaN counted; a minimum's magnitude; an infinity


@pytest.mark.parametrize("magnitude", [-9, 0, 3, 12, 14])
def test_the_scale_keeps_one_bigint_per_value_where_it_can_and_unit_sums_stay_closer_than_double_sums(magnitude):
    """``_decimal_scale`` caps the scale so that round(x * 10^s) fits a BIGINT when that leaves MIN_SCALE digits:
    the fast grouping sums one part per value, and each unit's sum is within n (half a quantum, about 10^-18 of
    the largest value, plus the rounding of x * 10^s in DOUBLE, which DuckDB's cast does) of the exact sum
    (math.fsum)."""
    from math import fsum

    from causalcli.designs.experiment.units import MIN_SCALE, _decimal_scale

    rng = np.random.default_rng(magnitude + 20)
    n = 20_000
    frame = pd.DataFrame({"g": rng.integers(0, 50, n), "x": adversarial_values(rng, n) * 10.0 ** magnitude / 1e5})
    largest = float(np.abs(frame.x).max())
    scale = _decimal_scale(largest, n)
    one = largest * 10.0 ** (MIN_SCALE + 0) < 2.0 ** 61  # a BIGINT holds the values at MIN_SCALE digits
    parts, expression = unit_scan.scaled_sum_parts("x", "true", scale, largest)
    assert (len(parts) == 1) == one
    if one:
        assert 10.0 ** -scale <= 10 * largest / 2.0 ** 61  # the largest scale that fits, give or take a digit
    con = duckdb.connect()
    con.register("frame", frame)
    names = [f"p{j}" for j in range(len(parts))]
    got = dict(con.execute(f"SELECT g, {expression.format(*names)} FROM (SELECT g, "
                           f"{', '.join(f'{p} AS {m}' for p, m in zip(parts, names))} FROM frame GROUP BY g)").fetchall())
    for g, x in frame.groupby("g").x:
        exact = fsum(x)
        assert abs(got[g] - exact) <= len(x) * (0.5 * 10.0 ** -scale + largest * 2.0 ** -52) + np.spacing(abs(exact))


@pytest.mark.parametrize("nan_in_y", [False, True])
def test_nan_values_are_counted_only_when_the_grouping_meets_one(tmp_path, monkeypatch, nan_in_y):
    """The size pass leaves NaN values uncounted (no scan of the floating columns); in DuckDB the exact sum of a NaN is
    a conversion error, and the study then counts them and groups again: the result of counting them first."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    from causalcli.designs.experiment import units

    df = sessions(6)
    y = df.y.to_numpy().copy()
    if nan_in_y:
        y[[3, 40, 41]] = np.nan
    df["pre"] = df.pre.fillna(1.0)  # no NULL: DuckDB then reads the least and greatest values from the file's
    columns = {c: pa.array(df[c].to_numpy(), from_pandas=True) for c in df.columns}  # statistics, which hide NaN
    columns["y"] = pa.array(y, from_pandas=False)  # real NaN values
    real = units._size_pass
    calls: list[bool] = []
    results = []
    for forced in (False, True):
        calls.clear()
        monkeypatch.setattr(units, "_size_pass", lambda t, s, f, count_nan=True, forced=forced:
                            calls.append(count_nan or forced) or real(t, s, f, count_nan or forced))
        folder = tmp_path / f"forced{forced}"
        folder.mkdir()
        pq.write_table(pa.table(columns), folder / "s.parquet")
        spec = {"version": 1, "name": "nan", "data": {"path": "s.parquet"}, "treatment": "variant",
                "design": {"method": "experiment", "control": "control", "unit": "user",
                           "metrics": [{"name": "y", "outcome": "y", "covariate": "pre"}]}}
        (folder / "s.yaml").write_text(yaml.safe_dump(spec))
        result = run_study(str(folder / "s.yaml")).to_dict()
        results.append({k: v for k, v in result.items() if k not in ("timing_s", "provenance", "spec_path")})
        if not forced:
            assert calls == ([False, True] if nan_in_y else [False])
    assert json.dumps(results[0], sort_keys=True, default=str) == json.dumps(results[1], sort_keys=True, default=str)
    assert results[0]["effects"] and all(e["value"] == e["value"] for e in results[0]["effects"])
    if nan_in_y:  # a NaN is a missing value: the same estimate as with NULL there
        folder = tmp_path / "null"
        folder.mkdir()
        columns["y"] = pa.array(y, from_pandas=True)
        pq.write_table(pa.table(columns), folder / "s.parquet")
        (folder / "s.yaml").write_text((tmp_path / "forcedTrue" / "s.yaml").read_text())
        null = run_study(str(folder / "s.yaml")).to_dict()
        assert [e["value"] for e in null["effects"]] == [e["value"] for e in results[0]["effects"]]
