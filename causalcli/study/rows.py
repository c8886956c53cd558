"""What ``validate`` says of a study's rows before any estimate: the rows after ``data.filter``, the complete
rows the study will use, and the rows a missing value will drop, by role.

The counts come from one aggregate in the engine holding the table (``causalcli.data.missing``), with the
roles in the order the design's ``prepare`` attributes a row missing several columns
(``Design.missing_roles``), so they equal ``estimate``'s ``n.dropped_missing`` and ``n.dropped_missing_<role>``.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from causalcli.data.missing import count_missing

if TYPE_CHECKING:  # pragma: no cover
    from causalcli.study.run import Prepared

# A warning above this share of the rows dropped for a missing value: worth knowing before a long estimate
DROPPED_WARNING_SHARE = 0.05


@dataclass(frozen=True)
class RowCounts:
    """``n`` as validate knows it (``rows``, ``filtered_out``, ``complete``, ``dropped_missing*``), or why not."""

    n: dict[str, int] = field(default_factory=dict)
    not_counted: str | None = None  # why there are no counts (an engine, a design that counts otherwise)
    warnings: tuple[str, ...] = ()

    def to_dict(self) -> dict[str, Any]:
        return {"n": dict(self.n) or None, "not_counted": self.not_counted,
                "warnings": list(self.warnings)}


def row_counts(prep: "Prepared") -> RowCounts:
    """The rows the study will use and those it will drop; one query over the table (none on an engine)."""
    study, table = prep.spec.study, prep.table
    backend = study.data.backend
    if backend != "duckdb":
        return RowCounts(not_counted=f"not counted on {backend}: validate reads the table's columns there, "
                                     "not its rows; estimate reports n.dropped_missing")
    n = {"rows": table.rows}
    if table.filtered_out is not None:
        n["filtered_out"] = table.filtered_out
    roles = prep.design.missing_roles(study, prep.identification)
    if roles is None:
        return RowCounts(n, f"not counted: {study.design.method} does not drop rows one by one for a missing value (see its "
                            "page); estimate counts them")
    missing = count_missing(table, roles)
    n["complete"] = table.rows - missing.n["dropped_missing"]
    n.update(missing.n)
    dropped = missing.n["dropped_missing"]
    warnings: tuple[str, ...] = ()
    if table.rows and dropped > DROPPED_WARNING_SHARE * table.rows:
        most = max(missing.each_column.items(), key=lambda kv: kv[1])  # (the first of equal counts, in role order)
        warnings = (f"{dropped:,} of {table.rows:,} rows ({dropped / table.rows:.1%}) will be dropped for a missing "
                    f"value (NULL or NaN), more than {DROPPED_WARNING_SHARE:.0%}; most missing: "
                    f"{missing.labels[most[0]]} {most[0]!r} ({most[1]:,} rows); fill them, or filter them out "
                    "with data.filter to make the choice explicit",)
    return RowCounts(n, None, warnings)
