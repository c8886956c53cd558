"""Honest DiD: the relative-magnitude breakdown value of Rambachan and Roth (2023), plug-in version.

Under Delta^RM(Mbar) the change of the parallel-trends violation between two
consecutive post-treatment periods is at most Mbar times the largest such
change before treatment. For event time k >= 0 (reference -1) the violation is
then at most (k + 1) * Mbar * M_pre, and for the average of the post
coefficients at most mean(k + 1) * Mbar * M_pre. The robust interval is the
estimate +/- (that bound + c * SE); the breakdown value is the largest Mbar at
which it excludes zero:

    Mbar* = (|theta| - c * SE) / (mean(k + 1) * M_pre).

This is a plug-in approximation: M_pre is the estimated largest pre-period
change, treated as known, and the interval is the identified set widened by
the sampling margin, not the conditional/hybrid confidence set of the
HonestDiD R package (which accounts for the estimation of M_pre as well).
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
    if reference_included:
        changes = np.abs(b[pre])
    else:
        leads = sorted(pre, key=lambda j: rel_arr[j])
        seq = [b[j] for j in leads] + [0.0]  # ..., delta_-2, delta_-1 = 0
        changes = np.abs(np.diff(seq))
    c = t_quantile(0.5 + conf_level / 2, df) if df else normal_quantile(0.5 + conf_level / 2)
    a = np.zeros(b.size)
    a[post] = 1.0 / post.size
    theta = float(a @ b)
    se = float(np.sqrt(a @ V @ a))
    m_pre = float(changes.max()) if changes.size else float("nan")
    slope = float(np.mean(rel_arr[post] + 1)) * m_pre
    margin = abs(theta) - c * se
    if margin <= 0:
        breakdown = 0.0
        note = "the average post-treatment effect is not significant even under exact parallel trends"
    elif not slope > 0:
        breakdown = None
        note = "the pre-period changes are all zero: no scale for relative magnitudes"
    else:
        breakdown = margin / slope
        note = (f"the effect stays significant while post-treatment changes of the trend violation are at most "
                f"{breakdown:.3g} times the largest pre-treatment change")
    return {
        "method": "relative magnitudes (Rambachan and Roth 2023), plug-in: identified set plus sampling margin",
        "target": "average of the post-treatment event-time effects",
        "estimate": theta,
        "std_error": se,
        "max_pre_period_change": m_pre,
        "breakdown_mbar": breakdown,
        "critical_value": c,
        "note": note,
    }
