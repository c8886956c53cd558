"""Column types as data arrives: treatments, time periods and numbers, read in place in DuckDB.

A design states the role of each column; the column is then read as that role needs, inside
DuckDB, by putting a view with the converted column in place of ``study_data``:

- a treatment coded 0/1, true/false, yes/no, y/n or t/f (any case), from CSV or Parquet, or two
  other values of which ``design.treated_value`` names the treated one, becomes 0/1;
- a time column that is a date, a timestamp (cut to the day in ``data.timezone``) or an ISO date
  string becomes the period number 1..T of its distinct days, and ``Table.period_labels`` keeps
  the ISO date of each, so that results are labelled by date; integer periods stay as they are;
- a text column whose values are all numbers (e.g. once ``data.filter`` dropped an 'n/a') becomes
  DOUBLE; any other value is a one-line error naming the column, its role, the first offending
  value and its row, and advice that fits that role.
"""

from __future__ import annotations

import datetime as dt
import re
from typing import TYPE_CHECKING, Any

from causalcli.data.sql import TABLE, quote_literal as _literal
from causalcli.data.sql import quote_identifier as _quote
from causalcli.errors import DataError, SpecError

if TYPE_CHECKING:  # pragma: no cover
    from causalcli.data.table import Table

TEXT_TYPES = ("VARCHAR", "TEXT", "STRING")
# word pairs a treatment may be coded in (compared in lower case): (control, treated)
BINARY_CODES = (("0", "1"), ("false", "true"), ("no", "yes"), ("f", "t"), ("n", "y"))
TRUE_WORDS = {"true", "t", "yes", "y", "on", "1", "1.0"}
FALSE_WORDS = {"false", "f", "no", "n", "off", "0", "0.0"}
MISSING_TOKENS = {"na", "n/a", "nan", "null", "none", "-", ".", "?", "missing", "#n/a", "nil"}
ROLE_NAMES = {"treatment": "treatment", "outcome": "outcome", "weights": "weights", "design.time": "time",
              "design.cohort": "cohort", "design.unit": "unit", "design.cluster": "cluster"}


def role_name(key: str) -> str:
    """'covariates[2]' -> 'covariate', 'design.time' -> 'time'."""
    base = re.sub(r"\[\d+\]$", "", key)
    if base in ROLE_NAMES:
        return ROLE_NAMES[base]
    last = base.rsplit(".", 1)[-1]
    return last[:-1] if last.endswith("s") and last != "weights" else last


def is_text(table: "Table", column: str) -> bool:
    return table.types[column].upper() in TEXT_TYPES


def first_row(table: "Table", column: str, condition: str) -> tuple[int, Any] | None:
    """(1-based data row, value) of the first row whose ``column`` meets the SQL ``condition``."""
    q = _quote(column)
    row = table.sql(f"SELECT rn, v FROM (SELECT row_number() OVER () AS rn, {q} AS v FROM {TABLE}) "
                    f"WHERE {condition.replace('{v}', 'v')} ORDER BY rn LIMIT 1")
    return (int(row[0][0]), row[0][1]) if row else None


def replace_column(table: "Table", column: str, expr: str) -> None:
    """Put ``expr`` (over the current ``study_data``) in place of ``column``."""
    _redefine(table, ", ".join(f"{expr} AS {_quote(c)}" if c == column else _quote(c) for c in table.types))


def add_column(table: "Table", column: str, expr: str) -> None:
    """Add ``expr`` (over the current ``study_data``) as a new last column ``column``."""
    _redefine(table, f"*, {expr} AS {_quote(column)}")


def group_rows_once(table: "Table", name: str, select: str, group_by: str) -> None:
    """``name`` becomes ``SELECT <select> FROM study_data GROUP BY <group_by>``, computed once: a temporary
    table in DuckDB (and PostgreSQL), so that several passes read the groups without grouping the rows again;
    ``select_rows`` then makes it ``study_data``."""
    if table.engine is not None:
        from causalcli.data.remote import create_relation

        create_relation(table.engine, name, f"SELECT {select} FROM ({table.view_sql}) AS {TABLE} GROUP BY {group_by}")
        return
    table.con.execute(f"CREATE OR REPLACE TEMPORARY TABLE {name} AS SELECT {select} FROM {TABLE} GROUP BY {group_by}")


def select_rows(table: "Table", select: str, source: str, where: str) -> None:
    """``study_data`` becomes ``SELECT <select> FROM <source> WHERE <where>`` (a relation of ``group_rows_once``:
    e.g. rows summed to randomisation units); ``table.rows`` still counts the rows."""
    _redefine(table, select, f" WHERE {where}", source)


def _redefine(table: "Table", select: str, tail: str = "", source: str | None = None) -> None:
    """``study_data`` becomes ``SELECT <select>`` (then ``tail``) over its previous relation (or ``source``): in
    DuckDB a view over the renamed previous relation, in another engine its temporary view redefined over the
    previous query."""
    if table.engine is not None:
        from causalcli.data.remote import create_view, describe

        table.view_sql = f"SELECT {select} FROM {source or f'({table.view_sql}) AS {TABLE}'}{tail}"
        create_view(table.engine, table.view_sql)
        table.types = describe(table.engine, TABLE)
        return
    kind = table.sql(f"SELECT table_type FROM information_schema.tables WHERE table_name = '{TABLE}'")[0][0]
    layer = 0
    names = {r[0] for r in table.sql("SELECT table_name FROM information_schema.tables")}
    while f"{TABLE}_{layer}" in names:
        layer += 1
    previous = f"{TABLE}_{layer}"
    table.con.execute(f"ALTER {'VIEW' if kind == 'VIEW' else 'TABLE'} {TABLE} RENAME TO {previous}")
    table.con.execute(f"CREATE VIEW {TABLE} AS SELECT {select} FROM {source or previous}{tail}")
    table.types = dict(table.sql(f"SELECT column_name, column_type FROM (DESCRIBE {TABLE})"))


def _where(table: "Table") -> str:
    return " of the filtered data" if getattr(table, "filtered_out", None) else ""


# ---------------------------------------------------------------- numbers


def _time_advice(text: str) -> str:
    """The exact rewrite for time values people often write; the message already says what the column takes."""
    month = re.fullmatch(r"(\d{4})[-/](\d{1,2})", text)
    if month and 1 <= int(month.group(2)) <= 12:
        return f"write a month as its first day ({month.group(1)}-{int(month.group(2)):02d}-01) or as a number"
    quarter = re.fullmatch(r"[Qq]([1-4])[ -]?(\d{4})|(\d{4})[ -]?[Qq]([1-4])", text)
    if quarter:
        q, year = (quarter.group(1), quarter.group(2)) if quarter.group(1) else (quarter.group(4), quarter.group(3))
        return (f"write a quarter as its first day ({year}-{3 * (int(q) - 1) + 1:02d}-01) or number the quarters "
                "(e.g. 1, 2, 3, ...)")
    if re.fullmatch(r"\d{1,2}[/.]\d{1,2}[/.]\d{2,4}", text):
        return "write dates as YYYY-MM-DD (the order of day and month in this form is ambiguous)"
    return "fix the value, or drop the row with data.filter"


def number_advice(value: str, role: str, levels_of: str | None = None) -> str:
    """What to do about a text value in a column that must hold numbers, for this role.

    ``levels_of``: the column, when the design takes no categorical covariates (did, rdd): the advice is then a
    0/1 column derived from the level, not the ``categorical`` key those designs refuse."""
    text = value.strip()
    if text.lower() in MISSING_TOKENS or text == "":
        return ("write missing values as empty fields, or drop those rows with data.filter "
                f"(e.g. \"{'{column}'} <> {_literal(value)}\")")
    if re.fullmatch(r"[-+]?\d{1,3}(,\d{3})+(\.\d+)?", text):
        return f"remove the thousands separators ({text.replace(',', '')})"
    if re.fullmatch(r"[-+]?\d+,\d+", text):
        return f"write decimals with a point ({text.replace(',', '.')}), or set data.delimiter if ',' is not it"
    if re.fullmatch(r"[-+]?[$€£]\s?[\d.,]+|[\d.,]+\s?%", text):
        return "write the bare number, without currency or percent signs"
    if role == "covariate" and levels_of is not None:
        return level_column_advice(levels_of, value)
    if role == "covariate":
        return "list the column under 'categorical' if it is a category, or fix the value"
    if role == "time":
        return _time_advice(text)
    if role == "cohort":
        return "write the first treated period like the time column (0 or empty = never treated)"
    return f"the {role} must be a number in every row; fix the value or drop the row with data.filter"


def _slug(text: str, limit: int = 30) -> str:
    return re.sub(r"[^0-9a-z]+", "_", text.strip().lower()).strip("_")[:limit]


def _derive_example(name: str, sql: str) -> str:
    """A ``data.derive`` entry as YAML flow text (the SQL double-quoted, its own double quotes escaped)."""
    return "data.derive: {" + name + ": \"" + sql.replace("\\", "\\\\").replace('"', '\\"') + "\"}"


def _sql_name(column: str) -> str:
    """The column as a user writes it in SQL: bare when it is a plain identifier."""
    return column if re.fullmatch(r"[A-Za-z_][A-Za-z0-9_]*", column) else _quote(column)


def level_column_advice(column: str, value: str) -> str:
    """A design without categorical covariates: one 0/1 column per level, through ``data.derive``."""
    name = f"{_slug(column) or 'column'}_{_slug(value, 20) or 'level'}"
    if name[0].isdigit():
        name = f"c_{name}"
    return ("this design takes no categorical covariates: derive a 0/1 column per level and list those, e.g. "
            + _derive_example(name, f"CAST({_sql_name(column)} = {_literal(value)} AS INTEGER)"))


def numeric_column(table: "Table", column: str, key: str, categories: bool = True) -> None:
    """A numeric column as it is; a text column whose values are all numbers becomes DOUBLE; else exit 3.

    ``categories``: the design takes categorical covariates; without, a text covariate's advice is a derived
    0/1 column."""
    if table.is_numeric(column):
        return
    role = role_name(key)
    q = _quote(column)
    if is_text(table, column):
        bad = first_row(table, column, "{v} IS NOT NULL AND trim({v}) <> '' AND TRY_CAST(trim({v}) AS DOUBLE) IS NULL")
        if bad is None:  # an empty text counts as missing, as an empty CSV field does
            replace_column(table, column, f"CAST(NULLIF(trim({q}), '') AS DOUBLE)")
            return
        row, value = bad
        advice = number_advice(str(value), role, None if categories else column)
        advice = advice.replace("{column}", column.replace('"', '\\"'))
        text = str(value).strip()
        if text.lower() in MISSING_TOKENS:  # a CSV of R's (NA) or Stata's ('.'): one key reads it as missing
            advice = f"{advice}; or set data.na_values: [{_literal(text)}] to read it as missing"
        raise DataError(f"column {column!r} ({role}) must be numeric: row {row}{_where(table)} has {str(value)!r}; "
                        f"{advice}", file=table.file, key=key, column=column)
    advice = (f"the {role} must be a number" if role != "covariate" else
              "list it under 'categorical' if it is a category" if categories else
              "this design takes no categorical covariates: derive a number from it, e.g. "
              + _derive_example(f"{_slug(column) or 'column'}_num", f"CAST({_sql_name(column)} AS INTEGER)"))
    raise DataError(f"column {column!r} ({role}) must be numeric but is {table.types[column]}; {advice}",
                    file=table.file, key=key, column=column)


# ---------------------------------------------------------------- treatments


def _distinct(table: "Table", column: str, limit: int = 3) -> list[Any]:
    """Distinct non-missing values in order of first appearance."""
    q = _quote(column)
    nan = f" AND NOT isnan({q})" if table.types[column].upper() in ("DOUBLE", "FLOAT", "REAL") else ""
    rows = table.sql(f"SELECT v FROM (SELECT row_number() OVER () AS rn, {q} AS v FROM {TABLE}) "
                     f"WHERE v IS NOT NULL{nan.replace(q, 'v')} GROUP BY v ORDER BY min(rn) LIMIT {limit}")
    return [r[0] for r in rows]


def _show(v: Any) -> str:
    if isinstance(v, float) and v.is_integer():
        return repr(str(int(v)))
    return repr(str(v))


def _matches(value: Any, wanted: Any) -> bool:
    """Does a data value equal the spec's ``treated_value`` (1 == 1.0 == '1'; 'Yes' == 'yes' only if unique)?"""
    if isinstance(wanted, bool) != isinstance(value, bool):
        # YAML reads yes/no/on/off as booleans, DuckDB reads yes/no columns as BOOLEAN: compare as words
        flag, other = (wanted, value) if isinstance(wanted, bool) else (value, wanted)
        words = TRUE_WORDS if flag else FALSE_WORDS
        return str(other).strip().lower() in words
    if isinstance(wanted, bool):
        return value == wanted
    if isinstance(value, (int, float)) and isinstance(wanted, (int, float)):
        return float(value) == float(wanted)
    return str(value) == str(wanted) or _as_number(value) == _as_number(wanted) is not None


def _as_number(v: Any) -> float | None:
    try:
        return float(v)
    except (TypeError, ValueError):
        return None


def coded_binary(table: "Table", column: str, treated_value: Any = None) -> bool:
    """Is a treatment column that may also be continuous (dml) coded as two labels rather than numbers?"""
    if column not in table.types or treated_value is not None:
        return column in table.types
    if table.types[column].upper() == "BOOLEAN":
        return True
    return is_text(table, column) and first_row(table, column, "{v} IS NOT NULL AND trim({v}) <> '' AND "
                                                               "TRY_CAST(trim({v}) AS DOUBLE) IS NULL") is not None


def binary_treatment(table: "Table", column: str, key: str = "treatment", treated_value: Any = None,
                     value_key: str = "design.treated_value") -> None:
    """Make a two-valued treatment column 0/1 (1 = treated) in ``study_data``; exit 3 if the treated one is unclear."""
    q = _quote(column)
    t = table.types[column].upper()
    values = _distinct(table, column)
    if len(values) > 2:
        more = _distinct(table, column, 11)
        shown = ", ".join(_show(v) for v in more[:10]) + (", ..." if len(more) > 10 else "")
        advice = ""
        stray = next((v for v in more if str(v).strip().lower() in MISSING_TOKENS | {""}), None)
        if stray is not None:
            where = first_row(table, column, f"CAST({{v}} AS VARCHAR) = {_literal(str(stray))}")
            advice = (f"; {str(stray)!r} (first in row {where[0]}{_where(table)}) looks like a missing value: write "
                      f"it as an empty field, or drop those rows with data.filter (e.g. "
                      f"\"{column} <> {_literal(str(stray))}\")")
        raise DataError(f"treatment column {column!r} must be binary (two values: treated and control); found "
                        f"{len(more) if len(more) <= 10 else 'more than 10'}: {shown}{advice}", file=table.file,
                        key=key, column=column)
    if treated_value is not None:
        hits = [v for v in values if _matches(v, treated_value)]
        if not hits and is_text(table, column):  # a case-insensitive match, if it is the only one
            hits = [v for v in values if str(v).lower() == str(treated_value).lower()]
        if len(hits) != 1:
            shown = " and ".join(_show(v) for v in values) or "no values"
            raise DataError(f"{value_key} {treated_value!r} is not a value of treatment column {column!r} "
                            f"(it has {shown})", file=table.file, key=value_key, column=column)
        hit = hits[0]
        if t == "BOOLEAN":
            expr = f"CAST({q} = {'true' if hit else 'false'} AS INTEGER)"
        elif is_text(table, column):
            expr = f"CAST({q} = {_literal(str(hit))} AS INTEGER)"
        else:
            expr = f"CAST(CAST({q} AS DOUBLE) = {float(hit)!r} AS INTEGER)"
        replace_column(table, column, expr)
        return
    if t == "BOOLEAN":
        replace_column(table, column, f"CAST({q} AS INTEGER)")
        return
    if is_text(table, column) or table.is_numeric(column):
        lowered = {str(int(v)) if isinstance(v, float) and v.is_integer() else str(v).strip().lower() for v in values}
        for control, treated in BINARY_CODES:
            if lowered <= {control, treated}:
                if table.is_numeric(column):
                    return  # 0/1 already
                replace_column(table, column,
                               f"CASE WHEN {q} IS NULL THEN NULL WHEN lower(trim({q})) = {_literal(treated)} "
                               "THEN 1 ELSE 0 END")
                return
        if len(values) == 2:
            a, b = (_show(v) for v in values)
            raise DataError(f"treatment column {column!r} has the values {a} and {b}, and which one is treated is "
                            f"not clear: set {value_key} to the treated one ({a} or {b})",
                            file=table.file, key=value_key, column=column)
        if values and not table.is_numeric(column):
            # the caller's one-value check reads the column as numbers, which text is not
            raise DataError(f"treatment column {column!r} has only one value, {_show(values[0])}; both treated and "
                            "control units are needed (check data.filter, or the column)", file=table.file, key=key,
                            column=column)
        return  # one number: the caller says both arms are needed
    raise DataError(f"treatment column {column!r} is {table.types[column]}: it must be 0/1, true/false, yes/no or "
                    f"two values of which {value_key} names the treated one", file=table.file, key=key,
                    column=column)


# ---------------------------------------------------------------- time


def _day_expr(table: "Table", column: str, timezone: str) -> str | None:
    """SQL giving the day of each row of a date, timestamp or ISO-date text column; None for numbers."""
    q = _quote(column)
    t = table.types[column].upper()
    tz = _literal(timezone)
    if table.is_numeric(column):
        return None
    if t == "DATE":
        return q
    if t in ("TIMESTAMP WITH TIME ZONE", "TIMESTAMPTZ"):
        return f"CAST(timezone({tz}, {q}) AS DATE)"
    if t.startswith("TIMESTAMP"):  # naive timestamps are read as UTC (the session's zone)
        return f"CAST(timezone({tz}, CAST({q} AS TIMESTAMPTZ)) AS DATE)"
    if is_text(table, column):
        dates = first_row(table, column, "{v} IS NOT NULL AND trim({v}) <> '' AND TRY_CAST(trim({v}) AS DATE) IS NULL")
        if dates is None:
            return f"TRY_CAST(trim({q}) AS DATE)"
        stamps = first_row(table, column, "{v} IS NOT NULL AND trim({v}) <> '' AND "
                                          "TRY_CAST(trim({v}) AS TIMESTAMPTZ) IS NULL")
        if stamps is None:
            return f"CAST(timezone({tz}, TRY_CAST(trim({q}) AS TIMESTAMPTZ)) AS DATE)"
        return None
    return None


def day_expression(table: "Table", column: str, timezone: str) -> str | None:
    """SQL giving each row's day (a date, a timestamp cut in ``timezone``, an ISO date string); None for numbers
    and for text that is not dates. Designs that truncate days further (weeks, months) start from it."""
    return _day_expr(table, column, timezone)


def period_column(table: "Table", column: str, key: str, timezone: str = "UTC") -> None:
    """Numbers stay; dates, timestamps and ISO date strings become period numbers 1..T labelled by ISO date."""
    if table.is_numeric(column):
        return
    day = _day_expr(table, column, timezone)
    if day is None:
        if is_text(table, column):
            numbers = first_row(table, column, "{v} IS NOT NULL AND TRY_CAST(trim({v}) AS DOUBLE) IS NULL")
            if numbers is None:  # numbers written as text: read them as numbers
                numeric_column(table, column, key)
                return
            bad = first_row(table, column, "{v} IS NOT NULL AND trim({v}) <> '' AND "
                                           "TRY_CAST(trim({v}) AS DATE) IS NULL AND TRY_CAST(trim({v}) AS DOUBLE) IS NULL")
            row, value = bad or numbers
            advice = number_advice(str(value), "time").replace("{column}", column.replace('"', '\\"'))
            raise DataError(f"column {column!r} (time) must hold numbers, dates (YYYY-MM-DD) or timestamps: row "
                            f"{row}{_where(table)} has {str(value)!r}; {advice}", file=table.file, key=key,
                            column=column)
        raise DataError(f"column {column!r} (time) is {table.types[column]}: it must be a number (e.g. a year), "
                        "a date or a timestamp", file=table.file, key=key, column=column)
    periods = f"period_days_{len(table.period_labels)}"
    days = [r[0] for r in table.sql(f"SELECT DISTINCT {day} AS p FROM {TABLE} WHERE {day} IS NOT NULL ORDER BY p")]
    if table.engine is not None:  # the days are few: their numbers travel as one CASE to the engine
        cases = " ".join(f"WHEN {day} = DATE '{d.isoformat()}' THEN {i}" for i, d in enumerate(days, 1))
        replace_column(table, column, f"CASE {cases} END" if days else "CAST(NULL AS INTEGER)")
    else:
        table.con.execute(f"CREATE TABLE {periods} AS SELECT DISTINCT {day} AS p FROM {TABLE} WHERE {day} IS NOT NULL")
        replace_column(table, column, f"list_position((SELECT list(p ORDER BY p) FROM {periods}), {day})")
    table.period_labels[column] = [d.isoformat() for d in days]
    table.period_tables[column] = periods


def cohort_column(table: "Table", column: str, time: str, key: str = "design.cohort", timezone: str = "UTC") -> None:
    """A first-treated-period column in the time column's type, as period numbers (0 = never treated).

    A date between two periods counts from the next period; after the last one, it is T + 1 (treated
    after the panel ends).
    """
    if time not in table.period_labels:
        if not table.is_numeric(column) and not is_text(table, column):
            raise DataError(f"column {column!r} (cohort) is {table.types[column]} but the time column {time!r} holds "
                            "numbers: give the first treated period as a number (0 or empty = never treated)",
                            file=table.file, key=key, column=column)
        numeric_column(table, column, key)
        # empty means never treated, as for dates below: left NULL, the never-treated rows were dropped as
        # missing and the comparison units with them (castle doctrine's effyear, empty for 29 of 50 states)
        q = _quote(column)
        floating = table.engine is None and table.types[column].upper() in ("DOUBLE", "FLOAT", "REAL")
        nan = f" OR isnan({q})" if floating else ""  # engines hold no NaN
        replace_column(table, column, f"CASE WHEN {q} IS NULL{nan} THEN 0 ELSE {q} END")
        return
    q = _quote(column)
    if table.is_numeric(column):
        bad = first_row(table, column, "{v} IS NOT NULL AND {v} <> 0")
        if bad is None:
            return  # every unit never treated: 0 means the same in any type
        raise DataError(f"column {column!r} (cohort) must be a date like the time column {time!r}: row {bad[0]} has "
                        f"{bad[1]!r}; write the first treated day (0 or empty = never treated)", file=table.file,
                        key=key, column=column)
    if is_text(table, column):
        never = f"trim({q}) IN ('', '0')"
        bad = first_row(table, column, "{v} IS NOT NULL AND trim({v}) NOT IN ('', '0') AND TRY_CAST(trim({v}) AS DATE) "
                                       "IS NULL AND TRY_CAST(trim({v}) AS TIMESTAMPTZ) IS NULL")
        if bad:
            raise DataError(f"column {column!r} (cohort) must hold dates like the time column {time!r}: row {bad[0]}"
                            f"{_where(table)} has {str(bad[1])!r}; write the first treated day as YYYY-MM-DD "
                            "(0 or empty = never treated)", file=table.file, key=key, column=column)
        day = (f"coalesce(TRY_CAST(trim({q}) AS DATE), "
               f"CAST(timezone({_literal(timezone)}, TRY_CAST(trim({q}) AS TIMESTAMPTZ)) AS DATE))")
    else:
        never = "false"
        day = _day_expr(table, column, timezone)
        if day is None:
            raise DataError(f"column {column!r} (cohort) is {table.types[column]}: give the first treated period as "
                            f"a date like the time column {time!r}", file=table.file, key=key, column=column)
    periods = table.period_tables[time]
    replace_column(table, column, f"CASE WHEN {q} IS NULL OR {never} THEN 0 ELSE "
                                  f"1 + (SELECT count(*) FROM {periods} WHERE p < {day}) END")


def as_day(value: Any) -> dt.date | None:
    """A spec value as a date: a YAML date, a datetime, or an ISO string; None otherwise."""
    if isinstance(value, dt.datetime):
        return value.date()
    if isinstance(value, dt.date):
        return value
    if isinstance(value, str):
        try:
            return dt.date.fromisoformat(value.strip()[:10])
        except ValueError:
            return None
    return None


def period_number(table: "Table", time: str, value: Any, key: str) -> float:
    """A period given in the spec (treatment_start, a window end) on the scale the design reads time in.

    With a date time column: the period number of that day (a day between two periods falls
    half-way between their numbers, so comparisons keep their meaning); else the number itself.
    """
    labels = table.period_labels.get(time)
    if labels is None:
        if as_day(value) is not None and not isinstance(value, (int, float)):
            raise SpecError(f"{key} is a date ({value}) but the time column {time!r} holds numbers: give a "
                            "value of the time column", file=table.file, key=key)
        number = None if isinstance(value, bool) else _as_number(value)
        if number is None:
            raise SpecError(f"{key} must be a value of the time column {time!r} (a number), found {value!r}",
                            file=table.file, key=key)
        return number
    day = as_day(value)
    if day is None:
        raise SpecError(f"{key} must be a date like the time column {time!r} (e.g. {labels[0]}), found {value!r}",
                        file=table.file, key=key)
    import bisect

    iso = day.isoformat()
    k = bisect.bisect_left(labels, iso)
    if k < len(labels) and labels[k] == iso:
        return float(k + 1)
    return k + 0.5


def period_text(value: Any, labels: list[str] | tuple[str, ...] | None) -> str:
    """A period as text: its ISO date with a date time column, else the number (3.0 -> '3')."""
    if hasattr(value, "item"):
        value = value.item()
    if labels is not None and isinstance(value, (int, float)) and float(value).is_integer() \
            and 1 <= value <= len(labels):
        return labels[int(value) - 1]
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    return f"{value:g}" if isinstance(value, float) else str(value)


def period_json(value: Any, labels: list[str] | tuple[str, ...] | None) -> float | str:
    """A period for JSON: the ISO date with a date time column, else the number as float."""
    return period_text(value, labels) if labels is not None else float(value)
