"""Synthetic control plots label their axes with the spec's names (design.time, outcome), dates as dates,
read from the matplotlib figures themselves (not from images)."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from causalcli.study.run import run_study


@pytest.fixture
def figures(monkeypatch) -> list:
    """Every figure the synthetic control plots draw, kept open instead of saved."""
    from causalcli.designs.synthetic_control import plots

    drawn: list = []

    def keep(fig, plt) -> bytes:
        drawn.append(fig)
        return b"png"

    monkeypatch.setattr(plots, "_png", keep)
    yield drawn
    import matplotlib.pyplot as plt

    for fig in drawn:
        plt.close(fig)


def _panel(tmp_path, dates: bool) -> str:
    rng = np.random.default_rng(3)
    periods = pd.date_range("2020-01-01", periods=14, freq="MS") if dates else np.arange(2001, 2015)
    common = np.cumsum(rng.normal(0, 1, len(periods)))
    rows = []
    for k, store in enumerate(["north", "south", "east", "west", "centre", "coast"]):
        level = 10 + 2 * k
        for t, period in enumerate(periods):
            value = level + common[t] + rng.normal(0, 0.3) + (3.0 if store == "north" and t >= 10 else 0.0)
            rows.append({"store": store, "month": period.date().isoformat() if dates else int(period),
                         "sales": value})
    path = tmp_path / "stores.csv"
    pd.DataFrame(rows).to_csv(path, index=False)
    return str(path)


def _spec(path: str, start, **design) -> dict:
    return {"version": 1, "name": "stores", "data": {"path": path}, "outcome": "sales",
            "design": {"method": "synthetic_control", "unit": "store", "time": "month",
                       "treated_unit": "north", "treatment_start": start, **design},
            "refute": [], "seed": 0}


def _labels(fig) -> tuple[str, str]:
    ax = fig.axes[0]
    return ax.get_xlabel(), ax.get_ylabel()


def test_synthetic_control_plots_name_the_time_and_outcome_columns(tmp_path, figures):
    from causalcli.render.plots import draw

    draw(run_study(_spec(_panel(tmp_path, dates=False), 2011,
                         special_predictors=[["sales", 2003], ["sales", 2007], ["sales", 2010]]), jobs=1))
    assert [_labels(f) for f in figures] == [("month", "sales"), ("month", "gap in sales (treated - synthetic)")]


def test_a_date_time_column_reads_as_dates_along_the_axis(tmp_path, figures):
    import matplotlib.dates as mdates

    from causalcli.render.plots import draw

    result = run_study(_spec(_panel(tmp_path, dates=True), "2020-11-01", special_predictors=[
        ["sales", "2020-02-01"], ["sales", "2020-06-01"], ["sales", "2020-10-01"]]), jobs=1)
    draw(result)
    assert len(figures) == 2
    for fig in figures:
        ax = fig.axes[0]
        assert ax.get_xlabel() == "month"
        assert isinstance(ax.xaxis.get_major_formatter(), (mdates.AutoDateFormatter, mdates.ConciseDateFormatter))
        low, high = (mdates.num2date(x).date().isoformat() for x in ax.get_xlim())
        assert low <= "2020-01-01" and high >= "2021-02-01"  # the data's first and last days, with margins


def test_synthetic_did_plot_names_the_columns(tmp_path, figures):
    from causalcli.render.plots import draw

    draw(run_study(_spec(_panel(tmp_path, dates=False), 2011, estimator="synthetic_did",
                         options={"se": "placebo", "replications": 20}), jobs=1))
    assert [_labels(f) for f in figures] == [("month", "sales")]
