"""The study's data as designs see it: ``Table`` (DuckDB's ``study_data``, renamed and filtered) and
``load_table``; then columns read as their role needs and complete rows as arrays.

Reading the file, stdin or an in-memory table is ``causalcli.data.load``; renames and the
sandboxed ``data.filter`` are ``causalcli.data.filter``; the SQL words (the table's name,
``quote_identifier``) are ``causalcli.data.sql``, imported here too for the designs. A design
then asks for what it needs: numpy arrays of just its columns (``Table.arrays``), a pandas frame
(``Table.frame``), or SQL aggregates over the table (``Table.sql``) for designs that never load
rows into Python.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from causalcli.data.filter import select_study_rows
from causalcli.data.load import open_data
from causalcli.data.missing import MissingRows, dropped_missing, study_roles_missing
from causalcli.data.sql import NUMERIC_PREFIXES, TABLE, quote_identifier
from causalcli.data.sql import did_you_mean as _suggest  # (also imported under this name by init and experiments)
from causalcli.errors import DataError

if TYPE_CHECKING:  # pragma: no cover
    import duckdb
    import numpy as np
    import pandas as pd

    from causalcli.spec.loading import LoadedSpec

__all__ = ["ROW_POSITION", "TABLE", "BinaryStudyArrays", "MissingRows", "Table", "binary_study_arrays", "fetch_engine_rows", "require_present",
           "design_matrix", "dropped_missing", "load_table", "quote_identifier", "require_columns",
           "single_treated_warning", "study_arrays", "study_roles"]


@dataclass
class Table:
    """The spec's data inside DuckDB, renamed and filtered."""

    con: "duckdb.DuckDBPyConnection"
    file: str
    rows: int
    types: dict[str, str]
    provenance: dict[str, Any] = field(default_factory=dict)
    # date time columns, read as period numbers 1..T: the ISO day of each, and the DuckDB table of days
    period_labels: dict[str, list[str]] = field(default_factory=dict)
    period_tables: dict[str, str] = field(default_factory=dict)
    filtered_out: int | None = None  # rows data.filter removed (None: no filter)
    # an engine other than DuckDB holding study_data as a view (designs that only aggregate); None: ``con``
    engine: Any = None
    view_sql: str = ""  # with an engine: the DuckDB SQL of its study_data view (replace_column builds on it)

    @property
    def columns(self) -> list[str]:
        return list(self.types)

    def is_numeric(self, column: str) -> bool:
        t = self.types[column].upper()
        return t.startswith(NUMERIC_PREFIXES) or t == "BOOLEAN"

    def sql(self, query: str, params: list | None = None) -> list[tuple]:
        """Run a query of the design's own over ``study_data`` (never spec text), in DuckDB's dialect."""
        if self.engine is not None:
            if params:
                raise ValueError("queries sent to an engine take no parameters")  # pragma: no cover - a bug
            return self.engine.rows(query)
        return self.con.execute(query, params or []).fetchall()

    def numpy(self, query: str) -> dict[str, "np.ndarray"]:
        """A query's result as numpy arrays by column (DuckDB's ``fetchnumpy``; from an engine through Arrow)."""
        if self.engine is None:
            return self.con.execute(query).fetchnumpy()
        fetched = self.engine.arrow(query)
        return {name: fetched.column(name).to_numpy(zero_copy_only=False) for name in fetched.column_names}

    def arrays(self, columns: list[str], as_text: tuple[str, ...] = (), positions: bool = False
               ) -> tuple[dict[str, "np.ndarray"], int]:
        """The given columns as numpy arrays (no pandas), complete rows only, ordered by their values (the
        columns in the order given); returns (arrays, dropped).

        Rows with a NULL, or a NaN in a floating column, are dropped in DuckDB and
        counted. Columns in ``as_text`` come back as strings (categorical levels). With ``positions``,
        ``arrays[ROW_POSITION]`` is each row's 0-based place among the complete rows in the table's order.
        """
        cols = list(dict.fromkeys(columns))
        select = ", ".join(f"CAST({quote_identifier(c)} AS VARCHAR) AS {quote_identifier(c)}" if c in as_text else quote_identifier(c) for c in cols)
        where = self.complete(cols)
        # A few columns come back already in value order from DuckDB's parallel sort (rdd's two: 20-50 ms
        # less than value_order on a million rows); with more, value_order, which re-sorts only tied rows,
        # is faster (12 columns: 0.41 s against 0.47 s). Same order either way: rows equal in every column
        # are interchangeable, and value_order is SQL's ORDER BY (tests/test_data.py).
        in_duckdb = self.engine is None and not positions and 0 < len(cols) <= SORT_IN_DUCKDB_COLUMNS
        order_by = f" ORDER BY {', '.join(quote_identifier(c) for c in cols)}" if in_duckdb else ""
        out = self.numpy(f"SELECT {select} FROM {TABLE} WHERE {where}{order_by}")
        arrays = {c: out[c] for c in cols}
        kept = len(arrays[cols[0]]) if cols else self.rows
        if in_duckdb:
            return arrays, self.rows - kept
        # Rows in the order of their values, not of the file: a result never depends on how the rows were
        # stored (an engine's table has no order, and cross-fitting folds, refuter draws and greedy matching
        # deal rows by position), so a file and the same data in Spark or PostgreSQL give the same numbers.
        # Rows equal in every column read are interchangeable. ROW_POSITION keeps each row's place among
        # the rows used, in the table's own order, for messages that name rows.
        if cols and kept:
            order = value_order(arrays, cols)
            arrays = {c: a[order] for c, a in arrays.items()}
            if positions:
                arrays[ROW_POSITION] = order
        return arrays, self.rows - kept

    def complete(self, columns: list[str]) -> str:
        """The SQL condition of a complete row in ``columns``: no NULL, and no NaN in a floating column."""
        tests = []
        for c in dict.fromkeys(columns):
            q = quote_identifier(c)
            tests.append(f"{q} IS NOT NULL")
            if self.types[c].upper() in ("DOUBLE", "FLOAT", "REAL"):
                tests.append(f"NOT isnan({q})")
        return " AND ".join(tests) or "true"

    def frame(self, columns: list[str]) -> tuple["pd.DataFrame", int]:
        """The given columns as pandas, rows with a missing value dropped; returns (frame, dropped)."""
        cols = list(dict.fromkeys(columns))
        select = ", ".join(quote_identifier(c) for c in cols)
        df = self.con.execute(f"SELECT {select} FROM {TABLE}").df()
        complete = df.notna().all(axis=1)
        dropped = int((~complete).sum())
        if dropped:
            df = df.loc[complete].reset_index(drop=True)
        if cols and len(df):  # the rows in the order arrays() gives them
            df = df.iloc[value_order({c: df[c].to_numpy() for c in cols}, cols)].reset_index(drop=True)
        return df, dropped




ROW_POSITION = "__row_position__"  # arrays(positions=True): where each row stood in the table
SORT_IN_DUCKDB_COLUMNS = 3  # Table.arrays: up to this many columns, DuckDB sorts the rows


def value_order(arrays: dict[str, "np.ndarray"], cols: list[str]) -> "np.ndarray":
    """The permutation that sorts rows by their values, column by column, as SQL's ``ORDER BY`` would (ties,
    rows equal in every column, kept in their order).

    One stable sort on the first column, then each further column sorts only the rows still tied: with a
    continuous column early (the outcome) that is one sort, where a sort on every column at once costs a
    pass per column over all rows (a second on a million rows x 12). A first column whose values most rows
    share with others (rdd's running variable: 20,001 values in a million rows) goes last instead: the other
    columns' order, then one stable radix pass on the first column's ranks (a third less than sorting the
    tied runs one by one).
    """
    import numpy as np

    keys = [np.asarray(arrays[c]) for c in cols]
    first = _sorted_ranks(keys[0])
    if first is not None and len(keys) > 1:
        order, sorted_ranks = first
        sizes = np.bincount(sorted_ranks)
        if 2 * np.count_nonzero(sizes == 1) <= keys[0].size:  # most rows tied on the first column
            ranks = np.empty(keys[0].size, np.int64)
            ranks[order] = sorted_ranks
            rest = value_order(arrays, cols[1:])  # ties in the rest kept in their order: stable, as this pass
            return rest[_stable_rank_order(ranks[rest], sizes.size)]
    order, group = _stable_argsort(keys[0], first)  # group: the run number of each sorted row
    for i, key in enumerate(keys[1:], start=2):
        size = np.bincount(group)
        tied = size[group] > 1  # sorted positions inside runs of two or more
        everywhere = bool(tied.all())  # (a coarse first column, as rdd's running variable: no gathers then)
        tied = slice(None) if everywhere else np.flatnonzero(tied)
        if not everywhere and tied.size == 0:
            break
        rows = order[tied]
        values = key[rows]
        # by run, then by this column, stable (np.lexsort((values, runs)), as a sort by values then a stable
        # sort of the run numbers, both through ranks)
        runs = group[tied]
        by_value, _ = _stable_argsort(values)
        inner = by_value[_stable_rank_order(runs[by_value] - runs[0], int(runs[-1] - runs[0]) + 1)]
        order[tied] = rows[inner]
        if i == len(keys):
            break  # no column left to break ties: the run numbers are not needed
        values, runs = values[inner], runs[inner]
        split = np.concatenate([[False], (values[1:] != values[:-1]) | (runs[1:] != runs[:-1])])
        # new run numbers: the old run's boundaries plus where this column changes within a run
        boundary = np.concatenate([[False], group[1:] != group[:-1]])
        boundary[tied] |= split
        group = np.cumsum(boundary)
    return order


def _runs(ranked: "np.ndarray") -> "np.ndarray":
    """The run number of each entry of a sorted array (its value's rank among the distinct values)."""
    import numpy as np

    return np.concatenate([[0], np.cumsum(ranked[1:] != ranked[:-1])])


def _sorted_ranks(key: "np.ndarray") -> tuple["np.ndarray", "np.ndarray"] | None:
    """Numbers: an order that sorts ``key`` (not necessarily stable) and the rank of each sorted row's value;
    None for other types, fewer than two rows, or a NaN (numpy leaves those to its stable sort)."""
    import numpy as np

    if key.dtype.kind not in "iuf" or key.size < 2:
        return None
    if key.dtype == np.float64 and key.size < 1 << 32:
        if np.isnan(key).any():
            return None
        order = _argsort_doubles(key)
    else:
        order = np.argsort(key)
    ranked = key[order]
    if ranked.dtype.kind == "f" and np.isnan(ranked[-1]):  # NaN last, in no defined order
        return None
    return order, _runs(ranked)


def _argsort_doubles(key: "np.ndarray") -> "np.ndarray":
    """``np.argsort(key, kind="stable")`` of doubles without NaN, through numpy's sort of values (SIMD, 3x its
    argsort on AVX2): each value's order-preserving 64 bits, their last ``bits`` bits replaced by the row
    number, sorted as integers; rows whose values agree but for those last bits (one pair in 10^5 draws
    from a normal) are then put in order by their whole value, within such a group only."""
    import numpy as np

    n = key.size
    bits = np.uint64(max(1, int(n - 1).bit_length()))
    u = (key + 0.0).view(np.uint64)  # (+ 0.0: -0.0 becomes 0.0, equal as numpy compares them)
    u = u ^ ((u >> np.uint64(63)) * np.uint64(0x7FFF_FFFF_FFFF_FFFF) | np.uint64(1 << 63))  # negatives reversed
    packed = (u >> bits << bits) | np.arange(n, dtype=np.uint64)
    packed.sort()
    order = (packed & ((np.uint64(1) << bits) - np.uint64(1))).astype(np.intp)
    whole = u[order]
    swapped = np.flatnonzero(whole[1:] < whole[:-1])
    if swapped.size:
        prefix = packed >> bits
        clashing = np.sort(prefix[swapped])
        groups = clashing[np.concatenate([[True], clashing[1:] != clashing[:-1]])]  # (np.unique loads numpy.ma)
        rows = np.concatenate([np.arange(a, b) for a, b in zip(np.searchsorted(prefix, groups, "left"),
                                                                 np.searchsorted(prefix, groups, "right"))])
        part = order[rows]
        order[rows] = part[np.lexsort((part, whole[rows]))]  # (one group's rows are contiguous, groups in order)
    return order


def _stable_argsort(key: "np.ndarray", sorted_ranks: tuple["np.ndarray", "np.ndarray"] | None = None
                    ) -> tuple["np.ndarray", "np.ndarray"]:
    """``np.argsort(key, kind="stable")``, and the run number of each sorted row (its value's rank); faster
    on numbers: numpy's stable sort of floats and wide integers is a merge sort, 3x slower than its
    quicksort on a million rows. The quicksort's order is the stable one when no two values are equal;
    otherwise each row gets its value's rank, and ranks sort stably by radix. ``sorted_ranks``: what
    ``_sorted_ranks(key)`` gave, when known."""
    import numpy as np

    quick = sorted_ranks or _sorted_ranks(key)
    if quick is None:
        order = np.argsort(key, kind="stable")
        return order, _runs(key[order])
    order, sorted_ranks = quick
    if sorted_ranks[-1] == key.size - 1:  # no two values equal
        return order, sorted_ranks
    ranks = np.empty(key.size, np.int64)
    ranks[order] = sorted_ranks
    return _stable_rank_order(ranks, int(sorted_ranks[-1]) + 1), sorted_ranks


def _stable_rank_order(ranks: "np.ndarray", size: int) -> "np.ndarray":
    """``np.argsort(ranks, kind="stable")`` for integers in [0, size): one or two 16-bit passes (numpy sorts
    16-bit integers stably by radix)."""
    import numpy as np

    if size <= 1 << 16:
        return np.argsort(ranks.astype(np.uint16), kind="stable")
    if size <= 1 << 32:
        low = np.argsort((ranks & 0xFFFF).astype(np.uint16), kind="stable")
        return low[np.argsort((ranks[low] >> 16).astype(np.uint16), kind="stable")]
    return np.argsort(ranks, kind="stable")  # pragma: no cover - beyond 4 billion distinct values


def load_table(spec: "LoadedSpec", stdin_bytes: bytes | None = None, lazy: bool = False, frame: Any = None,
               columns: list[str] | None = None, schema_only: bool = False, unit: str | None = None,
               view_parquet: bool = False, settings: dict[str, Any] | None = None) -> Table:
    """Read, rename and filter the spec's data; every failure is a one-line DataError.

    ``frame``: an in-memory pandas or polars DataFrame or Arrow table, read in place of
    ``data.path``. ``lazy`` (designs that only aggregate in DuckDB): ``study_data`` is a view
    over the file, never copied into memory; DuckDB may then read that one file and no other.
    ``columns``: what the design reads (``Design.columns``): an engine other than DuckDB sends only
    them, ordered by them (``causalcli.data.remote``); a file keeps its own columns and row order.
    ``schema_only`` (validate on an engine): the columns and their types, no row read. ``unit``: a
    panel's unit column, by which ``data.sample`` keeps whole units. ``view_parquet``: a local Parquet file
    is read as with ``lazy`` (``Design.views_parquet``). ``settings``: DuckDB settings set before the
    configuration is locked (``Design.duckdb_settings``).
    """
    if spec.study.data.backend != "duckdb" and frame is None:
        return _engine_table(spec, lazy, columns, schema_only, unit)
    opened = open_data(spec, stdin_bytes, lazy, frame, view_parquet)
    selected = select_study_rows(opened.con, spec.study.data, opened.display, opened.lazy, settings)
    provenance = {"backend": "duckdb", **opened.provenance}
    rows, sample = selected.rows, spec.study.data.sample
    if sample is not None and sample.rows < rows:
        rows, provenance["sample"] = _sample_locally(opened.con, sample, columns, unit, selected.types, opened.lazy)
    return Table(con=opened.con, file=opened.display, rows=rows, types=selected.types, provenance=provenance,
                 filtered_out=selected.filtered_out)


def _sample_locally(con: "duckdb.DuckDBPyConnection", sample: Any, columns: list[str] | None, unit: str | None,
                    types: dict[str, str], lazy: bool) -> tuple[int, dict[str, Any]]:
    """``data.sample`` on the embedded engine: ``study_data`` becomes the sample an engine draws (the same SQL,
    ``remote.sampled_rows``/``sampled_units``), hashing the columns the design reads; every column is kept.
    Returns the rows kept and what ``provenance.sample`` says."""
    from causalcli.data.remote import sampled_rows, sampled_units

    by = unit if unit is not None and unit in types else None
    con.execute(f"ALTER {'VIEW' if lazy else 'TABLE'} {TABLE} RENAME TO study_unsampled")
    source = "SELECT * FROM study_unsampled"
    hashed = [c for c in dict.fromkeys(columns or types) if c in types]
    query = (sampled_units(source, by, sample.rows, sample.seed) if by is not None else
             sampled_rows(source, hashed, sample.rows, sample.seed, every_column=True))
    con.execute(f"CREATE {'VIEW' if lazy else 'TABLE'} {TABLE} AS {query}")
    if not lazy:
        con.execute("DROP TABLE study_unsampled")
    rows = con.execute(f"SELECT count(*) FROM {TABLE}").fetchone()[0]
    return int(rows), {"rows": sample.rows, "seed": sample.seed, **({"by": by} if by is not None else {})}


def _engine_table(spec: "LoadedSpec", lazy: bool, columns: list[str] | None, schema_only: bool,
                  unit: str | None) -> Table:
    """The study's table from an engine: a view there (``lazy``), or its columns fetched into local DuckDB."""
    import duckdb

    from causalcli.data.load import resolve_path
    from causalcli.data.remote import create_view, open_remote

    data = spec.study.data
    path = resolve_path(spec) if data.path is not None else None
    remote = open_remote(data, path, None if lazy else columns, schema_only, sample_unit=unit)
    con = duckdb.connect(":memory:")
    con.execute("SET TimeZone = 'UTC'")
    if schema_only:
        return Table(con=con, file=remote.display, rows=0, types=remote.types, provenance=remote.provenance)
    if lazy:
        create_view(remote.engine, remote.select)
        provenance = {**remote.provenance, "rows": remote.rows}
        return Table(con=con, file=remote.display, rows=remote.rows, types=remote.types, provenance=provenance,
                     filtered_out=remote.filtered_out, engine=remote.engine, view_sql=remote.select)
    return _fetched_table(remote, con, data)


def _fetched_table(remote: Any, con: "duckdb.DuckDBPyConnection", data: Any) -> Table:
    from causalcli.data.remote import fetch_rows

    fetched = fetch_rows(remote, con, data.max_rows)
    plain = data.model_copy(update={"columns": {}, "filter": None, "derive": {}})  # done in the engine
    selected = select_study_rows(con, plain, remote.display, lazy=False)
    provenance = {**remote.provenance, "rows": remote.rows, "fetched_rows": fetched}
    return Table(con=con, file=remote.display, rows=selected.rows, types=selected.types, provenance=provenance,
                 filtered_out=remote.filtered_out)


def fetch_engine_rows(table: Table, spec: "LoadedSpec", columns: list[str]) -> Table:
    """A local copy of ``columns`` of an engine's ``study_data`` view (as a row-level design fetches them), for
    a design that aggregates in the engine when it can and needs the rows when it cannot; the period labels
    and the engine's count of fetched rows carry over."""
    import duckdb

    from causalcli.data.remote import Remote

    cols = list(dict.fromkeys(c for c in columns if c in table.types))
    select = f"SELECT {', '.join(quote_identifier(c) for c in cols)} FROM {TABLE}"
    remote = Remote(table.engine, table.file, select, {c: table.types[c] for c in cols}, table.rows,
                    table.filtered_out, table.provenance)
    con = duckdb.connect(":memory:")
    con.execute("SET TimeZone = 'UTC'")
    local = _fetched_table(remote, con, spec.study.data)
    local.period_labels = dict(table.period_labels)
    return local


# ---------------------------------------------------------------- column checks


def require_columns(table: Table, roles: dict[str, tuple[str, str]], treated_value: Any = None,
                    timezone: str = "UTC") -> None:
    """Check that each column exists and read it as its role needs (``causalcli.data.types``).

    ``roles`` maps a column to (spec key, kind), kind one of ``numeric`` (text holding only
    numbers is read as numbers), ``numeric_only`` (the same, for a design that takes no categorical
    covariates: the advice for text derives 0/1 columns), ``binary`` (0/1, boolean, yes/no, t/f, or two values of which
    ``treated_value`` is the treated one; made 0/1), ``time`` (numbers, or dates, timestamps and
    ISO date strings made period numbers 1..T), ``any``. A ``time`` column comes before the
    columns (cohorts) read in its type.
    """
    from causalcli.data.types import binary_treatment, numeric_column, period_column

    for column, (key, kind) in roles.items():
        if column in table.types and kind == "time":
            period_column(table, column, key, timezone)
    for column, (key, kind) in roles.items():
        if column not in table.types:
            raise DataError(
                f"column {column!r} not found{_suggest(column, table.types)}; the data has: "
                f"{', '.join(table.columns[:20])}{' ...' if len(table.columns) > 20 else ''}",
                file=table.file, key=key, column=column,
            )
        if kind == "binary":
            binary_treatment(table, column, key, treated_value)
        elif kind in ("numeric", "numeric_only"):
            numeric_column(table, column, key, categories=kind == "numeric")
        if kind == "binary":
            q = quote_identifier(column)
            bad = table.sql(
                f"SELECT count(DISTINCT {q}), min(CAST({q} AS DOUBLE)), max(CAST({q} AS DOUBLE)), "
                f"count(*) FILTER (WHERE CAST({q} AS DOUBLE) NOT IN (0, 1)) FROM {TABLE}"
            )[0]
            distinct, lo, hi, outside = bad
            if outside:
                raise DataError(
                    f"treatment column {column!r} must be binary (0/1 or boolean); found values from {lo:g} to {hi:g}",
                    file=table.file, key=key, column=column,
                )
            if distinct < 2:
                raise DataError(
                    f"treatment column {column!r} has only one value; both treated (1) and control (0) units are needed",
                    file=table.file, key=key, column=column,
                )


def require_present(table: Table, columns: list[str]) -> None:
    """Every column the design reads is in the table (validate on an engine: the schema is all it reads)."""
    for column in dict.fromkeys(columns):
        if column not in table.types:
            raise DataError(f"column {column!r} not found{_suggest(column, table.types)}; the table has: "
                            f"{', '.join(table.columns[:20])}{' ...' if len(table.columns) > 20 else ''}",
                            file=table.file, column=column)


@dataclass(frozen=True)
class BinaryStudyArrays:
    """Complete rows of a study: the columns, the covariate matrix and the treatment."""

    cols: dict
    X: "np.ndarray"
    names: list
    t: "np.ndarray"
    dropped: int
    missing: MissingRows | None = None  # the dropped rows by role, for n and warnings


def study_roles(study: Any, treatment_kind: str) -> dict[str, tuple[str, str]]:
    """Column roles of a treatment/outcome/covariates/segments study, for ``require_columns``."""
    roles = {study.treatment: ("treatment", treatment_kind), study.outcome: ("outcome", "numeric")}
    for i, c in enumerate(study.covariates):
        roles.setdefault(c, (f"covariates[{i}]", "any" if c in study.categorical else "numeric"))
    for i, c in enumerate(study.segments):
        roles.setdefault(c, (f"segments[{i}]", "any"))
    return roles


def study_arrays(table: Table, treatment: str, outcome: str, covariates: list[str], categorical: list[str],
                 extra: tuple[str, ...] = (), extra_text: tuple[str, ...] = (),
                 extra_role: tuple[str, str] = ("other", "column"), weights: str | None = None,
                 segments: tuple[str, ...] = ()) -> BinaryStudyArrays:
    """Complete rows, one-hot covariates (a constant one is a data error, exit 3), the treatment as floats;
    ``weights``: the observation-weight column, read with them (a missing weight drops its row, counted under
    ``weights``); ``segments``: the segment columns, read as text unless they are numeric (a missing value
    drops its row, counted under ``segments``)."""
    import numpy as np

    from causalcli.data.segments import SEGMENT_ROLE

    taken = (treatment, outcome, *covariates, *extra)
    weight = (weights,) if weights and weights not in taken else ()
    segs = tuple(c for c in segments if c not in (*taken, *weight))
    # a numeric segment column is read as numbers (labelled 25, not 25.0: ``data.segments.segment_labels``)
    text = tuple(dict.fromkeys((*categorical, *extra_text, *(c for c in segs if not table.is_numeric(c)))))
    cols, dropped = table.arrays([treatment, outcome, *covariates, *extra, *weight, *segs], as_text=text,
                                 positions=True)
    if dropped == table.rows:
        raise DataError("no complete rows: every row misses a value in the columns used", file=table.file)
    roles = study_roles_missing(treatment, outcome, covariates, extra, extra_role)
    roles += [(w, "weights", "weights") for w in weight] + [(c, *SEGMENT_ROLE) for c in segs]
    refuse_infinite(cols, roles, text, table.file)
    X, names = design_matrix(cols, covariates, list(categorical), table.file)
    constant = [n for j, n in enumerate(names) if np.ptp(X[:, j]) == 0]
    if constant:
        raise DataError(f"covariate {constant[0]!r} is constant in the rows used; drop it from covariates",
                        file=table.file, column=constant[0], key="covariates")
    return BinaryStudyArrays(cols, X, names, np.asarray(cols[treatment], dtype=np.float64), dropped,
                             dropped_missing(table, roles, dropped))


def refuse_infinite(cols: dict[str, "np.ndarray"], roles: list[tuple[str, str | None, str]], text: tuple[str, ...],
                     file: str | None) -> None:
    """An infinite value is not missing (it is kept), and estimators would turn it into a NaN estimate or an
    error without the column: refused here, naming the column, its role and a filter that drops it."""
    import numpy as np

    for column, key, role in roles:
        bad = 0 if column in text or cols[column].dtype.kind != "f" else int(np.isinf(cols[column]).sum())
        if bad:
            from causalcli.data.sql import drop_infinite

            raise DataError(f"{role} {column!r} holds an infinite value in {bad:,} row{'s' * (bad > 1)}; "
                            f"{drop_infinite(column)}", file=file, column=column, key=key)


def binary_study_arrays(table: Table, treatment: str, outcome: str, covariates: list[str], categorical: list[str],
                        extra: tuple[str, ...] = (), extra_text: tuple[str, ...] = (),
                        extra_role: tuple[str, str] = ("other", "column"),
                        weights: str | None = None, segments: tuple[str, ...] = ()) -> BinaryStudyArrays:
    """What matching and weighting both start from: ``study_arrays`` with a two-arm (bool) treatment."""
    arrays = study_arrays(table, treatment, outcome, covariates, categorical, extra, extra_text, extra_role,
                          weights=weights, segments=segments)
    _require_rows_for_columns(arrays, covariates, categorical, table.file)
    t = arrays.t.astype(bool)
    if t.all() or not t.any():
        raise DataError(f"treatment {treatment!r} has only one arm in the complete rows", file=table.file,
                        column=treatment, key="treatment")
    return BinaryStudyArrays(arrays.cols, arrays.X, arrays.names, t, arrays.dropped, arrays.missing)


def single_treated_warning(t: "np.ndarray") -> list[str]:
    """A warning when an arm of a binary treatment holds a single unit: its effect and SE rest on that unit."""
    n_treated = int(t.sum())
    lone = [arm for arm, k in (("treated", n_treated), ("control", t.size - n_treated)) if k == 1]
    return [f"only one {arm} unit in the rows used: the estimate rests on that single unit and its standard error, "
            "which assumes many units per arm, cannot be trusted" for arm in lone]


def _require_rows_for_columns(arrays: BinaryStudyArrays, covariates: list[str], categorical: list[str],
                              file: str) -> None:
    """Exit 3 when the propensity model (intercept and design columns) has as many coefficients as rows."""
    rows, k = arrays.X.shape
    if k + 1 < rows:
        return
    import numpy as np

    levels = {c: len(np.unique(arrays.cols[c].astype(str))) for c in covariates if c in categorical}
    c = max(levels, key=levels.get) if levels else None
    if c is not None and k - (levels[c] - 1) + 1 < rows:  # merging its levels would do (not so with 12 rows left)
        raise DataError(f"categorical covariate {c!r} has {levels[c]} levels in {rows} rows: with the intercept and "
                        f"the other covariates the propensity model would have {k + 1} coefficients for {rows} "
                        f"rows; merge rare levels of {c!r} into larger ones (or drop it from covariates)",
                        file=file, key="categorical", column=c)
    columns = f" ({k} columns with the levels of the categorical ones)" if levels else ""
    raise DataError(f"{len(covariates)} covariates{columns} for {rows} rows: the propensity model would have {k + 1} "
                    f"coefficients for {rows} rows; drop covariates, or keep more rows (data.filter)", file=file,
                    key="covariates")


def design_matrix(arrays: dict[str, "np.ndarray"], covariates: list[str], categorical: list[str],
                  file: str) -> tuple["np.ndarray", list[str]]:
    """Covariates as a float matrix; categorical ones one-hot encoded with the first (sorted) level dropped."""
    import numpy as np

    names: list[str] = []
    columns = []
    n = len(next(iter(arrays.values()))) if arrays else 0
    for c in covariates:
        values = arrays[c]
        if c in categorical:
            text = values.astype(str)
            levels = np.unique(text)
            if len(levels) < 2:
                raise DataError(f"categorical covariate {c!r} has a single level; drop it from covariates",
                                file=file, key="categorical", column=c)
            if len(levels) >= n:
                raise DataError(f"categorical covariate {c!r} has {len(levels)} levels for {n} rows; coarsen it",
                                file=file, key="categorical", column=c)
            for level in levels[1:]:
                columns.append((text == level).astype(np.float64))
                names.append(f"{c}[{level}]")
        else:
            columns.append(np.asarray(values, dtype=np.float64))
            names.append(c)
    X = np.column_stack(columns) if columns else np.empty((n, 0))
    return X, names
