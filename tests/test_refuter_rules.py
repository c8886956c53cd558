"""One truth per rule: each refuter's pass rule lives in causalcli.checks.refutation.RULES; `methods`, the docs and the
summaries all say and apply that rule."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from causalcli.checks.refutation import RULES, permutation_verdict, summarise
from causalcli.result import Estimate
from causalcli.spec.models import REFUTERS
from tests.conftest import invoke

ROOT = Path(__file__).resolve().parents[1]
EST = Estimate(value=1.0, std_error=0.2, ci_lower=0.6, ci_upper=1.4, conf_level=0.95, p_value=0.001,
               inference="analytic")


def _markdown_row(text: str, refuter: str) -> str:
    """The table row of a refuter, with markdown's escaped pipes turned back into pipes."""
    rows = [line for line in text.splitlines() if line.startswith(f"| `{refuter}` |")]
    assert len(rows) == 1, refuter
    return rows[0].replace("\\|", "|")


def test_every_refuter_has_one_rule():
    assert set(RULES) == set(REFUTERS)


def test_methods_prints_the_rule_of_every_refuter(runner):
    text = invoke(runner, ["methods"])
    assert text.exit_code == 0
    for name, rule in RULES.items():
        assert f"rule: {rule}" in text.stdout, name
    as_json = json.loads(invoke(runner, ["methods", "--format", "json"]).stdout)
    assert as_json["refutation_rules"] == RULES


@pytest.mark.parametrize("doc,names", [
    ("README.md", REFUTERS),
    ("docs/designs/synth.md", ("placebo_in_time", "leave_one_donor_out")),
])
def test_the_docs_quote_the_same_rules(doc, names):
    text = (ROOT / doc).read_text()
    for name in names:
        assert RULES[name] in _markdown_row(text, name), (doc, name)


@pytest.mark.parametrize("k,extreme,alpha,passed", [
    (19, 0, 0.05, True),     # 1/20 = 0.05 reaches alpha
    (99, 4, 0.05, True),     # 5/100
    (99, 5, 0.05, False),    # 6/100
    (10, 0, 0.05, None),     # 1/11 = 0.091: the best possible result cannot reach alpha
    (10, 1, 0.05, False),    # 2/11: a placebo as large is evidence whatever the resolution
    (10, 0, 0.1, True),      # 1/11 <= 0.1
])
def test_permutation_verdict(k, extreme, alpha, passed):
    p, verdict, words = permutation_verdict(extreme, k, alpha, "simulations")
    assert p == pytest.approx((1 + extreme) / (1 + k))
    assert verdict is passed
    if passed is None:
        assert f"too few simulations to reach alpha, not judged (at least {19 if alpha == 0.05 else 9}" in words


def test_placebo_treatment_and_placebo_in_time_apply_the_same_rule():
    """Ten placebos, none as large as the estimate: p = 1/11 > 0.05 for both refuters, not judged by both
    (the synthetic control design used to pass it, as Brexit's did at p = 0.091); with nineteen, both pass."""
    from causalcli.designs.synthetic_control.refute import summarise as synth_summarise

    for k, expected in ((10, None), (19, True)):
        sims = np.zeros(k)
        a = summarise("placebo_treatment", sims, EST, alpha=0.05)
        b = synth_summarise("placebo_in_time", sims, EST, alpha=0.05)
        assert a.passed is expected and b.passed is expected
        assert a.p_value == pytest.approx(1 / (k + 1)) and b.p_value == pytest.approx(1 / (k + 1))
        if expected is None:
            assert "too few simulations" in a.detail and "too few fake starts" in b.detail
    sims = np.r_[np.zeros(9), 2.0]  # one fake start as large: p = 2/11 > alpha, a failure
    assert synth_summarise("placebo_in_time", sims, EST, alpha=0.05).passed is False
    assert summarise("placebo_treatment", sims, EST, alpha=0.05).passed is False


def test_a_failed_placebo_in_time_says_whether_the_estimate_itself_sees_an_effect():
    """Fake starts with gaps as large fail the refuter either way; the words differ: an estimate whose own interval
    excludes 0 is not to be trusted, one whose interval covers 0 is no effect the model can tell from its error."""
    from causalcli.checks.refutation import placebo_in_time_refutation

    sims = np.r_[np.zeros(15), np.full(4, 2.0)]  # 5 / 20 = 0.25 > alpha
    seen = placebo_in_time_refutation(sims, EST, alpha=0.05)
    null = Estimate(value=0.1, std_error=0.2, ci_lower=-0.3, ci_upper=0.5, conf_level=0.95, p_value=0.6,
                    inference="analytic")
    unseen = placebo_in_time_refutation(sims, null, alpha=0.05)
    assert seen.passed is False and unseen.passed is False
    assert "do not trust the estimate" in seen.detail and "interval covers 0" not in seen.detail
    assert "its own interval covers 0: no effect can be told from the model's error" in unseen.detail
    assert "do not trust" not in unseen.detail


def test_a_failed_placebo_treatment_says_whether_the_estimate_itself_sees_an_effect():
    """Random re-assignments as large fail the refuter either way; the words differ: an estimate whose own interval
    excludes 0 may be noise, one whose interval covers 0 (castle doctrine under Callaway-Sant'Anna: 0.019,
    [-0.056, 0.095], 11 of 19 re-assignments as large) already says that no effect is seen, and 'do not trust it'
    misread as a flaw of the method."""
    sims = np.r_[np.zeros(15), np.full(4, 2.0)]  # 5 / 20 = 0.25 > alpha
    seen = summarise("placebo_treatment", sims, EST, alpha=0.05)
    null = Estimate(value=0.1, std_error=0.2, ci_lower=-0.3, ci_upper=0.5, conf_level=0.95, p_value=0.6,
                    inference="analytic")
    unseen = summarise("placebo_treatment", sims, null, alpha=0.05)
    assert seen.passed is False and unseen.passed is False
    assert "do not trust it" in seen.detail and "interval covers 0" not in seen.detail
    assert "the estimate's own interval covers 0: no effect can be told from noise" in unseen.detail
    assert "do not trust" not in unseen.detail


def test_refuter_details_print_numbers_as_the_estimates_are_printed():
    """A detail read 'the mean effect is 0.5 against 1' where every table prints 0.5000 and 1.000: the details
    use the renderers' ``num`` (four significant digits, trailing zeros kept; thousands with one decimal)."""
    from causalcli.designs.synthetic_control.refute import summarise as synth_summarise
    from causalcli.render.fmt import num

    half = np.full(20, 0.5)
    assert "the mean effect is 0.5000 against 1.000 " in summarise("random_common_cause", half, EST, 0.05).detail
    assert "as large as 1.000 (" in summarise("placebo_treatment", np.zeros(20), EST, 0.05).detail
    fake = synth_summarise("placebo_in_time", np.r_[np.zeros(19), 0.25], EST, alpha=0.05)
    assert "as large as 1.000 (largest |fake effect| 0.2500," in fake.detail
    donors = synth_summarise("leave_one_donor_out", np.array([0.5, 0.7]), EST, alpha=0.05)
    assert "closest to zero is 0.5000 against 1.000;" in donors.detail
    big = Estimate(value=1234.0, std_error=100.0, ci_lower=1000.0, ci_upper=1500.0, conf_level=0.95, p_value=0.001,
                   inference="analytic")
    assert f"against {num(1234.0)} " in summarise("data_subset", np.full(20, 1200.0), big, 0.05).detail
    assert num(1234.0) == "1,234.0" and num(0.5) == "0.5000"
