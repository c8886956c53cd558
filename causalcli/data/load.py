"""Getting a study's data into DuckDB as ``raw_data``: a CSV or Parquet file, CSV on stdin, or an
in-memory table (pandas, polars, Arrow) handed to ``causalcli.estimate``.

Every failure is a one-line ``DataError`` naming the file (or ``<stdin>``, ``<pandas DataFrame>``).
What happens next (renames, the sandboxed filter) is ``causalcli.data.filter``.
"""

from __future__ import annotations

import hashlib
import os
import sys
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from causalcli.data.sql import first_line, quote_literal
from causalcli.data.table_formats import FORMATS as TABLE_FORMATS
from causalcli.data.table_formats import check_version_key, detect, read_catalog_table, read_snapshot
from causalcli.errors import DataError

if TYPE_CHECKING:  # pragma: no cover
    import duckdb
    import pyarrow as pa

    from causalcli.spec.loading import LoadedSpec

FINGERPRINT_ABOVE = 1 << 30  # above 1 GiB, hash size + head + tail instead of every byte
# Files people save data in that are not CSV or Parquet (read as CSV they give misleading errors).
OTHER_FORMATS = {".json": "a JSON file", ".jsonl": "a JSON lines file", ".ndjson": "a JSON lines file",
                 ".xlsx": "an Excel workbook", ".xls": "an Excel workbook", ".dta": "a Stata file",
                 ".sav": "an SPSS file", ".rds": "an R data file", ".rdata": "an R data file",
                 ".feather": "a Feather file", ".arrow": "an Arrow file", ".sas7bdat": "a SAS file"}


@dataclass(frozen=True)
class Opened:
    """A connection holding ``raw_data`` (a table, or with ``lazy`` a view over the file)."""

    con: "duckdb.DuckDBPyConnection"
    display: str  # how errors name the data
    provenance: dict[str, Any]
    lazy: bool


def resolve_path(spec: "LoadedSpec") -> str:
    path = spec.study.data.path
    if path == "-" or "://" in path:  # stdin, or a URI an engine reads itself (s3a://, hdfs://, file://)
        return path
    p = Path(path)
    return str(p if p.is_absolute() else spec.source.base_dir / p)


SMALL_CSV_BYTES = 64 << 20  # a CSV up to this size is copied into memory even for a design that streams


def open_data(spec: "LoadedSpec", stdin_bytes: bytes | None = None, lazy: bool = False,
              frame: Any = None, view_parquet: bool = False) -> Opened:
    """Read the spec's data (or ``frame``, an in-memory table, in place of ``data.path``) into ``raw_data``.

    ``lazy`` (designs that only aggregate in DuckDB): ``raw_data`` is a view over the file,
    never copied into memory; DuckDB may then read that one file and no other. Stdin and
    in-memory tables are always copied. ``view_parquet``: a Parquet file is read as with ``lazy`` (a
    columnar file: a query reads only its columns, where a copy reads all of them once more).
    """
    import duckdb

    con = duckdb.connect(":memory:")
    con.execute("SET TimeZone = 'UTC'")  # naive timestamps are UTC; data.timezone cuts them to days
    if frame is not None:
        display, provenance = register_memory(con, frame)
        return Opened(con, display, provenance, lazy=False)
    data = spec.study.data
    if data.catalog is not None:  # an Iceberg table named in its catalog
        kind = "VIEW" if lazy or view_parquet else "TABLE"
        provenance = read_catalog_table(con, data.catalog, data.table, data.version, kind)
        return Opened(con, data.table, provenance, kind == "VIEW")
    path = resolve_path(spec)
    if path == "-":
        check_version_key("csv", data.version, "<stdin>")
        raw = stdin_bytes if stdin_bytes is not None else sys.stdin.buffer.read()
        with tempfile.NamedTemporaryFile("wb", suffix=".csv", delete=False) as tmp:
            tmp.write(raw)
        try:
            read_file(con, tmp.name, "csv", "<stdin>", delimiter=data.delimiter, na_values=data.na_values)
        finally:
            os.unlink(tmp.name)
        return Opened(con, "<stdin>", {"data_sha256": hashlib.sha256(raw).hexdigest(), "data_source": "stdin"},
                      lazy=False)
    display = data.path
    fmt = _file_format(spec, path)
    check_version_key(fmt, data.version, display)
    lazy = lazy or (view_parquet and fmt in ("parquet", *TABLE_FORMATS))
    if lazy and fmt == "csv" and os.path.getsize(path) <= SMALL_CSV_BYTES:
        lazy = False  # a view parses the text again at every query (40-50 ms each for 70 kB): copy it once
    if fmt in TABLE_FORMATS:  # a Delta or Iceberg table: one snapshot's Parquet files
        provenance = read_snapshot(con, path, fmt, data.version, display, kind="VIEW" if lazy else "TABLE")
        return Opened(con, display, provenance, lazy)
    if lazy:  # the view reads the file at each query: allow exactly this file, nothing else
        con.execute(f"SET allowed_paths = [{quote_literal(path)}]")
        con.execute("SET enable_external_access = false")
    read_file(con, path, fmt, display, kind="VIEW" if lazy else "TABLE", delimiter=data.delimiter,
              na_values=data.na_values)
    return Opened(con, display, file_provenance(path), lazy)


def _file_format(spec: "LoadedSpec", path: str) -> str:
    """csv, parquet, delta or iceberg: ``data.format``, or told by the extension (a Delta or Iceberg table by its
    folder, ``table_formats.detect``); a file that is none of them is refused by kind."""
    display = spec.study.data.path
    if not os.path.exists(path):
        raise DataError(_not_found(spec, path), file=display, key="data.path")
    fmt = spec.study.data.format
    table_format = detect(path) if fmt == "auto" else fmt if fmt in TABLE_FORMATS else None
    if table_format is not None:
        return table_format
    if not os.path.isfile(path) or not os.access(path, os.R_OK):
        raise DataError("data file is not a readable file", file=display, key="data.path")
    if fmt != "auto":
        return fmt
    ext = Path(path).suffix.lower()
    if ext in (".parquet", ".pq"):
        return "parquet"
    if ext in (".csv", ".tsv", ".txt", ".gz"):
        return "csv"
    if ext in OTHER_FORMATS:
        raise DataError(f"this is {OTHER_FORMATS[ext]}, and causalcli reads CSV and Parquet: save it as one "
                        "of those (e.g. DataFrame.to_parquet, or duckdb's COPY ... TO 'data.parquet')",
                        file=display, key="data.path")
    raise DataError(f"cannot tell the format from extension {ext!r}; set data.format to csv or parquet",
                    file=display, key="data.format")


def read_file(con: "duckdb.DuckDBPyConnection", path: str, fmt: str, display: str, table: str = "raw_data",
              kind: str = "TABLE", delimiter: str | None = None, na_values: list[str] | None = None) -> None:
    """Read a CSV or Parquet file into a DuckDB table; failures are one-line DataErrors.

    The CSV delimiter is ``delimiter`` when given, else tab for .tsv files, else the one of
    ',', ';', tab and '|' that the header line has most of outside quotes (',' on a tie).
    ``na_values``: CSV strings read as missing besides the empty field (DuckDB's nullstr).
    """
    import duckdb

    delim = delimiter or ("\t" if path.lower().endswith((".tsv", ".tsv.gz")) else
                          _sniff_delimiter(path) if fmt == "csv" else ",")
    # The path goes in as an escaped string literal, not a prepared parameter:
    # DuckDB imports pandas (0.3 s) to inspect Python parameters.
    literal = quote_literal(path)
    nulls = ("" if not na_values else
             f", nullstr = [{', '.join(quote_literal(v) for v in dict.fromkeys(['', *na_values]))}]")
    reader = (f"read_parquet({literal})" if fmt == "parquet"
              else f"read_csv({literal}, header = true, delim = '{delim}'{nulls})")
    try:
        con.execute(f"CREATE {kind} {table} AS SELECT * FROM {reader}")
    except duckdb.Error as exc:
        ragged = _ragged_line(path, delim) if fmt == "csv" else None
        if ragged:
            raise DataError(ragged + "; fix the file so every row has the header's columns", file=display) from None
        if "not utf-8 encoded" in str(exc).lower():  # DuckDB says so on its second line
            raise DataError("the file is not UTF-8 text (CSV is read as UTF-8): re-save it as UTF-8, e.g. "
                            "`iconv -f latin1 -t utf-8 in.csv > out.csv`", file=display) from None
        raise DataError(f"cannot read as {fmt}: {first_line(exc)}", file=display) from None
    _refuse_duplicate_column(_header_names(con, path, fmt, delim), display, "the file's header")


def _refuse_duplicate_column(names: list[str], display: str, where: str) -> None:
    """DuckDB would rename the second of two equal names silently (name_1), and the first would be used."""
    seen: set[str] = set()
    for name in names:
        if name in seen and name != "":
            raise DataError(f"column name {name!r} appears more than once in {where}; rename or remove "
                            "the copies so each column has its own name", file=display, column=name)
        seen.add(name)


def _header_names(con: "duckdb.DuckDBPyConnection", path: str, fmt: str, delim: str) -> list[str]:
    """The file's column names as written (before DuckDB dedupes them); [] when they cannot be read."""
    if fmt == "parquet":
        schema = con.execute(f"SELECT name, num_children FROM parquet_schema({quote_literal(path)})").fetchall()
        names, i = [], 1
        while i < len(schema):  # top-level fields; nested ones are skipped with their subtree
            names.append(schema[i][0])
            skip, i = schema[i][1] or 0, i + 1
            while skip:
                skip += (schema[i][1] or 0) - 1
                i += 1
        return names
    import csv
    import gzip

    opener = gzip.open if path.endswith(".gz") else open
    try:
        with opener(path, "rt", newline="", encoding="utf-8-sig", errors="replace") as fh:
            return next(csv.reader(fh, delimiter=delim), [])
    except (OSError, csv.Error):
        return []


def _ragged_line(path: str, delim: str) -> str | None:
    """Name the first CSV row whose field count differs from the header's."""
    import csv
    import gzip

    opener = gzip.open if path.endswith(".gz") else open
    try:
        with opener(path, "rt", newline="", encoding="utf-8", errors="replace") as fh:
            reader = csv.reader(fh, delimiter=delim)
            header = next(reader, None)
            if header is None:
                return None
            for row in reader:
                if row and len(row) != len(header):
                    return (f"ragged CSV: line {reader.line_num} has {len(row)} fields but the header has "
                            f"{len(header)}")
    except (OSError, csv.Error):
        return None
    return None


def _sniff_delimiter(path: str) -> str:
    """The delimiter of a CSV file from its header line: the most frequent of , ; tab | outside quotes."""
    import gzip

    opener = gzip.open if path.endswith(".gz") else open
    try:
        with opener(path, "rt", newline="", encoding="utf-8", errors="replace") as fh:
            header = fh.readline()
    except OSError:
        return ","
    outside = "".join(part for i, part in enumerate(header.split('"')) if i % 2 == 0)
    counts = {d: outside.count(d) for d in (",", ";", "\t", "|")}
    best = max(counts, key=lambda d: (counts[d], d == ","))
    return best if counts[best] else ","


def _not_found(spec: "LoadedSpec", path: str) -> str:
    """Where the data was looked for and, when data.path names a file from the current folder instead of the
    spec's (init's output saved into another folder), the path that works."""
    message = f"data file not found: looked for {path} (data.path is relative to the spec file's folder)"
    given = Path(spec.study.data.path)
    if not given.is_absolute() and given.is_file():
        fixed = os.path.relpath(given.resolve(), Path(spec.source.base_dir).resolve())
        message += f"; it is {fixed!r} from there: set data.path: {fixed}"
    return message


def file_provenance(path: str) -> dict[str, Any]:
    """sha256 of the file; above 1 GiB a cheaper fingerprint that names its method."""
    size = os.path.getsize(path)
    h = hashlib.sha256()
    with open(path, "rb") as fh:
        if size <= FINGERPRINT_ABOVE:
            for chunk in iter(lambda: fh.read(1 << 20), b""):
                h.update(chunk)
            return {"data_sha256": h.hexdigest()}
        head = fh.read(1 << 20)
        fh.seek(-(1 << 20), os.SEEK_END)
        tail = fh.read()
    h.update(str(size).encode())
    h.update(head)
    h.update(tail)
    return {"data_fingerprint": h.hexdigest(), "data_fingerprint_method": "sha256(size, first MiB, last MiB)"}


# ---------------------------------------------------------------- in-memory tables


def register_memory(con: "duckdb.DuckDBPyConnection", frame: Any) -> tuple[str, dict[str, Any]]:
    """Copy an in-memory table into ``raw_data``; returns (how errors name it, provenance).

    The table goes through Arrow, so pandas, polars and Arrow data arrive with the same
    DuckDB types: categories as text, missing values (NaN in pandas) as NULL, as in a file.
    """
    import duckdb

    table, display = as_arrow(frame)
    if table.num_rows == 0:  # said here: the check after data.filter would blame a data file and data.path
        raise DataError("the table passed as data= has no rows", file=display, key="data")
    con.register("memory_data", table)
    try:
        con.execute("CREATE TABLE raw_data AS SELECT * FROM memory_data")
    except duckdb.Error as exc:
        raise DataError(f"cannot read: {first_line(exc)}", file=display) from None
    finally:
        con.unregister("memory_data")
    return display, {"data_source": "memory", **arrow_fingerprint(table)}


def as_arrow(frame: Any) -> tuple["pa.Table", str]:
    """A pandas or polars DataFrame, or an Arrow table (or anything with ``__arrow_c_stream__``), as Arrow.

    Dictionary columns (pandas and polars categories) become their values; a pandas index
    comes along only when its levels are named (``set_index('unit')``), as columns.
    """
    import pyarrow as pa

    kind = type(frame).__module__.split(".")[0]
    display = {"pandas": "<pandas DataFrame>", "polars": "<polars DataFrame>"}.get(kind, "<Arrow table>")
    if kind == "pandas" and hasattr(frame, "reset_index"):
        _refuse_duplicate_column([str(c) for c in frame.columns], display, "the table's columns")
        frame = _index_as_columns(frame, display)
        _refuse_duplicate_column([str(c) for c in frame.columns], display, "the table's columns")
    try:
        if kind == "pandas" and hasattr(frame, "reset_index"):
            table = _pandas_to_arrow(frame, display)
        elif kind == "polars" and hasattr(frame, "to_arrow"):
            table = frame.to_arrow()
        elif isinstance(frame, (pa.Table, pa.RecordBatch)) or hasattr(frame, "__arrow_c_stream__"):
            table = pa.table(frame)
        else:
            raise DataError(f"data= takes a pandas or polars DataFrame or a pyarrow Table, not "
                            f"{type(frame).__module__}.{type(frame).__qualname__}", key="data")
    except (pa.ArrowException, TypeError, ValueError) as exc:  # e.g. a column mixing numbers and text
        raise DataError(f"cannot read the table: {first_line(exc)}", file=display) from None
    _refuse_duplicate_column(table.column_names, display, "the table's columns")
    columns = [c.cast(c.type.value_type) if pa.types.is_dictionary(c.type) else c for c in table.columns]
    return pa.table(columns, names=[str(n) for n in table.column_names]), display


def _index_as_columns(frame: Any, display: str) -> Any:
    """A pandas frame with its named index levels as columns. A level that repeats the column of its name
    (``set_index('unit', drop=False)``) is left out; one whose values differ from that column is refused."""
    import pandas as pd

    repeated = []
    for level, name in enumerate(frame.index.names):
        if name is None or name not in frame.columns:
            continue
        if not frame.index.get_level_values(level).equals(pd.Index(frame[name])):
            raise DataError(f"the index level {str(name)!r} has the name of a column but other values; rename "
                            "the level (rename_axis) or leave the index out (reset_index(drop=True))",
                            file=display, column=str(name))
        repeated.append(level)
    if repeated:
        frame = frame.reset_index(level=repeated, drop=True)
    return frame.reset_index() if any(name is not None for name in frame.index.names) else frame


def _pandas_to_arrow(frame: Any, display: str) -> "pa.Table":
    """``pa.Table.from_pandas``; a column Arrow cannot read (an object column mixing numbers and text)
    is named in the error, with what to do, even when the study does not use it."""
    import pyarrow as pa

    try:
        return pa.Table.from_pandas(frame, preserve_index=False)
    except (pa.ArrowException, TypeError, ValueError) as exc:
        for name in frame.columns:
            try:
                pa.Array.from_pandas(frame[name])
            except (pa.ArrowException, TypeError, ValueError) as column_exc:
                raise DataError(f"a column of dtype {frame[name].dtype} that Arrow cannot read: "
                                f"{first_line(column_exc)}; give it one type (astype(str), pd.to_numeric) "
                                "or leave it out of data= (df.drop(columns=...))",
                                file=display, column=str(name)) from None
        raise DataError(f"cannot read the table: {first_line(exc)}", file=display) from None


class _Digest:
    """A write-only file that hashes what is written (so the fingerprint needs no copy of the data)."""

    def __init__(self) -> None:
        self.hash = hashlib.sha256()
        self.closed = False

    def write(self, data: Any) -> int:
        self.hash.update(data)
        return len(data)

    def flush(self) -> None:
        pass


def arrow_fingerprint(table: "pa.Table") -> dict[str, str]:
    """sha256 of the table in Arrow's IPC stream format (schema and values; the same table gives the same hash)."""
    import pyarrow as pa

    digest = _Digest()
    with pa.ipc.new_stream(pa.PythonFile(digest, mode="w"), table.schema) as writer:
        writer.write_table(table.combine_chunks())
    return {"data_fingerprint": digest.hash.hexdigest(),
            "data_fingerprint_method": f"sha256(Arrow IPC stream, pyarrow {pa.__version__})"}
