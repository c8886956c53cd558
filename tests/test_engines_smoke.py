"""The real engines start, take a table, and answer SQL through Ibis (tests/engines.py).

If an engine cannot start these tests fail with the reason; they are never skipped.
Start-up times are printed (run with -s to see them), never asserted.
"""

from __future__ import annotations

import math
import struct

import pytest

from tests.engines import load_postgres, postgres_server, register_spark, spark_session, spark_startup_seconds

pytestmark = pytest.mark.engines

# doubles whose shortest decimal text is long, tiny, huge or subnormal: a lossy path changes their bits
AWKWARD_DOUBLES = [0.1, 1e-300, 123456.789012345, 5e-324, 1.7976931348623157e308, -0.0, 2.0 / 3.0, math.pi, 1e16 + 2]


def small_table():
    import pyarrow as pa

    return pa.table(
        {
            "unit": pa.array(range(8), pa.int64()),
            "arm": ["control", "treatment"] * 4,
            "y": [1.5, 2.5, 3.0, 4.0, None, 6.25, 7.0, 8.0],
        }
    )


def awkward_table():
    import pyarrow as pa

    return pa.table(
        {"i": pa.array(range(len(AWKWARD_DOUBLES)), pa.int64()), "x": pa.array(AWKWARD_DOUBLES, pa.float64())}
    )


def bits(values) -> list[bytes]:
    return [struct.pack("<d", v) for v in values]


EXPECTED_ARMS = {"control": (3, 1.5 + 3.0 + 7.0), "treatment": (4, 2.5 + 4.0 + 6.25 + 8.0)}


def assert_engine_reads_and_aggregates(connection) -> None:
    """The small table reads back whole, and one GROUP BY in the engine's own SQL gives the known sums."""
    assert connection.table("smoke_arms").count().execute() == 8
    summary = connection.sql(
        "SELECT arm, COUNT(y) AS n, SUM(y) AS total FROM smoke_arms GROUP BY arm ORDER BY arm"
    ).to_pyarrow()
    assert {row["arm"]: (row["n"], row["total"]) for row in summary.to_pylist()} == EXPECTED_ARMS


def test_postgres_starts_and_answers_through_ibis():
    import ibis

    server = postgres_server()
    print(f"\nPostgreSQL started in {server.startup_seconds:.2f}s on port {server.port}")
    load_postgres(server.url, "smoke_arms", small_table())
    connection = ibis.connect(server.url)
    try:
        assert_engine_reads_and_aggregates(connection)
    finally:
        connection.disconnect()


def test_postgres_round_trips_doubles_bit_for_bit():
    import ibis

    server = postgres_server()
    load_postgres(server.url, "smoke_doubles", awkward_table())
    # ibis.connect parses the URL; ibis.postgres.connect(url) would take the whole URL for a host name
    connection = ibis.connect(server.url)
    try:
        back = connection.table("smoke_doubles").order_by("i").to_pyarrow()
    finally:
        connection.disconnect()
    assert bits(back["x"].to_pylist()) == bits(AWKWARD_DOUBLES)


def test_postgres_replaces_a_table(postgres_url):
    import ibis
    import pyarrow as pa

    load_postgres(postgres_url, "smoke_replace", small_table())
    load_postgres(postgres_url, "smoke_replace", pa.table({"only": [1, 2]}))
    connection = ibis.connect(postgres_url)
    try:
        assert connection.table("smoke_replace").columns == ("only",)
    finally:
        connection.disconnect()


@pytest.mark.xdist_group("spark")
def test_spark_starts_and_answers_through_ibis():
    import ibis
    from pyspark.sql import SparkSession

    session = spark_session()
    print(f"\nSpark started in {spark_startup_seconds():.2f}s (first use in this process)")
    # production code calls getOrCreate() too: it must land on the same JVM and session
    assert SparkSession.builder.getOrCreate() is session
    register_spark("smoke_arms", small_table())
    # never connection.disconnect() here: Ibis's PySpark backend stops the (shared) session on disconnect
    assert_engine_reads_and_aggregates(ibis.pyspark.connect(session))


@pytest.mark.xdist_group("spark")
def test_spark_reads_parquet_and_round_trips_doubles(spark, tmp_path):
    import ibis
    import pyarrow.parquet as pq

    path = tmp_path / "doubles.parquet"
    pq.write_table(awkward_table(), path)
    register_spark("smoke_doubles", path)
    connection = ibis.pyspark.connect(spark)
    back = connection.table("smoke_doubles").order_by("i").to_pyarrow()
    assert bits(back["x"].to_pylist()) == bits(AWKWARD_DOUBLES)
