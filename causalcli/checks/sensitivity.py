"""Sensitivity to unmeasured confounding: E-values and Rosenbaum bounds.

* **E-value** (VanderWeele and Ding 2017): the minimum strength of association,
  on the risk-ratio scale, that an unmeasured confounder would need with both
  the treatment and the outcome to explain away the estimate,
  ``E = RR + sqrt(RR (RR - 1))`` for ``RR >= 1`` (``1 / RR`` otherwise). For a
  continuous outcome the estimate is first put on the standardised scale,
  ``d = estimate / sd(outcome)``, and converted with ``RR = exp(0.91 d)``
  (VanderWeele and Ding 2017, section 5; Chinn 2000). The E-value of the
  confidence interval uses the bound closest to the null, and is 1 when the
  interval contains the null.
* **Rosenbaum bounds** (Rosenbaum 2002, ch. 4) for matched data: the Wilcoxon
  signed-rank test of the matched differences (each treated unit's outcome
  minus the mean outcome of its matches) under a hidden bias that multiplies
  the odds of treatment within a match by at most ``Gamma``; the upper bound of
  the one-sided p-value uses the normal approximation,
  ``p+ = Gamma / (1 + Gamma)``, ``E = p+ sum r``, ``V = p+ (1 - p+) sum r^2``
  with ``r`` the (mid)ranks of ``|d|`` and zero differences dropped (as R's
  ``rbounds::psens``). The reported ``gamma`` is the smallest ``Gamma`` at which
  that p-value exceeds ``alpha``. With several matches per treated unit the
  averaged differences are treated as pairs, the usual approximation.

References
----------
VanderWeele, T. J. and Ding, P. (2017). Sensitivity analysis in observational
research: introducing the E-value. Annals of Internal Medicine 167(4), 268-274.
Rosenbaum, P. R. (2002). Observational Studies, 2nd ed. Springer, ch. 4.
"""

from __future__ import annotations

import math

import numpy as np

from causalcli.inference.distributions import normal_upper_tail



__all__ = ["evalue_rr", "evalue", "rosenbaum_pvalue", "rosenbaum_gamma", "rosenbaum_bounds"]

# VanderWeele and Ding's conversion of a standardised mean difference to a risk ratio.
_SMD_TO_LOG_RR = 0.91


def evalue_rr(rr: float) -> float:
    """E-value of a risk ratio."""
    if not (rr > 0 and math.isfinite(rr)):
        return float("nan")
    if rr < 1:
        rr = 1.0 / rr
    return rr + math.sqrt(rr * (rr - 1.0))


def evalue(value: float, ci_lower: float | None, ci_upper: float | None, sd_outcome: float) -> dict:
    """E-values of a mean-difference estimate and of its confidence interval, with a plain sentence."""
    if not (sd_outcome > 0):
        return {"e_value": None, "e_value_ci": None, "detail": "E-value not computed: the outcome has no spread"}

    def rr(x: float) -> float:
        return math.exp(_SMD_TO_LOG_RR * x / sd_outcome)

    e = evalue_rr(rr(value))
    if ci_lower is None or ci_upper is None:
        e_ci = None
    elif ci_lower <= 0 <= ci_upper:
        e_ci = 1.0
    else:
        e_ci = evalue_rr(rr(ci_lower if value > 0 else ci_upper))
    detail = (f"An unmeasured confounder would need to be associated with both treatment and outcome by a risk "
              f"ratio of at least {e:.2f} each, beyond the covariates, to explain the estimate away")
    if e_ci is not None:
        detail += ("; the confidence interval already includes no effect" if e_ci == 1.0 else
                   f", and of {e_ci:.2f} to move the confidence interval to include no effect")
    return {"e_value": e, "e_value_ci": e_ci, "scale": "risk ratio, via RR = exp(0.91 * estimate / sd(outcome))",
            "sd_outcome": float(sd_outcome), "detail": detail + "."}


def _signed_rank_stats(d: np.ndarray) -> tuple[float, float, float]:
    """Signed-rank statistic ``T`` (sum of the midranks of |d| over d > 0), ``sum r`` and ``sum r^2``; zeros dropped."""
    d = np.asarray(d, dtype=np.float64)
    d = d[d != 0]
    if d.size == 0:
        return 0.0, 0.0, 0.0
    _, inverse, counts = np.unique(np.abs(d), return_inverse=True, return_counts=True)
    starts = np.cumsum(counts) - counts
    ranks = (starts + (counts + 1) / 2.0)[inverse.reshape(-1)]
    return float(ranks[d > 0].sum()), float(ranks.sum()), float(np.dot(ranks, ranks))


def _bound(stats: tuple[float, float, float], gamma: float) -> float:
    t, s1, s2 = stats
    if s2 == 0:
        return 1.0
    p = gamma / (1.0 + gamma)
    z = (t - p * s1) / math.sqrt(p * (1.0 - p) * s2)
    return normal_upper_tail(z)


def rosenbaum_pvalue(d: np.ndarray, gamma: float) -> float:
    """Upper bound of the one-sided signed-rank p-value at hidden bias ``gamma`` (normal approximation)."""
    return _bound(_signed_rank_stats(d), gamma)


def rosenbaum_gamma(d: np.ndarray, alpha: float, gamma_max: float = 1e4) -> float | None:
    """Smallest Gamma at which the bound on the p-value exceeds alpha (None: not significant at Gamma = 1)."""
    stats = _signed_rank_stats(d)
    if _bound(stats, 1.0) > alpha:
        return None
    if _bound(stats, gamma_max) <= alpha:
        return float("inf")
    lo, hi = 0.0, math.log(gamma_max)
    for _ in range(200):
        mid = 0.5 * (lo + hi)
        if _bound(stats, math.exp(mid)) > alpha:
            hi = mid
        else:
            lo = mid
        if hi - lo < 1e-10:
            break
    return math.exp(hi)


def rosenbaum_bounds(differences: np.ndarray, alpha: float, estimate: float,
                     gammas=(1.0, 1.25, 1.5, 2.0, 3.0)) -> dict:
    """Rosenbaum bounds of matched differences: the breakdown Gamma and the p-value bound on a grid.

    The test is one-sided in the direction of ``estimate`` (the matching estimate, whose sign is
    the mean difference's), not of the median difference: on skewed outcomes (earnings with
    many zeros) the two can disagree, and the bound must be about the effect that is reported.
    """
    d = np.asarray(differences, dtype=np.float64)
    sign = 1.0 if estimate >= 0 else -1.0
    d = sign * d
    gamma = rosenbaum_gamma(d, alpha)
    side = "positive" if sign > 0 else "negative"
    if gamma is None:
        detail = (f"The matched differences are not significantly {side} (the direction of the estimate) at level "
                  f"{alpha} even without hidden bias (Gamma = 1), so there is no significance to lose")
    elif math.isinf(gamma):
        detail = "The matched result stays significant for any hidden bias up to Gamma = 10,000"
    else:
        detail = (f"The matched result stops being significant at level {alpha} once an unmeasured confounder could "
                  f"make two matched units differ in their odds of treatment by a factor of {gamma:.2f}")
    return {
        "gamma": gamma if gamma is None or math.isfinite(gamma) else None,
        "gamma_exceeds": 1e4 if gamma is not None and math.isinf(gamma) else None,
        "alpha": alpha,
        "pairs": int(np.count_nonzero(d)),
        "p_value_upper": [{"gamma": g, "p_value": _bound(_signed_rank_stats(d), g)} for g in gammas],
        "test": "Wilcoxon signed-rank, normal approximation, one-sided in the direction of the estimate",
        "alternative": "greater" if sign > 0 else "less",
        "detail": detail + ".",
    }
