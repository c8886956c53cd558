"""Weighting with observation (sampling) weights against R: glm(quasibinomial, weights = s) and survey::svyglm.

Source: ``weighting_sampling_weights.R`` in this folder (R 4.2.2, survey 4.1.1: ``r_session_sampling_weights.txt``)
fits the propensity score ``glm(t ~ x1 + x2, family = quasibinomial, weights = s)`` on ``sim_sampled.csv``
(``sampled.py``: a sample drawn unequally from a population, ``s`` the inverse inclusion probability, correlated
with the outcome), the Hajek weights ``w`` of that score, and ``svyglm(y ~ t)`` on
``svydesign(ids = ~1, weights = ~s * w)`` (``ipw_sampling_weights.csv``). The tests run whole studies with
``weights: s``.
"""

from __future__ import annotations

import pandas as pd
import pytest

from causalcli.study.run import run_study
from tests.reference.weighting.studies import HERE

R_SESSION = (HERE / "r_session_sampling_weights.txt").read_text().splitlines()
SURVEY = pd.read_csv(HERE / "ipw_sampling_weights.csv")

# Same weighted logit (R to epsilon 1e-14, ours to 1e-10 on the standardised coefficients' steps) and the same
# weighted means: the estimates differ by rounding (1e-15 observed); 1e-8 leaves room for the logit's stopping rule.
POINT_RTOL = 1e-8
# svyglm's sandwich: the same sums of squared influence terms with svyglm's n / (n - 1); 1e-6 as the unweighted pin.
SE_RTOL = 1e-6
# The reported SE accounts for the estimated score: it differs from the weights-known one by tens of percents here.
DIFFERENT_SE_RTOL = 1e-2


def _spec(estimand: str) -> dict:
    return {"version": 1, "name": f"sampled-{estimand}", "data": {"path": str(HERE / "sim_sampled.csv")},
            "treatment": "t", "outcome": "y", "covariates": ["x1", "x2"], "weights": "s",
            "design": {"method": "weighting", "estimand": estimand}, "refute": []}


@pytest.mark.parametrize("row", [r for _, r in SURVEY.iterrows()],
                         ids=lambda r: f"{R_SESSION[1].replace(' ', '-')}:sim_sampled:{r['estimand']}")
def test_sampling_weighted_ipw_equals_r_survey_svyglm(row):
    """The s-weighted propensity logit equals glm(quasibinomial, weights = s); the IPW estimate and its
    weights-known SE equal svyglm's on the design weighted by s times the Hajek weights."""
    res = run_study(_spec(row["estimand"]))
    assert res.n["used"] == row["n_used"]
    coef = res.diagnostics["propensity_model"]["coefficients"]
    assert [coef["(intercept)"], coef["x1"], coef["x2"]] == pytest.approx(
        [row["propensity_intercept"], row["propensity_x1"], row["propensity_x2"]], rel=POINT_RTOL)
    assert res.estimate.value == pytest.approx(row["estimate"], rel=POINT_RTOL)
    assert res.diagnostics["weighting"]["std_error_weights_known"] == pytest.approx(row["se"], rel=SE_RTOL)
    assert res.estimate.inference == "influence_function"
    assert res.estimate.std_error != pytest.approx(row["se"], rel=DIFFERENT_SE_RTOL)
    assert res.diagnostics["weights"]["column"] == "s"


MATCHIT = pd.read_csv(HERE / "balance_sampling_weights.csv")
# As the unweighted pins (test_r_survey_matchit.py): the same weighted sums, rounding of the propensity fit only.
BALANCE_ATOL = 1e-8
MEAN_RTOL = 1e-9
VARIANCE_RATIO_RTOL = 1e-8


@pytest.mark.parametrize("estimand", sorted(set(MATCHIT.estimand)),
                         ids=lambda e: f"MatchIt-{R_SESSION[2].split()[1]}:sim_sampled:{e}")
def test_sampling_weighted_balance_table_equals_matchit_with_s_weights(estimand):
    """Before weighting the arms are weighted by s (MatchIt's s.weights, also in the SMD's denominator), after by
    s times the Hajek weights: means, SMDs and variance ratios equal MatchIt::summary's."""
    res = run_study(_spec(estimand))
    ours = {r["covariate"]: r for r in res.diagnostics["balance"]}
    sub = MATCHIT[MATCHIT.estimand == estimand]
    assert set(sub.covariate) == set(ours)
    for r in sub.itertuples():
        o, when = ours[r.covariate], "before" if r.part == "all" else "after"
        assert o[f"smd_{when}"] == pytest.approx(r.smd, abs=BALANCE_ATOL), (r.covariate, when)
        assert o[f"mean_treated_{when}"] == pytest.approx(r.mean_treated, rel=MEAN_RTOL)
        assert o[f"mean_control_{when}"] == pytest.approx(r.mean_control, rel=MEAN_RTOL)
        assert o[f"variance_ratio_{when}"] == pytest.approx(r.variance_ratio, rel=VARIANCE_RATIO_RTOL)
