"""Segment columns of the designs that report effects by segment from rows (dml, weighting, iv, matching, did, rdd):
how their missing values are named, the cap on their values, their labels, and that they are neither treatment
nor outcome."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, Sequence

from causalcli.data.sql import TABLE, quote_identifier
from causalcli.errors import DataError, SpecError

if TYPE_CHECKING:  # pragma: no cover
    from causalcli.data.table import Table

MAX_SEGMENT_LEVELS = 50  # more values is an id or a fine category, not a segment
SEGMENT_ROLE = ("segments", "segment")  # n.dropped_missing_segments; how messages name the column


def check_segment_levels(segments: Sequence[str], table: "Table") -> None:
    """At most MAX_SEGMENT_LEVELS values in each segment column (one query for all of them; exit 3)."""
    if not segments:
        return
    parts = ", ".join(f"count(DISTINCT {quote_identifier(c)})" for c in segments)
    for i, (column, levels) in enumerate(zip(segments, table.sql(f"SELECT {parts} FROM {TABLE}")[0])):
        if levels > MAX_SEGMENT_LEVELS:
            raise DataError(f"segment column {column!r} has {levels:,} values (at most {MAX_SEGMENT_LEVELS}); "
                            "coarsen it into groups (data.derive can map it to fewer)", file=table.file,
                            key=f"segments[{i}]", column=column)


def segment_labels(values: Any) -> Any:
    """A segment column's values as the labels of ``column=value``: text as it is, numbers as short decimals
    (``age=25``, ``share=2.5``: a whole number stored as a float read ``age=25.0``). The designs group rows by
    these labels, so two values never share one: whole numbers in full, others ``%g`` where it reads back as the
    value, else the shortest decimal that does (``%g`` alone wrote 1000000 and 1000001 as ``1e+06``, merging
    the two segments)."""
    import numpy as np

    values = np.asarray(values)
    if values.dtype.kind in "iu":
        return values.astype(str)
    if values.dtype.kind == "f":
        return np.array([_number_label(float(v)) for v in values])
    return values.astype(str)


def _number_label(v: float) -> str:
    if v.is_integer() and abs(v) < 2 ** 53:  # a code or a count, in full (1000000, not 1e+06)
        return str(int(v))
    short = f"{v:g}"
    return short if float(short) == v else repr(v)


def check_segment_columns(study: Any, file: str) -> None:
    """The spec alone: segments are other columns than the treatment and the outcome (the spec model refuses a
    column listed twice; exit 2)."""
    for i, column in enumerate(study.segments):
        if column in (study.treatment, study.outcome):
            role = "treatment" if column == study.treatment else "outcome"
            raise SpecError(f"segments[{i}] is the {role} {column!r}; segments are pre-treatment columns (a group, "
                            "a region) to report the effect by", file=file, key=f"segments[{i}]")
