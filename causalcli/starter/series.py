"""What ``init`` says of a dated series for ``method: time_series``: the season its spacing suggests, and the
gaps (periods without a row, or without a value of the outcome or a control) that estimate would refuse, with
the filter that starts the series after the last one."""

from __future__ import annotations

import datetime as dt
from typing import TYPE_CHECKING

from causalcli.data.table import quote_identifier as q
from causalcli.starter.profile import show, sql_literal

if TYPE_CHECKING:  # pragma: no cover
    from causalcli.starter.profile import DataProfile
    from causalcli.starter.text import Starter

# design.seasonality for the dates' spacing: a week of days; a year of weeks (52: a year is 52.18 weeks, so the
# pattern slips a day or so a year), of months or of quarters. Guessed when the series holds four seasons, so that
# an intervention halfway leaves the two the model needs before it.
SEASONS = {"day": 7, "week": 52, "month": 12, "quarter": 4}
NAMED = {"day": "daily", "week": "weekly", "month": "monthly", "quarter": "quarterly"}
MAX_DATES = 20_000  # dates read to guess from; a longer series is left to the user


def series_dates(data: "DataProfile", time: str) -> list[dt.date] | None:
    """The sorted dates of a date column holding one row per date, else None (integer periods have no
    calendar; an event-level table needs design.aggregate first)."""
    if data.kind(time) != "time":
        return None
    rows = data.sql(f"SELECT DISTINCT CAST({q(time)} AS DATE) AS t FROM d WHERE {q(time)} IS NOT NULL ORDER BY t "
                    f"LIMIT {MAX_DATES + 1}")
    days = [r[0] for r in rows if isinstance(r[0], dt.date)]
    if len(days) < 2 or len(days) > MAX_DATES or data.sql("SELECT count(*) FROM d")[0][0] != len(days):
        return None
    return days


def guess_seasonality(data: "DataProfile", days: list[dt.date], d: dict, st: "Starter") -> None:
    """design.seasonality from the dates' spacing (SEASONS) when the series holds four seasons; period: trading_day
    for weekday-only daily dates with days skipped."""
    from causalcli.data.calendar import spacing, weekdays_with_gaps

    kind = spacing(days)
    if kind == "day" and weekdays_with_gaps(days):  # trading days: a daily calendar would miss every weekend
        d["period"] = "trading_day"
        st.guessed.append("design.period: trading_day (weekdays only, with days skipped: each day with a row is one "
                          "period; no weekly seasonality)")
        return
    season = SEASONS.get(kind)
    if season is None or len(days) < 4 * season:
        return
    d["seasonality"] = season
    cycle = "week" if kind == "day" else "year"
    slips = " of 52.18 weeks: the pattern slips a day or so a year" if kind == "week" else ""
    st.guessed.append(f"design.seasonality: {season} ({NAMED[kind]} dates: a {cycle}'s cycle{slips}; remove it if the "
                      "outcome has none)")


def note_gaps(data: "DataProfile", time: str, days: list[dt.date], columns: list[str], d: dict,
              st: "Starter") -> None:
    """A note on the periods estimate would refuse: dates missing from the calendar, and for the outcome and each
    control the periods without a value (count, first, last), with the data.filter that keeps the periods after
    the last gap."""
    from causalcli.data.calendar import next_period, spacing

    kind = "trading_day" if d.get("period") == "trading_day" else spacing(days)
    unit = {"day": "days", "week": "weeks", "month": "months", "quarter": "quarters", "year": "years",
            "trading_day": "trading days"}[kind]
    found: list[tuple[str, int, dt.date, dt.date]] = []
    if kind != "trading_day":  # a trading calendar has no rule for the days it skips
        present, day = set(days), days[0]
        absent: list[dt.date] = []
        while day < days[-1] and len(absent) <= MAX_DATES:
            day = next_period(day, kind)
            if day not in present:
                absent.append(day)
        if absent:
            found.append((f"{time} has no row for", len(absent), absent[0], absent[-1]))
    for c in columns:
        missing = f"{q(c)} IS NULL" + (f" OR isnan({q(c)})" if c in data.nan else "")
        n, first, last = data.sql(f"SELECT count(*), min(CAST({q(time)} AS DATE)), max(CAST({q(time)} AS DATE)) "
                                  f"FROM d WHERE {q(time)} IS NOT NULL AND ({missing})")[0]
        if n:
            found.append((f"{c} has no value in", int(n), first, last))
    if not found:
        return
    cut = max(last for *_, last in found)
    left = sum(1 for x in days if x > cut)
    what = "; ".join(f"{who} {n:,} of {len(days):,} {unit} (the first {show(first)}, the last {show(last)})"
                     if n > 1 else f"{who} {show(first)}" for who, n, first, last in found)
    condition = f"{time if time.isidentifier() else q(time)} > {sql_literal(cut.isoformat())}"
    st.notes.append(f"the series has gaps, which estimate refuses: {what}; fill them, or start the series after the "
                    f"last with data.filter: \"{condition}\" ({left:,} {unit} left)")
