"""Experiment plots: relative lifts per metric and arm with their intervals, arm sizes against the plan, and
(with design.time) the cumulative effect by period."""

from __future__ import annotations

from typing import Callable, TYPE_CHECKING

from causalcli.charts import figure as _figure, png as _png

if TYPE_CHECKING:  # pragma: no cover
    from causalcli.result import Result


def lifts(result: Result) -> bytes | None:
    """Forest plot of the relative effects (metric/arm/rel), in percent, with their intervals."""
    rows = [e for e in result.effects if (e.label or "").endswith("/rel") and e.value == e.value]
    if not rows:
        return None
    plt = _figure()
    fig, ax = plt.subplots(figsize=(6.8, 0.5 * len(rows) + 1.5), dpi=110)
    ys = list(range(len(rows)))[::-1]
    for y, e in zip(ys, rows):
        significant = (e.p_value_adjusted if e.p_value_adjusted is not None else e.p_value or 1) < 0.05
        colour = "#1f4e79" if significant else "#7f7f7f"
        if e.ci_lower is not None and e.ci_upper is not None:
            ax.plot([100 * e.ci_lower, 100 * e.ci_upper], [y, y], color=colour, linewidth=2)
        ax.plot([100 * e.value], [y], "o", color=colour)
    ax.axvline(0, color="black", linewidth=0.8)
    ax.set_yticks(ys, [e.label[: -len("/rel")] for e in rows])
    level = int(round(100 * rows[0].conf_level))
    ax.set_xlabel(f"relative effect (%), {level}% interval; blue: adjusted p < 0.05")
    ax.set_title(f"{result.study}: lift by metric and arm")
    return _png(fig, plt)


def arm_sizes(result: Result) -> bytes | None:
    """Observed units per arm beside the planned split (the SRM check)."""
    srm = result.diagnostics.get("srm")
    if not srm:
        return None
    plt = _figure()
    arms = list(srm["observed"])
    fig, ax = plt.subplots(figsize=(6.4, 3.6), dpi=110)
    xs = range(len(arms))
    ax.bar([x - 0.2 for x in xs], [srm["observed"][a] for a in arms], width=0.4, color="#1f4e79", label="observed")
    if srm.get("expected"):
        ax.bar([x + 0.2 for x in xs], [srm["expected"][a] for a in arms], width=0.4, color="#c0c0c0",
               label="planned")
    ax.set_xticks(list(xs), arms)
    ax.set_ylabel("units")
    if srm.get("p_value") is None:  # no planned allocation: nothing to compare with
        ax.set_title(f"{result.study}: units per arm (no expected_split: sample ratio not checked)")
    else:
        verdict = "passed" if srm.get("passed") else "FAILED"
        ax.set_title(f"{result.study}: sample ratio (chi-square p = {srm['p_value']:.3g}, {verdict})")
    ax.legend(loc="lower right")
    return _png(fig, plt)


def cumulative(result: Result) -> bytes | None:
    """The primary metric's effect on all data up to each period, with its fixed-horizon interval."""
    points = result.diagnostics.get("cumulative")
    if not points:
        return None
    about = result.diagnostics.get("cumulative_method") or {}
    plt = _figure()
    fig, ax = plt.subplots(figsize=(7.2, 4), dpi=110)
    xs = list(range(len(points)))
    shown = [(x, p) for x, p in zip(xs, points) if p["value"] is not None]
    band = [(x, p) for x, p in shown if p["ci_lower"] is not None]
    sequential = (result.diagnostics.get("sequential") or {}).get("method")
    if band:
        ax.fill_between([x for x, _ in band], [p["ci_lower"] for _, p in band], [p["ci_upper"] for _, p in band],
                        color="#1f4e79", alpha=0.2, linewidth=0)
    if sequential:  # the band valid for peeking, drawn as lines over the fixed-horizon one
        _sequential_band(ax, [(x, p) for x, p in band if p.get("sequential_lower") is not None], sequential)
    ax.plot([x for x, _ in shown], [p["value"] for _, p in shown], "-o", color="#1f4e79", markersize=3)
    ax.axhline(0, color="black", linewidth=0.8)
    step = max(1, len(points) // 10)  # at most about ten labels on the axis
    ax.set_xticks(xs[::step], [p["label"] for p in points][::step], rotation=45, ha="right")
    level = int(round(100 * result.estimate.conf_level)) if result.estimate else 95
    ax.set_ylabel(f"cumulative effect ({about.get('metric', '')}/{about.get('arm', '')}/abs)")
    if sequential:
        ax.set_xlabel(f"{about.get('time', 'period')}; shaded: {level}% fixed-horizon; dashed: {level}% "
                      f"{sequential.replace('_', '-')} (valid for peeking)")
        ax.legend(loc="best", fontsize=8)
    else:
        ax.set_xlabel(f"{about.get('time', 'period')}; band: {level}% fixed-horizon interval, not valid for peeking")
    ax.set_title(f"{result.study}: cumulative effect by period")
    return _png(fig, plt)


def forest(result: Result) -> bytes | None:
    """With segments: each metric x arm's relative effect on all units (diamond) and in each segment (dots),
    with intervals; one panel per metric, each on its own scale."""
    from causalcli.designs.experiment.segments import forest_rows

    rows = forest_rows(result.effects)
    if not rows:
        return None
    panels: dict[str, list] = {}
    for text, e, overall in rows:
        panels.setdefault(e.label.split("/")[0], []).append((text, e, overall))
    plt = _figure()
    sizes = [len(r) for r in panels.values()]
    fig, axes = plt.subplots(len(panels), 1, figsize=(7.2, 0.26 * sum(sizes) + 1.2 * len(panels) + 0.6), dpi=110,
                             gridspec_kw={"height_ratios": sizes}, squeeze=False)
    for ax, (metric, part) in zip(axes[:, 0], panels.items()):
        ys = list(range(len(part)))[::-1]
        for y, (_, e, overall) in zip(ys, part):
            if e.value != e.value:  # no estimate in this segment: the label stays, the row is empty
                continue
            colour = "#1f4e79" if overall else "#5b9bd5"
            if e.ci_lower == e.ci_lower and e.ci_upper == e.ci_upper:
                ax.plot([100 * e.ci_lower, 100 * e.ci_upper], [y, y], color=colour, linewidth=2.2 if overall else 1.4)
            ax.plot([100 * e.value], [y], "D" if overall else "o", color=colour, markersize=6 if overall else 4)
        ax.axvline(0, color="black", linewidth=0.8)
        ax.set_yticks(ys, [text for text, _, _ in part], fontsize=8)
        ax.set_title(metric, fontsize=9, loc="left")
    level = int(round(100 * rows[0][1].conf_level))
    axes[-1, 0].set_xlabel(f"relative effect (%), {level}% interval; diamonds: all units, dots: one segment")
    fig.suptitle(f"{result.study}: effects by metric, arm and segment")
    return _png(fig, plt)


def _sequential_band(ax, band: list, method: str) -> None:
    """The confidence sequence (always_valid) or repeated confidence intervals (group_sequential), by look."""
    xs = [x for x, _ in band]
    label = "confidence sequence" if method == "always_valid" else "repeated confidence interval"
    ax.plot(xs, [p["sequential_lower"] for _, p in band], "--", color="#c55a11", linewidth=1.2, label=label)
    ax.plot(xs, [p["sequential_upper"] for _, p in band], "--", color="#c55a11", linewidth=1.2)


PLOTS: dict[str, Callable[[Result], bytes | None]] = {"lifts": lifts, "arm_sizes": arm_sizes,
                                                      "cumulative": cumulative, "forest": forest}
