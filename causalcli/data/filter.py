"""From the data as read (``raw_data``) to the study's table: renames, then ``data.filter`` in a sandbox.

The filter is parsed and checked (``filter_sql.parse_filter``: one expression over the
table's own columns, nothing else) and DuckDB runs its rendering, never the text as
written. A second wall: before the filter runs, DuckDB's external access is switched off
and its configuration locked, so the filter can read this data and nothing else.
DuckDB's own parser reads the text first, for its syntax errors; its errors are said in
plain words: which column, token or type is wrong, with the character it points at in
the filter as written.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Callable

from causalcli.data.derive import (
    blame_rows, check_derive, derive_select, derived_types, parse_filter_before_derive,
)
from causalcli.data.filter_sql import missing_column_message, original_offset, render_filter
from causalcli.data.sql import NUMERIC_PREFIXES, TABLE, did_you_mean, first_line, quote_identifier
from causalcli.errors import DataError, SpecError

if TYPE_CHECKING:  # pragma: no cover
    import duckdb

    from causalcli.spec.models import DataSpec


@dataclass(frozen=True)
class Selected:
    """The study's table as ``select_study_rows`` left it."""

    rows: int
    types: dict[str, str]
    filtered_out: int | None  # rows data.filter removed (None: no filter)


def select_study_rows(con: "duckdb.DuckDBPyConnection", data: "DataSpec", display: str, lazy: bool,
                      settings: dict[str, Any] | None = None) -> Selected:
    """Make ``study_data`` from ``raw_data``: columns renamed, rows filtered; every failure is one line.

    ``lazy``: ``raw_data`` is a view over the file and ``study_data`` becomes one too. ``settings``: the
    design's DuckDB settings (names and values of causalcli's own), set before the configuration is locked.
    """
    import duckdb

    types = dict(con.execute("SELECT column_name, column_type FROM (DESCRIBE raw_data)").fetchall())
    renames = data.columns
    check_renames(list(types), renames, display)
    select = ", ".join(f"{quote_identifier(c)} AS {quote_identifier(renames.get(c, c))}" for c in types)
    seen = _renamed_types(types, renames)

    for name, value in (settings or {}).items():
        con.execute(f"SET {name} = {value}")
    # From here on the filter runs: nothing outside this table can be read.
    con.execute("SET enable_external_access = false")
    con.execute("SET lock_configuration = true")
    where = rendered = ""
    if data.filter is not None:
        _check_filter_text(data.filter, display)
        _check_single_select(con, f"SELECT {select} FROM raw_data WHERE ({data.filter})", display, data.filter,
                             seen)
        rendered = render_filter(parse_filter_before_derive(data, seen, display), "duckdb")
        where = f" WHERE ({rendered})"
    raw_rows = con.execute("SELECT count(*) FROM raw_data").fetchone()[0] if where and not lazy else None
    kept = f"SELECT {select} FROM raw_data{where}"
    derived, study_rows = [], kept
    if data.derive:  # computed on the rows the filter keeps (data.derive)
        derived = check_derive(data.derive, [renames.get(c, c) for c in types], types, display)
        derived_types(con, f"({kept}) AS kept", derived, seen, display)
        study_rows = derive_select(f"({kept}) AS kept", derived)
    create = f"CREATE {'VIEW' if lazy else 'TABLE'} {TABLE} AS {study_rows}"
    try:
        if not lazy and not where and not renames and not derived:  # nothing to change: no second copy
            con.execute(f"ALTER TABLE raw_data RENAME TO {TABLE}")
        else:
            con.execute(create)
            if not lazy:
                con.execute("DROP TABLE raw_data")
        # a view runs the reader and the filter here for the first time
        rows = con.execute(f"SELECT count(*) FROM {TABLE}").fetchone()[0]
    except duckdb.Error as exc:
        blamed = blame_rows(con, study_rows, derived, seen, display) if derived and _filter_runs(con, kept) else None
        if blamed is not None:
            raise blamed from None
        if data.filter is not None:
            raise _filter_error(exc, data.filter, create, seen, display, rendered) from None
        raise DataError(f"cannot read: {first_line(exc)}", file=display) from None
    types = dict(con.execute(f"SELECT column_name, column_type FROM (DESCRIBE {TABLE})").fetchall())
    if rows == 0:
        what = "no rows are left after data.filter; loosen the filter" if data.filter else "the data file has no rows"
        raise DataError(what, file=display, key="data.filter" if data.filter else "data.path")
    filtered_out = None
    if data.filter is not None:  # the rows the user's filter removed, for n (lazy: the view is still there)
        if raw_rows is None:
            raw_rows = con.execute("SELECT count(*) FROM raw_data").fetchone()[0]
        filtered_out = int(raw_rows) - int(rows)
    return Selected(int(rows), types, filtered_out)


def _filter_runs(con: "duckdb.DuckDBPyConnection", kept: str) -> bool:
    """The renamed, filtered rows can be counted: a failure is then a derived column's."""
    import duckdb

    try:
        con.execute(f"SELECT count(*) FROM ({kept}) AS k").fetchall()
    except duckdb.Error:
        return False
    return True


def check_renames(columns: list[str], renames: dict[str, str], display: str) -> None:
    """``data.columns`` must rename columns that exist, and give no two columns one name (DuckDB would
    rename one of them silently, name_1; another engine would refuse the query)."""
    for old in renames:
        if old not in columns:
            raise DataError(f"column to rename not found{did_you_mean(old, columns)}", file=display,
                            key=f"data.columns.{old}", column=old)
    renamed = [renames.get(c, c) for c in columns]
    for old, new in renames.items():
        if renamed.count(new) > 1:
            raise DataError(f"renaming {old!r} to {new!r} gives two columns named {new!r}; choose another name",
                            file=display, key=f"data.columns.{old}", column=new)


def _renamed_types(types: dict[str, str], renames: dict[str, str]) -> dict[str, str]:
    """The names a filter may use, with their types: the new names of data.columns, then the file's own."""
    return {**{renames.get(c, c): t for c, t in types.items()}, **types}


def _check_single_select(con: "duckdb.DuckDBPyConnection", query: str, display: str, text: str,
                         types: dict[str, str]) -> None:
    """The filter must leave one SELECT: no ';' tricks, no other statement kinds."""
    import duckdb

    try:
        statements = con.extract_statements(query)
    except duckdb.Error as exc:
        raise _filter_error(exc, text, query, types, display) from None
    if len(statements) != 1 or statements[0].type != duckdb.StatementType.SELECT:
        raise SpecError("filter must be one boolean expression over the columns (no ';', no other statements)",
                        file=display, key="data.filter")


def _check_filter_text(text: str, display: str) -> None:
    """Quotes and parentheses of the filter must close inside it: it cannot reach past its own WHERE ( ... )."""
    opened, i = [], 0
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


# ---------------------------------------------------------------- filter errors in plain words

_PLAIN_TYPES = {"VARCHAR": "text", "STRING_LITERAL": "quoted text", "INTEGER_LITERAL": "a number",
                "DECIMAL_LITERAL": "a number", "DATE": "a date", "TIMESTAMP": "a timestamp", "BOOLEAN": "true/false"}


def _filter_error(exc: Exception, text: str, query: str, types: dict[str, str], display: str,
                  rendered: str | None = None) -> SpecError:
    """DuckDB's error about the filter, said in plain words: which column, token or type is wrong.

    ``rendered``: the filter as ``query`` holds it when that is not ``text`` itself.
    """
    return SpecError(_explain_filter(str(exc), text, query, types, rendered or text), file=display,
                     key="data.filter")


@dataclass(frozen=True)
class _Failed:
    """What a plain-words rule may use: the filter, where DuckDB points in it, the columns and their types."""

    text: str
    detail: str  # DuckDB's first line without its 'Xxx Error: ' prefix
    at: int | None
    near: str  # ' at character N', or ''
    types: dict[str, str]


def _syntax(m: re.Match, f: _Failed) -> str:
    token = m.group(1)
    if f.at is not None and f.at >= len(f.text):
        return f"the filter ends too early: something is missing after {f.text.strip().split()[-1]!r}"
    if token == ";":
        return "syntax error near ';': the filter is one condition, with no ';' and no other statement"
    return f"syntax error near {token!r}{f.near}"


def _no_function(m: re.Match, f: _Failed) -> str:
    if m.group(1).endswith("__postfix"):
        return _nothing_on_the_right(m.group(1)[:-len("__postfix")], f)
    args = ", ".join(_plain_type(t.strip()) for t in m.group(2).split(","))
    op = {"~~": "LIKE", "!~~": "NOT LIKE"}.get(m.group(1), m.group(1))
    return f"type mismatch{f.near}: {op!r} cannot take {args}{_column_types(f.text, f.types)}"


def _conversion(m: re.Match, f: _Failed) -> str:
    found = re.search(r"Could not convert string '(.*?)' to (\S+)", f.detail)
    what = f"{found.group(1)!r} cannot be read as {_plain_type(found.group(2))}" if found else f.detail
    return f"type mismatch{f.near}: {what}{_column_types(f.text, f.types)}"


def _nothing_on_the_right(operator: str, f: _Failed) -> str:
    return f"syntax error near {operator!r}{f.near}: the operator has nothing on its right"


# (pattern searched in DuckDB's first line, plain words): the first that matches says it
_RULES: tuple[tuple[str, Callable[[re.Match, _Failed], str]], ...] = (
    (r'Referenced column "(.+?)" not found', lambda m, f: missing_column_message(m.group(1), f.text, f.types)),
    (r'Referenced table "(.+?)" not found', lambda m, f: f"{m.group(1)!r} is not a column; the filter sees only "
                                                         "the data's columns: write a column name alone"),
    (r'syntax error at or near "(.*)"', _syntax),
    (r"syntax error at end of input",
     lambda m, f: "the filter ends too early: an expression, ')' or quote is missing at its end"),
    (r"unterminated quoted", lambda m, f: f"a quote{f.near} is never closed; close it"),
    (r"Function with name (\S+?)__postfix does not exist", lambda m, f: _nothing_on_the_right(m.group(1), f)),
    (r"Scalar Function with name (\S+) does not exist", lambda m, f: f"unknown function {m.group(1)!r}{f.near}"),
    (r'Function "(\S+)" is a table function', lambda m, f: f"{m.group(1)!r} reads tables or files, which a "
                                                           "filter cannot; use a condition over the columns"),
    (r"^Permission Error",
     lambda m, f: "a filter can read only the data's own columns (files and the network are switched off)"),
    (r"Cannot compare values of type (\S+) and type (\S+)",
     lambda m, f: f"type mismatch{f.near}: cannot compare {_plain_type(m.group(1))} with "
                  f"{_plain_type(m.group(2))}{_column_types(f.text, f.types)}"),
    (r"No function matches the given name and argument types '(.+?)\((.*?)\)'", _no_function),
    (r"^Conversion Error", _conversion),
)


def _explain_filter(raw: str, text: str, query: str, types: dict[str, str], rendered: str) -> str:
    first = first_line(Exception(raw))
    detail = re.sub(r"^[A-Za-z ]*Error: ", "", first)
    at = _filter_offset(raw, query, rendered)
    if at is not None and rendered != text:  # the character of the filter as written
        at = original_offset(text, rendered, at)
    failed = _Failed(text, detail, at, f" at character {at + 1}" if at is not None and at < len(text) else "", types)
    for pattern, plain in _RULES:
        m = re.search(pattern, first)
        if m:
            return plain(m, failed)
    return f"the filter failed{failed.near}: {detail}"


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

