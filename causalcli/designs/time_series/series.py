"""The series a time-series design models, read in one grouped pass of the engine.

The data are a long table (one row per period: the outcome and the control columns), a panel
(``unit`` + ``treated_unit``: the treated unit's outcome, the other units' outcomes as controls)
or event-level rows (``aggregate``: sum, mean or count per period). In every case one ``GROUP BY``
over the period runs where the data live (DuckDB on the file, or the engine holding the table),
so a billion events arrive as a few hundred rows. The period is the day (a timestamp cut in
``data.timezone``), or its ISO week or month with ``design.period``; integer periods stay numbers.

Sums are of the values cast to DECIMAL(38, 10): exact, so the same in any order of summation and
on every engine (a rerun gives the same bits); each value is rounded to 1e-10 first.

Refused (exit 3, one line naming the column and the first offending period): a repeated period
without ``aggregate``, a period missing from the calendar, a missing value of the outcome or of a
control, an intervention outside the series, fewer pre-periods than two seasons.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import numpy as np

from causalcli.data.exact_sums import aggregate_sql
from causalcli.data.sql import TABLE, quote_identifier as _q, value_hint
from causalcli.errors import DataError, SpecError

if TYPE_CHECKING:  # pragma: no cover
    from causalcli.data.table import Table
    from causalcli.spec.loading import LoadedSpec
    from causalcli.spec.models import Study

MIN_PRE_PERIODS = 3


@dataclass(frozen=True)
class Series:
    """The outcome and control series by period, and where the intervention falls (picklable)."""

    y: np.ndarray  # (T,) outcome
    X: np.ndarray  # (T, k) controls
    controls: tuple[str, ...]
    labels: tuple[str, ...]  # each period as text: ISO date, or the number
    start: int  # index of the first post period
    period: str  # day, week, month, or step (integer periods)
    seasonality: int | None
    rows: int  # input rows
    file: str
    outcome: str
    time: str
    notes: tuple[str, ...] = ()

    @property
    def periods(self) -> int:
        return int(self.y.size)


def label(value: Any) -> str:
    """A unit or period as text: 3.0 -> '3', a date -> its ISO form."""
    if isinstance(value, np.generic):
        value = value.item()
    if isinstance(value, dt.datetime):
        value = value.date()
    if isinstance(value, dt.date):
        return value.isoformat()
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    return str(value)


def value_columns(study: "Study") -> list[str]:
    """Columns holding series values: the outcome, and the controls of a long table."""
    d = study.design
    return [study.outcome, *([] if d.unit else d.controls)]


def check_columns(study: "Study", table: "Table", spec: "LoadedSpec") -> None:
    """Every column exists; values are numbers (text holding numbers is read as numbers); time is dates or numbers."""
    from causalcli.data.table import require_columns

    d = study.design
    roles: dict[str, tuple[str, str]] = {d.time: ("design.time", "any")}
    if d.unit:
        roles[d.unit] = ("design.unit", "any")
    roles[study.outcome] = ("outcome", "numeric")
    for i, c in enumerate([] if d.unit else d.controls):
        roles.setdefault(c, (f"design.controls[{i}]", "numeric"))
    require_columns(table, roles, timezone=spec.study.data.timezone)


def _period_sql(study: "Study", table: "Table") -> tuple[str, bool]:
    """SQL of each row's period, and whether periods are dates."""
    from causalcli.data.types import day_expression

    d = study.design
    if table.is_numeric(d.time):
        if d.period is not None:
            raise SpecError(f"design.period: {d.period} needs dates in time column {d.time!r}, which holds numbers; "
                            "remove it", file=table.file, key="design.period")
        return f"CAST({_q(d.time)} AS DOUBLE)", False
    day = day_expression(table, d.time, study.data.timezone)
    if day is None:
        raise DataError(f"column {d.time!r} (time) must hold dates, timestamps or integer periods; it is "
                        f"{table.types[d.time]}", file=table.file, key="design.time", column=d.time)
    cut = d.period or ("day" if d.aggregate else None)
    if cut in ("week", "month", "quarter", "year"):
        return f"CAST(date_trunc('{cut}', {day}) AS DATE)", True
    return day, True


def read_series(study: "Study", table: "Table") -> Series:
    """The series, one grouped pass; every bad shape is a one-line DataError."""
    d = study.design
    period, dated = _period_sql(study, table)
    columns = value_columns(study)
    values = ", ".join(f"{aggregate_sql(table, c, d.aggregate)}, count({_q(c)})" for c in columns)
    keys = ([f"{_q(d.unit)}"] if d.unit else []) + ["p"]
    inner = ", ".join([*(f"{_q(d.unit)}" for _ in [0] if d.unit), f"{period} AS p", *(_q(c) for c in columns)])
    rows = table.sql(f"SELECT {', '.join(keys)}, count(*), {values} FROM (SELECT {inner} FROM {TABLE}) AS s "
                     f"WHERE p IS NOT NULL{f' AND {_q(d.unit)} IS NOT NULL' if d.unit else ''} "
                     f"GROUP BY {', '.join(keys)} ORDER BY {', '.join(keys)}")
    width = 1 if d.unit else 0
    notes: list[str] = []
    used = sum(int(r[width + 1]) for r in rows)
    if used < table.rows:
        notes.append(f"{table.rows - used:,} of {table.rows:,} rows have no {d.time!r}"
                     + (f" or {d.unit!r}" if d.unit else "") + ": they are left out")
    if not rows:
        raise DataError(f"no row has a value in time column {d.time!r}", file=table.file, key="design.time",
                        column=d.time)
    if d.aggregate is None:
        dup = next((r for r in rows if r[width + 1] > 1), None)
        if dup is not None:
            who = f"unit {label(dup[0])!r} has" if d.unit else "there are"
            from causalcli.designs.time_series.repeats import repeat_advice

            raise DataError(f"{who} {dup[width + 1]} rows for period {label(dup[width])} in column {d.time!r}: "
                            f"{repeat_advice(study, table, period)}", file=table.file, key="design.time",
                            column=d.time)
    if d.unit:
        return _panel(study, table, rows, dated, notes)
    times = [r[0] for r in rows]
    calendar, kind = _calendar(times, dated, study, table)
    y = _column(rows, 0, width, times)
    X = np.column_stack([_column(rows, 1 + i, width, times) for i in range(len(d.controls))]) \
        if d.controls else np.empty((len(times), 0))
    for j, (name, key) in enumerate([(study.outcome, "outcome"),
                                     *((c, f"design.controls[{i}]") for i, c in enumerate(d.controls))]):
        series = y if j == 0 else X[:, j - 1]
        holes = np.flatnonzero(np.isnan(series))
        if holes.size:
            raise DataError(f"{'control' if j else 'outcome'} {name!r} has no value for {label(times[holes[0]])} "
                            f"({_holes(holes, times)}): every period needs a value; fill it or "
                            f"{'drop the control' if j else 'cut the series with data.filter'}", file=table.file,
                            key=key, column=name)
    return _finish(study, table, y, X, tuple(d.controls), calendar, kind, notes)


def _column(rows: list[tuple], j: int, width: int, times: list) -> np.ndarray:
    at = width + 2 + 2 * j
    return np.array([np.nan if r[at] is None or r[at + 1] == 0 else float(r[at]) for r in rows], dtype=float)


def _panel(study: "Study", table: "Table", rows: list[tuple], dated: bool, notes: list[str]) -> Series:
    d = study.design
    treated = label(d.treated_unit)
    by_unit: dict[str, dict[Any, float]] = {}
    for r in rows:
        by_unit.setdefault(label(r[0]), {})[r[1]] = np.nan if r[3] is None or r[4] == 0 else float(r[3])
    if treated not in by_unit:
        raise DataError(f"treated unit {treated!r} not found in column {d.unit!r}{value_hint(treated, by_unit)}",
                        file=table.file,
                        key="design.treated_unit", column=d.unit)
    wanted = [label(c) for c in d.controls] or sorted(u for u in by_unit if u != treated)
    missing = [u for u in wanted if u not in by_unit]
    if missing:
        raise DataError(f"control unit(s) not found in column {d.unit!r}: {', '.join(missing)}"
                        f"{value_hint(missing[0], by_unit)}", file=table.file,
                        key="design.controls", column=d.unit)
    times = sorted({r[1] for r in rows})
    calendar, kind = _calendar(times, dated, study, table)
    y = np.array([by_unit[treated].get(t, np.nan) for t in times])
    X = np.column_stack([[by_unit[u].get(t, np.nan) for t in times] for u in wanted]) if wanted \
        else np.empty((len(times), 0))
    for j, name in enumerate([treated, *wanted]):
        series = y if j == 0 else X[:, j - 1]
        holes = np.flatnonzero(np.isnan(series))
        if holes.size:
            role = "treated unit" if j == 0 else "control unit"
            raise DataError(f"{role} {name!r} has no {study.outcome!r} for {label(times[holes[0]])} "
                            f"({_holes(holes, times)}): every unit needs every period; fill it or leave the "
                            f"unit out of design.controls", file=table.file, key="design.unit", column=study.outcome)
    return _finish(study, table, y, X, tuple(wanted), calendar, kind, notes)


def _holes(holes: np.ndarray, times: list) -> str:
    """'59 of 2284 periods missing, the last 1985-08-03': where a series cut by data.filter could start (co2)."""
    last = f", the last {label(times[holes[-1]])}" if holes.size > 1 else ""
    return f"{holes.size} of {len(times)} periods missing{last}"


def _calendar(times: list, dated: bool, study: "Study", table: "Table") -> tuple[list, str]:
    """The periods with their spacing checked: no gap (exit 3 naming the first missing period)."""
    from causalcli.data.calendar import next_period, spacing, weekdays_with_gaps

    d = study.design
    if len(times) < 2:
        raise DataError(f"time column {d.time!r} has {len(times)} period: a series needs many", file=table.file,
                        key="design.time", column=d.time)
    if not dated:
        steps = np.diff(np.asarray(times, dtype=float))
        step = float(steps.min())
        bad = np.flatnonzero(steps != step)
        if bad.size:
            raise DataError(f"time column {d.time!r} skips from {label(times[bad[0]])} to {label(times[bad[0] + 1])} "
                            f"(periods are {label(step)} apart elsewhere): every period needs a row", file=table.file,
                            key="design.time", column=d.time)
        return times, "step"
    days = [t if isinstance(t, dt.date) and not isinstance(t, dt.datetime) else t.date() for t in times]
    kind = d.period or ("day" if d.aggregate else spacing(days))
    if kind == "trading_day":  # each day with a row is a period: nothing is missing
        return days, kind
    if kind == "day" and not (d.period or d.aggregate) and min((b - a).days for a, b in zip(days, days[1:])) > 1:
        raise DataError(_unread_spacing(d.time, days), file=table.file, key="design.time", column=d.time)
    for a, b in zip(days, days[1:]):
        expected = next_period(a, kind)
        if b != expected:
            raise DataError(f"time column {d.time!r} has no row for {expected.isoformat()} (the {kind}s run from "
                            f"{days[0].isoformat()} to {days[-1].isoformat()}): every period needs a row"
                            + ("" if d.period or d.aggregate else
                               "; the dates are weekdays only: set design.period: trading_day to count each day with "
                               "a row as one period (stock prices)" if kind == "day" and weekdays_with_gaps(days) else
                               "; set design.period if the spacing was misread"),
                            file=table.file, key="design.time", column=d.time)
    return days, kind


def _unread_spacing(time: str, days: list[dt.date]) -> str:
    """Dates never a day apart and not on the first day of a week, month, quarter or year."""
    gaps = sorted({(b - a).days for a, b in zip(days, days[1:])})
    spread = f"{gaps[0]}" if len(gaps) == 1 else f"{gaps[0]} to {gaps[-1]}"
    return (f"time column {time!r} has dates {spread} days apart ({days[0].isoformat()}, {days[1].isoformat()}, ...): "
            f"daily, weekly, monthly, quarterly and yearly dates are read (months, quarters and years by their "
            f"first day); set design.period to truncate these dates to one of those, or give design.time a column "
            f"of consecutive integer periods (1, 2, 3, ...) and design.intervention the first treated one")


def _intervention_index(study: "Study", table: "Table", calendar: list, kind: str) -> int:
    """Index of the period holding the intervention; exit 3 when it is outside the series."""
    from causalcli.data.types import as_day

    d = study.design
    value = d.intervention
    if kind == "step":
        if isinstance(value, (dt.date, bool)) or (isinstance(value, str) and as_day(value) is not None):
            raise SpecError(f"design.intervention is a date ({value}) but time column {d.time!r} holds numbers",
                            file=table.file, key="design.intervention")
        try:
            point: Any = float(value)
        except (TypeError, ValueError):
            raise SpecError(f"design.intervention must be a period of column {d.time!r}, found {value!r}",
                            file=table.file, key="design.intervention") from None
        end = float(calendar[-1]) + (float(calendar[1]) - float(calendar[0]))
        keys = [float(t) for t in calendar]
    else:
        point = as_day(value)
        if point is None or isinstance(value, (int, float)):
            raise SpecError(f"design.intervention must be a date like column {d.time!r} (e.g. {calendar[0]}), found "
                            f"{value!r}", file=table.file, key="design.intervention")
        from causalcli.data.calendar import next_period

        end = next_period(calendar[-1], "day" if kind == "trading_day" else kind)
        keys = calendar
    import bisect

    # the period holding the intervention; on trading days, a day without a row (a weekend) is held by the next one
    k = bisect.bisect_left(keys, point) if kind == "trading_day" else bisect.bisect_right(keys, point) - 1
    if k <= 0 or not point < end:
        where = "before the second" if k <= 0 else "after the last"
        raise DataError(f"design.intervention {label(value)} is {where} period of the series ({label(calendar[0])} to "
                        f"{label(calendar[-1])}): it needs periods before it to learn from and at least one after",
                        file=table.file, key="design.intervention", column=d.time)
    return k


def _refuse_infinite(study: "Study", table: "Table", y: np.ndarray, X: np.ndarray, controls: tuple[str, ...],
                     calendar: list) -> None:
    """An infinite value (a division by zero upstream, or summed into a period) is no missing value: the fit would
    turn it into a NaN estimate with no word. Exit 3 naming the series, the first period and a filter."""
    d = study.design
    for j, name in enumerate([study.outcome, *controls]):
        bad = np.flatnonzero(np.isinf(y if j == 0 else X[:, j - 1]))
        if not bad.size:
            continue
        column = study.outcome if j == 0 or d.unit else name
        what = (f"outcome {study.outcome!r}" if j == 0 and not d.unit else f"control {name!r}" if not d.unit else
                f"{'treated' if j == 0 else 'control'} unit {label(d.treated_unit) if j == 0 else name!r}'s "
                f"{study.outcome!r}")
        raise DataError(f"{what} is infinite in {label(calendar[bad[0]])} ({bad.size} of {len(calendar)} periods); "
                        f"fix the source (a division by zero upstream?)" + (f"; data.filter: \"isfinite({column})\" leaves such "
                        "rows out of the aggregate" if d.aggregate else ""),
                        file=table.file, key="outcome" if column == study.outcome else "design.controls",
                        column=column)


def _finish(study: "Study", table: "Table", y: np.ndarray, X: np.ndarray, controls: tuple[str, ...], calendar: list,
            kind: str, notes: list[str]) -> Series:
    d = study.design
    _refuse_infinite(study, table, y, X, controls, calendar)
    start = _intervention_index(study, table, calendar, kind)
    s = d.seasonality
    needed = max(MIN_PRE_PERIODS, 2 * s if s else 0, X.shape[1] + 3)
    if start < needed:
        why = (f"seasonality {s} needs two full seasons ({2 * s})" if s and 2 * s == needed
               else f"{X.shape[1]} controls need {needed}" if needed > MIN_PRE_PERIODS else f"at least {needed}")
        raise DataError(f"too few pre-periods: {start} before intervention {label(d.intervention)}; {why}: move the "
                        "intervention or give a longer series", file=table.file, key="design.intervention",
                        column=d.time)
    constant = [c for j, c in enumerate(controls) if np.ptp(X[:start, j]) == 0]
    if constant:
        raise DataError(f"control {constant[0]!r} is constant before the intervention: it cannot explain the "
                        f"outcome; drop it", file=table.file, key="design.controls")
    return Series(y=y, X=X, controls=controls, labels=tuple(label(t) for t in calendar), start=start, period=kind,
                  seasonality=s, rows=table.rows, file=table.file, outcome=study.outcome, time=d.time,
                  notes=tuple(notes))
