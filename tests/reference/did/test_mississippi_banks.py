"""Few clusters on Mastering 'Metrics' Mississippi banks (Angrist and Pischke 2014, Table 5.1; Richardson and
Troost 2009): two Federal Reserve districts, so no standard error, p-value or interval can be had, and each null
says why.

Source: ``mississippi_banks_1930_1931.csv`` (the book's Table 5.1) and ``mississippi_banks_1929_1934.csv`` (the
book's ``banks.csv``, July 1 rows). The textbook's difference in differences is 19 (1930-1931) and the yearly TWFE
20.5, both computed by hand in the tests. See README.md.
"""

from __future__ import annotations

import pandas as pd
import pytest

from tests.conftest import run_json
from tests.reference.did.sources import BANKS, BANKS_YEARLY, no_runtime_warnings


def test_textbook_2x2_two_units_two_years_gives_19_and_no_inference(runner, tmp_path, write_spec):
    """Mastering 'Metrics Table 5.1: 6th district 135 -> 121, 8th 165 -> 132 banks; DD = (121-135)-(132-165) = 19.
    n = k = 4 and 2 clusters: used to be ZeroDivisionError (exit 4); now 19 with null SE, p and interval."""
    spec = {"version": 1, "data": {"path": str(BANKS)}, "outcome": "banks", "treatment": "atlanta_fed",
            "design": {"method": "did", "unit": "district", "time": "year", "estimator": "2x2"}}
    code, payload, res = run_json(runner, [str(write_spec(spec))])
    est = payload["estimate"]
    assert est["value"] == pytest.approx(19.0, abs=1e-9)
    assert est["std_error"] is None and est["p_value"] is None and est["ci_lower"] is None
    assert est["ci_upper"] is None and est["inference"] == "none"
    assert any("no standard error, p-value or interval: 2 clusters" in w for w in payload["warnings"])
    assert any(w.startswith("one treated cluster (6)") for w in payload["warnings"])
    clusters = {c["name"]: c for c in payload["checks"]}["clusters"]
    assert clusters["passed"] is False and "no inference is possible" in clusters["detail"]
    assert payload["diagnostics"]["clusters"]["n_clusters"] == 2
    assert payload["diagnostics"]["clusters"]["crv1_se"] is None
    # the z-refuters are not run on a missing SE; nothing prints a shift in standard errors
    for r in payload["refutations"]:
        if r["name"] != "placebo_treatment":
            assert r["passed"] is None and "standard error" in r["detail"] and "shift" not in r["detail"]
    assert code == 1  # the clusters check fails: CI must not take this estimate as established
    assert "RuntimeWarning" not in res.stderr and "internal error" not in res.stderr


@pytest.mark.parametrize("design", [{"estimator": "2x2"}, {"estimator": "twfe"},
                                    {"estimator": "twfe", "event_study": {"leads": 2, "lags": 3}},
                                    {"estimator": "callaway_santanna"}])
def test_mississippi_banks_1929_1934_every_null_has_its_reason(tmp_path, design):
    """Banks in business on July 1, 1929-1934, two districts (the book's data): TWFE gave 20.5 with SE 4e-15,
    F = 3e28 and refuter shifts of -5.6e13 SE; now SE, p, CI null with the reason, pre-trend / honest-DiD /
    z-refuters not run, no RuntimeWarning."""
    df = pd.read_csv(BANKS_YEARLY)
    spec = {"version": 1, "data": {"path": str(BANKS_YEARLY)}, "outcome": "banks", "treatment": "atlanta_fed",
            "design": {"method": "did", "unit": "district", "time": "year", **design},
            "refute": [{"random_common_cause": {"simulations": 20}}, {"data_subset": {"simulations": 20}}]}
    res = no_runtime_warnings(spec)
    # 2x2 and TWFE: mean gap after 1930 minus mean gap before (-8.5 - (-29) = 20.5), computed independently
    gap = df[df.district == 6].banks.to_numpy() - df[df.district == 8].banks.to_numpy()
    if "event_study" not in design and design["estimator"] != "callaway_santanna":
        assert res.estimate.value == pytest.approx(gap[2:].mean() - gap[:2].mean(), abs=1e-9)
        assert res.estimate.value == pytest.approx(20.5, abs=1e-9)
    assert 15 < res.estimate.value < 25
    e = res.estimate
    assert (e.std_error, e.p_value, e.ci_lower, e.ci_upper, e.inference) == (None, None, None, None, "none")
    assert any(("2 clusters" in w or "2 units" in w) and "no standard error" in w for w in res.warnings)
    checks = {c.name: c for c in res.checks}
    assert checks["clusters"].passed is False
    assert checks["pre_trend"].passed is None and "F =" not in checks["pre_trend"].detail
    for r in res.refutations:
        assert r.passed is None and r.p_value is None and "shift" not in r.detail
    honest = res.diagnostics.get("sensitivity", {}).get("honest_did")
    assert honest is None or "skipped" in honest
    for eff in res.effects:
        assert eff.p_value is None and eff.ci_lower is None
