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
