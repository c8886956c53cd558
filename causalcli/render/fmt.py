"""Number formatting shared by the human renderers."""

from __future__ import annotations

from causalcli.numbers import num

__all__ = ["num", "pval", "verdict"]


def pval(p: float | None) -> str:
    if p is None:
        return "-"
    return "<0.001" if p < 0.001 else f"{p:.3f}"


def verdict(passed: bool | None) -> str:
    return "n/a" if passed is None else ("pass" if passed else "FAIL")
