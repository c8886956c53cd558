"""Goodman-Bacon (2021) decomposition of the TWFE coefficient under staggered adoption.

For a balanced panel without covariates or weights, the TWFE coefficient is a
weighted average of every 2x2 comparison: each cohort against the never
treated (all periods), each earlier cohort against a later one before the
later is treated, and each later cohort against an earlier one after the
earlier is treated (the "forbidden" comparison: already-treated controls).
The weight of a comparison is (N_s / N)^2 * var_s(D~) / var(D~) (Theorem 1),
with D~ the treatment after removing unit and period means within the
comparison's sample s; the weights sum to one and the weighted 2x2 estimates
add up to the TWFE coefficient (the tests check both).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import numpy as np

from causalcli.did_fe import demean
from causalcli.errors import EstimationError

if TYPE_CHECKING:  # pragma: no cover
    from causalcli.designs.did import PanelData


def _twfe_sub(y: np.ndarray, d: np.ndarray, unit: np.ndarray, time: np.ndarray) -> tuple[float, float, int]:
    """TWFE slope on a sub-panel, the sum of squared demeaned treatment, and its rows."""
    uc, ui = np.unique(unit, return_inverse=True)
    tc, ti = np.unique(time, return_inverse=True)
    Z = demean(np.column_stack([y, d]), [(ui, uc.size), (ti, tc.size)])
    ss = float(Z[:, 1] @ Z[:, 1])
    if ss <= 1e-12:
        return float("nan"), 0.0, int(y.size)
    return float(Z[:, 1] @ Z[:, 0] / ss), ss, int(y.size)


def bacon_decomposition(p: "PanelData") -> dict[str, Any]:
    if not p.panel["balanced"]:
        raise EstimationError("the Goodman-Bacon decomposition needs a balanced panel")
    if p.X.shape[1] or p.w is not None:
        raise EstimationError("the Goodman-Bacon decomposition is computed without covariates and weights")
    gr = p.g[p.unit]
    D = ((gr >= 0) & (p.time >= gr)).astype(np.float64)
    _, ss_all, n_all = _twfe_sub(p.y, D, p.unit, p.time)
    cohorts = [int(c) for c in np.unique(p.g[p.g >= 0])]
    rows = []

    def add(kind: str, treated: int, control: int | None, mask: np.ndarray) -> None:
        b, ss, n = _twfe_sub(p.y[mask], D[mask], p.unit[mask], p.time[mask])
        if ss == 0:
            return
        rows.append({"type": kind, "treated": float(p.times[treated]),
                     "control": "never treated" if control is None else float(p.times[control]),
                     "estimate": b, "weight": n * ss / (n_all * ss_all)})

    never = gr < 0
    for k in cohorts:
        in_k = gr == k
        if never.any():
            add("treated_vs_never_treated", k, None, in_k | never)
        for l in cohorts:
            if l <= k:
                continue
            pair = in_k | (gr == l)
            add("earlier_vs_later_treated", k, l, pair & (p.time < l))
            add("later_vs_earlier_treated", l, k, pair & (p.time >= k))
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
