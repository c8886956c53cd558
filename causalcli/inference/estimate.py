"""Inference helpers: every standard error leaves here with its name.

Tails and quantiles come from ``causalcli.inference.distributions`` (the normal there stays on the standard library).
"""

from __future__ import annotations

import math
from typing import TYPE_CHECKING

from causalcli.inference.distributions import f_sf, normal_quantile, normal_two_sided_p, t_quantile, t_two_sided
from causalcli.records import Estimate

if TYPE_CHECKING:  # pragma: no cover
    import numpy as np


def normal_estimate(value: float, std_error: float | None, conf_level: float, inference: str,
                    label: str | None = None) -> Estimate:
    """Estimate with a normal (Wald) interval and two-sided p-value for H0: effect = 0."""
    if std_error is None or not math.isfinite(std_error) or std_error <= 0:
        return Estimate(value, None, None, None, conf_level, None, inference, label)
    z = normal_quantile(0.5 + conf_level / 2)
    return Estimate(
        value=float(value),
        std_error=float(std_error),
        ci_lower=float(value - z * std_error),
        ci_upper=float(value + z * std_error),
        conf_level=conf_level,
        p_value=normal_two_sided_p(value / std_error),
        inference=inference,
        label=label,
    )


# A standard error below this fraction of the estimate's scale is rounding noise, not sampling noise: it means a
# t statistic above 1e8, which no data give, while a saturated fit (zero residuals up to rounding, e.g. two
# clusters, or as many coefficients as rows) leaves SEs of 1e-13 to 1e-16 of the estimate. Anything built on it
# (t, z, F, intervals) would print noise as if it were precise.
SE_RELATIVE_TOLERANCE = 1e-8


def unusable_se_reason(std_error: float | None, value: float, scale: float | None = None) -> str | None:
    """Why ``std_error`` cannot carry inference (missing, not finite, zero or near zero), or None when it can.

    Near zero means below ``SE_RELATIVE_TOLERANCE`` times max(|value|, scale): ``scale`` is the size of the
    quantity when the estimate itself may be near zero (e.g. the outcome's standard deviation).
    """
    if std_error is None or not math.isfinite(std_error):
        return "the standard error is missing"
    if std_error <= 0:
        return "the standard error is zero"
    ref = max(abs(value) if math.isfinite(value) else 0.0, abs(scale) if scale else 0.0)
    if std_error <= SE_RELATIVE_TOLERANCE * ref:
        return (f"the standard error ({std_error:.3g}) is below {SE_RELATIVE_TOLERANCE:g} of the estimate's scale "
                f"({ref:.3g}): rounding noise of a fit with no residual variation, not a measure of uncertainty")
    return None


def t_estimate(value: float, se: float, df: int, conf_level: float, inference: str, label: str | None = None):
    """An Estimate with a t(df) interval and two-sided p-value."""
    import numpy as np

    if not np.isfinite(se) or se <= 0:
        return Estimate(float(value), None, None, None, conf_level, None, inference, label)
    q = t_quantile(0.5 + conf_level / 2, df)
    p = t_two_sided(value / se, df)
    return Estimate(float(value), float(se), float(value - q * se), float(value + q * se), conf_level, p,
                    inference, label)


def wald_f(b: "np.ndarray", V: "np.ndarray", df2: int) -> dict:
    """Joint Wald test that ``b`` is zero: F = b'V^-1 b / q against F(q, df2) (as fixest's ``wald``)."""
    import numpy as np

    q = int(b.size)
    W = float(b @ np.linalg.solve(V, b))
    F = W / q
    return {"statistic": F, "wald": W, "df": q, "df2": int(df2), "distribution": f"F({q}, {df2})",
            "p_value": f_sf(F, q, df2)}
