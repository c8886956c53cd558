"""Synthetic control against the three studies that define it: the published weights, fits and effects.

Sources (data, specs and the published weights in this folder; README.md says where each comes from):

* Abadie, Diamond and Hainmueller (2010), "Synthetic control methods for comparative case studies:
  estimating the effect of California's tobacco control program", JASA 105(490), Tables 1 and 2
  (Proposition 99: ``prop99.yaml``, ``prop99_smoking.csv``).
* Abadie and Gardeazabal (2003), "The economic costs of conflict: a case study of the Basque Country",
  AER 93(1), with R Synth's ``basque`` example output (``basque.yaml``, ``basque.csv``).
* Abadie, Diamond and Hainmueller (2015), "Comparative politics and the synthetic control method",
  AJPS 59(2), Table 2 (West German reunification: ``germany.yaml``, ``germany_cv.yaml``, ``germany.csv``).

The nested V/W problem is not convex and has near-tied optima; the README explains why each tolerance
below is what the papers' printed precision and those near-ties allow.
"""

from __future__ import annotations

import numpy as np
import pytest

from causalcli.study.run import run_study
from tests.reference.synth.studies import PUBLISHED, fitted, prepared, published_loss, spec_of

# The paper prints weights to 3 decimals and its optimiser stopped at a loss 0.4% above the one
# kept here; near-tied optima of the nested problem move single weights by up to ~0.005.
PROP99_WEIGHT_TOL = 0.01
# Weights lie on the simplex: they sum to 1 up to the rounding of a sum of ~40 doubles.
SIMPLEX_ATOL = 1e-12
# Mean post-1989 gap of our weights against that of the published ones: each weight differs by up to
# PROP99_WEIGHT_TOL, and donors' post-period sales differ by tens of packs, so up to ~0.5 packs.
PROP99_EFFECT_ATOL = 0.5
# ADH 2010: "by 2000 annual per-capita cigarette sales in California were about 26 packs lower";
# the paper's Figure 2 reads between 24 and 27 packs.
PROP99_GAP_2000_RANGE = (-28, -23)
# Table 1 prints two decimals; California's own values are data, so they agree to that rounding.
TABLE1_PRINTED_ATOL = 0.01
# Table 1's synthetic values come from the paper's weights; ours differ by up to PROP99_WEIGHT_TOL per
# donor, which moves the synthetic beer consumption by up to ~0.3 and 1988 cigarette sales by ~0.5.
TABLE1_SYNTHETIC_BEER_ATOL = 0.3
TABLE1_SYNTHETIC_CIGSALE_ATOL = 0.5
# Pre-period RMSPE 1.76 of the paper's fit, printed to two decimals; the near-tied optimum kept here
# fits slightly better (lower loss), so it may sit a few hundredths below.
PRE_RMSPE_ATOL = 0.05
# Basque and West Germany with nested V: a different optimum of a non-convex problem from the paper's,
# so the effect is held to its sign and to within half the published weights' mean post-period gap.
OTHER_OPTIMUM_EFFECT_RTOL = 0.5
# R Synth's Basque weights are printed to 3 decimals.
BASQUE_WEIGHT_TOL = 0.001
TIE = 1e-3  # TIE_RTOL of causalcli.models.synthetic_weights: losses this close count as tied, the earliest start kept
# The kept Basque solution fits at least 1% better than the published one (0.0055 against 0.0089).
LOWER_LOSS_FACTOR = 0.99
# ADH 2015 prints two decimals: a weight within 0.01, and a donor it prints as 0.00 holds less than 0.005.
GERMANY_WEIGHT_TOL = 0.01
GERMANY_WEIGHT_FLOOR = 0.005
# "about 1,600 USD per year": a figure rounded to the hundred.
GERMANY_GAP = -1600
GERMANY_GAP_ATOL = 100


@pytest.fixture(scope="module")
def prop99():
    return fitted("prop99")


def test_prop99_reproduces_the_published_weights(prop99):
    """ADH (2010) Table 2: Utah .334, Nevada .234, Montana .199, Colorado .164, Connecticut .069."""
    w = prop99.diagnostics["weights"]
    for unit, pub in PUBLISHED["prop99"].items():
        assert abs(w[unit] - pub) < PROP99_WEIGHT_TOL, (unit, w[unit], pub)
    others = {u: x for u, x in w.items() if u not in PUBLISHED["prop99"]}
    assert max(others.values()) < PROP99_WEIGHT_TOL
    assert sum(w.values()) == pytest.approx(1.0, abs=SIMPLEX_ATOL) and min(w.values()) >= 0
    assert sum(prop99.diagnostics["v_weights"].values()) == pytest.approx(1.0, abs=SIMPLEX_ATOL)


def test_prop99_fits_no_worse_than_the_paper_and_gives_its_effect(prop99):
    """ADH (2010): the loss of the published weights, the 2000 gap (sec. 4) and California's rank 1 of 39."""
    d = prepared("prop99")
    loss_pub, gaps_pub = published_loss(d, PUBLISHED["prop99"])
    assert prop99.diagnostics["fit"]["loss_v"] <= loss_pub
    post = d.post
    # the same counterfactual: mean post-1989 gap within 0.5 packs of the published weights' gap
    assert prop99.estimate.value == pytest.approx(gaps_pub[post].mean(), abs=PROP99_EFFECT_ATOL)
    # ADH 2010: "by 2000 annual per-capita cigarette sales in California were about 26 packs lower"
    low, high = PROP99_GAP_2000_RANGE
    assert prop99.effects[-1].label == "2000" and low < prop99.effects[-1].value < high
    # ADH 2010 sec. 4: California's post/pre RMSPE ratio is the highest of the 39 states: p = 1/39
    assert prop99.estimate.p_value == pytest.approx(1 / 39)
    assert prop99.diagnostics["placebo_in_space"]["rank"] == 1
    assert prop99.estimate.std_error is None and "placebo_in_space" in prop99.estimate.inference


def test_prop99_diagnostics_and_checks(prop99):
    """ADH (2010) Table 1 (predictor balance) and the pre-period fit of the paper's Figure 2."""
    diag = prop99.diagnostics
    names = [b["predictor"] for b in diag["balance"]]
    assert names == ["lnincome", "beer", "age15to24", "retprice", "cigsale (1975)", "cigsale (1980)",
                     "cigsale (1988)"]
    beer = diag["balance"][1]
    # ADH 2010 Table 1: beer 24.28 (California), synthetic 24.20; cigsale 1988: 90.10 vs 91.62
    assert beer["treated"] == pytest.approx(24.28, abs=TABLE1_PRINTED_ATOL)
    assert beer["synthetic"] == pytest.approx(24.2, abs=TABLE1_SYNTHETIC_BEER_ATOL)
    assert diag["balance"][6]["treated"] == pytest.approx(90.1, abs=TABLE1_PRINTED_ATOL)
    assert diag["balance"][6]["synthetic"] == pytest.approx(91.62, abs=TABLE1_SYNTHETIC_CIGSALE_ATOL)
    assert diag["pre_rmspe"] == pytest.approx(1.76, abs=PRE_RMSPE_ATOL)
    assert diag["post_pre_rmspe_ratio"] > 10
    assert prop99.checks[0].name == "pre_fit" and prop99.checks[0].passed is True
    assert len(prop99.effects) == 12 and prop99.n["pre_periods"] == 19 and prop99.n["control"] == 38
    assert len(diag["placebo_gaps"]) == 38 and len(diag["path"]["synthetic"]) == 31


@pytest.mark.parametrize("name", ["basque", "germany"])
def test_basque_and_germany_fit_at_least_as_well_as_the_papers(name):
    """Lower pre-period loss than the published weights (AG 2003, ADH 2015), and an effect of the same sign
    and size.

    Tolerance on the effect: within 50% of the published weights' mean post-period gap; the two
    fits are different optima of a non-convex problem (see tests/reference/synth/README.md).
    """
    res = run_study(spec_of(name, conformal=False), jobs=1)
    d = prepared(name)
    loss_pub, gaps_pub = published_loss(d, PUBLISHED[name])
    assert res.diagnostics["fit"]["loss_v"] < loss_pub
    target = gaps_pub[d.post].mean()
    assert np.sign(res.estimate.value) == np.sign(target)
    assert abs(res.estimate.value - target) < OTHER_OPTIMUM_EFFECT_RTOL * abs(target)
    w = res.diagnostics["weights"]
    assert sum(w.values()) == pytest.approx(1.0, abs=SIMPLEX_ATOL)


def test_basque_published_weights_are_a_local_optimum_that_causalcli_reaches():
    """R Synth's Basque solution (Cataluna .851, Madrid .149) is one of the nested problem's local optima.

    Two of causalcli's deterministic starts converge to it (weights within 0.001 of the paper's
    three decimals, and the outcome loss of the published weights within 0.1%); the start from
    equal V reaches a different optimum with a lower loss, which is the one kept. So the
    disagreement in weights is a better optimum of the same problem, not a different problem.
    """
    res = run_study(spec_of("basque", conformal=False), jobs=1)
    d = prepared("basque")
    loss_pub, _ = published_loss(d, PUBLISHED["basque"])
    optima = res.diagnostics["fit"]["local_optima"]
    reached = [o for o in optima
               if set(o["weights"]) == set(PUBLISHED["basque"])
               and all(abs(o["weights"][k] - w) <= BASQUE_WEIGHT_TOL for k, w in PUBLISHED["basque"].items())]
    assert len(reached) >= 1, optima
    assert all(o["loss"] == pytest.approx(loss_pub, rel=TIE) for o in reached)
    assert res.diagnostics["fit"]["loss_v"] < LOWER_LOSS_FACTOR * loss_pub
    assert min(o["loss"] for o in optima) == pytest.approx(res.diagnostics["fit"]["loss_v"], rel=TIE)


def _germany_weights(res) -> dict[str, float]:
    return {k: v for k, v in res.diagnostics["weights"].items() if v > GERMANY_WEIGHT_FLOOR}


def test_germany_cross_validated_v_reproduces_the_published_weights():
    """ADH (2015) chose V on 1971-80 predictors by the 1981-90 fit; with that procedure (windows
    ending in 1989, the last pre-period here) every published weight is met within 0.01 (the paper
    prints two decimals), no other donor gets 0.005 or more, and the mean 1990-2003 gap is the
    paper's "about 1,600 USD per year" (within 100)."""
    res = run_study(spec_of("germany_cv", conformal=False), jobs=1)
    w = _germany_weights(res)
    assert set(w) == set(PUBLISHED["germany"]), w
    for k, v in PUBLISHED["germany"].items():
        assert w[k] == pytest.approx(v, abs=GERMANY_WEIGHT_TOL), (k, w[k])
    assert res.estimate.value == pytest.approx(GERMANY_GAP, abs=GERMANY_GAP_ATOL)
    fit = res.diagnostics["fit"]
    assert fit["v"] == "cross_validated" and fit["start_kept"].startswith("cross_validated")
    assert fit["validation_loss"] > 0 and len(fit["training_local_optima"]) == 8


def test_germany_cross_validated_v_with_the_papers_own_windows():
    """The paper's windows run to 1990 (predictors 1981-90, validation 1981-90). To use 1990 as a
    pre-period the start moves to 1991 here; the weights again meet the published ones within 0.01."""
    spec = spec_of("germany_cv", conformal=False)
    d = spec["design"]
    d["treatment_start"] = 1991
    d["special_predictors"][0] = ["industry", {"from": 1981, "to": 1990}]
    d["options"]["predictors_window"] = [1981, 1990]
    d["options"]["cross_validation"]["validate_window"] = [1981, 1990]
    res = run_study(spec, jobs=1)
    w = _germany_weights(res)
    assert set(w) == set(PUBLISHED["germany"]), w
    for k, v in PUBLISHED["germany"].items():
        assert w[k] == pytest.approx(v, abs=GERMANY_WEIGHT_TOL), (k, w[k])


def test_cross_validated_v_differs_from_nested_v_on_germany():
    """The option changes the answer: the nested V (lowest 1960-89 loss) puts weight on other donors than
    ADH (2015) Table 2."""
    nested = run_study(spec_of("germany", conformal=False), jobs=1)
    assert set(_germany_weights(nested)) != set(PUBLISHED["germany"])
