"""Inference helpers: every standard error leaves here with its name.

Normal-theory intervals and p-values use the standard library
(``statistics.NormalDist`` and ``math.erfc``, accurate to double precision):
``scipy.stats`` alone costs half a second to import, ``scipy.special`` a fifth.
"""

from __future__ import annotations

import math
from statistics import NormalDist

from causalcli.result import Estimate

_STANDARD_NORMAL = NormalDist()


def normal_quantile(p: float) -> float:
    return _STANDARD_NORMAL.inv_cdf(p)


def normal_two_sided_p(z: float) -> float:
    """P(|Z| >= |z|) for a standard normal Z."""
    if not math.isfinite(z):
        return float("nan")
    return math.erfc(abs(z) / math.sqrt(2.0))


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
