"""What the experiment's grouped pass returns beside the arms' sums: the sums of each segment value and
the counts that tell a 0/1 (proportion) metric (``causalcli.designs.experiment.stats``)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:  # pragma: no cover
    from causalcli.designs.experiment.stats import ArmSums


@dataclass
class PassExtras:
    """What the pass returns beside the arms' and periods' sums: the segments' sums and the 0/1 counts."""

    by_segment: dict[str, dict[Any, dict[str | None, dict[Any, ArmSums]]]]
    missing_segment: dict[str, int]
    not_binary: dict[str, int]


@dataclass(frozen=True)
class BinaryCount:
    """The SQL counting the rows of one column that are neither 0 nor 1 (NULL and NaN are not counted)."""

    column: str
    inner: str  # the value, as the inner select names it
    count: str  # the aggregate over the inner select


def binary_counts(columns: tuple[str, ...], expr, float_columns: set[str]) -> tuple[BinaryCount, ...]:
    out = []
    for i, c in enumerate(columns):
        nan = f" AND NOT isnan(b{i})" if c in float_columns else ""
        out.append(BinaryCount(c, f"{expr(c)} AS b{i}", f"count(*) FILTER (WHERE b{i} NOT IN (0, 1){nan})"))
    return tuple(out)
