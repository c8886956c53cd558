"""Quantile metrics at scale (issue 17, point 7): the first histogram comes out of the statistics pass
(GROUPING SETS), quantiles by segment value and of per-unit sums, exactly numpy's inverted-CDF order
statistics; on a large table the statistics pass returns the values of the windows predicted from the
first rows, so no fetch query runs; a quantile under design.sequential stays refused."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from causalcli.designs.experiment import quantile as quantile_module
from causalcli.errors import SpecError
from causalcli.study.run import run_study
from tests.test_experiment_quantile import by_metric, effects, numpy_order_statistics, spec


def rows(n: int, seed: int) -> pd.DataFrame:
    """Users (randomised) with several rows each, a heavy tail, ties, missing values and two segments."""
    rng = np.random.default_rng(seed)
    users = n // 4
    user = rng.integers(0, users, n)
    arm = np.where(user % 2 == 0, "control", "treatment")
    y = np.round(rng.lognormal(0, 1.2, n) * np.where(arm == "treatment", 1.1, 1.0), 2)
    y[rng.random(n) < 0.03] = np.nan
    country = np.array(["de", "fr", "us"])[user % 3]  # a property of the user
    platform = np.where(user % 5 == 0, "ios", "web")
    platform = np.where(user % 7 == 0, None, platform)  # rows without a segment value
    return pd.DataFrame({"variant": arm, "user": user, "y": y, "country": country, "platform": platform})


@pytest.mark.parametrize("fetch_rows", [100_000, 25])  # one fetch; narrowing passes per group pattern
def test_quantiles_by_segment_value_equal_numpy(tmp_path, monkeypatch, fetch_rows):
    monkeypatch.setattr(quantile_module, "FETCH_ROWS", fetch_rows)
    monkeypatch.setattr(quantile_module, "FIRST_BINS", 64)
    monkeypatch.setattr(quantile_module, "BINS", 16)
    df = rows(8000, seed=1)
    path = tmp_path / "rows.parquet"
    pq.write_table(pa.Table.from_pandas(df, preserve_index=False), path)
    metrics = [{"name": "mean", "outcome": "y"}, {"name": "p90", "outcome": "y", "quantile": 0.9},
               {"name": "p50", "outcome": "y", "quantile": 0.5}]
    res = run_study({**spec(path, metrics), "segments": ["country", "platform"]})
    assert_numpy_quantiles_by_segment(res, df, metrics[1:])
    assert res.diagnostics["quantiles"]["passes"] >= (1 if fetch_rows > 1000 else 3)


def assert_numpy_quantiles_by_segment(res, df: pd.DataFrame, metrics: list[dict]) -> None:
    """Each arm's order statistics, and each segment value's effect, are numpy's on the rows."""
    found = {e.label: e for e in res.effects}
    for m in metrics:
        q = m["quantile"]
        row = by_metric(res)[(m["name"], "treatment")]
        for side in ("control", "treatment"):
            assert row[side]["order_statistics"] == numpy_order_statistics(df.y[df.variant == side].to_numpy(), q)
        for column in ("country", "platform"):
            for value in df[column].dropna().unique():
                cell = df[df[column] == value]
                want = {side: numpy_order_statistics(cell.y[cell.variant == side].to_numpy(), q)["quantile"]
                        for side in ("control", "treatment")}
                e = found[f"{m['name']}/treatment/abs/{column}={value}"]
                assert e.value == want["treatment"] - want["control"]
                assert e.std_error > 0


def test_quantile_of_unit_sums_equals_numpy(tmp_path):
    df = rows(6000, seed=2)
    # whole numbers with missing values (an integer column): unit sums are exact in the engine and in pandas
    df["y"] = np.round(df.y * 4).astype("Int64")
    path = tmp_path / "rows.csv"
    df.to_csv(path, index=False)
    metrics = [{"name": "p75", "outcome": "y", "quantile": 0.75}, {"name": "mean", "outcome": "y"}]
    res = run_study({**spec(path, metrics, unit="user"), "segments": ["country"]})
    complete = df.dropna(subset=["y"])  # a unit sums its complete rows; a unit with none is left out
    sums = complete.groupby(["user", "variant", "country"], as_index=False).y.sum().astype({"y": float})
    row = by_metric(res)[("p75", "treatment")]
    for side in ("control", "treatment"):
        assert row[side]["order_statistics"] == numpy_order_statistics(sums.y[sums.variant == side].to_numpy(), 0.75)
    for value in ("de", "fr", "us"):
        cell = sums[sums.country == value]
        want = [numpy_order_statistics(cell.y[cell.variant == s].to_numpy(), 0.75)["quantile"]
                for s in ("control", "treatment")]
        assert effects(res)[f"p75/treatment/abs/country={value}"].value == want[1] - want[0]
    assert "delta_method" not in effects(res)["p75/treatment/abs"].inference
    assert "clustered_by_unit" in effects(res)["p75/treatment/abs"].inference


def test_a_quantile_under_design_sequential_is_refused(tmp_path):
    df = rows(400, seed=3).assign(day=lambda d: d.user % 5 + 1)
    path = tmp_path / "rows.csv"
    df.to_csv(path, index=False)
    study = spec(path, [{"name": "mean", "outcome": "y"}, {"name": "p90", "outcome": "y", "quantile": 0.9}],
                 time="day", sequential={"method": "always_valid"})
    with pytest.raises(SpecError, match="design.sequential|fixed-horizon") as err:
        run_study(study)
    assert err.value.key == "design.sequential"


def count_fetches(monkeypatch) -> list:
    """The fetch queries of the windows' values (quantile._fetch), recorded as they run."""
    calls = []
    fetch = quantile_module._fetch

    def recorded(*args):
        calls.append(args[3])  # the windows
        return fetch(*args)

    monkeypatch.setattr(quantile_module, "_fetch", recorded)
    return calls


@pytest.mark.parametrize("order", ["shuffled", "sorted"])  # sorted: the first rows mislead, histograms take over
def test_windows_from_the_first_rows_give_numpy_order_statistics(tmp_path, monkeypatch, order):
    from causalcli.designs.experiment import quantile_pass

    fetches = count_fetches(monkeypatch)
    monkeypatch.setattr(quantile_pass, "SAMPLE_MIN_ROWS", 1000)
    monkeypatch.setattr(quantile_pass, "SAMPLE_ROWS", 2000)
    monkeypatch.setattr(quantile_pass, "SAMPLE_MIN_ARM", 200)
    monkeypatch.setattr(quantile_module, "FIRST_BINS", 64)
    rng = np.random.default_rng(5)
    n = 20_000
    arm = rng.choice(["control", "treatment"], n)
    y = np.round(rng.lognormal(0, 1, n), 3)
    y[rng.random(n) < 0.02] = np.nan
    df = pd.DataFrame({"variant": arm, "y": y})
    if order == "sorted":
        df = df.sort_values("y", na_position="first")
    path = tmp_path / "rows.parquet"
    pq.write_table(pa.Table.from_pandas(df, preserve_index=False), path)
    metrics = [{"name": "p50", "outcome": "y", "quantile": 0.5}, {"name": "p95", "outcome": "y", "quantile": 0.95},
               {"name": "p96", "outcome": "y", "quantile": 0.96}]  # p95 and p96 windows overlap: merged
    res = run_study(spec(path, metrics))
    for m in metrics:
        row = by_metric(res)[(m["name"], "treatment")]
        for side in ("control", "treatment"):
            assert row[side]["order_statistics"] == numpy_order_statistics(df.y[df.variant == side].to_numpy(),
                                                                           m["quantile"])
    passes = res.diagnostics["quantiles"]["passes"]
    if order == "shuffled":  # the statistics pass returned the windows' values: no pass of their own, no fetch
        assert passes == 0 and not fetches
        assert res.diagnostics["quantiles"]["fetched_values"] > 0  # returned by the pass
    else:  # a histogram pass and a fetch
        assert passes >= 2 and fetches


@pytest.mark.parametrize("order", ["shuffled", "sorted"])
def test_windows_by_segment_value_give_numpy_order_statistics(tmp_path, monkeypatch, order):
    """Windows from the first rows for every arm and segment value (sorted rows mislead them: the histogram
    query by segment takes over); the same order statistics either way."""
    from causalcli.designs.experiment import quantile_pass

    fetches = count_fetches(monkeypatch)
    for name, value in (("SAMPLE_MIN_ROWS", 1000), ("SEGMENT_SAMPLE_ROWS", 6000), ("SAMPLE_MIN_ARM", 100)):
        monkeypatch.setattr(quantile_pass, name, value)
    monkeypatch.setattr(quantile_module, "MARGIN_BINS", 64)
    df = rows(16_000, seed=6)
    df["y"] = df.y * np.where(df.country == "us", 3.0, 1.0)  # one value's quantiles far from the others'
    if order == "sorted":
        df = df.sort_values("y", na_position="first")
    path = tmp_path / "rows.parquet"
    pq.write_table(pa.Table.from_pandas(df, preserve_index=False), path)
    metrics = [{"name": "p90", "outcome": "y", "quantile": 0.9}, {"name": "p50", "outcome": "y", "quantile": 0.5}]
    res = run_study({**spec(path, metrics), "segments": ["country", "platform"]})
    assert_numpy_quantiles_by_segment(res, df, metrics)
    passes = res.diagnostics["quantiles"]["passes"]
    if order == "shuffled":  # the values came back with the statistics pass's rows, added up per group
        assert passes == 0 and not fetches
    else:  # the histogram query by segment, then a fetch
        assert passes >= 2 and fetches


def sampled_rows(n: int, seed: int, ties: bool = False) -> pd.DataFrame:
    """``rows``, or with whole values and none missing (ties: windows of one value, which the lists leave out;
    no missing value: the blocked pass's rows are final, not followed by the pass over complete cases)."""
    df = rows(n, seed)
    if ties:
        df["y"] = np.floor(df.y.fillna(0.0))
    return df


@pytest.mark.parametrize("segments", [[], ["country", "platform"]])
@pytest.mark.parametrize("ties", [False, True])
def test_the_statistics_pass_returns_the_window_values_and_no_fetch_runs(tmp_path, monkeypatch, segments, ties):
    """The values inside the windows come back with the statistics pass (lists per row, added up per arm and
    segment value): the same JSON as the histogram passes and the fetch, which no longer run."""
    from causalcli.designs.experiment import quantile_pass

    from causalcli.designs.experiment import stats

    df = sampled_rows(16_000, seed=8, ties=ties)
    path = tmp_path / "rows.parquet"
    pq.write_table(pa.Table.from_pandas(df, preserve_index=False), path, row_group_size=4000)
    monkeypatch.setattr(stats, "BLOCKED_ROWS", 1)  # without segments, the pass by arm and row-group block first
    metrics = [{"name": "p90", "outcome": "y", "quantile": 0.9}, {"name": "p25", "outcome": "y", "quantile": 0.25},
               {"name": "mean", "outcome": "y"}]
    study = {**spec(path, metrics), "segments": segments}
    monkeypatch.setattr(quantile_module, "MARGIN_BINS", 64)
    monkeypatch.setattr(quantile_module, "FIRST_BINS", 64)
    histograms = run_study(study)  # a small table: histograms, then a fetch
    for name, value in (("SAMPLE_MIN_ROWS", 1000), ("SAMPLE_ROWS", 4000), ("SEGMENT_SAMPLE_ROWS", 6000),
                        ("SAMPLE_MIN_ARM", 100)):
        monkeypatch.setattr(quantile_pass, name, value)
    fetches = count_fetches(monkeypatch)
    listed = run_study(study)
    assert not fetches and listed.diagnostics["quantiles"]["passes"] == 0
    assert listed.diagnostics["quantiles"]["fetched_values"] > 0
    assert [e.to_dict() for e in listed.effects] == [e.to_dict() for e in histograms.effects]
    assert listed.diagnostics["metrics"] == histograms.diagnostics["metrics"]
    if segments and not ties:  # (ties: zero-width intervals by segment value, which the helper refuses)
        assert_numpy_quantiles_by_segment(listed, df, metrics[:2])


@pytest.mark.parametrize("predicted", ["few", "many"])
def test_too_many_window_values_fall_back_to_the_fetch(tmp_path, monkeypatch, predicted):
    """More values in the windows than FETCH_ROWS: predicted from the first rows, the pass returns none; found
    in the pass's lists only (the first rows predicted few), they are dropped. Either way the fetch (or the
    narrowing passes) runs as before, with the same order statistics."""
    from causalcli.designs.experiment import quantile_pass

    for name, value in (("SAMPLE_MIN_ROWS", 1000), ("SAMPLE_ROWS", 4000), ("SAMPLE_MIN_ARM", 100)):
        monkeypatch.setattr(quantile_pass, name, value)
    monkeypatch.setattr(quantile_module, "FETCH_ROWS", 300)
    if predicted == "few":
        monkeypatch.setattr(quantile_pass, "expected_values", lambda *args: 0.0)
    from causalcli.data.table import Table

    queries = []
    sql = Table.sql

    def recorded(self, query, params=None):
        queries.append(query)
        return sql(self, query, params)

    monkeypatch.setattr(Table, "sql", recorded)
    fetches = count_fetches(monkeypatch)
    df = sampled_rows(20_000, seed=9)
    path = tmp_path / "rows.parquet"
    pq.write_table(pa.Table.from_pandas(df, preserve_index=False), path)
    res = run_study(spec(path, [{"name": "p90", "outcome": "y", "quantile": 0.9}]))
    row = by_metric(res)[("p90", "treatment")]
    for side in ("control", "treatment"):
        assert row[side]["order_statistics"] == numpy_order_statistics(df.y[df.variant == side].to_numpy(), 0.9)
    assert res.diagnostics["quantiles"]["passes"] >= 1  # the windows' own passes ran (narrowing, fetch)
    assert any("list(" in q for q in queries) == (predicted == "few")
