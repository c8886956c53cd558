"""The blocked pass for large Parquet files: per arm and row-group block double sums added with math.fsum.

It runs from stats.BLOCKED_ROWS rows; here that threshold is lowered so that small files take it.
"""

from __future__ import annotations

import math
from fractions import Fraction

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from causalcli.designs.experiment import stats


def _write(path, n: int, row_group: int, seed: int = 0, missing: bool = False):
    rng = np.random.default_rng(seed)
    arm = rng.integers(0, 2, n)
    x = rng.gamma(2.0, 50.0, n)
    y = 0.8 * x + rng.normal(0, 40, n) + 2.0 * arm + 1e4
    nulls = None
    if missing:  # NaN in y, NULL in x (the metadata counts NULLs, not NaN)
        y[::997] = np.nan
        nulls = np.zeros(n, bool)
        nulls[5::1009] = True
    table = pa.table({"variant": np.where(arm == 1, "treatment", "control"), "y": y,
                      "x": pa.array(x, mask=nulls), "k": rng.poisson(5, n).astype(np.int32)})
    pq.write_table(table, path, row_group_size=row_group)
    return table.to_pandas()


def _statistics(path, n: int, threads: int, parquet: bool = True):
    import duckdb

    from causalcli.data.table import Table

    con = duckdb.connect(config={"threads": threads})
    con.execute(f"CREATE VIEW study_data AS SELECT * FROM read_parquet('{path}')")
    table = Table(con, str(path), n, {"variant": "VARCHAR", "y": "DOUBLE", "x": "DOUBLE", "k": "INTEGER"})
    cols = {"y": ("y", "x"), "k": ("k",)}
    pairs = {"y": (("y", "y"), ("y", "x"), ("x", "x")), "k": (("k", "k"),)}
    return stats.compute_statistics(table, "variant", cols, pairs, {"y", "x"}, None, set(), {"k"},
                                    parquet=str(path) if parquet else None)


def test_blocked_sums_are_the_same_bits_for_any_number_of_threads(tmp_path, monkeypatch):
    monkeypatch.setattr(stats, "BLOCKED_ROWS", 1)
    path = tmp_path / "ab.parquet"
    n = 240_000
    _write(path, n, 30_000)
    runs = [_statistics(path, n, threads) for threads in (1, 2, 4, 3, 2)]
    assert {r.summation for r in runs} == {stats.BLOCKED_SUMMATION}
    assert all(r.groups == runs[0].groups and r.arm_counts == runs[0].arm_counts for r in runs)
    assert runs[0].passes == 1 and sum(runs[0].arm_counts.values()) == n


def test_blocked_sums_are_nearer_the_exact_sums_than_the_fixed_point_pass(tmp_path, monkeypatch):
    path = tmp_path / "ab.parquet"
    n = 200_000
    df = _write(path, n, 25_000, seed=1)
    fixed = _statistics(path, n, 2)
    monkeypatch.setattr(stats, "BLOCKED_ROWS", 1)
    blocked = _statistics(path, n, 2)
    assert fixed.summation == stats.EXACT_SUMMATION and blocked.summation == stats.BLOCKED_SUMMATION
    assert fixed.centres == blocked.centres and fixed.arm_counts == blocked.arm_counts
    k = blocked.centres
    for arm in ("control", "treatment"):
        rows = df[df.variant == arm]
        d = {c: rows[c].to_numpy(dtype=float) - k[c] for c in ("y", "x", "k")}
        got = blocked.groups[None][arm]
        for c, v in d.items():  # within a few roundings of the largest partial sum of a block
            exact = math.fsum(v)
            assert abs(got.s[c] - exact) <= 1e-12 * math.fsum(abs(v))
        for (a, b), value in got.ss.items():
            exact = float(sum((Fraction(float(t)) for t in d[a] * d[b]), Fraction(0)))
            assert value == pytest.approx(exact, rel=1e-13, abs=1e-13 * math.fsum(abs(d[a] * d[b])))
            # the fixed-point pass rounds each term to ~2**-47 of the sum of |t|: the farther of the two
            assert abs(fixed.groups[None][arm].ss[(a, b)] - exact) >= abs(value - exact)


def test_the_fixed_point_pass_when_the_file_is_small_filtered_or_irregular(tmp_path, monkeypatch):
    path = tmp_path / "ab.parquet"
    n = 50_000
    _write(path, n, 10_000)
    assert _statistics(path, n, 2).summation == stats.EXACT_SUMMATION  # below BLOCKED_ROWS
    monkeypatch.setattr(stats, "BLOCKED_ROWS", 1)
    assert _statistics(path, n, 2, parquet=False).summation == stats.EXACT_SUMMATION  # not the file as is
    monkeypatch.setattr(stats, "MAX_BLOCKS", 4)  # five row groups: more blocks than allowed
    assert _statistics(path, n, 2).summation == stats.EXACT_SUMMATION
    irregular = tmp_path / "irregular.parquet"
    writer = None
    for size, seed in ((7_001, 1), (9_999, 2), (5_000, 3)):
        part = pa.Table.from_pandas(_write(tmp_path / f"part{seed}.parquet", size, size, seed), preserve_index=False)
        writer = writer or pq.ParquetWriter(irregular, part.schema)
        writer.write_table(part)
    writer.close()
    monkeypatch.setattr(stats, "MAX_BLOCKS", 4096)
    assert _statistics(irregular, 22_000, 2).summation == stats.EXACT_SUMMATION  # gcd 1: 22,000 blocks


@pytest.mark.parametrize("nan_only", [False, True])
def test_missing_values_send_the_blocked_pass_to_complete_cases(tmp_path, monkeypatch, nan_only):
    monkeypatch.setattr(stats, "BLOCKED_ROWS", 1)
    path = tmp_path / "ab.parquet"
    n = 60_000
    df = _write(path, n, 20_000, missing=True)
    if nan_only:  # no NULL: the metadata says so and only the sums show the NaN
        df["x"] = df["x"].fillna(1.0)
        pq.write_table(pa.Table.from_pandas(df, preserve_index=False), path, row_group_size=20_000)
    res = _statistics(path, n, 2)
    assert res.complete_cases_by_metric and stats.MISSING_METRIC_NOTE in res.notes
    assert res.summation == stats.EXACT_SUMMATION and res.passes == 2
    incomplete = set(range(0, n, 997)) | (set() if nan_only else set(range(5, n, 1009)))
    assert res.groups["y"]["control"].n + res.groups["y"]["treatment"].n == n - len(incomplete)
    assert res.groups["k"]["control"].n + res.groups["k"]["treatment"].n == n


def test_the_command_reports_the_blocked_summation_on_a_large_parquet_file(tmp_path, monkeypatch):
    from causalcli.study.run import run_study

    path = tmp_path / "ab.parquet"
    _write(path, 40_000, 10_000)
    spec = {"version": 1, "name": "ab", "data": {"path": str(path)}, "treatment": "variant",
            "design": {"method": "experiment", "control": "control",
                       "metrics": [{"name": "y", "outcome": "y", "covariate": "x"}]}}
    fixed = run_study(spec, refute=False)
    monkeypatch.setattr(stats, "BLOCKED_ROWS", 1)
    blocked = run_study(spec, refute=False)
    assert blocked.diagnostics["sufficient_statistics"]["summation"] == stats.BLOCKED_SUMMATION
    assert fixed.diagnostics["sufficient_statistics"]["summation"] == stats.EXACT_SUMMATION
    # the two passes differ by the fixed-point rounding (sums nearer exact: the test above)
    assert blocked.estimate.value == pytest.approx(fixed.estimate.value, rel=1e-10)
    assert blocked.estimate.std_error == pytest.approx(fixed.estimate.std_error, rel=1e-10)
    filtered = run_study({**spec, "data": {"path": str(path), "filter": "x > 0"}}, refute=False)
    assert filtered.diagnostics["sufficient_statistics"]["summation"] == stats.EXACT_SUMMATION
