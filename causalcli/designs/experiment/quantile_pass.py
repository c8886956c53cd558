"""The first histogram of the quantile metrics, computed in the statistics pass itself.

``causalcli.designs.experiment.quantile`` finds exact order statistics from a histogram per group
followed by a fetch of the few values in the bins that hold the ranks wanted. The histogram needs no
scan of its own: the statistics pass (``stats._one_pass`` or ``blocked.blocked_pass``) groups by
``GROUPING SETS`` (its own keys, and ``(arm, bin)`` per quantile column, or ``(arm, segment, bin)`` per
segment column with ``segments``), so one read of the rows returns both the sums and the histograms
(standard SQL: DuckDB, Spark and PostgreSQL all run it). The bins' range must be known before that
pass: the column's mean -/+ 8 standard deviations in the first rows (``HEAD_ROWS``) or, with
``design.unit``, over every unit (the unit pass computes them); values outside fall in two end bins,
which a later pass narrows like any other bin, so the range affects speed only, never the result.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from causalcli.data.sql import TABLE, quote_identifier

if TYPE_CHECKING:  # pragma: no cover
    from causalcli.data.table import Table

HEAD_ROWS = 10_000
SPREAD = 8.0  # standard deviations either side of the mean


class _Any:
    """A key that a group does not fix (the overall histogram of an arm when groups carry a segment key)."""

    def __repr__(self) -> str:
        return "ANY"


ANY = _Any()


def bin_case(value: str, lo: float, hi: float, bins: int) -> str:
    """The bin of a value: -1 below ``lo``, ``bins`` above ``hi``, NULL when missing (NULL or NaN: tested first,
    since least() skips a NULL)."""
    from causalcli.designs.experiment.quantile import bin_formula
    from causalcli.designs.experiment.stats import lit

    return (f"CASE WHEN {value} IS NULL OR isnan({value}) THEN NULL WHEN {value} < {lit(lo)} THEN -1 WHEN {value} > {lit(hi)} "
            f"THEN {bins} ELSE {bin_formula(lo, hi, bins, lit, value)} END")


@dataclass
class FirstHistogram:
    """The histogram SQL added to the statistics pass, and the histogram rows it returned.

    ``groups(i)`` gives column ``i``'s histogram: group -> [(bin, count, min, max)], a group being
    ``(arm,)`` without segments, else ``(arm, ANY, ..)`` for the arm and ``(arm, .., value, ..)`` (the
    value at the segment column's position, ``ANY`` elsewhere) for a segment value.
    """

    columns: tuple[str, ...]
    ranges: tuple[tuple[float, float], ...]
    bins: int
    segments: int = 0
    rows: list = field(default_factory=list)

    def inner(self) -> list[str]:
        out = []
        for i, (column, (lo, hi)) in enumerate(zip(self.columns, self.ranges)):
            value = f"CAST({quote_identifier(column)} AS DOUBLE)"
            out += [f"{value} AS qv{i}", f"{bin_case(value, lo, hi, self.bins)} AS qb{i}"]
        return out

    def outer(self) -> list[str]:
        c, s = range(len(self.columns)), range(self.segments)
        return ["arm", *(f"g{j}" for j in s), *(f"qb{i}" for i in c), *(f"GROUPING(qb{i})" for i in c),
                *(f"GROUPING(g{j})" for j in s), "count(*)", *(f"min(qv{i}), max(qv{i})" for i in c)]

    def group_by(self, keys: list[str]) -> str:
        """``GROUPING SETS``: the pass's own keys, then one histogram per column (and segment column)."""
        sets = [", ".join(keys)]
        for i in range(len(self.columns)):
            sets += [f"arm, g{j}, qb{i}" for j in range(self.segments)] or [f"arm, qb{i}"]
        return f"GROUPING SETS ({', '.join(f'({s})' for s in sets)})"

    def keep(self, rows: list[tuple]) -> list[tuple]:
        """Take the histogram rows (kept here) out of the pass's rows; the pass's own rows are returned."""
        c, s = len(self.columns), self.segments
        width = 1 + s + 2 * c + s + 1 + 2 * c
        own, self.rows = [], []
        for row in rows:
            tail = row[len(row) - width:]
            flags = tail[1 + s + c:1 + s + 2 * c]
            if all(flags):
                own.append(row)
            else:
                self.rows.append(tail)
        return own

    def groups(self, i: int) -> dict[tuple, list[tuple[int, int, float, float]]]:
        c, s = len(self.columns), self.segments
        out: dict[tuple, dict[int, tuple]] = {}
        for tail in self.rows:
            arm, values, b = tail[0], tail[1:1 + s], tail[1 + s + i]
            if tail[1 + s + c + i] or arm is None or b is None:  # another column's histogram; no variant or value
                continue
            at = 1 + s + 2 * c + s
            count, lo, hi = int(tail[at]), float(tail[at + 1 + 2 * i]), float(tail[at + 2 + 2 * i])
            seg = next((j for j in range(s) if not tail[1 + s + 2 * c + j]), None)
            targets = []
            if seg is None or seg == 0:  # an arm's histogram: the sum of the first segment column's (missing too)
                targets.append((arm, *(ANY for _ in range(s))))
            if seg is not None and values[seg] is not None and values[seg] == values[seg]:  # NULL, NaN: no segment
                targets.append((arm, *(values[j] if j == seg else ANY for j in range(s))))
            for group in targets:
                bins = out.setdefault(group, {})
                if b in bins:
                    k, a, z = bins[b]
                    bins[b] = (k + count, min(a, lo), max(z, hi))
                else:
                    bins[b] = (count, lo, hi)
        return {g: sorted((int(b), k, a, z) for b, (k, a, z) in bins.items()) for g, bins in out.items()}


def first_histogram(table: "Table", shapes: list[Any], segments: int, unit: Any = None) -> FirstHistogram | None:
    """The histogram for the statistics pass (None without quantile metrics, or a column with no finite value
    in the first rows: the quantile passes then find their own range)."""
    from causalcli.designs.experiment.quantile import FIRST_BINS

    columns = tuple(dict.fromkeys(s.num for s in shapes if s.kind == "quantile"))
    if not columns or segments:  # by segment: a histogram query of its own is cheaper (module docstring)
        return None
    ranges = []
    if unit is not None:  # the unit pass measured every unit's sums
        for c in columns:
            sd = math.sqrt(unit.second[c])
            ranges.append((unit.centres[c] - SPREAD * sd, unit.centres[c] + SPREAD * sd))
    else:
        values = [f"CAST({quote_identifier(c)} AS DOUBLE)" for c in columns]
        finite = [f"CASE WHEN NOT isnan({v}) THEN {v} END" for v in values]
        parts = ", ".join(f"avg(f{i}), stddev_pop(f{i})" for i in range(len(columns)))
        head = ", ".join(f"{f} AS f{i}" for i, f in enumerate(finite))
        row = table.sql(f"SELECT {parts} FROM (SELECT {head} FROM {TABLE} LIMIT {HEAD_ROWS}) AS head")[0]
        for i in range(len(columns)):
            mean, sd = row[2 * i], row[2 * i + 1]
            if mean is None or not math.isfinite(mean) or not math.isfinite(sd or 0.0):
                return None
            ranges.append((float(mean) - SPREAD * float(sd or 0.0), float(mean) + SPREAD * float(sd or 0.0)))
    return FirstHistogram(columns, tuple(ranges), FIRST_BINS, segments)
