"""The placeholder ``TODO`` that ``causalcli init`` writes where it cannot guess a value.

A spec holding it anywhere is refused (exit 2) by key and line before the models see it, so a
TODO never reaches the data layer as a column or a value ("column 'TODO' not found").
"""

from __future__ import annotations

from typing import Any

TODO = "TODO"

ADVICE = {
    "treatment": "set it to the treatment column",
    "outcome": "set it to the outcome column",
    "design.unit": "set it to the column that identifies units (e.g. 'state')",
    "design.time": "set it to the period column (e.g. 'year')",
    "design.cohort": "set it to the column holding each unit's first treated period (0 or empty = never "
                     "treated), or remove it and give 'treatment' (1 in treated unit-periods)",
    "design.group": "set it to the 0/1 column marking the treated group's rows, before and after the start "
                    "(e.g. 'nearinc'), or, for a panel, remove it and set design.unit",
    "design.treated_unit": "set it to the treated unit, a value of the unit column (e.g. 'California')",
    "design.treatment_start": "set it to the first treated period, a value of the time column (e.g. 1989)",
    "design.treated_value": "set it to the value of the treatment column that marks treated rows (e.g. 'treated')",
    "design.control": "set it to the value of the treatment column that marks the control arm (e.g. 'control')",
    "design.intervention": "set it to the first affected period, a value of design.time (e.g. 2024-03-01)",
    "design.running": "set it to the running variable, the score whose cutoff decides treatment (e.g. 'margin')",
    "design.cutoff": "set it to the value of the running variable where treatment starts (e.g. 0)",
    "design.instruments": "set it to the instrument column(s), which move the treatment and reach the outcome only "
                          "through it (e.g. [assigned]); `causalcli init --instrument Z` writes them",
    "design.special_predictors": "set it to [column, period] pairs the donors are matched on, usually the outcome "
                                 "in pre-treatment periods (e.g. [[cigsale, 1975], [cigsale, 1988]])",
    "design.adoption": "set it to the column holding each treated unit's first treated period",
}


def find_todos(node: Any, path: tuple = (), seen: set[int] | None = None) -> list[tuple]:
    """The key paths of every value equal to ``TODO``, in document order.

    A list or mapping that YAML aliases share is searched once (a recursive alias, or aliases
    nested to multiply, would otherwise recurse without end or for hours)."""
    if isinstance(node, dict):
        items = node.items()
    elif isinstance(node, list):
        items = enumerate(node)
    else:
        return [path] if isinstance(node, str) and node.strip() == TODO else []
    seen = set() if seen is None else seen
    if id(node) in seen:
        return []  # searched already: its TODOs are named at its first place
    seen.add(id(node))
    return [found for key, value in items for found in find_todos(value, path + (key,), seen)]


def find_todo(node: Any) -> tuple | None:
    """The key path of the first value equal to ``TODO``, in document order, or None."""
    todos = find_todos(node)
    return todos[0] if todos else None


def advice(dotted: str) -> str:
    """What to put in place of a TODO at ``dotted`` (a list's item as its list: design.instruments[0])."""
    return ADVICE.get(dotted.split("[")[0], "replace it with a value (`causalcli methods` lists each key)")
