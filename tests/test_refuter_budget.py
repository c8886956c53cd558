"""One refuter budget for every design (issue 15, point 3): simulations run in rounds and stop once the
verdict is settled (``causalcli.checks.refutation.BUDGET``), deterministically for a seed."""

from __future__ import annotations

import json
import math
from pathlib import Path

import numpy as np
import pytest

from causalcli.checks.refutation import BUDGET, interval_above, round_size, settled, summarise
from causalcli.inference.distributions import binomial_cdf, t_central_probability, t_quantile_integer_df
from causalcli.records import Estimate
from causalcli.study.run import run_study
from tests.conftest import invoke

ROOT = Path(__file__).resolve().parents[1]
EST = Estimate(value=1.0, std_error=0.2, ci_lower=0.6, ci_upper=1.4, conf_level=0.95, p_value=0.001,
               inference="analytic")


def clopper_pearson(x: int, k: int, level: float = 0.95) -> tuple[float, float]:
    from statsmodels.stats.proportion import proportion_confint

    low, high = proportion_confint(x, k, alpha=1 - level, method="beta")
    return float(low), float(high)


@pytest.mark.parametrize("x,k", [(0, 19), (0, 71), (0, 72), (0, 76), (1, 19), (3, 19), (5, 100), (19, 19),
                                 (40, 57), (2, 100), (4, 19), (6, 1000)])
@pytest.mark.parametrize("alpha", [0.05, 0.01, 0.1])
def test_the_stopping_rule_equals_the_clopper_pearson_interval_of_statsmodels(x, k, alpha):
    """The runner decides from binomial tails (no scipy import); that is the exact interval above alpha."""
    low, high = clopper_pearson(x, k)
    assert interval_above(x, k, alpha, 0.95) == (low > alpha)


@pytest.mark.parametrize("x,k,p", [(0, 19, 0.05), (3, 76, 0.05), (50, 100, 0.3), (999, 1000, 0.99), (7, 7, 0.5)])
def test_binomial_cdf_equals_scipy(x, k, p):
    from scipy.stats import binom

    assert binomial_cdf(x, k, p) == pytest.approx(float(binom.cdf(x, k, p)), rel=1e-12, abs=1e-300)


@pytest.mark.parametrize("df", [1, 2, 3, 4, 5, 9, 20, 99])
def test_integer_df_t_quantile_equals_scipy(df):
    from scipy.special import stdtr, stdtrit

    for t in (0.1, 1.0, 2.5, 10.0):
        assert t_central_probability(t, df) == pytest.approx(1 - 2 * float(stdtr(df, -t)), rel=1e-12, abs=1e-14)
    for p in (0.9, 0.975, 0.995):
        assert t_quantile_integer_df(p, df) == pytest.approx(float(stdtrit(df, p)), rel=1e-10)


def test_rounds_are_the_fewest_that_can_reach_alpha():
    assert round_size("placebo_treatment", 0.05) == 19
    assert round_size("placebo_in_time", 0.05) == 19
    assert round_size("placebo_treatment", 0.01) == 99
    assert round_size("placebo_treatment", 0.1) == 9
    assert round_size("random_common_cause", 0.05) == round_size("data_subset", 0.05) == 5


@pytest.mark.parametrize("extreme,k,expected", [
    (0, 19, False),   # a pass is never settled early: it needs every simulation asked for
    (0, 76, False),
    (1, 19, False),   # p = 0.1 now, but the chance of a placebo as large could still be below 0.05
    (5, 19, True),    # five placebos as large in nineteen: failing is settled after one round
    (2, 100, False),  # near alpha: every simulation runs
])
def test_only_a_failure_settles_a_placebo_test_early(extreme, k, expected):
    sims = np.concatenate([np.full(extreme, 2.0), np.zeros(k - extreme)])
    assert settled("placebo_treatment", sims, EST, 0.05) is expected
    low, _ = clopper_pearson(extreme, k)
    assert expected == (low > 0.05)


def test_stability_settles_when_the_monte_carlo_band_clears_the_critical_value():
    rng = np.random.default_rng(0)
    still = EST.value + 0.01 * rng.standard_normal(5)  # moves by 0.05 SE: a settled pass
    assert settled("random_common_cause", still, EST, 0.05)
    far = EST.value + 1.0 + 0.01 * rng.standard_normal(5)  # 5 SE away: a settled failure
    assert settled("data_subset", far, EST, 0.05)
    # a shift of 1.9 SE with a wide spread: the band straddles 1.96, run more
    edge = EST.value + 0.38 + 0.2 * np.array([-1.0, -0.5, 0.0, 0.5, 1.0])
    assert not settled("data_subset", edge, EST, 0.05)
    assert not settled("data_subset", still[:1], EST, 0.05)  # one value has no spread


def test_monte_carlo_standard_errors():
    placebo = summarise("placebo_treatment", np.r_[np.full(3, 2.0), np.zeros(96)], EST, 0.05)
    assert placebo.p_value == pytest.approx(4 / 100)
    assert placebo.monte_carlo_se == pytest.approx(math.sqrt(0.04 * 0.96 / 99))
    sims = EST.value + 0.05 * np.array([-1.0, 0.0, 1.0, 2.0, 3.0])
    stable = summarise("random_common_cause", sims, EST, 0.05)
    z = (sims.mean() - EST.value) / EST.std_error
    mc_z = sims.std(ddof=1) / (EST.std_error * math.sqrt(sims.size))
    phi = math.exp(-z * z / 2) / math.sqrt(2 * math.pi)
    assert stable.monte_carlo_se == pytest.approx(2 * phi * mc_z)
    assert "Monte Carlo SE" in stable.detail and "Monte Carlo SE" in placebo.detail
    # a finite-difference check of the delta method
    h = 1e-6
    from causalcli.inference.distributions import normal_two_sided_p
    slope = (normal_two_sided_p(z + h) - normal_two_sided_p(z - h)) / (2 * h)
    assert abs(slope) * mc_z == pytest.approx(stable.monte_carlo_se, rel=1e-6)


def _frame(n: int = 600, effect: float = 3.0):
    import pandas as pd

    rng = np.random.default_rng(5)
    x1, x2 = rng.normal(size=n), rng.normal(size=n)
    t = (rng.uniform(size=n) < 1 / (1 + np.exp(-(0.7 * x1 - 0.4 * x2)))).astype(int)
    y = effect * t + 2 * x1 + x2 + rng.normal(size=n)
    return pd.DataFrame({"t": t, "y": y, "x1": x1, "x2": x2})


def _spec(tmp_path, frame, refute=None):
    path = tmp_path / "d.csv"
    frame.to_csv(path, index=False)
    spec = {"version": 1, "data": {"path": str(path)}, "treatment": "t", "outcome": "y", "covariates": ["x1", "x2"],
            "design": {"method": "weighting"}}
    if refute is not None:
        spec["refute"] = refute
    return spec


def test_default_refuters_stop_when_settled_and_say_so(tmp_path):
    """A clear effect: the placebo test runs its 19 simulations (the fewest that reach alpha) and passes;
    the stability tests stop after one round of 5. Serial and parallel runs give the same numbers."""
    spec = _spec(tmp_path, _frame())
    serial = run_study(spec, jobs=1)
    counts = {r.name: r.simulations for r in serial.refutations}
    assert counts == {"placebo_treatment": 19, "random_common_cause": 5, "data_subset": 5}
    for r in serial.refutations:
        assert r.passed is True
        assert r.monte_carlo_se is not None and r.monte_carlo_se >= 0
    for r in serial.refutations[1:]:
        assert f"settled after {r.simulations} of at most 100 simulations" in r.detail
    parallel = run_study(spec, jobs=2)
    assert [r.to_dict() for r in parallel.refutations] == [r.to_dict() for r in serial.refutations]


def test_no_effect_fails_the_placebo_test_after_one_round(tmp_path):
    spec = _spec(tmp_path, _frame(effect=0.0), refute=[{"placebo_treatment": {"simulations": 190}}])
    placebo = run_study(spec, jobs=1).refutations[0]
    assert placebo.passed is False
    assert placebo.simulations == 19
    assert "settled after 19 of at most 190 simulations" in placebo.detail


def test_a_clear_effect_runs_every_placebo_asked_for(tmp_path):
    """Stopping on a pass would let a null effect pass at any of several looks; a pass needs them all."""
    spec = _spec(tmp_path, _frame(), refute=[{"placebo_treatment": {"simulations": 60}}])
    placebo = run_study(spec, jobs=1).refutations[0]
    assert placebo.passed is True and placebo.simulations == 60


def test_the_default_placebo_count_follows_alpha(tmp_path):
    spec = _spec(tmp_path, _frame(), refute=[{"placebo_treatment": {}}])
    spec["thresholds"] = {"alpha": 0.1}
    assert run_study(spec, jobs=1).refutations[0].simulations == 9


def test_stop_early_false_runs_every_simulation(tmp_path):
    spec = _spec(tmp_path, _frame(), refute=[{"placebo_treatment": {"simulations": 30, "stop_early": False}},
                                             {"data_subset": {"simulations": 12, "stop_early": False}}])
    out = run_study(spec, jobs=1).refutations
    assert [r.simulations for r in out] == [30, 12]
    assert not any("settled after" in r.detail for r in out)
    # the first simulations are the same draws whether or not the run stops early
    early = run_study(_spec(tmp_path, _frame(), refute=[{"data_subset": {"simulations": 12}}]), jobs=1)
    assert early.refutations[0].simulations == 5


def test_methods_and_docs_state_the_budget(runner):
    text = invoke(runner, ["methods"]).stdout
    assert f"how many simulations: {BUDGET}" in text
    assert json.loads(invoke(runner, ["methods", "--format", "json"]).stdout)["refutation_budget"] == BUDGET
    assert BUDGET in " ".join((ROOT / "README.md").read_text().split())


@pytest.mark.parametrize("estimator,n", [("ipw", 600), ("ipw", 20_000), ("aipw", 20_000)])
def test_the_pool_gives_the_numbers_of_one_process(tmp_path, monkeypatch, estimator, n):
    """Cheap rounds run in the main process; forced onto the workers, the numbers and counts are the same, to the
    last digit (AIPW's weighted means by BLAS dot products differed there on long vectors: a threaded BLAS splits
    them by thread in the main process, not in a single-threaded worker)."""
    from causalcli.study import refute

    spec = _spec(tmp_path, _frame(n))
    spec["design"]["options"] = {"estimator": estimator}
    serial = run_study(spec, jobs=1)
    monkeypatch.setattr(refute, "SERIAL_ROUND_SECONDS", 0.0)
    calls = []
    real_pool = refute._pool
    monkeypatch.setattr(refute, "_pool", lambda n, d, p: calls.append(n) or real_pool(n, d, p))
    pooled = run_study(spec, jobs=2)
    assert calls == [2]
    assert [r.to_dict() for r in pooled.refutations] == [r.to_dict() for r in serial.refutations]


def test_a_verdict_left_open_at_the_cap_says_so(tmp_path):
    """Two placebos as large in 19: the interval still holds alpha, and 19 is all that was allowed."""
    spec = _spec(tmp_path, _frame(effect=0.15), refute=[{"placebo_treatment": {"simulations": 19}}])
    placebo = run_study(spec, jobs=1).refutations[0]
    assert placebo.simulations == 19
    assert placebo.passed is False
    assert "not settled after all 19 simulations" in placebo.detail
    assert "raise placebo_treatment.simulations" in placebo.detail
    # a pass is an exact test at any count: no such note
    clear = run_study(_spec(tmp_path, _frame(), refute=[{"placebo_treatment": {}}]), jobs=1).refutations[0]
    assert clear.passed is True and "not settled" not in clear.detail


@pytest.mark.parametrize("jobs", [1, 2])
def test_a_refutation_quotes_why_its_failed_simulations_failed(tmp_path, monkeypatch, jobs):
    """Castle doctrine: '3 of 5 simulations could not be estimated' said nothing of why (a singular propensity
    model in one-state cohorts); the detail now quotes the failures' messages, the commonest first, the same with
    the simulations on forked workers."""
    from causalcli.designs.weighting.design import WeightingDesign
    from causalcli.errors import EstimationError
    from tests.conftest import base_spec, simulate

    real = WeightingDesign.refute_once

    def flaky(self, prepared, name, options, rng):
        draw = rng.random()
        if draw < 0.3:
            raise EstimationError("propensity model: covariates are collinear (singular design); drop one")
        if draw < 0.4:
            raise EstimationError("a subset holds one arm only")
        return real(self, prepared, name, options, rng)

    monkeypatch.setattr(WeightingDesign, "refute_once", flaky)
    path = tmp_path / "d.csv"
    simulate(400).to_csv(path, index=False)
    monkeypatch.setattr("causalcli.study.refute.SERIAL_ROUND_SECONDS", 0.0)  # jobs=2: on the workers
    spec = base_spec(str(path), design={"method": "weighting", "estimand": "ate"}, refute=[
        {"random_common_cause": {"simulations": 20}}])
    (r,) = run_study(spec, jobs=jobs).refutations
    import re

    failed = re.search(r"\((\d+) of (\d+) simulations could not be estimated", r.detail)
    assert failed and int(failed.group(1)) > 0
    assert "the failed simulations said: 'propensity model: covariates are collinear (singular design); drop one'" \
        in r.detail
