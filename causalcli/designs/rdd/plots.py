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
    ax.set_ylabel(f"{diag.get('outcome', 'outcome')} (mean per bin)")
    ax.set_title(f"{result.study}: jump {result.estimate.value:.4g} at {diag['running']} = {c:g}", fontsize=10)
    return _png(fig, plt)


def density(result: "Result") -> bytes | None:
    """Rows per unit of the running variable in the bins on each side of the cutoff."""
    bins = _bins(result)
    if not bins:
        return None
    plt = _figure()
    fig, ax = plt.subplots(figsize=(7, 3.6), dpi=110)
    for side, color in (("below", "#1f4e79"), ("above", "#b22222")):
        on_side = np.asarray(bins["side"]) == side
        lower, upper, n = (np.asarray(bins[k], dtype=np.float64)[on_side] for k in ("lower", "upper", "n"))
        ax.bar((lower + upper) / 2, n / (upper - lower), width=upper - lower, color=color, alpha=0.6, label=side)
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


PLOTS: dict[str, Callable[["Result"], bytes | None]] = {"binned_scatter": binned_scatter, "density": density}
