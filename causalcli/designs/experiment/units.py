"""Clustered randomisation (``design.unit``): rows summed to their randomisation unit in the engine.

When rows are finer than the unit that was randomised (sessions or views of a user, orders of a
merchant), rows of one unit are correlated and a row-level analysis understates the standard error.
``study_data`` is then redefined as one row per unit and arm, a ``GROUP BY unit, arm`` view that the
one-pass statistics of ``causalcli.designs.experiment.stats`` read like any table (grouped once, into the
temporary table ``study_units`` that the unit checks read too), so every metric
type keeps working on units:

- a mean metric ``outcome: y`` becomes the ratio ``sum(y) / rows`` over each unit's rows (the
  delta method on unit sums, Deng, Knoblich and Lu 2018);
- a ratio metric sums its numerator and its denominator per unit;
- a CUPED covariate ``x`` is summed per unit with its own denominator: ``covariate_denominator``
  summed when given, else the unit's row count (ratio CUPED: a per-unit value repeated on each
  of its rows stays that value; a per-row pre-period value becomes the unit's mean per row);
- with ``design.time`` a unit's period is its first exposure (the least period of its rows);
- a segment column (``segments``) must be a property of the unit: its value is carried to the unit
  (rows without a value take the unit's), and a unit whose rows hold two values is a data error.

Each metric sums only its complete rows (none of its columns missing); a unit with none is left
out of that metric. This is the estimate of a regression of the outcome on arm dummies over the
rows, with a cluster-robust (CR) variance clustered on the unit; the delta method's variance is
that regression's CR0 variance with each arm's term multiplied by ``n_arm / (n_arm - 1)`` units
(where CRV1 multiplies the whole by ``G / (G - 1) * (N - 1) / (N - K)``).

Exact sums: the unit sums of a floating column are sums of its values rounded to ``s`` decimals (exact integer
arithmetic in every engine: DECIMAL(38, s), or in DuckDB the same integers as HUGEINT), with ``s`` chosen from the column's largest value and the number of
rows (a bound on any unit's sum known before grouping; ``_decimal_scale``), so that they do not depend on
the order in which threads add rows and reruns stay byte-identical; the statistics pass then sums the
units as it sums rows.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field, replace
from typing import TYPE_CHECKING, Any

from causalcli.data.sql import TABLE, quote_identifier
from causalcli.errors import DataError, SpecError
from causalcli.inference.few_clusters import MIN_CLUSTERS, MIN_TREATED_CLUSTERS

if TYPE_CHECKING:  # pragma: no cover
    from causalcli.data.table import Table
    from causalcli.designs.experiment.analysis import MetricShape
    from causalcli.records import Check
    from causalcli.spec.loading import LoadedSpec
    from causalcli.spec.models import Study

FLOAT_TYPES = ("DOUBLE", "FLOAT", "REAL")
DECIMAL_DIGITS = 38  # the widest DECIMAL of DuckDB, Spark and the SQL standard
MIN_SCALE = 6        # fewer fractional digits than this: sums too large for DECIMAL, summed as DOUBLE
ONE_BIGINT = 2.0 ** 61  # |round(x * 10^s)| below this for every value: one BIGINT each (``_decimal_scale``)
# SPEC "Inference with few clusters": cluster-robust (CRV1-like) tests are reliable from about 42 balanced
# clusters (MacKinnon and Webb 2017) with at least 6 in each arm
MIN_UNITS = MIN_CLUSTERS
MIN_UNITS_PER_ARM = MIN_TREATED_CLUSTERS
UNITS = "study_units"  # the rows grouped by unit and arm, once


@dataclass(frozen=True)
class UnitSummary:
    """What the grouping pass found, for the diagnostics (no rows)."""

    column: str
    units: int                 # units with a variant
    rows_without_unit: int     # dropped: no unit value
    rows_without_variant: int  # dropped: a unit value but no variant
    max_rows_per_unit: int
    sums: dict[str, str] = field(default_factory=dict)  # unit-level column -> what it sums
    double_sums: tuple[str, ...] = ()  # floating columns too large for DECIMAL: summed as DOUBLE
    # centres and second moments of the unit-level columns, from the check pass (the statistics need no pass
    # of their own for them): unit sums over rows where the column is present, close enough to centre on
    centres: dict[str, float] = field(default_factory=dict)
    second: dict[str, float] = field(default_factory=dict)


def check_unit_spec(study: "Study", spec: "LoadedSpec") -> None:
    """The unit must be a column of its own (exit 2)."""
    unit = study.design.unit
    if unit is None:
        return
    for key, other in (("treatment", study.treatment), ("design.time", study.design.time)):
        if unit == other:
            raise SpecError(f"design.unit {unit!r} is the {key} column; give the column that identifies the "
                            "randomised unit (user_id, say)", file=spec.source.display, key="design.unit")


def check_unit_column(study: "Study", table: "Table") -> None:
    """The unit column exists (exit 3, naming it)."""
    from causalcli.data.sql import did_you_mean

    unit = study.design.unit
    if unit is not None and unit not in table.types:
        raise DataError(f"unit column {unit!r} (design.unit) not found{did_you_mean(unit, table.types)}",
                        file=table.file, key="design.unit", column=unit)


class _GroupingFailed(Exception):
    """The grouping failed before NaN values were counted: count them and group again (``group_by_unit``)."""


def group_by_unit(study: "Study", table: "Table",
                  shapes: list["MetricShape"]) -> tuple[UnitSummary, list["MetricShape"]]:
    """Redefine ``study_data`` as one row per unit and arm, and the metrics as ratios of its columns.

    The rows are grouped once: ``_size_pass`` sizes the exact sums (each column's missing values and largest
    absolute value), one ``GROUP BY unit, arm`` is materialised (``study_units``, a temporary table in
    DuckDB), and the unit checks and the statistics pass both read that table of units, never the rows again.

    In DuckDB, NaN values are first assumed absent (``_size_pass`` with ``count_nan=False``), which saves a scan
    of the floating columns (10^8 rows, two columns: about 1 s). The assumption is safe: every floating column is
    summed exactly, and DuckDB's exact sum of a NaN is a conversion error, which sends the study back to count the
    NaN values and group again. A NaN on a row that no sum reads changes no number. (Spark turns a NaN into a
    NULL DECIMAL and PostgreSQL sums it: there the NaN values are always counted first.)
    """
    if table.engine is not None:
        return _group_by_unit(study, table, shapes, count_nan=True)
    try:
        return _group_by_unit(study, table, shapes, count_nan=False)
    except _GroupingFailed:
        return _group_by_unit(study, table, shapes, count_nan=True)


def _group_by_unit(study: "Study", table: "Table", shapes: list["MetricShape"],
                   count_nan: bool) -> tuple[UnitSummary, list["MetricShape"]]:
    unit, arm, time, segments = study.design.unit, study.treatment, study.design.time, list(study.segments)
    source = list(dict.fromkeys(c for s in shapes for c in _source_columns(s)))
    floating = [c for c in source if not _is_integer(table.types[c])]
    from causalcli.designs.experiment import unit_scan

    sized = _size_pass(table, source, floating, count_nan)
    rows, missing, largest = sized[0], sized[1:1 + len(source)], dict(zip(floating, sized[1 + len(source):]))
    fast_select: list[str] = []  # the grouping by unit alone: what stays as it is, and the exact sums in parts
    fast_sums: dict[str, tuple[list[str], str]] = {}
    incomplete = {c for c, k in zip(source, missing) if k}
    names = _names(shapes, incomplete, {unit, arm, time, *segments})
    q_unit, q_arm = quote_identifier(unit), quote_identifier(arm)
    select = [f"{q_unit} AS u", f"{q_arm} AS a", "count(*) AS k"]  # u, a, k: the check's columns
    view = [f"u AS {q_unit}", f"a AS {q_arm}"]  # study_data over the units: one row per unit and arm
    if time is not None:
        select.append(f"min({quote_identifier(time)}) AS t")
        fast_select.append(select[-1])
        view.append(f"t AS {quote_identifier(time)}")
    for i, c in enumerate(segments):  # the unit's value (the least), and what the check compares
        select += _segment_aggregates(table, quote_identifier(c), i)
        view.append(f"g{i} AS {quote_identifier(c)}")
    centre_sums: dict[int, str] = {}  # each source column's sum over its rows, for the centres
    sums: dict[str, str] = {}
    double_sums = []
    centres, second = {}, {}
    for j, ((column, columns), name) in enumerate(names.items()):
        ok = _complete(table, columns) if columns else "true"
        view.append(f"{'v' + str(j) if columns or column is not None else 'k'} AS {quote_identifier(name)}")
        if column is None:  # over all rows: the row count k
            if columns:
                select.append(f"count(CASE WHEN {ok} THEN 1 END) AS v{j}")
                fast_select.append(select[-1])
            sums[name] = f"rows with {', '.join(columns)} present" if columns else "rows"
            continue
        aggregate, exact = _unit_sum(table, column, ok, largest.get(column), max(int(rows or 0), 1))
        if not exact:
            double_sums.append(column)
        select.append(f"{aggregate} AS v{j}")
        scale = _decimal_scale(largest.get(column), max(int(rows or 0), 1))
        if exact and scale is not None and table.types[column].upper() in FLOAT_TYPES:  # the same sum, in parts
            fast_sums[f"v{j}"] = unit_scan.scaled_sum_parts(f"CAST({quote_identifier(column)} AS DOUBLE)", ok, scale,
                                                            float(largest[column]))
        else:
            fast_select.append(select[-1])
        if not columns:
            centre_sums.setdefault(source.index(column), f"v{j}")
        sums[name] = f"sum of {column}" + (f" over rows with {', '.join(columns)} present" if columns else "")
    # the centres are rounded, so a DOUBLE sum is close enough where no exact one over the same rows is at hand
    select += [f"sum(CASE WHEN {_complete(table, (c,))} THEN CAST({quote_identifier(c)} AS DOUBLE) END) AS s{i}"
               for i, c in enumerate(source) if i not in centre_sums]
    fast_select += [item for item in select if item.rsplit(" AS ", 1)[1].startswith("s")]
    centre_sums = {i: centre_sums.get(i, f"s{i}") for i in range(len(source))}
    from causalcli.data.types import group_rows_once

    try:
        one_row_per_unit = unit_scan.applies(table) and unit_scan.group(
            table, UNITS, unit, arm, segments, ["count(*) AS k", *fast_select], fast_sums)
        if not one_row_per_unit:
            group_rows_once(table, UNITS, ", ".join(select), f"{q_unit}, {q_arm}")
        found = _check_pass(table, [centre_sums[i] for i in range(len(source))], len(segments), one_row_per_unit)
    except Exception as exc:  # duckdb.Error or an engine's: a unit column the engine cannot group by, say
        if not count_nan:  # a NaN, perhaps: counted, the grouping runs again (an error that stays is said then)
            raise _GroupingFailed from None
        raise DataError(f"cannot group the rows by unit column {unit!r}: {str(exc).splitlines()[0]}",
                        file=table.file, key="design.unit", column=unit) from None
    mixed, example, no_unit, no_variant, units, largest_unit = found[:6]
    _refuse_varying_segments(table, unit, segments, found[6:6 + 2 * len(segments)])
    spread = found[6 + 2 * len(segments):]  # avg and var_pop of the unit sums, then of the row counts
    if mixed:
        raise DataError(f"{mixed:,} unit(s) of {unit!r} appear in more than one arm of {arm!r} (for example "
                        f"{unit} = {example!r}); a unit must be randomised to one arm: fix the assignment or "
                        "filter those units out with data.filter", file=table.file, key="design.unit", column=unit)
    for column, columns in names:
        i = len(source) if column is None else source.index(column)
        centres[names[(column, columns)]], second[names[(column, columns)]] = _centre(spread[2 * i], spread[2 * i + 1])
    from causalcli.data.types import select_rows

    select_rows(table, ", ".join(view), UNITS, "u IS NOT NULL AND a IS NOT NULL")
    summary = UnitSummary(unit, int(units or 0), int(no_unit or 0), int(no_variant or 0), int(largest_unit or 0),
                          sums, tuple(dict.fromkeys(double_sums)), centres, second)
    return summary, [_unit_shape(s, names, incomplete, unit) for s in shapes]


def _source_columns(shape: "MetricShape") -> tuple[str, ...]:
    cols = [shape.num, shape.den, *[c for pair in shape.covariates for c in pair], shape.uptake]
    return tuple(dict.fromkeys(c for c in cols if c is not None))


def _filter_columns(shape: "MetricShape", incomplete: set[str]) -> tuple[str, ...]:
    """The metric's columns that have missing values: its complete rows are the rows where these are present."""
    return tuple(c for c in _source_columns(shape) if c in incomplete)


def _is_integer(kind: str) -> bool:
    from causalcli.designs.experiment.stats import INTEGER_TYPES

    return kind.upper() in INTEGER_TYPES


def _segment_aggregates(table: "Table", column: str, i: int) -> list[str]:
    """``g<i>``: the value of a segment column in a unit and arm; ``h<i>``/``i<i>``: the least and greatest
    of something equal exactly when the rows agree. In DuckDB the 64-bit hashes of the values (min/max of
    strings cost as much as the rest of the grouping; a collision of two values of one unit, about 2^-64, is
    the only way a varying unit would pass) and any non-missing value, which is then the only one; in
    another engine the least and greatest values themselves."""
    if table.engine is not None:
        return [f"min({column}) AS g{i}", f"min({column}) AS h{i}", f"max({column}) AS i{i}"]
    hashed = f"CASE WHEN {column} IS NOT NULL THEN hash({column}) END"
    return [f"any_value({column}) AS g{i}", f"min({hashed}) AS h{i}", f"max({hashed}) AS i{i}"]


def _size_pass(table: "Table", source: list[str], floating: list[str], count_nan: bool = True) -> tuple:
    """The rows, each metric column's missing values and each floating column's largest absolute value, which size
    the exact sums. Counts, least and greatest values come first: DuckDB answers them from a Parquet file's
    statistics without reading it (10^8 rows: milliseconds where a scan took 1.3 s). NaN is in neither, so NaN
    values are counted by a scan of the floating columns alone; a column with some has its largest value found
    over its other values (the file's statistics leave NaN out, a scan's max does not). Without ``count_nan``
    that scan runs only when it must (``group_by_unit`` says why it may be left out): when a least or greatest
    value is NaN, or when a column cannot be summed exactly (a DOUBLE sum carries a NaN without an error)."""
    parts = ["count(*)", *(f"count({quote_identifier(c)})" for c in source)]
    for c in floating:
        value = f"CAST({quote_identifier(c)} AS DOUBLE)"
        parts += [f"min({value})", f"max({value})"]
    found = table.sql(f"SELECT {', '.join(parts)} FROM {TABLE}")[0]
    rows, present, ends = found[0], found[1:1 + len(source)], found[1 + len(source):]
    float_columns = [c for c in floating if table.types[c].upper() in FLOAT_TYPES]
    if not count_nan:
        extremes = {c: (ends[2 * i], ends[2 * i + 1]) for i, c in enumerate(floating)}
        count_nan = any(lo is None or math.isnan(lo) or math.isnan(hi)
                        or _decimal_scale(max(abs(lo), abs(hi)), max(int(rows or 0), 1)) is None
                        for lo, hi in (extremes[c] for c in float_columns))
    nan = dict.fromkeys(floating, 0)
    if float_columns and count_nan:
        nan_sums = (f"sum(CASE WHEN isnan({quote_identifier(c)}) THEN 1 ELSE 0 END)" for c in float_columns)
        counts = table.sql(f"SELECT {', '.join(nan_sums)} FROM {TABLE}")[0]
        nan.update(zip(float_columns, (int(k or 0) for k in counts)))
    largest = []
    for i, c in enumerate(floating):
        if nan[c]:
            q = quote_identifier(c)
            largest.append(table.sql(f"SELECT max(abs(CASE WHEN NOT isnan({q}) THEN CAST({q} AS DOUBLE) END)) "
                                     f"FROM {TABLE}")[0][0])
        else:
            lo, hi = ends[2 * i], ends[2 * i + 1]
            largest.append(None if lo is None else max(abs(float(lo)), abs(float(hi))))
    missing = [rows - k + nan.get(c, 0) for c, k in zip(source, present)]
    return (rows, *missing, *largest)


def _check_pass(table: "Table", sums: list[str], segments: int, one_row_per_unit: bool = False) -> tuple:
    """One pass over the units (``study_units``, one row per unit and arm): units in more than one arm (how
    many, one example), rows without a unit or a variant, units, the largest unit, units with two values of a
    segment column (how many, one example), and the mean and variance of each column's unit sums and of the
    units' row counts (the centres of the statistics pass). ``one_row_per_unit`` (the fast grouping's table):
    the units are its rows, with no grouping by unit again."""
    if one_row_per_unit:
        inner = ["u", "a AS lo", "a AS hi", "k", "CASE WHEN a IS NULL THEN k ELSE 0 END AS na"]
        inner += [f"h{i} <> i{i} AS g{i}" for i in range(segments)]
        inner += [f"{c} AS s{i}" for i, c in enumerate(sums)]
        grouping = ""
    else:
        inner = ["u", "min(a) AS lo", "max(a) AS hi", "sum(k) AS k",
                 "sum(CASE WHEN a IS NULL THEN k ELSE 0 END) AS na"]
        inner += [f"min(h{i}) <> max(i{i}) AS g{i}" for i in range(segments)]
        inner += [f"sum({c}) AS s{i}" for i, c in enumerate(sums)]
        grouping = " GROUP BY u"
    mixed = "u IS NOT NULL AND lo <> hi"
    outer = [f"sum(CASE WHEN {mixed} THEN 1 ELSE 0 END)", f"min(CASE WHEN {mixed} THEN u END)",
             "sum(CASE WHEN u IS NULL THEN k ELSE 0 END)", "sum(CASE WHEN u IS NOT NULL THEN na ELSE 0 END)",
             "sum(CASE WHEN u IS NOT NULL AND lo IS NOT NULL THEN 1 ELSE 0 END)",
             "max(CASE WHEN u IS NOT NULL THEN k END)",
             *(f"sum(CASE WHEN u IS NOT NULL AND g{i} THEN 1 ELSE 0 END), min(CASE WHEN u IS NOT NULL AND g{i} "
               "THEN u END)" for i in range(segments)),
             *(f"avg(CASE WHEN u IS NOT NULL THEN {v} END), var_pop(CASE WHEN u IS NOT NULL THEN {v} END)"
               for v in [*(f"s{i}" for i in range(len(sums))), "k"])]
    return table.sql(f"SELECT {', '.join(outer)} FROM (SELECT {', '.join(inner)} FROM {UNITS}{grouping}) AS by_unit")[0]


def _refuse_varying_segments(table: "Table", unit: str, segments: list[str], found: tuple) -> None:
    """A segment is a property of the unit: a unit whose rows hold two values of it is a data error (exit 3)."""
    for i, column in enumerate(segments):
        varying, example = found[2 * i], found[2 * i + 1]
        if varying:
            raise DataError(f"segment column {column!r} takes more than one value within {varying:,} unit(s) of "
                            f"{unit!r} (for example {unit} = {example!r}); with design.unit a segment must be a "
                            "property of the unit: segment by a unit-level column (its value at the first exposure, "
                            "say)", file=table.file, key=f"segments[{i}]", column=column)


def _centre(mean: Any, variance: Any) -> tuple[float, float]:
    from causalcli.designs.experiment.stats import _centre as centre

    if mean is None:  # a column with no value in any unit
        return 0.0, 1.0
    return centre(float(mean), float(variance or 0.0))


def _names(shapes: list["MetricShape"], incomplete: set[str],
           taken: set) -> dict[tuple[str | None, tuple[str, ...]], str]:
    """Unit-level column names: (source column or None for the row count, the metric's columns with missing
    values) -> name. A column summed over the same rows by every metric keeps its own name; otherwise the
    metric's name is added (``y|metric``). The row count is ``rows``.
    """
    keys: list[tuple[str | None, tuple[str, ...], str]] = []
    for s in shapes:
        columns = _filter_columns(s, incomplete)
        for c in (*_source_columns(s), None):
            if not any(k[:2] == (c, columns) for k in keys):
                keys.append((c, columns, s.name))
    out: dict[tuple[str | None, tuple[str, ...]], str] = {}
    used = {t for t in taken if t is not None}
    for c, columns, metric in keys:
        base = c if c is not None else "rows"
        name = base if sum(k[0] == c for k in keys) == 1 else f"{base}|{metric}"
        while name in used:
            name += "_"
        used.add(name)
        out[(c, columns)] = name
    return out


def _complete(table: "Table", columns: tuple[str, ...]) -> str:
    tests = []
    for c in columns:
        q = quote_identifier(c)
        tests.append(f"{q} IS NOT NULL")
        if table.types[c].upper() in FLOAT_TYPES:
            tests.append(f"NOT isnan({q})")
    return " AND ".join(tests)


def _unit_sum(table: "Table", column: str, ok: str, largest: float | None, rows: int) -> tuple[str, bool]:
    """The aggregate that sums a column over a unit's rows where ``ok``, and whether the sum is exact: an integer as
    it is, a boolean as 0/1, any other number at ``s`` decimals (``_decimal_scale``: room for a sum of absolute
    values over ``rows`` rows), as DECIMAL(38, s) in Spark and PostgreSQL and, in DuckDB, a floating column as the
    integers round(x * 10^s) (the DECIMAL's own integers, the same sum as the fast grouping's,
    ``unit_scan.scaled_sum_parts``)."""
    q = quote_identifier(column)
    kind = table.types[column].upper()
    if kind == "BOOLEAN":
        return f"CAST(sum(CASE WHEN {ok} THEN CASE WHEN {q} THEN 1 ELSE 0 END END) AS BIGINT)", True
    if _is_integer(kind):
        return f"CAST(sum(CASE WHEN {ok} THEN {q} END) AS BIGINT)", True
    scale = _decimal_scale(largest, rows)
    if scale is None:
        return f"sum(CASE WHEN {ok} THEN CAST({q} AS DOUBLE) END)", False
    if table.engine is None and kind in FLOAT_TYPES:
        from causalcli.designs.experiment import unit_scan

        integers = f"CAST({unit_scan.scaled(f'CAST({q} AS DOUBLE)', scale)} AS HUGEINT)"
        return unit_scan.to_double(f"sum(CASE WHEN {ok} THEN {integers} END)", scale), True
    return f"CAST(sum(CASE WHEN {ok} THEN CAST({q} AS DECIMAL({DECIMAL_DIGITS}, {scale})) END) AS DOUBLE)", True


def _decimal_scale(largest: float | None, rows: int) -> int | None:
    """The DECIMAL(38, s) scale: room for a sum of absolute values over ``rows`` rows, and at most the scale at
    which every value's integer ``round(x * 10^s)`` fits a BIGINT (``ONE_BIGINT``) when that still leaves
    ``MIN_SCALE`` fractional digits. None when the values are too large for ``MIN_SCALE`` digits (or none is
    finite).

    Why the BIGINT cap: DuckDB's fast grouping then sums one BIGINT per value instead of two parts
    (``unit_scan.scaled_sum_parts``; 10^8 rows, two columns: about 2 s less), and the rounding stays about
    10^-18 of the column's largest value, a hundred times finer than one double's own rounding there, so a
    unit's sum is still exact in its integers, within a tighter bound of the real sum than adding the doubles."""
    if largest is None or not math.isfinite(largest):
        return None
    bound = max(largest * rows, 1.0)
    scale = DECIMAL_DIGITS - (math.floor(math.log10(bound)) + 2)  # one digit of margin above the bound
    if scale < MIN_SCALE:
        return None
    scale = min(scale, DECIMAL_DIGITS - 2)
    if largest > 0:
        fits = math.floor(math.log10(ONE_BIGINT / largest))
        if fits >= MIN_SCALE:
            scale = min(scale, fits)
    return scale


def _unit_shape(shape: "MetricShape", names: dict, incomplete: set[str], unit: str) -> "MetricShape":
    columns = _filter_columns(shape, incomplete)
    rows = names[(None, columns)]

    def name(c: str | None) -> str:
        return rows if c is None else names[(c, columns)]

    covariates = tuple((name(x), name(w)) for x, w in shape.covariates)
    return replace(shape, num=name(shape.num), den=name(shape.den), covariates=covariates, unit=unit,
                   uptake=None if shape.uptake is None else name(shape.uptake))


# ---------------------------------------------------------------- the result


def annotate(summary: UnitSummary, diagnostics: dict, n: dict, checks: list["Check"], warnings: list[str],
             rows: int, few: Any = None, sequential: bool = False, complier: list[str] | None = None) -> None:
    """Say that units were analysed, what each unit-level column sums, and that the SRM check counts units."""
    n["units"] = summary.units
    n["rows_without_unit"] = summary.rows_without_unit
    if summary.rows_without_unit:
        warnings.append(f"{summary.rows_without_unit:,} of {rows:,} rows have no value in unit column "
                        f"{summary.column!r} (design.unit) and were dropped; fill them, or filter them out with "
                        "data.filter to make the choice explicit")
    if summary.double_sums:
        warnings.append(f"column(s) {', '.join(summary.double_sums)} hold values too large (or infinite) for exact "
                        "DECIMAL sums per unit: summed as DOUBLE, whose last bits may differ between reruns")
    diagnostics["unit"] = {
        "column": summary.column, "units": summary.units, "rows": rows,
        "rows_without_unit": summary.rows_without_unit, "rows_without_variant": summary.rows_without_variant,
        "max_rows_per_unit": summary.max_rows_per_unit, "unit_columns": summary.sums,
        "method": ("rows summed per unit and arm in the engine (GROUP BY unit, arm); every metric analysed as a "
                   "ratio of unit sums by the delta method (a mean metric: sum of the outcome over the unit's row "
                   "count), equal to a regression on arm dummies over the rows with a cluster-robust variance "
                   "clustered on the unit; CUPED covariates summed per unit over their own denominator "
                   "(covariate_denominator, else the unit's rows); with design.time a unit's period is its first"),
        "counts": "n.used, n.control, n.treatment, diagnostics.arms.units and the SRM check count units, not rows",
    }
    if isinstance(diagnostics.get("srm"), dict):
        diagnostics["srm"]["counts"] = "units"
    if "cumulative_method" in diagnostics:
        diagnostics["cumulative_method"]["counts"] = ("units, each with all its rows in the period of its first "
                                                      "exposure (rows_without_time counts units too)")
    for i, check in enumerate(checks):
        if check.name == "srm":
            checks[i] = replace(check, detail=f"{check.detail} (units of {summary.column!r}, not rows)")
    checks.append(_clusters(summary, diagnostics, few, sequential, complier or []))


def _clusters(summary: UnitSummary, diagnostics: dict, few: Any, sequential: bool, complier: list[str]) -> "Check":
    """``diagnostics.clusters`` and the ``clusters`` check: the delta method on units is a cluster-robust
    analysis, which needs enough units; below them the p-values and intervals come from the wild cluster
    bootstrap or randomization inference over units (``few_units``), and the check says so (passed null), or
    fails where neither could be used."""
    from causalcli.records import Check

    per_arm = dict(diagnostics["arms"]["units"])
    control = diagnostics["arms"]["control"]
    total, fewest = sum(per_arm.values()), min(per_arm.values())
    clusters = diagnostics["clusters"] = {
        "n_clusters": total, "treated_clusters": total - per_arm[control], "clusters_per_arm": per_arm,
        "column": summary.column, "thresholds": {"clusters": MIN_UNITS, "per_arm": MIN_UNITS_PER_ARM}}
    counted = f"{total:,} units of {summary.column!r} ({fewest:,} in the smallest arm)"
    if total >= MIN_UNITS and fewest >= MIN_UNITS_PER_ARM:
        return Check("clusters", True, f"{counted}: enough for the delta method on unit sums (cluster-robust)")
    why = (f"{counted}, fewer than {MIN_UNITS} (or {MIN_UNITS_PER_ARM} in an arm): the delta method's cluster-robust "
           "intervals are too narrow with so few units (MacKinnon and Webb 2017)")
    if sequential:
        return Check("clusters", False, f"{why}, and design.sequential's confidence sequences need many units; "
                                        "randomise more units, or analyse without design.sequential, where the wild "
                                        "cluster bootstrap and randomization inference over units apply")
    if few is None or not few.records:
        return Check("clusters", False, f"{why}, and the units are too many to fetch for the wild cluster bootstrap; "
                                        "randomise more units in the small arm or read the effects as indicative only")
    if "cumulative" in diagnostics:  # design.time: the points by period are the delta method's
        diagnostics["cumulative_method"]["few_units"] = ("the intervals by period are the delta method's, too narrow "
                                                        "with so few units; the final effects' are the bootstrap's")
    headline = next(iter(few.records.values()))
    clusters["crv1_se"] = headline["delta_method_se"]  # the delta method's: CRV1-like, std_error stays it
    clusters["method"] = headline["method"]
    clusters["wild" if headline["method"].startswith("wild") else "randomization"] = headline
    clusters["by_effect"] = few.records
    methods = sorted({r["method"] for r in few.records.values()})
    none = [label for label, r in few.records.items() if r["method"] == "none"]
    used = ", ".join(m for m in methods if m != "none")
    if complier:  # uptake: the complier effects' intervals are the delta method's, too narrow with few units
        return Check("clusters", False, f"{why}; the complier effects ({', '.join(complier[:3])}"
                                        f"{' and more' if len(complier) > 3 else ''}) keep the delta method's "
                                        "intervals, which no bootstrap replaces yet: randomise more units, or read "
                                        "them as indicative only" + (f"; the other effects come from {used}" if used
                                                                     else ""))
    if none:
        return Check("clusters", False, f"{why}; {len(none)} effect(s) have no p-value or interval (for example "
                                        f"{none[0]}: {few.records[none[0]]['reason']})"
                                        + (f"; the others come from {used}" if used else ""))
    return Check("clusters", None, f"analytic inference cannot be trusted ({why}); the p-values and intervals come "
                                   f"from {used} over units instead (diagnostics.clusters.by_effect)")
