"""The panel of difference-in-differences: its checks in DuckDB, and the arrays every estimator reads.

The checks run in DuckDB before any row reaches Python; each failure is a one-line ``DataError`` (exit 3)
naming the unit and period. ``read_panel`` fetches the rows the study uses and checks that unit x time is
unique; ``build_panel`` turns them into ``PanelData``, the picklable value that the estimators and the
refuters share (never changed after it is built: a refuter's variant is a copy, ``subset_units``).
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from typing import TYPE_CHECKING, Any

import numpy as np

from causalcli.data.table import TABLE, quote_identifier as q
from causalcli.data.types import period_json, period_text
from causalcli.data.weights import zero_weight_warning
from causalcli.errors import DataError

if TYPE_CHECKING:  # pragma: no cover
    from causalcli.data.table import MissingRows, Table
    from causalcli.spec.models import Study


ROWS = "(each row)"  # PanelData.cluster_name of repeated cross-sections without design.cluster: HC1


@dataclass(frozen=True)
class PanelData:
    """Arrays shared by the estimator and the refuters (picklable)."""

    estimator: str
    unit: np.ndarray        # row -> unit code
    n_units: int
    time: np.ndarray        # row -> period index into ``times``
    times: np.ndarray       # sorted distinct periods
    y: np.ndarray
    g: np.ndarray           # unit -> first treated period index, -1 = never (in the panel)
    d: np.ndarray | None    # row treatment (twfe without absorbing assumption); None: 1(time >= g)
    X: np.ndarray           # covariates (rows x k)
    xnames: tuple[str, ...]
    w: np.ndarray | None
    cluster: np.ndarray
    n_clusters: int
    cluster_name: str
    leads: int | None
    lags: int | None
    options: Any
    n: dict
    panel: dict
    warnings: tuple[str, ...]
    unit_labels: np.ndarray
    time_labels: tuple[str, ...] | None = None  # ISO day of each period number when time holds dates
    cells: Any = None  # ``cells_regression.CellRegression``: the rows are cohort x period cells, the units cohorts
    cross_sections: bool = False  # no design.unit: each row its own unit, the groups in place of unit effects
    segment_columns: tuple[str, ...] = ()  # the top-level segments (``segments``)
    segment_values: tuple[np.ndarray, ...] = ()  # each unit's value of each, as labels (constant within a unit)

    @property
    def hc1(self) -> bool:
        """No design.unit nor design.cluster: each row its own cluster, so CRV1 is HC1 (its words and its t)."""
        return self.cluster_name == ROWS


def show(v) -> str:
    """A unit or period value as the user wrote it (3.0 -> '3')."""
    if isinstance(v, float) and v.is_integer():
        return str(int(v))
    return str(v)


# ---------------------------------------------------------------- checks in DuckDB


def check_absorbing(table: "Table", unit: str, time: str, treatment: str) -> None:
    """Treatment that switches off after switching on (designs that assume it stays on)."""
    row = table.sql(
        f"SELECT {q(unit)}, {q(time)} FROM (SELECT {q(unit)}, {q(time)}, {q(treatment)} AS d, "
        f"max({q(treatment)}) OVER (PARTITION BY {q(unit)} ORDER BY {q(time)} "
        f"ROWS BETWEEN UNBOUNDED PRECEDING AND 1 PRECEDING) AS before FROM {TABLE}) "
        f"WHERE before = 1 AND d = 0 ORDER BY 1, 2 LIMIT 1")
    if row:
        u, t = row[0]
        t = period_text(t, table.period_labels.get(time))
        raise DataError(f"treatment {treatment!r} switches off: unit {show(u)} is untreated in period {t} "
                        "after being treated; this estimator assumes treatment stays on once started "
                        "(use estimator: twfe without event_study for on/off treatments)",
                        file=table.file, key="treatment", column=treatment)


def check_cohort(table: "Table", unit: str | None, time: str, cohort: str, treatment: str | None) -> None:
    """Cohort constant within a unit, and (with a treatment column) treatment == 1(time >= cohort > 0); without a
    unit (repeated cross-sections) each row is its own."""
    row = unit and table.sql(f"SELECT {q(unit)}, count(DISTINCT coalesce(CAST({q(cohort)} AS DOUBLE), 0)) FROM {TABLE} "
                    f"GROUP BY {q(unit)} HAVING count(DISTINCT coalesce(CAST({q(cohort)} AS DOUBLE), 0)) > 1 ORDER BY 1 "
                    "LIMIT 1")
    if row:
        raise DataError(f"cohort {cohort!r} varies within unit {show(row[0][0])}; it must be the unit's first "
                        "treated period (0 or empty = never treated) in every row", file=table.file,
                        key="design.cohort", column=cohort)
    if treatment is None:
        return
    g = f"coalesce(CAST({q(cohort)} AS DOUBLE), 0)"
    row = table.sql(
        f"SELECT {q(unit) if unit else 'NULL'}, {q(time)}, {q(treatment)}, {g} FROM {TABLE} "
        f"WHERE CAST({q(treatment)} AS DOUBLE) <> CASE WHEN {g} > 0 AND {q(time)} >= {g} THEN 1 ELSE 0 END "
        "ORDER BY 1, 2 LIMIT 1")
    if row:
        u, t, d, gv = row[0]
        labels = table.period_labels.get(time)
        implied = int(gv > 0 and t >= gv)
        t = period_text(t, labels)
        gv = ("after the last period" if labels and gv > len(labels) else period_text(gv, labels)) if gv else 0
        hint = ""
        ever = table.sql(f"SELECT count(*) FROM {TABLE} WHERE CAST({q(treatment)} AS DOUBLE) = "
                         f"CASE WHEN {g} > 0 THEN 1 ELSE 0 END")[0][0]
        if ever == table.rows:
            hint = (f"; {treatment!r} looks like an ever-treated indicator: give the treated-period indicator, "
                    "or leave 'treatment' out and let the cohort define it")
        who = f"unit {show(u)}" if unit else "a row"
        raise DataError(f"cohort {cohort!r} is inconsistent with treatment {treatment!r}: {who} in period "
                        f"{show(t)} has treatment {show(d)} but cohort {show(gv)} implies "
                        f"{implied}{hint}", file=table.file, key="design.cohort", column=cohort)


def check_group(table: "Table", unit: str | None, time: str, group: str, treatment: str) -> None:
    """design.group: 0/1 (constant within a unit), and treatment == group x 1(time >= start), the start being the
    first period in which the treatment is 1."""
    g, d = f"CAST({q(group)} AS DOUBLE)", f"CAST({q(treatment)} AS DOUBLE)"
    labels = table.period_labels.get(time)
    if not table.is_numeric(group):
        example = table.sql(f"SELECT min({q(group)}) FROM {TABLE}")[0][0]
        raise DataError(f"group column {group!r} must be 0/1 (or boolean), 1 marking the treated group's rows; it "
                        f"is {table.types[group]} (e.g. {str(example)!r}): make it 0/1 in the data",
                        file=table.file, key="design.group", column=group)
    lo, hi, outside = table.sql(f"SELECT min({g}), max({g}), count(*) FILTER (WHERE {g} NOT IN (0, 1)) "
                                f"FROM {TABLE}")[0]
    if outside or lo == hi:
        found = f"values from {show(lo)} to {show(hi)}" if outside else f"only the value {show(lo)}"
        raise DataError(f"group column {group!r} must be 0/1 (or boolean) with both values, 1 marking the treated "
                        f"group's rows; found {found}", file=table.file, key="design.group", column=group)
    if unit:
        check_constant_within_unit(table, unit, group, "design.group", "group")
    start = table.sql(f"SELECT min({q(time)}) FROM {TABLE} WHERE {d} = 1")[0][0]
    if start is None:
        raise DataError(f"treatment {treatment!r} is never 1, so the start of the treatment is unknown",
                        file=table.file, key="treatment", column=treatment)
    if start == table.sql(f"SELECT min({q(time)}) FROM {TABLE}")[0][0]:
        raise DataError(f"treatment {treatment!r} is 1 from the first period ({period_text(start, labels)}) on: the "
                        "2x2 needs rows of the group before the start; 'treatment' is the treated-period "
                        f"indicator (1 in the rows of {group} = 1 from the start on), not the group",
                        file=table.file, key="treatment",
                        column=treatment)
    row = table.sql(f"SELECT {q(time)}, {g}, {d} FROM {TABLE} WHERE {d} <> CASE WHEN {g} = 1 AND {q(time)} >= "
                    f"CAST({float(start)!r} AS DOUBLE) THEN 1 ELSE 0 END ORDER BY 1, 2 LIMIT 1")
    if row:
        t, gv, dv = row[0]
        raise DataError(f"treatment {treatment!r} is inconsistent with group {group!r}: a row in period "
                        f"{period_text(t, labels)} with {group} = {show(gv)} has treatment {show(dv)}, but the "
                        f"treatment starts in {period_text(start, labels)} (its first period with treatment 1), "
                        f"so it should be {1 - int(dv)}; treatment must be 1 exactly in the group's rows from the "
                        "start on", file=table.file, key="treatment", column=treatment)


def check_constant_within_unit(table: "Table", unit: str, column: str, key: str, what: str) -> None:
    row = table.sql(f"SELECT {q(unit)} FROM {TABLE} GROUP BY {q(unit)} HAVING count(DISTINCT {q(column)}) > 1 "
                    "ORDER BY 1 LIMIT 1")
    if row:
        raise DataError(f"{what} {column!r} varies within unit {show(row[0][0])}; it must be constant per unit",
                        file=table.file, key=key, column=column)


# ---------------------------------------------------------------- the rows


@dataclass(frozen=True)
class PanelColumns:
    """The complete rows of the columns a study uses, with the unit and period codes."""

    arrays: dict[str, np.ndarray]
    missing: "MissingRows"
    unit_raw: np.ndarray
    time_raw: np.ndarray
    times: np.ndarray
    tcode: np.ndarray
    ucode: np.ndarray
    n_units: int
    unit_labels: np.ndarray
    zero_weight: int = 0  # rows dropped for a weight of 0


def _used_columns(study: "Study") -> list[str]:
    d = study.design
    cols = [*([d.unit] if d.unit else []), d.time, study.outcome, *dict.fromkeys(study.covariates)]
    cols += [c for c in (study.treatment, d.cohort, d.group, d.cluster, study.weights) if c]
    return cols + [c for c in dict.fromkeys(study.segments) if c not in cols]


def _first_repeated_cell(ucode: np.ndarray, n_units: int, tcode: np.ndarray, n_times: int) -> tuple[int, int] | None:
    """(cell, rows in it) of the first unit x period cell holding more than one row, or None."""
    counts = np.bincount(ucode * n_times + tcode, minlength=n_units * n_times)
    if counts.max() <= 1:
        return None
    k = int(np.flatnonzero(counts > 1)[0])
    return k, int(counts[k])


def _has_complete_row(table: "Table", columns: list[str]) -> bool:
    """Whether some row has every column present (not NULL, nor NaN in a floating column), as ``Table.arrays``
    keeps them; one row is enough for DuckDB to stop."""
    present = []
    for c in dict.fromkeys(columns):
        present.append(f"{q(c)} IS NOT NULL")
        if table.types[c].upper() in ("DOUBLE", "FLOAT", "REAL"):
            present.append(f"NOT isnan({q(c)})")
    return bool(table.sql(f"SELECT 1 FROM {TABLE} WHERE {' AND '.join(present)} LIMIT 1"))


def check_rows(study: "Study", table: "Table") -> None:
    """Some complete row, and unit x time unique on the complete rows (``read_panel`` raises the errors).

    Without reading every column: a panel unique on all its rows is unique on the complete ones, so unit and
    time are fetched alone, and only when a cell repeats (or no row is complete) is ``read_panel`` run to find
    it among the rows the study keeps.
    """
    from causalcli.models.fixed_effects import codes_of

    d = study.design
    if not _has_complete_row(table, _used_columns(study)):
        read_panel(study, table)
    if d.unit is None:  # repeated cross-sections: each row its own unit, nothing can repeat
        return
    if table.engine is not None:  # the panel stays in the engine (did's cells): a repeated cell found there
        if table.sql(f"SELECT 1 FROM {TABLE} WHERE {q(d.unit)} IS NOT NULL AND {q(d.time)} IS NOT NULL "
                     f"GROUP BY {q(d.unit)}, {q(d.time)} HAVING count(*) > 1 LIMIT 1"):
            read_panel(study, table)
        return
    arr, _ = table.arrays([d.unit, d.time])
    tcode, n_times = codes_of(np.asarray(arr[d.time], dtype=np.float64))
    ucode, n_units = codes_of(np.asarray(arr[d.unit]))
    if _first_repeated_cell(ucode, n_units, tcode, n_times) is not None:
        read_panel(study, table)


def missing_roles(study: "Study") -> list[tuple[str, str, str]]:
    """The panel's columns in the order a row missing several is attributed (``n.dropped_missing_<role>``)."""
    d = study.design
    roles = [(study.treatment, "treatment", "treatment"), (study.outcome, "outcome", "outcome"),
             *[(c, "covariates", "covariate") for c in dict.fromkeys(study.covariates)], (d.unit, "unit", "unit"),
             (d.time, "time", "time"), (d.cohort, "cohort", "cohort"), (d.group, "group", "group"),
             (d.cluster, "cluster", "cluster"), (study.weights, "weights", "weights")]
    from causalcli.data.segments import SEGMENT_ROLE

    taken = {r[0] for r in roles}
    roles += [(c, *SEGMENT_ROLE) for c in dict.fromkeys(study.segments) if c not in taken]
    return [r for r in roles if r[0]]


def read_panel(study: "Study", table: "Table") -> PanelColumns:
    """The complete rows of the panel and their codes; unit x time must be unique on them."""
    from causalcli.data.table import dropped_missing
    from causalcli.models.fixed_effects import codes_of

    d = study.design
    arr, dropped = table.arrays(_used_columns(study))
    roles = missing_roles(study)
    missing = dropped_missing(table, roles, dropped)
    from causalcli.data.table import refuse_infinite

    # an infinite outcome or covariate is kept as a value: the fit turned it into a NaN effect with no word
    refuse_infinite(arr, [r for r in roles if r[0] not in (d.unit, d.time)], (), table.file)
    if len(arr[d.time]) == 0:
        raise DataError("no complete rows: every row misses a value in the columns used", file=table.file)
    zero_weight = 0
    if study.weights:
        # a row of weight 0 adds nothing to the fit but would count in N (and G) of the small-sample factor;
        # fixest drops such rows, so CRV1 standard errors equal its own
        positive = np.asarray(arr[study.weights], dtype=np.float64) > 0
        zero_weight = int(positive.size - np.count_nonzero(positive))
        if zero_weight == positive.size:
            raise DataError("every weight is zero", file=table.file, key="weights")
        if zero_weight:
            arr = {k: v[positive] for k, v in arr.items()}
    time_raw = np.asarray(arr[d.time], dtype=np.float64)
    # no design.unit: repeated cross-sections, each row its own unit (numbered in the rows' value order)
    unit_raw = np.asarray(arr[d.unit]) if d.unit else np.arange(time_raw.size)
    tcode, n_times, times = codes_of(time_raw, labels=True)
    ucode, n_units, unit_labels = codes_of(unit_raw, labels=True)
    repeated = _first_repeated_cell(ucode, n_units, tcode, n_times)
    if repeated is not None:
        k, rows = repeated
        u, t = unit_labels[k // n_times], times[k % n_times]
        raise DataError(f"the panel is not unique on unit x time: unit {show(u)} has {rows} rows in "
                        f"period {period_text(float(t), table.period_labels.get(d.time))} (columns {d.unit!r}, "
                        f"{d.time!r}); aggregate or deduplicate "
                        "first", file=table.file, key="design.unit", column=d.unit)
    return PanelColumns(arr, missing, unit_raw, time_raw, times, tcode, ucode, n_units, unit_labels, zero_weight)


def _first_treated_periods(study: "Study", c: PanelColumns, absorbing: bool) -> tuple[np.ndarray, np.ndarray | None]:
    """Each unit's first treated period (0: never) and, for an on/off treatment, the row treatment."""
    d = study.design
    if d.cohort:
        g_unit_val = np.zeros(c.n_units)
        g_unit_val[c.ucode] = np.asarray(c.arrays[d.cohort], dtype=np.float64)
        return g_unit_val, None
    dd = np.asarray(c.arrays[study.treatment], dtype=np.float64)
    if d.group:  # the group's rows are treated from the first period with treatment 1 on (``check_group``)
        start = c.time_raw[dd > 0].min() if (dd > 0).any() else 0.0
        g_unit_val = np.zeros(c.n_units)
        g_unit_val[c.ucode] = np.where(np.asarray(c.arrays[d.group], dtype=np.float64) > 0, start, 0.0)
        return g_unit_val, None
    # first treated period of each unit (absorbing treatment)
    first = np.full(c.n_units, np.inf)
    np.minimum.at(first, c.ucode[dd > 0], c.time_raw[dd > 0])
    g_unit_val = np.where(np.isfinite(first), first, 0.0)
    gr = np.where(np.isfinite(first), first, np.inf)[c.ucode]
    if not absorbing and not np.array_equal(dd > 0, c.time_raw >= gr):
        return g_unit_val, dd  # on/off treatment: used as it is
    return g_unit_val, None


def build_panel(study: "Study", table: "Table", c: PanelColumns) -> PanelData:
    """``PanelData`` from the rows: cohorts, units dropped for want of a pre-period, clusters, the panel's shape."""
    from causalcli.models.fixed_effects import codes_of

    d = study.design
    covs = list(dict.fromkeys(study.covariates))
    arr, unit_raw, time_raw = c.arrays, c.unit_raw, c.time_raw
    times, tcode, ucode, n_units, unit_labels = c.times, c.tcode, c.ucode, c.n_units, c.unit_labels
    warnings: list[str] = list(c.missing.warnings)
    warnings += zero_weight_warning(c.zero_weight, study.weights or "")  # (as fixest drops them)
    absorbing = d.estimator != "twfe" or d.event_study is not None
    g_unit_val, row_d = _first_treated_periods(study, c, absorbing)
    labels = table.period_labels.get(d.time)
    late = (g_unit_val > times[-1])
    if late.any():
        warnings.append(f"{int(late.sum())} units are first treated after the last period "
                        f"({period_text(times[-1], labels)}); they count as never treated in this panel")
        g_unit_val = np.where(late, 0.0, g_unit_val)
    g_idx = np.where(g_unit_val > 0, np.searchsorted(times, g_unit_val, side="left"), -1).astype(np.int64)
    # Units treated from the first period on have no pre-period. Plain TWFE keeps them, as the standard
    # two-way fixed-effects regression does (their unit effect absorbs their treatment; they still inform the
    # period effects and the covariates). The other estimators cannot use them and drop them, saying why.
    first_treated = g_idx == 0
    n_always = int(first_treated.sum())
    keeps_always_treated = d.estimator == "twfe" and d.event_study is None
    n_first = 0 if keeps_always_treated else n_always
    first_period = float(times[0])
    if n_first:
        why = {"2x2": "the 2x2 compares treated units before and after the start",
               "callaway_santanna": "no group-time effect can be formed for them, as in R's did",
               "all": "the staggered estimators cannot use them, and the comparison runs every estimator on the "
                      "same units (twfe alone would keep them)"}.get(
            d.estimator, "their event time is not known (treated at or before the panel's start), so no "
                         "relative-period dummy can place them against the reference period -1, as in Sun and "
                         "Abraham (2021); plain twfe without event_study keeps them")
        warnings.append(f"{n_first} {'rows' if d.unit is None else 'units'} treated in the first period ({period_text(times[0], labels)}) have "
                        "no pre-treatment "
                        f"period and were dropped: {why}")
        keep_rows = ~first_treated[ucode]
        arr = {k: np.asarray(v)[keep_rows] for k, v in arr.items()}
        unit_raw = unit_raw[keep_rows]
        if row_d is not None:
            row_d = row_d[keep_rows]
        old_codes = ucode[keep_rows]
        kept_units = np.flatnonzero(~first_treated)
        remap = np.full(n_units, -1, dtype=np.int64)
        remap[kept_units] = np.arange(kept_units.size)
        ucode = remap[old_codes]
        g_unit_val = g_unit_val[kept_units]
        unit_labels = unit_labels[kept_units]
        n_units = int(kept_units.size)
        time_raw = time_raw[keep_rows]
        tcode, _, times = codes_of(time_raw, labels=True)
        g_idx = np.where(g_unit_val > 0, np.searchsorted(times, g_unit_val, side="left"), -1).astype(np.int64)
    tcode = tcode.astype(np.int64)
    treatment_key = "design.cohort" if d.cohort else "treatment"
    if n_units < 2:
        raise DataError("fewer than two units remain", file=table.file, key="design.unit")
    if not (g_idx >= 0).any():
        msg = ("no unit is ever treated in the panel" if not n_first else
               f"the {n_first} units treated in the first period ({period_text(first_period, labels)}) were "
               "dropped (no "
               "pre-treatment period) and no treated unit remains")
        raise DataError(msg, file=table.file, key=treatment_key)
    if keeps_always_treated and n_always:
        row_treat = row_d if row_d is not None else (g_idx[ucode] >= 0) & (time_raw >= times[np.maximum(
            g_idx[ucode], 0)])
        lo = np.ones(n_units, dtype=bool)
        hi = np.zeros(n_units, dtype=bool)
        np.logical_and.at(lo, ucode, row_treat > 0)
        np.logical_or.at(hi, ucode, row_treat > 0)
        if not (hi & ~lo).any():
            raise DataError(
                f"no unit changes treatment within the panel: the {n_always} treated units are treated in every "
                f"period from the first ({period_text(first_period, labels)}) on, so the unit fixed effects absorb "
                "the treatment; "
                "twfe needs units observed both before and after their treatment starts",
                file=table.file, key=treatment_key)
    if not (g_idx < 0).any() and d.estimator == "2x2":
        raise DataError("2x2 needs never-treated units as controls; none found", file=table.file,
                        key=treatment_key)
    y = np.asarray(arr[study.outcome], dtype=np.float64)
    X = (np.column_stack([np.asarray(arr[col], dtype=np.float64) for col in covs]) if covs
         else np.empty((y.size, 0)))
    w = None
    if study.weights:
        w = np.asarray(arr[study.weights], dtype=np.float64)
        if not (w > 0).any():
            raise DataError("every weight is zero", file=table.file, key="weights")
    if d.cluster:
        cl, G = codes_of(np.asarray(arr[d.cluster]))[:2]
        cname = d.cluster
    else:
        cl, G = ucode, n_units
        cname = d.unit or ROWS
    counts = np.bincount(ucode, minlength=n_units)
    balanced = bool(np.all(counts == times.size))
    panel = {"units": n_units, "periods": int(times.size), "rows": int(y.size), "balanced": balanced,
             "missing_unit_periods": int(n_units * times.size - y.size),
             "first_period": period_json(times[0], labels), "last_period": period_json(times[-1], labels),
             "cohorts": {period_text(times[k], labels): int((g_idx == k).sum())
                         for k in np.unique(g_idx[g_idx >= 0])},
             "never_treated_units": int((g_idx < 0).sum()),
             "always_treated_units": int((g_idx == 0).sum())}
    if d.unit is None:
        warnings.append(f"repeated cross-sections (no design.unit): {n_units:,} rows, each its own observation, "
                        "compared through their groups; no unit is followed over time" +
                        ("" if d.cluster else ", and the standard errors are heteroskedasticity-robust (HC1)"))
    elif not balanced and np.all(counts == 1):  # kielmc: each house sold once, in 1978 or 1981
        warnings.append(f"each unit appears in one period only ({n_units} units, {times.size} periods): "
                        "repeated cross-sections, compared through their groups (design.cohort); no unit is "
                        "followed over time")
    elif not balanced:
        warnings.append(f"unbalanced panel: {panel['missing_unit_periods']} unit-periods are missing "
                        f"({n_units} units x {times.size} periods, {y.size} rows)")
    n = {"rows": table.rows, **c.missing.n, **({"dropped_zero_weight": c.zero_weight} if c.zero_weight else {}),
         "units": n_units,
         "treated_units": int((g_idx >= 0).sum()), "control_units": int((g_idx < 0).sum()),
         "units_treated_first_period_dropped": n_first, "units_always_treated_kept": int((g_idx == 0).sum()),
         "periods": int(times.size), "clusters": int(G)}
    if d.unit is None:  # no unit to count: each row is its own observation, so the counts are of rows
        panel, n = _cross_section_counts(panel, n, g_idx[ucode], tcode, n_first, bool(d.cluster))
    es = d.event_study
    segment_values = []
    for c in study.segments:  # constant within a unit (``segments.check_constant``): any row of the unit tells it
        from causalcli.data.segments import segment_labels

        labels_of_rows = segment_labels(arr[c])
        per_unit = np.empty(n_units, dtype=labels_of_rows.dtype)
        per_unit[ucode] = labels_of_rows
        segment_values.append(per_unit)
    return PanelData(
        estimator=d.estimator, unit=ucode, n_units=n_units, time=tcode, times=times, y=y, g=g_idx, d=row_d,
        X=X, xnames=tuple(covs), w=w, cluster=cl, n_clusters=int(G), cluster_name=cname,
        leads=es.leads if es else None, lags=es.lags if es else None, options=d.options, n=n, panel=panel,
        warnings=tuple(warnings), unit_labels=unit_labels, time_labels=tuple(labels) if labels else None,
        # a unit seen once (a row id as unit) is a cross-section too: its unit effect would absorb its row
        cross_sections=d.unit is None or (d.estimator == "2x2" and bool(np.all(counts == 1))),
        segment_columns=tuple(study.segments), segment_values=tuple(segment_values),
    )


def _cross_section_counts(panel: dict, n: dict, start: np.ndarray, tcode: np.ndarray, n_first: int,
                          clustered: bool) -> tuple[dict, dict]:
    """``diagnostics.panel`` and ``n`` of repeated cross-sections (``start``: each row's group start, -1 in the
    comparison group): rows of the treated and comparison groups and treated rows, in place of units, which do not
    exist here (and of the unit panel's balance, which cannot apply); clusters only with design.cluster."""
    group = start >= 0
    counts = {"treated_group_rows": int(group.sum()), "comparison_group_rows": int((~group).sum()),
              "treated_rows": int((group & (tcode >= start)).sum())}
    shape = {"rows": panel["rows"], "periods": panel["periods"], **counts,
             **{k: panel[k] for k in ("first_period", "last_period")},
             "cohorts": panel["cohorts"], "cohorts_count": "rows of the treated group, by the period it starts"}
    rows = {"rows": n["rows"], **{k: v for k, v in n.items() if k.startswith("dropped_missing")}, **counts,
            "rows_treated_first_period_dropped": n_first, "periods": n["periods"],
            **({"clusters": n["clusters"]} if clustered else {})}
    return shape, rows


def subset_units(p: PanelData, units: np.ndarray, g: np.ndarray) -> tuple[PanelData, np.ndarray]:
    """Keep the rows of the given units (sorted codes); recode units."""
    keep_unit = np.zeros(p.n_units, dtype=bool)
    keep_unit[units] = True
    rows = keep_unit[p.unit]
    remap = np.full(p.n_units, -1, dtype=np.int64)
    remap[units] = np.arange(units.size)
    cl, G = np.unique(p.cluster[rows], return_inverse=True)
    sub = replace(p, unit=remap[p.unit[rows]], n_units=int(units.size), time=p.time[rows], y=p.y[rows],
                  g=g[units], d=None if p.d is None else p.d[rows], X=p.X[rows],
                  w=None if p.w is None else p.w[rows], cluster=G.astype(np.int64), n_clusters=int(cl.size),
                  unit_labels=p.unit_labels[units], segment_values=tuple(v[units] for v in p.segment_values))
    return sub, g[units]
