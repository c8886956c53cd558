"""Time-series plots: CausalImpact's three panels (observed against the counterfactual with its band; the
pointwise effect; the cumulative effect), from ``diagnostics.path``."""

from __future__ import annotations

from typing import TYPE_CHECKING, Callable

from causalcli.charts import figure as _figure, png as _png

if TYPE_CHECKING:  # pragma: no cover
    from causalcli.result import Result


def _axis(values: list) -> list:
    """ISO dates as datetime64 days; numbers, and integer periods (labelled as text: "169"), as numbers."""
    if values and isinstance(values[0], str) and not _numeric(values[0]):
        import numpy as np

        return list(np.array(values, dtype="datetime64[D]"))
    return [float(v) for v in values]


def _numeric(text: str) -> bool:
    # "169" would otherwise be read as the year 169, and matplotlib's margins fall before year 1
    try:
        float(text)
    except ValueError:
        return False
    return True


def _band(ax, times: list, lower: list, upper: list, color: str) -> None:
    import numpy as np

    lo = np.array([np.nan if v is None else v for v in lower], dtype=float)
    hi = np.array([np.nan if v is None else v for v in upper], dtype=float)
    ax.fill_between(times, lo, hi, color=color, alpha=0.25, linewidth=0)


def impact_plot(result: "Result") -> bytes | None:
    import numpy as np

    path = result.diagnostics.get("path")
    if not path:
        return None
    plt = _figure()
    fig, axes = plt.subplots(3, 1, figsize=(7.2, 7.6), dpi=110, sharex=True)
    times = _axis(path["time"])
    start = _axis([path["intervention"]])[0]
    level = round(100 * result.estimate.conf_level)

    def values(key: str) -> "np.ndarray":
        return np.array([np.nan if v is None else v for v in path[key]], dtype=float)

    top, middle, bottom = axes
    top.plot(times, values("observed"), color="black", linewidth=1.2, label="observed")
    top.plot(times, values("counterfactual"), color="#1f77b4", linestyle="--", linewidth=1.2, label="counterfactual")
    _band(top, times, path["lower"], path["upper"], "#1f77b4")
    series = result.diagnostics.get("series") or {}
    top.set_ylabel(series.get("outcome") or "outcome")
    top.legend(loc="best", fontsize=8)
    for ax, key, name in ((middle, "pointwise", "pointwise effect"), (bottom, "cumulative", "cumulative effect")):
        ax.plot(times, values(key), color="#1f77b4", linestyle="--", linewidth=1.2)
        _band(ax, times, path[f"{key}_lower"], path[f"{key}_upper"], "#1f77b4")
        ax.axhline(0, color="grey", linewidth=0.8)
        ax.set_ylabel(name)
    for ax in axes:
        ax.axvline(start, color="grey", linestyle=":", linewidth=1)
    bottom.set_xlabel(f"{series.get('time') or 'period'}; bands: {level}% intervals")
    top.set_title(f"{result.study}: {result.estimator} counterfactual", fontsize=10)
    if not isinstance(start, float):
        fig.autofmt_xdate()
    return _png(fig, plt)


PLOTS: dict[str, Callable[["Result"], bytes | None]] = {"impact": impact_plot}
