"""A synthetic-control starter spec when several units have the treatment on: their list, and one start or
a column of adoption periods (the partially pooled synthetic control, or `estimator: synthetic_did`).

init used to write TODO for both keys and say "synthetic control takes one treated unit" (castle doctrine:
21 states adopting from 2006 to 2010, given as `--treatment post`).
"""

from __future__ import annotations

from typing import Any

from causalcli.data.table import quote_identifier as q
from causalcli.spec.placeholders import TODO
from causalcli.starter.profile import DataProfile, plain, show
from causalcli.starter.roles import guess_cohort
from causalcli.starter.text import Starter


def several_treated(data: DataProfile, st: Starter, treatment: str, expr: str, unit: str, time: str,
                    taken: set[str]) -> tuple[Any, Any]:
    """(treated_unit, treatment_start) for several units with ``treatment`` on. Units treated from their first
    period have no pre-period and are left out (a note names them)."""
    rows = data.sql(f"SELECT {q(unit)}, min({q(time)}) FILTER (WHERE {expr}) AS first_on, min({q(time)}) FROM d "
                    f"GROUP BY {q(unit)} HAVING bool_or({expr}) ORDER BY first_on, {q(unit)}")
    usable = [(u, first) for u, first, lo in rows if first > lo]
    early = [u for u, first, lo in rows if first <= lo]
    if early:
        st.notes.append(f"{len(early)} unit{'s' * (len(early) != 1)} with {treatment} on from their first period "
                        f"({', '.join(show(u) for u in early[:5])}{' ...' if len(early) > 5 else ''}) left out of "
                        "design.treated_unit: no pre-period to fit")
    if len(usable) < 2:
        return (plain(usable[0][0]) if usable else TODO), (plain(usable[0][1]) if usable else TODO)
    units = [plain(u) for u, _ in usable]
    st.guessed.append(f"design.treated_unit: the {len(units)} units with {treatment} on (several: the partially "
                      "pooled synthetic control, which takes no predictors; estimator: synthetic_did is the other "
                      "choice)")
    starts: dict[Any, int] = {}
    for _, first in usable:
        starts[first] = starts.get(first, 0) + 1
    if len(starts) == 1:
        start = next(iter(starts))
        st.guessed.append(f"design.treatment_start: {show(start)} (their first period with {treatment} on)")
        return units, plain(start)
    cohorts = ", ".join(f"{show(s)}: {n}" for s, n in list(starts.items())[:6]) + (" ..." if len(starts) > 6 else "")
    column = guess_cohort(data, unit, time, taken)
    if column and data.kind(time) == "integer" and _is_adoption(data, column, unit, time, expr):
        st.guessed.append(f"design.treatment_start: {column} (each unit's first period with {treatment} on; "
                          f"staggered adoption, units by period {cohorts})")
        return units, column
    st.notes.append(
        f"the treated units adopt at different periods (units by period {cohorts}): staggered adoption reads "
        "each unit's adoption period from a column (0 for never treated); add one and name it in "
        f"design.treatment_start, e.g. in duckdb: COPY (SELECT *, coalesce(min({time}) FILTER (WHERE {expr}) "
        f"OVER (PARTITION BY {unit}), 0) AS adoption FROM '{data.path.name}') TO 'with_adoption.csv'")
    return units, TODO


def _is_adoption(data: DataProfile, column: str, unit: str, time: str, expr: str) -> bool:
    """Whether ``column`` holds each unit's first treated period (0 or empty where never treated)."""
    g = f"coalesce(CAST({q(column)} AS DOUBLE), 0)"
    return not data.sql(f"SELECT 1 FROM (SELECT any_value({g}) AS g_, coalesce(CAST(min({q(time)}) FILTER (WHERE "
                        f"{expr}) AS DOUBLE), 0) AS first_on FROM d GROUP BY {q(unit)}) WHERE g_ <> first_on LIMIT 1")
