"""The rows of an RD study by distinct running value: counts, sums, scatter, least and greatest of each column.

Without clusters every statistic of the estimate and its checks is a sum over the rows at each value (see
``local_poly.Side``), so the engine groups the rows by the running variable and only the per-value sums come
back: a million rows with a 4-decimal score are 20,001 entries, and the rows never reach Python unless a
refuter subsets them. ``from_rows`` computes the same from rows (clustered studies, tests).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import numpy as np

from causalcli.data.sql import TABLE, quote_identifier
from causalcli.designs.rdd.local_poly import Side, WeightedSums, collapse

if TYPE_CHECKING:  # pragma: no cover
    from causalcli.data.table import Table


@dataclass(frozen=True)
class ByValue:
    """``values``: the collapsed rows (x the running variable itself, not centred); ``low``/``high``: (n, k) the
    least and greatest of each column of D at each value (the first and last row of a value when rows are
    sorted by x and then D, which is how the binned plot's spacings estimator pairs rows across values)."""

    values: Side
    low: np.ndarray
    high: np.ndarray

    @property
    def rows(self) -> int:
        return self.values.rows

    def cut(self, cutoff: float) -> int:
        """The number of values below the cutoff."""
        return int(np.searchsorted(self.values.x, cutoff, side="left"))


def from_rows(x: np.ndarray, D: np.ndarray, weights: np.ndarray | None = None) -> ByValue:
    """Rows sorted by x (then D), with their observation weights if any: their per-value form, as the engine's
    query gives it."""
    values = collapse(Side(x, D, weights=weights))
    if x.size == 0:
        return ByValue(values, D[:0], D[:0])
    starts = np.flatnonzero(np.r_[True, x[1:] != x[:-1]])
    return ByValue(values, np.minimum.reduceat(D, starts, axis=0), np.maximum.reduceat(D, starts, axis=0))


def from_table(table: "Table", running: str, columns: list[str], weights: str | None = None,
               also_complete: tuple[str, ...] = ()) -> ByValue:
    """The complete rows of ``running`` and ``columns`` grouped by the running value in the engine (DuckDB or the
    study's engine): per value the row count, sums, population (co)variances times the count (the scatter about
    the value's mean; the engine's variance is computed stably, so large means lose nothing) and extremes.
    ``weights``: the observation-weight column; its rows of weight 0 are left out (``zero_weight_rows``) and the
    weighted sums are added (``_weighted_parts``). ``also_complete``: other columns a row must have (the segments)."""
    got = _grouped(table, running, columns, weights, also_complete)
    found = _by_value(got, len(columns), weights is not None)
    _refuse_infinite(table, running, columns, found.values.x, found.low, found.high)
    return found


def by_segment(table: "Table", running: str, columns: list[str], segment: str, weights: str | None = None,
               also_complete: tuple[str, ...] = ()) -> list[tuple[Any, ByValue]]:
    """``from_table`` of each value of ``segment`` from one query grouped by (segment, running value):
    (the segment's value as the engine gives it, its rows by running value), in the segment's order."""
    got = _grouped(table, running, columns, weights, also_complete, segment)
    found = np.asarray(got.pop("segment_value"))
    if found.size == 0:
        return []
    starts = np.flatnonzero(np.r_[True, found[1:] != found[:-1]])
    ends = np.r_[starts[1:], found.size]
    return [(found[a], _by_value({k: v[a:b] for k, v in got.items()}, len(columns), weights is not None))
            for a, b in zip(starts, ends)]


def _grouped(table: "Table", running: str, columns: list[str], weights: str | None, also_complete: tuple[str, ...],
             segment: str | None = None) -> dict[str, np.ndarray]:
    """The query of ``from_table`` (and by ``segment`` too, as ``segment_value``, when given)."""
    def real(c: str) -> str:
        return f"CAST({quote_identifier(c)} AS DOUBLE)"

    x = real(running)
    group = [quote_identifier(segment)] if segment else []
    parts = [*(f"{g} AS segment_value" for g in group), f"{x} AS x", "count(*) AS n"]
    for i, c in enumerate(columns):
        parts += [f"sum({real(c)}) AS s{i}", f"var_pop({real(c)}) AS v{i}", f"min({real(c)}) AS lo{i}",
                  f"max({real(c)}) AS hi{i}"]
    pairs = [(i, j) for i in range(len(columns)) for j in range(i + 1, len(columns))]
    parts += [f"covar_pop({real(columns[i])}, {real(columns[j])}) AS c{i}_{j}" for i, j in pairs]
    required = [running, *columns, *also_complete, *([segment] if segment else [])]
    source = f"{TABLE} WHERE {table.complete(required)}"
    if weights:
        parts += _weighted_parts(columns)
        source = _weighted_rows(table, running, columns, weights, required, segment)
    keys = ", ".join([*group, x])
    order = ", ".join(["segment_value"] * bool(segment) + ["x"])
    return table.numpy(f"SELECT {', '.join(parts)} FROM {source} GROUP BY {keys} ORDER BY {order}")


def _by_value(got: dict[str, np.ndarray], k: int, weighted: bool) -> ByValue:
    """``ByValue`` from the grouped query's columns."""
    counts = np.asarray(got["n"], dtype=np.float64)
    pairs = [(i, j) for i in range(k) for j in range(i + 1, k)]

    def stack(prefix: str) -> np.ndarray:
        return np.column_stack([np.asarray(got[f"{prefix}{i}"], dtype=np.float64) for i in range(k)]) \
            if counts.size else np.zeros((0, k))

    scatter = np.zeros((counts.size, k, k))
    for i in range(k):
        scatter[:, i, i] = np.asarray(got[f"v{i}"], dtype=np.float64) * counts
    for i, j in pairs:
        scatter[:, i, j] = scatter[:, j, i] = np.asarray(got[f"c{i}_{j}"], dtype=np.float64) * counts
    weighted_sums = _weighted_sums(got, stack("s") / counts[:, None], k) if weighted else None
    values = Side(np.asarray(got["x"], dtype=np.float64), stack("s"), None, counts, scatter, None, weighted_sums)
    return ByValue(values, stack("lo"), stack("hi"))


def _weighted_rows(table: "Table", running: str, columns: list[str], weights: str, required: list[str],
                   segment: str | None) -> str:
    """The complete rows (of ``required``) of positive weight, with the weight as ``__weight`` and each column's
    deviation from its value's mean (within its segment's value, with ``segment``) as ``__dev<i>``: the
    w^2-weighted scatter is then a sum of small numbers (two passes, as ``local_poly.collapse``)."""
    q = quote_identifier
    x = f"CAST({q(running)} AS DOUBLE)"
    within = ", ".join([*([q(segment)] if segment else []), x])
    deviations = [f"CAST({q(c)} AS DOUBLE) - avg(CAST({q(c)} AS DOUBLE)) OVER (PARTITION BY {within}) AS __dev{i}"
                  for i, c in enumerate(columns)]
    keep = [*(q(c) for c in dict.fromkeys([running, *columns, *([segment] if segment else [])])),
            f"CAST({q(weights)} AS DOUBLE) AS __weight"]
    where = f"{table.complete([*required, weights])} AND {q(weights)} > 0"
    return f"(SELECT {', '.join(keep + deviations)} FROM {TABLE} WHERE {where})"


def _weighted_parts(columns: list[str]) -> list[str]:
    """Per value: sum w, sum w d, sum w^2, sum w^2 e and sum w^2 e e' (e: d minus the value's mean)."""
    w, k = "__weight", len(columns)
    parts = [f"sum({w}) AS w1", f"sum({w} * {w}) AS w2"]
    for i, c in enumerate(columns):
        parts += [f"sum({w} * CAST({quote_identifier(c)} AS DOUBLE)) AS ws{i}", f"sum({w} * {w} * __dev{i}) AS we{i}"]
        parts += [f"sum({w} * {w} * __dev{i} * __dev{j}) AS wee{i}_{j}" for j in range(i, k)]
    return parts


def _weighted_sums(got: dict[str, np.ndarray], means: np.ndarray, k: int) -> WeightedSums:
    """``WeightedSums`` from ``_weighted_parts``: w^2-weighted mean = value mean + sum w^2 e / sum w^2, scatter
    sum w^2 e e' less its shift to that mean."""
    def col(name: str) -> np.ndarray:
        return np.asarray(got[name], dtype=np.float64)

    total, square_total = col("w1"), col("w2")
    shifts = np.column_stack([col(f"we{i}") for i in range(k)]) / square_total[:, None]
    scatter = np.zeros((total.size, k, k))
    for i in range(k):
        for j in range(i, k):
            scatter[:, i, j] = scatter[:, j, i] = col(f"wee{i}_{j}") - square_total * shifts[:, i] * shifts[:, j]
    sums = np.column_stack([col(f"ws{i}") for i in range(k)])
    return WeightedSums(total, sums, square_total, means + shifts, scatter)


def zero_weight_rows(table: "Table", columns: list[str], weights: str) -> int:
    """The complete rows of ``columns`` whose weight is 0 (left out: they add nothing, and would count in n)."""
    got = table.sql(f"SELECT count(*) FROM {TABLE} WHERE {table.complete([*columns, weights])} AND "
                    f"{quote_identifier(weights)} = 0")
    return int(got[0][0])


def _refuse_infinite(table: "Table", running: str, columns: list[str], x: np.ndarray, lo: np.ndarray,
                     hi: np.ndarray) -> None:
    """An infinite value is kept as a value: the bandwidth became NaN and the error blamed the bandwidth.
    Exit 3 naming the column and the filter that leaves such rows out."""
    from causalcli.data.sql import drop_infinite
    from causalcli.errors import DataError

    found = [running] if np.isinf(x).any() else []
    found += [c for i, c in enumerate(columns) if np.isinf(lo[:, i]).any() or np.isinf(hi[:, i]).any()]
    if found:
        c = found[0]
        raise DataError(f"{'running variable' if c == running else 'column'} {c!r} holds infinite values; "
                        f"{drop_infinite(c)}", file=table.file, column=c, key="design.running" if c == running else None)
