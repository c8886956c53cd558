"""The blocked pass: sufficient statistics of a large Parquet file read as it is, summed per row-group block.

The fixed-point split of ``causalcli.designs.experiment.stats`` costs two operations per term, a
third of the pass. From ``BLOCKED_ROWS``
rows, when the study's rows are a Parquet file as it is (no filter, no renames, no time or
segment column), the pass sums the terms as they are, per arm and per block of rows that never
crosses a row group (``file_row_number // block``, the block being the greatest common
divisor of the row-group boundaries), and Python adds the block sums with ``math.fsum``
(correctly rounded, so in any order). DuckDB reads a row group in one thread, in order
(it parallelises Parquet over row groups), so each block's double sum, and hence the
total, comes back with the same bits for any number of threads. A block holds at most
a row group, so its rounding error stays near ``2**-53`` times its row count of the sum
of ``|t|``, which is smaller than the fixed-point rounding at these sizes.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from causalcli.data.table import quote_identifier
from causalcli.designs.experiment.grouping import BinaryCount
from causalcli.designs.experiment.sums import ArmSums, Group, incomplete_rows, lit
from causalcli.errors import DataError

if TYPE_CHECKING:  # pragma: no cover
    from causalcli.data.table import Table


@dataclass(frozen=True)
class Blocks:
    """How the blocked pass cuts a Parquet file: rows per block, and whether its metadata shows no NULL."""

    rows: int
    no_nulls: bool  # every metric column's null count is in the metadata and zero: no NULL count needed


def row_group_blocks(table: "Table", parquet: str, cols: tuple[str, ...], min_rows: int,
                     max_blocks: int) -> Blocks | None:
    """Blocks of the gcd of the row-group boundaries, so that none crosses a row group; None below
    ``min_rows`` rows (``stats.BLOCKED_ROWS``), when the file is not the study's rows, or with more than
    ``max_blocks`` blocks."""
    from causalcli.data.sql import quote_literal

    if table.rows < min_rows or "file_row_number" in table.types:  # a column of that name hides DuckDB's
        return None
    try:
        meta = table.sql("SELECT row_group_id, row_group_num_rows, path_in_schema, stats_null_count FROM "
                         f"parquet_metadata({quote_literal(parquet)})")
    except Exception:  # duckdb.Error: not Parquet after all; the fixed-point pass reads it
        return None
    sizes = dict(sorted((int(r[0]), int(r[1])) for r in meta))
    if sum(sizes.values()) != table.rows:
        return None
    block, start = 0, 0
    for size in list(sizes.values())[:-1]:
        start += size
        block = math.gcd(block, start)
    block = block or table.rows
    if table.rows > block * max_blocks:
        return None
    nulls = [r[3] for r in meta if r[2] in cols]
    return Blocks(block, len(nulls) == len(cols) * len(sizes) and not any(v is None or v > 0 for v in nulls))


def blocked_pass(table: "Table", parquet: str, blocks: Blocks, treatment: str, group: Group,
                  centres: dict[str, float], expr, binary: tuple[BinaryCount, ...] = (), histogram: Any = None):
    """Plain double sums per arm and row-group block, added per arm with ``math.fsum`` (the module docstring)."""
    from causalcli.data.sql import quote_literal

    cols = group.columns
    idx = {c: i for i, c in enumerate(cols)}
    inner = [f"{quote_identifier(treatment)} AS arm", f"file_row_number // {blocks.rows} AS blk",
             *(f"({expr(c)} - {lit(centres[c])}) AS d{idx[c]}" for c in cols), *(b.inner for b in binary)]
    outer = ["arm", "count(*)", "0" if blocks.no_nulls else incomplete_rows(len(cols)),
             *(f"sum(d{idx[c]})" for c in cols), *(f"sum(d{idx[a]} * d{idx[b]})" for a, b in group.pairs),
             *(b.count for b in binary)]
    group_by = "arm, blk" if histogram is None else histogram.group_by(["arm", "blk"])  # the quantiles' histograms
    if histogram is not None:
        inner, outer = inner + histogram.inner(), outer + histogram.outer()
    query = (f"SELECT {', '.join(outer)} FROM (SELECT {', '.join(inner)} FROM read_parquet("
             f"{quote_literal(parquet)})) GROUP BY {group_by}")
    try:  # the quantiles' windows may return values of their own (quantile_pass.SampleWindows.run)
        rows = table.sql(query) if histogram is None else histogram.run(table, query)
    except Exception as exc:  # duckdb.Error: a value DuckDB cannot cast to DOUBLE, say
        raise DataError(f"cannot aggregate the metric columns: {str(exc).splitlines()[0]}", file=table.file) from None
    rows = rows if histogram is None else histogram.keep(rows)
    blocks: dict[Any, list] = {}
    missing = incomplete = 0
    for row in rows:
        if row[0] is None:
            missing += int(row[1])
            continue
        blocks.setdefault(row[0], []).append(row)
        incomplete += int(row[2])
    result: dict[Any, ArmSums] = {}
    sums_end = 3 + len(cols) + len(group.pairs)
    for arm, parts in blocks.items():
        totals = [_fsum(0.0 if r[k] is None else r[k] for r in parts) for k in range(3, sums_end)]
        result[arm] = ArmSums(sum(int(r[1]) for r in parts), dict(zip(cols, totals)),
                              dict(zip(group.pairs, totals[len(cols):])))
    not_binary = {b.column: sum(int(r[sums_end + i]) for ps in blocks.values() for r in ps)
                  for i, b in enumerate(binary)}
    arm_counts = {arm: sums.n for arm, sums in result.items()}
    return {group.metric: result}, arm_counts, missing, incomplete, not_binary


def _fsum(values) -> float:
    """The correctly rounded sum; inf or NaN (reported by the finiteness check) when it overflows."""
    values = list(values)
    try:
        return math.fsum(values)
    except (OverflowError, ValueError):
        return sum(values)
