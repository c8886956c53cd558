"""Guessing the roles of columns from their names and values: panel unit and time, cohort, treated level."""

from __future__ import annotations

from typing import Any

from causalcli.data.table import quote_identifier as q
from causalcli.starter.profile import DataProfile, norm, sql_literal

# session, round, visit: the waves of a survey panel (causaldata's adult_services: sex workers' client sessions)
TIME_WORDS = {"year", "yr", "date", "period", "time", "month", "week", "quarter", "day", "wave", "t", "session",
              "round", "visit"}
COHORT_NAMES = {"cohort", "g", "gname", "first_treat", "first_treated", "first_treatment", "treat_year",
                "year_treated", "treatment_year", "adopt_year", "adoption_year", "year_first_treated",
                "first_year_treated", "treat_date", "treatment_date", "first_treat_period",
                "effyear", "eff_year", "effective_year", "effective_date"}  # Cheng and Hoekstra's law in effect
UNIT_WORDS = ("id", "unit", "state", "county", "country", "region", "firm", "company", "district", "city",
              "school", "person", "individual", "user", "household", "fips", "code", "name", "market", "store")
CONTROL_NAMES = ("control", "ctrl", "0", "a", "baseline", "base", "false", "no", "placebo", "c", "off")
TREATED_WORDS = ("1", "true", "t", "yes", "y", "treated", "treatment", "treat", "on", "exposed", "intervention",
                 "test", "variant", "b")
CLUSTER_NAMES = {"cluster", "clusters", "cluster_id", "clusterid", "psu", "cl"}


def time_like(c: str) -> bool:
    tokens = norm(c).split("_")
    return any(t in TIME_WORDS for t in tokens) or norm(c) in ("yearmonth", "yearweek", "ym")


def cohort_like(c: str) -> bool:
    n = norm(c)
    return n in COHORT_NAMES or ("first" in n and "treat" in n) or n.startswith("adopt")


def id_like(c: str) -> bool:
    n = norm(c)
    return (n in ("id", "index", "row", "rownum", "row_id", "obs", "idx", "seq", "seqn", "serial", "record", "key")
            or n.endswith(("_id", "_key", "_seq")) or n.startswith("id_"))


def guess_panel(data: DataProfile, taken: set[str]) -> tuple[str | None, str | None, str]:
    """(unit, time, why): the first time-named column and the unit column unique with it."""
    # a DATE or TIMESTAMP column is a time whatever its name (qdate, obs_dt)
    times = [c for c in data.types if c not in taken and not cohort_like(c) and data.distinct[c] >= 2
             and (data.kind(c) == "time" or (time_like(c) and data.kind(c) == "integer"))]
    units = [c for c in data.types if c not in taken and c not in times and not cohort_like(c)
             and data.kind(c) in ("integer", "text") and data.distinct[c] >= 2 and data.distinct.at_most(c, data.rows // 2)]
    units.sort(key=lambda c: (not any(w in norm(c) for w in UNIT_WORDS), data.kind(c) != "text"
                              and not norm(c).endswith("id")))
    for t in times:
        for u in units:
            # a few rows without a unit or period (adult_services: 60 of 1,787) are dropped by estimate, and say so
            pairs, both = data.sql(f"SELECT count(DISTINCT ({q(u)}, {q(t)})), count(*) FROM d "
                                   f"WHERE {q(u)} IS NOT NULL AND {q(t)} IS NOT NULL")[0]
            if pairs != both or both < 0.9 * data.rows:
                continue
            if data.constant_within(t, u):
                continue
            n_u, n_t = data.distinct.exact_count(u), data.distinct.exact_count(t)
            shape = (f"a balanced panel of {n_u:,} units x {n_t:,} periods" if n_u * n_t == both
                     else f"{n_u:,} units x {n_t:,} periods, {both:,} rows (unbalanced)")
            if both < data.rows:
                shape += f"; {data.rows - both:,} rows miss {u} or {t} and will be dropped"
            return u, t, f"unique per {u} x {t}: {shape}"
    return None, times[0] if times else None, ""


def guess_cohort(data: DataProfile, unit: str, time: str, taken: set[str]) -> str | None:
    for c in data.types:
        if c in taken or not cohort_like(c) or data.kind(c) not in ("integer", "time"):
            continue
        if data.constant_within(c, unit):
            return c
    return None


def treated_level(data: DataProfile, treatment: str) -> tuple[str, Any] | None:
    """How 'treated' reads in this column, for the guesses only (the data layer decides the real coding):
    ("number", None) for 0/1, ("boolean", None), ("text", level), or None when it cannot tell."""
    kind = data.kind(treatment)
    if kind in ("integer", "numeric"):
        values = {r[0] for r in data.sql(f"SELECT DISTINCT CAST({q(treatment)} AS DOUBLE) FROM d "
                                          f"WHERE {q(treatment)} IS NOT NULL LIMIT 3")}
        return ("number", None) if values == {0.0, 1.0} else None
    if kind == "boolean":
        return ("boolean", None)
    if kind == "text" and data.distinct[treatment] == 2:
        levels = sorted(r[0] for r in data.sql(f"SELECT DISTINCT {q(treatment)} FROM d WHERE {q(treatment)} IS NOT NULL"))
        on = treated_of(levels)
        if on is not None:
            return ("text", on[0])
    return None


def treated_of(levels: list[str]) -> tuple[str, str] | None:
    """(treated level, why) of two text levels: by the codings the data layer reads itself (yes/no, t/f,
    ...), else the one named like a treated arm, or the other of one named like a control arm; None if unclear."""
    from causalcli.data.types import BINARY_CODES

    lowered = [v.strip().lower() for v in levels]
    for control, treated in BINARY_CODES:
        if set(lowered) <= {control, treated} and treated in lowered:
            return levels[lowered.index(treated)], f"{control}/{treated} coding"
    on = [v for v, low in zip(levels, lowered) if low in TREATED_WORDS]
    off = [v for v, low in zip(levels, lowered) if low in CONTROL_NAMES]
    if len(on) == 1:
        return on[0], "named like a treated arm"
    if len(off) == 1:
        return next(v for v in levels if v != off[0]), f"the other, {off[0]!r}, is named like a control arm"
    return None


def needs_treated_value(data: DataProfile, treatment: str) -> bool:
    """A two-valued text treatment the data layer cannot code by itself (not 0/1, yes/no, t/f, ...)."""
    from causalcli.data.types import BINARY_CODES

    if data.kind(treatment) != "text" or data.distinct[treatment] != 2:
        return False
    lowered = {r[0].strip().lower() for r in data.sql(f"SELECT DISTINCT {q(treatment)} FROM d "
                                                        f"WHERE {q(treatment)} IS NOT NULL")}
    return not any(lowered <= set(pair) for pair in BINARY_CODES)


def treated_expr(data: DataProfile, treatment: str) -> str | None:
    """A SQL boolean for 'treated', or None."""
    coding = treated_level(data, treatment)
    if coding is None:
        return None
    col = q(treatment)
    if coding[0] == "number":
        return f"(CAST({col} AS DOUBLE) = 1)"
    if coding[0] == "boolean":
        return f"({col})"
    return f"({col} = {sql_literal(coding[1])})"


def several_rows_per_cell(data: DataProfile, time: str, taken: set[str]) -> str | None:
    """When no column is unique per period, a unit seen in every period with several rows in each (abortion's states,
    a row per race, sex and age group): a panel of subgroups, not repeated cross-sections. The note names the unit,
    the rows per unit and period, and the few-valued columns that tell those rows apart."""
    n_t = data.distinct.exact_count(time)
    units = [c for c in data.types if c not in taken | {time} and not cohort_like(c)
             and data.kind(c) in ("integer", "text") and data.present[c] == data.rows
             and 2 < data.distinct[c] <= data.rows // (2 * n_t)]
    # the most units first, names like a unit before others at equal counts
    units.sort(key=lambda c: (-data.distinct[c], not any(w in norm(c) for w in UNIT_WORDS)))
    for u in units:
        pairs, most = data.sql(f"SELECT count(*), max(n) FROM (SELECT count(*) AS n FROM d "
                               f"WHERE {q(time)} IS NOT NULL GROUP BY {q(u)}, {q(time)})")[0]
        if pairs != data.distinct[u] * n_t or most < 2:
            continue  # not seen in every period
        subgroups = [c for c in data.types if c not in taken | {time, u} and 2 <= data.distinct[c] <= 12
                     and data.sql(f"SELECT 1 FROM d GROUP BY {q(u)}, {q(time)} "
                                  f"HAVING count(DISTINCT {q(c)}) > 1 LIMIT 1")]
        key = ", ".join(q(c) for c in (u, time, *subgroups))
        # houses of a neighbourhood sold each year (kielmc's nbh) are no subgroups: few-valued columns do not
        # tell them apart, where a state's race x sex x age rows are told apart exactly
        if not subgroups or data.sql(f"SELECT count(*) FROM (SELECT DISTINCT {key} FROM d)")[0][0] != data.rows:
            continue
        told = f"; the columns that vary within them: {', '.join(subgroups[:6])}{' ...' if len(subgroups) > 6 else ''}"
        return (f"{u} is seen in every {time} with up to {most} rows each ({data.distinct[u]} values x {n_t} "
                f"periods): subgroups of a panel rather than repeated cross-sections{told}; keep one subgroup per "
                f"{u} and {time} with data.filter (or aggregate the rows), then set design.unit: {u}")
    return None


SUB_YEAR = {"quarter": 3, "qtr": 3, "month": 1, "mon": 1}  # a column numbering the periods of a year: months each


def year_and_period(data: DataProfile, exclude: tuple[str, ...]) -> tuple[str, str, int] | None:
    """``(year, sub, months)`` when the data date their rows by a year column and a quarter (1-4) or month (1-12)
    column, one row each (statsmodels' macrodata: year, quarter); None otherwise. A year alone repeats, so it
    cannot be a series' period; the two make a date with ``make_date``."""
    names = [c for c in data.types if c not in exclude and data.kind(c) == "integer"]
    years = [c for c in names if norm(c) in ("year", "yr")]
    subs = [(c, SUB_YEAR[norm(c)]) for c in names if norm(c) in SUB_YEAR]
    if len(years) != 1 or len(subs) != 1:
        return None
    year, (sub, months) = years[0], subs[0]
    low, high, rows, distinct, missing = data.sql(
        f"SELECT min({q(sub)}), max({q(sub)}), count(*), count(DISTINCT ({q(year)}, {q(sub)})), "
        f"count(*) FILTER (WHERE {q(year)} IS NULL OR {q(sub)} IS NULL) FROM d")[0]
    if missing or low is None or low < 1 or high > 12 // months or distinct != rows:
        return None
    return year, sub, months
