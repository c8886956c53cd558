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
