"""The words causalcli puts into DuckDB's SQL, written once: the study table's name, quoted
identifiers and text literals, the numeric type names; and DuckDB's answers made readable
(an error's first line, the nearest column name for a misspelt one).

Everything else in ``causalcli.data`` builds on this module, and it imports nothing of theirs.
"""

from __future__ import annotations

from typing import Any

TABLE = "study_data"  # the study's data, renamed and filtered, as designs query it
NUMERIC_PREFIXES = ("TINYINT", "SMALLINT", "INTEGER", "BIGINT", "HUGEINT", "UTINYINT", "USMALLINT",
                    "UINTEGER", "UBIGINT", "UHUGEINT", "FLOAT", "DOUBLE", "DECIMAL", "REAL")


def quote_identifier(name: str) -> str:
    """A column or table name as a DuckDB identifier (the one place that quotes them)."""
    return '"' + name.replace('"', '""') + '"'


def quote_literal(text: str) -> str:
    """Text (a value, a file path) as a DuckDB string literal."""
    return "'" + text.replace("'", "''") + "'"


def first_line(exc: Exception) -> str:
    """An exception's message cut to its first line (DuckDB puts context on the lines after)."""
    text = str(exc).strip()
    return text.splitlines()[0] if text else exc.__class__.__name__


def did_you_mean(name: str, choices: Any) -> str:
    """' (did you mean 'x'?)' for the nearest of ``choices``, or '' when none is near."""
    import difflib

    match = difflib.get_close_matches(name, list(choices), n=1, cutoff=0.5)
    return f" (did you mean {match[0]!r}?)" if match else ""


def value_hint(value: str, values: Any, shown: int = 3) -> str:
    """What to write instead of a value a column does not hold: the nearest (' (did you mean 'Texas'?)'), else a
    few of its values ('; its 51 values include 'Alabama', 'Alaska', 'Arizona''), so a unit's number given for
    its name, or the reverse, is seen at once."""
    values = sorted(str(v) for v in values)
    near = did_you_mean(str(value), values)
    if near or not values:
        return near
    return f"; its {len(values):,} values include {', '.join(repr(v) for v in values[:shown])}"


def drop_infinite(column: str) -> str:
    """The advice that ends an infinite-value error: the data.filter that leaves such rows out."""
    name = column if column.isidentifier() else quote_identifier(column)
    return f"filter them out with data.filter (e.g. \"isfinite({name})\")"
