"""Number formatting shared by the human renderers."""

from __future__ import annotations

from typing import Any

from causalcli.numbers import num

__all__ = ["num", "pval", "verdict", "estimand_reading"]


def pval(p: float | None) -> str:
    if p is None:
        return "-"
    return "<0.001" if p < 0.001 else f"{p:.3f}"


def verdict(passed: bool | None) -> str:
    return "n/a" if passed is None else ("pass" if passed else "FAIL")


def estimand_reading(diagnostics: dict[str, Any]) -> tuple[str | None, str | None]:
    """What a design says its estimand means for these data: a few words and the sentence (iv's ``late``: a
    complier effect, an average causal response or a weighted average of derivatives), or None."""
    ident = diagnostics.get("identification") or {}
    return ident.get("meaning"), ident.get("interpretation")
