"""Units treated in every period: plain TWFE keeps them (the standard regression), the others drop them and say so.

Peers: pyfixest's feols with unit and period effects and CRV1 by unit, the regression of the textbooks and of
Stata's ``reghdfe``, which keeps units whose treatment never varies.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from causalcli.study.run import run_study
from tests.conftest import invoke
from tests.test_did import COEF_TOL, SE_RTOL, simulate_panel


def _panel(always: int = 30, seed: int = 5, unbalanced: bool = False, cohorts=(4, 6)) -> pd.DataFrame:
    """simulate_panel with ``always`` of its units treated from period 1 on (cohort 1), the rest as simulated."""
    df = simulate_panel(units=200, seed=seed, cohorts=cohorts)
    first = df.unit < always
    df.loc[first, "g"] = 1
    df.loc[first, "d"] = 1
    df.loc[first, "y"] += 1.0  # their effect; absorbed by their unit effect
    if unbalanced:
        # drop 5% of the rows, never a first-period row of an always-treated unit (it would stop being one)
        rng = np.random.default_rng(seed)
        drop = (rng.uniform(size=len(df)) < 0.05) & ~(first & (df.time == 1))
        df = df[~drop]
    return df.reset_index(drop=True)


def _spec(path, estimator="twfe", covariates=(), cohort=False, **design) -> dict:
    spec = {"version": 1, "data": {"path": str(path)}, "outcome": "y", "covariates": list(covariates),
            "design": {"method": "did", "unit": "unit", "time": "time", "estimator": estimator, **design},
            "refute": []}
    if cohort:
        spec["design"]["cohort"] = "g"
    else:
        spec["treatment"] = "d"
    return spec


def _pf(formula: str, df: pd.DataFrame, cluster: str = "unit"):
    import pyfixest as pf

    return pf.feols(formula, data=df, vcov={"CRV1": cluster})


@pytest.mark.peer
@pytest.mark.parametrize("covariates,unbalanced,cohort", [((), False, False), (("x",), False, True),
                                                         (("x",), True, False)])
def test_twfe_keeps_always_treated_units_and_equals_pyfixest(tmp_path, covariates, unbalanced, cohort):
    df = _panel(unbalanced=unbalanced)
    path = tmp_path / "p.csv"
    df.to_csv(path, index=False)
    res = run_study(_spec(path, covariates=covariates, cohort=cohort))
    m = _pf("y ~ d" + "".join(f" + {c}" for c in covariates) + " | unit + time", df)
    assert res.estimate.value == pytest.approx(m.coef()["d"], abs=COEF_TOL)
    assert res.estimate.std_error == pytest.approx(m.se()["d"], rel=SE_RTOL)
    for c in covariates:
        assert res.diagnostics["coefficients"][c] == pytest.approx(m.coef()[c], abs=COEF_TOL)
    assert res.n["used"] == len(df) and res.n["units"] == 200
    assert res.n["units_always_treated_kept"] == 30 and res.n["units_treated_first_period_dropped"] == 0
    assert res.diagnostics["panel"]["always_treated_units"] == 30
    assert not any("dropped" in w for w in res.warnings)
    # dropping them, as before, is a different regression: the test can tell the two apart
    kept = df[df.unit >= 30]
    m_drop = _pf("y ~ d" + "".join(f" + {c}" for c in covariates) + " | unit + time", kept)
    assert abs(m_drop.coef()["d"] - res.estimate.value) > 1e3 * COEF_TOL


@pytest.mark.parametrize("estimator,design,reason", [
    ("2x2", {}, "the 2x2 compares treated units before and after"),
    ("callaway_santanna", {}, "no group-time effect can be formed for them"),
    ("twfe", {"event_study": {"leads": 2, "lags": 2}}, "their event time is not known"),
])
def test_estimators_that_cannot_use_always_treated_units_drop_them_with_a_warning(tmp_path, estimator, design,
                                                                                   reason):
    df = _panel(cohorts=(5,) if estimator == "2x2" else (4, 6))
    path = tmp_path / "p.csv"
    df.to_csv(path, index=False)
    res = run_study(_spec(path, estimator=estimator, cohort=True, **design))
    assert res.n["units_treated_first_period_dropped"] == 30 and res.n["units"] == 170
    assert res.n["units_always_treated_kept"] == 0
    hits = [w for w in res.warnings if "30 units treated in the first period (1)" in w]
    assert len(hits) == 1 and "dropped" in hits[0] and reason in hits[0]


def test_goodman_bacon_counts_always_treated_units_as_already_treated_controls(tmp_path):
    """Balanced, no covariates: the decomposition still rebuilds the TWFE coefficient with weights summing to
    one; the always-treated units enter only as controls of later cohorts (their treatment never varies)."""
    df = _panel()
    path = tmp_path / "p.csv"
    df.to_csv(path, index=False)
    res = run_study(_spec(path))
    gb = res.diagnostics["goodman_bacon"]
    assert gb["weight_total"] == pytest.approx(1.0, abs=1e-12)
    assert gb["twfe_from_decomposition"] == pytest.approx(res.estimate.value, abs=1e-12)
    vs_always = [r for r in gb["comparisons"] if r["control"] == "always treated"]
    assert {r["treated"] for r in vs_always} == {4.0, 6.0}
    assert all(r["type"] == "later_vs_earlier_treated" and r["weight"] > 0 for r in vs_always)
    assert not any(r["treated"] == 1.0 for r in gb["comparisons"])
    w = [w for w in res.warnings if w.startswith("staggered adoption")]
    assert len(w) == 1 and "one of them the units treated in every period" in w[0]


def test_pre_trend_leaves_always_treated_units_out_and_equals_the_event_study_without_them(tmp_path):
    df = _panel()
    path = tmp_path / "p.csv"
    df.to_csv(path, index=False)
    res = run_study(_spec(path))
    pt = res.diagnostics["pre_trend"]
    assert "the 30 units treated in every period are left out" in pt["source"]
    # the same auxiliary regression on the data without them
    (tmp_path / "q.csv").write_text(df[df.unit >= 30].to_csv(index=False))
    ref = run_study(_spec(tmp_path / "q.csv")).diagnostics["pre_trend"]
    assert pt["statistic"] == pytest.approx(ref["statistic"], rel=1e-9)
    assert pt["leads"] == ref["leads"]


def test_twfe_with_every_treated_unit_treated_in_every_period_is_exit_3(runner, tmp_path, write_spec):
    df = simulate_panel(units=60, seed=2)
    df["g"] = np.where(df.g > 0, 1, 0)
    df["d"] = (df.g > 0).astype(int)
    n_treated = int(df.loc[df.g > 0, "unit"].nunique())
    df.to_csv(tmp_path / "p.csv", index=False)
    res = invoke(runner, ["estimate", str(write_spec(_spec("p.csv")))])
    assert res.exit_code == 3
    assert (f"no unit changes treatment within the panel: the {n_treated} treated units are treated in every "
            "period from the first (1) on") in res.stderr
