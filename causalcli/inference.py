"""Inference helpers: every standard error leaves here with its name.

Normal-theory intervals and p-values use ``scipy.special`` (not
``scipy.stats``, whose import alone costs about half a second).
"""

from __future__ import annotations

import math

from causalcli.result import Estimate


def normal_quantile(p: float) -> float:
    from scipy.special import ndtri

    return float(ndtri(p))


def normal_two_sided_p(z: float) -> float:
    from scipy.special import ndtr

    if not math.isfinite(z):
        return float("nan")
    return float(2.0 * ndtr(-abs(z)))


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
