"""Difference-in-differences plots: the event study, and the honest-DiD confidence sets by Mbar."""

from __future__ import annotations

from typing import Callable, TYPE_CHECKING

from causalcli.charts import figure as _figure, png as _png, segment_effects

if TYPE_CHECKING:  # pragma: no cover
    from causalcli.result import Result


# event studies whose reference period -1 is an omitted coefficient (drawn as a grey diamond at 0)
OMITTED_REFERENCE = ("twfe_event_study", "sun_abraham")


def _period(label: str) -> float | None:
    text = label.split("=", 1)[-1].lstrip("<>=")
    try:
        return float(text)
    except ValueError:
        return None


def event_study_plot(result: Result) -> bytes | None:
    if result.estimator == "all":
        return comparison_plot(result)
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
    if result.estimator in OMITTED_REFERENCE:
        ax.scatter([-1], [0], marker="D", color="grey", zorder=3, label="reference (-1)")
    leads = _test_leads(result, xs)
    if leads:
        ax.scatter(list(leads), list(leads.values()), marker="o", facecolors="none", edgecolors="#c0504d", zorder=3,
                   label="pre-trend test leads (no interval)")
    ax.axhline(0, color="black", linewidth=0.8)
    ax.axvline(-0.5, color="grey", linestyle="--", linewidth=1)
    ax.set_xticks(xs + ([-1] if result.estimator in OMITTED_REFERENCE else []) + list(leads))
    ax.set_xticklabels([(e.label or "").split("=", 1)[-1] for e, _ in rows]
                       + (["-1"] if result.estimator in OMITTED_REFERENCE else []) + [f"{k:g}" for k in leads])
    ax.set_xlabel("period relative to first treatment")
    ax.set_ylabel("effect")
    band = rows[0][0].inference
    pt = result.diagnostics.get("pre_trend") or {}
    title = f"{result.study}: event study ({int(round(rows[0][0].conf_level * 100))}% {band})"
    if pt.get("p_value") is not None:
        title += f"\npre-trend test p = {pt['p_value']:.3g}"
    ax.set_title(title, fontsize=10)
    if result.estimator in OMITTED_REFERENCE or leads:
        ax.legend(loc="best", fontsize=8)
    return _png(fig, plt)


def _test_leads(result: Result, shown: list[float]) -> dict[float, float]:
    """The pre-trend test's lead coefficients at event times the effects do not cover: imputation's effects are
    post-treatment only, and its plot named a failed pre-trend test (castle doctrine: p = 2e-7) without a lead."""
    coefficients = (result.diagnostics.get("pre_trend") or {}).get("coefficients") or {}
    leads = {k: v for k, v in ((_period(label), v) for label, v in coefficients.items())
             if k is not None and k not in shown and v is not None}
    return dict(sorted(leads.items()))


# one colour and marker per estimator of estimator: all, in the comparison's order
COMPARISON_STYLE = {"twfe": ("#7f7f7f", "s"), "callaway_santanna": ("#1f4e79", "o"), "imputation": ("#c0504d", "^"),
                    "sun_abraham": ("#4f8f3a", "D"), "synthetic_did": ("#8064a2", "v")}


def comparison_plot(result: Result) -> bytes | None:
    """estimator: all: each estimator's event-time effects and intervals, side by side (offset in x)."""
    series: dict[str, list[tuple[float, object]]] = {}
    overall: dict[str, object] = {}
    for e in result.effects:
        name, _, what = (e.label or "").partition("/")
        k = _period(what) if what.startswith("event_time=") else None
        if what == "att":
            overall[name] = e
        elif k is not None:
            series.setdefault(name, []).append((k, e))
    if not series:
        return None
    plt = _figure()
    fig, ax = plt.subplots(figsize=(8.0, 4.6), dpi=110)
    width = 0.6 / max(len(series), 1)
    for i, (name, rows) in enumerate(series.items()):
        colour, marker = COMPARISON_STYLE.get(name, ("black", "o"))
        shift = (i - (len(series) - 1) / 2) * width
        xs = [k + shift for k, _ in rows]
        ys = [e.value for _, e in rows]
        lo = [e.value - e.ci_lower if e.ci_lower is not None else 0.0 for _, e in rows]
        hi = [e.ci_upper - e.value if e.ci_upper is not None else 0.0 for _, e in rows]
        label = comparison_label(result, name, overall.get(name), [k for k, _ in rows])
        ax.errorbar(xs, ys, yerr=[lo, hi], fmt=marker, color=colour, capsize=2, markersize=4, label=label)
    ax.axhline(0, color="black", linewidth=0.8)
    ax.axvline(-0.5, color="grey", linestyle="--", linewidth=1)
    ticks = sorted({k for rows in series.values() for k, _ in rows})
    ax.set_xticks(ticks)
    ax.set_xticklabels([f"{k:g}" for k in ticks])
    ax.set_xlabel("period relative to first treatment (twfe: end points binned)")
    ax.set_ylabel("effect")
    conf = int(round(next(iter(series.values()))[0][1].conf_level * 100))
    headline = (result.diagnostics.get("comparison") or {}).get("headline")
    ax.set_title(f"{result.study}: event studies side by side ({conf}% intervals; headline {headline})", fontsize=10)
    ax.legend(loc="best", fontsize=8)
    return _png(fig, plt)


def comparison_label(result: Result, name: str, att: object, periods: list[float]) -> str:
    """An estimator's legend entry: its overall effect, and for Callaway-Sant'Anna with the varying base period
    that its pre-periods are one-period changes, not levels against -1 as the others' (castle doctrine: its -1
    stood beside the others' omitted reference, and its pre-periods read as a different pre-trend)."""
    label = name if att is None else f"{name} (overall {getattr(att, 'value'):.3g})"
    cs = result.diagnostics.get("callaway_santanna") or {}
    if name == "callaway_santanna" and cs.get("base_period") == "varying" and any(k < 0 for k in periods):
        label += ";\npre-periods: one-period changes (base_period: universal gives levels)"
    return label


def honest_did_plot(result: Result) -> bytes | None:
    """Relative-magnitude confidence sets against Mbar (as HonestDiD's createSensitivityPlot_relativeMagnitudes)."""
    hd = (result.diagnostics.get("sensitivity") or {}).get("honest_did") or {}
    sets = [s for s in hd.get("sets", []) if s.get("lb") is not None]
    if not sets:
        return None
    plt = _figure()
    fig, ax = plt.subplots(figsize=(7.0, 4.2), dpi=110)
    ms = [s["mbar"] for s in sets]
    gap = min((b - a for a, b in zip(ms, ms[1:])), default=0.25)
    z = 1.959963984540054 if abs(hd.get("alpha", 0.05) - 0.05) < 1e-9 else None
    if z is not None:
        est, se = hd["estimate"], hd["std_error"]
        ax.errorbar([ms[0] - gap], [est], yerr=[[z * se], [z * se]], fmt="o", color="#c0504d", capsize=3,
                    label="conventional")
    mid = [(s["lb"] + s["ub"]) / 2 for s in sets]
    ax.errorbar(ms, mid, yerr=[[m - s["lb"] for m, s in zip(mid, sets)], [s["ub"] - m for m, s in zip(mid, sets)]],
                fmt="none", color="#1f4e79", capsize=3, label="C-LF robust set")
    ax.axhline(0, color="black", linewidth=0.8)
    bd = hd.get("breakdown_mbar")
    if bd:
        ax.axvline(bd, color="grey", linestyle="--", linewidth=1, label=f"breakdown Mbar = {bd:.3g}")
    ax.set_xlabel("Mbar (post-treatment trend changes relative to the largest pre-treatment one)")
    ax.set_ylabel(hd.get("target", "effect"))
    ax.set_title(f"{result.study}: honest DiD, relative magnitudes ({int(round((1 - hd.get('alpha', 0.05)) * 100))}%)",
                 fontsize=10)
    ax.legend(loc="best", fontsize=8)
    return _png(fig, plt)


PLOTS: dict[str, Callable[[Result], bytes | None]] = {"event_study": event_study_plot, "honest_did": honest_did_plot,
                                                     "segments": segment_effects}
