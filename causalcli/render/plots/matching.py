"""Matching plots: a love plot and propensity-score histograms by arm."""

from __future__ import annotations

from typing import Callable

from causalcli.render.plots import figure as _figure, png as _png
from causalcli.result import Result


def love_plot(result: Result) -> bytes | None:
    balance = result.diagnostics.get("balance")
    if not balance:
        return None
    plt = _figure()
    names = [b["covariate"] for b in balance][::-1]
    before = [abs(b["smd_before"]) for b in balance][::-1]
    after = [abs(b["smd_after"]) for b in balance][::-1]
    fig, ax = plt.subplots(figsize=(6.4, 0.45 * len(names) + 1.4), dpi=110)
    ys = range(len(names))
    ax.scatter(before, ys, marker="o", facecolors="none", edgecolors="#c0504d", label="before")
    ax.scatter(after, ys, marker="o", color="#1f4e79", label="after")
    limit = result.diagnostics.get("balance_threshold")
    for x in ([0.1] if limit is None else [limit]):
        ax.axvline(x, color="grey", linestyle="--", linewidth=1)
    ax.set_yticks(list(ys), names)
    ax.set_xlabel("|standardised mean difference| (before: open, after: filled)")
    ax.set_title(f"{result.study}: covariate balance")
    ax.legend(loc="lower right")
    return _png(fig, plt)


def propensity_histogram(result: Result) -> bytes | None:
    hist = (result.diagnostics.get("overlap") or {}).get("histogram")
    if not hist:
        return None
    plt = _figure()
    edges = hist["edges"]
    widths = [b - a for a, b in zip(edges[:-1], edges[1:])]
    fig, ax = plt.subplots(figsize=(6.4, 4), dpi=110)
    tot_t = max(sum(hist["treated"]), 1)
    tot_c = max(sum(hist["control"]), 1)
    ax.bar(edges[:-1], [c / tot_t for c in hist["treated"]], width=widths, align="edge", alpha=0.6,
           color="#1f4e79", label="treated")
    ax.bar(edges[:-1], [c / tot_c for c in hist["control"]], width=widths, align="edge", alpha=0.5,
           color="#c0504d", label="control")
    ax.set_xlabel("propensity score")
    ax.set_ylabel("share of arm")
    ax.set_title(f"{result.study}: propensity score by arm")
    ax.legend()
    return _png(fig, plt)


PLOTS: dict[str, Callable[[Result], bytes | None]] = {"love": love_plot, "propensity": propensity_histogram}
