"""The fast grouping of rows to units in DuckDB (``design.unit``): the same ``study_units`` for less work.

``units.group_by_unit`` groups the rows by ``(unit, arm)`` and takes, per unit, the least and greatest hash
of each segment column and an exact sum of each floating column (its values rounded to s decimals). On 10^8
rows grouped to 10^6 units those were most of the command's time: a hash table keyed on a string column (the
arm), three aggregates per segment column, and the rounding of every value. When the rows allow it, this
module writes the grouping with less per row, and the result is the same table, bit for bit:

- grouped by the unit alone: an integer unit with at most 2^20 values in its range is grouped by DuckDB's
  perfect hash aggregate (an array indexed by the unit, no hashing or probing; ``duckdb_settings``);
- the arm and the segment columns are checked by the least and greatest of one hash of them all (a unit whose
  rows all agree has one hash), and their values are looked up from that hash afterwards (``_unit_values``).
  When some unit's rows do not agree (a unit in two arms, a segment that varies or is missing on some rows,
  rows with no arm: NULL hashes to a value) or a unit has no arm, the fast table is dropped and the grouping
  by ``(unit, arm)`` runs, which says what is wrong or handles it;
- the exact sums: each value's integer ``D = round(x * 10^s)``, computed in DOUBLE (the integer of DuckDB's
  ``CAST(x AS DECIMAL(38, s))``; ``tests/test_experiment_units_scan.py`` checks it, ties included), is split
  without error into ``hi = trunc(D / 2^k)`` and ``lo = D - hi * 2^k``, each a BIGINT, with ``2^k`` chosen
  from the column's largest value so that ``hi`` fits (one part when ``D`` fits); their BIGINT sums are exact
  (DuckDB adds BIGINTs in 128 bits), and ``hi_sum * 2^k + lo_sum`` is the sum of the ``D``, which the grouping
  by (unit, arm) sums as HUGEINT; both turn it into a DOUBLE by ``to_double``. Two multiplications, a
  rounding and a truncation per value cost much less than DuckDB's cast to DECIMAL(38, s) (10^7 rows, two
  columns: about 2 s less).

Other engines (Spark, PostgreSQL) keep the grouping by ``(unit, arm)``.
"""

from __future__ import annotations

import math
from typing import TYPE_CHECKING

from causalcli.data.sql import TABLE, quote_identifier

if TYPE_CHECKING:  # pragma: no cover
    from causalcli.data.table import Table

BIGINT_BITS = 62  # |hi| < 2^62: a BIGINT with room to spare
LOOKUP_ROWS = 100_000  # the rows that name the units' arm and segment values (``_unit_values``)
PERFECT_HASH_MAX_BITS = 20  # DuckDB's perfect hash table holds 2^bits groups per thread: 10^6 units at most


def applies(table: "Table") -> bool:
    """The fast grouping is written for embedded DuckDB."""
    return table.engine is None


def duckdb_settings(unit: str | None) -> dict[str, int]:
    """With ``design.unit``: DuckDB may group by an integer unit with its perfect hash aggregate up to
    ``PERFECT_HASH_MAX_BITS`` bits of range (its default, 12 bits, stops at 4,096 units); the table is sized
    by the column's range, so small data keep small tables."""
    return {"perfect_ht_threshold": PERFECT_HASH_MAX_BITS} if unit is not None else {}


def scaled(value: str, scale: int) -> str:
    """The integer round(x * 10^s) of a DOUBLE, computed in DOUBLE (the integer of DuckDB's DECIMAL(38, s) cast)."""
    from causalcli.designs.experiment.stats import lit

    return f"round({value} * {lit(10.0 ** scale)})"


def to_double(total: str, scale: int) -> str:
    """A sum of the integers ``scaled`` as a DOUBLE: one conversion, one division by 10^s (DuckDB's cast of
    a DECIMAL(38, s) to DOUBLE rounds no better and multiplies 128-bit integers: 0.3 s for 10^6 units)."""
    from causalcli.designs.experiment.stats import lit

    return f"(CAST({total} AS DOUBLE) / {lit(10.0 ** scale)})"


def scaled_sum_parts(value: str, ok: str, scale: int, largest: float) -> tuple[list[str], str]:
    """The aggregates that sum the integers round(value * 10^s) over rows where ``ok`` exactly, as BIGINT parts,
    and the expression over them (``{0}``, ``{1}``: the parts' names) that gives the DOUBLE that the grouping by
    (unit, arm) gives (``units._unit_sum``: the same integers summed as HUGEINT, then ``to_double``)."""
    from causalcli.designs.experiment.stats import lit

    bound = largest * 10.0 ** scale
    k = max(0, math.ceil(math.log2(bound)) - BIGINT_BITS) if bound >= 1 else 0
    rounded = scaled(value, scale)
    if k == 0:  # every rounded value fits a BIGINT
        return [f"sum(CASE WHEN {ok} THEN CAST({rounded} AS BIGINT) END)"], to_double("{0}", scale)
    high = f"trunc({rounded} * {lit(2.0 ** -k)})"  # exact: a power of two, then an integer part
    parts = [f"sum(CASE WHEN {ok} THEN CAST({high} AS BIGINT) END)",
             f"sum(CASE WHEN {ok} THEN CAST({rounded} - {high} * {lit(2.0 ** k)} AS BIGINT) END)"]  # exact: Sterbenz
    return parts, to_double(f"(CAST({{0}} AS HUGEINT) * CAST('{2 ** k}' AS HUGEINT) + {{1}})", scale)


def group(table: "Table", name: str, unit: str, arm: str, segments: list[str], select: list[str],
          sums: dict[str, tuple[list[str], str]]) -> bool:
    """Create ``name`` (``study_units``) grouped by the unit alone; False (and no table) when some unit's rows
    disagree on the arm or a segment column, and the grouping by (unit, arm) must run instead.

    ``select``: the aggregates of the grouping by (unit, arm) that stay as they are; ``sums``: the exact sums
    written as parts (alias -> (part aggregates, expression over them)). The arm and the segment values are not
    aggregated: each unit keeps the one hash of them all, and its values are looked up from that hash
    (``_unit_values``).
    """
    q_unit = quote_identifier(unit)
    together = ", ".join(map(quote_identifier, [arm, *segments]))
    inner = [f"{q_unit} AS u", *select, f"min(hash({together})) AS hash_lo", f"max(hash({together})) AS hash_hi"]
    outer = ["u", "a", *(_alias(s) for s in select), *(f"g{i}" for i in range(len(segments)))]
    for i in range(len(segments)):  # the check pass's columns: one hash per unit, so no segment varies
        outer += [f"hash_lo AS h{i}", f"hash_lo AS i{i}"]
    for alias, (parts, expression) in sums.items():
        names = [f"{alias}_{j}" for j in range(len(parts))]
        inner += [f"{p} AS {n}" for p, n in zip(parts, names)]
        outer.append(f"{expression.format(*names)} AS {alias}")
    con = table.con
    grouped, values = f"{name}_by_hash", f"{name}_values"
    con.execute(f"CREATE OR REPLACE TEMPORARY TABLE {grouped} AS SELECT {', '.join(inner)} FROM {TABLE} "
                f"GROUP BY {q_unit}")
    try:
        # a unit with rows of no arm has two hashes (NULL hashes to a value)
        if con.execute(f"SELECT count(*) FROM {grouped} WHERE u IS NOT NULL AND hash_lo <> hash_hi").fetchall()[0][0] \
                or not _unit_values(con, grouped, values, arm, segments, together):
            return False
        con.execute(f"CREATE OR REPLACE TEMPORARY TABLE {name} AS SELECT {', '.join(outer)} FROM {grouped} "
                    f"LEFT JOIN {values} ON hash_lo = h")
    finally:
        con.execute(f"DROP TABLE IF EXISTS {grouped}")
        con.execute(f"DROP TABLE IF EXISTS {values}")
    if con.execute(f"SELECT count(*) FROM {name} WHERE u IS NOT NULL AND a IS NULL").fetchall()[0][0]:  # no arm at all
        con.execute(f"DROP TABLE {name}")
        return False
    return True


def _unit_values(con, grouped: str, values: str, arm: str, segments: list[str], together: str) -> bool:
    """``values``: the arm and segment values (``a``, ``g<i>``) of every hash that is some unit's (``h``). Carrying
    them through the grouping cost as much as the rest of it (``any_value`` of three strings, 10^8 rows: 1.6 s of
    8.4 s); the hashes are few (arms x segment values), so the first ``LOOKUP_ROWS`` rows nearly always name
    them all, and a scan filtered on the hashes still missing finds the rest. False when two value tuples share
    a hash (the fast grouping cannot tell them apart)."""
    columns = ", ".join([f"{quote_identifier(arm)} AS a",
                         *(f"{quote_identifier(c)} AS g{i}" for i, c in enumerate(segments))])
    con.execute(f"CREATE OR REPLACE TEMPORARY TABLE {values} AS SELECT DISTINCT hash({together}) AS h, {columns} "
                f"FROM (SELECT * FROM {TABLE} LIMIT {LOOKUP_ROWS}) AS head")
    # the rows without a unit (u NULL) are counted and dropped: their values are never read
    missing = f"SELECT DISTINCT hash_lo FROM {grouped} WHERE u IS NOT NULL AND hash_lo NOT IN (SELECT h FROM {values})"
    if con.execute(f"SELECT count(*) FROM ({missing})").fetchall()[0][0]:
        con.execute(f"INSERT INTO {values} SELECT DISTINCT hash({together}) AS h, {columns} FROM {TABLE} "
                    f"WHERE hash({together}) IN ({missing})")
    return not con.execute(f"SELECT count(*) - count(DISTINCT h) FROM {values}").fetchall()[0][0]


def _alias(aggregate: str) -> str:
    """The name an ``... AS name`` select item gives its column."""
    return aggregate.rsplit(" AS ", 1)[1]
