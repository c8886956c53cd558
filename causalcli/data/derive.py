"""``data.derive``: new columns computed where the data live, each from one sandboxed SQL expression.

An expression goes through ``data.filter``'s sandbox (``filter_sql.parse_expression``: one expression
from the allow-list over the table's own columns, no subquery, table, file or setting), reads the
columns after ``data.columns`` renames and the derived columns above it, and is rendered for the engine
like the filter. The filter runs first: derived columns are computed on the rows it keeps, so an
expression such as ``ln(x)`` never meets a row the filter removed, and the filter cannot read them.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import TYPE_CHECKING, Iterable

from causalcli.data.filter_sql import derived_column, parse_expression, parse_filter, render_filter
from causalcli.data.sql import first_line, quote_identifier
from causalcli.errors import SpecError

if TYPE_CHECKING:  # pragma: no cover
    import duckdb
    from sqlglot import exp

    from causalcli.spec.models import DataSpec

_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")


@dataclass(frozen=True)
class Derived:
    """One derived column: its name, its checked expression, the text as the spec wrote it."""

    name: str
    expression: "exp.Expression"
    text: str

    def sql(self, dialect: str = "duckdb") -> str:
        """The expression for ``dialect``, checked again there (a SpecError naming the key if unsafe)."""
        return render_filter(self.expression, dialect, derived_column(None, self.name))

    def reads(self) -> set[str]:
        from sqlglot import exp

        return {c.name for c in self.expression.find_all(exp.Column)}


def check_derive(derive: dict[str, str], columns: Iterable[str], taken: Iterable[str], file: str | None
                 ) -> list[Derived]:
    """Each name a new identifier, each expression checked over ``columns`` and the columns derived above it.

    ``columns``: what an expression may read (the names after renames); ``taken``: every name a derived
    column may not have (those, and the old names of renamed columns, which an engine's query still holds).
    """
    readable = list(columns)
    taken_by = {c.lower(): c for c in taken} | {c.lower(): c for c in readable}
    out: list[Derived] = []
    for name, text in derive.items():
        key = f"data.derive.{name}"
        if not _NAME.fullmatch(name):
            raise SpecError(f"{name!r} is not a column name: name a derived column with letters, digits and _, not "
                            "starting with a digit (e.g. age_sq)", file=file, key=key)
        if name.lower() in taken_by:
            clash = taken_by[name.lower()]
            above = " derived above" if any(d.name == clash for d in out) else " in the data"
            raise SpecError(f"{name!r} is already a column{above} ({clash!r}); give the derived column another name "
                            f"(e.g. {name}_2), or rename the data's column with data.columns", file=file, key=key)
        out.append(Derived(name, parse_expression(text, readable, derived_column(file, name)), text))
        readable.append(name)
        taken_by[name.lower()] = name
    return out


def derive_select(source: str, derived: list[Derived]) -> str:
    """DuckDB SQL: the rows of ``source`` (a FROM item) with the derived columns added.

    Expressions that read no column derived beside them share one SELECT; one that does starts a new
    SELECT over the one before (a SELECT's own output names are not readable in it on every engine).
    """
    layers: list[list[Derived]] = []
    for d in derived:
        if not layers or d.reads() & {e.name for e in layers[-1]}:
            layers.append([])
        layers[-1].append(d)
    query = ""
    for depth, layer in enumerate(layers):
        added = ", ".join(f"({d.sql()}) AS {quote_identifier(d.name)}" for d in layer)
        query = f"SELECT *, {added} FROM {source if depth == 0 else f'({query}) AS derived_{depth}'}"
    return query


def derived_types(con: "duckdb.DuckDBPyConnection", source: str, derived: list[Derived], types: dict[str, str],
                  file: str | None) -> dict[str, str]:
    """DuckDB's type of each derived column, bound one after another: the first that DuckDB cannot bind
    (text added to a number, say) is a SpecError naming its key, its error and the types it read."""
    import duckdb

    out: dict[str, str] = {}
    for i, d in enumerate(derived):
        try:
            described = con.execute(f"DESCRIBE {derive_select(source, derived[:i + 1])}").fetchall()
        except duckdb.Error as exc:
            raise failed(d, exc, {**types, **out}, file) from None
        out[d.name] = dict((row[0], row[1]) for row in described)[d.name]
    return out


def failed(d: Derived, exc: Exception, types: dict[str, str], file: str | None, on_rows: bool = False) -> SpecError:
    """DuckDB's (or an engine's) refusal of one derived column, in one line with what it read."""
    detail = re.sub(r"^[A-Za-z ]*(Error|Exception): ", "", first_line(exc))
    read = [f"{c} {types[c]}" for c in sorted(d.reads()) if c in types]
    read_text = f"; it reads {', '.join(read)}" if read else ""
    what = "fails on the rows" if on_rows else "cannot be computed"
    hint = ("guard the values it cannot take (e.g. CASE WHEN x > 0 THEN ln(x) END) or leave those rows out with "
            "data.filter" if on_rows else "cast text columns to numbers (CAST(x AS DOUBLE)) or fix the expression")
    return SpecError(f"{d.text!r} {what}: {detail}{read_text}; {hint}", file=file, key=f"data.derive.{d.name}")


def blame_rows(con: "duckdb.DuckDBPyConnection", query: str, derived: list[Derived], types: dict[str, str],
               file: str | None) -> SpecError | None:
    """After ``query`` (the study's rows with the derived columns) failed on the rows: the first derived column
    that fails alone (DuckDB computes only the columns a query reads), or None when none does."""
    import duckdb

    for d in derived:
        try:
            con.execute(f"SELECT count({quote_identifier(d.name)}) FROM ({query}) AS probe").fetchall()
        except duckdb.Error as exc:
            return failed(d, exc, types, file, on_rows=True)
    return None


def parse_filter_before_derive(data: "DataSpec", columns: Iterable[str], file: str | None) -> "exp.Expression":
    """``data.filter`` checked over ``columns``; a derived column it names is refused as such."""
    try:
        return parse_filter(data.filter or "", columns, file)
    except SpecError as exc:
        missing = re.match(r"column '(.+?)' not found", exc.message)
        derived = {name.lower(): name for name in data.derive}
        if missing is None or missing.group(1).lower() not in derived:
            raise
        name = derived[missing.group(1).lower()]
        raise SpecError(f"the filter reads {name!r}, a column of data.derive, which is computed after the filter on "
                        f"the rows it keeps; write its expression in the filter ({data.derive[name]})", file=file,
                        key="data.filter") from None
