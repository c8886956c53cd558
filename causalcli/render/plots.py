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


def draw(result: Result, failed: dict[str, Exception] | None = None) -> dict[str, bytes]:
    """Every plot of the result's design that has something to draw. With ``failed``, a plot that raises
    is put there and the others are still drawn; without it, the exception propagates."""
    out = {}
    for name, fn in plots_for(result.design).items():
        try:
            data = fn(result)
        except Exception as exc:  # noqa: BLE001 (one plot's failure costs the others nothing)
            if failed is None:
                raise
            failed[name] = exc
            continue
        if data:
            out[name] = data
    return out


def plot_path(result: Result, directory: str | Path, name: str, label: str | None = None) -> Path:
    """``<study>-<plot>.png``; ``label`` the study's name among others of the same (``render.items.output_names``)."""
    return Path(directory) / f"{label or result.study}-{name}.png"


def write_plots(result: Result, directory: str | Path, failed: dict[str, Exception] | None = None,
                label: str | None = None) -> list[Path]:
    """Each plot written atomically on its own; with ``failed``, a plot that cannot be drawn or written is
    put there (by name) and the others are still written."""
    written = []
    for name, data in draw(result, failed).items():
        path = plot_path(result, directory, name, label)
        try:
            write_atomic(path, data, "--plots")
        except Exception as exc:  # noqa: BLE001
            if failed is None:
                raise
            failed[name] = exc
            continue
        written.append(path)
    return written
