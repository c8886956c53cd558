"""Engines other than embedded DuckDB (Spark, PostgreSQL, any Ibis backend): connecting, and running the
SQL that causalcli writes for DuckDB there.

Credentials come from the environment only: ``data.connection_env`` names a variable, its value is read
here and goes to Ibis (or to Spark's session builder), never into a message, a log line or the result
(errors name the variable).
Queries are written once, in DuckDB's dialect; ``Engine.render`` parses them with sqlglot and writes
them in the engine's (the few functions sqlglot leaves DuckDB-only are rewritten first, see
``_portable``). Results come back as Arrow (``Engine.arrow``) or rows (``Engine.rows``). Spark is
driven through its own session (``SparkBackend``), not Ibis; a local session's JVM options are ``spark_jvm``'s.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from causalcli.errors import DataError, SpecError, keep_secret
from causalcli.spec import backends

if TYPE_CHECKING:  # pragma: no cover
    import pyarrow as pa

    from causalcli.spec.models import DataSpec


@dataclass
class Engine:
    """A connected engine: its name, sqlglot dialect, the Ibis backend, and how messages name it."""

    name: str  # causalcli's name: spark, postgres, ...
    dialect: str
    ibis: Any  # the Ibis backend object (Spark: ``SparkBackend``, the same calls)
    where: str  # "spark (local session)", "postgres at $WAREHOUSE_URL": never the URL itself
    fetched: int = 0  # rows that came back to the client, over every query (provenance.fetched_rows)

    def render(self, sql: str) -> str:
        """DuckDB SQL of causalcli's own (never spec text) in the engine's dialect."""
        import sqlglot

        tree = _portable(sqlglot.parse_one(sql, read="duckdb"), self.dialect)
        return tree.sql(dialect=self.dialect)

    def execute(self, sql: str) -> None:
        """A statement (a temporary view) run for its effect."""
        result = self.ibis.raw_sql(self.render(sql))
        if hasattr(result, "close"):  # DB-API cursors (postgres) are closed; Spark returns a DataFrame
            result.close()

    def arrow(self, sql: str) -> "pa.Table":
        """The query's result as an Arrow table."""
        text = self.render(sql)
        if self.name == "spark":  # PySpark >= 4 hands Arrow over directly
            result = self.ibis._session.sql(text).toArrow()
        else:
            result = self.ibis.sql(text, dialect=self.dialect).to_pyarrow()
        self.fetched += result.num_rows
        return result

    def empty(self, sql: str) -> "pa.Table":
        """The query's columns as an empty Arrow table. On classic Spark, from the analysed plan's schema
        converted as ``toArrow`` converts it, with no job run (a ``LIMIT 0`` query took 0.2-0.3 s)."""
        if self.name == "spark":
            session = self.ibis._session
            jconf = getattr(session, "_jconf", None)  # Spark Connect has none: it runs the query below
            if jconf is not None:
                from pyspark.sql.pandas.types import to_arrow_schema

                schema = to_arrow_schema(session.sql(self.render(sql)).schema,
                                         error_on_duplicated_field_names_in_struct=True,
                                         prefers_large_types=jconf.arrowUseLargeVarTypes())
                return schema.empty_table()
        return self.arrow(f"{sql} LIMIT 0")

    def rows(self, sql: str) -> list[tuple]:
        """The query's result as tuples (small results: aggregates, counts)."""
        text = self.render(sql)
        if self.name == "spark":
            out = [tuple(r) for r in self.ibis._session.sql(text).collect()]
        else:
            cursor = self.ibis.raw_sql(text)
            try:
                out = [tuple(r) for r in cursor.fetchall()]
            finally:
                cursor.close()
        self.fetched += len(out)
        return out

    def version(self) -> str | None:
        """The engine's version, for provenance."""
        try:
            return str(self.ibis.version)
        except Exception:  # noqa: BLE001 - a version is provenance, never a reason to fail
            return None


class SparkBackend:
    """What causalcli uses of Ibis's PySpark backend (the session, its SQL, its version), without importing Ibis:
    its modules take 0.45 s, a tenth of a small study on local Spark."""

    def __init__(self, session: Any) -> None:
        self._session = session
        # as Ibis's connect does: naive timestamps are UTC, as on DuckDB (set on a notebook's session too)
        session.conf.set("spark.sql.session.timeZone", "UTC")

    def raw_sql(self, query: str) -> Any:
        return self._session.sql(query)

    @property
    def version(self) -> str:
        import pyspark

        return pyspark.__version__


def _portable(tree: Any, dialect: str) -> Any:
    """Rewrite what sqlglot writes as DuckDB-only or wrongly: NaN and infinity tests, Spark's exact
    percentiles, logarithms, PostgreSQL's round to n places, and unnamed subqueries (PostgreSQL before 16 needs a name on each)."""
    from sqlglot import exp

    names = iter(range(1, 1 << 30))  # q1, q2, ...: the same text for the same query on every run

    def fix(node: Any) -> Any:
        if isinstance(node, exp.IsNan) and dialect != "spark":
            return exp.EQ(this=node.this, expression=exp.cast(exp.Literal.string("NaN"), "double"))
        if isinstance(node, exp.Anonymous) and str(node.this).lower() == "timezone" and dialect == "spark":
            zone, value = node.expressions  # DuckDB's timezone(zone, instant): the wall-clock time there
            return exp.func("from_utc_timestamp", value, zone)
        if dialect == "spark" and isinstance(node, exp.Window) and isinstance(node.this, exp.RowNumber) \
                and node.args.get("order") is None:  # Spark numbers rows only in an order: the scan's
            node.set("order", exp.Order(expressions=[exp.Ordered(this=exp.func("monotonically_increasing_id"))]))
            return node
        if isinstance(node, exp.IsInf):
            value = exp.func("abs", node.this)
            return exp.EQ(this=value, expression=exp.cast(exp.Literal.string("Infinity"), "double"))
        if dialect == "spark" and isinstance(node, (exp.PercentileDisc, exp.PercentileCont)):
            # sqlglot writes Spark's exact percentiles as PERCENTILE_DISC(x, q), which Spark refuses
            name = "PERCENTILE_DISC" if isinstance(node, exp.PercentileDisc) else "PERCENTILE_CONT"
            return exp.WithinGroup(this=exp.Anonymous(this=name, expressions=[node.expression]),
                                   expression=exp.Order(expressions=[exp.Ordered(this=node.this)]))
        if isinstance(node, exp.Log):
            return _logarithm(node, dialect)
        if dialect == "postgres" and isinstance(node, exp.Round) and node.args.get("decimals") is not None:
            # PostgreSQL rounds to n places only a NUMERIC: round(double precision, integer) does not exist
            node = node.copy()
            node.set("this", exp.cast(node.this, "decimal"))
            return exp.cast(node, "double")
        if isinstance(node, exp.Subquery) and not node.alias and isinstance(node.parent, (exp.From, exp.Join)):
            node.set("alias", exp.TableAlias(this=exp.to_identifier(f"q{next(names)}")))
        return node

    return tree.transform(fix)


def _logarithm(node: Any, dialect: str) -> Any:
    """DuckDB's log(x) is base 10, which Spark's LOG(x) is not (sqlglot writes it as it is); PostgreSQL's
    log(b, x) takes NUMERIC only."""
    import sqlglot
    from sqlglot import exp

    if node.args.get("expression") is None:
        if not sqlglot.Dialect.get_or_raise(dialect).parser_class.LOG_DEFAULTS_TO_LN:
            return node
        return exp.Log(this=exp.Literal.number(10), expression=node.this)
    if dialect != "postgres":
        return node
    base, value = (exp.cast(part, "decimal") for part in (node.this, node.expression))
    return exp.cast(exp.Log(this=base, expression=value), "double")


def connection_value(data: "DataSpec", display: str) -> str | None:
    """The connection held by the variable ``data.connection_env`` names (None: none named); exit 2 when unset."""
    if data.connection_env is None:
        return None
    value = os.environ.get(data.connection_env, "")
    if not value.strip():
        raise SpecError(f"environment variable {data.connection_env} (named by data.connection_env) is not set: "
                        f"export it with the {data.backend} connection before running", file=display,
                        key="data.connection_env")
    keep_secret(value)
    return value


# libpq waits without end for a server that accepts the connection and never answers (a proxy, a firewall that
# drops packets): connect_timeout in the URL or PGCONNECT_TIMEOUT override this
CONNECT_TIMEOUT_S = 15

# what a refused connection's message means, and what to do: matched in the driver's text, which is never shown
# (it names the host and the user)
_CONNECT_REASONS = (
    (("password authentication failed", "authentication failed", "no password supplied", "role \""),
     "the server refused the login: check the user and the password (in the URL, PGPASSWORD or ~/.pgpass)"),
    (("does not exist",), "the server has no such database: check the database in the URL"),
    (("connection refused",), "nothing answers at that host and port: check the port and that the server runs"),
    (("could not translate host name", "name or service not known", "nodename nor servname",
      "temporary failure in name resolution"), "the host name does not resolve: check the host in the URL"),
    (("timeout expired", "timed out"), "no answer in time: check the host, the port and the network (firewall, "
     f"VPN); connect_timeout in the URL or PGCONNECT_TIMEOUT sets the wait ({CONNECT_TIMEOUT_S} s by default)"),
    (("no route to host", "network is unreachable"), "the host cannot be reached from this machine: check the "
     "host and the network"),
)


def _connect_reason(exc: Exception) -> str:
    """Why a connection failed, in words that quote nothing of the driver's message; '' when not known."""
    text = str(exc).lower()
    for needles, reason in _CONNECT_REASONS:
        if any(needle in text for needle in needles):
            return reason
    return ""


def _check_scheme(value: str, name: str, variable: str, display: str) -> None:
    """The variable of a non-Spark engine holds a URL of that engine (``postgres://...``): exit 2 otherwise,
    naming the scheme at most (a value without one is not echoed: it may be a bare password or host)."""
    import re

    scheme = value.strip().split("://", 1)[0].lower() if "://" in value else ""
    if not re.fullmatch(r"[a-z][a-z0-9+.-]{0,30}", scheme):
        raise SpecError(f"${variable} (named by data.connection_env) does not hold a URL: export it as "
                        f"{name}://user@host:port/database (its value is not shown)", file=display,
                        key="data.connection_env")
    if scheme.replace("postgresql", "postgres") != name:
        raise SpecError(f"${variable} (named by data.connection_env) holds a {scheme}:// URL but data.backend is "
                        f"{name}: export a {name}://user@host:port/database URL, or set data.backend to the engine "
                        "the URL names", file=display, key="data.connection_env")


def connect(data: "DataSpec", display: str, path: str | None = None) -> Engine:
    """Connect to ``data.backend``: exit 2 for a spec that cannot name a connection, exit 3 when the engine
    cannot be reached (the message names the variable, never its value). ``path``: the files a local Spark
    session will read (their size picks its JVM's options)."""
    value = connection_value(data, display)
    name = data.backend
    dialect = backends.DIALECTS.get(name, name)
    where = f"{name} at ${data.connection_env}" if data.connection_env else f"{name} (local session)"
    if name != "spark" and value is None:
        raise SpecError(f"backend {name} needs data.connection_env: the name of an environment variable holding "
                        f"its URL (e.g. WAREHOUSE_URL, exported as {name}://user@host:port/database)",
                        file=display, key="data.connection_env")
    try:
        if name == "spark":
            backend = SparkBackend(_spark_session(value, path))
            _quiet_query_loggers()
        else:
            import ibis

            _check_scheme(value, name, data.connection_env, display)
            options: dict[str, Any] = {}
            if name == "postgres" and "connect_timeout" not in value and not os.environ.get("PGCONNECT_TIMEOUT"):
                options["connect_timeout"] = CONNECT_TIMEOUT_S
            backend = ibis.connect(value, **options)
            if name == "postgres":  # naive timestamps are UTC, as on DuckDB (data.timezone cuts them to days)
                backend.raw_sql("SET TIME ZONE 'UTC'").close()
    except (SpecError, DataError):
        raise
    except ImportError as exc:  # a client library missing (Spark Connect's grpcio, say): its name is no secret
        raise DataError(f"cannot connect to {where}: {exc}; install the client library it names (for Spark "
                        "Connect: pip install 'pyspark[connect]')", file=display, key="data.backend") from exc
    except Exception as exc:  # noqa: BLE001 - any driver error; its text may hold the host or a password
        reason = _connect_reason(exc) or ("check that the engine is running and that the variable holds a "
                                          "working connection")
        raise DataError(f"cannot connect to {where} ({type(exc).__name__}): {reason} (run with --debug for the "
                        "driver's message)",
                        file=display, key="data.connection_env" if data.connection_env else "data.backend") from exc
    return Engine(name, dialect, backend, where)


def _spark_session(master: str | None, path: str | None = None) -> Any:
    """The process's Spark session: an existing one (a notebook's, the test suite's), else a new one:
    ``local[*]`` (its JVM started as ``spark_jvm`` says), or the master or Spark Connect URL the variable holds."""
    from pyspark.sql import SparkSession

    active = SparkSession.getActiveSession()
    if active is not None and master is None:
        return active
    from pathlib import Path

    if master is not None and master.startswith("sc://"):  # Spark Connect: the server has its own settings
        return SparkSession.builder.remote(master).getOrCreate()
    from causalcli.data import spark_jvm

    quiet = Path(__file__).with_name("spark-log4j2.properties")
    jvm = spark_jvm.driver_options(spark_jvm.input_size(path)) if master is None else []
    builder = (SparkSession.builder.appName("causalcli")
               .config("spark.sql.session.timeZone", "UTC")
               .config("spark.ui.enabled", "false")
               .config("spark.ui.showConsoleProgress", "false")
               .config("spark.driver.extraJavaOptions",
                       spark_jvm.joined([f"-Dlog4j2.configurationFile=file:{quiet}", *jvm])))
    if master is None:  # one machine: a few shuffle partitions, not 200; no network name lookups
        cores = os.cpu_count() or 2
        builder = (builder.master("local[*]").config("spark.sql.shuffle.partitions", str(2 * cores))
                   .config("spark.driver.maxResultSize", "0")  # the fetch is capped by data.max_rows instead
                   .config("spark.driver.host", "127.0.0.1").config("spark.driver.bindAddress", "127.0.0.1"))
    else:
        builder = builder.master(master)
    session = _quietly(builder.getOrCreate)
    session.sparkContext.setLogLevel("FATAL")
    return session


def _quiet_query_loggers() -> None:
    """PySpark 4 logs every failed query (a missing table, say) as a JSON record of the JVM's stack trace on
    stderr before raising it; causalcli turns the exception into its one-line error (--debug shows it whole)."""
    import logging

    try:
        from pyspark.logger import PySparkLogger
    except ImportError:  # PySpark before 4 has no such logger
        return
    for logger in ("SQLQueryContextLogger", "DataFrameQueryContextLogger"):
        PySparkLogger.getLogger(logger).setLevel(logging.CRITICAL + 1)


def _quietly(start: Any) -> Any:
    """Start the JVM with its stdout and stderr in a file, not the user's: Java and Spark print start-up
    lines (incubator modules, the default log level) that no log setting silences, and a JVM holding the
    user's stdout would keep a pipe (``| jq``) open until it ends, class archive written. A failure to start
    quotes that file's last line (URLs cut out)."""
    import sys
    import tempfile

    try:
        sys.stdout.flush()
    except (OSError, ValueError):  # a closed stdout: nothing of ours is buffered for it
        pass
    with tempfile.TemporaryFile() as log:
        saved = [os.dup(1), os.dup(2)]
        for fd in (1, 2):
            os.dup2(log.fileno(), fd)  # the JVM inherits these descriptors
        try:
            return start()
        except Exception as exc:
            log.seek(0)
            lines = [ln.strip() for ln in log.read().decode("utf-8", "replace").splitlines() if ln.strip()]
            if lines:
                exc.args = (*exc.args, "spark: " + hide_connections(lines[-1]))
            raise
        finally:
            for fd, copy in zip((1, 2), saved):
                os.dup2(copy, fd)
                os.close(copy)


def hide_connections(text: str) -> str:
    """An engine's message with anything that looks like a connection (scheme://...) cut out, at most 300
    characters: its driver may name the host, the user or the password."""
    import re

    return re.sub(r"\b[a-z][a-z0-9+.-]*://\S+", "<connection>", text)[:300]
