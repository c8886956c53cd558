"""Honest DiD: the relative-magnitude breakdown value of Rambachan and Roth (2023), plug-in version.

Under Delta^RM(Mbar) the change of the parallel-trends violation between two
consecutive post-treatment periods is at most Mbar times the largest such
change before treatment. For event time k >= 0 (reference -1) the violation is
then at most (k + 1) * Mbar * M_pre, and for the average of the post
coefficients at most mean(k + 1) * Mbar * M_pre. The robust interval is the
estimate +/- (that bound + c * SE); the breakdown value is the largest Mbar at
which it excludes zero:

    Mbar* = (|theta| - c * SE) / (mean(k + 1) * M_pre).

``breakdown_mbar`` is the plug-in value: M_pre is the estimated largest
pre-period change, treated as known. ``breakdown_mbar_bonferroni`` also
allows for the estimation of M_pre: it replaces M_pre by an upper confidence
bound and splits alpha between that bound and theta (Bonferroni), which gives
a valid but conservative value. Neither is the conditional/hybrid confidence
set of the HonestDiD R package.
"""

from __future__ import annotations

from typing import Any

import numpy as np


def relative_magnitude_breakdown(b: np.ndarray, V: np.ndarray, rel: list[int], df: int | None, conf_level: float,
                                 reference_included: bool = False) -> dict[str, Any]:
    """Breakdown Mbar for the average post-treatment effect.

    ``rel`` are the relative periods of ``b``. Without ``reference_included``
    (TWFE event study) -1 is the omitted reference (0) and pre-period changes
    are consecutive differences of the leads; with it (Callaway-Sant'Anna,
    varying base period) each pre-period estimate is already a one-period change.
    """
    from causalcli.did_dist import t_quantile
    from causalcli.inference import normal_quantile

    rel_arr = np.asarray(rel)
    post = np.flatnonzero(rel_arr >= 0)
    pre = np.flatnonzero(rel_arr < 0)
    # contrasts giving the pre-treatment one-period changes of the violation
    if reference_included:
        C = np.eye(b.size)[pre]
    else:
        leads = sorted(pre, key=lambda j: rel_arr[j])
        rows = []
        for i, j in enumerate(leads):  # delta_next - delta_j, with delta_-1 = 0 after the last lead
            r = np.zeros(b.size)
            r[j] = -1.0
            if i + 1 < len(leads):
                r[leads[i + 1]] = 1.0
            rows.append(r)
        C = np.array(rows).reshape(-1, b.size)
    changes = C @ b
    se_changes = np.sqrt(np.maximum(np.einsum("ij,jk,ik->i", C, V, C), 0.0))

    def quantile(p: float) -> float:
        return t_quantile(p, df) if df else normal_quantile(p)

    alpha = 1.0 - conf_level
    c = quantile(1 - alpha / 2)
    a = np.zeros(b.size)
    a[post] = 1.0 / post.size
    theta = float(a @ b)
    se = float(np.sqrt(a @ V @ a))
    horizon = float(np.mean(rel_arr[post] + 1))
    m_pre = float(np.max(np.abs(changes))) if changes.size else float("nan")
    # Bonferroni: theta within c_{alpha/4} SE and every pre change within its c_{alpha/(4m)} bound,
    # jointly with probability >= 1 - alpha, so the breakdown below is a valid (conservative) one
    m = max(int(changes.size), 1)
    c_theta = quantile(1 - alpha / 4)
    c_pre = quantile(1 - alpha / (4 * m))
    m_pre_upper = float(np.max(np.abs(changes) + c_pre * se_changes)) if changes.size else float("nan")

    def breakdown(margin: float, scale: float) -> float | None:
        if margin <= 0:
            return 0.0
        return margin / scale if scale > 0 else None

    plug = breakdown(abs(theta) - c * se, horizon * m_pre)
    valid = breakdown(abs(theta) - c_theta * se, horizon * m_pre_upper)
    if plug == 0.0:
        note = "the average post-treatment effect is not significant even under exact parallel trends"
    elif plug is None:
        note = "the pre-period changes are all zero: no scale for relative magnitudes"
    else:
        note = (f"the effect stays significant while post-treatment changes of the trend violation are at most "
                f"{plug:.3g} times the largest pre-treatment change (plug-in); {valid:.3g} allowing for the "
                "estimation of that largest change (Bonferroni)")
    return {
        "method": "relative magnitudes (Rambachan and Roth 2023): identified set plus sampling margin",
        "target": "average of the post-treatment event-time effects",
        "estimate": theta,
        "std_error": se,
        "max_pre_period_change": m_pre,
        "max_pre_period_change_upper": m_pre_upper,
        "breakdown_mbar": plug,
        "breakdown_mbar_bonferroni": valid,
        "critical_value": c,
        "note": note,
    }
