"""Issue 16 point 1: Delta Lake and Iceberg tables, their version or snapshot id in provenance.

A Delta table written by ``deltalake.write_deltalake`` (delta-rs) and an Iceberg table written by pyiceberg
(a SQLite catalog in tmp_path), each in two commits, give the JSON of the same rows in a Parquet file (only
``provenance`` differs, and that names the version read); ``data.version`` reads the older one. What a plain
read of the data files would get wrong is refused (exit 3). On Spark: ``data.na_values`` and the Spark side.
"""

from __future__ import annotations

import json
from pathlib import Path

import duckdb
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
import yaml

from tests.conftest import SPECS, base_spec, simulate
from tests.engines import register_spark
from tests.test_engines import differences, estimate

AB_SPEC = yaml.safe_load((SPECS / "ab_test.yaml").read_text())
PSM_SPEC = {**yaml.safe_load((SPECS / "lalonde_psm.yaml").read_text()), "refute": []}


def arrow(name: str) -> pa.Table:
    return duckdb.connect().execute(f"SELECT * FROM read_parquet('{SPECS / 'data' / name}')").to_arrow_table()


def spec_on(tmp_path: Path, spec: dict, data: dict, name: str) -> Path:
    path = tmp_path / f"{name}.yaml"
    path.write_text(yaml.safe_dump({**spec, "data": data}))
    return path


def parquet_of(tmp_path: Path, table: pa.Table, name: str) -> str:
    path = tmp_path / f"{name}.parquet"
    pq.write_table(table, path)
    return str(path)


@pytest.fixture(scope="module")
def ab() -> pa.Table:
    return arrow("ab_test.parquet")


@pytest.fixture
def delta_ab(tmp_path, ab) -> Path:
    """ab_test in a Delta table: version 0 holds the first 20,000 users, version 1 appends the rest."""
    from deltalake import write_deltalake

    path = tmp_path / "exposures"
    write_deltalake(str(path), ab.slice(0, 20_000))
    write_deltalake(str(path), ab.slice(20_000), mode="append")
    return path


@pytest.fixture
def iceberg_ab(tmp_path, ab):
    """ab_test in an Iceberg table of a SQLite catalog: two snapshots, as the Delta table's two versions."""
    from pyiceberg.catalog.sql import SqlCatalog

    catalog = SqlCatalog("local", uri=f"sqlite:///{tmp_path / 'catalog.db'}", warehouse=(tmp_path / "wh").as_uri())
    catalog.create_namespace("analytics")
    table = catalog.create_table("analytics.exposures", schema=ab.schema)
    table.append(ab.slice(0, 20_000))
    table.append(ab.slice(20_000))
    return table


def test_a_delta_table_gives_the_parquet_files_result_and_its_version(runner, tmp_path, ab, delta_ab):
    code, got, err = estimate(runner, spec_on(tmp_path, AB_SPEC, {"path": str(delta_ab)}, "delta"))
    want_code, want, _ = estimate(runner, spec_on(tmp_path, AB_SPEC, {"path": parquet_of(tmp_path, ab, "ab")}, "f"))
    assert code == want_code == 0, err
    assert not differences(got, want), differences(got, want)[:5]
    provenance = got["provenance"]
    assert provenance["table_format"] == "delta" and provenance["table_version"] == 1
    assert provenance["source_rows"] == 40_000 and provenance["data_path"] == str(delta_ab)
    assert "data_sha256" not in provenance


def test_delta_time_travel_reads_the_older_version(runner, tmp_path, ab, delta_ab):
    older = {"path": str(delta_ab), "version": 0}
    code, got, err = estimate(runner, spec_on(tmp_path, AB_SPEC, older, "v0"))
    first_half = {"path": parquet_of(tmp_path, ab.slice(0, 20_000), "half")}
    assert code == 0, err
    assert not differences(got, estimate(runner, spec_on(tmp_path, AB_SPEC, first_half, "f"))[1])
    assert got["provenance"]["table_version"] == 0 and got["provenance"]["source_rows"] == got["n"]["rows"] == 20_000
    code, _, err = estimate(runner, spec_on(tmp_path, AB_SPEC, {"path": str(delta_ab), "version": 7}, "v7"))
    assert code == 3 and "key 'data.version'" in err and "no version 7" in err and "up to 1" in err


def test_a_partitioned_delta_table_takes_its_partition_values_from_the_log(runner, tmp_path):
    """Delta keeps partition values in the log, not the files: matching on them (int columns) as on the file."""
    from deltalake import write_deltalake

    path = tmp_path / "nsw"
    write_deltalake(str(path), arrow("nsw_cps.parquet"), partition_by=["black", "nodegree"])
    code, got, err = estimate(runner, spec_on(tmp_path, PSM_SPEC, {"path": str(path), "format": "delta"}, "d"))
    want_code, want, _ = estimate(runner, spec_on(tmp_path, PSM_SPEC, {"path": str(SPECS / "data/nsw_cps.parquet")},
                                                  "f"))
    assert code == want_code, err
    assert not differences(got, want), differences(got, want)[:5]


def test_an_iceberg_table_gives_the_parquet_files_result_and_its_snapshot(runner, tmp_path, ab, iceberg_ab):
    folder = tmp_path / "wh" / "analytics" / "exposures"  # the table's folder: its latest metadata file is read
    code, got, err = estimate(runner, spec_on(tmp_path, AB_SPEC, {"path": str(folder)}, "ice"))
    assert code == 0, err
    assert not differences(got, estimate(runner, spec_on(tmp_path, AB_SPEC, {"path": parquet_of(tmp_path, ab, "ab")},
                                                         "f"))[1])
    assert got["provenance"]["table_format"] == "iceberg" and got["provenance"]["source_rows"] == 40_000
    assert got["provenance"]["snapshot_id"] == iceberg_ab.current_snapshot().snapshot_id
    # the catalog's metadata file, and time travel to the first snapshot
    first = iceberg_ab.snapshots()[0].snapshot_id
    metadata = iceberg_ab.metadata_location.removeprefix("file://")
    code, older, err = estimate(runner, spec_on(tmp_path, AB_SPEC, {"path": metadata, "version": first}, "ice0"))
    assert code == 0, err
    assert older["provenance"]["snapshot_id"] == first and older["n"]["rows"] == 20_000
    first_half = {"path": parquet_of(tmp_path, ab.slice(0, 20_000), "half")}
    assert not differences(older, estimate(runner, spec_on(tmp_path, AB_SPEC, first_half, "f0"))[1])
    code, _, err = estimate(runner, spec_on(tmp_path, AB_SPEC, {"path": metadata, "version": 12345}, "bad"))
    assert code == 3 and "no snapshot 12345" in err and str(first) in err


def test_an_iceberg_table_named_in_its_catalog(runner, tmp_path, ab, iceberg_ab, monkeypatch):
    """data.catalog + data.table: the catalog's pointer says which metadata file is current; its URI stays in
    pyiceberg's configuration (here its variables), never in the spec or a message."""
    uri = f"sqlite:///{tmp_path / 'catalog.db'}"
    monkeypatch.setenv("PYICEBERG_CATALOG__LOCAL__URI", uri)
    monkeypatch.setenv("PYICEBERG_CATALOG__LOCAL__TYPE", "sql")
    named = {"table": "analytics.exposures", "catalog": "local"}
    code, got, err = estimate(runner, spec_on(tmp_path, AB_SPEC, named, "cat"))
    assert code == 0, err
    assert not differences(got, estimate(runner, spec_on(tmp_path, AB_SPEC, {"path": parquet_of(tmp_path, ab, "ab")},
                                                         "f"))[1])
    assert {k: got["provenance"][k] for k in ("table_format", "catalog", "table", "snapshot_id", "source_rows")} == {
        "table_format": "iceberg", "catalog": "local", "table": "analytics.exposures",
        "snapshot_id": iceberg_ab.current_snapshot().snapshot_id, "source_rows": 40_000}
    code, _, err = estimate(runner, spec_on(tmp_path, AB_SPEC, {**named, "table": "analytics.nope"}, "nope"))
    assert code == 3 and "key 'data.table'" in err and "NoSuchTableError" in err and uri not in err
    code, _, err = estimate(runner, spec_on(tmp_path, AB_SPEC, {**named, "catalog": "other"}, "other"))
    assert code == 2 and "pyiceberg catalog 'other' is not configured" in err
    code, _, err = estimate(runner, spec_on(tmp_path, AB_SPEC, {**named, "catalog": uri}, "uri"))
    assert code == 2 and "key 'data.catalog'" in err and uri not in err
    code, _, err = estimate(runner, spec_on(tmp_path, AB_SPEC, named, "cat"), "--set", f"data.catalog={uri}")
    assert code == 2 and "--set data.catalog=<not shown>" in err and uri not in err


def test_an_iceberg_column_renamed_since_files_were_written_is_refused(runner, tmp_path, iceberg_ab):
    with iceberg_ab.update_schema() as update:
        update.rename_column("revenue", "sales")
    folder = tmp_path / "wh" / "analytics" / "exposures"
    code, _, err = estimate(runner, spec_on(tmp_path, AB_SPEC, {"path": str(folder)}, "renamed"))
    assert code == 3 and "'revenue' is named 'sales' in another of the table's schemas" in err


def _delta_commit(path: Path, version: int, *actions: dict) -> None:
    (path / "_delta_log" / f"{version:020d}.json").write_text("".join(json.dumps(a) + "\n" for a in actions))


def test_what_a_plain_read_of_delta_files_gets_wrong_is_refused(runner, tmp_path):
    from deltalake import DeltaTable, TableFeatures, write_deltalake

    data = simulate(60)
    spec = base_spec("t")
    table = tmp_path / "t"
    write_deltalake(str(table), data)
    # deletion vectors switched on but none written yet: the files are the rows, so it is read
    DeltaTable(str(table)).alter.add_feature([TableFeatures.DeletionVectors], allow_protocol_versions_increase=True)
    code, got, err = run(runner, tmp_path, spec)
    assert code in (0, 1) and got["provenance"]["table_version"] == 1, err
    # column mapping: the files name columns by physical ids
    log = [json.loads(line) for line in (table / "_delta_log" / f"{0:020d}.json").read_text().splitlines()]
    meta = next(a for a in log if "metaData" in a)
    meta["metaData"]["configuration"] = {"delta.columnMapping.mode": "name", "delta.columnMapping.maxColumnId": "5"}
    schema = json.loads(meta["metaData"]["schemaString"])
    for i, field in enumerate(schema["fields"]):
        field["metadata"] = {"delta.columnMapping.id": i + 1, "delta.columnMapping.physicalName": f"col-{i}"}
    meta["metaData"]["schemaString"] = json.dumps(schema)
    _delta_commit(table, 2, {"protocol": {"minReaderVersion": 2, "minWriterVersion": 5}}, meta)
    code, _, err = run(runner, tmp_path, spec)
    assert code == 3 and "column mapping (mode name)" in err and "key 'data.path'" in err
    # a reader feature not known here
    write_deltalake(str(tmp_path / "u"), data)
    _delta_commit(tmp_path / "u", 1, {"protocol": {"minReaderVersion": 3, "minWriterVersion": 7, "readerFeatures":
                                                   ["typeWidening"], "writerFeatures": ["typeWidening"]}})
    code, _, err = run(runner, tmp_path, base_spec("u"))
    assert code == 3 and "reader feature(s) typeWidening" in err


def run(runner, tmp_path: Path, spec: dict) -> tuple[int, dict, str]:
    path = tmp_path / "study.yaml"
    path.write_text(yaml.safe_dump(spec))
    return estimate(runner, path)


def test_data_version_needs_a_table_format_on_the_embedded_engine(runner, tmp_path, sim_csv):
    code, _, err = run(runner, tmp_path, base_spec(str(sim_csv), data={"path": str(sim_csv), "version": 0}))
    assert code == 2 and "key 'data.version'" in err and "remove data.version" in err
    spark = {"path": str(sim_csv), "backend": "spark", "version": 3}
    code, _, err = run(runner, tmp_path, base_spec(str(sim_csv), data=spark))
    assert code == 2 and "data.version" in err and "data.table" in err


# ---------------------------------------------------------------- Spark


@pytest.mark.engines
@pytest.mark.xdist_group("spark")
def test_na_values_on_spark_equal_the_file(spark, runner, tmp_path):
    """data.na_values reaches Spark's CSV reader (its nullValue): the same rows dropped as on the file."""
    data = simulate(300)
    data["x1"] = data["x1"].round(6).astype(object)
    data.loc[[3, 50, 101], "x1"] = "NA"
    path = tmp_path / "sim.csv"
    data.to_csv(path, index=False)
    on_file = {"path": str(path), "na_values": ["NA"]}
    code, want, err = run(runner, tmp_path, base_spec("x", data=on_file))
    assert code in (0, 1) and want["n"]["dropped_missing"] == 3, err
    code, got, err = run(runner, tmp_path, base_spec("x", data={**on_file, "backend": "spark"}))
    assert code in (0, 1) and got["n"]["dropped_missing"] == 3, err
    assert not differences(got, want), differences(got, want)[:5]
    assert "table_format" not in got["provenance"]
    from causalcli.data.table_formats import spark_snapshot

    register_spark("na_values_view", pa.table({"x": [1.0]}))
    assert spark_snapshot(spark, "na_values_view") == {}  # a view: no provider, no version
    code, _, err = run(runner, tmp_path, base_spec("x", data={**on_file, "backend": "spark", "na_values": ["NA", "."]}))
    assert code == 2 and "key 'data.na_values'" in err


@pytest.mark.engines
@pytest.mark.xdist_group("spark")
def test_spark_refuses_a_delta_folder_as_plain_parquet(spark, runner, tmp_path):
    from deltalake import write_deltalake

    write_deltalake(str(tmp_path / "t"), simulate(50))
    write_deltalake(str(tmp_path / "t"), simulate(50, seed=2), mode="overwrite")  # version 0's file stays
    code, _, err = run(runner, tmp_path, base_spec("t", data={"path": "t", "backend": "spark"}))
    assert code == 3 and "this is a delta table" in err and "data.table" in err


class _Rows:
    def __init__(self, rows):
        self.rows = rows

    def collect(self):
        return self.rows


class _Catalog:
    """What Spark with the Delta or Iceberg connector answers; the real connectors are Maven jars, not on PyPI."""

    def __init__(self, provider: str):
        self.provider, self.sent = provider, []

    def sql(self, text: str) -> _Rows:
        self.sent.append(text)
        if text.startswith("DESCRIBE TABLE EXTENDED"):
            return _Rows([("id", "bigint", None), ("", "", ""), ("Provider", self.provider, "")])
        if text.startswith("DESCRIBE HISTORY"):
            return _Rows([{"version": 12}])
        return _Rows([{"snapshot_id": 4872427656825007636}])


def test_spark_provenance_reads_the_version_of_delta_and_iceberg_tables():
    from causalcli.data.table_formats import spark_snapshot

    delta = _Catalog("delta")
    assert spark_snapshot(delta, "analytics.exposures") == {"table_format": "delta", "table_version": 12}
    assert delta.sent[1] == "DESCRIBE HISTORY `analytics`.`exposures` LIMIT 1"
    iceberg = _Catalog("iceberg")
    assert spark_snapshot(iceberg, "analytics.exposures") == {"table_format": "iceberg",
                                                              "snapshot_id": 4872427656825007636}
    assert iceberg.sent[1] == "SELECT snapshot_id FROM `analytics`.`exposures`.`refs` WHERE name = 'main'"
    assert spark_snapshot(_Catalog("parquet"), "analytics.exposures") == {}


def test_init_reads_a_delta_tables_folder(runner, tmp_path, ab, delta_ab):
    """init on a Delta folder said 'data file not found'; it now reads the latest version, as data.path does,
    and the spec it writes names the folder. Another folder is refused saying what init reads."""
    from tests.conftest import invoke

    res = invoke(runner, ["init", str(delta_ab), "-y", "revenue", "-t", "variant", "-d", "experiment"])
    assert res.exit_code == 0, res.output
    spec = yaml.safe_load(res.stdout)
    assert spec["data"]["path"] == str(delta_ab) and "(40,000 rows" in res.stdout
    res = invoke(runner, ["init", str(tmp_path), "-y", "revenue"])
    assert res.exit_code == 3 and "this is a folder" in res.output and "Delta or Iceberg" in res.output
