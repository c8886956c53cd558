"""Proportion metrics (0/1 outcomes, equal to statsmodels' two-proportion Wald test) and guardrail checks.

Tolerances:
* PEER_RTOL = 1e-10: statsmodels computes the same closed forms from the same counts in doubles.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from causalcli.designs.experiment import stats as experiment_stats
from causalcli.errors import SpecError
from causalcli.study.run import run_study
from tests.conftest import invoke

PEER_RTOL = 1e-10


def sessions(n: int = 6000, seed: int = 11, crash_lift: float = 0.3) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    variant = rng.choice(["control", "B"], n)
    treated = variant == "B"
    converted = (rng.random(n) < np.where(treated, 0.13, 0.11)).astype(np.int64)
    crashed = (rng.random(n) < 0.05 * np.where(treated, 1 + crash_lift, 1.0)).astype(np.float64)
    crashed[rng.random(n) < 0.01] = np.nan  # a missing value does not make a column non-binary
    return pd.DataFrame({"variant": variant, "converted": converted, "crashed": crashed,
                         "counted": converted * rng.integers(1, 3, n), "pre": rng.normal(size=n)})


def write(tmp_path: Path, df: pd.DataFrame) -> Path:
    path = tmp_path / "s.parquet"
    df.to_parquet(path, index=False)
    return path


def spec(path: Path, metrics: list[dict], control: str = "control", **design) -> dict:
    return {"version": 1, "name": "guard", "data": {"path": str(path)}, "treatment": "variant",
            "design": {"method": "experiment", "control": control, "metrics": metrics, **design}}


def by_label(result) -> dict:
    return {e.label: e for e in result.effects}


@pytest.mark.parametrize("relative_ci", ["delta", "log"])
def test_a_proportion_equals_statsmodels_two_proportion_wald(tmp_path, relative_ci):
    sp = pytest.importorskip("statsmodels.stats.proportion")
    df = sessions()
    result = run_study(spec(write(tmp_path, df), [{"name": "conversion", "outcome": "converted"}],
                            options={"relative_ci": relative_ci}))
    got = by_label(result)
    t, c = df[df.variant == "B"].converted, df[df.variant == "control"].converted
    counts = (int(t.sum()), len(t), int(c.sum()), len(c))
    test = sp.test_proportions_2indep(*counts, method="wald", compare="diff", return_results=True)
    low, high = sp.confint_proportions_2indep(*counts, method="wald", compare="diff", alpha=0.05)
    e = got["conversion/B/abs"]
    assert e.value == pytest.approx(t.mean() - c.mean(), rel=PEER_RTOL)
    assert e.p_value == pytest.approx(test.pvalue, rel=PEER_RTOL)
    assert (e.ci_lower, e.ci_upper) == pytest.approx((low, high), rel=PEER_RTOL)
    assert e.inference.startswith("difference_in_proportions_wald")
    r = got["conversion/B/rel"]
    if relative_ci == "log":
        low, high = sp.confint_proportions_2indep(*counts, method="log", compare="ratio", alpha=0.05)
        assert (r.ci_lower + 1, r.ci_upper + 1) == pytest.approx((low, high), rel=PEER_RTOL)
    assert r.inference.endswith("difference_in_proportions_wald; p_value_adjusted: holm over 1 test")


def test_what_is_a_proportion_is_read_from_the_data(tmp_path, monkeypatch):
    df = sessions()
    metrics = [{"name": "crash", "outcome": "crashed"}, {"name": "counted", "outcome": "counted"},
               {"name": "converted_cuped", "outcome": "converted", "covariate": "pre"}]
    path = write(tmp_path, df)
    got = by_label(run_study(spec(path, metrics)))
    assert got["crash/B/abs"].inference.startswith("difference_in_proportions_wald")  # 0.0/1.0 floats and NaN
    assert got["counted/B/abs"].inference.startswith("welch_t")  # holds 2s
    assert got["converted_cuped/B/abs"].inference == "cuped+welch_t; p_value_adjusted: holm over 3 tests"
    # large Parquet files are summed per row-group block (without missing values): the 0/1 counts come from
    # that pass too
    complete = tmp_path / "complete"
    complete.mkdir()
    path = write(complete, df.fillna({"crashed": 0.0}))
    monkeypatch.setattr(experiment_stats, "BLOCKED_ROWS", 1)
    blocked = run_study(spec(path, metrics))
    assert blocked.diagnostics["sufficient_statistics"]["summation"] == experiment_stats.BLOCKED_SUMMATION
    assert [e.inference for e in blocked.effects] == [got[e.label].inference for e in blocked.effects]


def test_a_harmful_guardrail_fails_the_study_and_says_by_how_much(tmp_path, runner):
    df = sessions(crash_lift=0.5)
    path = write(tmp_path, df)
    guard = {"name": "crash_rate", "outcome": "crashed", "guardrail": {"direction": "increase_is_bad", "margin": 0.05}}
    result = run_study(spec(path, [{"name": "conversion", "outcome": "converted"}, guard]))
    rel = by_label(result)["crash_rate/B/rel"]
    check = next(c for c in result.checks if c.name == "guardrail:crash_rate")
    assert rel.ci_upper > 0.05 and check.passed is False and result.exit_code == 1
    assert (f"B: relative effect {rel.value:+.2%}, 95% upper bound {rel.ci_upper:+.2%} vs margin +5.00%: a harm "
            f"larger than the margin is not excluded (beyond it by {(rel.ci_upper - 0.05) * 100:.2f} points)") \
        in check.detail
    row = result.diagnostics["guardrails"][0]
    assert row["bound"] == rel.ci_upper and row["excess"] == pytest.approx(rel.ci_upper - 0.05, rel=1e-12)
    spec_file = tmp_path / "guard.yaml"
    spec_file.write_text(json.dumps(spec(path, [guard])))
    res = invoke(runner, ["estimate", str(spec_file), "--format", "json", "--quiet"])
    assert res.exit_code == 1
    out = json.loads(res.stdout)
    assert [c["passed"] for c in out["checks"] if c["name"] == "guardrail:crash_rate"] == [False]


@pytest.mark.parametrize("direction", ["increase_is_bad", "decrease_is_bad"])
def test_the_rule_is_the_interval_bound_against_the_margin(tmp_path, direction):
    path = write(tmp_path, sessions(n=20000, crash_lift=0.0))
    metrics = [{"name": "conversion", "outcome": "converted"}]
    # B converts more: as the control, the other arm's lower bound is a harm to test decrease_is_bad on
    control, arm = ("control", "B") if direction == "increase_is_bad" else ("B", "control")
    rel = by_label(run_study(spec(path, metrics, control=control)))[f"conversion/{arm}/rel"]
    bound = rel.ci_upper if direction == "increase_is_bad" else -rel.ci_lower
    assert bound > 1e-3
    for margin, passes in ((bound + 1e-6, True), (bound - 1e-6, False)):
        guarded = [{**metrics[0], "guardrail": {"direction": direction, "margin": margin}}]
        result = run_study(spec(path, guarded, control=control, correction="bh"))
        check = next(c for c in result.checks if c.name == "guardrail:conversion")
        assert check.passed is passes, (margin, check.detail)
        assert ("points to spare" if passes else "is not excluded") in check.detail


def test_an_undefined_relative_effect_cannot_pass(tmp_path):
    df = sessions()
    df["crashed"] = 0.0
    df.loc[df.index[(df.variant == "B").to_numpy()][:3], "crashed"] = 1.0  # none in control
    result = run_study(spec(write(tmp_path, df), [{"name": "crash", "outcome": "crashed",
                                                   "guardrail": {"direction": "increase_is_bad", "margin": 0.1}}]))
    check = next(c for c in result.checks if c.name == "guardrail:crash")
    assert check.passed is False and "the relative effect is undefined" in check.detail


def test_a_negative_margin_is_a_spec_error(tmp_path):
    bad = [{"name": "crash", "outcome": "crashed", "guardrail": {"direction": "increase_is_bad", "margin": -0.01}}]
    with pytest.raises(SpecError, match="a guardrail's margin is a relative harm of 0 or more") as e:
        run_study(spec(write(tmp_path, sessions(n=100)), bad))
    assert e.value.exit_code == 2 and e.value.key == "design.metrics[0].guardrail.margin"
    assert "\n" not in str(e.value)


def test_the_cumulative_effect_of_a_proportion_ends_at_its_estimate(tmp_path):
    df = sessions(n=3000)
    df["day"] = np.random.default_rng(2).integers(1, 6, len(df))
    result = run_study(spec(write(tmp_path, df), [{"name": "conversion", "outcome": "converted"}], time="day"))
    last = result.diagnostics["cumulative"][-1]
    assert result.diagnostics["cumulative_method"]["inference"] == "difference_in_proportions_wald"
    assert (last["value"], last["std_error"], last["ci_lower"], last["ci_upper"]) == (
        result.estimate.value, result.estimate.std_error, result.estimate.ci_lower, result.estimate.ci_upper)
