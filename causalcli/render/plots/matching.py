"""Matching plots: a love plot and propensity-score histograms by arm."""

from __future__ import annotations

from typing import Callable

from causalcli.render.plots import arm_histogram, figure as _figure, png as _png
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
    return arm_histogram(result, (result.diagnostics.get("overlap") or {}).get("histogram"), "propensity score")


PLOTS: dict[str, Callable[[Result], bytes | None]] = {"love": love_plot, "propensity": propensity_histogram}
