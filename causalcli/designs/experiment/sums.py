"""The per-arm sums that the experiment's passes return, and the SQL pieces both passes write them with
(the fixed-point pass: ``causalcli.designs.experiment.stats``; the blocked pass: ``...blocked``)."""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any


def lit(x: float) -> str:
    """A DOUBLE literal that DuckDB parses back to exactly ``x``.

    Scientific notation: DuckDB reads ``180.25`` as a DECIMAL and converts it to DOUBLE
    with rounding error (about 1% of random values), but parses ``1.8025e+02`` exactly.
    """
    return f"{float(x):.17e}"


def incomplete_rows(width: int) -> str:
    """The aggregate counting rows where one of ``d0 .. d{width-1}`` is NULL (one filter, not a count per column);
    with no column (quantile metrics alone), none."""
    if not width:
        return "0"
    return f"count(*) FILTER (WHERE {' OR '.join(f'd{i} IS NULL' for i in range(width))})"


@dataclass(frozen=True)
class Group:
    """A set of rows summed together: every row (``metric is None``) or one metric's complete rows."""

    metric: str | None
    columns: tuple[str, ...]
    pairs: tuple[tuple[str, str], ...]


@dataclass
class ArmSums:
    """Exact sums (floats holding exact values) of one arm over one group of rows."""

    n: int
    s: dict[str, float]
    ss: dict[tuple[str, str], float]


def add_sums(total: ArmSums, part: ArmSums) -> ArmSums:
    """``total + part``; exact for sums of one pass, whose every sum over a subset of rows lies on its grid."""
    return ArmSums(total.n + part.n, {c: total.s.get(c, 0.0) + v for c, v in part.s.items()},
                   {k: total.ss.get(k, 0.0) + v for k, v in part.ss.items()})


def start_range(stats: Any, column: str, spread: float = 8.0) -> tuple[float, float] | None:
    """mean -/+ ``spread`` sd of a column over every arm, from the one-pass sums (None when it is not summed)."""
    for group in (stats.groups.values() if stats is not None else ()):
        arms = [a for a in group.values() if column in a.s and a.n]
        n = sum(a.n for a in arms)
        if n:
            shift = sum(a.s[column] for a in arms) / n
            sd = math.sqrt(max(sum(a.ss[(column, column)] for a in arms) / n - shift * shift, 0.0))
            centre = stats.centres[column] + shift
            return centre - spread * sd, centre + spread * sd
    return None
