"""Order-independent exact sums in an engine: the rounding constants every such pass uses.

Rump, Ogita and Oishi (2008), ExtractScalar: with ``s = 1.5 * 2**p``, ``(t + s) - s`` rounds ``t`` to a
multiple of ``q = 2**(p - 52)``; when every term and every partial sum stays within the bound ``p`` was
chosen for, each addition is exact, so an engine adding in any order gives the same bits. Values are
centred first on a power-of-two grid, so the centre itself does not depend on how a mean was added up.
The experiment's fixed-point pass and did's cohort x period cells both use these.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import TYPE_CHECKING

if TYPE_CHECKING:  # pragma: no cover
    from causalcli.data.table import Table


def split_constant(bound: float, linear: bool = False) -> tuple[float, float]:
    """``(s, q)``: ``s = 1.5 * 2**p``, ``q = 2**(p-52)`` the rounding quantum.

    Exactness needs every ``|t| <= 2**(p-1)`` (so ``t + s`` stays in ``[2**p, 2**(p+1)]``) and
    every partial sum below ``2**53 q = 2**(p+1)``. Products: ``2**(p-1) >= bound`` (the bound
    on the sum of ``|t|`` also bounds each term). Linear terms: ``2**(p+1) >= bound``, the
    single terms being checked apart (``max |d| <= sqrt(sum d**2)``), two bits finer.
    """
    bound = max(bound, 2.0 ** -900)
    p = math.ceil(math.log2(bound)) + (-1 if linear else 1)
    return 1.5 * 2.0 ** p, 2.0 ** (p - 52)


def round_to_grid(value: float, spread: float) -> float:
    """``value`` on a power-of-two grid about 1/1000 of ``spread`` (> 0): centring loses nothing by being 0.1%
    off, and coarse-grained columns (integers) keep their centred values on the summation quantum."""
    grid = 2.0 ** (math.floor(math.log2(spread)) - 10)
    return round(value / grid) * grid


DECIMAL = "DECIMAL(38, 10)"  # design.aggregate's sums: each value rounded to 1e-10, then added exactly


def missing_as_null(table: "Table", column: str) -> str:
    """The quoted column with NaN read as missing, as ``Table.arrays`` does (DuckDB; engines hold no NaN)."""
    from causalcli.data.sql import quote_identifier

    q = quote_identifier(column)
    if table.engine is None and table.types[column].upper() in ("DOUBLE", "FLOAT", "REAL"):
        return f"(CASE WHEN isnan({q}) THEN NULL ELSE {q} END)"
    return q


def aggregate_sql(table: "Table", column: str, how: "str | Mapping[str, str] | None") -> str:
    """One group's value of ``column`` under ``design.aggregate`` (time_series, synthetic_control): ``None`` the
    group's single row (checked beforehand), ``count``, ``sum`` (exact: DECIMAL) or ``mean`` (that sum over the
    count), or a mapping of column to one of those (every column read is in it: ``check_aggregate``); NaN
    counts as missing."""
    if isinstance(how, Mapping):
        how = how[column]
    q = missing_as_null(table, column)
    if how is None:
        return f"min({q})"  # one row per group: its value, bit for bit
    if how == "count":
        return f"count({q})"
    total = f"CAST(sum(CAST({q} AS {DECIMAL})) AS DOUBLE)"
    return total if how == "sum" else f"{total} / nullif(count({q}), 0)"
