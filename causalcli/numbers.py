"""How numbers read in text: the one format of an estimate, for the renderers (``render.fmt``) and for the
sentences results carry (refuter details), so a number reads the same in both."""

from __future__ import annotations

import math
import re


def num(x: float | None, digits: int = 4) -> str:
    """``digits`` significant digits, trailing zeros kept for floats (0.5000, as 4.300 in an interval);
    thousands separated with one decimal from 1,000; scientific below 1e-4 and from 1e6; None or not finite: -."""
    if x is None or (isinstance(x, float) and not math.isfinite(x)):
        return "-"
    if x != 0 and (abs(x) >= 1e6 or abs(x) < 1e-4):
        return f"{x:.{digits - 1}e}"
    if abs(x) >= 1000:
        return f"{x:,.1f}"
    if isinstance(x, float):  # trailing zeros kept: an interval reads [2.447, 4.300], not [2.447, 4.3]
        return f"{x:#.{digits}g}".rstrip(".")
    return f"{x:.{digits}g}"


def number_shape(text: str) -> str:
    """``text`` with every number written as ``#``: messages alike but for their numbers have one shape."""
    return re.sub(r"\d+(\.\d+)?", "#", text)
