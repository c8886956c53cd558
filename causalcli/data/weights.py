"""Observation weights (the top-level ``weights``): the column's check before any design reads it, and the rows a
weighted fit keeps."""

from __future__ import annotations

from typing import TYPE_CHECKING

from causalcli.data.sql import TABLE, quote_identifier
from causalcli.data.table import require_columns
from causalcli.errors import DataError

if TYPE_CHECKING:  # pragma: no cover
    import numpy as np

    from causalcli.data.table import Table


def check_weights(table: "Table", column: str) -> None:
    """Observation weights: a numeric column, finite, non-negative, not all zero."""
    require_columns(table, {column: ("weights", "numeric")})
    q = quote_identifier(column)
    negative, total = table.sql(f"SELECT count(*) FILTER (WHERE {q} < 0 OR isinf(CAST({q} AS DOUBLE))), "
                                f"sum(CAST({q} AS DOUBLE)) FROM {TABLE}")[0]
    if negative:
        from causalcli.data.types import first_row

        where = first_row(table, column, "{v} < 0 OR isinf(CAST({v} AS DOUBLE))")
        shown = f" (row {where[0]} has {where[1]!r})" if where else ""
        name = column if column.isidentifier() else quote_identifier(column)  # as data.sql.drop_infinite writes it
        raise DataError(f"weights column {column!r} has {negative:,} negative or infinite values; weights must be >= 0"
                        f"{shown}: fix them, or leave those rows out with data.filter (e.g. \"{name} >= 0 AND "
                        f"isfinite({name})\")", file=table.file, key="weights", column=column)
    if not total or total <= 0:
        raise DataError(f"weights column {column!r} sums to zero: every weight is 0 or missing, so no row would "
                        "count; check that it is the weights column, or remove 'weights'", file=table.file,
                        key="weights", column=column)


def positive_weights(cols: dict[str, "np.ndarray"], column: str, file: str | None) -> tuple["np.ndarray", int]:
    """The rows of a positive observation weight and how many have a weight of 0 (they add nothing to a weighted
    fit but would count in n); exit 3 when none is positive. Negative weights were refused by ``check_weights``."""
    import numpy as np

    positive = np.asarray(cols[column], dtype=np.float64) > 0
    zero = int(positive.size - np.count_nonzero(positive))
    if zero == positive.size:
        raise DataError(f"every weight in {column!r} is zero in the complete rows; the study has no row to "
                        "estimate from", file=file, key="weights", column=column)
    return positive, zero


def keep_positive_weights(cols: dict[str, "np.ndarray"], X: "np.ndarray", t: "np.ndarray", column: str | None,
                          file: str | None) -> tuple[dict[str, "np.ndarray"], "np.ndarray", "np.ndarray",
                                                     "np.ndarray | None", int]:
    """A row-level design's columns, covariate matrix and treatment on the rows of positive weight, the weights as
    doubles, and how many rows of weight 0 were left out (they add nothing to a weighted fit, yet would count in
    n, in the folds and in small-sample factors); without a ``column``, all unchanged with no weights."""
    if not column:
        return cols, X, t, None, 0
    import numpy as np

    positive, zero = positive_weights(cols, column, file)
    if zero:
        cols = {k: v[positive] for k, v in cols.items()}
        X, t = X[positive], t[positive]
    return cols, X, t, np.asarray(cols[column], dtype=np.float64), zero


def zero_weight_warning(rows: int, column: str) -> list[str]:
    """The warning that ``rows`` rows of weight 0 were left out (none when there were none)."""
    if not rows:
        return []
    return [f"{rows:,} row{'s' * (rows != 1)} with a weight of 0 ({column!r}) left out: they add nothing to a "
            "weighted estimate and, kept, would count as observations"]
