"""Synthetic control plots: the treated unit against its synthetic control, and the gaps with placebo gaps behind."""

from __future__ import annotations

from typing import Callable, TYPE_CHECKING

from causalcli.charts import figure as _figure, png as _png

if TYPE_CHECKING:  # pragma: no cover
    from causalcli.result import Result

# Placebos whose pre-period fit is this many times worse than the treated unit's are left out of the
# gap plot, as Abadie, Diamond and Hainmueller (2010, Figures 5-7) do (they show 20x, 5x and 2x).
PLACEBO_FIT_CUTOFF = 5.0


def _axis(values: list) -> list:
    """Periods for the x axis: ISO dates (a date time column) as datetime64 days, numbers as they are."""
    if values and isinstance(values[0], str):
        import numpy as np

        return list(np.array(values, dtype="datetime64[D]"))
    return values


def _label_axes(fig, ax, path: dict, ylabel: str | None = None) -> None:
    """The spec's names on the axes (design.time, outcome), as the other designs' plots; dates slanted."""
    ax.set_xlabel(path.get("time_column", "period"))
    ax.set_ylabel(ylabel or path.get("outcome_column", "outcome"))
    if path["time"] and isinstance(path["time"][0], str):
        fig.autofmt_xdate()


def path_plot(result: Result) -> bytes | None:
    path = result.diagnostics.get("path")
    if not path or "time_weights" in path:  # synthetic DiD: sdid_plot
        return None
    plt = _figure()
    fig, ax = plt.subplots(figsize=(6.8, 4.2), dpi=110)
    times = _axis(path["time"])
    ax.plot(times, path["treated"], color="#1f4e79", linewidth=2, label=path.get("treated_unit", "treated"))
    ax.plot(times, path["synthetic"], color="#c0504d", linewidth=2, linestyle="--", label="synthetic control")
    ax.axvline(_axis([path["treatment_start"]])[0], color="grey", linestyle=":", linewidth=1)
    _label_axes(fig, ax, path)
    ax.set_title(f"{result.study}: treated vs synthetic control")
    ax.legend(loc="best")
    return _png(fig, plt)


def gaps_plot(result: Result) -> bytes | None:
    path = result.diagnostics.get("path")
    placebos = result.diagnostics.get("placebo_gaps") or {}
    if not path or "time_weights" in path:  # synthetic DiD: sdid_plot
        return None
    plt = _figure()
    fig, ax = plt.subplots(figsize=(6.8, 4.2), dpi=110)
    times = _axis(path["time"])
    pre_rmspe = result.diagnostics.get("pre_rmspe") or 0.0
    placebo_pre = (result.diagnostics.get("placebo_in_space") or {}).get("pre_rmspe", {})
    shown = dropped = 0
    for unit, gaps in placebos.items():
        if pre_rmspe > 0 and placebo_pre.get(unit, 0.0) > PLACEBO_FIT_CUTOFF * pre_rmspe:
            dropped += 1
            continue
        ax.plot(times, gaps, color="#b0b0b0", linewidth=0.8, alpha=0.8)
        shown += 1
    treated_gap = [a - b for a, b in zip(path["treated"], path["synthetic"])]
    ax.plot(times, treated_gap, color="#1f4e79", linewidth=2.2, label=path.get("treated_unit", "treated"))
    ax.axhline(0, color="black", linewidth=0.8)
    ax.axvline(_axis([path["treatment_start"]])[0], color="grey", linestyle=":", linewidth=1)
    _label_axes(fig, ax, path, f"gap in {path.get('outcome_column', 'outcome')} (treated - synthetic)")
    note = f"{shown} placebos" + (f"; {dropped} with pre-RMSPE > {PLACEBO_FIT_CUTOFF:g}x left out" if dropped else "")
    ax.set_title(f"{result.study}: gaps, placebos in grey ({note})", fontsize=9)
    ax.legend(loc="best")
    return _png(fig, plt)


def sdid_plot(result: Result) -> bytes | None:
    """Synthetic DiD (as synthdid's plot): the treated unit and the unit-weighted donors shifted by the
    intercept, the time weights as bars under the pre-period, the effect as the gap after the start."""
    path = result.diagnostics.get("path")
    if not path or "time_weights" not in path:
        return None
    plt = _figure()
    fig, ax = plt.subplots(figsize=(6.8, 4.2), dpi=110)
    times = _axis(path["time"])
    who = path.get("treated_unit", "treated")
    who = who if not isinstance(who, list) else f"mean of the {len(who)} treated units"
    ax.plot(times, path["treated"], color="#1f4e79", linewidth=2, label=who)
    ax.plot(times, path["synthetic_shifted"], color="#c0504d", linewidth=2, linestyle="--",
            label="weighted donors + intercept")
    low = min(min(path["treated"]), min(path["synthetic_shifted"]))
    high = max(max(path["treated"]), max(path["synthetic_shifted"]))
    height = 0.15 * (high - low or 1.0)
    ax.bar(times, [w * height for w in path["time_weights"]], bottom=low - height, color="#7f7f7f", alpha=0.6,
           label="time weights")
    ax.axvline(_axis([path["treatment_start"]])[0], color="grey", linestyle=":", linewidth=1)
    _label_axes(fig, ax, path)
    ax.set_title(f"{result.study}: synthetic DiD, estimate {result.estimate.value:.4g}", fontsize=10)
    ax.legend(loc="best", fontsize=8)
    return _png(fig, plt)


def event_plot(result: Result) -> bytes | None:
    """Staggered synthetic DiD or the pooled synthetic control: the effect by event time with its interval
    (effects labelled 'event time e')."""
    events = [e for e in result.effects if (e.label or "").startswith("event time ")]
    if not events:
        return None
    plt = _figure()
    fig, ax = plt.subplots(figsize=(6.8, 4.2), dpi=110)
    x = [int(e.label.rsplit(" ", 1)[1]) for e in events]
    ax.plot(x, [e.value for e in events], color="#1f4e79", marker="o", linewidth=1.8, label="effect")
    with_ci = [(i, e) for i, e in zip(x, events) if e.ci_lower is not None]
    if with_ci:
        ax.fill_between([i for i, _ in with_ci], [e.ci_lower for _, e in with_ci], [e.ci_upper for _, e in with_ci],
                        color="#1f4e79", alpha=0.15, label=f"{events[0].conf_level:.0%} interval")
    ax.axhline(0, color="grey", linewidth=0.8)
    from matplotlib.ticker import MaxNLocator

    ax.xaxis.set_major_locator(MaxNLocator(integer=True))
    ax.set_xlabel("periods since adoption")
    ax.set_ylabel("effect")
    what = "staggered synthetic DiD" if result.estimator == "synthetic_did" else "pooled synthetic control"
    ax.set_title(f"{result.study}: {what} by event time", fontsize=10)
    ax.legend(loc="best", fontsize=8)
    return _png(fig, plt)


PLOTS: dict[str, Callable[[Result], bytes | None]] = {"path": path_plot, "gaps": gaps_plot, "sdid": sdid_plot,
                                                       "event_study": event_plot}
