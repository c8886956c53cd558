"""Difference-in-differences plots: the event study (effects by period relative to treatment)."""

from __future__ import annotations

from typing import Callable

from causalcli.render.plots import figure as _figure, png as _png
from causalcli.result import Result


def _period(label: str) -> float | None:
    text = label.split("=", 1)[-1].lstrip("<>=")
    try:
        return float(text)
    except ValueError:
        return None


def event_study_plot(result: Result) -> bytes | None:
    rows = [(e, _period(e.label or "")) for e in result.effects if (e.label or "").startswith("event_time=")]
    rows = [(e, k) for e, k in rows if k is not None]
    if not rows:
        return None
    plt = _figure()
    fig, ax = plt.subplots(figsize=(7.0, 4.2), dpi=110)
    xs = [k for _, k in rows]
    ys = [e.value for e, _ in rows]
    lo = [e.value - e.ci_lower if e.ci_lower is not None else 0.0 for e, _ in rows]
    hi = [e.ci_upper - e.value if e.ci_upper is not None else 0.0 for e, _ in rows]
    colours = ["#c0504d" if k < 0 else "#1f4e79" for k in xs]
    for x, y, l, h, c in zip(xs, ys, lo, hi, colours):
        ax.errorbar([x], [y], yerr=[[l], [h]], fmt="o", color=c, capsize=3)
    if result.estimator == "twfe_event_study":
        ax.scatter([-1], [0], marker="D", color="grey", zorder=3, label="reference (-1)")
    ax.axhline(0, color="black", linewidth=0.8)
    ax.axvline(-0.5, color="grey", linestyle="--", linewidth=1)
    ax.set_xticks(xs + ([-1] if result.estimator == "twfe_event_study" else []))
    ax.set_xticklabels([(e.label or "").split("=", 1)[-1] for e, _ in rows]
                       + (["-1"] if result.estimator == "twfe_event_study" else []))
    ax.set_xlabel("period relative to first treatment")
    ax.set_ylabel("effect")
    band = rows[0][0].inference
    pt = result.diagnostics.get("pre_trend") or {}
    title = f"{result.study}: event study ({int(round(rows[0][0].conf_level * 100))}% {band})"
    if pt.get("p_value") is not None:
        title += f"\npre-trend test p = {pt['p_value']:.3g}"
    ax.set_title(title, fontsize=10)
    if result.estimator == "twfe_event_study":
        ax.legend(loc="best", fontsize=8)
    return _png(fig, plt)


PLOTS: dict[str, Callable[[Result], bytes | None]] = {"event_study": event_study_plot}
