"""Real engines for the test suite: a local PostgreSQL server and a local Spark session.

Each is started at most once per test process and kept for the whole session. When an engine
cannot start, the helpers call ``pytest.fail`` with the reason (and how to fix it): the engine
tests fail, they are never skipped. ``make engines`` installs the system parts (Java, PostgreSQL).

Under pytest-xdist every worker starts its own PostgreSQL server on its own free port: a server
starts in about a second, holds ~30 MB, and needs no cross-process reference count to know
when to stop it (a shared server behind a file lock would). Spark tests all carry
``@pytest.mark.xdist_group("spark")`` and ``make test`` runs ``--dist loadgroup``, so one worker
holds the suite's only JVM.
"""

from __future__ import annotations

import atexit
import glob
import io
import os
import shutil
import socket
import subprocess
import tempfile
import time
import uuid
from dataclasses import dataclass, field
from pathlib import Path

import pytest

PG_SUPERUSER = "causalcli"
PG_DATABASE = "postgres"
PG_SYSTEM_USER = "postgres"  # PostgreSQL refuses to run as root; CI runs as root
INSTALL_HINT = "run `make engines` (installs Debian's openjdk-17-jre-headless and postgresql)"


# --------------------------------------------------------------------------- PostgreSQL


@dataclass
class PostgresServer:
    """A throwaway server: trust auth on loopback only, data in a temp dir, stopped at exit."""

    url: str
    port: int
    data_dir: Path
    bin_dir: Path
    startup_seconds: float
    stopped: bool = field(default=False, repr=False)

    def stop(self) -> None:
        if self.stopped:
            return
        self.stopped = True
        _run_as_server_user([str(self.bin_dir / "pg_ctl"), "stop", "-D", str(self.data_dir), "-m", "immediate", "-s"])
        shutil.rmtree(self.data_dir.parent, ignore_errors=True)


_postgres: PostgresServer | None = None
_postgres_error: str | None = None


def postgres_server() -> PostgresServer:
    """This process's PostgreSQL server, started on first use; fails the test if it cannot start."""
    global _postgres, _postgres_error
    if _postgres is None and _postgres_error is None:
        try:
            _postgres = _start_postgres()
            atexit.register(_postgres.stop)
        except EngineUnavailable as exc:
            _postgres_error = str(exc)
    if _postgres_error is not None:
        pytest.fail(f"PostgreSQL could not start: {_postgres_error}", pytrace=False)
    return _postgres


class EngineUnavailable(RuntimeError):
    """Why an engine could not start (shown as the failing test's message)."""


def _postgres_bin_dir() -> Path:
    # Debian keeps the server binaries off PATH, one directory per major version
    on_path = shutil.which("initdb")
    candidates = [Path(on_path).resolve().parent] if on_path else []
    candidates += sorted(
        (Path(p).parent for p in glob.glob("/usr/lib/postgresql/*/bin/initdb")),
        key=lambda d: int(d.parent.name) if d.parent.name.isdigit() else 0,
        reverse=True,
    )
    for directory in candidates:
        if (directory / "pg_ctl").exists():
            return directory
    raise EngineUnavailable(
        f"no PostgreSQL server binaries (initdb, pg_ctl) on PATH or in /usr/lib/postgresql/*/bin: {INSTALL_HINT}"
    )


def _is_root() -> bool:
    return hasattr(os, "geteuid") and os.geteuid() == 0


def _ensure_system_user() -> None:
    import pwd

    try:
        pwd.getpwnam(PG_SYSTEM_USER)
    except KeyError:
        done = subprocess.run(
            ["useradd", "--system", "--no-create-home", "--shell", "/usr/sbin/nologin", PG_SYSTEM_USER],
            capture_output=True, text=True,
        )
        if done.returncode != 0:
            reason = done.stderr.strip()
            raise EngineUnavailable(f"running as root and could not create the '{PG_SYSTEM_USER}' user: {reason}")


def _run_as_server_user(command: list[str], timeout: float = 60) -> subprocess.CompletedProcess:
    if _is_root():
        command = ["runuser", "-u", PG_SYSTEM_USER, "--", *command]
    return subprocess.run(command, capture_output=True, text=True, timeout=timeout)


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _start_postgres() -> PostgresServer:
    started = time.perf_counter()
    bin_dir = _postgres_bin_dir()
    # as root, under /tmp: the server user must reach the data dir (TMPDIR may be a private one)
    root = Path(tempfile.mkdtemp(prefix="causalcli-pg-", dir="/tmp" if _is_root() else None))
    data_dir = root / "data"
    if _is_root():
        import pwd

        _ensure_system_user()
        account = pwd.getpwnam(PG_SYSTEM_USER)
        os.chown(root, account.pw_uid, account.pw_gid)
    init = _run_as_server_user(
        [str(bin_dir / "initdb"), "-D", str(data_dir), "-U", PG_SUPERUSER, "-A", "trust",
         "-E", "UTF8", "--locale=C", "--no-sync"],
        timeout=120,
    )
    if init.returncode != 0:
        shutil.rmtree(root, ignore_errors=True)
        raise EngineUnavailable(f"initdb failed: {(init.stderr or init.stdout).strip()[-800:]}")
    # durability off (a test server); timezone fixed so timestamps print the same everywhere
    settings = (
        "-c listen_addresses=127.0.0.1 -c fsync=off -c synchronous_commit=off -c full_page_writes=off "
        f"-c timezone=UTC -c max_connections=30 -c shared_buffers=32MB -k {root}"
    )
    last_error = ""
    for _attempt in range(3):  # another process may take the free port between probe and bind
        port = _free_port()
        start = _run_as_server_user(
            [str(bin_dir / "pg_ctl"), "start", "-w", "-t", "60", "-D", str(data_dir),
             "-l", str(root / "server.log"), "-o", f"-p {port} {settings}"],
            timeout=90,
        )
        if start.returncode == 0:
            url = f"postgresql://{PG_SUPERUSER}@127.0.0.1:{port}/{PG_DATABASE}"
            return PostgresServer(url, port, data_dir, bin_dir, time.perf_counter() - started)
        log = root / "server.log"
        last_error = (log.read_text(errors="replace") if log.exists() else start.stderr).strip()[-800:]
    shutil.rmtree(root, ignore_errors=True)
    raise EngineUnavailable(f"pg_ctl start failed: {last_error}")


def load_postgres(url: str, name: str, table) -> None:
    """Create (or replace) table ``name`` from a pyarrow Table, through COPY.

    The rows travel as CSV written by Arrow, whose doubles are the shortest text that reads back
    to the same bits, and PostgreSQL (12+) parses float8 text exactly: doubles survive bit for
    bit. Column types follow Ibis's own pyarrow -> PostgreSQL mapping.
    """
    import ibis
    import psycopg
    import pyarrow.csv as pa_csv
    from psycopg import sql

    schema = ibis.Schema.from_pyarrow(table.schema)
    columns = ", ".join(column.sql("postgres") for column in schema.to_sqlglot_column_defs("postgres"))
    buffer = io.BytesIO()
    pa_csv.write_csv(table, buffer, write_options=pa_csv.WriteOptions(include_header=False))
    identifier = sql.Identifier(name)
    with psycopg.connect(url) as connection, connection.cursor() as cursor:
        cursor.execute(sql.SQL("DROP TABLE IF EXISTS {}").format(identifier))
        cursor.execute(sql.SQL("CREATE TABLE {} ({})").format(identifier, sql.SQL(columns)))
        with cursor.copy(sql.SQL("COPY {} FROM STDIN (FORMAT csv)").format(identifier)) as copy:
            copy.write(buffer.getbuffer())
        cursor.execute(sql.SQL("ANALYZE {}").format(identifier))


# --------------------------------------------------------------------------- Spark

_spark = None
_spark_error: str | None = None
_spark_startup_seconds: float | None = None
_spark_dir: Path | None = None


def spark_session():
    """This process's local SparkSession (one JVM), created on first use through getOrCreate.

    Production code that later calls ``SparkSession.builder.getOrCreate()`` in the same process
    gets this same session (and must not stop it).
    """
    global _spark, _spark_error
    if _spark is None and _spark_error is None:
        try:
            _spark = _start_spark()
        except EngineUnavailable as exc:
            _spark_error = str(exc)
    if _spark_error is not None:
        pytest.fail(f"Spark could not start: {_spark_error}", pytrace=False)
    return _spark


def spark_startup_seconds() -> float | None:
    return _spark_startup_seconds


def _java_available() -> bool:
    java_home = os.environ.get("JAVA_HOME")
    if java_home:
        return (Path(java_home) / "bin" / "java").exists()
    return shutil.which("java") is not None


def _start_spark():
    global _spark_startup_seconds, _spark_dir
    started = time.perf_counter()
    if not _java_available():
        java_home = os.environ.get("JAVA_HOME")
        where = f"JAVA_HOME={java_home} has no bin/java" if java_home else "no `java` on PATH"
        raise EngineUnavailable(f"{where}: {INSTALL_HINT}")
    try:
        from pyspark.sql import SparkSession
    except ImportError as exc:
        raise EngineUnavailable(f"pyspark is not installed ({exc}): pip install -e '.[test]'") from None
    _spark_dir = Path(tempfile.mkdtemp(prefix="causalcli-spark-"))
    builder = (
        SparkSession.builder.master("local[2]")
        .appName("causalcli-tests")
        .config("spark.ui.enabled", "false")
        .config("spark.ui.showConsoleProgress", "false")
        .config("spark.sql.shuffle.partitions", "4")
        .config("spark.default.parallelism", "2")
        .config("spark.sql.session.timeZone", "UTC")
        .config("spark.sql.warehouse.dir", str(_spark_dir / "warehouse"))
        .config("spark.local.dir", str(_spark_dir / "scratch"))
        .config("spark.driver.memory", "1g")
        .config("spark.sql.execution.arrow.pyspark.enabled", "true")
        # the driver binds to loopback: no DNS lookup of the host name, no firewall prompt
        .config("spark.driver.host", "127.0.0.1")
        .config("spark.driver.bindAddress", "127.0.0.1")
    )
    try:
        session = builder.getOrCreate()
    except Exception as exc:  # py4j/pyspark raise several types when the JVM does not come up
        raise EngineUnavailable(f"{type(exc).__name__}: {str(exc).strip()[-800:]}") from None
    session.sparkContext.setLogLevel("ERROR")
    atexit.register(_stop_spark, session)
    _spark_startup_seconds = time.perf_counter() - started
    return session


def _stop_spark(session) -> None:
    try:
        session.stop()
    finally:
        if _spark_dir is not None:
            shutil.rmtree(_spark_dir, ignore_errors=True)


def stop_engines() -> None:
    """Stop whatever this process started (also registered with atexit, which a killed worker skips)."""
    global _spark
    if _postgres is not None:
        _postgres.stop()
    if _spark is not None:
        session, _spark = _spark, None
        _stop_spark(session)


def register_spark(name: str, source) -> None:
    """Make ``name`` readable by SQL in the session: a temp view over a Parquet path or a pyarrow Table.

    An Arrow table is first written to Parquet in the session's scratch directory (exact types and
    doubles; no pandas round trip), then read like any Parquet source. Timestamps are written in
    microseconds (Spark's resolution); a nanosecond value that would be truncated raises.
    """
    session = spark_session()
    if isinstance(source, (str, Path)):
        path = Path(source)
    else:
        import pyarrow.parquet as pq

        # a fresh file per call: Spark caches file listings, so a view must never see its file rewritten
        path = _spark_dir / "tables" / f"{name}-{uuid.uuid4().hex}.parquet"
        path.parent.mkdir(parents=True, exist_ok=True)
        # Spark cannot read Parquet's nanosecond timestamps: write microseconds, refusing to truncate
        pq.write_table(source, path, coerce_timestamps="us", allow_truncated_timestamps=False)
    session.read.parquet(str(path)).createOrReplaceTempView(name)


def engine_source(request, monkeypatch, engine: str, name: str, table) -> dict:
    """A pyarrow ``table`` as table ``name`` on ``engine`` ("postgres" or "spark", through the session fixtures of
    ``request``) and the spec's ``data:`` that reads it there."""
    if engine == "postgres":
        url = request.getfixturevalue("postgres_url")
        monkeypatch.setenv("CAUSALCLI_TEST_PG", url)
        load_postgres(url, name, table)
        return {"backend": "postgres", "table": name, "connection_env": "CAUSALCLI_TEST_PG"}
    request.getfixturevalue("spark")
    register_spark(name, table)
    return {"backend": "spark", "table": name}
