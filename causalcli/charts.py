"""Drawing helpers shared by the plots of every design family (matplotlib, imported on use).

``love_plot`` and ``propensity_histogram`` read ``diagnostics.balance`` and
``diagnostics.overlap.histogram``, which matching and weighting fill in the same shape; ``segment_effects``
the effects labelled ``column=value`` of the columns ``diagnostics.heterogeneity`` tests (dml, weighting, iv,
matching, did).
"""

from __future__ import annotations

import io
from typing import TYPE_CHECKING

if TYPE_CHECKING:  # pragma: no cover
    from causalcli.result import Result


def figure():
    """pyplot with the non-interactive backend and a style readable in print and on dark screens."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    plt.rcParams.update({"figure.facecolor": "white", "axes.facecolor": "white", "axes.grid": True,
                         "grid.alpha": 0.3, "font.size": 10, "svg.hashsalt": "causalcli"})
    return plt


def png(fig, plt) -> bytes:
    """PNG bytes of a figure, without a timestamp so reruns are identical."""
    buf = io.BytesIO()
    fig.tight_layout()
    fig.savefig(buf, format="png", metadata={"Software": None})
    plt.close(fig)
    return buf.getvalue()


def arm_histogram(result: "Result", hist: dict | None, xlabel: str) -> bytes | None:
    """Propensity scores by arm, as shares of each arm, from a ``{edges, treated, control}`` histogram."""
    if not hist:
        return None
    plt = figure()
    edges = hist["edges"]
    widths = [b - a for a, b in zip(edges[:-1], edges[1:])]
    fig, ax = plt.subplots(figsize=(6.4, 4), dpi=110)
    tot_t = max(sum(hist["treated"]), 1)
    tot_c = max(sum(hist["control"]), 1)
    ax.bar(edges[:-1], [c / tot_t for c in hist["treated"]], width=widths, align="edge", alpha=0.6,
           color="#1f4e79", label="treated")
    ax.bar(edges[:-1], [c / tot_c for c in hist["control"]], width=widths, align="edge", alpha=0.5,
           color="#c0504d", label="control")
    ax.set_xlabel(xlabel)
    ax.set_ylabel("share of arm")
    ax.set_title(f"{result.study}: propensity score by arm")
    ax.legend()
    return png(fig, plt)


def love_plot(result: "Result") -> bytes | None:
    balance = result.diagnostics.get("balance")
    if not balance:
        return None
    plt = figure()
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
    ax.set_xlabel("|standardised mean difference| (before: open, after: filled)")
    ax.set_title(f"{result.study}: covariate balance")
    ax.legend(loc="lower right")
    return png(fig, plt)


def propensity_histogram(result: "Result") -> bytes | None:
    return arm_histogram(result, (result.diagnostics.get("overlap") or {}).get("histogram"), "propensity score")


def segment_effects(result: "Result") -> bytes | None:
    """Each segment's effect and interval beside the headline's (its interval shaded): the effects labelled
    ``column=value`` for the columns ``diagnostics.heterogeneity`` tests, so a did's event-time effects are left
    out; the title names the observation weights when the study used them."""
    rows = segment_rows(result)
    if not rows:
        return None
    plt = figure()
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
    ax.set_title(segment_title(result))
    ax.legend(loc="best", fontsize=8)
    return png(fig, plt)


def segment_rows(result: "Result") -> list:
    """The effects with an interval labelled ``column=value`` for a column ``diagnostics.heterogeneity`` tests."""
    tests = result.diagnostics.get("heterogeneity")
    columns = [t["segment"] for t in tests if isinstance(t, dict) and "segment" in t] if isinstance(tests, list) else []
    return [e for e in result.effects if e.ci_lower is not None
            and any((e.label or "").startswith(f"{c}=") for c in columns)]


def segment_title(result: "Result") -> str:
    weights = result.diagnostics.get("weights")  # synthetic control's (donor weights) has no column
    weighted = (f", weighted by {weights['column']}" if isinstance(weights, dict)
                and isinstance(weights.get("column"), str) and "note" in weights else "")
    return f"{result.study}: effects by segment{weighted}"
