"""Sufficient statistics of an experiment, computed by DuckDB in one pass, and the tests built on them.

The pass
--------
Per arm, DuckDB returns the count, the sums of every column and the sums of the
products of every pair of columns a metric needs, never the rows. Each column is
first centred at a value ``K`` taken from the first rows of the data (a
shifted-data algorithm), so that variances and CUPED coefficients computed from
the sums lose no digits to cancellation.

The sums must be the same whatever order DuckDB's threads add rows in (reruns
are byte-identical). Every summand ``t`` is therefore rounded to a multiple of
a power of two ``q``, with the two-operation split ``(t + s) - s`` where
``s = 1.5 * 2**p`` and ``q = 2**(p - 52)`` (Rump, Ogita and Oishi 2008,
"Accurate floating-point summation", the ExtractScalar step). When every ``|t|``
stays below ``2**(p-1)`` and the sum of ``|t|`` below ``2**(p+1)``, every partial
sum is a multiple of ``q`` below ``2**53 * q``, so every addition is exact and the
total does not depend on the order. With a time column the pass groups by arm and
period: each period's sum is exact in the same way, and so is every sum of period
sums (a sum over a subset of the rows, so within the same bound), which makes the
arm totals and the cumulative sums up to each period exact and order-independent
too. Centres lie on a power-of-two grid, so integer
columns are already multiples of ``q`` and are summed without the split. ``p`` is chosen from the first rows with a safety margin; after the pass
the bound is proved from the sums of squares (Cauchy-Schwarz bounds the sums of
``|t|`` of linear and cross terms) and, in the rare case it fails (sorted or very
heavy-tailed data), the pass is repeated once with bounds from the first pass,
which always hold. ``q`` is about ``2**-47`` times the sum of ``|t|``, so the
rounding costs far less than double-precision summation itself.

Large Parquet files
-------------------
From ``BLOCKED_ROWS`` rows, when the study's rows are a Parquet file as it is (no filter, no
renames, no time or segment column), plain double sums per arm and row-group block replace the
fixed-point pass: ``causalcli.designs.experiment.blocked``.

Statistics
----------
Every metric is a ratio of means ``mean(num) / mean(den)`` (a mean metric has
``den = 1``), with covariates that are ratios too. The variance of a ratio of
means and the covariances between ratios come from the delta method (Deng,
Knoblich and Lu 2018); CUPED and regression adjustment use one coefficient
vector pooled over the two arms compared (tea-tasting's convention; Deng, Xu,
Kohavi and Walker 2013), treated as fixed. These formulas are the ones
tea-tasting 1.14 uses (``tea_tasting.aggr.Aggregates.ratio_var`` and
``ratio_cov``, ``tea_tasting.metrics.mean.RatioOfMeans``), generalised from one
covariate to several.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from fractions import Fraction
from typing import TYPE_CHECKING, Any

from causalcli.data.exact_sums import round_to_grid, split_constant
from causalcli.data.table import TABLE, quote_identifier
from causalcli.designs.experiment.grouping import PassExtras, binary_counts as _binary_counts
from causalcli.designs.experiment.sums import (  # noqa: F401 - other modules read them from stats
    ArmSums, Group, add_sums, incomplete_rows, lit)
from causalcli.errors import DataError, EstimationError

if TYPE_CHECKING:  # pragma: no cover
    from causalcli.data.table import Table

HEAD_ROWS = 10_000   # rows read first, for centres and summation bounds
SAFETY = 4.0         # margin on the bounds estimated from the first rows
RETRY_SAFETY = 4.0   # margin on bounds taken from a completed pass (always enough)
BLOCKED_ROWS = 1 << 22  # from this many rows a Parquet file read as is is summed per row-group block
MAX_BLOCKS = 4096       # more blocks (irregular row groups): the fixed-point pass instead
EXACT_SUMMATION = "exact fixed-point sums of centred terms (order-independent)"
BLOCKED_SUMMATION = ("double sums per arm and row-group block of centred terms, added with math.fsum "
                     "(the same bits for any number of threads)")

# Said once per study when a metric column has missing values; the design replaces it by one line per metric
# naming the rows each leaves out.
MISSING_METRIC_NOTE = "missing values (NULL or NaN) in metric columns: each metric uses its complete rows"
INTEGER_TYPES = ("TINYINT", "SMALLINT", "INTEGER", "BIGINT", "UTINYINT", "USMALLINT", "UINTEGER", "UBIGINT",
                 "BOOLEAN")  # summed exactly as they are (no rounding split)


# ---------------------------------------------------------------- sufficient statistics


@dataclass
class Statistics:
    """What the pass returns: sums per group and arm, the centres and how they were computed."""

    centres: dict[str, float]
    groups: dict[str | None, dict[Any, ArmSums]]  # group metric -> arm value -> sums
    arm_counts: dict[Any, int]                    # rows per arm (every row with a variant)
    missing_variant: int
    caps: dict[str, float]
    passes: int
    complete_cases_by_metric: bool
    notes: list[str] = field(default_factory=list)
    arm_order: tuple = ()  # arms in order of first appearance in the data
    # with a time column: period -> group metric -> arm -> sums of that period alone (periods in order)
    periods: dict[Any, dict[str | None, dict[Any, ArmSums]]] = field(default_factory=dict)
    missing_period: int = 0  # rows with a variant but no period
    summation: str = EXACT_SUMMATION
    # with segments: segment column -> value -> group metric -> arm -> sums (causalcli.designs.experiment.segments)
    segments: dict[str, dict[Any, dict[str | None, dict[Any, ArmSums]]]] = field(default_factory=dict)
    missing_segment: dict[str, int] = field(default_factory=dict)  # rows with a variant but no value, per column
    not_binary: dict[str, int] = field(default_factory=dict)  # rows whose value is not 0 or 1, per column asked


@dataclass(frozen=True)
class Moments:
    """Means and sample covariances (n - 1) of the columns of a group, for one arm or pooled arms."""

    n: int
    mean: dict[str, float]
    cov: dict[tuple[str, str], float]

    def m(self, col: str | None) -> float:
        return 1.0 if col is None else self.mean[col]

    def c(self, a: str | None, b: str | None) -> float:
        if a is None or b is None:
            return 0.0
        return self.cov[(a, b)] if (a, b) in self.cov else self.cov[(b, a)]


def moments(sums: list[ArmSums], centres: dict[str, float], pairs: tuple[tuple[str, str], ...]) -> Moments:
    """Exact pooling of arms (rational arithmetic on the exact sums), then floats."""
    n = sum(a.n for a in sums)
    S = {c: sum((Fraction(a.s[c]) for a in sums), Fraction(0)) for c in sums[0].s}
    mean = {c: float(Fraction(centres[c]) + S[c] / n) for c in S}
    cov = {}
    for a, b in pairs:
        SS = sum((Fraction(x.ss[(a, b)]) for x in sums), Fraction(0))
        cov[(a, b)] = float((SS - S[a] * S[b] / n) / (n - 1)) if n > 1 else float("nan")
    return Moments(n, mean, cov)


def compute_statistics(table: "Table", treatment: str, metric_columns: dict[str, tuple[str, ...]],
                       metric_pairs: dict[str, tuple[tuple[str, str], ...]], float_columns: set[str],
                       cap_quantile: float | None, capped: set[str],
                       integer_columns: set[str] = frozenset(), period: str | None = None,
                       parquet: str | None = None, segments: tuple[str, ...] = (),
                       binary: tuple[str, ...] = (), grouped: bool = False,
                       head: tuple[dict[str, float], dict[str, float]] | None = None,
                       histogram: Any = None) -> Statistics:
    """Run the pass (and, only when needed, a quantile pass for capping or a repeat pass).

    ``metric_columns`` and ``metric_pairs`` list, per metric, its columns and the pairs whose product sums it needs.
    With ``period`` (a numeric column: period numbers) the same pass groups by arm and period and also returns
    the sums of each period; with ``segments`` (columns) it also groups by their values and returns the sums of
    each value of each column (sums over subsets of rows, exact like the periods'). ``binary``: columns whose
    values other than 0 and 1 are counted (proportions). ``parquet``: the file, when the study's rows are that
    Parquet file as it is (large files are then summed per row-group block). ``grouped``: ``study_data`` is a
    GROUP BY view (rows summed to units), whose rows have no order: centres come from the whole view (or
    ``head``: centres and second moments found by a pass of the caller's) and arms are ordered by value, as in
    an engine. ``histogram``: a ``quantile_pass.FirstHistogram``, computed by the same pass (GROUPING SETS).
    """
    caps: dict[str, float] = {}
    if cap_quantile is not None and capped:
        cols = sorted(capped)
        # NaN sorts above every number in DuckDB: it is a missing value here, not the top of the tail
        quantiles = []
        for c in cols:
            value = f"CAST({quote_identifier(c)} AS DOUBLE)"
            quantiles.append(f"quantile_disc({value}, {lit(cap_quantile)}) FILTER (WHERE NOT isnan({value}))")
        row = table.sql(f"SELECT {', '.join(quantiles)} FROM {TABLE}")[0]
        caps = {c: float(v) for c, v in zip(cols, row) if v is not None}

    def expr(c: str) -> str:
        e = f"CAST({quote_identifier(c)} AS DOUBLE)"
        if c not in caps:
            return e
        # least() skips NULL and ranks NaN highest: a missing value must stay missing, not become the cap
        return f"CASE WHEN {e} IS NULL OR isnan({e}) THEN {e} ELSE least({e}, {lit(caps[c])}) END"

    all_cols = tuple(dict.fromkeys(c for cs in metric_columns.values() for c in cs))
    all_pairs = tuple(dict.fromkeys(p for ps in metric_pairs.values() for p in ps))
    unordered = table.engine is not None or grouped
    if head is not None:
        centres, second, head_arms = {c: head[0][c] for c in all_cols}, {c: head[1][c] for c in all_cols}, []
    else:
        centres, second, head_arms = _head_estimates(table, all_cols, expr, treatment, unordered)
    passes = 1 if unordered and head is None else 0  # an engine's centres come from a pass of their own
    notes: list[str] = []
    groups = [Group(None, all_cols, all_pairs)]
    complete_cases = False
    safety = SAFETY
    blocks = None
    if parquet and period is None and not segments:
        from causalcli.designs.experiment.blocked import blocked_pass, row_group_blocks

        blocks = row_group_blocks(table, parquet, all_cols, BLOCKED_ROWS, MAX_BLOCKS)
    if blocks is not None:
        passes += 1
        result, arm_counts, missing, incomplete, not_binary = blocked_pass(
            table, parquet, blocks, treatment, groups[0], centres, expr, _binary_counts(binary, expr, float_columns),
            histogram)
        if incomplete or _has_nan(result):  # complete cases per metric: the fixed-point passes below
            complete_cases = True
            groups = [Group(m, metric_columns[m], metric_pairs[m]) for m in metric_columns]
            notes.append(MISSING_METRIC_NOTE)
        else:
            _check_finite(result, table.file)
            return Statistics(centres, result, arm_counts, missing, caps, passes, complete_cases, notes,
                              _arm_order(table, treatment, head_arms, arm_counts, unordered),
                              summation=BLOCKED_SUMMATION, not_binary=not_binary)
    for _attempt in range(4):
        passes += 1
        result, arm_counts, missing, incomplete, by_period, missing_period, extra = _one_pass(
            table, treatment, groups, centres, second, safety, expr, float_columns, complete_cases, integer_columns,
            period, segments, _binary_counts(binary, expr, float_columns), histogram)
        if not complete_cases:
            if incomplete or _has_nan(result):
                complete_cases = True
                groups = [Group(m, metric_columns[m], metric_pairs[m]) for m in metric_columns]
                notes.append(MISSING_METRIC_NOTE)
                continue
        _check_finite(result, table.file)
        ok, new_centres, new_second = _verify(result, groups, centres, second, table.rows, safety)
        if ok:
            return Statistics(centres, result, arm_counts, missing, caps, passes, complete_cases, notes,
                              _arm_order(table, treatment, head_arms, arm_counts, unordered), by_period,
                              missing_period, segments=extra.by_segment, missing_segment=extra.missing_segment,
                              not_binary=extra.not_binary)
        centres, second, safety = new_centres, new_second, RETRY_SAFETY
        notes.append("the first rows underestimated the spread: the pass was repeated with bounds from the first pass")
    raise EstimationError("could not bound the sums for exact summation (values too extreme); cap the metrics "
                          "(design.options.cap_quantile) or filter extreme rows", key="design.metrics")


def _head_estimates(table: "Table", cols: tuple[str, ...], expr, treatment: str,
                    unordered: bool) -> tuple[dict[str, float], dict[str, float], list]:
    """Centres (means) and second moments about them from the first rows (insertion order is kept),
    and the arms in the order they first appear there."""
    import numpy as np

    if unordered:
        return _engine_estimates(table, cols, expr)
    select = ", ".join([*(f"{expr(c)} AS {quote_identifier('h' + str(i))}" for i, c in enumerate(cols)),
                        f"{quote_identifier(treatment)} AS arm"])
    out = table.numpy(f"SELECT {select} FROM {TABLE} LIMIT {HEAD_ROWS}")
    head_arms = list(dict.fromkeys(a for a in out["arm"].tolist() if a is not None))
    centres, second = {}, {}
    for i, c in enumerate(cols):
        v = np.asarray(out["h" + str(i)], dtype=np.float64)
        if np.ma.isMaskedArray(out["h" + str(i)]):
            v = np.asarray(out["h" + str(i)].compressed(), dtype=np.float64)
        v = v[np.isfinite(v)]
        if v.size == 0:
            centres[c], second[c] = 0.0, 1.0
            continue
        k = float(np.mean(v))
        # a constant column in the first rows: use the centre's scale so bounds are not zero
        centres[c], second[c] = _centre(k, float(np.mean((v - k) ** 2)))
    return centres, second, head_arms


def _engine_estimates(table: "Table", cols: tuple[str, ...], expr) -> tuple[dict[str, float], dict[str, float], list]:
    """Centres and second moments from the whole table, in the engine: an engine has no "first rows" (a
    parallel scan returns any), and rounding the centre to its grid makes the last bits of a parallel
    average irrelevant. No arm order: arms are then ordered by value (``_arm_order``)."""
    parts = [f"avg({expr(c)}), var_pop({expr(c)})" for c in cols]
    row = table.sql(f"SELECT {', '.join(parts)} FROM {TABLE}")[0]
    centres, second = {}, {}
    for i, c in enumerate(cols):
        k, v = row[2 * i], row[2 * i + 1]
        if k is None:
            centres[c], second[c] = 0.0, 1.0
            continue
        centres[c], second[c] = _centre(float(k), float(v or 0.0))
    return centres, second, []


def _arm_order(table: "Table", treatment: str, head_arms: list, arm_counts: dict, unordered: bool) -> tuple:
    """Every arm in order of first appearance: from the first rows, or (an arm first seen later) one more
    pass numbering the rows in insertion order, which DuckDB keeps; in another engine, by value."""
    order = [a for a in head_arms if a in arm_counts]
    if len(order) == len(arm_counts):
        return tuple(order)
    if unordered:  # rows in an engine (or groups of a GROUP BY) have no order of appearance
        return tuple(sorted(arm_counts, key=lambda a: (type(a).__name__, a)))
    q = quote_identifier(treatment)
    rows = table.sql(f"SELECT arm FROM (SELECT {q} AS arm, row_number() OVER () AS r FROM {TABLE}) "
                     "WHERE arm IS NOT NULL GROUP BY arm ORDER BY min(r)")
    return tuple(r[0] for r in rows)

def _grain(c: str, centres: dict[str, float], integer_columns: set[str]) -> float:
    """For an integer column, the power of two that every centred value is a multiple of; else 0.

    The centre is a dyadic float: its denominator is a power of two, and integers are
    multiples of any power of two up to 1.
    """
    if c not in integer_columns:
        return 0.0
    return min(1.0, 1.0 / Fraction(centres[c]).denominator)


def _centre(mean: float, variance: float) -> tuple[float, float]:
    """(centre, second moment) of a column: the second moment kept off zero at the mean's scale (a
    constant column), the centre rounded to its grid."""
    second = max(variance, (abs(mean) * 1e-6) ** 2, 1e-300)
    return _round_centre(mean, second), second


def _round_centre(k: float, second: float) -> float:
    """The centre rounded to a power-of-two grid about 1/1000 of the spread (``exact_sums.round_to_grid``):
    rounding each centred value to the summation quantum is then exact for integer and other coarse-grained
    columns, so no rounding error repeats row after row."""
    return round_to_grid(k, math.sqrt(second))


def _bounds(group: Group, second: dict[str, float], n: float, safety: float) -> tuple[dict, dict]:
    lin = {c: safety * n * math.sqrt(second[c]) for c in group.columns}
    prod = {(a, b): safety * n * math.sqrt(second[a] * second[b]) for a, b in group.pairs}
    return lin, prod


def _one_pass(table: "Table", treatment: str, groups: list[Group], centres: dict[str, float], second: dict[str, float],
              safety: float, expr, float_columns: set[str], complete_cases: bool, integer_columns: set[str],
              period: str | None = None, segments: tuple[str, ...] = (), binary: tuple = (), histogram: Any = None):
    cols = tuple(dict.fromkeys(c for g in groups for c in g.columns))
    idx = {c: i for i, c in enumerate(cols)}
    inner = [f"{quote_identifier(treatment)} AS arm"]
    if period is not None:
        inner.append(f"{quote_identifier(period)} AS period")
    inner += [f"{quote_identifier(c)} AS g{i}" for i, c in enumerate(segments)]
    inner += [f"({expr(c)} - {lit(centres[c])}) AS d{idx[c]}" for c in cols]
    inner += [b.inner for b in binary]
    conds = []
    if complete_cases:
        for gi, g in enumerate(groups):
            tests = []
            for c in g.columns:
                tests.append(f"{quote_identifier(c)} IS NOT NULL")
                if c in float_columns:
                    tests.append(f"NOT isnan({quote_identifier(c)})")
            inner.append(f"({' AND '.join(tests) or 'true'}) AS ok{gi}")  # no column: a quantile metric's group
            conds.append(f" FILTER (WHERE ok{gi})")
    else:
        conds = [""] * len(groups)
    keys = (["arm", "period"] if period is not None else ["arm"]) + [f"g{i}" for i in range(len(segments))]
    outer = [*keys, "count(*)"]
    if not complete_cases:  # rows with a NULL in some column (NaN shows in the sums)
        outer.append(incomplete_rows(len(cols)))
    layout = []  # (group index, kind, key)
    for gi, g in enumerate(groups):
        lin, prod = _bounds(g, second, table.rows, safety)
        if complete_cases:
            outer.append(f"count(*){conds[gi]}")
            layout.append((gi, "n", None))
        for c in g.columns:
            s, q = split_constant(lin[c], linear=True)
            if _grain(c, centres, integer_columns) >= q:  # already on the grid: summed exactly as it is
                outer.append(f"sum(d{idx[c]}){conds[gi]}")
            else:
                outer.append(f"sum((d{idx[c]} + {lit(s)}) - {lit(s)}){conds[gi]}")
            layout.append((gi, "s", c))
        for a, b in g.pairs:
            s, q = split_constant(prod[(a, b)])
            if _grain(a, centres, integer_columns) * _grain(b, centres, integer_columns) >= q:
                outer.append(f"sum(d{idx[a]} * d{idx[b]}){conds[gi]}")
            else:
                outer.append(f"sum((d{idx[a]} * d{idx[b]} + {lit(s)}) - {lit(s)}){conds[gi]}")
            layout.append((gi, "ss", (a, b)))
    outer += [b.count for b in binary]
    group_by = ", ".join(keys) if histogram is None else histogram.group_by(keys)  # the quantiles' histograms too
    if histogram is not None:
        inner, outer = inner + histogram.inner(), outer + histogram.outer()
    query = f"SELECT {', '.join(outer)} FROM (SELECT {', '.join(inner)} FROM {TABLE}) GROUP BY {group_by}"
    try:  # the quantiles' windows may return values of their own (quantile_pass.SampleWindows.run)
        rows = table.sql(query) if histogram is None else histogram.run(table, query)
    except Exception as exc:  # duckdb.Error: a value DuckDB cannot cast to DOUBLE, say
        raise DataError(f"cannot aggregate the metric columns: {str(exc).splitlines()[0]}", file=table.file) from None
    rows = rows if histogram is None else histogram.keep(rows)
    result: dict[str | None, dict[Any, ArmSums]] = {g.metric: {} for g in groups}
    arm_counts: dict[Any, int] = {}
    missing = 0
    missing_period = 0
    by_period: dict[Any, dict[str | None, dict[Any, ArmSums]]] = {}
    extra = PassExtras({c: {} for c in segments}, {c: 0 for c in segments}, {b.column: 0 for b in binary})
    incomplete = 0
    width = len(keys)
    for row in rows:
        arm, count = row[0], int(row[width])
        if arm is None:
            missing += count
            continue
        arm_counts[arm] = arm_counts.get(arm, 0) + count
        pos = width + 1
        if not complete_cases:
            incomplete += int(row[pos])
            pos += 1
        part = {g.metric: ArmSums(count, {}, {}) for g in groups}
        for gi, kind, key in layout:
            value = row[pos]
            pos += 1
            sums = part[groups[gi].metric]
            if kind == "n":
                sums.n = int(value)
            elif kind == "s":
                sums.s[key] = float(value) if value is not None else 0.0
            else:
                sums.ss[key] = float(value) if value is not None else 0.0
        _accumulate(result, arm, part)
        for b in binary:
            extra.not_binary[b.column] += int(row[pos])
            pos += 1
        if period is not None:
            when = row[1]
            if when is None or when != when:  # NULL or NaN: no period
                missing_period += count
            else:
                _accumulate(by_period.setdefault(when, {m: {} for m in part}), arm, part)
        for i, column in enumerate(segments):
            value = row[width - len(segments) + i]
            if value is None or value != value:  # NULL or NaN: in no segment of this column
                extra.missing_segment[column] += count
            else:
                _accumulate(extra.by_segment[column].setdefault(value, {m: {} for m in part}), arm, part)
    by_period = {k: by_period[k] for k in sorted(by_period)}
    return result, arm_counts, missing, incomplete, by_period, missing_period, extra


def _accumulate(into: dict[str | None, dict[Any, ArmSums]], arm: Any, part: dict[str | None, ArmSums]) -> None:
    """Add one result row's sums to a table of sums by group metric and arm (exact: module docstring)."""
    for metric, sums in part.items():
        previous = into[metric].get(arm)
        into[metric][arm] = sums if previous is None else add_sums(previous, sums)





def _has_nan(result) -> bool:
    return any(math.isnan(v) for g in result.values() for a in g.values() for v in [*a.s.values(), *a.ss.values()])


def _check_finite(result, file: str) -> None:
    for g in result.values():
        for a in g.values():
            for c, v in a.s.items():
                if not math.isfinite(v):
                    raise DataError(f"metric column {c!r} holds infinite values; filter them out with data.filter",
                                    file=file, column=c, key="design.metrics")
            for (c, d), v in a.ss.items():
                if not math.isfinite(v):
                    raise DataError(f"metric column {c!r} or {d!r} holds values too large to square; cap them "
                                    "(design.options.cap_quantile) or rescale", file=file, column=c, key="design.metrics")


def _verify(result, groups: list[Group], centres, second, rows: int, safety: float):
    """Prove that every summation was exact; else return centres and bounds for a repeat that will be."""
    ok = True
    new_centres, new_second = dict(centres), dict(second)
    for g in groups:
        arms = list(result[g.metric].values())
        n = sum(a.n for a in arms)
        if not arms or n == 0:
            continue
        lin, prod = _bounds(g, second, rows, safety)
        # sum of d**2 over every arm, plus the rounding slack: bounds sum |t| of every term
        sq = {}
        for c in g.columns:
            _, q = split_constant(prod[(c, c)])
            sq[c] = sum(a.ss[(c, c)] for a in arms) + rows * q
            if sq[c] > _limit(prod[(c, c)]):
                ok = False
        for (a, b), bound in prod.items():
            if math.sqrt(sq[a] * sq[b]) > _limit(bound):
                ok = False
        for c, bound in lin.items():
            term_limit = _limit(bound, linear=True)
            if math.sqrt(rows * sq[c]) > 4 * term_limit * (1 - 2.0 ** -40) or math.sqrt(sq[c]) > term_limit:
                ok = False
        for c in g.columns:
            new_centres[c] = _round_centre(centres[c] + sum(a.s[c] for a in arms) / n, max(sq[c] / n, 1e-300))
            new_second[c] = max(sq[c] / n, 1e-300)
    return ok, new_centres, new_second


def _limit(bound: float, linear: bool = False) -> float:
    """The proved limit ``2**(p-1)`` of the split constant chosen for ``bound``."""
    s, _ = split_constant(bound, linear)
    return s / 3.0
