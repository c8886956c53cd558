"""A refuter whose simulations mostly fail is not judged (``checks.refutation.FAILED_SIMULATIONS``).

Castle doctrine (causaldata ``castle``, callaway_santanna with covariates): an added random covariate put the
one treated state of a one-state cohort on the edge of its controls' covariate cloud, the propensity logit
had no maximum, and 3 of 5 refits failed; random_common_cause passed on the 2 that survived."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from causalcli.checks.refutation import FAILED_SIMULATIONS, settled, summarise
from causalcli.records import Estimate
from causalcli.study.run import run_study
from tests.conftest import invoke

ROOT = Path(__file__).resolve().parents[1]
EST = Estimate(value=1.0, std_error=0.2, ci_lower=0.6, ci_upper=1.4, conf_level=0.95, p_value=0.001,
               inference="analytic")
NAN = float("nan")


@pytest.mark.parametrize("name", ["random_common_cause", "data_subset", "placebo_treatment"])
def test_more_failed_than_estimated_is_not_judged(name):
    r = summarise(name, np.array([1.01, 0.99, NAN, NAN, NAN]), EST, 0.05)
    assert r.passed is None and r.p_value is None and r.simulations == 5
    assert r.detail.startswith("not judged: only 2 of 5 simulations could be estimated, fewer than the 3 that failed")
    assert r.new_effect == pytest.approx(1.0)


def test_a_minority_of_failures_is_judged_as_before():
    r = summarise("random_common_cause", np.array([1.01, 0.99, 1.0, NAN, NAN]), EST, 0.05)
    assert r.passed is True and "(2 of 5 simulations could not be estimated and were left out)" in r.detail


def test_rounds_go_on_while_a_majority_of_failures_may_be_chance():
    # 3 of 5 failed: the Clopper-Pearson interval of their share reaches well below 1/2, so run another round
    assert not settled("random_common_cause", np.array([1.0, 1.0, NAN, NAN, NAN]), EST, 0.05)
    # 6 of 6: P(X >= 6 | 1/2) = 1/64 < 0.025, surely a majority: settled (not judged) without running 100
    assert settled("random_common_cause", np.full(6, NAN), EST, 0.05)
    assert not settled("random_common_cause", np.full(5, NAN), EST, 0.05)


def _one_unit_cohort(tmp_path) -> dict:
    """Twenty units over 2000-2009: one adopting in 2008 whose two covariates sit at the centre of the
    others' every year (the main fit's logit exists), eight in 2006, eleven never treated."""
    rng = np.random.default_rng(3)
    rows = []
    for unit in range(20):
        cohort = 2008 if unit == 0 else 2006 if unit <= 8 else 0
        level = rng.normal()
        for year in range(2000, 2010):
            x1, x2 = 0.05 * rng.normal(size=2) if unit == 0 else rng.normal(size=2)
            y = (level + 0.1 * (year - 2000) + 0.5 * x1 - 0.3 * x2 + (1.0 if cohort and year >= cohort else 0.0)
                 + rng.normal(0, 0.3))
            rows.append({"unit": unit, "year": year, "cohort": cohort, "x1": x1, "x2": x2, "y": y})
    path = tmp_path / "panel.csv"
    pd.DataFrame(rows).to_csv(path, index=False)
    return {"version": 1, "data": {"path": str(path)}, "outcome": "y", "covariates": ["x1", "x2"],
            "design": {"method": "did", "unit": "unit", "time": "year", "cohort": "cohort",
                       "estimator": "callaway_santanna", "options": {"honest_did": False}},
            "refute": [{"random_common_cause": {"simulations": 30}}], "seed": 0}


def test_random_covariates_that_separate_a_one_unit_cohort_leave_the_refuter_unjudged(tmp_path):
    result = run_study(_one_unit_cohort(tmp_path), jobs=1)
    assert np.isfinite(result.estimate.value)  # the main fit stands
    (r,) = result.refutations
    assert r.passed is None and r.detail.startswith("not judged: only ")
    estimated, total = (int(k) for k in r.detail.split("only ", 1)[1].split(" simulations", 1)[0].split(" of "))
    assert 2 * estimated < total == r.simulations
    assert "the propensity-score logit is singular in a group-time comparison" in r.detail
    assert "1 units in the cohort" in r.detail  # the one-unit cohort


def test_methods_and_the_readme_state_the_rule(runner):
    assert f"failed simulations: {FAILED_SIMULATIONS}" in invoke(runner, ["methods"]).stdout
    assert json.loads(invoke(runner, ["methods", "--format", "json"]).stdout)["refutation_failures"] \
        == FAILED_SIMULATIONS
    assert FAILED_SIMULATIONS in " ".join((ROOT / "README.md").read_text().split())


# A one-unit cohort's comparison in a random_common_cause refit (simulated panel): the treated unit holds the
# largest value, the logit has no maximum, and Newton's steps overflowed to NaN before any solve() failed.
SEPARATED = np.array([
    -0.09236623994870548, 0.8972492567277476, 0.8219243366604353, 0.7035450933309114,
    0.5423442548146441, 0.756637954017235, -0.16450126423277087, -1.5244781602909778,
    0.698059671998619, 0.5725562476093207, -0.5634006961428569, 0.29392155247372515,
    3.623567688368005, 2.6385967525787044, -0.636046779726964, -1.499989013056637,
    -0.042839224997523975, 2.163096688484254, 0.4503996611125889, -1.5481276661378405,
    -0.32290531215810686, -0.9083507282671915, -0.2564095749886225, 0.11071109639467032])


def test_a_separated_logit_is_singular_without_warnings():
    from causalcli.designs.did.callaway_santanna import _logit

    D = (SEPARATED == SEPARATED.max()).astype(float)
    with pytest.raises(np.linalg.LinAlgError):  # numpy's RuntimeWarning on NaN would be an error here
        _logit(np.column_stack([np.ones(SEPARATED.size), SEPARATED]), D, np.ones(SEPARATED.size))
