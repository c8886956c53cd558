"""A confidence set by inverting a test: the effects b0 the test accepts at the level, as bootstrap tests of a
null b0 give them (boottest's approach; the WRE for IV, the wild bootstrap of an RD).

The set's hull: from the estimate, steps of twice the standard error, growing fourfold, until a value is rejected on
each side, then bisection between the last accepted and the first rejected value. A test still accepting
``UNBOUNDED_SES`` standard errors away makes the set unbounded (weak instruments, a fuzzy RD's weak first stage).
"""

from __future__ import annotations

from typing import Any, Callable

import numpy as np

BISECTION_STEPS = 40
UNBOUNDED_SES = 1e4  # accepted this many standard errors away: the set is taken to be unbounded


def symmetric_p(t: float, tstar: np.ndarray) -> float | None:
    """The symmetric bootstrap p-value of ``t``: the share of the finite draws ``tstar`` with |t*| >= |t| (the
    relative 1e-9 keeps a draw equal to t up to rounding), or None with no finite draw or no finite t."""
    ok = np.isfinite(tstar)
    if not ok.any() or not np.isfinite(t):
        return None
    return float(np.mean(np.abs(tstar[ok]) >= abs(t) * (1 - 1e-9)))


def invert_test(p_value: Callable[[float], float | None], estimate: float, se: float, conf_level: float,
                unbounded: str) -> dict[str, Any]:
    """``{ci_lower, ci_upper}`` of {b0 : p(b0) > 1 - conf_level}, or both None with a ``reason``;
    ``unbounded`` is the reason given when the set has no end on a side."""
    alpha = 1 - conf_level

    def accepted(b0: float) -> bool:
        p = p_value(b0)
        return p is not None and p > alpha

    out: dict[str, Any] = {"ci_lower": None, "ci_upper": None}
    if not accepted(estimate):
        out["reason"] = "the bootstrap rejects even the estimate itself at this level"
        return out
    ends = []
    for sign in (-1.0, 1.0):
        inside, step = estimate, 2.0 * se
        outside = estimate + sign * step
        while accepted(outside):
            inside, step = outside, step * 4.0
            if step > UNBOUNDED_SES * se:
                out["reason"] = unbounded
                return out
            outside = estimate + sign * step
        for _ in range(BISECTION_STEPS):
            mid = 0.5 * (inside + outside)
            if accepted(mid):
                inside = mid
            else:
                outside = mid
        ends.append(inside)
    out.update(ci_lower=float(ends[0]), ci_upper=float(ends[1]))
    return out
