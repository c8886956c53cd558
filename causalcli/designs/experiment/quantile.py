"""Quantile metrics of an experiment: the difference of a quantile between arms, from order statistics.

Definition
----------
The q-quantile of an arm's ``n`` complete values is the order statistic ``X_(k)``, ``k = ceil(n q)``
(computed as ``n * q`` in double precision, as numpy does), which is numpy's ``quantile(x, q,
method="inverted_cdf")`` (Hyndman and Fan 1996, type 1): the smallest value whose share of values
at or below it reaches ``q``. It is always a value of the data.

Interval
--------
The method GrowthBook documents for quantile tests (Deng, Knoblich and Lu 2018, section 4; Yao, Li and
Lu 2024, Algorithm 1, without clustering): with ``z = z_(1 - alpha/2)`` of the study's ``conf_level``
and ``h = z sqrt(q (1 - q) / n)``, the order statistics ``L`` and ``U`` at the quantile levels ``q - h``
and ``q + h`` (same definition; the ranks ``n q -/+ z sqrt(n q (1 - q))``, rounded up) bound a
distribution-free interval of the quantile, so ``(U - L) / (2 z)`` estimates its standard error. The
two arms are independent: the difference's variance is the sum of the arms' squared errors, and the
relative effect ``Q_t / Q_c - 1`` takes the delta method (or the log-ratio interval) as mean metrics
do, with ``n SE^2`` in place of a per-unit variance. The interval needs ``0 < q - h`` and ``q + h < 1``,
that is ``n > z^2 max(q / (1 - q), (1 - q) / q)`` per arm (GrowthBook's limit: 381 units for q = 0.99).

Computation in the engine (no row is loaded)
--------------------------------------------
The order statistics come exactly, in one or two grouped passes written once in DuckDB's SQL (rendered
for Spark and PostgreSQL by ``causalcli.data.engine``):

0. on a large table of rows (by segment too, on embedded DuckDB), windows predicted from the first rows
   and counted by the statistics pass replace the histogram (``quantile_pass.SampleWindows``); on embedded
   DuckDB the pass also returns the values inside the windows (``list() FILTER``, when the first rows
   predict at most ``FETCH_ROWS`` of them), from which numpy reads the ranks, so no query follows the
   pass (step 2 is skipped); a rank outside its window falls back to:
1. one histogram of ``FIRST_BINS`` bins over a range shared by every group (values outside it in two end
   bins), grouped by group and bin: the groups' counts and, for each rank wanted, its bin, whose minimum
   and maximum bound a window of values known to hold it, with the count of values below the window. It
   comes out of the statistics pass itself (``quantile_pass``: GROUPING SETS); by segment, from a query
   of its own grouped by arm, segment values and bin (``MARGIN_BINS``), whose margins give each arm and
   each segment value (groups that leave a key free hold ``ANY`` there);
2. when the windows hold at most ``FETCH_ROWS`` values in all, one query fetches them (filtered on their
   value ranges, numbered by window in SQL) and numpy sorts them;
3. otherwise passes cut every window into ``BINS`` equal bins and return only each rank's bin until they
   fit. Bins are ``floor`` of a monotone function of the value, so each is a run of the sorted values; a
   bin whose minimum equals its maximum gives the value; each pass drops at least the window's smallest
   or largest value, so the search ends.

On 100M rows of a smooth distribution that is the statistics pass alone (an engine adds one fetch), holding
a few million values at most (``FETCH_ROWS``, as the first rows predict them), however many the rows.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from causalcli.data.sql import TABLE, quote_identifier, quote_literal
from causalcli.designs.experiment.quantile_ranges import in_ranges, merged, take_ranks
from causalcli.errors import DataError, EstimationError, SpecError

if TYPE_CHECKING:  # pragma: no cover
    from causalcli.data.table import Table
    from causalcli.designs.experiment.analysis import Comparison
    from causalcli.spec.loading import LoadedSpec
    from causalcli.spec.models import Study

class _Any:
    """A key that a group leaves free (an arm's histogram beside those of its segment values)."""

    def __repr__(self) -> str:
        return "ANY"


ANY = _Any()
FIRST_BINS = 16384   # bins of the first pass, one range for all groups (every non-empty bin comes back)
MARGIN_BINS = 4096   # the same by arm and segment values: fewer bins, as many more groups come back
BINS = 4096          # bins per window in the later passes (only each rank's bin comes back)
FETCH_ROWS = 4_000_000  # windows holding at most this many values in all are fetched and sorted with numpy
MAX_PASSES = 64      # a histogram pass at least drops one distinct value per window: never reached in practice
DEFINITION = 'order statistic X_(k), k = ceil(n q): numpy.quantile(method="inverted_cdf"), Hyndman-Fan type 1'
METHOD = ("order-statistic interval (Deng, Knoblich and Lu 2018; the method GrowthBook documents): the order "
          "statistics L, U at the levels q -/+ z sqrt(q (1 - q) / n) give each arm's standard error (U - L) / "
          "(2 z); the arms' variances add; relative effects by the delta method (or log ratio) as for means")


@dataclass(frozen=True)
class ArmQuantile:
    """One arm's quantile and the order statistics of its interval."""

    n: int
    level: float                       # q
    ranks: tuple[int, int, int]        # 1-based ranks of L, the quantile, U
    values: tuple[float, float, float]  # X_(rank) for each
    z: float                           # the normal quantile that set the ranks

    @property
    def estimate(self) -> float:
        return self.values[1]

    @property
    def std_error(self) -> float:
        return (self.values[2] - self.values[0]) / (2 * self.z)


def rank(n: int, level: float) -> int:
    """The 1-based rank of numpy's inverted-CDF quantile at ``level`` among ``n`` values."""
    return min(n, max(1, math.ceil(n * level)))


def interval_levels(n: int, level: float, z: float) -> tuple[float, float]:
    half = z * math.sqrt(level * (1 - level) / n)
    return level - half, level + half


def minimum_units(level: float, z: float) -> int:
    """The fewest units an arm needs for the interval: n > z^2 max(q / (1 - q), (1 - q) / q)."""
    bound = z * z * max(level / (1 - level), (1 - level) / level)
    n = math.floor(bound) + 1
    while True:  # the bound in floating point, as interval_levels computes it
        lower, upper = interval_levels(n, level, z)
        if lower > 0 and upper < 1:
            return n
        n += 1


def ranks_for(n: int, level: float, z: float) -> tuple[int, int, int] | None:
    """Ranks of L, the quantile and U; None when the arm is too small for the interval."""
    lower, upper = interval_levels(n, level, z)
    if not (lower > 0 and upper < 1):
        return None
    return rank(n, lower), rank(n, level), rank(n, upper)


# ---------------------------------------------------------------- the spec


def quantile_levels(metrics: list[Any]) -> dict[str, float]:
    """Metric name -> quantile level, for the quantile metrics."""
    return {m.name: float(m.quantile) for m in metrics if getattr(m, "quantile", None) is not None}


def check_quantile_spec(study: "Study", metrics: list[Any], spec: "LoadedSpec") -> None:
    """Combinations not built for quantile metrics: exit 2, naming the key."""
    levels = quantile_levels(metrics)
    if not levels:
        return
    file = spec.source.display
    name = next(iter(levels))
    design = study.design
    if getattr(design, "sequential", None) is not None:
        raise SpecError(f"quantile metric {name!r} has a fixed-horizon interval only (the order-statistic interval "
                        "is no confidence sequence: peeking would inflate its error); remove design.sequential, or "
                        "move the quantile metric to a study of its own (causalcli estimate takes several specs)",
                        file=file, key="design.sequential")
    if design.time is not None and metrics[0].name in levels:
        raise SpecError(f"the first metric {metrics[0].name!r} is a quantile metric, but design.time's cumulative "
                        "effect is computed for the first metric from running sums, which quantiles do not have; "
                        "list a mean or ratio metric first", file=file, key="design.metrics[0].quantile")


def refuse_in_plan(metrics: list[Any], spec: "LoadedSpec") -> None:
    """`causalcli plan` sizes means, proportions and ratios; a quantile metric would be sized as a mean."""
    for i, m in enumerate(metrics):
        if getattr(m, "quantile", None) is not None:
            raise SpecError(f"plan does not size quantile metrics yet ({m.name!r}, q = {m.quantile:g}): its variance "
                            "depends on the density at the quantile; remove the metric from the plan's spec",
                            file=spec.source.display, key=f"design.metrics[{i}].quantile")


# ---------------------------------------------------------------- the analysis


def quantile_tests(data: "QuantileData", metric: str, control: Any, arm: Any, label: str, notes: list[str],
                   conf: float, opts: Any) -> tuple["Comparison", Any, Any, dict[str, Any]]:
    """One metric, control against one arm: the Comparison, its absolute and relative tests (as for a mean
    metric), its entries of diagnostics.metrics, and a note in ``notes`` when the interval has zero width."""
    from causalcli.designs.experiment.analysis import absolute, relative_delta, relative_log

    qs = data.arms[metric]
    note = zero_width_note(f"{metric}/{label}", qs[control], qs[arm])
    if note:
        notes.append(note)
    extra = {"quantile": qs[arm].level, "control": describe(qs[control]), "treatment": describe(qs[arm])}
    c = quantile_comparison(qs[control], qs[arm], metric, label)
    relative = relative_log if opts.relative_ci == "log" else relative_delta
    return c, absolute(c, conf, opts.distribution), relative(c, conf, opts.distribution), extra


def cell_tests(data: "QuantileData", metric: str, cell: tuple[str, Any], control: Any, arm: Any, conf: float,
               opts: Any) -> tuple[Any, Any]:
    """The absolute and relative tests of one segment value (``cell``: column, value); all NaN when an arm of
    the value has too few units for the interval."""
    from causalcli.designs.experiment.analysis import Test, absolute, relative_delta, relative_log

    arms = data.cells[metric].get(cell, {})
    if arms.get(control) is None or arms.get(arm) is None:
        nan = float("nan")
        empty = Test(nan, nan, nan, nan, nan, None)
        return empty, empty
    c = quantile_comparison(arms[control], arms[arm], metric, str(cell))
    relative = relative_log if opts.relative_ci == "log" else relative_delta
    return absolute(c, conf, opts.distribution), relative(c, conf, opts.distribution)


def quantile_comparison(control: ArmQuantile, treatment: ArmQuantile, metric: str, arm: str) -> "Comparison":
    """The two arms' quantiles as a Comparison: means are the quantiles, per-unit variances ``n SE^2``, so that
    ``analysis.absolute`` and the relative intervals combine them as for a mean metric."""
    from causalcli.designs.experiment.analysis import Comparison

    vc = control.n * control.std_error ** 2
    vt = treatment.n * treatment.std_error ** 2
    qc, qt = control.estimate, treatment.estimate
    return Comparison(metric, arm, control.n, treatment.n, qc, qt, qc, qt, vc, vt, vc, vt, ())


def describe(arm: ArmQuantile) -> dict[str, Any]:
    """One arm's order statistics, for diagnostics.metrics."""
    lower, upper = interval_levels(arm.n, arm.level, arm.z)
    return {"n": arm.n, "quantile": arm.estimate, "std_error": arm.std_error,
            "ranks": {"lower": arm.ranks[0], "quantile": arm.ranks[1], "upper": arm.ranks[2]},
            "levels": {"lower": lower, "upper": upper},
            "order_statistics": {"lower": arm.values[0], "quantile": arm.values[1], "upper": arm.values[2]}}


def zero_width_note(label: str, control: ArmQuantile, treatment: ArmQuantile) -> str | None:
    if control.std_error == 0 and treatment.std_error == 0:
        return (f"{label}: the order statistics around the quantile are tied in both arms (one value repeated), "
                "so the interval has zero width and no p-value: the order-statistic method cannot measure the "
                "uncertainty of a quantile that sits on a repeated value")
    return None


# ---------------------------------------------------------------- the engine


@dataclass
class _Window:
    """Values of one group in ``[lo, hi]``: ``below`` of the group's values are smaller, ``count`` inside."""

    group: tuple
    lo: float
    hi: float
    below: int
    count: int


@dataclass
class OrderStatistics:
    """What the passes return: per group, its count and the values at the ranks asked for."""

    counts: dict[tuple, int]
    values: dict[tuple, dict[int, float]]
    passes: int
    fetched: int  # values of the windows returned by a fetch query and sorted in Python


def order_statistics(table: "Table", keys: list[str], column: str, ranks_of, where: str | None = None,
                     start: tuple[float, float] | None = None, key: str = "design.metrics",
                     first: dict[tuple, list] | None = None, margins: bool = False,
                     inside: dict[tuple, Any] | None = None) -> OrderStatistics:
    """Exact order statistics of ``column`` per group of ``keys`` (column names; the first must be non-null).

    ``ranks_of(group, n)`` gives the 1-based ranks wanted in a group of ``n`` complete values (it may raise).
    ``where``: an extra SQL condition on the study's columns (a segment, say). ``start``: a range that holds
    most values (values outside it are counted too), else one pass finds the minimum and maximum. ``first``:
    the first histogram, already computed (by the statistics pass: ``quantile_pass``): group -> sorted
    ``(bin, count, min, max)``, where a group may leave keys free (``ANY``). Rows with a missing
    value (NULL or NaN) in ``column`` or a NULL first key are left out. ``margins``: the groups are the first
    key alone and with each other key alone (the others ``ANY``), not every combination of keys. ``inside``: with
    ``first``, each group's values inside the parts of ``first`` that have bounds, as the statistics pass returned
    them (``quantile_pass.SampleWindows.inside``): the ranks are read from them, with no query.
    """
    from causalcli.designs.experiment.stats import lit

    names = [f"k{i}" for i in range(len(keys))]
    value = f"CAST({quote_identifier(column)} AS DOUBLE)"
    conds = [f"{quote_identifier(keys[0])} IS NOT NULL", f"{value} IS NOT NULL", f"NOT isnan({value})"]
    if where:
        conds.append(f"({where})")
    rows_sql = (f"SELECT {', '.join(f'{quote_identifier(k)} AS {n}' for k, n in zip(keys, names))}, {value} AS v "
                f"FROM {TABLE} WHERE {' AND '.join(conds)}")
    passes = fetched = 0
    if first is None:
        if start is None or not (math.isfinite(start[0]) and math.isfinite(start[1])):
            passes += 1
            start = _run(table, f"SELECT min(v), max(v) FROM ({rows_sql})", column, key)[0]
            if start[0] is None:
                return OrderStatistics({}, {}, passes, fetched)
        bins = MARGIN_BINS if margins and len(keys) > 1 else FIRST_BINS
        first = _first_pass(table, rows_sql, names, float(start[0]), float(start[1]), column, key, bins)
        passes += 1
        if margins:
            first = _margins(first, len(keys))
    counts: dict[tuple, int] = {}
    values: dict[tuple, dict[int, float]] = {}
    targets: dict[tuple[tuple, int], _Window] = {}
    for group, parts in first.items():
        counts[group] = n = sum(p[1] for p in parts)
        values[group] = {}
        before, i = 0, 0
        for r in sorted(set(ranks_of(group, n))):
            while before + parts[i][1] < r:
                before += parts[i][1]
                i += 1
            _, cnt, blo, bhi = parts[i]
            if blo == bhi:
                values[group][r] = blo
            else:
                targets[(group, r)] = _Window(group, blo, bhi, before, cnt)
    while targets:
        windows = list({(w.group, w.lo, w.hi): w for w in targets.values()}.values())
        if inside is not None:  # the statistics pass returned the windows' values
            take_ranks(inside, windows, targets, values, table, column, key)
            break
        if passes > MAX_PASSES:  # pragma: no cover - each pass shrinks every window
            raise EstimationError(f"could not locate the order statistics of {column!r} in {MAX_PASSES} passes",
                                  file=table.file, key=key, column=column)
        passes += 1
        if _rows_in(windows) <= FETCH_ROWS:
            fetched += _fetch(table, rows_sql, names, windows, targets, values, column, key)
            break
        for fixed in dict.fromkeys(_fixed(w.group) for w in windows):  # windows of one pattern never overlap
            passes += 1 if fixed != _fixed(windows[0].group) else 0
            part = {k: t for k, t in targets.items() if _fixed(t.group) == fixed}
            for k in part:
                del targets[k]
            _histogram(table, rows_sql, names, [w for w in windows if _fixed(w.group) == fixed], part, values,
                       column, key, lit)
            targets.update(part)
    return OrderStatistics(counts, values, passes, fetched)


def _fixed(group: tuple) -> tuple[int, ...]:
    """The keys a group fixes (the others are ``ANY``)."""
    return tuple(j for j, v in enumerate(group) if v is not ANY)


def _rows_in(windows: list[_Window]) -> int:
    """The values a fetch returns: windows of one arm over one range (the arm's, its segment values') once."""
    most: dict[tuple, int] = {}
    for w in windows:
        most[(w.group[0], w.lo, w.hi)] = max(most.get((w.group[0], w.lo, w.hi), 0), w.count)
    return sum(most.values())


def _margins(by_keys: dict[tuple, list], width: int) -> dict[tuple, list]:
    """Histograms by every key -> by the first key alone, and with each other key alone (NULL: no group)."""
    out: dict[tuple, dict[int, tuple]] = {}
    for group, parts in by_keys.items():
        free = (ANY,) * (width - 1)
        targets = [(group[0], *free)] + [(group[0], *free[:j], v, *free[j + 1:]) for j, v in enumerate(group[1:])
                                        if v is not None and v == v]
        for target in targets:
            bins = out.setdefault(target, {})
            for b, k, lo, hi in parts:
                k0, lo0, hi0 = bins.get(b, (0, lo, hi))
                bins[b] = (k0 + k, min(lo0, lo), max(hi0, hi))
    return {g: sorted((b, *v) for b, v in bins.items()) for g, bins in out.items()}


def _first_pass(table, rows_sql, names, lo, hi, column, key, bins_wanted) -> dict[tuple, list[tuple[int, int, float, float]]]:
    """One histogram over a range shared by every group, so the bin needs no CASE per group; values outside it
    in bins -1 and FIRST_BINS."""
    from causalcli.designs.experiment.stats import lit

    hi = max(hi, lo)
    bins = (f"CASE WHEN v < {lit(lo)} THEN -1 WHEN v > {lit(hi)} THEN {bins_wanted} ELSE "
            f"{bin_formula(lo, hi, bins_wanted, lit)} END")
    group_by = ", ".join(names)
    histogram = _run(table, f"SELECT {group_by}, b, count(*), min(v), max(v) FROM (SELECT {group_by}, {bins} AS b, v "
                            f"FROM ({rows_sql})) GROUP BY {group_by}, b", column, key)
    width = len(names)
    by_group: dict[tuple, list[tuple[int, int, float, float]]] = {}
    for row in histogram:
        by_group.setdefault(tuple(row[:width]), []).append(
            (int(row[width]), int(row[width + 1]), float(row[width + 2]), float(row[width + 3])))
    return {g: sorted(parts) for g, parts in by_group.items()}


def _run(table: "Table", query: str, column: str, key: str) -> list[tuple]:
    try:
        return table.sql(query)
    except Exception as exc:  # an engine's or DuckDB's error: a value that is not a number, say
        from causalcli.data.engine import hide_connections
        from causalcli.data.sql import first_line

        raise DataError(f"cannot compute the quantiles of {column!r}: {hide_connections(first_line(exc))}",
                        file=table.file, key=key, column=column) from None


def _match(names: list[str], group: tuple) -> str:
    """SQL that holds for the rows of ``group`` (its key values written as literals)."""
    from causalcli.designs.experiment.stats import lit

    parts = []
    for name, v in zip(names, group):
        if v is ANY:  # a key the group leaves free
            continue
        if v is None:
            parts.append(f"{name} IS NULL")
        elif isinstance(v, bool):
            parts.append(f"{name} = {'TRUE' if v else 'FALSE'}")
        elif isinstance(v, int):
            parts.append(f"{name} = {v}")
        elif isinstance(v, float):
            parts.append(f"{name} = {lit(v)}")
        elif isinstance(v, str):
            parts.append(f"{name} = {quote_literal(v)}")
        else:  # a date or a decimal arm: compared as text, which the engine wrote for the same value
            parts.append(f"CAST({name} AS VARCHAR) = {quote_literal(str(v))}")
    return " AND ".join(parts)


def _ranges(windows: list[_Window]) -> str:
    """SQL true for values in some window: the windows' ranges, merged where they overlap."""
    return in_ranges("v", merged([(w.lo, w.hi) for w in windows]))


def _windowed(rows_sql: str, names: list[str], windows: list[_Window], lit) -> str:
    """The rows inside a window, with the window's number ``w`` (windows of a group never overlap). The value
    ranges alone filter first: the CASE on the groups then runs on the few rows left."""
    ranges = _ranges(windows)
    cases = " ".join(f"WHEN {_match(names, w.group)} AND v >= {lit(w.lo)} AND v <= {lit(w.hi)} THEN {i}"
                     for i, w in enumerate(windows))
    return (f"SELECT w, v FROM (SELECT CASE {cases} END AS w, v FROM ({rows_sql}) WHERE {ranges}) "
            "WHERE w IS NOT NULL")


def bin_formula(lo: float, hi: float, bins: int, lit, v: str = "v") -> str:
    """The bin of a value in ``[lo, hi]``: floor of a monotone function of the value, in 0 .. bins - 1.

    Halves, so that ``hi - lo`` cannot overflow; a range too narrow for the scale to be finite (or empty)
    splits its smallest value from the rest."""
    half = hi * 0.5 - lo * 0.5
    scale = bins / half if half > 0 else math.inf
    if not math.isfinite(scale):
        return f"CASE WHEN {v} = {lit(lo)} THEN 0 ELSE {bins - 1} END"
    return f"least({bins - 1}, CAST(floor(({v} * 0.5 - {lit(lo * 0.5)}) * {lit(scale)}) AS BIGINT))"


def _histogram(table, rows_sql, names, windows, targets, values, column, key, lit) -> None:
    """One pass: for each rank, its bin of its window; the bins become the windows (or give the value)."""
    index = {(w.group, w.lo, w.hi): i for i, w in enumerate(windows)}
    wanted = sorted({(index[(t.group, t.lo, t.hi)], r - t.below) for (_, r), t in targets.items()})
    bins = f"CASE w {' '.join(f'WHEN {i} THEN {bin_formula(w.lo, w.hi, BINS, lit)}' for i, w in enumerate(windows))} END"
    query = (f"WITH h AS (SELECT w, b, count(*) AS cnt, min(v) AS lo, max(v) AS hi FROM "
             f"(SELECT w, {bins} AS b, v FROM ({_windowed(rows_sql, names, windows, lit)})) GROUP BY w, b), "
             "c AS (SELECT w, b, cnt, lo, hi, CAST(sum(cnt) OVER (PARTITION BY w ORDER BY b) AS BIGINT) AS upto "
             "FROM h) "
             "SELECT c.w, t.r, c.cnt, c.lo, c.hi, c.upto - c.cnt FROM c JOIN (VALUES "
             f"{', '.join(f'({i}, {r})' for i, r in wanted)}) AS t(w, r) ON c.w = t.w AND c.upto - c.cnt < t.r "
             "AND c.upto >= t.r")
    found = {(int(row[0]), int(row[1])): row[2:] for row in _run(table, query, column, key)}
    for (group, r), t in list(targets.items()):
        hit = found.get((index[(t.group, t.lo, t.hi)], r - t.below))
        if hit is None:  # pragma: no cover - the counts of pass 1 and this pass disagree: data changed under us
            raise EstimationError(f"the values of {column!r} changed between passes", file=table.file, key=key,
                                  column=column)
        cnt, lo, hi, before = int(hit[0]), float(hit[1]), float(hit[2]), int(hit[3])
        if lo == hi:
            values[group][r] = lo
            del targets[(group, r)]
        else:
            targets[(group, r)] = _Window(group, lo, hi, t.below + before, cnt)


def _fetch(table, rows_sql, names, windows, targets, values, column, key) -> int:
    """The values of the windows, sorted with numpy: every remaining rank found. The query filters on the
    windows' value ranges alone (which the engine pushes down to the scan), then numbers each row's window, one
    column per pattern of keys (windows of one pattern never overlap; a row may be in an arm's window and in a
    segment value's)."""
    import numpy as np

    from causalcli.designs.experiment.stats import lit

    ranges = _ranges(windows)
    patterns: dict[tuple[int, ...], list[int]] = {}
    for i, w in enumerate(windows):
        patterns.setdefault(_fixed(w.group), []).append(i)
    cases = []
    for p, members in enumerate(patterns.values()):
        whens = " ".join(f"WHEN {_match(names, windows[i].group) or 'TRUE'} AND v >= {lit(windows[i].lo)} AND v <= "
                         f"{lit(windows[i].hi)} THEN {i}" for i in members)
        cases.append(f"COALESCE(CASE {whens} END, -1) AS w{p}")
    try:
        got = table.numpy(f"SELECT {', '.join(cases)}, v FROM ({rows_sql}) WHERE {ranges}")
    except Exception:  # an engine's or DuckDB's error: as _run reports it
        _run(table, f"SELECT {', '.join(cases)}, v FROM ({rows_sql}) WHERE {ranges}", column, key)
        raise
    v = np.asarray(got["v"], dtype=np.float64)
    sorted_values: dict[int, np.ndarray] = {}
    for p, members in enumerate(patterns.values()):
        number = np.asarray(got[f"w{p}"])
        for i in members:
            sorted_values[i] = np.sort(v[number == i])
            if len(sorted_values[i]) != windows[i].count:  # pragma: no cover - pass 1 and this pass disagree
                raise EstimationError(f"the values of {column!r} changed between passes", file=table.file, key=key,
                                      column=column)
    index = {(w.group, w.lo, w.hi): i for i, w in enumerate(windows)}
    for (group, r), t in targets.items():
        values[group][r] = float(sorted_values[index[(t.group, t.lo, t.hi)]][r - t.below - 1])
    targets.clear()
    return len(v)


# ---------------------------------------------------------------- the design's hook


@dataclass(frozen=True)
class QuantileData:
    """Per quantile metric: arm value -> its quantile; the levels; and how the passes went."""

    arms: dict[str, dict[Any, ArmQuantile]]
    levels: dict[str, float]
    passes: int
    fetched: int
    cells: dict[str, dict[tuple[str, Any], dict[Any, ArmQuantile | None]]] = field(default_factory=dict)


def arm_quantiles(table: "Table", treatment: str, metrics: list[Any], arms: list[Any], labels: dict[Any, str],
                  conf_level: float, stats: Any = None, first: Any = None, segments: tuple[str, ...] = (),
                  columns: dict[str, str] | None = None) -> QuantileData | None:
    """Every quantile metric's quantile per arm, and per arm and segment value (None without quantile metrics).

    Metrics on the same column share their passes. An arm too small for the interval is exit 3; a segment value
    too small gives no test (``cells`` holds None). ``stats``: the one-pass sums (stats.Statistics), whose means
    and variances set the first histogram's range when the statistics pass did not compute it (``first``: a
    ``quantile_pass.FirstHistogram``). ``columns``: metric name -> its column in ``study_data`` (the unit sums
    with design.unit).
    """
    from causalcli.designs.experiment.sums import start_range
    from causalcli.inference.distributions import normal_quantile

    if not quantile_levels(metrics):
        return None
    z = normal_quantile((1 + conf_level) / 2)
    by_column: dict[str, list[tuple[int, Any]]] = {}
    for i, m in enumerate(metrics):
        if getattr(m, "quantile", None) is not None:
            by_column.setdefault((columns or {}).get(m.name, m.outcome), []).append((i, m))
    out: dict[str, dict[Any, ArmQuantile]] = {}
    cells: dict[str, dict[tuple[str, Any], dict[Any, ArmQuantile | None]]] = {}
    passes = fetched = 0
    wanted = set(arms)
    keys = [treatment, *segments]

    def overall(group: tuple) -> bool:
        return all(v is ANY for v in group[1:])

    for column, ms in by_column.items():
        def ranks_of(group: tuple, n: int, ms=ms) -> list[int]:
            if group[0] not in wanted:  # an arm left out of the comparison: nothing to find
                return []
            found = []
            for i, m in ms:
                ranks = ranks_for(n, m.quantile, z)
                if ranks is None and overall(group):
                    need = minimum_units(m.quantile, z)
                    raise DataError(f"quantile metric {m.name!r} (q = {m.quantile:g}): arm {labels[group[0]]!r} has "
                                    f"{n} complete unit(s); its {conf_level:.0%} order-statistic interval needs at "
                                    f"least {need} (n > z^2 max(q/(1-q), (1-q)/q)); use a less extreme quantile or "
                                    "more data", file=table.file, key=f"design.metrics[{i}].quantile")
                found += ranks or []
            return found

        histogram = inside = None
        if first is not None and column in first.columns:
            i = first.columns.index(column)
            histogram = first.groups(i, ranks_of) if hasattr(first, "windows") else first.groups(i)
            if hasattr(first, "windows"):  # the values the statistics pass returned, read or not
                inside = first.inside(i) if histogram is not None else None  # None: no values, or too many
                fetched += first.returned[i] if first.returned else 0
        found = order_statistics(table, keys, column, ranks_of, None, start_range(stats, column), first=histogram,
                                 margins=True, inside=inside)
        passes += found.passes
        fetched += found.fetched
        for i, m in ms:
            per_arm, by_cell = {}, {}
            for group, n in found.counts.items():
                if group[0] not in wanted:
                    continue
                ranks = ranks_for(n, m.quantile, z)
                vals = found.values[group]
                arm = ArmQuantile(n, float(m.quantile), ranks, tuple(vals[r] for r in ranks), z) if ranks else None
                if overall(group):
                    per_arm[group[0]] = arm
                else:
                    j = next(j for j, v in enumerate(group[1:]) if v is not ANY)
                    by_cell.setdefault((segments[j], group[1 + j]), {})[group[0]] = arm
            out[m.name], cells[m.name] = per_arm, by_cell
    return QuantileData(out, quantile_levels(metrics), passes, fetched, cells)


def quantile_diagnostics(data: QuantileData | None) -> dict[str, Any]:
    """diagnostics.quantiles: how quantile metrics were computed ({} without quantile metrics)."""
    if data is None:
        return {}
    return {"quantiles": {"metrics": data.levels, "definition": DEFINITION, "interval": METHOD,
                          "capped": False, "passes": data.passes, "fetched_values": data.fetched}}
