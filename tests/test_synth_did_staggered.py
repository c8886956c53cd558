"""Several and staggered treated units under `estimator: synthetic_did` (issue 19 points 2 and 6).

Several treated units with one start: R synthdid's estimator with N1 > 1, checked against diff-diff 3.13's
``SyntheticDiD`` through the CLI (estimate to 1e-8; the jackknife has no draws, so its SE too; placebo and
bootstrap on the same seeded draws as diff-diff's). Staggered adoption (Arkhangelsky et al. 2021, appendix):
a factor-model panel with known cohort effects.
"""

from __future__ import annotations

import json
import warnings

import numpy as np
import pandas as pd
import pytest
import yaml

from causalcli.study.run import run_study
from tests.conftest import invoke

PEER_TOLERANCE = 1e-8


def _factor_panel(seed: int, n_units: int, periods: int, adoption: dict[int, float],
                  effects: dict[float, float], noise: float = 0.5) -> pd.DataFrame:
    """Units u000... with two random-walk factors, unit loadings and levels, iid noise; unit i adopts at
    ``adoption[i]`` (others never) and then gains ``effects[adoption period]``."""
    rng = np.random.default_rng(seed)
    F = rng.normal(size=(periods, 2)).cumsum(axis=0)
    Y = rng.normal(size=(n_units, 2)) @ F.T + rng.normal(size=(n_units, 1))
    Y = Y + noise * rng.normal(size=(n_units, periods))
    first = np.zeros(n_units)
    for i, a in adoption.items():
        first[i] = a
        Y[i, int(a):] += effects[a]
    return pd.DataFrame({"unit": np.repeat([f"u{i:03d}" for i in range(n_units)], periods),
                         "period": np.tile(np.arange(periods), n_units), "y": Y.ravel(),
                         "first": np.repeat(first, periods)})


def _spec(path, treated, start, **options) -> dict:
    return {"version": 1, "name": "sdid-multi", "data": {"path": str(path)}, "outcome": "y",
            "design": {"method": "synthetic_control", "estimator": "synthetic_did", "unit": "unit",
                       "time": "period", "treated_unit": treated, "treatment_start": start, "options": options},
            "refute": []}


def _diff_diff(df: pd.DataFrame, post: list, method: str, reps: int, seed: int):
    from diff_diff import SyntheticDiD

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return SyntheticDiD(variance_method=method, n_bootstrap=reps, seed=seed).fit(
            df, outcome="y", treatment="treated", unit="unit", time="period", post_periods=post)


@pytest.mark.peer
@pytest.mark.parametrize("method,reps", [("jackknife", 2), ("placebo", 12), ("bootstrap", 12)])
def test_several_treated_units_equal_diff_diff(tmp_path, method, reps):
    df = _factor_panel(3, n_units=18, periods=9, adoption={i: 6 for i in (2, 9, 14)}, effects={6: 1.0})
    df["treated"] = (df["first"] > 0).astype(int)
    path = tmp_path / "panel.csv"
    df.to_csv(path, index=False)
    treated = ["u002", "u009", "u014"]
    ours = run_study(_spec(path, treated, 6, se=method, replications=reps), jobs=1).to_dict()
    peer = _diff_diff(df, [6, 7, 8], method, reps, seed=ours["provenance"]["seed"])
    assert abs(ours["estimate"]["value"] - peer.att) < PEER_TOLERANCE
    assert ours["n"]["treated"] == 3 and ours["n"]["control"] == 15
    # the jackknife has no draws; placebo and bootstrap take the same seeded draws as diff-diff's
    assert abs(ours["estimate"]["std_error"] - peer.se) < 1e-6 * peer.se
    assert sorted(ours["diagnostics"]["path"]["treated_unit"]) == treated


COHORTS = {0: 8, 1: 8, 2: 8, 3: 11, 4: 11, 5: 14, 6: 14, 7: 14}
EFFECTS = {8: 1.0, 11: 2.0, 14: 3.0}
PERIODS = 18


def _truth() -> float:
    """The aggregate the estimator targets: effects weighted by treated unit-periods."""
    units_periods = {a: sum(1 for v in COHORTS.values() if v == a) * (PERIODS - a) for a in EFFECTS}
    return sum(EFFECTS[a] * w for a, w in units_periods.items()) / sum(units_periods.values())


def _staggered_result(tmp_path, seed: int, se: str = "placebo", reps: int = 40, n_units: int = 30) -> dict:
    df = _factor_panel(seed, n_units=n_units, periods=PERIODS, adoption={i + 10: a for i, a in COHORTS.items()},
                       effects=EFFECTS, noise=0.3)
    path = tmp_path / f"panel{seed}.csv"
    df.to_csv(path, index=False)
    treated = [f"u{i + 10:03d}" for i in COHORTS]
    return run_study(_spec(path, treated, "first", se=se, replications=reps), jobs=1, seed=seed).to_dict()


def test_staggered_recovers_cohort_and_aggregate_effects_within_2_se(tmp_path):
    """The jackknife of the whole procedure (no refits: fast); the placebo's coverage is the slow test's."""
    res = _staggered_result(tmp_path, seed=1, se="jackknife")
    est = res["estimate"]
    assert abs(est["value"] - _truth()) < 2 * est["std_error"]
    by_label = {e["label"]: e for e in res["effects"]}
    for a, effect in EFFECTS.items():
        e = by_label[f"cohort {a}"]
        assert abs(e["value"] - effect) < 2 * e["std_error"]
    assert [c["aggregation_weight"] for c in res["diagnostics"]["cohorts"]] == pytest.approx(
        [3 * 10 / 56, 2 * 7 / 56, 3 * 4 / 56])
    assert "event time 0" in by_label and res["n"]["cohorts"] == 3 and res["n"]["control"] == 22


def test_staggered_bootstrap_redoes_every_cohort(tmp_path):
    from causalcli.designs.synthetic_control import staggered

    df = _factor_panel(4, n_units=16, periods=10, adoption={12: 6, 13: 6, 14: 8, 15: 8}, effects={6: 1.0, 8: 2.0})
    Y = df.pivot(index="unit", columns="period", values="y").to_numpy()
    t0s = np.array([6, 6, 8, 8])
    base = staggered.estimate(Y, 12, t0s, "sdid", 4)
    reps, attempts = staggered.replicates(Y, 12, t0s, base, "bootstrap", 6, 1, "sdid")
    assert reps.shape == (6, 1 + 2 + 4) and attempts >= 6
    # a row is one whole aggregate; a cohort missing from a bootstrap draw is NaN there
    complete = np.isfinite(reps[:, 1:3]).all(axis=1)
    assert complete.any()
    ses = staggered.standard_errors(reps, "bootstrap")
    assert np.all(ses[:3] > 0)


@pytest.mark.slow
def test_staggered_placebo_interval_covers_near_95_percent(tmp_path):
    """60 factor-model panels, 20 placebo draws of the whole staggered procedure each: the 95% interval
    of the aggregate effect covers the truth in 0.85-0.99 of them (binomial sd from 60 panels: 0.028),
    and the SEs match the spread of the estimates (root mean square SE within a factor 2 of the RMSE: the
    placebo SE is conditional on each panel's factors, so it varies a lot from panel to panel)."""
    covered, errors, ses = [], [], []
    for seed in range(60):
        est = _staggered_result(tmp_path, seed=100 + seed, reps=20)["estimate"]
        covered.append(est["ci_lower"] <= _truth() <= est["ci_upper"])
        errors.append(est["value"] - _truth())
        ses.append(est["std_error"])
    assert 0.85 <= np.mean(covered) <= 0.99
    rmse, rms_se = np.sqrt(np.mean(np.square(errors))), np.sqrt(np.mean(np.square(ses)))
    assert 0.5 < rms_se / rmse < 2.0


def _write(tmp_path, spec) -> str:
    path = tmp_path / "s.yaml"
    path.write_text(yaml.safe_dump(spec))
    return str(path)


BAD_DATA = [
    (["u010", "nowhere"], "first", {}, "treated unit 'nowhere' not found in column 'unit'"),
    (["u010", "u020"], "first", {}, "treated unit 'u020' has no adoption period in column 'first'"),
    (["u010"], "first", {10: 40}, "adoption period 40 of unit 'u010' in column 'first' is not a period of column "
                                 "'period' (periods 0 to 17)"),
    (["u010"], "first", {10: 1}, "the cohort adopting at 1 (unit 'u010') has 1 pre-period(s) in column 'period'"),
    (["u010"], "first", {11: "switch"}, "unit 'u011' has several adoption periods in column 'first' (8 and 9)"),
    (["u010"], "missing_column", {}, "column 'missing_column' not found"),
]


@pytest.mark.parametrize("treated,start,adoption,message", BAD_DATA)
def test_bad_treated_units_exit_3_in_one_line(runner, tmp_path, treated, start, adoption, message):
    df = _factor_panel(0, n_units=24, periods=PERIODS, adoption={10: 8, 11: 8}, effects={8: 1.0})
    for i, a in adoption.items():
        rows = df.unit == f"u{i:03d}"
        if a == "switch":  # a unit whose adoption period changes within the panel
            df.loc[rows & (df.period > 3), "first"] = 9
        else:
            df.loc[rows, "first"] = a
    df.to_csv(tmp_path / "panel.csv", index=False)
    res = invoke(runner, ["estimate", _write(tmp_path, _spec(tmp_path / "panel.csv", treated, start))])
    assert res.exit_code == 3, res.stderr
    assert message in res.stderr and len(res.stderr.strip().splitlines()) == 1


def test_several_units_for_adh_and_jackknife_with_one_unit_exit_2(runner, tmp_path):
    spec = _spec(tmp_path / "panel.csv", ["u001", "u002"], 6)
    spec["design"].update(estimator="synthetic_control", special_predictors=[["y", 1]])
    res = invoke(runner, ["estimate", _write(tmp_path, spec)])
    assert res.exit_code == 2 and "estimator: synthetic_control takes one treated unit, found 2" in res.stderr
    assert len(res.stderr.strip().splitlines()) == 1
    spec["design"].update(treated_unit="u001", treatment_start="first")
    res = invoke(runner, ["estimate", _write(tmp_path, spec)])
    assert res.exit_code == 2 and "names a column (staggered adoption), which only estimator: synthetic_did" \
        in res.stderr
    res = invoke(runner, ["estimate", _write(tmp_path, _spec(tmp_path / "panel.csv", ["u001"], 6, se="jackknife"))])
    assert res.exit_code == 2 and "jackknife standard errors need at least two treated units" in res.stderr


def test_staggered_runs_through_the_cli(runner, tmp_path):
    df = _factor_panel(4, n_units=16, periods=10, adoption={12: 6, 13: 6, 14: 8}, effects={6: 1.0, 8: 2.0})
    df.to_csv(tmp_path / "panel.csv", index=False)
    spec = _spec(tmp_path / "panel.csv", ["u012", "u013", "u014"], "first", replications=5)
    spec["refute"] = [{"placebo_in_time": {"simulations": 3, "min_pre": 3}}, {"leave_one_donor_out": {}}]
    (tmp_path / "plots").mkdir()
    res = invoke(runner, ["estimate", _write(tmp_path, spec), "--format", "json", "--plots", str(tmp_path / "plots")])
    assert res.exit_code in (0, 1), res.stderr  # 1: a refuter's check failed, which this test does not judge
    out = json.loads(res.stdout)
    assert [e["label"] for e in out["effects"]][:2] == ["cohort 6", "cohort 8"]
    assert out["n"]["control"] == 13 and not out["warnings"]
    assert {r["name"] for r in out["refutations"]} == {"placebo_in_time", "leave_one_donor_out"}
    assert [p.name for p in (tmp_path / "plots").iterdir()] == ["sdid-multi-event_study.png"]


def test_staggered_placebo_does_not_depend_on_the_workers(monkeypatch):
    from causalcli.inference import synthdid_staggered as staggered  # the numerics, shared with did's all

    monkeypatch.setattr(staggered, "PARALLEL_FROM", 2)
    df = _factor_panel(5, n_units=14, periods=9, adoption={10: 5, 11: 5, 12: 7}, effects={5: 1.0, 7: 2.0})
    Y = df.pivot(index="unit", columns="period", values="y").to_numpy()
    t0s = np.array([5, 5, 7])
    base = staggered.estimate(Y, 11, t0s, "sdid", 4)
    one, _ = staggered.replicates(Y, 11, t0s, base, "placebo", 4, 3, "sdid", jobs=1)
    two, _ = staggered.replicates(Y, 11, t0s, base, "placebo", 4, 3, "sdid", jobs=2)
    assert one.tobytes() == two.tobytes()


def test_several_treated_units_plot_their_mean(runner, tmp_path):
    df = _factor_panel(6, n_units=12, periods=8, adoption={9: 6, 10: 6}, effects={6: 1.0})
    df.to_csv(tmp_path / "panel.csv", index=False)
    spec = _spec(tmp_path / "panel.csv", ["u009", "u010"], 6, se="jackknife")
    (tmp_path / "plots").mkdir()
    res = invoke(runner, ["estimate", _write(tmp_path, spec), "--plots", str(tmp_path / "plots")])
    assert res.exit_code in (0, 1), res.stderr
    assert (tmp_path / "plots" / "sdid-multi-sdid.png").read_bytes()[:4] == b"\x89PNG"


@pytest.mark.parametrize("method", ["placebo", "bootstrap", "jackknife"])
def test_one_cohort_is_the_common_start_estimator(method):
    """Staggered with a single cohort is synthdid with N1 > 1: estimate, and the SE on the same draws."""
    from causalcli.designs.synthetic_control import staggered
    from causalcli.inference import synthdid_se
    from causalcli.models import synthdid_weights as sw

    df = _factor_panel(7, n_units=14, periods=9, adoption={11: 6, 12: 6, 13: 6}, effects={6: 1.0})
    Y = df.pivot(index="unit", columns="period", values="y").to_numpy()
    t0s = np.array([6, 6, 6])
    base = staggered.estimate(Y, 11, t0s, "sdid", 3)
    rows, _ = staggered.replicates(Y, 11, t0s, base, method, 6, 5, "sdid")
    common = sw.fit(Y, 11, 6)
    reps = (synthdid_se.jackknife(Y, 11, common) if method == "jackknife"
            else getattr(synthdid_se, method)(Y, 11, common, 6, 5))
    assert abs(base.estimate - common.estimate) < 1e-12
    np.testing.assert_allclose(rows[:, 0], reps.estimates, rtol=0, atol=1e-8)
    assert abs(staggered.standard_errors(rows, method)[0] - reps.se) < 1e-8


def test_staggered_pre_fit_check_names_its_cohort(tmp_path):
    res = _staggered_result(tmp_path, seed=1, se="jackknife")
    check = next(c for c in res["checks"] if c["name"] == "pre_fit")
    assert check["detail"].startswith("cohort ") and check["passed"] in (True, False)


def test_unlisted_adopters_are_left_out_of_the_donors_with_a_warning(tmp_path):
    df = _factor_panel(4, n_units=16, periods=10, adoption={12: 6, 13: 6, 14: 8}, effects={6: 1.0, 8: 2.0})
    df.to_csv(tmp_path / "panel.csv", index=False)
    res = run_study(_spec(tmp_path / "panel.csv", ["u012", "u013"], "first", se="jackknife"), jobs=1).to_dict()
    assert res["n"]["treated"] == 2 and res["n"]["control"] == 13
    assert any("1 unit(s) adopting in column 'first' but not in treated_unit are left out of the donors: u014" in w
               for w in res["warnings"])


@pytest.mark.parametrize("variant", ["sdid", "sc"])
def test_staggered_placebo_side_by_side_equals_one_at_a_time(variant):
    from causalcli.inference import synthdid_staggered as staggered  # the numerics, shared with did's all

    df = _factor_panel(9, n_units=15, periods=9, adoption={10: 5, 11: 5, 12: 7}, effects={5: 1.0, 7: 2.0})
    Y = df.pivot(index="unit", columns="period", values="y").to_numpy()
    t0s = np.array([5, 5, 7])
    base = staggered.estimate(Y, 12, t0s, variant, 4)
    rng = np.random.default_rng(2)
    draws = [rng.permutation(12) for _ in range(4)]
    side_by_side = staggered._placebo_side_by_side(Y, 12, t0s, base, draws, variant)
    one_at_a_time = []
    for p in draws:  # the estimate redone on the drawn donors and placebo units, from the base's weights
        s = staggered.estimate(np.vstack([Y[p[:9]], Y[p[9:]]]), 9, t0s, variant, 4, base, p[:9])
        one_at_a_time.append(staggered._vector(s, base.starts, 4))
    np.testing.assert_allclose(side_by_side, one_at_a_time, rtol=0, atol=1e-8)
