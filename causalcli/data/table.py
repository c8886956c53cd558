"""Reading a study's data through DuckDB.

The file is read once into an in-process DuckDB table, columns are renamed,
and only then is the spec's ``filter`` evaluated, with DuckDB's external
access switched off and the configuration locked: the filter can read this
data and nothing else. A design then asks for what it needs: a pandas frame of
just its columns (``Table.frame``), or SQL aggregates over the table
(``Table.sql``) for designs that never load rows into Python.
"""

from __future__ import annotations

import hashlib
import os
import sys
import tempfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from causalcli.errors import DataError, SpecError

if TYPE_CHECKING:  # pragma: no cover
    import duckdb
    import numpy as np
    import pandas as pd

    from causalcli.spec.loading import LoadedSpec

FINGERPRINT_ABOVE = 1 << 30  # above 1 GiB, hash size + head + tail instead of every byte
NUMERIC_PREFIXES = ("TINYINT", "SMALLINT", "INTEGER", "BIGINT", "HUGEINT", "UTINYINT", "USMALLINT",
                    "UINTEGER", "UBIGINT", "UHUGEINT", "FLOAT", "DOUBLE", "DECIMAL", "REAL")
TABLE = "study_data"


@dataclass
class Table:
    """The spec's data inside DuckDB, renamed and filtered."""

    con: "duckdb.DuckDBPyConnection"
    file: str
    rows: int
    types: dict[str, str]
    provenance: dict[str, Any] = field(default_factory=dict)
    # date time columns, read as period numbers 1..T: the ISO day of each, and the DuckDB table of days
    period_labels: dict[str, list[str]] = field(default_factory=dict)
    period_tables: dict[str, str] = field(default_factory=dict)
    filtered_out: int | None = None  # rows data.filter removed (None: no filter)

    @property
    def columns(self) -> list[str]:
        return list(self.types)

    def is_numeric(self, column: str) -> bool:
        t = self.types[column].upper()
        return t.startswith(NUMERIC_PREFIXES) or t == "BOOLEAN"

    def sql(self, query: str, params: list | None = None) -> list[tuple]:
        """Run a query of the design's own over ``study_data`` (never spec text)."""
        return self.con.execute(query, params or []).fetchall()

    def arrays(self, columns: list[str], as_text: tuple[str, ...] = ()) -> tuple[dict[str, "np.ndarray"], int]:
        """The given columns as numpy arrays (no pandas), complete rows only; returns (arrays, dropped).

        Rows with a NULL, or a NaN in a floating column, are dropped in DuckDB and
        counted. Columns in ``as_text`` come back as strings (categorical levels).
        """
        cols = list(dict.fromkeys(columns))
        tests = []
        for c in cols:
            q = quote_identifier(c)
            tests.append(f"{q} IS NOT NULL")
            if self.types[c].upper() in ("DOUBLE", "FLOAT", "REAL"):
                tests.append(f"NOT isnan({q})")
        select = ", ".join(f"CAST({quote_identifier(c)} AS VARCHAR) AS {quote_identifier(c)}" if c in as_text else quote_identifier(c) for c in cols)
        where = " AND ".join(tests) or "true"
        out = self.con.execute(f"SELECT {select} FROM {TABLE} WHERE {where}").fetchnumpy()
        arrays = {c: out[c] for c in cols}
        kept = len(arrays[cols[0]]) if cols else self.rows
        return arrays, self.rows - kept

    def missing_by_column(self, columns: list[str]) -> dict[str, int]:
        """Rows with a missing value (NULL, or NaN in a floating column), each counted under its first missing column.

        One DuckDB pass; the counts add up to the rows that ``arrays(columns)`` drops.
        """
        cols = list(dict.fromkeys(columns))
        ok = []
        for c in cols:
            q = quote_identifier(c)
            nan = f" AND NOT isnan({q})" if self.types[c].upper() in ("DOUBLE", "FLOAT", "REAL") else ""
            ok.append(f"coalesce({q} IS NOT NULL{nan}, false)")
        counts = [f"count(*) FILTER (WHERE {' AND '.join([*ok[:i], 'NOT ' + ok[i]])})" for i in range(len(cols))]
        if not counts:
            return {}
        row = self.con.execute(f"SELECT {', '.join(counts)} FROM {TABLE}").fetchone()
        return {c: int(k) for c, k in zip(cols, row) if k}

    def frame(self, columns: list[str]) -> tuple["pd.DataFrame", int]:
        """The given columns as pandas, rows with a missing value dropped; returns (frame, dropped)."""
        cols = list(dict.fromkeys(columns))
        select = ", ".join(quote_identifier(c) for c in cols)
        df = self.con.execute(f"SELECT {select} FROM {TABLE}").df()
        complete = df.notna().all(axis=1)
        dropped = int((~complete).sum())
        if dropped:
            df = df.loc[complete].reset_index(drop=True)
        return df, dropped


def quote_identifier(name: str) -> str:
    """A column or table name as a DuckDB identifier (the one place that quotes them for new code)."""
    return '"' + name.replace('"', '""') + '"'


# Files people save data in that are not CSV or Parquet (read as CSV they give misleading errors).
OTHER_FORMATS = {".json": "a JSON file", ".jsonl": "a JSON lines file", ".ndjson": "a JSON lines file",
                 ".xlsx": "an Excel workbook", ".xls": "an Excel workbook", ".dta": "a Stata file",
                 ".sav": "an SPSS file", ".rds": "an R data file", ".rdata": "an R data file",
                 ".feather": "a Feather file", ".arrow": "an Arrow file", ".sas7bdat": "a SAS file"}


def resolve_path(spec: "LoadedSpec") -> str:
    path = spec.study.data.path
    if path == "-":
        return "-"
    p = Path(path)
    return str(p if p.is_absolute() else spec.source.base_dir / p)


def load_table(spec: "LoadedSpec", stdin_bytes: bytes | None = None, lazy: bool = False) -> Table:
    """Read, rename and filter the spec's data; every failure is a one-line DataError.

    ``lazy`` (designs that only aggregate in DuckDB): ``study_data`` is a view over the
    file, never copied into memory; DuckDB may then read that one file and no other.
    """
    import duckdb

    data = spec.study.data
    path = resolve_path(spec)
    display = data.path
    tmp_name = None
    if path == "-":
        raw = stdin_bytes if stdin_bytes is not None else sys.stdin.buffer.read()
        with tempfile.NamedTemporaryFile("wb", suffix=".csv", delete=False) as tmp:
            tmp.write(raw)
            tmp_name = tmp.name
        path, display, fmt = tmp_name, "<stdin>", "csv"
        provenance = {"data_sha256": hashlib.sha256(raw).hexdigest(), "data_source": "stdin"}
    else:
        if not os.path.exists(path):
            raise DataError(_not_found(spec, path), file=display, key="data.path")
        if not os.path.isfile(path) or not os.access(path, os.R_OK):
            raise DataError("data file is not a readable file", file=display, key="data.path")
        fmt = data.format
        if fmt == "auto":
            ext = Path(path).suffix.lower()
            if ext in (".parquet", ".pq"):
                fmt = "parquet"
            elif ext in (".csv", ".tsv", ".txt", ".gz"):
                fmt = "csv"
            elif ext in OTHER_FORMATS:
                raise DataError(f"this is {OTHER_FORMATS[ext]}, and causalcli reads CSV and Parquet: save it as one "
                                "of those (e.g. DataFrame.to_parquet, or duckdb's COPY ... TO 'data.parquet')",
                                file=display, key="data.path")
            else:
                raise DataError(f"cannot tell the format from extension {ext!r}; set data.format to csv or parquet",
                                file=display, key="data.format")
        provenance = file_provenance(path)

    con = duckdb.connect(":memory:")
    con.execute("SET TimeZone = 'UTC'")  # naive timestamps are UTC; data.timezone cuts them to days
    lazy = lazy and tmp_name is None
    if lazy:  # the view reads the file at each query: allow exactly this file, nothing else
        con.execute("SET allowed_paths = [" + "'" + path.replace("'", "''") + "']")
        con.execute("SET enable_external_access = false")
    try:
        read_file(con, path, fmt, display, kind="VIEW" if lazy else "TABLE", delimiter=data.delimiter)
    finally:
        if tmp_name:
            os.unlink(tmp_name)

    types = dict(con.execute("SELECT column_name, column_type FROM (DESCRIBE raw_data)").fetchall())
    renames = data.columns
    for old in renames:
        if old not in types:
            raise DataError(f"column to rename not found{_suggest(old, types)}", file=display, key=f"data.columns.{old}", column=old)
    renamed = [renames.get(c, c) for c in types]
    for old, new in renames.items():
        if renamed.count(new) > 1:  # DuckDB would rename one of them silently (name_1)
            raise DataError(f"renaming {old!r} to {new!r} gives two columns named {new!r}; choose another name",
                            file=display, key=f"data.columns.{old}", column=new)
    select = ", ".join(f"{quote_identifier(c)} AS {quote_identifier(renames.get(c, c))}" for c in types)

    # From here on the filter runs: nothing outside this table can be read.
    con.execute("SET enable_external_access = false")
    con.execute("SET lock_configuration = true")
    where = ""
    if data.filter is not None:
        where = f" WHERE ({data.filter})"
        _check_filter_text(data.filter, display)
        seen = _renamed_types(types, renames)
        _check_single_select(con, f"SELECT {select} FROM raw_data{where}", display, data.filter, list(seen), seen)
    raw_rows = con.execute("SELECT count(*) FROM raw_data").fetchone()[0] if where and not lazy else None
    create = f"CREATE {'VIEW' if lazy else 'TABLE'} {TABLE} AS SELECT {select} FROM raw_data{where}"
    try:
        if not lazy and not where and not renames:  # nothing to change: no second copy of the data
            con.execute(f"ALTER TABLE raw_data RENAME TO {TABLE}")
        else:
            con.execute(create)
            if not lazy:
                con.execute("DROP TABLE raw_data")
    except duckdb.Error as exc:
        if data.filter is not None:
            seen = _renamed_types(types, renames)
            raise _filter_error(exc, data.filter, create, list(seen), seen, display) from None
        raise DataError(f"cannot read: {_first_line(exc)}", file=display) from None
    try:  # a view runs the reader and the filter here for the first time
        rows = con.execute(f"SELECT count(*) FROM {TABLE}").fetchone()[0]
    except duckdb.Error as exc:
        if data.filter is not None:
            seen = _renamed_types(types, renames)
            raise _filter_error(exc, data.filter, create, list(seen), seen, display) from None
        raise DataError(f"cannot read: {_first_line(exc)}", file=display) from None
    types = dict(con.execute(f"SELECT column_name, column_type FROM (DESCRIBE {TABLE})").fetchall())
    if rows == 0:
        what = "no rows are left after data.filter; loosen the filter" if data.filter else "the data file has no rows"
        raise DataError(what, file=display, key="data.filter" if data.filter else "data.path")
    filtered_out = None
    if data.filter is not None:  # the rows the user's filter removed, for n (lazy: the view is still there)
        if raw_rows is None:
            raw_rows = con.execute("SELECT count(*) FROM raw_data").fetchone()[0]
        filtered_out = int(raw_rows) - int(rows)
    return Table(con=con, file=display, rows=int(rows), types=types, provenance=provenance, filtered_out=filtered_out)


def read_file(con: "duckdb.DuckDBPyConnection", path: str, fmt: str, display: str, table: str = "raw_data",
              kind: str = "TABLE", delimiter: str | None = None) -> None:
    """Read a CSV or Parquet file into a DuckDB table; failures are one-line DataErrors.

    The CSV delimiter is ``delimiter`` when given, else tab for .tsv files, else the one of
    ',', ';', tab and '|' that the header line has most of outside quotes (',' on a tie).
    """
    import duckdb

    delim = delimiter or ("\t" if path.lower().endswith((".tsv", ".tsv.gz")) else
                          _sniff_delimiter(path) if fmt == "csv" else ",")
    # The path goes in as an escaped string literal, not a prepared parameter:
    # DuckDB imports pandas (0.3 s) to inspect Python parameters.
    literal = "'" + path.replace("'", "''") + "'"
    reader = (f"read_parquet({literal})" if fmt == "parquet"
              else f"read_csv({literal}, header = true, delim = '{delim}')")
    try:
        con.execute(f"CREATE {kind} {table} AS SELECT * FROM {reader}")
    except duckdb.Error as exc:
        ragged = _ragged_line(path, delim) if fmt == "csv" else None
        if ragged:
            raise DataError(ragged + "; fix the file so every row has the header's columns", file=display) from None
        if "not utf-8 encoded" in str(exc).lower():  # DuckDB says so on its second line
            raise DataError("the file is not UTF-8 text (CSV is read as UTF-8): re-save it as UTF-8, e.g. "
                            "`iconv -f latin1 -t utf-8 in.csv > out.csv`", file=display) from None
        raise DataError(f"cannot read as {fmt}: {_first_line(exc)}", file=display) from None
    duplicate = _duplicate_column(con, path, fmt, delim)
    if duplicate is not None:  # DuckDB would rename the second one silently (name_1) and the first would be used
        raise DataError(f"column name {duplicate!r} appears more than once in the file's header; rename or remove "
                        "the copies so each column has its own name", file=display, column=duplicate)


def _duplicate_column(con: "duckdb.DuckDBPyConnection", path: str, fmt: str, delim: str) -> str | None:
    """The first column name the file's header repeats (the header as written, before DuckDB dedupes it)."""
    if fmt == "parquet":
        literal = "'" + path.replace("'", "''") + "'"
        schema = con.execute(f"SELECT name, num_children FROM parquet_schema({literal})").fetchall()
        names, i = [], 1
        while i < len(schema):  # top-level fields; nested ones are skipped with their subtree
            names.append(schema[i][0])
            skip, i = schema[i][1] or 0, i + 1
            while skip:
                skip += (schema[i][1] or 0) - 1
                i += 1
    else:
        import csv
        import gzip

        opener = gzip.open if path.endswith(".gz") else open
        try:
            with opener(path, "rt", newline="", encoding="utf-8-sig", errors="replace") as fh:
                names = next(csv.reader(fh, delimiter=delim), [])
        except (OSError, csv.Error):
            return None
    seen: set[str] = set()
    for name in names:
        if name in seen and name != "":
            return name
        seen.add(name)
    return None


def _check_single_select(con: "duckdb.DuckDBPyConnection", query: str, display: str, text: str,
                         columns: list[str], types: dict[str, str]) -> None:
    """The filter must leave one SELECT: no ';' tricks, no other statement kinds."""
    import duckdb

    try:
        statements = con.extract_statements(query)
    except duckdb.Error as exc:
        raise _filter_error(exc, text, query, columns, types, display) from None
    if len(statements) != 1 or statements[0].type != duckdb.StatementType.SELECT:
        raise SpecError("filter must be one boolean expression over the columns (no ';', no other statements)",
                        file=display, key="data.filter")


# ---------------------------------------------------------------- filter errors in plain words

_PLAIN_TYPES = {"VARCHAR": "text", "STRING_LITERAL": "quoted text", "INTEGER_LITERAL": "a number",
                "DECIMAL_LITERAL": "a number", "DATE": "a date", "TIMESTAMP": "a timestamp", "BOOLEAN": "true/false"}


def _check_filter_text(text: str, display: str) -> None:
    """Quotes and parentheses of the filter must close inside it: it cannot reach past its own WHERE ( ... )."""
    depth, opened, i = 0, [], 0
    while i < len(text):
        ch = text[i]
        if ch in "'\"":
            end = i + 1
            while True:
                end = text.find(ch, end)
                if end < 0:
                    what = "quote" if ch == "'" else "double quote"
                    raise SpecError(f"the {what} at character {i + 1} is never closed; close it (text values "
                                    "take single quotes: region = 'north')", file=display, key="data.filter")
                if text[end + 1:end + 2] == ch:  # a doubled quote inside the quotes
                    end += 2
                    continue
                break
            i = end + 1
            continue
        if ch == "(":
            opened.append(i)
        elif ch == ")":
            if not opened:
                raise SpecError(f"the ')' at character {i + 1} closes no '('; remove it or add its '('",
                                file=display, key="data.filter")
            opened.pop()
        i += 1
    if opened:
        raise SpecError(f"the '(' at character {opened[-1] + 1} is never closed; add its ')'", file=display,
                        key="data.filter")


def _filter_error(exc: Exception, text: str, query: str, columns: list[str], types: dict[str, str],
                  display: str) -> SpecError:
    """DuckDB's error about the filter, said in plain words: which column, token or type is wrong."""
    return SpecError(_explain_filter(str(exc), text, query, columns, types), file=display, key="data.filter")


def _explain_filter(raw: str, text: str, query: str, columns: list[str], types: dict[str, str]) -> str:
    import re

    first = _first_line(Exception(raw))
    detail = re.sub(r"^[A-Za-z ]*Error: ", "", first)
    at = _filter_offset(raw, query, text)
    near = f" at character {at + 1}" if at is not None and at < len(text) else ""
    m = re.search(r'Referenced column "(.+?)" not found', detail)
    if m:
        name = m.group(1)
        if f'"{name}"' in text:
            return (f"column {name!r} not found: double quotes name a column; text values take single quotes "
                    f"('{name}')")
        hint = _suggest(name, columns)
        listed = "" if hint else "; the data has: " + ", ".join(columns[:20]) + (", ..." if len(columns) > 20 else "")
        return f"column {name!r} not found{hint}{listed}"
    m = re.search(r'Referenced table "(.+?)" not found', detail)
    if m:
        return f"{m.group(1)!r} is not a column; the filter sees only the data's columns: write a column name alone"
    m = re.search(r'syntax error at or near "(.*)"', detail)
    if m:
        token = m.group(1)
        if at is not None and at >= len(text):
            return f"the filter ends too early: something is missing after {text.strip().split()[-1]!r}"
        if token == ";":
            return "syntax error near ';': the filter is one condition, with no ';' and no other statement"
        return f"syntax error near {token!r}{near}"
    if "syntax error at end of input" in detail:
        return "the filter ends too early: an expression, ')' or quote is missing at its end"
    if "unterminated quoted" in detail:
        return f"a quote{near} is never closed; close it"
    m = re.search(r"Function with name (\S+?)__postfix does not exist", detail)
    if m:
        return f"syntax error near {m.group(1)!r}{near}: the operator has nothing on its right"
    m = re.search(r"Scalar Function with name (\S+) does not exist", detail)
    if m:
        return f"unknown function {m.group(1)!r}{near}"
    m = re.search(r'Function "(\S+)" is a table function', detail)
    if m:
        return f"{m.group(1)!r} reads tables or files, which a filter cannot; use a condition over the columns"
    if first.startswith("Permission Error"):
        return "a filter can read only the data's own columns (files and the network are switched off)"
    m = re.search(r"Cannot compare values of type (\S+) and type (\S+)", detail)
    if m:
        a, b = (_plain_type(t) for t in m.groups())
        return f"type mismatch{near}: cannot compare {a} with {b}{_column_types(text, types)}"
    m = re.search(r"No function matches the given name and argument types '(.+?)\((.*?)\)'", detail)
    if m:
        if m.group(1).endswith("__postfix"):
            return f"syntax error near {m.group(1)[:-len('__postfix')]!r}{near}: the operator has nothing on its right"
        args = ", ".join(_plain_type(t.strip()) for t in m.group(2).split(","))
        op = {"~~": "LIKE", "!~~": "NOT LIKE"}.get(m.group(1), m.group(1))
        return f"type mismatch{near}: {op!r} cannot take {args}{_column_types(text, types)}"
    if first.startswith("Conversion Error"):
        m = re.search(r"Could not convert string '(.*?)' to (\S+)", detail)
        what = f"{m.group(1)!r} cannot be read as {_plain_type(m.group(2))}" if m else detail
        return f"type mismatch{near}: {what}{_column_types(text, types)}"
    return f"the filter failed{near}: {detail}"


def _plain_type(duck: str) -> str:
    base = duck.split("(")[0].upper()
    if base in _PLAIN_TYPES:
        word = _PLAIN_TYPES[base]
        return word if base.endswith("_LITERAL") else f"{word} ({base})"
    if base.startswith(NUMERIC_PREFIXES) or base in ("INT32", "INT64", "INT16", "INT8"):
        return f"a number ({base})"
    return base


def _column_types(text: str, types: dict[str, str]) -> str:
    """'; column types: age INTEGER, region VARCHAR' for the columns the filter names."""
    import re

    bare = re.sub(r"'(?:[^']|'')*'", " ", text)  # no words from inside text values
    words = {w.lower() for w in re.findall(r'"((?:[^"]|"")+)"|([A-Za-z_][A-Za-z0-9_]*)', bare) for w in w if w}
    named = [f"{c} {t}" for c, t in types.items() if c.lower() in words]
    if not named:
        return ""
    return f"; column types: {', '.join(named)} (compare text with 'quoted' values, numbers with numbers)"


def _filter_offset(raw: str, query: str, text: str) -> int | None:
    """Where in the filter DuckDB's caret ('LINE 1: ...' then '^') points, or None."""
    lines = raw.splitlines()
    for line, caret in zip(lines, lines[1:]):
        if not line.startswith("LINE 1: ") or caret.strip() != "^":
            continue
        shown = line[len("LINE 1: "):]
        col = caret.index("^") - len("LINE 1: ")
        lead = shown.startswith("...")
        core = shown[3:] if lead else shown
        core = core[:-3] if core.endswith("...") else core
        start = query.find(core)
        if start < 0:
            return None
        pos = start + col - (3 if lead else 0)
        return pos - (len(query) - len(text) - 1)  # the filter is the last thing in the query, before ')'
    return None


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


def _renamed_types(types: dict[str, str], renames: dict[str, str]) -> dict[str, str]:
    """The names a filter may use, with their types: the new names of data.columns, then the file's own."""
    return {**{renames.get(c, c): t for c, t in types.items()}, **types}


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


def _first_line(exc: Exception) -> str:
    text = str(exc).strip()
    return text.splitlines()[0] if text else exc.__class__.__name__


def _suggest(name: str, choices: Any) -> str:
    import difflib

    match = difflib.get_close_matches(name, list(choices), n=1, cutoff=0.5)
    return f" (did you mean {match[0]!r}?)" if match else ""


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


# ---------------------------------------------------------------- column checks


def require_columns(table: Table, roles: dict[str, tuple[str, str]], treated_value: Any = None,
                    timezone: str = "UTC") -> None:
    """Check that each column exists and read it as its role needs (``causalcli.data.types``).

    ``roles`` maps a column to (spec key, kind), kind one of ``numeric`` (text holding only
    numbers is read as numbers), ``binary`` (0/1, boolean, yes/no, t/f, or two values of which
    ``treated_value`` is the treated one; made 0/1), ``time`` (numbers, or dates, timestamps and
    ISO date strings made period numbers 1..T), ``any``. A ``time`` column comes before the
    columns (cohorts) read in its type.
    """
    from causalcli.data.types import binary_treatment, numeric_column, period_column

    for column, (key, kind) in roles.items():
        if column in table.types and kind == "time":
            period_column(table, column, key, timezone)
    for column, (key, kind) in roles.items():
        if column not in table.types:
            raise DataError(
                f"column {column!r} not found{_suggest(column, table.types)}; the data has: "
                f"{', '.join(table.columns[:20])}{' ...' if len(table.columns) > 20 else ''}",
                file=table.file, key=key, column=column,
            )
        if kind == "binary":
            binary_treatment(table, column, key, treated_value)
        elif kind == "numeric":
            numeric_column(table, column, key)
        if kind == "binary":
            q = quote_identifier(column)
            bad = table.sql(
                f"SELECT count(DISTINCT {q}), min(CAST({q} AS DOUBLE)), max(CAST({q} AS DOUBLE)), "
                f"count(*) FILTER (WHERE CAST({q} AS DOUBLE) NOT IN (0, 1)) FROM {TABLE}"
            )[0]
            distinct, lo, hi, outside = bad
            if outside:
                raise DataError(
                    f"treatment column {column!r} must be binary (0/1 or boolean); found values from {lo:g} to {hi:g}",
                    file=table.file, key=key, column=column,
                )
            if distinct < 2:
                raise DataError(
                    f"treatment column {column!r} has only one value; both treated (1) and control (0) units are needed",
                    file=table.file, key=key, column=column,
                )


def check_weights(table: Table, column: str) -> None:
    """Observation weights: a numeric column, finite, non-negative, not all zero."""
    require_columns(table, {column: ("weights", "numeric")})
    q = quote_identifier(column)
    negative, total = table.sql(f"SELECT count(*) FILTER (WHERE {q} < 0 OR isinf(CAST({q} AS DOUBLE))), "
                                f"sum(CAST({q} AS DOUBLE)) FROM {TABLE}")[0]
    if negative:
        raise DataError(f"weights column {column!r} has {negative} negative or infinite values; weights must be >= 0",
                        file=table.file, key="weights", column=column)
    if not total or total <= 0:
        raise DataError(f"weights column {column!r} sums to zero", file=table.file, key="weights", column=column)


@dataclass(frozen=True)
class MissingRows:
    """Rows dropped for a missing value: the ``n`` entries and the warning that names them."""

    n: dict[str, int]
    warnings: tuple[str, ...] = ()


def dropped_missing(table: Table, roles: list[tuple[str, str, str]], dropped: int) -> MissingRows:
    """The ``n`` entries and the warning for rows dropped because a column the study uses is missing.

    ``roles`` lists ``(column, role, label)`` in the order rows are attributed: a row
    missing several columns counts under the first one. ``n`` gets ``dropped_missing``
    (every such row) and ``dropped_missing_<role>`` per role that lost rows; they add up.
    """
    n = {"dropped_missing": int(dropped)}
    if not dropped:
        return MissingRows(n)
    by_column = table.missing_by_column([c for c, _, _ in roles])
    described = {}
    for column, role, label in roles:
        k = by_column.pop(column, 0)
        if k:
            n[f"dropped_missing_{role}"] = n.get(f"dropped_missing_{role}", 0) + k
            described[f"{label} {column!r}"] = k
    parts = ", ".join(f"{what} in {k}" for what, k in described.items())
    several = " (a row missing several columns counts under the first)" if len(described) > 1 else ""
    return MissingRows(n, (f"{dropped} of {table.rows} rows were dropped for a missing value (NULL or NaN): "
                           f"{parts}{several}; fill them, or filter them out with data.filter to make the choice "
                           "explicit",))


@dataclass(frozen=True)
class BinaryStudyArrays:
    """Complete rows of a study: the columns, the covariate matrix and the treatment."""

    cols: dict
    X: "np.ndarray"
    names: list
    t: "np.ndarray"
    dropped: int
    missing: MissingRows | None = None  # the dropped rows by role, for n and warnings


def study_roles(study: Any, treatment_kind: str) -> dict[str, tuple[str, str]]:
    """Column roles of a treatment/outcome/covariates/segments study, for ``require_columns``."""
    roles = {study.treatment: ("treatment", treatment_kind), study.outcome: ("outcome", "numeric")}
    for i, c in enumerate(study.covariates):
        roles.setdefault(c, (f"covariates[{i}]", "any" if c in study.categorical else "numeric"))
    for i, c in enumerate(study.segments):
        roles.setdefault(c, (f"segments[{i}]", "any"))
    return roles


def study_arrays(table: Table, treatment: str, outcome: str, covariates: list[str], categorical: list[str],
                 extra: tuple[str, ...] = (), extra_text: tuple[str, ...] = (),
                 extra_role: tuple[str, str] = ("other", "column")) -> BinaryStudyArrays:
    """Complete rows, one-hot covariates (a constant one is a data error, exit 3), the treatment as floats."""
    import numpy as np

    text = tuple(dict.fromkeys((*categorical, *extra_text)))
    cols, dropped = table.arrays([treatment, outcome, *covariates, *extra], as_text=text)
    if dropped == table.rows:
        raise DataError("no complete rows: every row misses a value in the columns used", file=table.file)
    X, names = design_matrix(cols, covariates, list(categorical), table.file)
    constant = [n for j, n in enumerate(names) if np.ptp(X[:, j]) == 0]
    if constant:
        raise DataError(f"covariate {constant[0]!r} is constant in the rows used; drop it from covariates",
                        file=table.file, column=constant[0], key="covariates")
    roles = [(treatment, "treatment", "treatment"), (outcome, "outcome", "outcome")]
    roles += [(c, "covariates", "covariate") for c in covariates] + [(c, *extra_role) for c in extra]
    return BinaryStudyArrays(cols, X, names, np.asarray(cols[treatment], dtype=np.float64), dropped,
                             dropped_missing(table, roles, dropped))


def binary_study_arrays(table: Table, treatment: str, outcome: str, covariates: list[str], categorical: list[str],
                        extra: tuple[str, ...] = (), extra_text: tuple[str, ...] = (),
                        extra_role: tuple[str, str] = ("other", "column")) -> BinaryStudyArrays:
    """What matching and weighting both start from: ``study_arrays`` with a two-arm (bool) treatment."""
    arrays = study_arrays(table, treatment, outcome, covariates, categorical, extra, extra_text, extra_role)
    _require_rows_for_columns(arrays, covariates, categorical, table.file)
    t = arrays.t.astype(bool)
    if t.all() or not t.any():
        raise DataError(f"treatment {treatment!r} has only one arm in the complete rows", file=table.file,
                        column=treatment, key="treatment")
    return BinaryStudyArrays(arrays.cols, arrays.X, arrays.names, t, arrays.dropped, arrays.missing)


def single_treated_warning(t: "np.ndarray") -> list[str]:
    """A warning when an arm of a binary treatment holds a single unit: its effect and SE rest on that unit."""
    n_treated = int(t.sum())
    lone = [arm for arm, k in (("treated", n_treated), ("control", t.size - n_treated)) if k == 1]
    return [f"only one {arm} unit in the rows used: the estimate rests on that single unit and its standard error, "
            "which assumes many units per arm, cannot be trusted" for arm in lone]


def _require_rows_for_columns(arrays: BinaryStudyArrays, covariates: list[str], categorical: list[str],
                              file: str) -> None:
    """Exit 3 when the propensity model (intercept and design columns) has as many coefficients as rows."""
    rows, k = arrays.X.shape
    if k + 1 < rows:
        return
    import numpy as np

    levels = {c: len(np.unique(arrays.cols[c].astype(str))) for c in covariates if c in categorical}
    if levels:
        c = max(levels, key=levels.get)
        raise DataError(f"categorical covariate {c!r} has {levels[c]} levels in {rows} rows: with the intercept and "
                        f"the other covariates the propensity model would have {k + 1} coefficients for {rows} "
                        f"rows; merge rare levels of {c!r} into larger ones (or drop it from covariates)",
                        file=file, key="categorical", column=c)
    raise DataError(f"{k} covariates for {rows} rows: the propensity model would have {k + 1} coefficients for "
                    f"{rows} rows; drop covariates", file=file, key="covariates")


def design_matrix(arrays: dict[str, "np.ndarray"], covariates: list[str], categorical: list[str],
                  file: str) -> tuple["np.ndarray", list[str]]:
    """Covariates as a float matrix; categorical ones one-hot encoded with the first (sorted) level dropped."""
    import numpy as np

    names: list[str] = []
    columns = []
    n = len(next(iter(arrays.values()))) if arrays else 0
    for c in covariates:
        values = arrays[c]
        if c in categorical:
            text = values.astype(str)
            levels = np.unique(text)
            if len(levels) < 2:
                raise DataError(f"categorical covariate {c!r} has a single level; drop it from covariates",
                                file=file, key="categorical", column=c)
            if len(levels) >= n:
                raise DataError(f"categorical covariate {c!r} has {len(levels)} levels for {n} rows; coarsen it",
                                file=file, key="categorical", column=c)
            for level in levels[1:]:
                columns.append((text == level).astype(np.float64))
                names.append(f"{c}[{level}]")
        else:
            columns.append(np.asarray(values, dtype=np.float64))
            names.append(c)
    X = np.column_stack(columns) if columns else np.empty((n, 0))
    return X, names
