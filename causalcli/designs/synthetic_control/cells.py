"""The unit x period panel of a synthetic control, read in one grouped pass where the data live.

One ``GROUP BY unit, time`` over ``study_data`` returns a row per unit and period with the value
of every column the design reads (the outcome and the predictors) and how many rows gave it; only
those cells travel to the client (DuckDB on a file, or Spark or PostgreSQL holding the table:
``provenance.fetched_rows`` counts them). Without ``design.aggregate`` a cell holds one row
(``validate`` refuses a repeated unit and period, exit 3) and its value is that row's. With it,
a cell is the ``sum``, ``mean`` or ``count`` of its rows' values, as ``time_series``' aggregate:
sums are of the values cast to DECIMAL(38, 10) (each rounded to 1e-10 first), so exact, the same in
any order of summation and on every engine; a missing value (NULL, and NaN on DuckDB) is left out
of the cell, and a cell with no value is missing (NaN).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np

from causalcli.data.exact_sums import aggregate_sql, missing_as_null
from causalcli.data.sql import TABLE

if TYPE_CHECKING:  # pragma: no cover
    from causalcli.data.table import Table



@dataclass(frozen=True)
class Cells:
    """Every unit x period cell with a unit and a time: keys, and per column its value (NaN: none)."""

    units: np.ndarray  # the unit of each cell, as read
    times: np.ndarray  # float64 period of each cell
    values: dict[str, np.ndarray]
    rows: int  # input rows in the cells (the others lack a unit or a time)


def read_cells(table: "Table", unit: str, time: str, columns: list[str], how: str | None) -> Cells:
    """One grouped pass: the cells of ``columns`` by (unit, time), as numpy arrays."""
    u, t = missing_as_null(table, unit), missing_as_null(table, time)
    parts = [f"{aggregate_sql(table, c, how)} AS v{i}, count({missing_as_null(table, c)}) AS k{i}" for i, c in enumerate(columns)]
    got = table.numpy(f"SELECT {u} AS u, CAST({t} AS DOUBLE) AS t, count(*) AS n{''.join(', ' + p for p in parts)} "
                      f"FROM {TABLE} WHERE {u} IS NOT NULL AND {t} IS NOT NULL GROUP BY 1, 2")
    values = {c: np.where(np.asarray(got[f"k{i}"]) > 0, _floats(got[f"v{i}"]), np.nan) for i, c in enumerate(columns)}
    return Cells(np.asarray(got["u"]), _floats(got["t"]), values, int(np.sum(got["n"])))


def _floats(fetched: np.ndarray) -> np.ndarray:
    """A fetched column as float64, NULL as NaN (DuckDB gives a masked array, Arrow objects or floats)."""
    if isinstance(fetched, np.ma.MaskedArray):
        return fetched.astype(np.float64).filled(np.nan)
    if fetched.dtype == object:
        return np.array([np.nan if x is None else float(x) for x in fetched], dtype=np.float64)
    return fetched.astype(np.float64)


def pivot(cells: Cells, column: str, unit_index: np.ndarray, time_index: np.ndarray, shape: tuple[int, int]
          ) -> np.ndarray:
    """``column`` as a periods x units matrix; cells of units outside the pool (index -1) are left out."""
    out = np.full(shape, np.nan)
    keep = unit_index >= 0
    out[time_index[keep], unit_index[keep]] = cells.values[column][keep]
    return out
