"""Why a period has several rows, read from the data: the advice of the repeated-period error.

A repeated period has two usual causes, and they want different fixes. Event-level rows (orders,
visits) are summed or averaged into one series by ``design.aggregate``. Rows of several units (two
states a year, a product per day) are a panel: ``design.unit`` + ``design.treated_unit``, or one unit
kept by ``data.filter``; aggregating them would add the units up. The units show as another column
that tells the rows of every period apart and whose values recur across periods: that column is
looked for (the fewest values first) and named in the message.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from causalcli.data.sql import TABLE, quote_identifier as _q, quote_literal

if TYPE_CHECKING:  # pragma: no cover
    from causalcli.data.table import Table
    from causalcli.spec.models import Study

MAX_CANDIDATES = 20  # columns tried for uniqueness with the period, the fewest distinct values first


@dataclass(frozen=True)
class Distinguishing:
    column: str
    values: list[Any]  # its most frequent values, up to 3
    distinct: int
    sub_period: int | None  # 4 or 12 when its values are the integers 1..4 or 1..12: quarters or months


def distinguishing_column(study: "Study", table: "Table", period_sql: str) -> Distinguishing | None:
    """A column, other than the design's, that makes (period, column) unique on every row with a period
    (within the unit with ``design.unit``) while each of its values recurs (no more values than half the
    rows: an id or a measurement is unique per row, a unit is not); with its most frequent values. None
    when no column does."""
    d = study.design
    used = {d.time, d.unit, study.outcome, *([] if d.unit else d.controls)}
    candidates = [c for c in table.columns if c not in used]
    if not candidates:
        return None
    counts = table.sql(f"SELECT count(*), {', '.join(f'count(DISTINCT {_q(c)})' for c in candidates)} "
                       f"FROM {TABLE} WHERE {period_sql} IS NOT NULL")[0]
    rows, distinct = int(counts[0]), [int(n) for n in counts[1:]]
    ranked = sorted((n, i) for i, n in enumerate(distinct) if 2 <= n <= rows // 2)[:MAX_CANDIDATES]
    keys = f"{_q(d.unit)}, " if d.unit else ""
    for _, i in ranked:
        c = _q(candidates[i])
        repeated = table.sql(f"SELECT count(*) FROM (SELECT 1 AS one FROM {TABLE} WHERE {period_sql} IS NOT NULL "
                             f"GROUP BY {keys}{period_sql}, {c} HAVING count(*) > 1) AS r")[0][0]
        if repeated == 0:
            values = table.sql(f"SELECT {c} FROM {TABLE} WHERE {c} IS NOT NULL GROUP BY {c} "
                               f"ORDER BY count(*) DESC, {c} LIMIT 3")
            sub = None
            if table.is_numeric(candidates[i]) and distinct[i] in (4, 12):
                low, high, whole = table.sql(f"SELECT min({c}), max({c}), bool_and({c} = round({c})) FROM {TABLE}")[0]
                sub = distinct[i] if whole and low == 1 and high == distinct[i] else None
            return Distinguishing(candidates[i], [v[0] for v in values], distinct[i], sub)
    return None


def repeat_advice(study: "Study", table: "Table", period_sql: str) -> str:
    """What to do about a repeated period, after the error's 'there are 2 rows for period ...'."""
    try:
        found = distinguishing_column(study, table, period_sql)
    except Exception:  # an engine's dialect may lack a function used here: the advice is best effort there
        if table.engine is None:
            raise
        found = None
    if found is None:
        return ("give one row per period, or set design.aggregate (sum, mean or count) to aggregate event-level "
                "rows (no other column tells the rows of a period apart, as units would)")
    column, values = found.column, found.values
    shown = f"{found.distinct} values: " + ", ".join(_shown(v) for v in values) + (", ..." if found.distinct > 3
                                                                                 else "")
    if found.sub_period and not study.design.unit:
        d = study.design
        name = "quarter" if found.sub_period == 4 else "month"
        month = f"CAST({column} AS INTEGER)" + (" * 3 - 2" if found.sub_period == 4 else "")
        return (f"column {column!r} numbers {found.sub_period} {name}s in each: the series is {name}ly, so date "
                f"each row by its {name} with data.derive (date: make_date(CAST({d.time} AS INTEGER), {month}, 1)) "
                f"and set design.time: date, as causalcli init writes it")
    condition = f"{column if column.isidentifier() else _q(column)} = {_shown(values[0])}"
    keep = f'data.filter: "{condition}"' if '"' not in condition else f"data.filter ({condition})"
    if study.design.unit:
        return (f"column {column!r} tells them apart ({shown}): keep one of its values with {keep}, or set "
                f"design.aggregate (sum, mean or count) to add them up")
    return (f"column {column!r} tells them apart ({shown}), so the rows look like several units: set "
            f"design.unit: {column} with design.treated_unit (the other units become the controls), or keep one "
            f"unit with {keep}; design.aggregate would add the units up")


def _shown(value: Any) -> str:
    """A value as a SQL literal in the message: text and dates quoted, numbers as they are."""
    if isinstance(value, dt.datetime):
        value = value.date()
    if isinstance(value, (str, dt.date)):
        return quote_literal(str(value))
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    return str(value)
