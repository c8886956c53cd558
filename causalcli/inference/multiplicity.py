"""Multiple-testing corrections of a family of p-values, shared by experiment (metrics, arms, segment values),
weighting, iv and matching (segment values); and what those say of one segment column's effects."""

from __future__ import annotations

from dataclasses import replace
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:  # pragma: no cover
    from causalcli.records import Estimate


def adjust(p_values: list[float], method: str) -> list[float]:
    """Holm (step-down) or Benjamini-Hochberg (step-up) adjusted p-values; NaN stays NaN and is not counted."""
    idx = [i for i, p in enumerate(p_values) if p == p]
    out = [float("nan")] * len(p_values)
    m = len(idx)
    if method == "none":
        return list(p_values)
    order = sorted(idx, key=lambda i: (p_values[i], i))
    if method == "holm":
        running = 0.0
        for rank, i in enumerate(order):
            running = max(running, min(1.0, (m - rank) * p_values[i]))
            out[i] = running
    elif method == "bh":
        running = 1.0
        for rank in range(m - 1, -1, -1):
            i = order[rank]
            running = min(running, min(1.0, m / (rank + 1) * p_values[i]))
            out[i] = running
    else:  # pragma: no cover - the spec model forbids others
        raise ValueError(method)
    return out


def corrected_over_values(rows: list["Estimate"], column: str, method: str) -> list["Estimate"]:
    """One segment column's effects with their p-values adjusted over its values, the family named in
    ``inference``."""
    family = f"; p_value_adjusted: {method} over {sum(r.p_value is not None for r in rows)} values of {column}"
    adjusted = adjust([float("nan") if r.p_value is None else r.p_value for r in rows], method)
    return [replace(r, inference=r.inference + family, p_value_adjusted=None if p != p else p)
            for r, p in zip(rows, adjusted)]


def differs_warning(column: str, test: dict[str, Any], alpha: float, columns: int) -> str | None:
    """The warning that a column's heterogeneity test rejects equal effects (None when it does not)."""
    if test["p_value"] is None or test["p_value"] >= alpha:
        return None
    return (f"the effect differs across the values of {column!r} (Wald chi-square = {test['statistic']:.2f} on "
            f"{test['df']} df, p = {test['p_value']:.3g} < thresholds.alpha {alpha}, one of {columns} tests, not "
            "corrected); the headline averages over the segments: read the segment effects")


def segment_column(rows: list["Estimate"], column: str, test: dict[str, Any], alpha: float, columns: int,
                   method: str = "holm") -> tuple[list["Estimate"], dict[str, Any], list[str]]:
    """One segment column's effects corrected over its values, its heterogeneity ``test`` labelled with the column,
    and the warning when that test rejects at ``alpha`` (one of ``columns`` tests)."""
    test = {"segment": column, **test}
    said = differs_warning(column, test, alpha, columns)
    return corrected_over_values(rows, column, method), test, [said] if said else []


def skipped_warning(skipped: list[str]) -> list[str]:
    """The warning naming the segment values with no effect reported (each ``label (why)``), or none."""
    if not skipped:
        return []
    return [f"no effect reported for {len(skipped)} segment value(s): {'; '.join(skipped[:5])}"
            + (f" and {len(skipped) - 5} more" if len(skipped) > 5 else "")]
