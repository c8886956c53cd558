"""Number formatting shared by the human renderers, and what they read alike from a result (the estimand's
meaning, the corrections of the effects' p-values, the tests of equal segment effects, the observation weights)."""

from __future__ import annotations

from typing import Any

from causalcli.numbers import num

__all__ = ["num", "pval", "verdict", "estimand_reading", "corrections", "heterogeneity_readings", "weights_reading"]


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


ADJUSTED = "; p_value_adjusted: "  # how an effect's inference names the family its p_value_adjusted is corrected over


def corrections(effects: list[Any]) -> list[str]:
    """The families the effects' ``p_value_adjusted`` are corrected over, each once and in order ("holm over 3
    values of region"); none when no effect carries an adjusted p-value."""
    seen: dict[str, None] = {}
    for e in effects:
        if e.p_value_adjusted is not None and ADJUSTED in e.inference:
            seen[e.inference.split(ADJUSTED, 1)[1]] = None
    return list(seen)


def heterogeneity_readings(diagnostics: dict[str, Any]) -> list[str]:
    """One line per test that a segment column's effects are equal (``diagnostics.heterogeneity``, or an
    experiment's ``diagnostics.segments.heterogeneity``): the column, the statistic on its df and the p-value, or
    why it was not computed."""
    tests = diagnostics.get("heterogeneity")
    segments = diagnostics.get("segments")
    if not isinstance(tests, list) and isinstance(segments, dict):
        tests = segments.get("heterogeneity")
    if not isinstance(tests, list):
        return []
    lines = []
    for t in tests:
        if not isinstance(t, dict) or "segment" not in t:
            continue
        within = "/".join(str(t[k]) for k in ("metric", "arm") if t.get(k) is not None)
        name = f"test of equal effects across {t['segment']}" + (f" ({within})" if within else "")
        if t.get("statistic") is None:
            why = t.get("not_computed") or "fewer than two segment values with a standard error"
            lines.append(f"{name}: not computed ({why})")
        else:
            lines.append(f"{name}: chi-square {num(t['statistic'])} on {t['df']} df, p {pval(t['p_value'])}")
    return lines


def weights_reading(diagnostics: dict[str, Any]) -> str | None:
    """The observation-weights column a study used, with the rows of weight 0 it left out, or None.
    (``diagnostics.weights`` of synthetic control is the donors' weights, a mapping without a ``column``.)"""
    w = diagnostics.get("weights")
    if not (isinstance(w, dict) and isinstance(w.get("column"), str) and "note" in w):
        return None
    zero = w.get("zero_weight_rows") or 0
    return w["column"] + (f" ({zero:,} rows of weight 0 left out)" if zero else "")
