"""Number formatting shared by the human renderers."""

from __future__ import annotations

import math


def num(x: float | None, digits: int = 4) -> str:
    if x is None or (isinstance(x, float) and not math.isfinite(x)):
        return "-"
    if x != 0 and (abs(x) >= 1e6 or abs(x) < 1e-4):
        return f"{x:.{digits - 1}e}"
    if abs(x) >= 1000:
        return f"{x:,.1f}"
    if isinstance(x, float):  # trailing zeros kept: an interval reads [2.447, 4.300], not [2.447, 4.3]
        return f"{x:#.{digits}g}".rstrip(".")
    return f"{x:.{digits}g}"


def pval(p: float | None) -> str:
    if p is None:
        return "-"
    return "<0.001" if p < 0.001 else f"{p:.3f}"


def verdict(passed: bool | None) -> str:
    return "n/a" if passed is None else ("pass" if passed else "FAIL")
