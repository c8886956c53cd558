"""Multiple-testing corrections of a family of p-values, shared by experiment (metrics, arms, segment values) and
weighting (segment values)."""

from __future__ import annotations


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
