"""RD plots: binned means of the outcome with the local fits on each side; the running variable's density."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, Callable

import numpy as np

from causalcli.charts import figure as _figure, png as _png

if TYPE_CHECKING:  # pragma: no cover
    from causalcli.result import Result

BINS_PER_SIDE = 20  # evenly spaced bins of the running variable on each side of the cutoff


def binned_means(x: np.ndarray, y: np.ndarray, cutoff: float) -> list[dict[str, Any]]:
    """Mean outcome and row count in evenly spaced bins of the running variable, each side separately (the
    data of the binned scatter and of the density plot)."""
    out = []
    for side, part in (("below", x < cutoff), ("above", x >= cutoff)):
        xs, ys = x[part], y[part]
        if xs.size == 0:
            continue
        lo, hi = (float(xs.min()), cutoff) if side == "below" else (cutoff, float(xs.max()))
        edges = np.linspace(lo, hi, BINS_PER_SIDE + 1)
        codes = np.clip(np.searchsorted(edges, xs, side="right") - 1, 0, BINS_PER_SIDE - 1)
        count = np.bincount(codes, minlength=BINS_PER_SIDE)
        sums = np.bincount(codes, weights=ys, minlength=BINS_PER_SIDE)
        running = np.bincount(codes, weights=xs, minlength=BINS_PER_SIDE)
        for j in np.flatnonzero(count):
            out.append({"side": side, "lower": float(edges[j]), "upper": float(edges[j + 1]),
                        "running": float(running[j] / count[j]),
                        "outcome": float(sums[j] / count[j]), "n": int(count[j])})
    return out


def _bins(result: "Result") -> list[dict[str, Any]] | None:
    return result.diagnostics.get("bins") or None


def binned_scatter(result: "Result") -> bytes | None:
    """Binned means of the outcome and the order-p local fit on each side within h."""
    bins = _bins(result)
    if not bins:
        return None
    diag = result.diagnostics
    c = diag["cutoff"]
    bw = diag["bandwidth"]
    plt = _figure()
    fig, ax = plt.subplots(figsize=(7, 4.2), dpi=110)
    ax.scatter([b["running"] for b in bins], [b["outcome"] for b in bins], s=14, color="#555555", label="binned mean")
    for side, h, sign in (("below", bw["h_left"], -1), ("above", bw["h_right"], 1)):
        coef = diag["fit"][side]
        u = np.linspace(0, sign * h, 60)
        ax.plot(c + u, np.polyval(coef[::-1], u), color="#1f4e79", lw=2)
    ax.axvline(c, color="#b22222", ls="--", lw=1)
    ax.set_xlabel(diag["running"])
    ax.set_ylabel("outcome")
    ax.set_title(f"{result.study}: jump {result.estimate.value:.4g} at {c:g}", fontsize=10)
    return _png(fig, plt)


def density(result: "Result") -> bytes | None:
    """Rows per unit of the running variable in the bins on each side of the cutoff."""
    bins = _bins(result)
    if not bins:
        return None
    plt = _figure()
    fig, ax = plt.subplots(figsize=(7, 3.6), dpi=110)
    for side, color in (("below", "#1f4e79"), ("above", "#b22222")):
        part = [b for b in bins if b["side"] == side]
        ax.bar([(b["lower"] + b["upper"]) / 2 for b in part], [b["n"] / (b["upper"] - b["lower"]) for b in part],
               width=[b["upper"] - b["lower"] for b in part], color=color, alpha=0.6, label=side)
    ax.axvline(result.diagnostics["cutoff"], color="black", ls="--", lw=1)
    ax.set_xlabel(result.diagnostics["running"])
    ax.set_ylabel("rows per unit")
    ax.legend(fontsize=8)
    return _png(fig, plt)


PLOTS: dict[str, Callable[["Result"], bytes | None]] = {"binned_scatter": binned_scatter, "density": density}
