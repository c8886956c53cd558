"""What the statistics pass computes for quantile metrics: the first histogram, or windows and their values.

``causalcli.designs.experiment.quantile`` finds exact order statistics from a histogram per arm followed
by a fetch of the few values in the bins that hold the ranks wanted. The histogram needs no scan of its
own: the statistics pass (``stats._one_pass`` or ``blocked.blocked_pass``) groups by ``GROUPING SETS``
(its own keys, and ``(arm, bin)`` per quantile column), so one read of the rows returns both the sums
and the histograms (standard SQL: DuckDB, Spark and PostgreSQL all run it). On 10^7 Parquet rows the
pass took 1.39 s with the histogram against 1.36 s without (and 1.62 s for the histogram alone). The
bins' range must be known before that pass: the column's mean -/+ 8 standard deviations in the first
rows (``HEAD_ROWS``) or, with ``design.unit``, over every unit (the unit pass computes them); values
outside fall in two end bins, which a later pass narrows like any other bin, so the range affects speed
only, never the result.

On a large table of rows without segments (``SAMPLE_MIN_ROWS``) even the histogram goes: the first
``SAMPLE_ROWS`` rows predict a window of values per arm and level, and the statistics pass only counts the
values below and inside each window (``count(*) FILTER``), which costs a few comparisons per row where the
histogram's grouping costs a hash lookup (10^7 Parquet rows: 0.50 s for the pass with the counts, against
0.6-1.2 s with the histogram and 0.26-0.45 s without either).

On embedded DuckDB the pass also returns the values inside the windows (``list(value) FILTER (WHERE value
in some window)``, one list per row of the pass and column), so the order statistics need no second scan:
the fetch of those values (10^8 rows by segment: 1.9-4.6 s, a scan of its own) is gone. A list holds every
value of its windows, so it also gives the values up to each window's top, whose sums the pass then drops:
at 10^7 rows by segment the pass with the lists took 0.74-0.77 s against 0.77-0.94 s for the pass with the
counts (load 4.2). The lists are collected when the first ``SAMPLE_ROWS`` rows predict at most
``quantile.FETCH_ROWS`` values in them, and dropped (the fetch runs instead) when the pass returns more; a
window of one value (ties) is never listed, as its ranks need no values.

By segment, on a large table the windows come from the first ``SEGMENT_SAMPLE_ROWS`` rows too
(``segment_windows``): per column and arm, one set of windows wide enough for the arm's smallest segment
value and shared by the arm's groups, so the pass counts two sums per window (one with the lists; and one
per column) and adds its rows (per arm and segment values) up to each group, the lists as the counts. That
replaces the histogram query by arm, segments and bin (10^8 rows: 12.1 s) with two queries over the sample.
Otherwise (a small
table, a group with few values among the first rows) the histogram is a query of its own
(``quantile.order_statistics`` with margins): grouping sets carrying the segment keys made the statistics
pass cost more than the two queries apart (10^7 rows: 4.1 s against 1.05 s + 2.2 s), since every
aggregate of the pass is computed for every set.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from causalcli.data.sql import TABLE, quote_identifier
from causalcli.designs.experiment import quantile
from causalcli.designs.experiment.quantile import ANY, bin_formula
from causalcli.designs.experiment.quantile_ranges import in_ranges, merged
from causalcli.designs.experiment.sums import lit

if TYPE_CHECKING:  # pragma: no cover
    from causalcli.data.table import Table

HEAD_ROWS = 10_000
SPREAD = 8.0  # standard deviations either side of the mean
SAMPLE_MIN_ROWS = 1_000_000  # from this many rows, windows from the first rows replace the first histogram
SAMPLE_ROWS = 100_000        # the first rows that predict the windows
SEGMENT_SAMPLE_ROWS = 2_000_000  # the same by segment: every arm and segment value needs narrow windows
SAMPLE_MIN_ARM = 1_000       # fewer complete values of an arm among them: the histogram instead
SAMPLE_SDS = 4.0             # standard errors of a sample quantile either side (a miss costs passes, not accuracy)
PASS_ROWS = "quantile_pass_rows"  # the temporary table of the statistics pass's rows when it returns values




def bin_case(value: str, lo: float, hi: float, bins: int) -> str:
    """The bin of a value: -1 below ``lo``, ``bins`` above ``hi``, NULL when missing (NULL or NaN: tested first,
    since least() skips a NULL)."""

    return (f"CASE WHEN {value} IS NULL OR isnan({value}) THEN NULL WHEN {value} < {lit(lo)} THEN -1 "
            f"WHEN {value} > {lit(hi)} THEN {bins} ELSE {bin_formula(lo, hi, bins, lit, value)} END")


@dataclass
class FirstHistogram:
    """The histogram SQL added to the statistics pass, and the histogram rows it returned: ``groups(i)`` gives
    column ``i``'s histogram, ``(arm,)`` -> sorted ``[(bin, count, min, max)]``."""

    columns: tuple[str, ...]
    ranges: tuple[tuple[float, float], ...]
    bins: int
    rows: list = field(default_factory=list)

    def inner(self) -> list[str]:
        out = []
        for i, (column, (lo, hi)) in enumerate(zip(self.columns, self.ranges)):
            value = f"CAST({quote_identifier(column)} AS DOUBLE)"
            out += [f"{value} AS qv{i}", f"{bin_case(value, lo, hi, self.bins)} AS qb{i}"]
        return out

    def outer(self) -> list[str]:
        c = range(len(self.columns))
        return ["arm", *(f"qb{i}" for i in c), *(f"GROUPING(qb{i})" for i in c), "count(*)",
                *(f"min(qv{i}), max(qv{i})" for i in c)]

    def group_by(self, keys: list[str]) -> str:
        """``GROUPING SETS``: the pass's own keys, then arm x bin per column."""
        sets = [", ".join(keys), *(f"arm, qb{i}" for i in range(len(self.columns)))]
        return f"GROUPING SETS ({', '.join(f'({s})' for s in sets)})"

    def keep(self, rows: list[tuple]) -> list[tuple]:
        """Take the histogram rows (kept here) out of the pass's rows; the pass's own rows are returned."""
        c = len(self.columns)
        width = 1 + 2 * c + 1 + 2 * c
        own, self.rows = [], []
        for row in rows:
            tail = row[len(row) - width:]
            if all(tail[1 + c:1 + 2 * c]):  # grouped by no bin: a row of the pass's own
                own.append(row)
            else:
                self.rows.append(tail)
        return own

    def run(self, table: "Table", query: str) -> list[tuple]:
        return table.sql(query)

    def groups(self, i: int) -> dict[tuple, list[tuple[int, int, float, float]]]:
        c = len(self.columns)
        out: dict[tuple, list] = {}
        for tail in self.rows:
            arm, b = tail[0], tail[1 + i]
            if tail[1 + c + i] or arm is None or b is None:  # another column's histogram; no variant or value
                continue
            at = 1 + 2 * c
            out.setdefault((arm,), []).append((int(b), int(tail[at]), float(tail[at + 1 + 2 * i]),
                                               float(tail[at + 2 + 2 * i])))
        return {g: sorted(parts) for g, parts in out.items()}


@dataclass
class SampleWindows:
    """Windows of values per column and arm, predicted from the first rows to hold the ranks wanted in every group
    (each arm, and with ``segments`` each arm and segment value: an arm's groups share its windows), and the counts
    the statistics pass returns for them (sums of 0/1 comparisons: no grouping of its own): each group's complete
    values, and per window the values below it and up to its top. The pass's rows (per arm, and segment values)
    add up to each group's counts here.

    With ``collect`` (embedded DuckDB, and the first rows predict at most ``quantile.FETCH_ROWS`` values in the
    windows) the pass also returns, per row and column, the values inside the column's windows (any arm's:
    ``list() FILTER``); each group keeps those in its arm's windows, added up as the counts are (``inside``), and
    the order statistics are read from them with no query of their own. More than ``FETCH_ROWS`` values
    returned: they are dropped, and the values are fetched (or the windows narrowed) as without them."""

    columns: tuple[str, ...]
    windows: dict[tuple[int, Any], list[tuple[float, float]]]  # (column, arm) -> disjoint [a, b], in order
    segments: int = 0
    counts: dict[tuple[int, tuple], list[int]] = field(default_factory=dict)
    keys: list[str] = field(default_factory=list)
    collect: bool = False
    values: dict[tuple[int, tuple], Any] | None = None  # (column, group) -> its values inside its windows
    returned: list[int] = field(default_factory=list)   # per column, the values the pass returned (every run)

    def _ends(self, i: int) -> list[tuple[float, float]]:
        return sorted({(a, b) for (j, _), ws in self.windows.items() if j == i for a, b in ws})

    def _counted(self, i: int) -> list[tuple[tuple[float, float], bool]]:
        """Column ``i``'s windows (every arm's), each with whether the pass sums the values up to its top: with
        ``collect`` a window of more than one value needs no sum, since the list holds its values (10^7 rows by
        segment: without those sums the pass with the lists costs what the pass with the counts cost)."""
        return [((a, b), not (self.collect and a < b)) for a, b in self._ends(i)]

    def _aggregates(self) -> list[tuple[int, str]]:
        """(column, SQL condition) of each count, in the order the pass returns them."""
        out = []
        for i in range(len(self.columns)):
            out.append((i, f"NOT isnan(qv{i})"))  # NULL: not summed
            for (a, b), top in self._counted(i):
                out.append((i, f"qv{i} < {lit(a)}"))  # NaN: false
                if top:
                    out.append((i, f"qv{i} <= {lit(b)}"))
        return out

    def listed(self, i: int) -> str:
        """SQL true for the values that column ``i``'s list takes: those inside some arm's window (any arm's:
        a condition on the arm too made the pass cost more than the values it saved, 10^7 rows by segment: 0.58
        s against 0.45 s, 137,000 values against 224,000). A window of one value is left out: its ranks need no
        values (the counts give them)."""
        return in_ranges(f"qv{i}", merged([(a, b) for a, b in self._ends(i) if a < b]))

    def inner(self) -> list[str]:
        return [f"CAST({quote_identifier(c)} AS DOUBLE) AS qv{i}" for i, c in enumerate(self.columns)]

    def outer(self) -> list[str]:
        # a sum of 0/1 costs less than count(*) FILTER (10^7 rows: +0.28 s for five against +0.40 s)
        out = [f"sum(CAST({cond} AS INTEGER))" for _, cond in self._aggregates()]
        if self.collect:  # last, where run() finds them (NaN sorts above every number: outside every window)
            out += [f"list(qv{i}) FILTER (WHERE {self.listed(i)}) AS ql{i}"
                    for i in range(len(self.columns))]
        return out

    def group_by(self, keys: list[str]) -> str:
        self.keys = list(keys)  # where keep() finds the segment values in the pass's rows
        return ", ".join(keys)

    def run(self, table: "Table", query: str) -> list[tuple]:
        """The pass's rows; with ``collect``, its lists at their end as numpy arrays (None: no value). The rows
        are kept in a temporary table, read by ``fetchall`` (exact integers, as every pass reads them) and the
        lists by ``fetchnumpy``: as Python floats the lists cost about 0.2 s per million values."""
        if not self.collect:
            return table.sql(query)
        lists = [f"ql{i}" for i in range(len(self.columns))]
        table.sql(f"CREATE OR REPLACE TEMP TABLE {PASS_ROWS} AS SELECT row_number() OVER () AS pass_row, * "
                  f"FROM ({query})")
        try:
            rows = table.sql(f"SELECT * EXCLUDE (pass_row, {', '.join(lists)}) FROM {PASS_ROWS} ORDER BY pass_row")
            found = table.numpy(f"SELECT {', '.join(lists)} FROM {PASS_ROWS} ORDER BY pass_row")
        finally:
            table.sql(f"DROP TABLE IF EXISTS {PASS_ROWS}")
        columns = [_arrays(found[name]) for name in lists]
        return [(*row, *(c[k] for c in columns)) for k, row in enumerate(rows)]

    def keep(self, rows: list[tuple]) -> list[tuple]:
        """Add up the counts per group (the pass's own rows keep them at their end, where it does not read), and
        with ``collect`` the values inside each group's windows."""
        import numpy as np

        aggregates = self._aggregates()
        counted = [self._counted(i) for i in range(len(self.columns))]
        width = len(aggregates) + (len(self.columns) if self.collect else 0)
        at = [self.keys.index(f"g{j}") for j in range(self.segments)]
        free = (ANY,) * self.segments
        self.counts = {}
        parts: dict[tuple[int, tuple], list] = {}
        returned = [0] * len(self.columns)
        for row in rows:
            tail = row[len(row) - width:]
            if self.collect:
                for i, x in enumerate(tail[len(aggregates):]):
                    returned[i] += 0 if x is None else len(x)
            if row[0] is None:
                continue
            groups = [(row[0], *free)] + [(row[0], *free[:j], row[p], *free[j + 1:]) for j, p in enumerate(at)
                                          if row[p] is not None and row[p] == row[p]]  # NULL, NaN: no value
            for i in range(len(self.columns)):
                sums = iter([int(v or 0) for (j, _), v in zip(aggregates, tail) if j == i])
                listed = tail[len(aggregates) + i] if self.collect else None
                got = [next(sums)]  # the complete values, then per window: below it, up to its top
                for (a, b), top in counted[i]:
                    below = next(sums)
                    got += [below, next(sums) if top else below + _count_in(listed, a, b)]
                for group in groups:
                    total = self.counts.setdefault((i, group), [0] * len(got))
                    self.counts[(i, group)] = [x + y for x, y in zip(total, got)]
                if listed is not None:  # keep the values in this arm's windows
                    x = listed
                    own = [(a, b) for a, b in self.windows.get((i, row[0]), []) if a < b]
                    x = x[np.logical_or.reduce([(x >= a) & (x <= b) for a, b in own])] if own else x[:0]
                    for group in groups:
                        parts.setdefault((i, group), []).append(x)
        # a pass run again (complete cases after missing values) returns its values again
        self.returned = [x + y for x, y in zip(self.returned, returned)] if self.returned else returned
        self.values = None
        if self.collect and sum(returned) <= quantile.FETCH_ROWS:  # read at call time: tests lower it
            self.values = {k: np.concatenate(xs) for k, xs in parts.items()}
        return rows

    def inside(self, i: int) -> dict[tuple, Any] | None:
        """Column ``i``'s values per group inside its windows, unsorted; None when the pass returned none."""
        import numpy as np

        if self.values is None:
            return None
        return {group: self.values.get((i, group), np.empty(0)) for (j, group) in self.counts if j == i}

    def groups(self, i: int, ranks_of) -> dict[tuple, list[tuple[int, int, float, float]]] | None:
        """Column ``i``'s groups as histograms whose parts are the windows and the gaps between them; None when
        a rank wanted falls in no window (the first rows did not represent the column: the histogram passes
        then run)."""
        ends = self._ends(i)
        out = {}
        for (j, group), counts in self.counts.items():
            if j != i:
                continue
            n, at = counts[0], {e: (counts[1 + 2 * k], counts[2 + 2 * k]) for k, e in enumerate(ends)}
            parts, before = [], 0
            for a, b in self.windows.get((i, group[0]), []):
                below, upto = at[(a, b)]
                parts += [(len(parts), below - before, math.nan, math.nan), (len(parts) + 1, upto - below, a, b)]
                before = upto
            parts.append((len(parts), n - before, math.nan, math.nan))
            ranks = ranks_of(group, n)
            if ranks and not all(_in_window(parts, r) for r in ranks):
                return None
            out[group] = parts
        return out


def _count_in(values: Any, a: float, b: float) -> int:
    import numpy as np

    return 0 if values is None else int(np.count_nonzero((values >= a) & (values <= b)))


def _arrays(column: Any) -> list:
    """A list column of ``fetchnumpy``: one array per row, None for NULL (a row with no value in a window)."""
    import numpy as np

    if isinstance(column, np.ma.MaskedArray):
        return [None if masked else x for x, masked in zip(column.data, np.ma.getmaskarray(column))]
    return list(column)


def _in_window(parts: list[tuple[int, int, float, float]], r: int) -> bool:
    seen = 0
    for _, count, lo, _hi in parts:
        if seen < r <= seen + count:
            return lo == lo  # a window (gaps have no bounds)
        seen += count
    return False


def _half_width(q: float, m: int, z: float) -> float:
    """A window's half-width in rank fraction around level ``q`` from ``m`` sampled values: the interval's own
    half-width on that sample plus ``SAMPLE_SDS`` standard errors of a sample quantile, and two ranks."""
    return (z + SAMPLE_SDS) * math.sqrt(q * (1 - q) / m) + 2 / m


def sample_windows(table: "Table", treatment: str, columns: tuple[str, ...], levels: dict[str, list[float]],
                   z: float) -> SampleWindows | None:
    """Per column, the values between the first rows' quantiles at ``q -/+ (h + delta)`` in each arm, for each
    level q: ``h`` bounds the interval's half-width on the sample's size, ``delta`` is ``SAMPLE_SDS`` standard
    errors of a sample quantile; the arms' windows merge where they overlap, and every arm is counted in the
    same windows. None when an arm has too few complete first rows."""
    import numpy as np

    values = ", ".join(f"CAST({quote_identifier(c)} AS DOUBLE)" for c in columns)
    rows = table.sql(f"SELECT {quote_identifier(treatment)}, {values} FROM {TABLE} LIMIT {SAMPLE_ROWS}")
    by_arm: dict[Any, list[tuple]] = {}
    for row in rows:
        if row[0] is not None:
            by_arm.setdefault(row[0], []).append(row[1:])
    spans: dict[int, list[tuple[float, float]]] = {}
    for arm, part in by_arm.items():
        for i, c in enumerate(columns):
            x = np.sort(np.array([r[i] for r in part if r[i] is not None], dtype=np.float64))
            x = x[~np.isnan(x)]
            m = len(x)
            if m < SAMPLE_MIN_ARM:
                return None
            for q in levels[c]:
                spread = _half_width(q, m, z)
                lo, hi = max(0, math.floor((q - spread) * m)), min(m - 1, math.ceil((q + spread) * m))
                spans.setdefault(i, []).append((float(x[lo]), float(x[hi])))
    windows = {(i, arm): merged(found) for i, found in spans.items() for arm in by_arm}  # shared: fewer sums
    return SampleWindows(columns, windows) if windows else None


def segment_windows(table: "Table", treatment: str, segments: tuple[str, ...], columns: tuple[str, ...],
                    levels: dict[str, list[float]], z: float) -> SampleWindows | None:
    """``sample_windows`` by segment: per column and arm, the values between the quantiles at ``q -/+ (h +
    delta)`` of the arm and of each of its segment values (the groups whose quantiles are reported) in the first
    ``SEGMENT_SAMPLE_ROWS`` rows, ``h`` and ``delta`` those of the smallest group (the widest: an arm's windows
    merge into one set that its groups share, so the smallest group's window is in it anyway). DuckDB counts
    the groups, then finds their quantiles (``quantile_disc``, one query for every group: 10^7 rows, a sample
    of 2,000,000 and two segments: 0.9 s where sorting each group's values took 2.2 s). The arms keep windows
    of their own: an effect moves them apart, and one set for both would double the values fetched. None when
    some group has fewer than ``SAMPLE_MIN_ARM`` complete values among those rows."""
    names = [f"g{j}" for j in range(len(segments))]
    sets = ", ".join(["(arm)", *(f"(arm, {g})" for g in names)])
    # the arms, and the values of a segment (rows without one, NULL, are grouped too, and left out)
    reported = " OR ".join([" AND ".join(f"GROUPING({g}) = 1" for g in names),
                            *(f"(GROUPING({g}) = 0 AND {g} IS NOT NULL)" for g in names)])
    windows: dict[tuple[int, Any], list[tuple[float, float]]] = {}
    for i, column in enumerate(columns):
        head = ", ".join([f"{quote_identifier(treatment)} AS arm",
                          *(f"{quote_identifier(c)} AS {g}" for c, g in zip(segments, names)),
                          f"CAST({quote_identifier(column)} AS DOUBLE) AS v"])
        sample = (f"(SELECT {head} FROM {TABLE} LIMIT {SEGMENT_SAMPLE_ROWS}) AS head WHERE arm IS NOT NULL AND "
                  f"v IS NOT NULL AND NOT isnan(v) GROUP BY GROUPING SETS ({sets}) HAVING {reported}")
        counts = table.sql(f"SELECT count(*) FROM {sample}")
        m = min((int(r[0]) for r in counts), default=0)
        if m < SAMPLE_MIN_ARM:
            return None
        fractions = []
        for q in levels[column]:
            spread = _half_width(q, m, z)
            fractions += [max(0.0, q - spread), min(1.0, q + spread)]
        spans: dict[Any, list[tuple[float, float]]] = {}
        for arm, ends in table.sql(f"SELECT arm, quantile_disc(v, [{', '.join(map(lit, fractions))}]) FROM {sample}"):
            spans.setdefault(arm, []).extend((float(ends[k]), float(ends[k + 1])) for k in range(0, len(ends), 2))
        windows.update({(i, arm): merged(found) for arm, found in spans.items()})
    return SampleWindows(columns, windows, len(segments))


def expected_values(table: "Table", windows: SampleWindows) -> float:
    """The values the statistics pass's lists would return, predicted from the share of the first ``SAMPLE_ROWS``
    rows that they take; by segment too (counting in the first SEGMENT_SAMPLE_ROWS took 0.28 s at 10^7 rows,
    for a share of about 2%, which 100,000 rows measure well enough for a bound on memory)."""
    columns = windows.columns
    values = ", ".join(f"CAST({quote_identifier(c)} AS DOUBLE) AS qv{i}" for i, c in enumerate(columns))
    inside = ", ".join(f"sum(CAST({windows.listed(i)} AS INTEGER))" for i in range(len(columns)))
    row = table.sql(f"SELECT count(*), {inside} FROM (SELECT {values} FROM {TABLE} LIMIT {SAMPLE_ROWS}) AS head")[0]
    return table.rows * sum(int(v or 0) for v in row[1:]) / max(1, int(row[0]))


def first_histogram(table: "Table", shapes: list[Any], segments: tuple[str, ...], unit: Any = None,
                    metrics: list[Any] = (), conf_level: float = 0.95,
                    treatment: str | None = None) -> "FirstHistogram | SampleWindows | None":
    """What the statistics pass computes for the quantile metrics: on rows of a large table, windows from the
    first rows (``SampleWindows``, by segment too); else the first histogram (None without quantile metrics,
    by segment, or a column with no finite value in the first rows: the quantile passes then find their own
    range)."""
    from causalcli.inference.distributions import normal_quantile

    columns = tuple(dict.fromkeys(s.num for s in shapes if s.kind == "quantile"))
    if not columns:
        return None
    if unit is None and table.rows >= SAMPLE_MIN_ROWS and treatment is not None:
        levels: dict[str, list[float]] = {}
        for m in metrics:
            if getattr(m, "quantile", None) is not None:
                levels.setdefault(m.outcome, []).append(float(m.quantile))
        z = normal_quantile((1 + conf_level) / 2)
        windows = None
        if not segments:
            windows = sample_windows(table, treatment, columns, levels, z)
        elif table.engine is None:  # quantile_disc over GROUPING SETS: written for DuckDB alone
            windows = segment_windows(table, treatment, tuple(segments), columns, levels, z)
        if windows is not None:
            if table.engine is None:  # list() is DuckDB's: an engine's statistics pass returns the counts only
                windows.collect = expected_values(table, windows) <= quantile.FETCH_ROWS
            return windows
    if segments:  # by segment: a histogram query of its own is cheaper than one in the pass (module docstring)
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
    return FirstHistogram(columns, tuple(ranges), quantile.FIRST_BINS)  # read at call time: tests lower it
