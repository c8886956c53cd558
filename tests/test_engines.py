"""Issue 16: the same study on DuckDB (a file), a real PostgreSQL server and a real local Spark session.

Engines come from tests/engines.py (started once per test process; a test that cannot start one fails).
Results are compared key by key: numbers to 1e-9 relative, everything else exactly; ``provenance``,
``timing_s`` and ``spec_path`` may differ. Rows are read in the order of their values on every path
(``Table.arrays``: an engine's table has no row order), so designs whose numbers depend on row position
(random draws per row, cross-fitting folds, greedy matching) give the file's numbers on every engine too.
"""

from __future__ import annotations

import json
import math
import os
from pathlib import Path

import duckdb
import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
import yaml

from tests.conftest import invoke
from tests.engines import load_postgres, register_spark

ROOT = Path(__file__).resolve().parents[1]
SPECS = sorted((ROOT / "specs").glob("*.yaml"))
ENV = "CAUSALCLI_TEST_WAREHOUSE"


def differences(a, b, path="") -> list[str]:
    if isinstance(a, dict) and isinstance(b, dict):
        out = []
        for k in sorted(set(a) | set(b)):
            # how an experiment's exact sums were computed: their centres (a file's first rows, an engine's
            # mean) and the passes over the data (an engine's centres take one more)
            how = f"{path}.{k}" == ".diagnostics.sufficient_statistics"
            if k not in ("provenance", "timing_s", "spec_path") and not how:
                out += differences(a.get(k), b.get(k), f"{path}.{k}")
        return out
    if isinstance(a, list) and isinstance(b, list):
        if len(a) != len(b):
            return [f"{path}: {len(a)} vs {len(b)} items"]
        return [d for i, (x, y) in enumerate(zip(a, b)) for d in differences(x, y, f"{path}[{i}]")]
    if isinstance(a, float) and isinstance(b, float):
        # a p-value far in the tail multiplies the last bits of its statistic (t ~ 23: p ~ 1e-116): below 1e-15
        # a difference between probabilities means nothing
        floor = 1e-15 if path.rsplit(".", 1)[-1].startswith("p_value") else 0.0
        if math.isnan(a) and math.isnan(b) or abs(a - b) <= 1e-9 * max(abs(a), abs(b)) + floor:
            return []
        return [f"{path}: {a!r} vs {b!r}"]
    return [] if a == b else [f"{path}: {a!r} vs {b!r}"]


def arrow_of(path: Path) -> pa.Table:
    reader = "read_parquet" if path.suffix == ".parquet" else "read_csv"
    return duckdb.connect().execute(f"SELECT * FROM {reader}(?)", [str(path)]).to_arrow_table()


def engine_spec(tmp_path: Path, spec_file: Path, data: dict, name: str | None = None) -> Path:
    spec = yaml.safe_load(spec_file.read_text())
    kept = {k: v for k, v in spec["data"].items() if k not in ("path", "format", "delimiter")}
    out = tmp_path / f"{name or spec_file.stem}.yaml"
    out.write_text(yaml.safe_dump({**spec, "data": {**kept, **data}}))
    return out


def estimate(runner, spec: Path, *flags: str) -> tuple[int, dict, str]:
    res = invoke(runner, ["estimate", str(spec), "--format", "json", "--quiet", *flags])
    return res.exit_code, (json.loads(res.stdout) if res.stdout.strip() else {}), res.stderr


def big_experiment(path: Path, rows: int = 2_000_000, seed: int = 7) -> None:
    rng = np.random.default_rng(seed)
    arm = rng.choice(np.array(["control", "treatment"]), size=rows)
    pre = rng.gamma(2.0, 5.0, rows)
    sessions = rng.poisson(3.0, rows) + 1
    revenue = 0.8 * pre + rng.normal(2.0, 3.0, rows) + np.where(arm == "treatment", 0.1, 0.0)
    watch = sessions * rng.gamma(3.0, 3.0, rows)
    pq.write_table(pa.table({"variant": arm, "revenue": revenue, "pre_revenue": pre,
                             "sessions": sessions.astype(np.int64), "watch_time": watch,
                             "converted": (rng.random(rows) < 0.1).astype(np.int64)}), path, row_group_size=1 << 18)


BIG_SPEC = {"version": 1, "name": "big-ab", "treatment": "variant",
            "design": {"method": "experiment", "control": "control",
                       "expected_split": {"control": 0.5, "treatment": 0.5},
                       "metrics": [{"name": "revenue", "outcome": "revenue", "covariate": "pre_revenue"},
                                   {"name": "conversion", "outcome": "converted"},
                                   {"name": "watch_per_session", "numerator": "watch_time", "denominator": "sessions"}],
                       "options": {"cap_quantile": 0.99}}}


# ---------------------------------------------------------------- PostgreSQL


@pytest.mark.engines
@pytest.mark.parametrize("spec_file", SPECS, ids=lambda p: p.stem)
def test_every_bundled_example_on_postgres_equals_the_file(spec_file, postgres_url, runner, tmp_path, monkeypatch):
    monkeypatch.setenv(ENV, postgres_url)
    source = yaml.safe_load(spec_file.read_text())["data"]["path"]
    load_postgres(postgres_url, spec_file.stem, arrow_of(spec_file.parent / source))
    spec = engine_spec(tmp_path, spec_file, {"backend": "postgres", "table": spec_file.stem, "connection_env": ENV})
    code, got, err = estimate(runner, spec)  # default refuters included
    want_code, want, _ = estimate(runner, spec_file)
    assert code == want_code, err
    diffs = differences(got, want)
    assert not diffs, diffs[:5]
    assert got["provenance"]["backend"] == "postgres"
    assert got["provenance"]["table"] == spec_file.stem
    assert got["provenance"]["fetched_rows"] >= 1
    assert postgres_url not in json.dumps(got)


@pytest.mark.engines
def test_a_million_row_experiment_aggregates_in_postgres(postgres_url, runner, tmp_path, monkeypatch):
    monkeypatch.setenv(ENV, postgres_url)
    path = tmp_path / "big.parquet"
    big_experiment(path, rows=1_000_000)  # ~50 MB: above PostgreSQL's parallel-scan threshold (8 MB)
    load_postgres(postgres_url, "big_ab", pq.read_table(path))
    on_file = tmp_path / "file.yaml"
    on_file.write_text(yaml.safe_dump({**BIG_SPEC, "data": {"path": str(path)}}))
    on_pg = tmp_path / "pg.yaml"
    on_pg.write_text(yaml.safe_dump({**BIG_SPEC, "data": {"backend": "postgres", "table": "big_ab",
                                                          "connection_env": ENV}}))
    code, got, err = estimate(runner, on_pg)
    want_code, want, _ = estimate(runner, on_file)
    assert code == want_code, err
    assert not differences(got, want), differences(got, want)[:5]
    assert got["provenance"]["rows"] == 1_000_000
    assert got["provenance"]["fetched_rows"] < 20_000  # sufficient statistics and the first rows, not the users
    again = estimate(runner, on_pg)[1]  # parallel aggregation in PostgreSQL: the sums are exact, so no change
    assert json.dumps({**got, "timing_s": None}) == json.dumps({**again, "timing_s": None})


def sampled_on_postgres(url: str, runner, monkeypatch, tmp_path: Path, spec_file: Path, data_file: str,
                        sample: dict) -> tuple[Path, dict]:
    """The spec on a PostgreSQL copy of its data file, with ``data.sample``, and its result (--no-refute)."""
    monkeypatch.setenv(ENV, url)
    table = f"{spec_file.stem}_sample"
    load_postgres(url, table, arrow_of(ROOT / "specs" / "data" / data_file))
    spec = engine_spec(tmp_path, spec_file, {"backend": "postgres", "table": table, "connection_env": ENV,
                                             "sample": sample})
    code, got, err = estimate(runner, spec, "--no-refute")
    assert "provenance" in got, (code, err)
    return spec, got


@pytest.mark.engines
def test_data_sample_is_drawn_in_the_engine_and_repeats(postgres_url, runner, tmp_path, monkeypatch):
    spec_file = ROOT / "specs" / "lalonde_aipw.yaml"
    spec, first = sampled_on_postgres(postgres_url, runner, monkeypatch, tmp_path, spec_file, "nsw_cps.parquet",
                                      {"rows": 5000, "seed": 3})
    second = estimate(runner, spec, "--no-refute")[1]
    assert first["provenance"]["fetched_rows"] == 5000 and first["n"]["rows"] == 5000
    assert first["provenance"]["sample"] == {"rows": 5000, "seed": 3}
    assert not differences(first, second)
    other = engine_spec(tmp_path, spec_file, {"backend": "postgres", "table": "lalonde_aipw_sample",
                                              "connection_env": ENV, "sample": {"rows": 5000, "seed": 4}}, name="other")
    assert estimate(runner, other, "--no-refute")[1]["estimate"]["value"] != first["estimate"]["value"]


@pytest.mark.engines
def test_engine_errors_name_the_table_and_variable_never_the_connection(postgres_url, runner, tmp_path, monkeypatch):
    spec_file = ROOT / "specs" / "lalonde_aipw.yaml"
    load_postgres(postgres_url, "lalonde_errors", arrow_of(ROOT / "specs" / "data" / "nsw_cps.parquet"))

    def run(data: dict, *flags: str):
        res = invoke(runner, ["estimate", str(engine_spec(tmp_path, spec_file, data, name="e")), "--no-refute",
                              *flags])
        return res.exit_code, res.stderr

    base = {"backend": "postgres", "connection_env": ENV}
    monkeypatch.delenv(ENV, raising=False)
    code, err = run({**base, "table": "lalonde_errors"})
    assert code == 2 and ENV in err and "not set" in err
    # unreachable: a closed port; the message names the variable, not the URL, host or port
    closed = "postgresql://causalcli:s3cret@127.0.0.1:1/postgres"
    monkeypatch.setenv(ENV, closed)
    code, err = run({**base, "table": "lalonde_errors"})
    assert code == 3 and ENV in err and "s3cret" not in err and "127.0.0.1" not in err and "Traceback" not in err
    monkeypatch.setenv(ENV, postgres_url)
    code, err = run({**base, "table": "no_such_table"})
    assert code == 3 and "no_such_table" in err and ENV in err and postgres_url not in err
    code, err = run({**base, "table": "lalonde_errors", "columns": {"re78": "earnings"}})
    assert code == 3 and "re78" in err
    code, err = run({**base, "table": "lalonde_errors", "max_rows": 1000})
    assert code == 3 and "max_rows" in err and "sample" in err
    code, err = run({"backend": "oracle_of_delphi", "table": "t"})
    assert code == 2 and "duckdb" in err and "postgres" in err
    code, err = run({**base, "connection_env": closed, "table": "t"})
    assert code == 2 and "s3cret" not in err and "NAME of an environment variable" in err
    code, err = run({**base, "table": "lalonde_errors"}, "--set", f"data.connection_env={closed}")
    assert code == 2 and "s3cret" not in err and "connection_env=<not shown>" in err
    code, err = run({**base, "table": "lalonde_errors", "filter": "age > (SELECT 1)"})
    assert code == 2 and "data.filter" in err


@pytest.mark.engines
def test_validate_on_an_engine_reads_the_schema_not_the_rows(postgres_url, runner, tmp_path, monkeypatch):
    monkeypatch.setenv(ENV, postgres_url)
    table = arrow_of(ROOT / "specs" / "data" / "nsw_cps.parquet")
    treat = table.column("treat").to_numpy().astype(np.int64)
    treat[0] = 7  # not binary: estimate finds it in the rows; validate reads only the schema
    load_postgres(postgres_url, "lalonde_bad", table.set_column(table.schema.get_field_index("treat"), "treat",
                                                                pa.array(treat)))
    spec = engine_spec(tmp_path, ROOT / "specs" / "lalonde_aipw.yaml",
                       {"backend": "postgres", "table": "lalonde_bad", "connection_env": ENV})
    res = invoke(runner, ["validate", str(spec)])
    assert res.exit_code == 0 and "rows: not counted on postgres" in res.stdout  # no scan of the rows
    assert invoke(runner, ["estimate", str(spec), "--no-refute"]).exit_code == 3
    missing = engine_spec(tmp_path, ROOT / "specs" / "lalonde_aipw.yaml",
                          {"backend": "postgres", "table": "lalonde_bad", "connection_env": ENV,
                           "columns": {"re78": "something_else"}}, name="missing")
    res = invoke(runner, ["validate", str(missing)])
    assert res.exit_code == 3 and "re78" in res.stderr


# ---------------------------------------------------------------- Spark (one JVM: one xdist group)


@pytest.mark.engines
@pytest.mark.xdist_group("spark")
@pytest.mark.parametrize("spec_file", SPECS, ids=lambda p: p.stem)
def test_every_bundled_example_on_spark_equals_the_file(spec_file, spark, runner, tmp_path):
    """Spark against the file (PostgreSQL against the file is the test above: equal to the file, both are equal
    to each other without a third run here)."""
    source = spec_file.parent / yaml.safe_load(spec_file.read_text())["data"]["path"]
    name = f"spark_{spec_file.stem}"
    register_spark(name, arrow_of(source))
    code, on_spark, err = estimate(runner, engine_spec(tmp_path, spec_file, {"backend": "spark", "table": name}, "s"))
    want_code, on_file, _ = estimate(runner, spec_file)  # default refuters included
    assert code == want_code, err
    assert on_spark["provenance"]["backend"] == "spark"
    assert not differences(on_spark, on_file), differences(on_spark, on_file)[:5]


@pytest.mark.engines
@pytest.mark.xdist_group("spark")
def test_spark_reads_a_file_itself_and_reruns_are_identical(spark, runner, tmp_path):
    path = tmp_path / "big.parquet"
    big_experiment(path, rows=300_000)
    spec = tmp_path / "spark.yaml"
    spec.write_text(yaml.safe_dump({**BIG_SPEC, "data": {"backend": "spark", "path": str(path)}}))
    on_file = tmp_path / "file.yaml"
    on_file.write_text(yaml.safe_dump({**BIG_SPEC, "data": {"path": str(path)}}))
    first, second = estimate(runner, spec)[1], estimate(runner, spec)[1]
    assert json.dumps({**first, "timing_s": None}) == json.dumps({**second, "timing_s": None})
    assert not differences(first, estimate(runner, on_file)[1])
    assert first["provenance"]["backend"] == "spark" and first["provenance"]["data_path"] == str(path)


@pytest.mark.engines
@pytest.mark.xdist_group("spark")
@pytest.mark.parametrize("time,zone", [("date", None), ("stamp", "Europe/Berlin"), ("iso", None)])
def test_experiment_by_day_in_the_engine_equals_the_file(time, zone, spark, postgres_url, runner, tmp_path,
                                                          monkeypatch):
    """Dates, timestamps cut to days in data.timezone, and ISO text: period numbers computed in the engine."""
    from tests.test_experiment_time import METRICS, exposures

    monkeypatch.setenv(ENV, postgres_url)
    frame = exposures()
    path = tmp_path / "e.parquet"
    frame.to_parquet(path, index=False)
    arrow = pq.read_table(path)
    load_postgres(postgres_url, "exposures", arrow)
    register_spark("exposures", arrow)
    design = {"method": "experiment", "control": 0, "time": time, "metrics": METRICS}
    zone_key = {"timezone": zone} if zone else {}
    results = []
    for name, data in [("file", {"path": str(path)}),
                       ("pg", {"backend": "postgres", "table": "exposures", "connection_env": ENV}),
                       ("spark", {"backend": "spark", "table": "exposures"})]:
        spec = tmp_path / f"{name}.yaml"
        spec.write_text(yaml.safe_dump({"version": 1, "name": "by-day", "treatment": "variant", "design": design,
                                        "data": {**data, **zone_key}}))
        code, got, err = estimate(runner, spec)
        assert code == 0, (name, err)
        results.append(got)
    assert len(results[0]["diagnostics"]["cumulative"]) == 13
    for other in results[1:]:
        assert not differences(other, results[0]), differences(other, results[0])[:5]


@pytest.mark.engines
def test_data_sample_keeps_whole_units_of_a_panel(postgres_url, runner, tmp_path, monkeypatch):
    spec_file = ROOT / "specs" / "mpdta_did.yaml"
    _, got = sampled_on_postgres(postgres_url, runner, monkeypatch, tmp_path, spec_file, "mpdta.csv",
                                 {"rows": 1002, "seed": 1})
    assert got["provenance"]["sample"] == {"rows": 1002, "seed": 1, "by": "countyreal"}
    # 200 counties x 5 years: no county is cut. The estimate runs from cohort x period cells in the engine
    # (docs/designs/did.md), so what comes back is the cells, not the sampled panel's 1,000 rows.
    assert got["n"]["rows"] == 1000 and not any("balanc" in w for w in got["warnings"])
    assert "computed_from" in got["provenance"]["did_cells"] and got["provenance"]["fetched_rows"] < 1000
