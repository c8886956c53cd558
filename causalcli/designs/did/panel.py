"""Panel checks of difference-in-differences, run in DuckDB before any row reaches Python.

Each failure is a one-line ``DataError`` (exit 3) naming the unit and period. Uniqueness of unit x time
is checked in numpy on the integer codes (``DidDesign._columns``).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from causalcli.data.types import period_text
from causalcli.errors import DataError

if TYPE_CHECKING:  # pragma: no cover
    from causalcli.data.table import Table

T = "study_data"


def q(name: str) -> str:
    return '"' + name.replace('"', '""') + '"'


def _show(v) -> str:
    if isinstance(v, float) and v.is_integer():
        return str(int(v))
    return str(v)


def check_absorbing(table: "Table", unit: str, time: str, treatment: str) -> None:
    """Treatment that switches off after switching on (designs that assume it stays on)."""
    row = table.sql(
        f"SELECT {q(unit)}, {q(time)} FROM (SELECT {q(unit)}, {q(time)}, {q(treatment)} AS d, "
        f"max({q(treatment)}) OVER (PARTITION BY {q(unit)} ORDER BY {q(time)} "
        f"ROWS BETWEEN UNBOUNDED PRECEDING AND 1 PRECEDING) AS before FROM {T}) "
        f"WHERE before = 1 AND d = 0 ORDER BY 1, 2 LIMIT 1")
    if row:
        u, t = row[0]
        t = period_text(t, table.period_labels.get(time))
        raise DataError(f"treatment {treatment!r} switches off: unit {_show(u)} is untreated in period {t} "
                        "after being treated; this estimator assumes treatment stays on once started "
                        "(use estimator: twfe without event_study for on/off treatments)",
                        file=table.file, key="treatment", column=treatment)


def check_cohort(table: "Table", unit: str, time: str, cohort: str, treatment: str | None) -> None:
    """Cohort constant within a unit, and (with a treatment column) treatment == 1(time >= cohort > 0)."""
    row = table.sql(f"SELECT {q(unit)}, count(DISTINCT coalesce(CAST({q(cohort)} AS DOUBLE), 0)) FROM {T} "
                    f"GROUP BY ALL HAVING count(DISTINCT coalesce(CAST({q(cohort)} AS DOUBLE), 0)) > 1 ORDER BY 1 LIMIT 1")
    if row:
        raise DataError(f"cohort {cohort!r} varies within unit {_show(row[0][0])}; it must be the unit's first "
                        "treated period (0 or empty = never treated) in every row", file=table.file,
                        key="design.cohort", column=cohort)
    if treatment is None:
        return
    g = f"coalesce(CAST({q(cohort)} AS DOUBLE), 0)"
    row = table.sql(
        f"SELECT {q(unit)}, {q(time)}, {q(treatment)}, {g} FROM {T} "
        f"WHERE CAST({q(treatment)} AS DOUBLE) <> CASE WHEN {g} > 0 AND {q(time)} >= {g} THEN 1 ELSE 0 END "
        "ORDER BY 1, 2 LIMIT 1")
    if row:
        u, t, d, gv = row[0]
        labels = table.period_labels.get(time)
        implied = int(gv > 0 and t >= gv)
        t = period_text(t, labels)
        gv = ("after the last period" if labels and gv > len(labels) else period_text(gv, labels)) if gv else 0
        hint = ""
        ever = table.sql(f"SELECT count(*) FROM {T} WHERE CAST({q(treatment)} AS DOUBLE) = "
                         f"CASE WHEN {g} > 0 THEN 1 ELSE 0 END")[0][0]
        if ever == table.rows:
            hint = (f"; {treatment!r} looks like an ever-treated indicator: give the treated-period indicator, "
                    "or leave 'treatment' out and let the cohort define it")
        raise DataError(f"cohort {cohort!r} is inconsistent with treatment {treatment!r}: unit {_show(u)} in period "
                        f"{_show(t)} has treatment {_show(d)} but cohort {_show(gv)} implies "
                        f"{implied}{hint}", file=table.file, key="design.cohort", column=cohort)


def check_constant_within_unit(table: "Table", unit: str, column: str, key: str, what: str) -> None:
    row = table.sql(f"SELECT {q(unit)} FROM {T} GROUP BY ALL HAVING count(DISTINCT {q(column)}) > 1 ORDER BY 1 LIMIT 1")
    if row:
        raise DataError(f"{what} {column!r} varies within unit {_show(row[0][0])}; it must be constant per unit",
                        file=table.file, key=key, column=column)
