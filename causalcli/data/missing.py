"""Rows dropped for a missing value (NULL, or NaN in a floating column) in a column the study uses.

One aggregate over ``study_data`` counts them by role, a row missing several columns under the first of
them; ``estimate`` (through ``dropped_missing``) and ``validate`` (through ``count_missing``) both read
that query, so the counts validate announces are the ``n.dropped_missing*`` that estimate reports.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from causalcli.data.sql import TABLE, quote_identifier

if TYPE_CHECKING:  # pragma: no cover
    from causalcli.data.table import Table

# (column, role, label): the role names n.dropped_missing_<role>, the label the column in messages;
# listed in the order rows are attributed
Roles = list[tuple[str, str, str]]

FLOATING = ("DOUBLE", "FLOAT", "REAL")


@dataclass(frozen=True)
class MissingRows:
    """Rows dropped for a missing value: the ``n`` entries and the warning that names them."""

    n: dict[str, int]
    warnings: tuple[str, ...] = ()
    # validate: missing values per column (not attributed), and the columns' labels
    each_column: dict[str, int] = field(default_factory=dict)
    labels: dict[str, str] = field(default_factory=dict)


@dataclass(frozen=True)
class MissingCounts:
    """What the one aggregate returns: rows by first missing column, and missing values per column."""

    first: dict[str, int]  # a row counted under its first missing column; they add up to the rows dropped
    each: dict[str, int]  # every missing value of the column


def missing_counts(table: "Table", columns: list[str]) -> MissingCounts:
    """One pass over ``study_data`` (in the engine holding it): the counts of ``MissingCounts``, zeros left out."""
    cols = list(dict.fromkeys(columns))
    if not cols:
        return MissingCounts({}, {})
    ok = []
    for c in cols:
        q = quote_identifier(c)
        nan = f" AND NOT isnan({q})" if table.types[c].upper() in FLOATING else ""
        ok.append(f"coalesce({q} IS NOT NULL{nan}, false)")
    first = [f"count(*) FILTER (WHERE {' AND '.join([*ok[:i], 'NOT ' + ok[i]])})" for i in range(len(cols))]
    each = [f"count(*) FILTER (WHERE NOT {test})" for test in ok]
    row = table.sql(f"SELECT {', '.join([*first, *each])} FROM {TABLE}")[0]
    k = len(cols)
    return MissingCounts({c: int(n) for c, n in zip(cols, row[:k]) if n},
                         {c: int(n) for c, n in zip(cols, row[k:]) if n})


def dropped_missing(table: "Table", roles: Roles, dropped: int) -> MissingRows:
    """The ``n`` entries and the warning for rows dropped because a column the study uses is missing.

    ``roles`` lists ``(column, role, label)`` in the order rows are attributed: a row
    missing several columns counts under the first one. ``n`` gets ``dropped_missing``
    (every such row) and ``dropped_missing_<role>`` per role that lost rows; they add up.
    ``dropped``: the rows the design's own read left out (no second query when it is 0).
    """
    if not dropped:
        return MissingRows({"dropped_missing": 0})
    return _attributed(table.rows, roles, int(dropped), missing_counts(table, [c for c, _, _ in roles]))


def count_missing(table: "Table", roles: Roles) -> MissingRows:
    """``dropped_missing`` before any read: the rows dropped are those the one aggregate counts (validate)."""
    counts = missing_counts(table, [c for c, _, _ in roles])
    return _attributed(table.rows, roles, sum(counts.first.values()), counts)


def _attributed(rows: int, roles: Roles, dropped: int, counts: MissingCounts) -> MissingRows:
    n = {"dropped_missing": dropped}
    labels = {}
    for column, _, label in roles:
        labels.setdefault(column, label)
    if not dropped:
        return MissingRows(n, (), counts.each, labels)
    by_column = dict(counts.first)
    described = {}
    for column, role, label in roles:
        k = by_column.pop(column, 0)
        if k:
            n[f"dropped_missing_{role}"] = n.get(f"dropped_missing_{role}", 0) + k
            described[f"{label} {column!r}"] = k
    parts = ", ".join(f"{what} in {k:,}" for what, k in described.items())
    several = " (a row missing several columns counts under the first)" if len(described) > 1 else ""
    return MissingRows(n, (f"{dropped:,} of {rows:,} rows were dropped for a missing value (NULL or NaN): "
                           f"{parts}{several}; fill them, or filter them out with data.filter to make the choice "
                           "explicit",), counts.each, labels)


def study_roles_missing(treatment: str, outcome: str, covariates: list[str], extra: tuple[str, ...] = (),
                        extra_role: tuple[str, str] = ("other", "column")) -> Roles:
    """The attribution order of a treatment/outcome/covariates study (``study_arrays``): treatment, outcome,
    covariates, then the design's extra columns under ``extra_role``."""
    roles = [(treatment, "treatment", "treatment"), (outcome, "outcome", "outcome")]
    return roles + [(c, "covariates", "covariate") for c in covariates] + [(c, *extra_role) for c in extra]
