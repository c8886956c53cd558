"""Double machine learning plots: effects by segment with intervals (``causalcli.charts``), the CATE distribution
(model: forest), and cross-fitted propensity scores by arm (binary treatment)."""

from __future__ import annotations

from typing import Callable, TYPE_CHECKING

from causalcli.charts import arm_histogram, figure as _figure, png as _png, segment_effects

if TYPE_CHECKING:  # pragma: no cover
    from causalcli.result import Result


def cate_distribution(result: Result) -> bytes | None:
    cate = result.diagnostics.get("cate") or {}
    hist = cate.get("histogram")
    if not hist:
        return None
    plt = _figure()
    edges = hist["edges"]
    counts = hist["counts"] if "counts" in hist else hist["weights"]  # with observation weights: sums of weights
    widths = [b - a for a, b in zip(edges[:-1], edges[1:])]
    fig, ax = plt.subplots(figsize=(6.4, 4), dpi=110)
    ax.bar(edges[:-1], counts, width=widths, align="edge", color="#1f4e79", alpha=0.7)
    q = cate.get("quantiles", {})
    for key, style in (("q05", ":"), ("q50", "-"), ("q95", ":")):
        if key in q:
            ax.axvline(q[key], color="#c0504d", linestyle=style, linewidth=1)
    ax.set_xlabel("conditional average treatment effect (quantiles 5%, 50%, 95% in red)")
    ax.set_ylabel("units" if "counts" in hist else "sum of observation weights")
    ax.set_title(f"{result.study}: distribution of the CATE")
    return _png(fig, plt)


def propensity_histogram(result: Result) -> bytes | None:
    return arm_histogram(result, (result.diagnostics.get("nuisance") or {}).get("histogram"), "cross-fitted propensity score")


PLOTS: dict[str, Callable[[Result], bytes | None]] = {
    "segments": segment_effects, "cate": cate_distribution, "propensity": propensity_histogram,
}
