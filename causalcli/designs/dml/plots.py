"""Double machine learning plots: effects by segment with intervals, the CATE distribution
(model: forest), and cross-fitted propensity scores by arm (binary treatment)."""

from __future__ import annotations

from typing import Callable, TYPE_CHECKING

from causalcli.charts import arm_histogram, figure as _figure, png as _png

if TYPE_CHECKING:  # pragma: no cover
    from causalcli.result import Result


def segment_effects(result: Result) -> bytes | None:
    rows = [e for e in result.effects if e.ci_lower is not None]
    if not rows:
        return None
    plt = _figure()
    labels = [e.label for e in rows][::-1]
    values = [e.value for e in rows][::-1]
    lower = [e.value - e.ci_lower for e in rows][::-1]
    upper = [e.ci_upper - e.value for e in rows][::-1]
    fig, ax = plt.subplots(figsize=(6.4, 0.45 * len(rows) + 1.6), dpi=110)
    ys = list(range(len(rows)))
    ax.errorbar(values, ys, xerr=[lower, upper], fmt="o", color="#1f4e79", capsize=3, label="segment effect")
    est = result.estimate
    ax.axvline(est.value, color="#c0504d", linestyle="-", linewidth=1, label=f"overall {result.estimand.upper()}")
    if est.ci_lower is not None:
        ax.axvspan(est.ci_lower, est.ci_upper, color="#c0504d", alpha=0.12)
    ax.axvline(0, color="grey", linestyle="--", linewidth=1)
    ax.set_yticks(ys, labels)
    ax.set_xlabel(f"effect ({int(round(est.conf_level * 100))}% interval)")
    ax.set_title(f"{result.study}: effects by segment")
    ax.legend(loc="best", fontsize=8)
    return _png(fig, plt)


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
