"""Difference-in-differences from cohort x period cells computed in the engine (``data.backend`` other than
duckdb), so that only O(cohorts x periods^2) numbers come back instead of the panel's rows.

On a balanced panel without covariates or weights, every unit i of cohort c enters Callaway-Sant'Anna's
ATT(g,t) through its outcomes y_i1..y_iT with coefficients that depend on its cohort only, and its influence
function is linear in phi_i = (1, y_i1..y_iT), again with cohort-wide coefficients. So the point estimates
need each cohort's count and per-period sums, and every analytic variance (the ATT(g,t), the four
aggregations, the pre-test, the honest-DiD inputs) is a quadratic form in the cohort's Gram matrix
M_c = sum_i phi_i phi_i' = [[n_c, S_c'], [S_c, Q_c]], Q_c[t, s] = sum_i y_it y_is. The engine computes
n_c, S_c and Q_c in one grouped pass (a self-join of the panel on the unit); here each M_c is factored as
F_c' F_c (F_c: at most T + 1 rows), and those rows stand in for the cohort's units in the influence-function
matrix: sums of squares and cross-products over them equal those over the units, which is all the analytic
standard errors read (``callaway_santanna.GroupTime.one``/``shares`` say how they differ from units).

Sums are exact and order-independent: each outcome is centred on its period's rounded mean, and every summand
(a centred value, a product of two) is rounded to a power-of-two grid fine enough that no partial sum can
round (as the experiment's fixed-point pass), so an engine adding in any order gives the same bits.

2x2, TWFE, the event study and Sun-Abraham read the same cells: their regressors depend on cohort and period
only, and a unit's CRV1 score is linear in (1, y_i1..y_iT) with cohort-wide coefficients
(``cells_regression``).

What needs units falls back to the rows (``RowsNeeded`` names why; ``DidDesign.prepare`` fetches the panel):
covariates, weights, clusters other than the unit, bootstraps (a weight per unit), segments (each fitted on its
units' rows), an unbalanced panel, rows
with a missing value, units treated in the first period or after the last, few (treated) units (randomization
inference permutes units, the wild bootstrap reweights them), a cohort near the propensity trim, an on/off
treatment (static twfe uses it as given). The refuters permute and subsample units: they
run on the panel, fetched once before them (``DidDesign.before_refuters``).
"""

from __future__ import annotations

import math
from dataclasses import dataclass, replace
from typing import TYPE_CHECKING, Any, Callable

import numpy as np

from causalcli.data.exact_sums import round_to_grid, split_constant
from causalcli.data.table import TABLE, quote_identifier as q

if TYPE_CHECKING:  # pragma: no cover
    from causalcli.data.table import Table
    from causalcli.designs.did.callaway_santanna import GroupTime
    from causalcli.designs.did.panel import PanelData
    from causalcli.spec.models import Study

CELLS_ESTIMATORS = ("callaway_santanna", "twfe", "2x2", "sun_abraham")
EXACT = "exact fixed-point sums of centred outcomes and their products by cohort and period pair (order-independent)"


class RowsNeeded(Exception):
    """The study needs the panel's rows; the message says why (recorded in ``diagnostics.cells``)."""


@dataclass
class Cells:
    """What the engine returned: periods, cohorts (period index, -1 never) with their unit counts, sums."""

    times: np.ndarray           # sorted distinct periods
    cohorts: np.ndarray         # cohort period index per cohort, -1 never treated
    counts: np.ndarray          # units per cohort
    sums: np.ndarray            # cohorts x T: sum_i (y_it - centre_t)
    products: np.ndarray        # cohorts x T x T: sum_i (y_it - centre_t)(y_is - centre_s)
    fetched_rows: int
    centres: np.ndarray         # T: the period centres the sums are taken about


@dataclass
class CellsData:
    """``prepare``'s object on the cells path: the stand-in panel (no rows), the ATT(g,t), and how to fetch
    the panel's rows for the refuters (``rows``, filled once by ``DidDesign.before_refuters``)."""

    panel: "PanelData"
    group_time: "GroupTime | None"  # None: a regression (``cells_regression``)
    diagnostics: dict[str, Any]
    fetch: Callable[[], "PanelData"]
    rows: "PanelData | None" = None

    def __getstate__(self) -> dict[str, Any]:  # the engine connection behind ``fetch`` stays in this process
        return {**self.__dict__, "fetch": None}


def spec_reason(study: "Study") -> str | None:
    """Why the spec alone rules the cells path out, or None (then the engine keeps the data: ``streams``)."""
    d = study.design
    if d.estimator not in CELLS_ESTIMATORS:
        return f"estimator: {d.estimator} is computed from the panel's rows (cells: {', '.join(CELLS_ESTIMATORS)})"
    if d.unit is None or d.group:
        return "repeated cross-sections (design.group, or no design.unit) are read as rows"
    if study.covariates:
        return "covariates enter per unit"
    if study.weights:
        return "weights are per unit"
    if d.cluster and d.cluster != d.unit:
        return "clusters other than the unit"
    if d.options.bootstrap != "none":
        return f"bootstrap: {d.options.bootstrap} draws a weight per unit"
    if study.segments:
        return "segments: each segment's effect is fitted on its own units' rows"
    return None


# ---------------------------------------------------------------- the engine's queries


def _lit(x: float) -> str:
    """A double literal DuckDB reads as DOUBLE (scientific notation), rendered for every engine."""
    return f"CAST({float(x)!r} AS DOUBLE)" if math.isfinite(x) else "CAST(NULL AS DOUBLE)"


def _round_centre(mean: float, spread: float) -> float:
    """A period's centre on a power-of-two grid about 1/1000 of its spread: the engine's mean, whose last bits
    depend on the order it adds in, gives the same centre on every run."""
    if not math.isfinite(mean) or spread <= 0:
        return mean if math.isfinite(mean) else 0.0
    return round_to_grid(mean, spread)


def _panel_sql(study: "Study") -> tuple[str, str]:
    """(rows, units): the complete rows (u, t, y, g0) and the units (u, n, g) as DuckDB SQL over study_data."""
    d = study.design
    used = [d.unit, d.time, study.outcome, *(c for c in (study.treatment, d.cohort) if c)]
    complete = " AND ".join(f"{q(c)} IS NOT NULL" for c in dict.fromkeys(used))
    if d.cohort:
        first = f"coalesce(CAST({q(d.cohort)} AS DOUBLE), 0)"
        unit_g = "max(g0)"
    else:
        first = f"CASE WHEN CAST({q(study.treatment)} AS DOUBLE) > 0 THEN CAST({q(d.time)} AS DOUBLE) END"
        unit_g = "coalesce(min(g0), 0)"
    rows = (f"SELECT {q(d.unit)} AS u, CAST({q(d.time)} AS DOUBLE) AS t, CAST({q(study.outcome)} AS DOUBLE) AS y, "
            f"{first} AS g0 FROM {TABLE} WHERE {complete}")
    units = f"SELECT u, count(*) AS n, {unit_g} AS g FROM ({rows}) AS r GROUP BY u"
    return rows, units


def engine_cells(table: "Table", study: "Study") -> Cells:
    """Counts, the balance check and the cells, in three grouped queries; ``RowsNeeded`` when a rule fails."""
    fetched = (lambda: table.engine.fetched) if table.engine is not None else (lambda: 0)  # a file: none
    before = fetched()
    rows, units = _panel_sql(study)
    incomplete = table.sql(f"SELECT count(*) FROM {TABLE}")[0][0] - table.sql(
        f"SELECT count(*) FROM ({rows}) AS r")[0][0]
    if incomplete:
        raise RowsNeeded(f"{incomplete} rows miss a value in a column the study uses")
    periods = table.sql(f"SELECT t, avg(y), min(y), max(y), var_pop(y) FROM ({rows}) AS r GROUP BY t ORDER BY t")
    times = np.array([float(r[0]) for r in periods])
    T = times.size
    shapes = table.sql(f"SELECT g, n, count(*) FROM ({units}) AS v GROUP BY g, n ORDER BY g, n")
    if any(int(n) != T for _, n, _ in shapes):
        raise RowsNeeded(f"the panel is unbalanced (not every unit is observed in each of the {T} periods)")
    values = np.array([float(g) for g, _, _ in shapes])
    if np.any(values > times[-1]):
        raise RowsNeeded("some units are first treated after the last period")
    g_idx = np.where(values > 0, np.searchsorted(times, values, side="left"), -1)
    if np.any(g_idx == 0):
        raise RowsNeeded("some units are treated in the first period")
    d = study.design
    if not d.cohort and d.estimator == "twfe" and d.event_study is None:  # on/off treatments are used as given
        switching = table.sql(f"SELECT count(*) FROM ({rows}) AS r JOIN ({units}) AS v ON r.u = v.u "
                              "WHERE (r.g0 IS NOT NULL) <> (v.g > 0 AND r.t >= v.g)")[0][0]
        if switching:
            raise RowsNeeded(f"the treatment switches off in {switching} rows (an on/off treatment)")
    cohorts, where = np.unique(g_idx, return_inverse=True)
    counts = np.bincount(where, weights=[int(k) for _, _, k in shapes]).astype(np.int64)
    centres, bound, squares = [], 0.0, 0.0
    n_units = int(counts.sum())
    for _, mean, lo, hi, var in periods:
        c = _round_centre(float(mean), float(hi) - float(lo))
        centres.append(c)
        bound = max(bound, abs(float(hi) - c), abs(float(lo) - c))
        squares = max(squares, n_units * (float(var or 0.0) + (float(mean) - c) ** 2))
    bound = bound * (1 + 1e-9) + 2.0 ** -900
    # sum_i |y_it y_is| <= max_t sum_i y_it^2 (Cauchy-Schwarz), with room for the engine's rounding of var_pop
    s1, s2 = (split_constant(n_units * bound)[0],
              split_constant(min(n_units * bound * bound, 1.01 * squares + bound * bound))[0])
    centre = "CASE t " + " ".join(f"WHEN {_lit(t)} THEN {_lit(c)}" for t, c in zip(times, centres)) + " END"
    g_case = "CASE " + " ".join(f"WHEN g = {_lit(v)} THEN {int(k)}" for v, k in zip(values, g_idx)) + " END"
    centred = (f"SELECT r.u AS u, r.t AS t, {g_case} AS k, r.y - {centre} AS y FROM ({rows}) AS r "
               f"JOIN ({units}) AS v ON r.u = v.u")
    out = table.sql(f"SELECT a.k, a.t, b.t, sum((a.y * b.y + {_lit(s2)}) - {_lit(s2)}), "
                    f"sum((a.y + {_lit(s1)}) - {_lit(s1)}) FROM ({centred}) AS a JOIN ({centred}) AS b "
                    "ON a.u = b.u AND a.t <= b.t GROUP BY a.k, a.t, b.t")
    position = {int(k): i for i, k in enumerate(cohorts)}
    sums = np.zeros((cohorts.size, T))
    products = np.zeros((cohorts.size, T, T))
    for k, t, s, yy, y in out:
        c, i, j = position[int(k)], int(np.searchsorted(times, float(t))), int(np.searchsorted(times, float(s)))
        products[c, i, j] = products[c, j, i] = float(yy)
        sums[c, i] = float(y)
    return Cells(times, cohorts, counts, sums, products, fetched() - before, np.asarray(centres))


# ---------------------------------------------------------------- Callaway-Sant'Anna from the cells


def gram_factor(n: int, sums: np.ndarray, products: np.ndarray) -> np.ndarray:
    """Rows F (at most T + 1) with F'F = [[n, S'], [S, Q]]: they stand in for the cohort's units in sums of
    products of anything linear in (1, y_i1..y_iT)."""
    M = np.empty((sums.size + 1, sums.size + 1))
    M[0, 0], M[0, 1:], M[1:, 0], M[1:, 1:] = n, sums, sums, products
    scale = np.sqrt(np.maximum(np.diag(M), 1e-300))
    vals, vecs = np.linalg.eigh(M / np.outer(scale, scale))  # scaled first: counts and squares differ in size
    keep = vals > vals.max() * 1e-15
    return (vecs[:, keep] * np.sqrt(vals[keep])).T * scale[None, :]


def group_time_from_cells(cells: Cells, control: str, base_period: str) -> "GroupTime":
    """ATT(g,t) and the influence-function matrix over the stand-in rows, as ``group_time`` without covariates."""
    from causalcli.designs.did.callaway_santanna import PS_CAP, PS_TRIM, GroupTime, comparisons

    N = int(cells.counts.sum())
    factors = [gram_factor(int(n), s, Q) for n, s, Q in zip(cells.counts, cells.sums, cells.products)]
    F = np.vstack(factors)
    row_cohort = np.concatenate([np.full(f.shape[0], k) for f, k in zip(factors, cells.cohorts)])
    one, Y = F[:, 0], F[:, 1:]
    unit_g = np.repeat(cells.cohorts, cells.counts)  # the cohort of each unit: only its counts are read
    cells_list = comparisons(unit_g, cells.times.size, control, base_period)
    atts, infs = [], []
    for gi, c, base, ctrl in cells_list:
        treated = cells.cohorts == gi
        controls = np.isin(cells.cohorts, np.unique(unit_g[ctrl]))
        st, sc = float(cells.counts[treated].sum()), float(cells.counts[controls].sum())
        if st / (st + sc) >= min(PS_TRIM, PS_CAP):
            raise RowsNeeded("a cohort is near the propensity-score trim in one comparison")
        mt = float((cells.sums[treated, c] - cells.sums[treated, base]).sum()) / st
        mc = float((cells.sums[controls, c] - cells.sums[controls, base]).sum()) / sc
        dy = Y[:, c] - Y[:, base]
        D, C = row_cohort == gi, np.isin(row_cohort, cells.cohorts[controls])
        atts.append(mt - mc)
        infs.append(N * (D * (dy - mt * one) / st - C * (dy - mc * one) / sc))
    shares = {int(k): float(n) / N for k, n in zip(cells.cohorts, cells.counts) if k >= 0}
    return GroupTime(np.asarray([x[0] for x in cells_list]), np.asarray([x[1] for x in cells_list]),
                     np.asarray(atts), np.column_stack(infs), N, one, row_cohort, one=one, shares=shares)


def stand_in_panel(study: "Study", table: "Table", cells: Cells, per_unit: bool = True) -> "PanelData":
    """The ``PanelData`` the Callaway-Sant'Anna fit reads besides the ATT(g,t): counts, the panel's shape, the
    unit cohorts (for the count of treated units; ``per_unit`` False: the cohorts, once each); no rows."""
    from causalcli.data.types import period_json, period_text
    from causalcli.designs.did.panel import PanelData

    d = study.design
    labels = table.period_labels.get(d.time)
    times, T = cells.times, int(cells.times.size)
    g = (np.repeat(cells.cohorts, cells.counts) if per_unit else cells.cohorts).astype(np.int64)
    N, treated = int(cells.counts.sum()), int(cells.counts[cells.cohorts >= 0].sum())
    panel = {"units": N, "periods": T, "rows": N * T, "balanced": True, "missing_unit_periods": 0,
             "first_period": period_json(times[0], labels), "last_period": period_json(times[-1], labels),
             "cohorts": {period_text(times[k], labels): int(n) for k, n in zip(cells.cohorts, cells.counts) if k >= 0},
             "never_treated_units": N - treated, "always_treated_units": 0}
    n = {"rows": table.rows, "dropped_missing": 0, "units": N, "treated_units": treated, "control_units": N - treated,
         "units_treated_first_period_dropped": 0, "units_always_treated_kept": 0, "periods": T, "clusters": N}
    es = d.event_study
    empty = np.empty(0)
    return PanelData(
        estimator=d.estimator, unit=empty.astype(np.int64), n_units=N, time=empty.astype(np.int64), times=times,
        y=empty, g=g, d=None, X=np.empty((0, 0)), xnames=(), w=None, cluster=empty.astype(np.int64), n_clusters=N,
        cluster_name=d.unit, leads=es.leads if es else None, lags=es.lags if es else None, options=d.options, n=n,
        panel=panel, warnings=(), unit_labels=np.empty(0, dtype=object), time_labels=tuple(labels) if labels else None)


def prepare_cells(study: "Study", table: "Table", fetch: Callable[[], "PanelData"]) -> CellsData:
    """The cells path's ``prepare``: ``RowsNeeded`` when the study needs the panel's rows after all."""
    from causalcli.designs.did.clusters import MIN_CLUSTERS, MIN_TREATED_CLUSTERS

    cells = engine_cells(table, study)
    treated = int(cells.counts[cells.cohorts >= 0].sum())
    untreated = int(cells.counts.sum()) - treated
    if treated == 0:
        raise RowsNeeded("no unit is ever treated")  # the row path says so, naming the key
    if int(cells.counts.sum()) < MIN_CLUSTERS or min(treated, untreated) < MIN_TREATED_CLUSTERS:
        raise RowsNeeded(f"few units ({treated} treated, {untreated} not): few-cluster inference "
                          "permutes or resamples units")
    info = {"computed_from": "cohort x period cells in the engine", "fetched_rows": cells.fetched_rows,
            "summation": EXACT}
    o = study.design.options
    if study.design.estimator != "callaway_santanna":
        return CellsData(cell_panel(stand_in_panel(study, table, cells, per_unit=False), cells), None, info, fetch)
    gt = group_time_from_cells(cells, o.control_group, o.base_period)
    return CellsData(stand_in_panel(study, table, cells), gt, info, fetch)


def cell_panel(stand_in: "PanelData", cells: "Cells") -> "PanelData":
    """The cohort x period table as a ``PanelData``: cohorts as units, cell means as outcomes (cells_regression's docstring);
    ``stand_in`` carries the panel's counts and one cohort per "unit" (``stand_in_panel``)."""
    from causalcli.designs.did.cells_regression import CellRegression

    C, T = cells.cohorts.size, cells.times.size
    means = cells.sums / cells.counts[:, None] + cells.centres[None, :]
    regression = CellRegression(cells.counts, cells.centres,
                                tuple(gram_factor(int(n), s, Q) for n, s, Q in
                                      zip(cells.counts, cells.sums, cells.products)),
                                int(cells.counts[cells.cohorts >= 0].sum()))
    return replace(stand_in, unit=np.repeat(np.arange(C), T), time=np.tile(np.arange(T), C), y=means.ravel(),
                   X=np.empty((C * T, 0)), cells=regression)
