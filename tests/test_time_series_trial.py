"""Fixes from a new user's trial of method: time_series (causaldata's google_stock, statsmodels' co2): the
relative effect when the counterfactual is near 0, the repeated-period message, and what init says of gaps
and seasonality in a weekly series."""

from __future__ import annotations

import datetime as dt

import numpy as np
import pandas as pd
import pytest

import causalcli

START = dt.date(2024, 1, 1)


def _series(level: float, seed: int = 3, T: int = 200, start: int = 160) -> pd.DataFrame:
    """y = level + 0.8 c0 + noise, c0 a mean-0 control: a return-like series when level is 0."""
    rng = np.random.default_rng(seed)
    c0 = rng.normal(size=T)
    y = level + 0.8 * c0 + rng.normal(size=T)
    return pd.DataFrame({"date": [START + dt.timedelta(days=i) for i in range(T)], "y": y, "c0": c0})


def _spec(estimator: str) -> dict:
    return {"version": 1, "name": "ts", "outcome": "y",
            "design": {"method": "time_series", "time": "date", "controls": ["c0"], "estimator": estimator,
                       "intervention": str(START + dt.timedelta(days=160))}}


def _relative(r):
    (rel,) = [e for e in r.effects if e.label == "relative/average"]
    return rel


@pytest.mark.parametrize("estimator", ["structural", "segmented"])
def test_relative_effect_has_no_interval_when_the_counterfactual_mean_may_be_zero(estimator):
    """google_stock's returns: average effect p 0.985 but relative/average p 0.134 and SE 21, a ratio over a
    counterfactual mean whose sign is unknown. Now its p-value tests the same null as the average effect's,
    and with the denominator's interval across 0 its SE and interval are null, with a warning naming it."""
    r = causalcli.estimate(_spec(estimator), data=_series(0.0), refute=False)
    rel = _relative(r)
    assert rel.std_error is None and rel.ci_lower is None and rel.ci_upper is None
    assert rel.p_value == r.estimate.p_value
    assert r.diagnostics["relative_effect"]["ci_lower"] is None
    (warning,) = [w for w in r.warnings if w.startswith("relative/average")]
    assert "interval [" in warning and "includes 0" in warning and "average effect" in warning


@pytest.mark.parametrize("estimator", ["structural", "segmented"])
def test_relative_effect_is_unchanged_far_from_zero(estimator):
    """The same series 50 above 0: the relative interval is reported as before (segmented: the average
    effect's interval over the mean counterfactual; structural: quantiles of the simulated ratio), with the
    average effect's p-value, and no warning."""
    r = causalcli.estimate(_spec(estimator), data=_series(50.0), refute=False)
    rel = _relative(r)
    assert rel.p_value == r.estimate.p_value
    assert not [w for w in r.warnings if w.startswith("relative/average")]
    assert rel.ci_lower < rel.value < rel.ci_upper and rel.std_error > 0
    if estimator == "segmented":
        base = r.estimate.value / rel.value
        assert 49 < base < 51
        assert rel.ci_lower == pytest.approx(r.estimate.ci_lower / base, rel=1e-12)
        assert rel.ci_upper == pytest.approx(r.estimate.ci_upper / base, rel=1e-12)


# ---------------------------------------------------------------- a repeated period


def _yearly(extra: dict, repeat: int, seed: int = 0) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    years = np.arange(1980, 2010)
    n = years.size * repeat
    return pd.DataFrame({"year": np.repeat(years, repeat), **extra, "y": 10 + rng.normal(size=n),
                         "x": rng.normal(size=n)})


def _yearly_spec(**design) -> dict:
    return {"version": 1, "name": "ts", "outcome": "y",
            "design": {"method": "time_series", "time": "year", "intervention": 2000, **design}}


def test_repeated_year_of_two_units_names_the_unit_column_not_aggregate():
    """Annual data with two rows a year, one per state: the error said 'set design.aggregate', which would add
    the states up. It now names the column that tells the rows apart and the panel keys or a filter, and the
    filter it shows gives a series that estimates."""
    from causalcli.errors import DataError

    frame = _yearly({"state": ["CA", "TX"] * 30}, 2)
    with pytest.raises(DataError) as err:
        causalcli.estimate(_yearly_spec(), data=frame, refute=False)
    message = str(err.value)
    assert "2 rows for period 1980" in message and "column 'state' tells them apart (2 values: 'CA', 'TX')" in message
    assert "design.unit: state" in message and "design.treated_unit" in message
    assert "data.filter: \"state = 'CA'\"" in message
    spec = {**_yearly_spec(), "data": {"filter": "state = 'CA'"}}
    assert causalcli.estimate(spec, data=frame, refute=False).n["periods"] == 30
    panel = causalcli.estimate(_yearly_spec(unit="state", treated_unit="CA"), data=frame, refute=False)
    assert panel.diagnostics["series"]["controls"] == ["TX"]


def test_repeated_year_within_a_unit_and_of_events():
    """Within a panel's unit the other distinguishing column is named with a filter; rows that no column
    tells apart (events, or the 'x' measurement, unique per row) keep the design.aggregate advice."""
    from causalcli.errors import DataError

    frame = _yearly({"state": ["CA", "TX"] * 60, "sector": ["a"] * 60 + ["b"] * 60}, 4)
    frame = frame.sort_values(["year", "state"]).assign(state=["CA", "CA", "TX", "TX"] * 30,
                                                        sector=["a", "b"] * 60)
    with pytest.raises(DataError) as err:
        causalcli.estimate(_yearly_spec(unit="state", treated_unit="CA"), data=frame, refute=False)
    assert "unit 'CA' has 2 rows for period 1980" in str(err.value)
    assert "column 'sector' tells them apart" in str(err.value) and "sector = 'a'" in str(err.value)
    with pytest.raises(DataError) as err:
        causalcli.estimate(_yearly_spec(), data=_yearly({}, 2), refute=False)
    assert "set design.aggregate" in str(err.value) and "no other column tells the rows" in str(err.value)


def test_repeated_year_over_quarters_suggests_a_date(tmp_path):
    """A year column repeated over a 'quarter' column numbering 1..4: the series is quarterly; the message
    gives the data.derive that dates it, and that spec estimates."""
    import yaml

    from causalcli.errors import DataError

    frame = _yearly({"quarter": [1, 2, 3, 4] * 30}, 4)
    with pytest.raises(DataError) as err:
        causalcli.estimate(_yearly_spec(), data=frame, refute=False)
    message = str(err.value)
    assert "column 'quarter' numbers 4 quarters in each" in message and "set design.time: date" in message
    derive = message.split("data.derive (date: ")[1].split(") and set")[0]
    assert derive == "make_date(CAST(year AS INTEGER), CAST(quarter AS INTEGER) * 3 - 2, 1)"
    frame.to_csv(tmp_path / "q.csv", index=False)
    spec = {**_yearly_spec(time="date", intervention="2000-01-01"), "data": {"path": str(tmp_path / "q.csv"),
                                                                             "derive": {"date": derive}}}
    (tmp_path / "s.yaml").write_text(yaml.safe_dump(spec))
    r = causalcli.estimate(str(tmp_path / "s.yaml"), refute=False)
    assert r.diagnostics["series"]["period"] == "quarter" and r.n["periods"] == 120


# ---------------------------------------------------------------- init on a weekly series with gaps


@pytest.fixture
def runner():
    from typer.testing import CliRunner

    return CliRunner()


def test_init_notes_the_gaps_and_a_years_season_of_weekly_co2(runner, tmp_path):
    """statsmodels' co2 (weekly, 1958-2001, 59 weeks without a value): init said nothing of the gaps, which
    estimate refuses, nor of the year's season. It now notes the gaps (count, first, last) with the filter that
    starts the series after the last, proposes seasonality 52, and that spec, filtered, estimates."""
    import statsmodels.api as sm

    from tests.test_init import estimate, init, write

    sm.datasets.co2.load_pandas().data.rename_axis("date").reset_index().to_csv(tmp_path / "co2.csv", index=False)
    text, spec = init(runner, tmp_path / "co2.csv", "-y", "co2", "-d", "time_series")
    assert spec["design"]["seasonality"] == 52 and "design.seasonality: 52 (weekly dates" in text
    assert ("co2 has no value in 59 of 2,284 weeks (the first 1958-05-10, the last 1985-08-03)" in text
            and "data.filter: \"date > '1985-08-03'\" (856 weeks left)" in text)
    spec["data"]["filter"] = "date > '1985-08-03'"
    import yaml

    code, out = estimate(runner, write(tmp_path, yaml.safe_dump(spec)), "--set", "design.intervention=1998-01-03")
    assert code in (0, 1), out
    assert out["diagnostics"]["series"]["periods"] == 856 and out["diagnostics"]["series"]["seasonality"] == 52


def test_init_notes_a_date_without_a_row_and_a_control_without_values(runner, tmp_path):
    """Daily dates with one day absent and a control missing two values: both named, the cut after the later."""
    from tests.test_init import init

    rng = np.random.default_rng(5)
    days = pd.date_range("2024-01-01", periods=90).date
    frame = pd.DataFrame({"date": days, "sales": 100 + rng.normal(size=90), "market": rng.normal(size=90)})
    frame.loc[[20, 40], "market"] = np.nan
    frame = frame.drop(index=10)
    frame.to_csv(tmp_path / "daily.csv", index=False)
    text, spec = init(runner, tmp_path / "daily.csv", "-y", "sales", "-d", "time_series")
    assert "date has no row for 2024-01-11" in text
    assert "market has no value in 2 of 89 days (the first 2024-01-21, the last 2024-02-10)" in text
    assert "data.filter: \"date > '2024-02-10'\" (49 days left)" in text
    assert spec["design"]["seasonality"] == 7
