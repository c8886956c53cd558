"""The data file as ``init`` sees it: opened in DuckDB, with the facts the guesses need computed once.

Column kinds, distinct counts (HyperLogLog where many, exact where a rule compares them with a bound),
missing shares, and a deterministic sample for the rules that need numpy. Also how values are
written back into YAML and SQL.
"""

from __future__ import annotations

import math
import re
from pathlib import Path
from typing import Any

from causalcli.data.table import quote_identifier as q
from causalcli.errors import DataError

SAMPLE_ROWS = 100_000         # rows read into numpy for the rank and post-treatment checks
TIME_TYPES = ("DATE", "TIMESTAMP")
INTEGER_TYPES = ("TINYINT", "SMALLINT", "INTEGER", "BIGINT", "HUGEINT", "UTINYINT", "USMALLINT", "UINTEGER",
                 "UBIGINT")
FLOAT_TYPES = ("FLOAT", "DOUBLE", "DECIMAL", "REAL")
NA_WORDS = {"na", "n/a", "#n/a", "null"}  # missing numbers as R (write.csv) and spreadsheets write them


def check_data_file(path: Path) -> None:
    """A file init can read: not stdin, present, and CSV or Parquet (named in one line otherwise)."""
    if str(path) == "-":
        raise DataError("init reads a data file, not stdin (it reads the data several times): save it to a file "
                        "first, then give that file", file="-")
    from causalcli.data.table_formats import detect

    if detect(str(path)):  # a Delta or Iceberg table: read at its latest snapshot, as data.path reads it
        return
    if path.is_dir():
        raise DataError("this is a folder, and init reads a CSV or Parquet file, or a Delta or Iceberg table's "
                        "folder (with _delta_log/ or metadata/*.metadata.json): give one of those", file=str(path))
    if not path.is_file():
        raise DataError("data file not found; check the path", file=str(path))
    from causalcli.data.load import OTHER_FORMATS

    kind = OTHER_FORMATS.get("".join(path.suffixes[-1:]).lower())
    if kind:  # read as CSV it would give a misleading error (a JSON file's 'duplicate column')
        raise DataError(f"this is {kind}, and causalcli reads CSV and Parquet: save it as one of those (e.g. "
                        f"DataFrame.to_parquet, or duckdb's COPY ... TO 'data.parquet')", file=str(path))


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


def sql_literal(v: Any) -> str:
    if isinstance(v, str):
        return "'" + v.replace("'", "''") + "'"
    return repr(v) if not hasattr(v, "isoformat") else f"'{v.isoformat()}'"


class DataProfile:
    """The file in DuckDB with the facts the guesses need, computed once."""

    def __init__(self, path: Path) -> None:
        import duckdb

        from causalcli.data.load import read_file

        self.path = path
        self.con = duckdb.connect(":memory:")
        from causalcli.data.table_formats import detect, read_snapshot

        table_format = detect(str(path))
        fmt = "parquet" if table_format or path.suffix.lower() in (".parquet", ".pq") else "csv"
        if table_format:
            read_snapshot(self.con, str(path), table_format, None, str(path), kind="TABLE", table="d")
        else:
            read_file(self.con, str(path), fmt, str(path), "d")
        self.types = dict(self.con.execute("SELECT column_name, column_type FROM (DESCRIBE d)").fetchall())
        # R writes missing numbers as NA, Stata as '.': such columns read as text; read them again with those
        # strings as missing, and the spec says so (data.na_values)
        self.na_values = self._missing_markers() if fmt == "csv" else []
        if self.na_values:
            self.con.execute("DROP TABLE d")
            read_file(self.con, str(path), fmt, str(path), "d", na_values=self.na_values)
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
        self.distinct = DistinctCounts(self)
        self.integral = {c: self._integral(c) for c, t in self.types.items() if t.upper().startswith(FLOAT_TYPES)}

    def _missing_markers(self) -> list[str]:
        """R's and spreadsheets' missing-value words (NA, N/A, #N/A, NULL) that are the only non-numbers of some
        text column holding numbers otherwise. Stata's '.' and a '-' stay text (they may mean something else):
        the column is left out with advice that names data.na_values."""
        found: set[str] = set()
        for c, t in self.types.items():
            if not t.upper().startswith("VARCHAR"):
                continue
            v = f"trim({q(c)})"
            rows = self.sql(f"SELECT DISTINCT {v} FROM d WHERE {v} <> '' AND TRY_CAST({v} AS DOUBLE) IS NULL LIMIT 4")
            others = {r[0] for r in rows}
            numbers = self.sql(f"SELECT count(TRY_CAST({v} AS DOUBLE)) FROM d")[0][0]
            if others and numbers and len(others) <= 3 and all(o.lower() in NA_WORDS for o in others):
                found |= others
        return sorted(found)

    def check_columns(self, roles: dict[str, str | None]) -> None:
        """Each role's column is in the file (``--treatment x``: no such column, with a suggestion)."""
        from causalcli.data.table import _suggest

        for role, column in roles.items():
            if column is not None and column not in self.types:
                raise DataError(f"--{role} {column}: no such column{_suggest(column, self.types)}; columns: "
                                f"{', '.join(self.types)}", file=str(self.path))

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
        # rows without a unit are dropped by estimate: they are no unit of their own
        return not self.sql(f"SELECT 1 FROM d WHERE {q(unit)} IS NOT NULL GROUP BY {q(unit)} "
                            f"HAVING count(DISTINCT {q(column)}) > 1 LIMIT 1")

    def sample(self, columns: list[str]) -> "Any":
        """Up to SAMPLE_ROWS rows of these columns (all rows when the file is that small), as pandas."""
        cols = ", ".join(q(c) for c in dict.fromkeys(columns))
        if self.rows <= SAMPLE_ROWS:
            return self.con.execute(f"SELECT {cols} FROM d ORDER BY rowid").df()
        # rows chosen by a hash of their position: the same rows on every run, whatever the threads
        keep = math.ceil(1_000_000 * SAMPLE_ROWS / self.rows)
        return self.con.execute(f"SELECT {cols} FROM d WHERE hash(rowid) % 1000000 < {keep} ORDER BY rowid").df()


class DistinctCounts:
    """Distinct values of a column: exact where few (at most EXACT_BELOW: constants, levels, periods), else
    the HyperLogLog count; ``exact_count`` where a large count is compared with a bound (identifier, panel)."""

    EXACT_BELOW = 10_000

    def __init__(self, data: DataProfile) -> None:
        self.data = data
        self.exact: dict[str, int] = {}

    def __getitem__(self, c: str) -> int:
        if self.data.approx[c] > self.EXACT_BELOW:
            return self.data.approx[c]
        return self.exact_count(c)

    def at_most(self, c: str, bound: int) -> bool:
        """Does ``c`` hold at most ``bound`` distinct values? The HyperLogLog count decides only far from the bound
        (it runs 10-20% off, low or high: 15,000 counties of a two-period panel counted 17,568, over rows // 2, and the panel's
        unit was not found); near it the exact count does."""
        approx = self.data.approx[c]
        if approx <= self.EXACT_BELOW or 0.5 * bound < approx < 1.5 * bound:
            return self.exact_count(c) <= bound
        return approx <= bound

    def exact_count(self, c: str) -> int:
        if c not in self.exact:
            self.exact[c] = self.data.sql(f"SELECT count(DISTINCT {q(c)}) FROM d")[0][0]
        return self.exact[c]
