"""Dates as periods: the spacing of a sorted series of dates, and the period after a date."""

from __future__ import annotations

import datetime as dt


def spacing(days: list[dt.date]) -> str:
    """The spacing of sorted dates: year, quarter or month (first days), week or day."""
    gaps = {(b - a).days for a, b in zip(days, days[1:])}
    if all(x.day == 1 for x in days):
        if all(x.month == 1 for x in days) and gaps <= {365, 366}:
            return "year"
        if all(x.month % 3 == 1 for x in days) and gaps <= {90, 91, 92}:
            return "quarter"
        if gaps <= {28, 29, 30, 31}:
            return "month"
    if min(gaps) == 7:
        return "week"
    return "day"


def weekdays_with_gaps(days: list[dt.date]) -> bool:
    """Whether sorted daily dates fall on Monday to Friday only and skip some day (a trading calendar: weekends
    and holidays have no row), so that only ``design.period: trading_day`` reads them as consecutive periods."""
    if len(days) < 2 or any(x.weekday() > 4 for x in days):
        return False
    gaps = {(b - a).days for a, b in zip(days, days[1:])}
    return min(gaps) == 1 and max(gaps) > 1


def next_period(day: dt.date, kind: str) -> dt.date:
    """The period after ``day`` (the first day of a month, quarter or year, or a week or a day later)."""
    months = {"month": 1, "quarter": 3, "year": 12}.get(kind)
    if months:
        index = day.year * 12 + day.month - 1 + months
        return dt.date(index // 12, index % 12 + 1, 1)
    return day + dt.timedelta(days=7 if kind == "week" else 1)
