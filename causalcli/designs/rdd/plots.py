"""RD plots: binned means of the outcome with the local fits on each side; the running variable's density.

The bins are rdplot's (``bins.py``), computed in ``fit`` into ``diagnostics.bins``."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, Callable

import numpy as np

from causalcli.charts import figure as _figure, png as _png

if TYPE_CHECKING:  # pragma: no cover
    from causalcli.result import Result


def _bins(result: "Result") -> dict[str, list[Any]] | None:
    """``diagnostics.bins``: columns, one entry per bin (``bins.binned_means``)."""
    bins = result.diagnostics.get("bins")
    return bins if bins and bins.get("side") else None


def binned_scatter(result: "Result") -> bytes | None:
    """Binned means of the outcome (rdplot's bins) and the order-p local fit on each side within h."""
    bins = _bins(result)
    if not bins:
        return None
    diag = result.diagnostics
    c = diag["cutoff"]
    bw = diag["bandwidth"]
    plt = _figure()
    fig, ax = plt.subplots(figsize=(7, 4.2), dpi=110)
    ax.scatter(bins["running"], bins["outcome"], s=14, color="#555555", label="binned mean")
    for side, h, sign in (("below", bw["h_left"], -1), ("above", bw["h_right"], 1)):
        coef = diag["fit"][side]
        u = np.linspace(0, sign * h, 60)
        ax.plot(c + u, np.polyval(coef[::-1], u), color="#1f4e79", lw=2)
    ax.axvline(c, color="#b22222", ls="--", lw=1)
    ax.set_xlabel(diag["running"])
    weighted = "weights" in diag  # the fit is weighted; rdplot's bins here are plain row means
    ax.set_ylabel(f"{diag.get('outcome', 'outcome')} (mean per bin{', unweighted' if weighted else ''})")
    ax.set_title(f"{result.study}: jump {result.estimate.value:.4g} at {diag['running']} = {c:g}", fontsize=10)
    return _png(fig, plt)


def density(result: "Result") -> bytes | None:
    """Rows per unit of the running variable in the bins on each side of the cutoff."""
    bins = _bins(result)
    if not bins:
        return None
    plt = _figure()
    fig, ax = plt.subplots(figsize=(7, 3.6), dpi=110)
    top = density_top(result)
    for side, color in (("below", "#1f4e79"), ("above", "#b22222")):
        on_side = np.asarray(bins["side"]) == side
        lower, upper, n = (np.asarray(bins[k], dtype=np.float64)[on_side] for k in ("lower", "upper", "n"))
        height = n / (upper - lower)
        ax.bar((lower + upper) / 2, height if top is None else np.minimum(height, top), width=upper - lower,
               color=color, alpha=0.6, label=side)
        for x, count in ([] if top is None else zip((lower + upper)[height > top] / 2, n[height > top])):
            ax.annotate(f"{count:,.0f} rows", (x, top), textcoords="offset points", xytext=(0, -10), ha="center",
                        fontsize=7, clip_on=True)
    if top is not None:
        ax.set_ylim(0, top)
    ax.axvline(result.diagnostics["cutoff"], color="black", ls="--", lw=1)
    running = result.diagnostics["running"]
    ax.set_xlabel(running)
    ax.set_ylabel(f"rows per unit of {running}")
    test = result.diagnostics.get("density")
    title = f"{result.study}: density of {running} around the cutoff (rdplot's bins; width differs by side)"
    if test:
        title += f"\nmanipulation test (Cattaneo-Jansson-Ma): p = {test['p_value']:.3g}"
    ax.set_title(title, fontsize=9)
    ax.legend(fontsize=8)
    return _png(fig, plt)


def density_top(result: "Result") -> float | None:
    """The density plot's y limit when a bin far from the cutoff would flatten the rest: 1.25 times the tallest
    bin within the density test's bandwidths (the outcome's h without it) when some bin is more than twice
    that, else None (the full scale). A mass point at the end of the support (vote shares of 0 and 1 in
    uncontested races: 1,700 rows in one bin of close_elections_lmb) otherwise hides the density at the cutoff."""
    bins, diag = _bins(result), result.diagnostics
    if not bins:
        return None
    lower, upper, n = (np.asarray(bins[k], dtype=np.float64) for k in ("lower", "upper", "n"))
    height, centre = n / (upper - lower), (lower + upper) / 2
    window = diag.get("density") or diag["bandwidth"]
    c = diag["cutoff"]
    near = (centre >= c - window["h_left"]) & (centre <= c + window["h_right"])
    if not near.any():
        return None
    top = 1.25 * float(height[near].max())
    return top if float(height.max()) > 2 * top / 1.25 else None


PLOTS: dict[str, Callable[["Result"], bytes | None]] = {"binned_scatter": binned_scatter, "density": density}
