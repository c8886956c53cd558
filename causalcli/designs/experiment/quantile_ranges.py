"""Value ranges of the quantile passes: merged, written as SQL, and the ranks read from the values inside them.

Shared by ``quantile`` (the fetch and the narrowing passes) and ``quantile_pass`` (the statistics pass's windows
and their lists), which import this module and not each other's helpers.
"""

from __future__ import annotations

from typing import Any

from causalcli.designs.experiment.sums import lit
from causalcli.errors import EstimationError


def merged(spans: list[tuple[float, float]]) -> list[tuple[float, float]]:
    """Ranges ``[a, b]`` merged where they overlap, in order."""
    out: list[list[float]] = []
    for a, b in sorted(spans):
        if out and a <= out[-1][1]:
            out[-1][1] = max(out[-1][1], b)
        else:
            out.append([a, b])
    return [(a, b) for a, b in out]


def in_ranges(value: str, ranges: list[tuple[float, float]]) -> str:
    """SQL true for ``value`` in one of the disjoint, ordered ``ranges``: their envelope first (one comparison
    pair rules out most rows), then each range."""
    if not ranges:
        return "FALSE"
    if len(ranges) == 1:
        return f"{value} >= {lit(ranges[0][0])} AND {value} <= {lit(ranges[0][1])}"
    each = " OR ".join(f"({value} >= {lit(a)} AND {value} <= {lit(b)})" for a, b in ranges)
    return f"{value} >= {lit(ranges[0][0])} AND {value} <= {lit(ranges[-1][1])} AND ({each})"


def take_ranks(inside: dict[tuple, Any], windows, targets, values, table, column: str, key: str) -> None:
    """``quantile.order_statistics``'s remaining ranks (``targets``: (group, rank) -> its window) read from the
    values the statistics pass returned (``inside``: group -> its values in its windows): each group's sorted
    once with numpy, a window's values are the run between its bounds."""
    import numpy as np

    ordered: dict[tuple, np.ndarray] = {}
    runs: dict[tuple, np.ndarray] = {}
    for w in windows:
        if w.group not in ordered:
            ordered[w.group] = np.sort(inside[w.group])
        x = ordered[w.group]
        runs[(w.group, w.lo, w.hi)] = run = x[np.searchsorted(x, w.lo, "left"):np.searchsorted(x, w.hi, "right")]
        if len(run) != w.count:  # pragma: no cover - the pass's counts and its lists disagree: a bug
            raise EstimationError(f"the values of {column!r} in a window do not match its count", file=table.file,
                                  key=key, column=column)
    for (group, r), t in targets.items():
        values[group][r] = float(runs[(t.group, t.lo, t.hi)][r - t.below - 1])
    targets.clear()
