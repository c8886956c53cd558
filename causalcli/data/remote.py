"""A study's data in an engine other than embedded DuckDB (``data.backend``: spark, postgres, ...).

The engine does the work that touches every row: renames, the sandboxed ``data.filter``, the optional
``data.sample``, and either
- for designs that only aggregate (``Design.streams_data``), every aggregate: ``study_data`` is a
  temporary view in the engine and the design's SQL is rendered in its dialect (``Engine.render``); or
- for row-level designs, one fetch of just the columns the design reads, as Arrow, into a local DuckDB
  table, after which the design runs exactly as on a file. The fetch is refused above ``data.max_rows``.

Rows fetched are ordered by their values (``ORDER BY`` every column, in DuckDB, after the fetch): an
engine returns rows in no fixed order, and a design that draws random numbers per row must see the same
rows in the same place on every run and every engine.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from causalcli.data.engine import Engine, connect, hide_connections
from causalcli.data.filter import check_renames
from causalcli.data.sql import TABLE, first_line, quote_identifier
from causalcli.errors import DataError

if TYPE_CHECKING:  # pragma: no cover
    import duckdb

    from causalcli.spec.models import DataSpec

DEFAULT_MAX_ROWS = 20_000_000  # row-level designs on an engine, unless data.max_rows says otherwise
SOURCE = "causalcli_source"  # the engine's name for a file Spark reads (data.path)


@dataclass
class Remote:
    """The study's rows as the engine holds them: a query over the source, and what is known of it."""

    engine: Engine
    display: str  # how messages name the data: the table or file
    select: str  # DuckDB SQL: the renamed, filtered (and sampled) rows
    types: dict[str, str]  # DuckDB type names of the columns of ``select``
    rows: int
    filtered_out: int | None
    provenance: dict[str, Any]


def open_remote(data: "DataSpec", path: str | None, columns: list[str] | None, schema_only: bool = False,
                sample_unit: str | None = None) -> Remote:
    """Connect, check the columns and build the study's query; count its rows unless ``schema_only``.

    ``columns``: the columns the design reads (None: all). ``path``: data.path resolved (Spark reads it).
    ``sample_unit``: a panel's unit column: ``data.sample`` then keeps whole units.
    """
    display = data.table or data.path or "<engine>"
    engine = connect(data, display, path)
    source = _source(engine, data, path, display)
    raw = _schema(engine, source, display, data)
    renames = data.columns
    check_renames(list(raw), renames, display)
    renamed = {renames.get(c, c): t for c, t in raw.items()}
    inner = ", ".join(["*", *(f"{quote_identifier(old)} AS {quote_identifier(new)}" for old, new in renames.items())])
    where = ""
    if data.filter is not None:
        from causalcli.data.derive import parse_filter_before_derive
        from causalcli.data.filter_sql import render_filter

        parsed = parse_filter_before_derive(data, {**raw, **renamed}, display)
        render_filter(parsed, engine.dialect)  # the checks of the engine's own rendering (a SpecError if unsafe)
        where = f" WHERE ({render_filter(parsed, 'duckdb')})"  # rendered with the query for the engine
    rows = f"SELECT {inner} FROM {source}"
    if data.derive:  # computed on the rows the filter keeps, in the engine
        rows, derived = _derived_rows(engine, f"({rows}) AS s{where}", data, renamed, raw, display)
        renamed, where = {**renamed, **derived}, ""
    if columns is None:
        wanted = list(renamed)
    else:  # validate on an engine shows every derived column with its type
        shown = [*columns, *data.derive] if schema_only else columns
        wanted = list(dict.fromkeys(c for c in shown if c in renamed))
    projected = ", ".join(quote_identifier(c) for c in wanted)
    select = f"SELECT {projected} FROM ({rows}) AS s{where}"
    provenance = {"backend": engine.name, **({"table": data.table} if data.table else {"data_path": data.path}),
                  "engine_version": engine.version()}
    if engine.name == "spark" and data.table is not None:  # PostgreSQL and the others keep no table versions
        from causalcli.data.table_formats import spark_snapshot

        provenance.update(spark_snapshot(engine.ibis._session, data.table))
    types = {c: renamed[c] for c in wanted}
    if schema_only:
        return Remote(engine, display, select, types, 0, None, provenance)
    total, kept = _counts(engine, source, select, display, data.filter is not None)
    if kept == 0:
        what = "no rows are left after data.filter; loosen the filter" if data.filter else "the table has no rows"
        raise DataError(what, file=display, key="data.filter" if data.filter else "data.table")
    filtered_out = (total - kept) if data.filter is not None else None  # the filter's rows, not the sample's
    if data.sample is not None and data.sample.rows < kept:
        if sample_unit is not None and sample_unit in renamed:  # a panel: whole units, or it is no panel
            select = sampled_units(select, sample_unit, data.sample.rows, data.sample.seed)
            kept = _counts(engine, source, select, display, False)[1]
        else:
            select = sampled_rows(select, wanted, data.sample.rows, data.sample.seed)
            kept = data.sample.rows
        provenance["sample"] = {"rows": data.sample.rows, "seed": data.sample.seed,
                                **({"by": sample_unit} if sample_unit is not None else {})}
    provenance["source_rows"] = total
    return Remote(engine, display, select, types, kept, filtered_out, provenance)


def _derived_rows(engine: Engine, kept: str, data: "DataSpec", renamed: dict[str, str], raw: dict[str, str],
                  display: str) -> tuple[str, dict[str, str]]:
    """The kept rows (a FROM item) with ``data.derive``'s columns, as DuckDB SQL for the engine, and their types
    as the engine gives them; an expression the engine refuses is named by its key."""
    from causalcli.data.derive import check_derive, derive_select, failed

    derived = check_derive(data.derive, list(renamed), [*raw, *renamed], display)
    for d in derived:
        d.sql(engine.dialect)  # the checks of the engine's own rendering (a SpecError if unsafe)
    query = derive_select(kept, derived)
    try:
        types = describe(engine, f"({query}) AS d")
    except Exception:  # noqa: BLE001 - the engine's binder: find the first expression it refuses
        for i, d in enumerate(derived):
            try:
                describe(engine, f"({derive_select(kept, derived[:i + 1])}) AS d")
            except Exception as exc:  # noqa: BLE001
                raise failed(d, _Hidden(_safe(exc)), renamed, display) from exc
        raise
    return query, {d.name: types[d.name] for d in derived}


class _Hidden(Exception):
    """An engine's message with its connections cut out."""


def fetch_rows(remote: Remote, con: "duckdb.DuckDBPyConnection", max_rows: int | None) -> int:
    """Fetch the study's rows into the local table ``raw_data``, ordered by their values; returns the rows fetched."""
    limit = DEFAULT_MAX_ROWS if max_rows is None else max_rows
    if remote.rows > limit:
        raise DataError(f"{remote.rows:,} rows to fetch from {remote.engine.where} is above data.max_rows "
                        f"({limit:,}): set data.sample: {{rows: {limit}, seed: 0}} to work on a sample drawn in the "
                        "engine, narrow data.filter, or raise data.max_rows", file=remote.display, key="data.max_rows")
    try:
        fetched = remote.engine.arrow(remote.select)
    except Exception as exc:  # noqa: BLE001 - the engine's error, named by its class (its text may hold a host)
        if "maxResultSize" in str(exc):  # Spark's cap on what a driver collects (1 GiB by default on a cluster)
            raise DataError(f"{remote.rows:,} rows are more than {remote.engine.where} lets its driver collect "
                            "(spark.driver.maxResultSize): set data.sample or data.max_rows lower, or raise "
                            "spark.driver.maxResultSize in spark-defaults.conf", file=remote.display,
                            key="data.max_rows") from exc
        raise DataError(f"{remote.engine.where} could not return the rows ({type(exc).__name__}: "
                        f"{_safe(exc)})", file=remote.display) from exc
    con.register("fetched", fetched)
    order = ", ".join(f"{quote_identifier(c)} NULLS LAST" for c in fetched.column_names)
    con.execute(f"CREATE TABLE raw_data AS SELECT * FROM fetched ORDER BY {order}")
    con.unregister("fetched")
    return fetched.num_rows


def create_view(engine: Engine, select: str) -> None:
    """``study_data`` in the engine, as a temporary view, for designs that aggregate there. Dropped first:
    PostgreSQL cannot replace a view by one whose columns change type."""
    engine.execute(f"DROP VIEW IF EXISTS {TABLE}")
    engine.execute(f"CREATE TEMPORARY VIEW {TABLE} AS {select}")


def create_relation(engine: Engine, name: str, select: str) -> None:
    """A relation that several queries read: a temporary table in PostgreSQL (computed once), a temporary view
    in Spark (recomputed by each query that reads it). Dropped first, as ``create_view``."""
    if engine.name == "postgres":
        engine.execute(f"DROP TABLE IF EXISTS {name}")
        engine.execute(f"CREATE TEMPORARY TABLE {name} AS {select}")
        return
    engine.execute(f"DROP VIEW IF EXISTS {name}")
    engine.execute(f"CREATE TEMPORARY VIEW {name} AS {select}")


def describe(engine: Engine, relation: str) -> dict[str, str]:
    """A relation's columns with DuckDB's type names: an empty result of the engine, described by a local DuckDB."""
    import duckdb

    local = duckdb.connect(":memory:")
    local.register("empty", engine.empty(f"SELECT * FROM {relation}"))
    return dict(local.execute("SELECT column_name, column_type FROM (DESCRIBE empty)").fetchall())


# ---------------------------------------------------------------- helpers


def _source(engine: Engine, data: "DataSpec", path: str | None, display: str) -> str:
    """The FROM item: the table's name, quoted part by part, or a view over the file Spark reads."""
    import sqlglot
    from sqlglot import exp

    if data.table is not None:
        try:
            return exp.to_table(data.table, dialect="duckdb").sql(dialect="duckdb")
        except sqlglot.errors.ParseError:
            raise DataError("data.table must be a table name (schema.table), not SQL", file=display,
                            key="data.table") from None
    from causalcli.data.table_formats import detect

    table_format = detect(path) if "://" not in path else None
    if table_format is not None:  # Spark would read every Parquet file in the folder, old versions' too
        raise DataError(f"this is a {table_format} table, and Spark reads data.path as plain Parquet files (every "
                        "version's): register the table in Spark's catalog and give data.table, or read it on the "
                        "embedded engine (data.backend: duckdb)", file=display, key="data.path")
    reader = "parquet" if (data.format == "parquet" or (data.format == "auto" and not path.lower().endswith(
        (".csv", ".tsv", ".txt", ".gz")))) else "csv"
    session = engine.ibis._session
    csv = session.read.option("header", True).option("inferSchema", True)
    if data.na_values:
        if len(data.na_values) > 1:  # Spark's CSV reader takes one nullValue
            from causalcli.errors import SpecError

            raise SpecError(f"Spark reads one missing-value string, not {len(data.na_values)}: keep one in "
                            "data.na_values", file=display, key="data.na_values")
        csv = csv.option("nullValue", data.na_values[0])
    try:
        frame = session.read.parquet(path) if reader == "parquet" else csv.csv(path)
    except Exception as exc:  # noqa: BLE001 - Spark's AnalysisException for a missing path, say
        raise DataError(f"Spark cannot read the file as {reader} ({type(exc).__name__}: {_safe(exc)})",
                        file=display, key="data.path") from None
    frame.createOrReplaceTempView(SOURCE)
    return SOURCE


def _schema(engine: Engine, source: str, display: str, data: "DataSpec") -> dict[str, str]:
    """The source's columns with DuckDB's type names (an empty Arrow result described by a local DuckDB)."""
    try:
        return describe(engine, source)
    except Exception as exc:  # noqa: BLE001 - a missing table, or no rights to read it
        variable = f" (connection from ${data.connection_env})" if data.connection_env else ""
        raise DataError(f"cannot read {'table ' + data.table if data.table else 'the file'} in "
                        f"{engine.name}{variable}: {type(exc).__name__}: {_safe(exc)}; check the name and your "
                        f"rights to read it{_catalog_hint(engine, data)}", file=display,
                        key="data.table" if data.table else "data.path") from exc


def _catalog_hint(engine: Engine, data: "DataSpec") -> str:
    """Why a Spark session may not know a table at all: its catalog is the session's own, not a metastore."""
    if engine.name != "spark" or data.table is None:
        return ""
    try:
        catalog = engine.ibis._session.conf.get("spark.sql.catalogImplementation", "in-memory")
    except Exception:  # noqa: BLE001 - Spark Connect may not show the setting
        return ""
    if catalog != "in-memory":
        return ""
    return ("; this Spark session's catalog is in memory and holds no tables of a metastore: set "
            "spark.sql.catalogImplementation hive in spark-defaults.conf (in SPARK_CONF_DIR), or read the files "
            "with data.path")


def _counts(engine: Engine, source: str, select: str, display: str, filtered: bool) -> tuple[int, int]:
    """(rows in the source, rows the study keeps): one query."""
    total = f"(SELECT count(*) FROM {source})" if filtered else "NULL"
    try:
        row = engine.rows(f"SELECT {total}, (SELECT count(*) FROM ({select}) AS k)")[0]
    except Exception as exc:  # noqa: BLE001 - e.g. the filter's types do not fit the engine's
        raise DataError(f"{engine.where} cannot run the study's query ({type(exc).__name__}: {_safe(exc)})",
                        file=display) from exc
    kept = int(row[1])
    return (int(row[0]) if row[0] is not None else kept), kept


def sampled_rows(select: str, columns: list[str], rows: int, seed: int, every_column: bool = False) -> str:
    """The ``rows`` rows of smallest seeded hash of their values in ``columns``: the same rows on every run of that
    engine, whatever order the engine stores them in (ties between rows equal in ``columns`` cannot change what a
    design reads of them). ``every_column``: keep the other columns too (a local table)."""
    cols = [quote_identifier(c) for c in columns]
    # md5 and concat_ws exist in every engine; values print as the engine prints them (the same on each run)
    texts = ", ".join(f"coalesce(CAST({c} AS VARCHAR), '(null)')" for c in cols)
    key = f"md5(concat_ws('|', '{int(seed)}', {texts}))"
    order = ", ".join([key, *(f"{c} NULLS LAST" for c in cols)])
    return f"SELECT {'*' if every_column else ', '.join(cols)} FROM ({select}) AS r ORDER BY {order} LIMIT {rows}"


def sampled_units(select: str, unit: str, rows: int, seed: int) -> str:
    """Whole units, in the order of a seeded hash of their value, while their rows add up to at most ``rows``."""
    u = quote_identifier(unit)
    hashed = f"md5(concat_ws('|', '{int(seed)}', coalesce(CAST({u} AS VARCHAR), '(null)')))"
    units = f"SELECT {u} AS u, count(*) AS n, {hashed} AS h FROM ({select}) AS r GROUP BY {u}"
    running = (f"SELECT u, sum(n) OVER (ORDER BY h, u ROWS BETWEEN UNBOUNDED PRECEDING AND CURRENT ROW) AS c "
               f"FROM ({units}) AS g")
    return f"SELECT * FROM ({select}) AS r WHERE {u} IN (SELECT u FROM ({running}) AS k WHERE c <= {rows})"


def _safe(exc: Exception) -> str:
    """An engine error's first line, connections cut out."""
    return hide_connections(first_line(exc))
