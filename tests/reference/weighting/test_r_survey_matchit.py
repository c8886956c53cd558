"""Weighting against R: survey::svyglm (the IPW estimate and its weights-known SE) and MatchIt::summary (balance).

Source: ``weighting_survey.R`` in this folder (R, survey and MatchIt versions in
``r_session.txt``: R 4.2.2, survey 4.1.1, MatchIt 4.5.1; how to regenerate in README.md)
fits the glm propensity score, the Hajek weights and ``svyglm(y ~ treat)`` on
``svydesign(ids = ~1, weights = ~w)`` (``ipw_survey.csv``), and writes MatchIt's
``summary()`` of the same weights (``balance_matchit.csv``). Data: the NSW experimental
sample and ``sim_region.csv``; trims of 0 and one that drops units; ATE, ATT, ATC and
overlap weights. The tests run whole studies, so they check what users get.
"""

from __future__ import annotations

import math

import pandas as pd
import pytest

from causalcli.study.run import run_study
from tests.reference.weighting.studies import HERE, spec_for

R_SESSION = (HERE / "r_session.txt").read_text().splitlines()
SURVEY = pd.read_csv(HERE / "ipw_survey.csv")
MATCHIT = pd.read_csv(HERE / "balance_matchit.csv")

# Same weighted regression, same glm fit (R to epsilon 1e-14; ours to 1e-10 on
# the coefficients): the estimates differ by rounding, observed ~1e-14. 1e-6 is
# the agreement the design promises.
R_RTOL = 1e-6
# Balance: same weighted means and variances; rounding of the propensity fit only.
BALANCE_ATOL = 1e-8
# Weighted means of the covariates: the same sums, rounding of the propensity fit only.
MEAN_RTOL = 1e-9
# Variance ratios divide two such variances: the rounding of both.
VARIANCE_RATIO_RTOL = 1e-8
# The reported (influence-function) SE accounts for the estimated score: it must differ from
# svyglm's weights-known SE by more than rounding (the two differ by percents on these data).
DIFFERENT_SE_RTOL = 1e-3

SURVEY_ROWS = [r for _, r in SURVEY.iterrows()]


def _id(r) -> str:
    return f"{R_SESSION[1].replace(' ', '-')}:{r['dataset']}:{r['estimand']}:trim={r['trim']:g}"


@pytest.mark.parametrize("row", SURVEY_ROWS, ids=_id)
def test_ipw_equals_r_survey_svyglm(row):
    """Hajek IPW estimate and svyglm's (weights-known) sandwich SE equal R survey's."""
    res = run_study(spec_for(row["dataset"], row["estimand"], row["trim"]))
    assert res.n["used"] == row["n_used"]
    assert res.estimate.value == pytest.approx(row["estimate"], rel=R_RTOL)
    w = res.diagnostics["weighting"]
    assert w["std_error_weights_known"] == pytest.approx(row["se"], rel=R_RTOL)
    # the reported SE accounts for the estimated score: a different, named number
    assert res.estimate.inference == "influence_function"
    assert res.estimate.std_error != pytest.approx(row["se"], rel=DIFFERENT_SE_RTOL)


BAL_KEYS = sorted({(r.dataset, r.estimand, r.trim) for r in MATCHIT.itertuples()})


@pytest.mark.parametrize("key", BAL_KEYS,
                         ids=lambda k: f"MatchIt-{R_SESSION[2].split()[1]}:{k[0]}:{k[1]}:trim={k[2]:g}")
def test_balance_table_equals_matchit_summary(key):
    """SMD and variance ratio before and after weighting equal MatchIt::summary's on the same weights."""
    dataset, estimand, trim = key
    res = run_study(spec_for(dataset, estimand, trim))
    ours = {r["covariate"].replace("[", "").replace("]", ""): r for r in res.diagnostics["balance"]}
    sub = MATCHIT[(MATCHIT.dataset == dataset) & (MATCHIT.estimand == estimand) & (MATCHIT.trim == trim)]
    assert set(sub.covariate) == set(ours)
    for r in sub.itertuples():
        o = ours[r.covariate]
        when = "before" if r.part == "all" else "after"
        assert o[f"smd_{when}"] == pytest.approx(r.smd, abs=BALANCE_ATOL), (r.covariate, when)
        assert o[f"mean_treated_{when}"] == pytest.approx(r.mean_treated, rel=MEAN_RTOL)
        assert o[f"mean_control_{when}"] == pytest.approx(r.mean_control, rel=MEAN_RTOL)
        if math.isnan(r.variance_ratio):
            assert o[f"variance_ratio_{when}"] is None
        else:
            assert o[f"variance_ratio_{when}"] == pytest.approx(r.variance_ratio, rel=VARIANCE_RATIO_RTOL)
