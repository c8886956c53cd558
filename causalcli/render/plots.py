"""Plots drawn from a Result alone (``--plots DIR``; the HTML report embeds the same).

Each design family lists its plots in its folder (``causalcli/designs/<family>/plots.py``,
``PLOTS: dict[name, function(Result) -> PNG bytes or None]``), found through the registry.
"""

from __future__ import annotations

from pathlib import Path
from typing import Callable, TYPE_CHECKING

from causalcli.designs import families
from causalcli.runtime.atomic import write_atomic

if TYPE_CHECKING:  # pragma: no cover
    from causalcli.result import Result


def plots_for(design: str) -> dict[str, Callable[[Result], bytes | None]]:
    family = families().get(design)
    return family.plot_functions() if family is not None else {}


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
