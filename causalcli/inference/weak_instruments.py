"""What instrumental-variables analyses share about weak instruments: the Montiel Olea-Pflueger critical
value of the effective F, and the confidence set {b : a2 b^2 + a1 b + a0 <= 0} that the Anderson-Rubin test
with one instrument (Fieller's set for a ratio of means) solves in closed form.

Used by ``method: iv`` (``designs/iv``) and by experiments with partial compliance (``designs/experiment``,
``uptake:``), whose Wald ratio is IV with the arm as the one instrument. Standard library only: spec models
import the critical value.
"""

from __future__ import annotations

import math

# Montiel Olea and Pflueger (2013), the "simplified" critical value of the effective F: worst-case Nagar
# bias of 2SLS at most 10% of the OLS benchmark, tested at 5%; conservative for any number of instruments.
MOP_CRITICAL_10PCT = 23.109


def quadratic_set(a2: float, a1: float, a0: float) -> tuple[float, float, str]:
    """{b : a2 b^2 + a1 b + a0 <= 0} as (lower, upper, shape): shape "interval", "unbounded" (the whole
    line), "outside" (the complement of (lower, upper)) or "empty" (lower and upper NaN)."""
    inf, nan = math.inf, math.nan
    disc = a1 * a1 - 4 * a2 * a0
    if a2 == 0.0:
        if a1 == 0.0:
            return (-inf, inf, "unbounded") if a0 <= 0 else (nan, nan, "empty")
        root = -a0 / a1
        return (-inf, root, "interval") if a1 > 0 else (root, inf, "interval")
    if disc < 0:
        return (-inf, inf, "unbounded") if a2 < 0 else (nan, nan, "empty")
    r = sorted(((-a1 - math.sqrt(disc)) / (2 * a2), (-a1 + math.sqrt(disc)) / (2 * a2)))
    return (r[0], r[1], "interval") if a2 > 0 else (r[0], r[1], "outside")
