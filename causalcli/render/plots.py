"""Plots drawn from a Result alone (``--plots DIR``; the HTML report embeds the same)."""

from __future__ import annotations

from pathlib import Path
from typing import Callable

from causalcli.atomic import write_atomic
from causalcli.result import Result


def _figure():
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


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
    ax.set_xlabel("|standardised mean difference|")
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


def _png(fig, plt) -> bytes:
    import io

    buf = io.BytesIO()
    fig.tight_layout()
    fig.savefig(buf, format="png", metadata={"Software": None})
    plt.close(fig)
    return buf.getvalue()


PLOTS: dict[str, dict[str, Callable[[Result], bytes | None]]] = {
    "matching": {"love": love_plot, "propensity": propensity_histogram},
}


def write_plots(result: Result, directory: str | Path) -> list[Path]:
    written = []
    for name, draw in PLOTS.get(result.design, {}).items():
        png = draw(result)
        if png is None:
            continue
        path = Path(directory) / f"{result.study}-{name}.png"
        write_atomic(path, png)
        written.append(path)
    return written
