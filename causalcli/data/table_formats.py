"""Delta Lake and Apache Iceberg tables on the embedded engine: one snapshot's Parquet files, read by DuckDB.

A table format keeps a log of versions (Delta) or snapshots (Iceberg) over Parquet data files. The
libraries of the formats (``deltalake``, i.e. delta-rs, and ``pyiceberg``) are used only to resolve a
snapshot: its id, its schema and the list of its data files (and, for Delta, each file's partition
values, which Delta keeps in the log rather than in the file). DuckDB then reads exactly those files
as ``raw_data``, so everything after the read is the same as for a Parquet file.

What a plain read of the files would get wrong is refused (exit 3, one line): rows deleted by deletion
vectors or delete files, renamed columns (Delta column mapping; an Iceberg column whose name changed),
data files that are not Parquet or not on the local file system, and reader features not known here.
Both libraries are imported only when such a table is read (``--help`` and ``validate`` on a file import
neither).
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any
from urllib.parse import unquote, urlparse

from causalcli.data.sql import first_line, quote_identifier, quote_literal
from causalcli.errors import DataError, SpecError

if TYPE_CHECKING:  # pragma: no cover
    import duckdb
    import pyarrow as pa

DELTA, ICEBERG = "delta", "iceberg"
FORMATS = (DELTA, ICEBERG)
# Delta reader features a read of the Parquet files honours as it is (the log-only ones and a type);
# deletionVectors is accepted while no file of the snapshot has one.
DELTA_READABLE = {"timestampNtz", "v2Checkpoint", "vacuumProtocolCheck", "deletionVectors"}
FILE_COLUMN = "causalcli_data_file"  # the data file of each row, to join Delta's partition values on
PARTITIONS = "causalcli_partitions"


@dataclass(frozen=True)
class Snapshot:
    """One version of a table: its data files, columns and (Delta) partition values; what provenance says."""

    files: list[str]  # local paths of the Parquet data files, sorted: the same read order on every run
    schema: "pa.Schema"  # the snapshot's columns in the table's order
    partitions: "pa.Table | None"  # Delta: FILE_COLUMN and the values of the partition columns, per file
    provenance: dict[str, Any]


def detect(path: str) -> str | None:
    """delta for a folder with ``_delta_log/``; iceberg for a ``*.metadata.json`` file or a folder whose
    ``metadata/`` holds one; None otherwise. Looks at names only (no library imported)."""
    p = Path(path)
    if p.is_dir():
        if (p / "_delta_log").is_dir():
            return DELTA
        if (p / "metadata").is_dir() and any((p / "metadata").glob("*.metadata.json")):
            return ICEBERG
    elif p.name.endswith(".metadata.json"):
        return ICEBERG
    return None


def read_snapshot(con: "duckdb.DuckDBPyConnection", path: str, fmt: str, version: int | None, display: str,
                  kind: str, table: str = "raw_data", snapshot: Snapshot | None = None) -> dict[str, Any]:
    """Create ``table`` (a VIEW or TABLE) over the files of the snapshot at ``path`` (or of ``snapshot``, already
    resolved); returns its provenance.

    A view may read these files and nothing else: DuckDB's ``allowed_paths`` is set to them and external
    access is switched off before the view is created.
    """
    snapshot = snapshot or resolve(path, fmt, version, display)
    if not snapshot.files:
        raise DataError(f"the {fmt} table has no data files at {_which(snapshot)}: nothing to read", file=display,
                        key="data.version" if version is not None else "data.path")
    files = "[" + ", ".join(quote_literal(f) for f in snapshot.files) + "]"
    joined = snapshot.partitions is not None
    # union_by_name: a file written before a column was added lacks it (read as NULL); the folder names of
    # partitions are never parsed (Delta's values come from its log, Iceberg's from the files)
    reader = (f"read_parquet({files}, union_by_name = true, hive_partitioning = false"
              f"{', filename = ' + quote_literal(FILE_COLUMN) if joined else ''})")
    con.register("causalcli_schema", snapshot.schema.empty_table())
    wanted = con.execute("SELECT column_name, column_type FROM (DESCRIBE causalcli_schema)").fetchall()
    con.unregister("causalcli_schema")
    if joined:
        con.register("causalcli_partition_values", snapshot.partitions)
        con.execute(f"CREATE TABLE {PARTITIONS} AS SELECT * FROM causalcli_partition_values")
        con.unregister("causalcli_partition_values")
    if kind == "VIEW":
        con.execute(f"SET allowed_paths = {files}")
        con.execute("SET enable_external_access = false")
    import duckdb

    try:
        present = {row[0] for row in con.execute(f"DESCRIBE SELECT * FROM {reader}").fetchall()}
        in_partitions = set(snapshot.partitions.column_names) if joined else set()
        columns = []
        for name, duck_type in wanted:
            q = quote_identifier(name)
            if name in in_partitions:
                columns.append(f"p.{q}")
            elif name in present:
                columns.append(f"d.{q}")
            else:  # added after every file of this snapshot was written
                columns.append(f"CAST(NULL AS {duck_type}) AS {q}")
        source = (f"{reader} AS d JOIN {PARTITIONS} AS p USING ({quote_identifier(FILE_COLUMN)})" if joined
                  else f"{reader} AS d")
        con.execute(f"CREATE {kind} {table} AS SELECT {', '.join(columns)} FROM {source}")
        rows = con.execute(f"SELECT count(*) FROM {table}").fetchone()[0]
    except duckdb.Error as exc:
        raise DataError(f"cannot read the {fmt} table's data files: {first_line(exc)}", file=display) from None
    return {**snapshot.provenance, "source_rows": int(rows)}


def resolve(path: str, fmt: str, version: int | None, display: str) -> Snapshot:
    """The snapshot of the Delta or Iceberg table at ``path`` (``version``: a Delta version or an Iceberg
    snapshot id; None: the latest)."""
    if fmt == DELTA:
        return _delta(path, version, display)
    return _iceberg(path, version, display)


def _which(snapshot: Snapshot) -> str:
    p = snapshot.provenance
    return f"version {p['table_version']}" if "table_version" in p else f"snapshot {p['snapshot_id']}"


def _import(module: str, extra: str, display: str) -> Any:
    import importlib

    try:
        return importlib.import_module(module)
    except ImportError:
        raise DataError(f"reading a {extra} table needs the {module} library: pip install 'causalcli[{extra}]'",
                        file=display, key="data.path") from None


def _local_file(uri: str, root: str, fmt: str, display: str) -> str:
    """A data file's local path: relative to the table's folder, or a file:// URI; object stores are refused."""
    parsed = urlparse(uri)
    if parsed.scheme in ("", "file") or (len(parsed.scheme) == 1 and os.name == "nt"):
        local = unquote(parsed.path) if parsed.scheme == "file" else uri
        return os.path.normpath(local if os.path.isabs(local) else os.path.join(root, unquote(local)))
    raise DataError(f"the {fmt} table has a data file at {parsed.scheme}://..., and the embedded engine reads local "
                    "files only: read the table through an engine (data.backend: spark, data.table) or copy it",
                    file=display, key="data.path")


# ---------------------------------------------------------------- Delta


def _delta(path: str, version: int | None, display: str) -> Snapshot:
    deltalake = _import("deltalake", DELTA, display)
    import pyarrow as pa

    try:
        table = deltalake.DeltaTable(path, version=version)
    except Exception as exc:  # noqa: BLE001 - delta-rs raises its own classes (TableNotFound, a missing version)
        if version is not None:
            try:
                latest = deltalake.DeltaTable(path).version()
            except Exception:  # noqa: BLE001 - the table itself cannot be read: say that below
                latest = None
            if latest is not None:
                raise DataError(f"the Delta table has no version {version} (its versions go up to {latest}; "
                                "older ones may have been cleaned from the log): set data.version to one of them",
                                file=display, key="data.version") from None
        raise DataError(f"cannot read the Delta table: {first_line(exc)}", file=display, key="data.path") from None
    _check_delta_protocol(table, display)
    actions = pa.table(table.get_add_actions(flatten=True))
    root = os.path.abspath(path)
    files = [_local_file(p, root, DELTA, display) for p in actions.column("path").to_pylist()]
    partition_columns = list(table.metadata().partition_columns)
    partitions = None
    if partition_columns:
        values = {c: actions.column(f"partition.{c}") for c in partition_columns}
        partitions = pa.table({FILE_COLUMN: files, **values})
    schema = pa.schema(table.schema().to_arrow())
    return Snapshot(sorted(files), schema, partitions,
                    {"table_format": DELTA, "data_path": display, "table_version": int(table.version())})


def _check_delta_protocol(table: Any, display: str) -> None:
    """Refuse what a read of the Parquet files would get wrong (the Delta protocol's reader features)."""
    protocol = table.protocol()
    mapping = (table.metadata().configuration or {}).get("delta.columnMapping.mode", "none")
    if mapping != "none":
        raise DataError(f"the Delta table uses column mapping (mode {mapping}): its files name columns by "
                        "physical ids that the embedded engine does not map; read it through Spark with Delta "
                        "(data.backend: spark, data.table)", file=display, key="data.path")
    features = set(protocol.reader_features or ())
    unknown = sorted(features - DELTA_READABLE)
    if unknown or protocol.min_reader_version > 3:
        what = ", ".join(unknown) or f"reader version {protocol.min_reader_version}"
        raise DataError(f"the Delta table needs reader feature(s) {what}, which a plain read of its Parquet files "
                        "would get wrong; read it through Spark with Delta (data.backend: spark, data.table)",
                        file=display, key="data.path")
    if "deletionVectors" in features:
        import pyarrow as pa

        deleted = pa.RecordBatchReader.from_stream(table.deletion_vectors()).read_all()
        if deleted.num_rows:
            raise DataError(f"{deleted.num_rows} data file(s) of the Delta table have deletion vectors (rows "
                            "deleted without rewriting the file), which the embedded engine does not apply: "
                            "rewrite them (OPTIMIZE, or REORG TABLE ... APPLY (PURGE) in Spark) or read the "
                            "table through Spark with Delta", file=display, key="data.path")


# ---------------------------------------------------------------- Iceberg


def iceberg_metadata(path: str, display: str) -> str:
    """The metadata file of an Iceberg table: ``path`` itself, or in a table folder the one
    ``metadata/version-hint.text`` names, else the one with the highest version number."""
    if not os.path.isdir(path):
        return path
    folder = os.path.join(path, "metadata")
    hint = os.path.join(folder, "version-hint.text")
    if os.path.isfile(hint):
        with open(hint, encoding="utf-8") as fh:
            named = os.path.join(folder, f"v{fh.read().strip()}.metadata.json")
        if os.path.isfile(named):
            return named

    def number(name: str) -> int:
        head = name.split("-", 1)[0].split(".", 1)[0].lstrip("v")
        return int(head) if head.isdigit() else -1

    candidates = [n for n in os.listdir(folder) if n.endswith(".metadata.json") and number(n) >= 0]
    if not candidates:
        raise DataError("no numbered *.metadata.json in the Iceberg table's metadata/ folder: set data.path to "
                        "the table's current metadata file (its catalog's metadata_location)", file=display,
                        key="data.path")
    return os.path.join(folder, max(candidates, key=lambda n: (number(n), n)))


def _iceberg(path: str, version: int | None, display: str) -> Snapshot:
    _import("pyiceberg", ICEBERG, display)
    from pyiceberg.table import StaticTable

    metadata = iceberg_metadata(path, display)
    try:
        table = StaticTable.from_metadata(metadata)
    except Exception as exc:  # noqa: BLE001 - pyiceberg's errors for an unreadable or invalid metadata file
        raise DataError(f"cannot read the Iceberg metadata {os.path.basename(metadata)}: {first_line(exc)}",
                        file=display, key="data.path") from None
    snapshot = _iceberg_snapshot(table, version, display, os.path.dirname(os.path.abspath(metadata)))
    return Snapshot(snapshot.files, snapshot.schema, None, {"table_format": ICEBERG, "data_path": display,
                                                            "snapshot_id": _snapshot_id(snapshot)})


def read_catalog_table(con: "duckdb.DuckDBPyConnection", catalog: str, name: str, version: int | None,
                       kind: str) -> dict[str, Any]:
    """``read_snapshot`` for an Iceberg table named in a pyiceberg catalog (``data.catalog``, ``data.table``):
    the catalog says which metadata file is current. Its configuration (URI, credentials) stays in pyiceberg's
    own places, ``~/.pyiceberg.yaml`` or ``PYICEBERG_CATALOG__<NAME>__*`` variables, and in no message."""
    from causalcli.data.engine import hide_connections

    _import("pyiceberg", ICEBERG, name)
    from pyiceberg.catalog import load_catalog
    from pyiceberg.utils.config import Config

    properties = Config().get_catalog_config(catalog)  # read at each run: pyiceberg's own copy is from import
    if not properties:
        raise SpecError(f"pyiceberg catalog {catalog!r} is not configured: describe it in ~/.pyiceberg.yaml or in "
                        f"the variables PYICEBERG_CATALOG__{catalog.upper()}__URI (and __TYPE, __WAREHOUSE, ...)",
                        file=name, key="data.catalog")
    try:
        table = load_catalog(catalog, **properties).load_table(name)
    except Exception as exc:  # noqa: BLE001 - the catalog's driver errors; their text may hold its URI
        raise DataError(f"cannot read table {name} in pyiceberg catalog {catalog!r} ({type(exc).__name__}: "
                        f"{hide_connections(first_line(exc))}); check the name and the catalog's configuration",
                        file=name, key="data.table") from None
    snapshot = _iceberg_snapshot(table, version, name, table.location())
    named = {"table_format": ICEBERG, "catalog": catalog, "table": name, "snapshot_id": _snapshot_id(snapshot)}
    return read_snapshot(con, "", ICEBERG, version, name, kind,
                         snapshot=Snapshot(snapshot.files, snapshot.schema, None, named))


def _snapshot_id(snapshot: Snapshot) -> int:
    return snapshot.provenance["snapshot_id"]


def _iceberg_snapshot(table: Any, version: int | None, display: str, root: str) -> Snapshot:
    """The files and schema of an Iceberg table's current snapshot, or of snapshot ``version``."""
    snapshot = table.current_snapshot() if version is None else table.snapshot_by_id(version)
    if snapshot is None:
        if version is None:
            raise DataError("the Iceberg table has no snapshot: no data was ever written to it", file=display,
                            key="data.path")
        known = [s.snapshot_id for s in table.snapshots()][-5:]
        raise DataError(f"the Iceberg table has no snapshot {version}; its latest snapshots are "
                        f"{', '.join(map(str, known)) or '(none)'}: set data.version to one of them", file=display,
                        key="data.version")
    scan = table.scan(snapshot_id=snapshot.snapshot_id)
    schema = scan.projection()
    _check_iceberg_names(table, schema, display)
    files = []
    for task in scan.plan_files():
        if task.delete_files:
            raise DataError("the Iceberg snapshot has delete files (rows deleted without rewriting the data "
                            "files), which the embedded engine does not apply: compact the table "
                            "(rewrite_data_files) or read it through Spark with Iceberg", file=display,
                            key="data.path")
        if str(task.file.file_format).upper().split(".")[-1] != "PARQUET":
            raise DataError(f"the Iceberg table has a {task.file.file_format} data file; the embedded engine reads "
                            "Parquet only", file=display, key="data.path")
        files.append(_local_file(task.file.file_path, root, ICEBERG, display))
    return Snapshot(sorted(files), schema.as_arrow(), None,
                    {"table_format": ICEBERG, "snapshot_id": int(snapshot.snapshot_id)})


def _check_iceberg_names(table: Any, schema: Any, display: str) -> None:
    """Iceberg finds a file's columns by field id, DuckDB by name: a column renamed since some files were
    written would read as missing there, so any rename in the table's history is refused."""
    current = {field.field_id: field.name for field in schema.fields}
    for old in table.metadata.schemas:
        for field in old.fields:
            name = current.get(field.field_id)
            if name is not None and name != field.name:
                raise DataError(f"Iceberg column {name!r} is named {field.name!r} in another of the table's "
                                "schemas (a rename): data files may name it either way, and the embedded engine "
                                "reads columns by name; read the table through Spark with Iceberg", file=display,
                                column=name)


def check_version_key(fmt: str | None, version: int | None, display: str) -> None:
    """``data.version`` selects a version of a Delta or Iceberg table; on anything else it is a spec error."""
    if version is not None and fmt not in FORMATS:
        raise SpecError(f"data.version {version} reads an older version of a Delta or Iceberg table, and "
                        f"{display} is a {fmt or 'plain'} file: remove data.version", file=display,
                        key="data.version")


# ---------------------------------------------------------------- Spark's catalog


def spark_snapshot(session: Any, table: str) -> dict[str, Any]:
    """The version of a table in Spark's catalog whose provider is delta (``DESCRIBE HISTORY``, the latest
    commit) or iceberg (the snapshot its ``main`` branch points at, from the ``refs`` metadata table); {} for
    any other provider, a view, or when Spark cannot say. ``table``: the name as the spec gives it.

    Not exercised against real Delta or Iceberg tables on Spark: their connectors are Maven jars that the test
    machines cannot fetch (docs/warehouse.md). A version is provenance, never a reason to fail.
    """
    from sqlglot import exp

    name = exp.to_table(table, dialect="spark").sql(dialect="spark", identify=True)
    try:
        described = session.sql(f"DESCRIBE TABLE EXTENDED {name}").collect()
        provider = next((str(row[1]).strip().lower() for row in described if str(row[0]).strip() == "Provider"),
                        None)
        if provider == DELTA:
            latest = session.sql(f"DESCRIBE HISTORY {name} LIMIT 1").collect()
            return {"table_format": DELTA, "table_version": int(latest[0]["version"])} if latest else {}
        if provider == ICEBERG:
            main = session.sql(f"SELECT snapshot_id FROM {name}.`refs` WHERE name = 'main'").collect()
            return {"table_format": ICEBERG, "snapshot_id": int(main[0]["snapshot_id"])} if main else {}
    except Exception:  # noqa: BLE001 - e.g. a temporary view, which DESCRIBE shows without a provider row
        return {}
    return {}
