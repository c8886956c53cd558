"""Goodman-Bacon (2021) decomposition of the TWFE coefficient under staggered adoption.

For a balanced panel without covariates or weights, the TWFE coefficient is a
weighted average of every 2x2 comparison: each cohort against the never
treated (all periods), each earlier cohort against a later one before the
later is treated, and each later cohort against an earlier one after the
earlier is treated (the "forbidden" comparison: already-treated controls).
Units treated in every period (TWFE keeps them) are the earliest cohort: their
treatment never varies, so they enter only as already-treated controls
("always treated"), as in Goodman-Bacon (2021, sec. 3).
The weight of a comparison is (N_s / N)^2 * var_s(D~) / var(D~) (Theorem 1),
with D~ the treatment after removing unit and period means within the
comparison's sample s; the weights sum to one and the weighted 2x2 estimates
add up to the TWFE coefficient (the tests check both).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import numpy as np

from causalcli.data.types import period_json
from causalcli.models.fixed_effects import demean
from causalcli.errors import EstimationError

if TYPE_CHECKING:  # pragma: no cover
    from causalcli.designs.did.panel import PanelData


def _twfe_sub(y: np.ndarray, d: np.ndarray, cell: np.ndarray, time: np.ndarray, size: np.ndarray
              ) -> tuple[float, float, int]:
    """TWFE slope on a sub-panel of cohort x period cells (weights: cohort sizes), sum of squared demeaned
    treatment at the unit level, and the rows it stands for.

    In a balanced panel whose treatment varies by cohort and period only, the unit-level TWFE equals this
    cell-level weighted TWFE (the unit effects absorb within-cohort differences), so the decomposition costs
    nothing on a million rows.
    """
    uc, ui = np.unique(cell, return_inverse=True)
    tc, ti = np.unique(time, return_inverse=True)
    Z = demean(np.column_stack([y, d]), [(ui, uc.size), (ti, tc.size)], size)
    ss = float(np.sum(size * Z[:, 1] ** 2))
    if ss <= 1e-12:
        return float("nan"), 0.0, int(size.sum())
    return float(np.sum(size * Z[:, 1] * Z[:, 0]) / ss), ss, int(size.sum())


def bacon_decomposition(p: "PanelData") -> dict[str, Any]:
    if not p.panel["balanced"]:
        raise EstimationError("the Goodman-Bacon decomposition needs a balanced panel")
    if p.X.shape[1] or p.w is not None:
        raise EstimationError("the Goodman-Bacon decomposition is computed without covariates and weights")
    T = int(p.times.size)
    levels, gcode = np.unique(p.g, return_inverse=True)  # cohorts (-1 = never treated) -> 0..C-1
    C = levels.size
    # on the engine's cells (``cells_regression``) each "unit" is a cohort of ``cells.counts`` units
    n_c = np.bincount(gcode, weights=None if p.cells is None else p.cells.counts, minlength=C).astype(float)
    cell_of_row = gcode[p.unit] * T + p.time
    ybar = np.bincount(cell_of_row, weights=p.y, minlength=C * T) / np.bincount(cell_of_row, minlength=C * T)
    cg = np.repeat(levels, T)           # cohort of each cell
    ct = np.tile(np.arange(T), C)       # period of each cell
    csize = np.repeat(n_c, T)
    cd = ((cg >= 0) & (ct >= cg)).astype(np.float64)
    cell_id = np.repeat(np.arange(C), T)
    _, ss_all, n_all = _twfe_sub(ybar, cd, cell_id, ct, csize)
    cohorts = [int(c) for c in levels if c >= 0]
    rows = []

    def add(kind: str, treated: int, control: int | None, mask: np.ndarray) -> None:
        b, ss, n = _twfe_sub(ybar[mask], cd[mask], cell_id[mask], ct[mask], csize[mask])
        if ss == 0:
            return
        rows.append({"type": kind, "treated": period_json(p.times[treated], p.time_labels),
                     "control": ("never treated" if control is None else "always treated" if control == 0
                                 else period_json(p.times[control], p.time_labels)),
                     "estimate": b, "weight": n * ss / (n_all * ss_all)})

    gr = cg
    time = ct
    never = gr < 0
    for k in cohorts:
        in_k = gr == k
        if never.any():
            add("treated_vs_never_treated", k, None, in_k | never)
        for l in cohorts:
            if l <= k:
                continue
            pair = in_k | (gr == l)
            add("earlier_vs_later_treated", k, l, pair & (time < l))
            add("later_vs_earlier_treated", l, k, pair & (time >= k))
    total = sum(r["weight"] for r in rows)
    share = {kind: sum(r["weight"] for r in rows if r["type"] == kind)
             for kind in ("treated_vs_never_treated", "earlier_vs_later_treated", "later_vs_earlier_treated")}
    return {
        "comparisons": rows,
        "weight_total": total,
        "weight_by_type": share,
        "weight_later_vs_earlier_treated": share["later_vs_earlier_treated"],
        "twfe_from_decomposition": float(sum(r["weight"] * r["estimate"] for r in rows)),
        "reference": "Goodman-Bacon (2021), Theorem 1",
    }


def staggered_adoption(p: "PanelData", diag: dict, warnings: list[str]) -> None:
    """With several cohorts of an absorbing treatment: ``diagnostics.goodman_bacon`` and the warning that TWFE
    uses already-treated units as controls, with their share of the weight when the decomposition runs."""
    cohorts = np.unique(p.g[p.g >= 0])
    if cohorts.size < 2 or p.d is not None:
        return
    advice = ("with effects that change over time TWFE is biased: use estimator: callaway_santanna")
    what = f"{cohorts.size} cohorts" + (", one of them the units treated in every period" if cohorts[0] == 0
                                         else "")
    try:
        bacon = bacon_decomposition(p)
    except EstimationError as exc:
        diag["goodman_bacon"] = {"skipped": exc.message}
        # the warning does not depend on the decomposition: TWFE still compares later with earlier cohorts
        warnings.append(
            f"staggered adoption ({what}): TWFE uses already-treated units as controls for "
            f"later cohorts; the share of weight on those comparisons is not computed ({exc.message}); "
            + advice)
        return
    diag["goodman_bacon"] = bacon
    share = bacon["weight_later_vs_earlier_treated"]
    warnings.append(
        f"staggered adoption ({what}): {share:.1%} of the TWFE weight is on comparisons that "
        "use already-treated units as controls (Goodman-Bacon decomposition); " + advice)
