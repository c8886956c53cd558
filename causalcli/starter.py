"""Starter specs for ``causalcli init``: roles guessed from the data, doubtful columns left out.

``starter_spec(path, treatment, outcome, design)`` reads the file with DuckDB and returns the
spec as a mapping and as YAML text whose comments say what was guessed and which columns were
left out, and why. What it cannot guess it writes as the placeholder ``TODO``, which
``validate`` refuses by key (``causalcli.spec.loading``).

Rules for covariates (and synthetic-control predictors), applied in column order:

* not usable: dates, lists, text with more than ``CATEGORICAL_MAX_LEVELS`` levels;
* named like a post-treatment or outcome column (``post_``, ``_after``, the outcome's name up to
  transformation words: ``homicide`` beside ``l_homicide``);
* missing in more than half of the rows (every design drops incomplete rows);
* constant; an identifier (unique per row, named like one or consecutive integers); a row index
  pandas saved with the data (``__index_level_0__``, ``Unnamed: 0``);
* the same values as the treatment, the outcome or an earlier column;
* near-determined by a binary treatment: one arm (almost) all at one value that the other arm
  takes far less often, e.g. 401(k) participation beside eligibility (no one ineligible
  participates): a consequence of treatment, or a positivity failure, either way not a confounder;
* a category or a two-valued column with a level only one arm has (on the complete rows): the
  propensity logit separates there (NHEFS hf beside qsmk);
* collinear with the intercept, the treatment and the columns kept before it, found by a
  Gram-Schmidt pass over (a sample of) the standardised design matrix; the later column goes;
* with the kept columns, gives the outcome exactly (a part of it, e.g. wt82 for wt82 - wt71);
* TWFE: constant within unit or period (absorbed by the fixed effects);
* last, named with the outcome's time (the latest number of two or more digits in its name: tax82
  beside wt82_71).
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from causalcli.data.table import quote_identifier as q
from causalcli.errors import DataError, SpecError
from causalcli.spec.placeholders import TODO
CATEGORICAL_MAX_LEVELS = 50
SAMPLE_ROWS = 100_000         # rows read into numpy for the rank and post-treatment checks
MISSING_MAX_SHARE = 0.5
ATT_SHARE = 0.05  # a treated share below which init writes estimand: att rather than the design's ate
# Residual share of a standardised column after projecting on the kept ones below which it is
# collinear. The estimators refuse a design whose normalised Gram matrix has a pivot below
# 1e-13 (propensity._solve_spd); 1e-9 also catches columns that are collinear up to rounding
# of the stored values.
COLLINEAR_RESIDUAL = 1e-9
# Post-treatment rule: one arm has at most 1% of rows off its modal value, the other arm has at
# most 90% of rows at it, and independence would have put at least 10 rows of the first arm off it.
ARM_PURE_SHARE = 0.99
OTHER_ARM_MAX_SHARE = 0.9
EXPECTED_OFF_MIN = 10

TIME_WORDS = {"year", "yr", "date", "period", "time", "month", "week", "quarter", "day", "wave", "t"}
COHORT_NAMES = {"cohort", "g", "gname", "first_treat", "first_treated", "first_treatment", "treat_year",
                "year_treated", "treatment_year", "adopt_year", "adoption_year", "year_first_treated",
                "first_year_treated", "treat_date", "treatment_date", "first_treat_period"}
UNIT_WORDS = ("id", "unit", "state", "county", "country", "region", "firm", "company", "district", "city",
              "school", "person", "individual", "user", "household", "fips", "code", "name", "market", "store")
CONTROL_NAMES = ("control", "ctrl", "0", "a", "baseline", "base", "false", "no", "placebo", "c", "off")
TREATED_WORDS = ("1", "true", "t", "yes", "y", "treated", "treatment", "treat", "on", "exposed", "intervention",
                 "test", "variant", "b")
CLUSTER_NAMES = {"cluster", "clusters", "cluster_id", "clusterid", "psu", "cl"}
# "post" as in after treatment, not post-secondary schooling or a post code (basque's school.post.high)
POST_PATTERN = re.compile(r"(^|_)(post(?!_(high|secondary|sec|graduate|grad|doc|doctoral|code|codes|office|school|"
                          r"college)(_|$))|after)(_|$)")
PRE_PATTERN = re.compile(r"(^|_)(pre|lag|lagged|baseline|before|prior)(_|$)")
# A row index that pandas wrote with the data (to_parquet keeps a non-default index as
# __index_level_0__; to_csv writes an unnamed first column that read_csv calls "Unnamed: 0"). After a
# concat it repeats, so the "unique per row" rule misses it, and sorted by arm it acts as a confounder.
# DuckDB names that empty CSV header "column0" (only the first column counts: a headerless file has
# column0..columnN).
PANDAS_INDEX = re.compile(r"__index_level_\d+__|Unnamed: \d+")
TIME_TYPES = ("DATE", "TIMESTAMP")
INTEGER_TYPES = ("TINYINT", "SMALLINT", "INTEGER", "BIGINT", "HUGEINT", "UTINYINT", "USMALLINT", "UINTEGER",
                 "UBIGINT")
FLOAT_TYPES = ("FLOAT", "DOUBLE", "DECIMAL", "REAL")


@dataclass
class Starter:
    """A starter spec: the mapping, its YAML text with comments, and what was decided."""

    spec: dict
    text: str
    guessed: list[str] = field(default_factory=list)    # "key: value (why)"
    left_out: dict[str, str] = field(default_factory=dict)  # column -> reason
    notes: list[str] = field(default_factory=list)

    def summary(self) -> str:
        """One line for stderr: what the comments of the spec hold."""
        todo = _todo_keys(self.spec)
        parts = [f"{len(self.guessed)} guessed" if self.guessed else "nothing guessed",
                 f"{len(self.left_out)} column{'s' * (len(self.left_out) != 1)} left out"]
        if todo:
            parts.append(f"set {', '.join(todo)} (TODO)")
        why = "; the spec's comments say why" if self.guessed or self.left_out or todo else ""
        return f"init: {'; '.join(parts)}{why}"


def norm(name: str) -> str:
    return re.sub(r"[^a-z0-9]+", "_", name.lower()).strip("_")




def show(v: Any) -> str:
    return str(plain(v))


def plain(v: Any) -> Any:
    """A value as YAML should hold it: integral floats as ints, dates as ISO strings."""
    import datetime

    if hasattr(v, "item") and not isinstance(v, (str, bytes)):
        v = v.item()
    if isinstance(v, float) and v.is_integer():
        return int(v)
    if isinstance(v, datetime.datetime):
        return v.isoformat(sep=" ") if (v.hour, v.minute, v.second, v.microsecond) != (0, 0, 0, 0) else v.date().isoformat()
    if isinstance(v, datetime.date):
        return v.isoformat()
    return v


class _Data:
    """The file in DuckDB with the facts the guesses need, computed once."""

    def __init__(self, path: Path) -> None:
        import duckdb

        from causalcli.data.table import read_file

        self.path = path
        self.con = duckdb.connect(":memory:")
        fmt = "parquet" if path.suffix.lower() in (".parquet", ".pq") else "csv"
        read_file(self.con, str(path), fmt, str(path), "d")
        self.types = dict(self.con.execute("SELECT column_name, column_type FROM (DESCRIBE d)").fetchall())
        self.rows = self.con.execute("SELECT count(*) FROM d").fetchone()[0]
        if self.rows == 0:
            raise DataError("the data file has no rows", file=str(path))
        # HyperLogLog counts in one pass; exact counts only where a rule compares them with a bound
        floats = [c for c, t in self.types.items() if t.upper().startswith(("DOUBLE", "FLOAT", "REAL"))]
        parts = [f"approx_count_distinct({q(c)})" for c in self.types] + [f"count({q(c)})" for c in self.types]
        parts += [f"count(*) FILTER (WHERE isnan({q(c)}))" for c in floats]
        row = self.con.execute(f"SELECT {', '.join(parts)} FROM d").fetchone()
        k = len(self.types)
        self.approx = {c: row[i] for i, c in enumerate(self.types)}
        self.present = {c: row[k + i] for i, c in enumerate(self.types)}
        self.nan = {c: row[2 * k + i] for i, c in enumerate(floats)}
        self.distinct = _Distinct(self)
        self.integral = {c: self._integral(c) for c, t in self.types.items() if t.upper().startswith(FLOAT_TYPES)}

    def sql(self, query: str) -> list[tuple]:
        return self.con.execute(query).fetchall()

    def _integral(self, c: str) -> bool:
        return not self.sql(f"SELECT 1 FROM d WHERE {q(c)} IS NOT NULL AND {q(c)} <> round({q(c)}) LIMIT 1")

    def kind(self, c: str) -> str:
        """numeric | integer | text | boolean | time | other."""
        t = self.types[c].upper()
        if t.startswith(INTEGER_TYPES):
            return "integer"
        if t.startswith(FLOAT_TYPES):
            return "integer" if self.integral.get(c) else "numeric"
        if t == "BOOLEAN":
            return "boolean"
        if t.startswith(("VARCHAR", "ENUM")):
            return "text"
        if t.startswith(TIME_TYPES):
            return "time"
        return "other"

    def missing_share(self, c: str) -> float:
        return (self.rows - self.present[c] + self.nan.get(c, 0)) / self.rows

    def constant_within(self, column: str, unit: str) -> bool:
        return not self.sql(f"SELECT 1 FROM d GROUP BY {q(unit)} HAVING count(DISTINCT {q(column)}) > 1 LIMIT 1")

    def sample(self, columns: list[str]) -> "Any":
        """Up to SAMPLE_ROWS rows of these columns (all rows when the file is that small), as pandas."""
        cols = ", ".join(q(c) for c in dict.fromkeys(columns))
        if self.rows <= SAMPLE_ROWS:
            return self.con.execute(f"SELECT {cols} FROM d ORDER BY rowid").df()
        # rows chosen by a hash of their position: the same rows on every run, whatever the threads
        keep = math.ceil(1_000_000 * SAMPLE_ROWS / self.rows)
        return self.con.execute(f"SELECT {cols} FROM d WHERE hash(rowid) % 1000000 < {keep} ORDER BY rowid").df()


class _Distinct:
    """Distinct values of a column: exact where few (at most EXACT_BELOW: constants, levels, periods), else
    the HyperLogLog count; ``exact_count`` where a large count is compared with a bound (identifier, panel)."""

    EXACT_BELOW = 10_000

    def __init__(self, data: _Data) -> None:
        self.data = data
        self.exact: dict[str, int] = {}

    def __getitem__(self, c: str) -> int:
        if self.data.approx[c] > self.EXACT_BELOW:
            return self.data.approx[c]
        return self.exact_count(c)

    def exact_count(self, c: str) -> int:
        if c not in self.exact:
            self.exact[c] = self.data.sql(f"SELECT count(DISTINCT {q(c)}) FROM d")[0][0]
        return self.exact[c]


# ------------------------------------------------------------------ roles


def _time_like(c: str) -> bool:
    tokens = norm(c).split("_")
    return any(t in TIME_WORDS for t in tokens) or norm(c) in ("yearmonth", "yearweek", "ym")


def _cohort_like(c: str) -> bool:
    n = norm(c)
    return n in COHORT_NAMES or ("first" in n and "treat" in n)


def guess_panel(data: _Data, taken: set[str]) -> tuple[str | None, str | None, str]:
    """(unit, time, why): the first time-named column and the unit column unique with it."""
    # a DATE or TIMESTAMP column is a time whatever its name (qdate, obs_dt)
    times = [c for c in data.types if c not in taken and not _cohort_like(c) and data.distinct[c] >= 2
             and (data.kind(c) == "time" or (_time_like(c) and data.kind(c) == "integer"))]
    units = [c for c in data.types if c not in taken and c not in times and not _cohort_like(c)
             and data.kind(c) in ("integer", "text") and 2 <= data.distinct[c] <= data.rows // 2]
    units.sort(key=lambda c: (not any(w in norm(c) for w in UNIT_WORDS), data.kind(c) != "text"
                              and not norm(c).endswith("id")))
    for t in times:
        for u in units:
            pairs = data.sql(f"SELECT count(*) FROM (SELECT DISTINCT {q(u)}, {q(t)} FROM d "
                             f"WHERE {q(u)} IS NOT NULL AND {q(t)} IS NOT NULL)")[0][0]
            if pairs != data.present[u] or data.present[u] != data.rows:
                continue
            if data.constant_within(t, u):
                continue
            n_u, n_t = data.distinct.exact_count(u), data.distinct.exact_count(t)
            shape = (f"a balanced panel of {n_u} units x {n_t} periods" if n_u * n_t == data.rows
                     else f"{n_u} units x {n_t} periods, {data.rows} rows (unbalanced)")
            return u, t, f"unique per {u} x {t}: {shape}"
    return None, times[0] if times else None, ""


def guess_cohort(data: _Data, unit: str, time: str, taken: set[str]) -> str | None:
    for c in data.types:
        if c in taken or not _cohort_like(c) or data.kind(c) not in ("integer", "time"):
            continue
        if data.constant_within(c, unit):
            return c
    return None


def treated_level(data: _Data, treatment: str) -> tuple[str, Any] | None:
    """How 'treated' reads in this column, for the guesses only (the data layer decides the real coding):
    ("number", None) for 0/1, ("boolean", None), ("text", level), or None when it cannot tell."""
    kind = data.kind(treatment)
    if kind in ("integer", "numeric"):
        values = {r[0] for r in data.sql(f"SELECT DISTINCT CAST({q(treatment)} AS DOUBLE) FROM d "
                                          f"WHERE {q(treatment)} IS NOT NULL LIMIT 3")}
        return ("number", None) if values == {0.0, 1.0} else None
    if kind == "boolean":
        return ("boolean", None)
    if kind == "text" and data.distinct[treatment] == 2:
        levels = sorted(r[0] for r in data.sql(f"SELECT DISTINCT {q(treatment)} FROM d WHERE {q(treatment)} IS NOT NULL"))
        on = treated_of(levels)
        if on is not None:
            return ("text", on[0])
    return None


def treated_of(levels: list[str]) -> tuple[str, str] | None:
    """(treated level, why) of two text levels: by the codings the data layer reads itself (yes/no, t/f,
    ...), else the one named like a treated arm, or the other of one named like a control arm; None if unclear."""
    from causalcli.data.types import BINARY_CODES

    lowered = [v.strip().lower() for v in levels]
    for control, treated in BINARY_CODES:
        if set(lowered) <= {control, treated} and treated in lowered:
            return levels[lowered.index(treated)], f"{control}/{treated} coding"
    on = [v for v, low in zip(levels, lowered) if low in TREATED_WORDS]
    off = [v for v, low in zip(levels, lowered) if low in CONTROL_NAMES]
    if len(on) == 1:
        return on[0], "named like a treated arm"
    if len(off) == 1:
        return next(v for v in levels if v != off[0]), f"the other, {off[0]!r}, is named like a control arm"
    return None


def needs_treated_value(data: _Data, treatment: str) -> bool:
    """A two-valued text treatment the data layer cannot code by itself (not 0/1, yes/no, t/f, ...)."""
    from causalcli.data.types import BINARY_CODES

    if data.kind(treatment) != "text" or data.distinct[treatment] != 2:
        return False
    lowered = {r[0].strip().lower() for r in data.sql(f"SELECT DISTINCT {q(treatment)} FROM d "
                                                        f"WHERE {q(treatment)} IS NOT NULL")}
    return not any(lowered <= set(pair) for pair in BINARY_CODES)


def treated_expr(data: _Data, treatment: str) -> str | None:
    """A SQL boolean for 'treated', or None."""
    coding = treated_level(data, treatment)
    if coding is None:
        return None
    col = q(treatment)
    if coding[0] == "number":
        return f"(CAST({col} AS DOUBLE) = 1)"
    if coding[0] == "boolean":
        return f"({col})"
    return f"({col} = {_literal(coding[1])})"


# ------------------------------------------------------------------ covariates


def _id_like(c: str) -> bool:
    n = norm(c)
    return (n in ("id", "index", "row", "rownum", "row_id", "obs", "idx", "seq", "seqn", "serial", "record", "key")
            or n.endswith(("_id", "_key", "_seq")) or n.startswith("id_"))


def screen_columns(data: _Data, candidates: list[str], treatment: str | None, outcome: str | None,
                   left_out: dict[str, str], *, allow_text: bool = True, rank_check: bool = True,
                   arm_check: bool = True, missing_check: bool = True) -> tuple[list[str], list[str]]:
    """(covariates, categorical) kept from ``candidates``; every other one goes into ``left_out`` with why."""
    import numpy as np

    kept: list[str] = []
    outcome_stem = norm(outcome) if outcome else ""
    outcome_time = _outcome_time(outcome) if outcome else None
    for c in candidates:
        kind = data.kind(c)
        n = norm(c)
        if kind in ("time", "other"):
            left_out[c] = f"type {data.types[c]} is neither numeric nor categorical"
        elif kind == "text" and not allow_text:
            left_out[c] = "text (this design takes numeric columns only; encode levels as 0/1 columns)"
        elif kind == "text" and (why := _numbers_as_text(data, c)):
            left_out[c] = why
        elif kind == "text" and data.distinct[c] > CATEGORICAL_MAX_LEVELS:
            left_out[c] = f"text with {data.distinct[c]} levels (more than {CATEGORICAL_MAX_LEVELS}; an identifier?)"
        elif PANDAS_INDEX.fullmatch(c) or (c == "column0" and c == next(iter(data.types))
                                           and "column1" not in data.types):
            left_out[c] = "a row index saved by pandas with the data, not a measurement"
        elif POST_PATTERN.search(n):
            left_out[c] = "named like a post-treatment column (post/after)"
        elif outcome_stem and _outcome_like(n, outcome_stem) and not PRE_PATTERN.search(n):
            left_out[c] = f"named like the outcome {outcome!r} (a post-treatment measure?)"
        elif missing_check and data.missing_share(c) > MISSING_MAX_SHARE:
            left_out[c] = f"missing in {data.missing_share(c):.0%} of rows (those rows would be dropped)"
        elif data.distinct[c] <= 1:
            value = data.sql(f"SELECT any_value({q(c)}) FROM d")[0][0]
            left_out[c] = "constant (" + ("empty" if value is None else f"every row is {show(value)}") + ")"
        elif (kind in ("integer", "text") and data.approx[c] >= 0.9 * data.rows
              and data.distinct.exact_count(c) == data.rows and (_id_like(c) or kind == "text" or _consecutive(data, c))):
            left_out[c] = "unique per row (an identifier)"
        else:
            kept.append(c)
    if not kept:
        return [], []
    roles = [x for x in (treatment, outcome) if x]
    frame = data.sample([*roles, *kept])
    for c in kept:
        if frame[c].dtype == bool:
            frame[c] = frame[c].astype(float)
    dup = _duplicates(frame, kept, treatment, outcome)
    left_out.update(dup)
    kept = [c for c in kept if c not in dup]
    treated = None
    coding = treated_level(data, treatment) if treatment is not None and arm_check else None
    if coding is not None:
        treated = _treated_vector(frame[treatment], coding)
        labels = _arm_labels(data, treatment, coding)
    if treated is not None:
        for c in list(kept):
            why = _arm_determined(frame[c], treated, c, treatment, labels)
            if why:
                left_out[c] = why
                kept.remove(c)
    categorical = [c for c in kept if data.kind(c) == "text"]
    if rank_check and kept:
        collinear = _collinear(frame, kept, categorical, treatment, outcome, np)
        left_out.update(collinear)
        kept = [c for c in kept if c not in collinear]
        categorical = [c for c in categorical if c in kept]
    if treated is not None and kept:
        _one_arm_levels(frame, kept, categorical, treated, treatment, outcome, labels, left_out, np)
        kept = [c for c in kept if c not in left_out]
        categorical = [c for c in categorical if c in kept]
    # last, so that a column the data show to be part of the outcome (wt82 of wt82_71) is named so
    for c in [c for c in kept if outcome_time in re.findall(r"\d+", c) and not PRE_PATTERN.search(norm(c))]:
        left_out[c] = (f"named with {outcome_time}, the time in the outcome's name {outcome!r}: measured "
                       "with the outcome, after treatment?")
        kept.remove(c)
    categorical = [c for c in categorical if c in kept]
    return kept, categorical


TRANSFORM_WORDS = {"l", "ln", "log", "lg", "sq", "sqrt", "std", "z", "d", "diff", "delta", "pct", "share", "rate",
                   "raw", "level", "levels", "abs", "total", "tot", "mean", "avg"}


def _numbers_as_text(data: _Data, c: str) -> str | None:
    """Why a text column that mostly holds numbers (age with a '.' for missing, 6,825.50) is no covariate as it
    stands: as text it would be a category with a level per value; estimate refuses it as a covariate."""
    from causalcli.data.types import number_advice

    v = f"trim({q(c)})"
    # numbers with thousands separators, currency or percent signs count as numbers here (the advice says how)
    bare = f"regexp_replace({v}, '[,$€£%[:space:]]', '', 'g')"
    numbers, present = data.sql(f"SELECT count(TRY_CAST({bare} AS DOUBLE)), count(NULLIF({v}, '')) FROM d")[0]
    if not present or numbers < 0.9 * present:
        return None
    other = [r[0] for r in data.sql(f"SELECT {v} AS x, count(*) FROM d WHERE x <> '' AND TRY_CAST(x AS DOUBLE) IS NULL "
                                    "GROUP BY x ORDER BY 2 DESC, 1 LIMIT 3")]
    if not other:  # every value is a plain number: the data layer reads the column as numbers
        return None
    advice = number_advice(other[0], "covariate").replace("{column}", c.replace('"', '\\"'))
    k = data.sql(f"SELECT count(*) FROM d WHERE {v} <> '' AND TRY_CAST({v} AS DOUBLE) IS NULL")[0][0]
    return (f"numbers written as text, with {', '.join(map(repr, other))} in {k:,} row{'s' * (k != 1)}: {advice}; "
            "then add it back")


def _outcome_time(outcome: str) -> str | None:
    """The latest number of two or more digits in the outcome's name (82 in NHEFS's wt82_71, 78 in re78),
    read as when the outcome was measured: a covariate named with it (smkintensity82_71, tax82, unem78)
    is measured then too, after treatment. One-digit numbers are too often plain labels (y1, x1)."""
    numbers = [t for t in re.findall(r"\d+", outcome) if len(t) >= 2]
    return max(numbers, key=int) if numbers else None


def _unglued(word: str) -> str:
    """'lwage' -> 'wage', 'lnwage' -> 'wage', 'logwage' -> 'wage': a log prefix written without '_'."""
    for prefix in ("log", "ln", "l"):
        if word.startswith(prefix) and len(word) - len(prefix) >= 3:
            return word[len(prefix):]
    return word


def _outcome_like(name: str, stem: str) -> bool:
    """'log_re78' and 're78_log' are like 're78', 'homicide' like 'l_homicide', 'y_log' like 'y', 'wage' like
    'lwage' (card.csv); 're74' and 'yield' are not: the same words once transformation words (log, l, pct, ...)
    and glued log prefixes are set aside."""
    if "_" not in name and "_" not in stem and name != stem and (_unglued(name) == stem or name == _unglued(stem)):
        return True
    words = [w for w in name.split("_") if w not in TRANSFORM_WORDS]
    part = [w for w in stem.split("_") if w not in TRANSFORM_WORDS] or stem.split("_")
    return bool(words) and any(words[i:i + len(part)] == part for i in range(len(words) - len(part) + 1))


def _consecutive(data: _Data, c: str) -> bool:
    if data.kind(c) != "integer":
        return False
    lo, hi = data.sql(f"SELECT min({q(c)}), max({q(c)}) FROM d")[0]
    return hi - lo + 1 == data.rows


def _treated_vector(values: Any, coding: tuple[str, Any]) -> Any:
    """The sample's treatment as 1.0/0.0, NaN where missing."""
    import numpy as np

    missing = values.isna().to_numpy()
    if coding[0] == "text":
        on = (values == coding[1]).to_numpy()
    else:
        on = values.astype(float).to_numpy() == 1
    return np.where(missing, np.nan, on.astype(float))


def _duplicates(frame: Any, kept: list[str], treatment: str | None, outcome: str | None) -> dict[str, str]:
    """Columns with the same values (numbers compared as floats, missing where missing) as an earlier one."""
    import numpy as np
    import pandas as pd

    def key(name: str) -> bytes:
        values = frame[name]
        if values.dtype.kind in "biuf":
            return b"n" + np.ascontiguousarray(values.astype(float).fillna(np.inf).to_numpy()).tobytes()
        return b"s" + pd.util.hash_pandas_object(values.astype(str).where(values.notna(), None),
                                                 index=False).to_numpy().tobytes()

    roles = {treatment: "the treatment", outcome: "the outcome"}
    first: dict[bytes, str] = {}
    for name in (treatment, outcome):
        if name:
            first.setdefault(key(name), name)
    out: dict[str, str] = {}
    for c in kept:
        k = key(c)
        if k in first:
            other = first[k]
            what = roles.get(other, repr(other))
            out[c] = f"the same values as {what}"
        else:
            first[k] = c
    return out


def _arm_labels(data: _Data, treatment: str, coding: tuple[str, Any]) -> tuple[str, str]:
    """How the untreated and treated arms print: '0'/'1', 'false'/'true', or the text levels."""
    if coding[0] == "number":
        return "0", "1"
    if coding[0] == "boolean":
        return "false", "true"
    other = data.sql(f"SELECT DISTINCT {q(treatment)} FROM d WHERE {q(treatment)} IS NOT NULL "
                     f"AND {q(treatment)} <> {_literal(coding[1])}")[0][0]
    return repr(other), repr(coding[1])


def _arm_determined(values: Any, treated: Any, column: str, treatment: str, labels: tuple[str, str]) -> str | None:
    """Why ``column`` looks determined by the treatment in one arm, or None."""
    import numpy as np

    ok = ~values.isna().to_numpy() & ~np.isnan(treated.astype(float))
    v = values.to_numpy()[ok]
    t = treated.astype(float)[ok] == 1
    if len(np.unique(v[~t])) == 1 and len(np.unique(v[t])) == 1 and t.any() and (~t).any():
        return (f"a recoding of the treatment: {column} = {show(v[~t][0])} where {treatment} = {labels[0]} "
                f"and {show(v[t][0])} where {treatment} = {labels[1]}")
    for arm, other, label, other_label in ((~t, t, *labels), (t, ~t, *labels[::-1])):
        n_arm, n_other = int(arm.sum()), int(other.sum())
        if n_arm == 0 or n_other == 0:
            continue
        levels, counts = np.unique(v[arm], return_counts=True)
        top = int(np.argmax(counts))
        mode, k = levels[top], int(counts[top])
        share_other = float(np.mean(v[other] == mode))
        if (k >= ARM_PURE_SHARE * n_arm and share_other <= OTHER_ARM_MAX_SHARE
                and n_arm * (1 - share_other) >= EXPECTED_OFF_MIN):
            every = "every row" if k == n_arm else f"{k / n_arm:.1%} of rows"
            return (f"looks post-treatment: with {treatment} = {label}, {every} has {column} = {show(mode)} "
                    f"(against {share_other:.0%} with {treatment} = {other_label}); a column the treatment "
                    "determines is a consequence of it, not a confounder")
    return None


def _one_arm_levels(frame: Any, kept: list[str], categorical: list[str], treated: Any, treatment: str,
                    outcome: str | None, labels: tuple[str, str], left_out: dict[str, str], np: Any) -> None:
    """A categorical or two-valued covariate with a level that only one arm has, on the rows complete in
    the treatment, the outcome and the kept covariates (those the estimators use): those rows have a propensity
    of 0 or 1, the propensity logit separates and no unit of the other arm compares with them (NHEFS: the 2
    complete rows with heart failure are all non-quitters; weighting stopped at 'no common support')."""
    # a level of a numeric column with more values is a point on a line, which a logit does not separate
    use = [c for c in kept if c in categorical or frame[c].nunique(dropna=True) == 2]
    if not use:
        return
    complete = frame[kept + ([outcome] if outcome else [])].notna().all(axis=1).to_numpy() & ~np.isnan(treated)
    on = treated[complete] == 1
    for c in use:
        v = frame[c].to_numpy()[complete]
        for level in np.unique(v):
            at = v == level
            n_on, n_off = int((at & on).sum()), int((at & ~on).sum())
            if min(n_on, n_off) == 0 and max(n_on, n_off) > 0 and at.sum() < len(v):
                arm = labels[1] if n_on else labels[0]
                left_out[c] = (f"{c} = {show(level)} occurs only where {treatment} = {arm} ({max(n_on, n_off)} of the "
                               f"{len(v):,} complete rows): no overlap between the arms there (the propensity "
                               "model separates); coarsen it or restrict the sample")
                break


def _collinear(frame: Any, kept: list[str], categorical: list[str], treatment: str | None, outcome: str | None,
               np: Any) -> dict[str, str]:
    """Columns whose standardised block adds no rank to [1, treatment, columns kept before it], on the rows
    complete in all of them (as the estimators use them); then columns that with the kept ones give the
    outcome exactly (NHEFS: wt82_71 = wt82 - wt71), the later of them each time."""
    use = [treatment, *kept] if treatment else list(kept)
    complete = frame[use + ([outcome] if outcome else [])].notna().all(axis=1).to_numpy()
    sub = frame.loc[complete]
    if len(sub) < 2:
        return {}
    basis: list[Any] = [np.ones(len(sub)) / math.sqrt(len(sub))]
    owners: list[str] = ["(intercept)"]
    columns: list[Any] = []  # the standardised columns behind basis[1:], to name what a new one depends on

    def block(name: str, is_text: bool) -> list[Any]:
        values = sub[name]
        if is_text or (name == treatment and values.dtype == object):
            text = values.astype(str).to_numpy()
            return [(text == level).astype(float) for level in np.unique(text)[1:]]
        return [values.astype(float).to_numpy()]

    def depends_on(v: Any) -> list[str] | None:
        """None when v adds rank to the basis, else the owners of the kept columns it is a combination of."""
        v = v - v.mean()
        norm_v = np.linalg.norm(v)
        if norm_v == 0:
            return []
        v = v / norm_v
        B = np.column_stack(basis)
        r = v - B @ (B.T @ v)
        r = r - B @ (B.T @ r)  # second pass: one Gram-Schmidt pass loses orthogonality on near-collinear columns
        if np.linalg.norm(r) ** 2 >= COLLINEAR_RESIDUAL:
            basis.append(r / np.linalg.norm(r))
            columns.append(v)
            return None
        if not columns:
            return []
        coef = np.linalg.lstsq(np.column_stack(columns), v, rcond=None)[0]
        return [owners[j + 1] for j in np.flatnonzero(np.abs(coef) > 1e-6)]

    def add(name: str, is_text: bool) -> list[str] | None:
        """Add a column's block; None when it adds full rank, else (block taken back) what it depends on."""
        before, depends, full = len(basis), [], True
        for v in block(name, is_text):
            found = depends_on(v)
            if found is None:
                owners.append(name)
            else:
                full = False
                depends += found
        if full:
            return None
        del basis[before:], owners[before:], columns[before - 1:]
        return sorted(set(depends), key=owners.index)  # in column order

    if treatment:
        add(treatment, False)
    out: dict[str, str] = {}
    for c in kept:
        depends = add(c, c in categorical)
        if depends is None:
            continue
        if not depends:
            out[c] = f"constant on the {len(sub):,} rows complete in the treatment and the other covariates"
            continue
        names = ["the treatment" if d == treatment else repr(d) for d in depends]
        out[c] = f"collinear with {', '.join(names)} (a linear combination of the columns kept before it)"
    if outcome and sub[outcome].dtype.kind in "biuf":
        depends = depends_on(sub[outcome].astype(float).to_numpy())
        if depends is None:  # the outcome adds rank, as it should: take it back out of the basis
            basis.pop(), columns.pop()
            return out
        parts = [d for d in depends if d != treatment]
        if parts:
            last, others = parts[-1], ", ".join(repr(d) for d in parts[:-1])
            out[last] = ((f"with {others} it gives" if others else "gives") + f" the outcome {outcome!r} exactly "
                         "(a linear function of them): part of the outcome, measured after treatment")
            keep = [c for c in kept if c not in out]
            return {**out, **_collinear(frame, keep, [c for c in categorical if c in keep], treatment, outcome, np)}
    return out


# ------------------------------------------------------------------ the starter


def starter_spec(path: Path, treatment: str | None, outcome: str | None, design: str,
                 name: str | None = None, spec_dir: Path | None = None) -> Starter:
    """A starter spec for ``design`` on the data at ``path``; ``spec_dir``: the folder the spec will be saved in
    (``init -o``), which data.path is written relative to."""
    from causalcli.designs import families, get_design

    designs = families()

    if design not in designs:
        raise SpecError(f"--design {design}: unknown design; choose one of: {', '.join(designs)}")
    design_obj = get_design(design)
    if str(path) == "-":
        raise DataError("init reads a data file, not stdin (it reads the data several times): save it to a file "
                        "first, then give that file", file="-")
    if not path.is_file():
        raise DataError("data file not found; check the path", file=str(path))
    from causalcli.data.table import OTHER_FORMATS

    kind = OTHER_FORMATS.get("".join(path.suffixes[-1:]).lower())
    if kind:  # read as CSV it would give a misleading error (a JSON file's 'duplicate column')
        raise DataError(f"this is {kind}, and causalcli reads CSV and Parquet: save it as one of those (e.g. "
                        f"DataFrame.to_parquet, or duckdb's COPY ... TO 'data.parquet')", file=str(path))
    if treatment is None and design in ("matching", "weighting", "dml", "experiment"):
        raise SpecError(f"--treatment is needed: the {design} design compares by a treatment column")
    if outcome is None:
        raise SpecError("--outcome is needed (the outcome column)")
    data = _Data(path)
    for role, col in (("treatment", treatment), ("outcome", outcome)):
        if col is not None and col not in data.types:
            from causalcli.data.table import _suggest

            raise DataError(f"--{role} {col}: no such column{_suggest(col, data.types)}; columns: "
                            f"{', '.join(data.types)}", file=str(path))
    st = Starter(spec={}, text="")
    import os

    written = str(path) if spec_dir is None else os.path.relpath(path.resolve(), spec_dir.resolve())
    spec: dict[str, Any] = {"version": 1, "name": name or path.stem, "data": {"path": written}}
    if treatment:
        spec["treatment"] = treatment
    spec["outcome"] = outcome
    d: dict[str, Any] = {"method": design, "estimand": design_obj.estimands[0]}
    builder = {"did": _did, "synthetic_control": _synth, "experiment": _experiment}.get(design, _cross_section)
    builder(data, spec, d, st, treatment, outcome)
    if spec.get("treatment") and design in ("matching", "weighting", "dml", "did") and needs_treated_value(
            data, treatment):
        levels = sorted(r[0] for r in data.sql(f"SELECT DISTINCT {q(treatment)} FROM d WHERE {q(treatment)} "
                                               "IS NOT NULL"))
        on = treated_of(levels)
        d["treated_value"] = on[0] if on is not None else TODO
        if on is not None:
            st.guessed.append(f"design.treated_value: {on[0]} (of {treatment}'s values {levels[0]!r} and "
                              f"{levels[1]!r}: {on[1]})")
        else:
            st.notes.append(f"{treatment} holds {levels[0]!r} and {levels[1]!r}: set design.treated_value to the "
                            "treated one")
    spec["design"] = d
    spec["seed"] = 0
    st.spec = spec
    st.text = _render(st, data, design, spec_dir is not None)
    return st


def _cross_section(data: _Data, spec: dict, d: dict, st: Starter, treatment: str | None, outcome: str) -> None:
    candidates = [c for c in data.types if c not in (treatment, outcome)]
    covariates, categorical = screen_columns(data, candidates, treatment, outcome, st.left_out)
    spec["covariates"] = covariates
    spec["categorical"] = categorical
    note = _incomplete_rows(data, [c for c in (treatment, outcome) if c], covariates)
    if note:
        st.notes.append(note)
    treated = treated_expr(data, treatment) if treatment and d["estimand"] == "ate" else None
    if treated:
        n_treated, n_known = data.sql(f"SELECT count(*) FILTER (WHERE {treated}), count({q(treatment)}) FROM d")[0]
        if n_known and n_treated < ATT_SHARE * n_known:
            # NSW + CPS: 185 treated among 16,177; the ATE needs treated units comparable to every control,
            # and weighting it gave -6,456 with 90% of the units outside the overlap bounds
            d["estimand"] = "att"
            st.guessed.append(f"design.estimand: att ({n_treated:,} treated of {n_known:,} rows, "
                              f"{n_treated / n_known:.1%}: too few to stand for every control, as the ATE asks)")


def _incomplete_rows(data: _Data, roles: list[str], covariates: list[str]) -> str | None:
    """How many rows estimate will drop for a missing value in the kept columns, and the covariates that cost
    most: each column may miss under half of the rows, and together they can still drop many (card.csv: 47%)."""
    def missing(c: str) -> str:
        return f"{q(c)} IS NULL" + (f" OR isnan({q(c)})" if c in data.nan else "")

    columns = [*roles, *covariates]
    complete = data.sql(f"SELECT count(*) FROM d WHERE NOT ({' OR '.join(missing(c) for c in columns)})")[0][0]
    if complete == data.rows:
        return None
    worst = sorted(((data.rows - data.present[c] + data.nan.get(c, 0), c) for c in covariates), reverse=True)
    named = ", ".join(f"{c} {k:,}" for k, c in worst[:4] if k)
    return (f"estimate will use the {complete:,} of {data.rows:,} rows complete in the treatment, the outcome and "
            f"these covariates, and drop the others" + (f" (rows missing, by covariate: {named})" if named else ""))


def _panel_keys(data: _Data, d: dict, st: Starter, treatment: str | None, outcome: str) -> tuple:
    """design.unit and design.time of a panel design, guessed from the data (TODO where they cannot be)."""
    unit, time, why = guess_panel(data, {c for c in (treatment, outcome) if c})
    d["unit"] = unit or TODO
    d["time"] = time or TODO
    if unit and time:
        st.guessed.append(f"design.unit: {unit}, design.time: {time} ({why})")
    return unit, time


def _did(data: _Data, spec: dict, d: dict, st: Starter, treatment: str | None, outcome: str) -> None:
    unit, time = _panel_keys(data, d, st, treatment, outcome)
    taken = {c for c in (treatment, outcome) if c}
    if time and not unit:
        st.guessed.append(f"design.time: {time} (named like a period); no column is unique per unit x {time}")
        # kielmc, injury: each row is another house or person, seen once (repeated cross-sections)
        st.notes.append(f"if each row is a different person or firm seen once (repeated cross-sections), give the "
                        f"file a row number column as design.unit and a column holding each row's group's first "
                        f"treated {time} (0 for the comparison group) as design.cohort, with estimator: 2x2")
    roles = {c for c in (unit, time) if c}
    cohort = guess_cohort(data, unit, time, taken | roles) if unit and time else None
    if cohort:
        roles.add(cohort)
    treated = treated_expr(data, treatment) if treatment else None
    time_varying = bool(treatment and unit and not data.constant_within(treatment, unit))
    if treatment and unit and not time_varying:
        del spec["treatment"]
        st.notes.append(f"treatment {treatment!r} is constant within each {unit}: an ever-treated indicator, not "
                        "the treated-period indicator DiD needs, so it is left out and the cohort defines treatment")
        roles.add(treatment)
    if treatment is None or not time_varying:
        d["cohort"] = cohort or TODO
        if cohort:
            st.guessed.append(f"design.cohort: {cohort} (named like a first treated period, constant within {unit})")
    elif cohort:
        st.left_out[cohort] = "the cohort (first treated period): the treatment defines timing, so it is no covariate"
    if not (unit and time):
        spec["covariates"] = []
        return
    for c in data.types:
        if (c not in taken | roles and norm(c) in CLUSTER_NAMES and 2 <= data.distinct[c] < data.distinct[unit]
                and data.constant_within(c, unit)):
            d["cluster"] = c
            roles.add(c)
            st.guessed.append(f"design.cluster: {c} (named like a cluster, constant within {unit}, "
                              f"{data.distinct[c]} values)")
            break
    # Staggered adoption (several first-treated periods, treatment never switching off): Callaway-Sant'Anna,
    # since TWFE then compares later- with earlier-treated units (Goodman-Bacon 2021).
    cohorts, never, absorbing, smallest = None, None, False, None
    if d.get("cohort") not in (None, TODO):
        g = f"coalesce(CAST({q(cohort)} AS DOUBLE), 0)"
        cohorts, never = data.sql(f"SELECT count(DISTINCT {g}) FILTER (WHERE {g} > 0), "
                                  f"count(DISTINCT {q(unit)}) FILTER (WHERE {g} = 0) FROM d")[0]
        smallest = data.sql(f"SELECT min(n) FROM (SELECT {g} AS g_, count(DISTINCT {q(unit)}) AS n FROM d "
                            f"WHERE {g} > 0 GROUP BY g_)")[0][0]
        absorbing = True
    elif treated is not None and time_varying:
        cohorts, never = data.sql(
            f"SELECT count(DISTINCT first) FILTER (WHERE first IS NOT NULL), count(*) FILTER (WHERE first IS NULL) "
            f"FROM (SELECT min({q(time)}) FILTER (WHERE {treated}) AS first FROM d GROUP BY {q(unit)})")[0]
        smallest = data.sql(f"SELECT min(n) FROM (SELECT first, count(*) AS n FROM (SELECT min({q(time)}) FILTER "
                            f"(WHERE {treated}) AS first FROM d GROUP BY {q(unit)}) WHERE first IS NOT NULL "
                            "GROUP BY first)")[0][0]
        absorbing = not data.sql(
            f"SELECT 1 FROM (SELECT {treated} AS on_, bool_or({treated}) OVER (PARTITION BY {q(unit)} ORDER BY "
            f"{q(time)} ROWS BETWEEN UNBOUNDED PRECEDING AND 1 PRECEDING) AS before FROM d) "
            "WHERE before AND NOT on_ LIMIT 1")
    if absorbing and cohorts and cohorts >= 2:
        d["estimator"] = "callaway_santanna"
        st.guessed.append(f"design.estimator: callaway_santanna ({cohorts} treatment cohorts: staggered adoption, "
                          "where TWFE compares later- with earlier-treated units)")
        if not never:
            d["options"] = {"control_group": "not_yet_treated"}
            st.guessed.append("design.options.control_group: not_yet_treated (no unit is never treated)")
    else:
        d["estimator"] = "twfe"
    candidates = [c for c in data.types if c not in taken | roles and c not in st.left_out]
    if d["estimator"] == "twfe":
        # A column constant within each unit (or period) is absorbed by the unit (period) fixed effects.
        for c in list(candidates):
            if data.distinct[c] <= 1:
                continue
            for within, effects in ((unit, "unit"), (time, "period")):
                if data.constant_within(c, within):
                    st.left_out[c] = f"constant within each {within} (absorbed by the {effects} fixed effects)"
                    candidates.remove(c)
                    break
    else:
        candidates = _drop_unit_codes(data, unit, candidates, st.left_out)
    for c in list(candidates):
        # jtrain: clemploy, clsales (changes from the year before) are empty in 1987; keeping them drops that
        # year from the panel (with the other gaps, 82 of 471 rows were left)
        empty = data.sql(f"SELECT {q(time)} FROM d GROUP BY {q(time)} HAVING count({q(c)}) = 0 ORDER BY 1 LIMIT 1")
        if empty and data.present[c] > 0:
            st.left_out[c] = (f"empty in every row of {time} {show(empty[0][0])} (a change or lag from the period "
                              "before?): that period would be dropped from the panel")
            candidates.remove(c)
    arm_treatment = treatment if time_varying else None
    covariates, _ = screen_columns(data, candidates, arm_treatment, outcome, st.left_out, allow_text=False)
    note = _incomplete_rows(data, [c for c in (treatment, outcome) if c], covariates)
    if note:
        st.notes.append(note)
    if d["estimator"] == "callaway_santanna" and never and len(covariates) + 2 > never:
        # Callaway-Sant'Anna regresses on the covariates over the never-treated units of each group-time
        # cell: with as many covariates as those units it is singular (castle: 124 columns, 29 units).
        shown = ", ".join(covariates[:10]) + (f" and {len(covariates) - 10} more" if len(covariates) > 10 else "")
        st.notes.append(f"covariates: none kept of {len(covariates)} candidates ({shown}): callaway_santanna "
                        f"regresses on them across the {never} never-treated units, which needs fewer covariates "
                        f"than units; add the few confounders measured before treatment that parallel trends need")
        covariates = []
    if d["estimator"] == "callaway_santanna" and covariates and smallest and smallest <= len(covariates) + 1:
        # the doubly robust default fits a propensity logit per cohort; a cohort of one unit (castle: 2006
        # and 2010) is separated by its covariates, and estimate stopped at "the propensity-score logit is
        # singular"; the outcome regression needs no propensity
        d.setdefault("options", {})["method"] = "reg"
        st.guessed.append(f"design.options.method: reg (the smallest cohort has {smallest} unit"
                          f"{'s' * (smallest != 1)}, too few for a propensity model on {len(covariates)} "
                          "covariate" + "s" * (len(covariates) != 1) + ")")
    spec["covariates"] = covariates


def _synth(data: _Data, spec: dict, d: dict, st: Starter, treatment: str | None, outcome: str) -> None:
    unit, time = _panel_keys(data, d, st, treatment, outcome)
    taken = {c for c in (treatment, outcome) if c}
    treated_unit, start = TODO, TODO
    if treatment:
        del spec["treatment"]
        expr = treated_expr(data, treatment)
        if expr and unit and time:
            units = data.sql(f"SELECT DISTINCT {q(unit)} FROM d WHERE {expr} ORDER BY 1 LIMIT 3")
            if len(units) == 1:
                u = units[0][0]
                first, lo = data.sql(f"SELECT min({q(time)}) FILTER (WHERE {expr}), min({q(time)}) FROM d "
                                     f"WHERE {q(unit)} = {_literal(u)}")[0]
                treated_unit = plain(u)
                st.guessed.append(f"design.treated_unit: {show(u)} (the one unit with {treatment} on)")
                if first is not None and first > lo:
                    start = plain(first)
                    st.guessed.append(f"design.treatment_start: {show(first)} (its first period with {treatment} on)")
                else:
                    st.notes.append(f"{show(u)} is treated from its first period: there is no pre-period to fit")
            else:
                st.notes.append(f"{len(units) if len(units) < 3 else 'several'} units have {treatment} on: "
                                "synthetic control takes one treated unit; set design.treated_unit")
        st.notes.append(f"treatment {treatment!r} is not a key of synthetic_control: treated_unit and "
                        "treatment_start define who is treated and when")
    d["treated_unit"] = treated_unit
    d["treatment_start"] = start
    roles = taken | {c for c in (unit, time) if c}
    candidates = [c for c in data.types if c not in roles]
    if unit:
        candidates = _drop_unit_codes(data, unit, candidates, st.left_out)
    # Predictors are pre-period averages: missing years are skipped, so no missing-share rule here;
    # neither treatment-arm nor rank rules apply (V weights them, one treated unit).
    predictors, _ = screen_columns(data, candidates, None, outcome, st.left_out, allow_text=False,
                                   rank_check=False, arm_check=False, missing_check=False)
    d["predictors"] = predictors


UNIT_CODE_ENDINGS = ("code", "no", "num", "nr", "number", "fip", "fips", "id", "idx", "index")


def _drop_unit_codes(data: _Data, unit: str, candidates: list[str], left_out: dict[str, str]) -> list[str]:
    """Candidates without another numbering of the units (basque's regionno beside regionname: consecutive
    integers, one per unit, constant within it): a label, which would match donors or units by their number."""
    n_units = data.distinct.exact_count(unit)
    kept = []
    for c in candidates:
        if (data.kind(c) == "integer" and data.distinct[c] >= 2 and data.distinct.exact_count(c) == n_units
                and data.constant_within(c, unit)):
            lo, hi = data.sql(f"SELECT min({q(c)}), max({q(c)}) FROM d")[0]
            if hi - lo + 1 == n_units or _id_like(c) or norm(c).endswith(UNIT_CODE_ENDINGS):
                left_out[c] = f"numbers the units (one value per {unit}, {lo:g} to {hi:g}): a label, not a measurement"
                continue
        kept.append(c)
    return kept


def _literal(v: Any) -> str:
    if isinstance(v, str):
        return "'" + v.replace("'", "''") + "'"
    return repr(v) if not hasattr(v, "isoformat") else f"'{v.isoformat()}'"


def _experiment(data: _Data, spec: dict, d: dict, st: Starter, treatment: str | None, outcome: str) -> None:
    del d["estimand"]  # one estimand (ate); the design's default
    levels = [r[0] for r in data.sql(f"SELECT DISTINCT {q(treatment)} FROM d WHERE {q(treatment)} IS NOT NULL "
                                     "ORDER BY 1 LIMIT 101")]
    control = TODO
    for wanted in CONTROL_NAMES:
        match = [v for v in levels if str(plain(v)).strip().lower() == wanted]
        if match:
            control = plain(match[0])
            st.guessed.append(f"design.control: {show(control)} (a level of {treatment} named like a control arm)")
            break
    if control == TODO:
        st.notes.append(f"no level of {treatment} is named like a control arm (levels: "
                        f"{', '.join(show(v) for v in levels[:10])}); set design.control")
    d["control"] = control
    metric: dict[str, Any] = {"name": outcome, "outcome": outcome}
    stem = norm(outcome)
    for c in data.types:
        if c not in (treatment, outcome) and data.kind(c) in ("integer", "numeric") and norm(c) in (
                f"pre_{stem}", f"{stem}_pre", f"baseline_{stem}", f"{stem}_baseline", f"lag_{stem}", f"{stem}_lag"):
            metric["covariate"] = c
            st.guessed.append(f"design.metrics[0].covariate: {c} (named like the pre-experiment {outcome}: CUPED)")
            break
    d["metrics"] = [metric]
    spec.pop("outcome", None)
    others = [c for c in data.types if c not in (treatment, outcome, metric.get("covariate"))
              and data.kind(c) in ("integer", "numeric") and data.distinct[c] > 1 and data.distinct[c] < data.rows]
    if others:
        st.notes.append(f"other numeric columns, possible further metrics: {', '.join(others)}")
    st.notes.append("add design.expected_split with the planned allocation for the sample-ratio check")


def _render(st: Starter, data: _Data, design: str, placed: bool = False) -> str:
    import yaml

    where = "this file's folder" if placed else "where you save this file (or use init -o FILE)"
    lines = [f"# Starter spec written by `causalcli init` from {data.path} ({data.rows:,} rows, "
             f"{len(data.types)} columns); data.path is relative to {where}."]
    if st.guessed:
        lines.append("# Guessed from the data (check them):")
        lines += [f"#   {g}" for g in st.guessed]
    todo = _todo_keys(st.spec)
    if todo:
        lines.append(f"# Set {', '.join(todo)} (written as TODO): `causalcli validate` refuses a TODO by key.")
    for note in st.notes:
        lines.append(f"# Note: {note}.")
    if st.left_out:
        lines.append("# Columns left out, and why:")
        lines += [f"#   {c}: {why}" for c, why in st.left_out.items()]
    if design in ("matching", "weighting", "dml", "did"):
        lines.append("# Keep only covariates measured before treatment (confounders), then run `causalcli validate`.")
    # a column name with a line break must not end a comment early
    comments = "\n".join(line.replace("\r", " ").replace("\n", " ") for line in lines)
    return comments + "\n" + yaml.safe_dump(st.spec, sort_keys=False, allow_unicode=True)


def _todo_keys(node: Any, path: str = "") -> list[str]:
    if isinstance(node, dict):
        return [k for key, v in node.items() for k in _todo_keys(v, f"{path}.{key}" if path else str(key))]
    if isinstance(node, list):
        return [k for i, v in enumerate(node) for k in _todo_keys(v, f"{path}[{i}]")]
    return [path] if node == TODO else []
