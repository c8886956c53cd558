"""What a small study on local Spark spends before its answer: the driver's start-up options
(causalcli/data/spark_jvm.py), the JVM kept off the user's stdout (engine._quietly), a schema read without a
Spark job (Engine.empty); one end-to-end test runs `causalcli estimate` on Spark as a user does, twice."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path

import pytest

from causalcli.data import spark_jvm
from causalcli.data.engine import _quietly

ROOT = Path(__file__).resolve().parents[1]
SMALL = 10_000


@pytest.fixture(autouse=True)
def archive_asked_for(monkeypatch):
    """The archive is opt-in: the tests of its mechanism ask for it (the off test takes it back)."""
    monkeypatch.setenv("CAUSALCLI_SPARK_CDS", "1")


def archive_of(cache: Path) -> Path:
    key = spark_jvm._installation_key()
    assert key is not None, "java and pyspark are installed in the test environment (make engines)"
    return cache / f"spark-{key}.jsa"


def option(options: list[str], prefix: str) -> str | None:
    found = [o for o in options if o.startswith(prefix)]
    return found[0][len(prefix):] if found else None


def test_a_small_input_gets_the_quick_compiler_and_a_first_run_writes_the_archive(tmp_path):
    options = spark_jvm.driver_options(SMALL, tmp_path)
    assert "-XX:TieredStopAtLevel=1" in options and "-Xlog:disable" in options
    writing = option(options, "-XX:ArchiveClassesAtExit=")
    assert writing is not None and Path(writing).parent == tmp_path and writing.endswith(".part")
    assert option(options, "-Xlog:cds+dynamic=info:file=") == f"{writing}.log"
    assert option(options, "-XX:SharedArchiveFile=") is None


def test_a_large_or_unknown_input_keeps_tiered_compilation_and_writes_no_archive(tmp_path):
    for size in (spark_jvm.C1_ONLY_BYTES + 1, None):
        options = spark_jvm.driver_options(size, tmp_path)
        assert "-XX:TieredStopAtLevel=1" not in options
        assert option(options, "-XX:ArchiveClassesAtExit=") is None
    archive_of(tmp_path).write_bytes(b"classes")  # an archive written earlier is mapped whatever the size
    assert option(spark_jvm.driver_options(None, tmp_path), "-XX:SharedArchiveFile=") == str(archive_of(tmp_path))


def test_an_archive_is_taken_only_once_the_jvm_logged_it_whole(tmp_path):
    archive = archive_of(tmp_path)
    part = tmp_path / f"{archive.stem}.123.part"
    Path(f"{part}.log").write_bytes(b"")  # the JVM opens its log as it starts, the archive as it ends
    options = spark_jvm.driver_options(SMALL, tmp_path)  # still to be written: neither mapped nor written again
    assert option(options, "-XX:SharedArchiveFile=") is None and option(options, "-XX:ArchiveClassesAtExit=") is None
    part.write_bytes(b"half")
    Path(f"{part}.log").write_bytes(b"[1s][info][cds,dynamic] Archiving hidden ...\n")
    assert option(spark_jvm.driver_options(SMALL, tmp_path), "-XX:SharedArchiveFile=") is None
    assert part.exists()
    Path(f"{part}.log").write_bytes(b"[2s][info][cds,dynamic] Written dynamic archive 0x8 - 0x9 [984 bytes]\n")
    options = spark_jvm.driver_options(SMALL, tmp_path)
    assert option(options, "-XX:SharedArchiveFile=") == str(archive)
    assert archive.read_bytes() == b"half" and not part.exists() and not Path(f"{part}.log").exists()


def test_what_a_dead_jvm_left_and_a_second_finished_archive_are_removed(tmp_path):
    archive = archive_of(tmp_path)
    old = time.time() - spark_jvm.STALE_S - 60
    dead = [tmp_path / f"{archive.stem}.77.part", tmp_path / f"{archive.stem}.78.part.log"]
    for leftover in dead:
        leftover.write_bytes(b"cut short")
        os.utime(leftover, (old, old))
    options = spark_jvm.driver_options(SMALL, tmp_path)
    assert not any(f.exists() for f in dead)
    assert option(options, "-XX:ArchiveClassesAtExit=") is not None  # this run writes a new one
    archive.write_bytes(b"first")
    second = tmp_path / f"{archive.stem}.79.part"  # two first runs at once: both JVMs wrote one
    second.write_bytes(b"second")
    Path(f"{second}.log").write_bytes(spark_jvm.WRITTEN + b" 0x8 - 0x9\n")
    assert option(spark_jvm.driver_options(SMALL, tmp_path), "-XX:SharedArchiveFile=") == str(archive)
    assert archive.read_bytes() == b"first" and sorted(p.name for p in tmp_path.iterdir()) == [archive.name]


def test_the_archive_is_off_unless_asked_for(tmp_path, monkeypatch):
    monkeypatch.delenv("CAUSALCLI_SPARK_CDS", raising=False)
    options = spark_jvm.driver_options(SMALL, tmp_path)
    assert "-XX:TieredStopAtLevel=1" in options
    assert not any("Archive" in o for o in options) and not list(tmp_path.iterdir())
    monkeypatch.setenv("CAUSALCLI_SPARK_CDS", "0")
    options = spark_jvm.driver_options(SMALL, tmp_path)
    assert "-XX:TieredStopAtLevel=1" in options
    assert not any("Archive" in o for o in options) and not list(tmp_path.iterdir())


def test_options_holding_a_space_are_quoted_for_spark():
    assert spark_jvm.joined(["-Xlog:disable", "-XX:SharedArchiveFile=/home/a b/x.jsa"]) == \
        '-Xlog:disable "-XX:SharedArchiveFile=/home/a b/x.jsa"'


def test_input_size_counts_a_folder_of_files_and_not_a_table(tmp_path):
    (tmp_path / "part").mkdir()
    (tmp_path / "part" / "a.parquet").write_bytes(b"x" * 10)
    (tmp_path / "b.parquet").write_bytes(b"x" * 5)
    assert spark_jvm.input_size(str(tmp_path)) == 15
    assert spark_jvm.input_size(str(tmp_path / "b.parquet")) == 5
    assert spark_jvm.input_size(None) is None and spark_jvm.input_size("s3://bucket/data") is None


def test_the_jvm_started_quietly_writes_nothing_to_the_users_stdout_or_stderr(capfd):
    """A JVM holding the user's stdout would mix its lines with --format json and keep a pipe open while it
    writes the class archive after the command ended."""
    _quietly(lambda: subprocess.run(["sh", "-c", "echo from-stdout; echo from-stderr >&2"], check=True))
    out, err = capfd.readouterr()
    assert "from-stdout" not in out and "from-stderr" not in err
    print("after")  # the descriptors are back
    assert capfd.readouterr().out == "after\n"


@pytest.mark.slow  # a second JVM writing and mapping the opt-in class archive: ~45 s (make test-slow)
@pytest.mark.engines
@pytest.mark.xdist_group("spark")
def test_a_second_run_maps_the_archive_the_first_wrote_and_prints_the_same_json(tmp_path):
    """Two fresh `causalcli estimate` processes on local Spark, as a user runs them: stdout is the JSON alone,
    the first run's JVM writes the archive after the command returned, the second maps it, same result; Ibis
    is never imported (Spark is driven through its session: Ibis's modules took 0.45 s)."""
    env = {**os.environ, "XDG_CACHE_HOME": str(tmp_path / "cache"), "PYTHONPATH": str(ROOT)}
    env["CAUSALCLI_SPARK_CDS"] = "1"  # opt-in
    command = [sys.executable, "-X", "importtime", "-m", "causalcli", "estimate", str(ROOT / "specs" / "ab_test.yaml"),
               "--set", "data.backend=spark", "--format", "json", "--quiet"]

    def run() -> dict:
        done = subprocess.run(command, env=env, capture_output=True, text=True, timeout=600)
        assert done.returncode == 0, done.stderr
        imported = {line.rsplit("|", 1)[-1].strip() for line in done.stderr.splitlines()
                    if line.startswith("import time:")}
        assert "pyspark.sql" in imported and not {m for m in imported if m == "ibis" or m.startswith("ibis.")}
        result = json.loads(done.stdout)  # nothing but the JSON on stdout
        result.pop("timing_s")
        return result

    first = run()
    archive = archive_of(tmp_path / "cache" / "causalcli")
    deadline = time.monotonic() + 300  # the JVM writes ~150 MB after the command returned
    while not any(spark_jvm.WRITTEN in log.read_bytes() for log in archive.parent.glob("*.part.log")):
        assert time.monotonic() < deadline, "the first run's JVM wrote no class archive"
        time.sleep(1)
    assert first == run()
    assert archive.is_file() and not list(archive.parent.glob("*.part*"))


@pytest.mark.engines
@pytest.mark.xdist_group("spark")
def test_a_spark_schema_is_read_without_a_job_and_gives_the_types_of_an_empty_fetch(spark):
    import datetime
    import decimal

    import pyarrow as pa

    from causalcli.data.engine import Engine, SparkBackend
    from causalcli.data.remote import describe
    from tests.engines import register_spark

    register_spark("describe_types", pa.table({
        "i": pa.array([1], pa.int64()), "j": pa.array([2], pa.int32()), "x": pa.array([0.5]),
        "s": pa.array(["a"]), "b": pa.array([True]), "d": pa.array([datetime.date(2024, 1, 2)]),
        "t": pa.array([datetime.datetime(2024, 1, 2, 3)], pa.timestamp("us", tz="UTC")),
        "m": pa.array([decimal.Decimal("1.25")], pa.decimal128(10, 2))}))
    engine = Engine("spark", "spark", SparkBackend(spark), "spark (local session)")
    relation = "(SELECT *, i + x AS ix, CAST(i AS DECIMAL(38, 4)) AS wide FROM describe_types) AS r"
    # The tracker learns of jobs through Spark's asynchronous listener bus, in order: a job that is
    # certain to run (a sum over two partitions, in a second group) is awaited, and once the tracker
    # sees it, any job describe started would be seen too.
    tracker, group, witness = spark.sparkContext.statusTracker(), "describe-without-a-job", "witness"
    try:
        spark.sparkContext.setJobGroup(group, "describe")
        types = describe(engine, relation)
        spark.sparkContext.setJobGroup(witness, "a job that runs")
        spark.range(0, 1000, numPartitions=2).selectExpr("sum(id)").collect()
    finally:
        spark.sparkContext.setJobGroup("", "")
    deadline = time.monotonic() + 60
    while not tracker.getJobIdsForGroup(witness) and time.monotonic() < deadline:
        time.sleep(0.05)
    assert tracker.getJobIdsForGroup(witness), "the tracker never saw the witness job"
    assert list(tracker.getJobIdsForGroup(group)) == []
    fetched = engine.arrow(f"SELECT * FROM {relation} LIMIT 0")
    import duckdb

    local = duckdb.connect()
    local.register("fetched", fetched)
    assert types == dict(local.execute("SELECT column_name, column_type FROM (DESCRIBE fetched)").fetchall())
    assert types["t"] == "TIMESTAMP WITH TIME ZONE" and types["wide"] == "DECIMAL(38,4)"
