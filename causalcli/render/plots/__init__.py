"""Plots drawn from a Result alone (``--plots DIR``; the HTML report embeds the same).

Each design family has a module here, ``causalcli.render.plots.<design>``, exposing
``PLOTS: dict[name, function(Result) -> PNG bytes or None]``.
"""

from __future__ import annotations

import importlib
import importlib.util
import io
from pathlib import Path
from typing import Callable

from causalcli.atomic import write_atomic
from causalcli.result import Result

MODULES = {"synthetic_control": "synth"}  # design name -> module name where they differ


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


def arm_histogram(result: Result, hist: dict | None, xlabel: str) -> bytes | None:
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


def plots_for(design: str) -> dict[str, Callable[[Result], bytes | None]]:
    module = f"causalcli.render.plots.{MODULES.get(design, design)}"
    if importlib.util.find_spec(module) is None:
        return {}
    return importlib.import_module(module).PLOTS


def draw(result: Result) -> dict[str, bytes]:
    """Every plot of the result's design that has something to draw."""
    out = {}
    for name, fn in plots_for(result.design).items():
        data = fn(result)
        if data:
            out[name] = data
    return out


def write_plots(result: Result, directory: str | Path) -> list[Path]:
    written = []
    for name, data in draw(result).items():
        path = Path(directory) / f"{result.study}-{name}.png"
        write_atomic(path, data)
        written.append(path)
    return written
