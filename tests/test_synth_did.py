"""Synthetic difference-in-differences (`estimator: synthetic_did`, issue 19 point 1).

References: Arkhangelsky, Athey, Hirshberg, Imbens and Wager (2021), AER 111(12), Table 1 (Proposition 99:
SDID -15.6, SC -19.6, DID -27.3; R synthdid prints -15.604 for SDID); diff-diff 3.13's ``SyntheticDiD``
(a port of synthdid, tested there against R) live on the same data and, for the standard errors, on the same
seeded draws (diff-diff draws permutation r as the r-th ``default_rng(seed).permutation(N0)``, as here).
"""

from __future__ import annotations

import warnings
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import yaml

from causalcli.models import synthdid_weights as sw
from causalcli.study.run import run_study
from tests.conftest import invoke
from tests.reference.sdid.naive_fw import naive_frank_wolfe

REF = Path(__file__).resolve().parent / "reference" / "sdid"
PROP99 = Path(__file__).resolve().parent / "reference" / "synth" / "prop99_smoking.csv"
R_SYNTHDID_PROP99 = -15.604  # R synthdid, synthdid_estimate on california_prop99 (the paper's Table 1: -15.6)
PAPER_SC, PAPER_DID = -19.6, -27.3  # Table 1, rows SC and DID
TABLE_TOLERANCE = 0.1  # the table prints one decimal
PEER_TOLERANCE = 1e-8  # same iterates as diff-diff's; only the order of floating-point sums differs


def _spec(**options) -> dict:
    spec = yaml.safe_load((REF / "prop99_sdid.yaml").read_text())
    spec["data"]["path"] = str(PROP99)
    spec["design"]["options"].update(options)
    return spec


def _prop99_matrix() -> tuple[np.ndarray, int, int, list[str]]:
    df = pd.read_csv(PROP99)
    wide = df.pivot(index="state", columns="year", values="cigsale")
    units = [u for u in wide.index if u != "California"] + ["California"]
    return wide.loc[units].to_numpy(), len(units) - 1, int((wide.columns < 1989).sum()), units[:-1]


def _panel(seed: int, n_units: int, n_treated: int, periods: int, pre: int) -> pd.DataFrame:
    """A factor-model panel with an effect of 1 on the last ``n_treated`` units after ``pre`` periods."""
    rng = np.random.default_rng(seed)
    F = rng.normal(size=(periods, 2)).cumsum(axis=0)
    Y = rng.normal(size=(n_units, 2)) @ F.T + rng.normal(size=(n_units, 1)) + 0.5 * rng.normal(size=(n_units, periods))
    Y[-n_treated:, pre:] += 1.0
    return pd.DataFrame({"unit": np.repeat([f"u{i:03d}" for i in range(n_units)], periods),
                         "period": np.tile(np.arange(periods), n_units), "y": Y.ravel(),
                         "treated": np.repeat((np.arange(n_units) >= n_units - n_treated).astype(int), periods)})


def _diff_diff(df: pd.DataFrame, post: list, method: str, reps: int = 200, seed: int = 0, **columns):
    from diff_diff import SyntheticDiD

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # its jackknife with one treated unit warns and gives NaN
        return SyntheticDiD(variance_method=method, n_bootstrap=reps, seed=seed).fit(
            df, post_periods=post, **columns)


@pytest.mark.parametrize("shape,zeta,intercept,with_start", [((12, 9), 0.7, True, False), ((8, 30), 2.0, True, True),
                                                            ((15, 6), 1e-3, False, False)])
def test_frank_wolfe_takes_synthdids_iterates(shape, zeta, intercept, with_start):
    """The bookkeeping of the fast solver (scaled vectors, cached vertex gradients) leaves synthdid's iterates."""
    rng = np.random.default_rng(sum(shape))
    M = rng.normal(size=shape).cumsum(axis=0)
    start = rng.dirichlet(np.ones(shape[1] - 1)) if with_start else None
    for max_iter in (1, 7, 3000):
        fast, t_fast = sw.frank_wolfe(M, zeta, intercept, start, 1e-6, max_iter)
        slow, t_slow = naive_frank_wolfe(M, zeta, intercept, start, 1e-6, max_iter)
        assert t_fast == t_slow
        np.testing.assert_allclose(fast, slow, rtol=0, atol=1e-12)


def test_prop99_reproduces_table_1_and_r_synthdid():
    from causalcli.render.plots import draw

    result = run_study(_spec(replications=2), jobs=1)
    plots = draw(result)
    assert set(plots) == {"sdid"} and plots["sdid"].startswith(b"\x89PNG")  # the ADH path and gaps do not apply
    res = result.to_dict()
    assert res["estimator"] == "synthetic_did"
    assert abs(res["estimate"]["value"] - R_SYNTHDID_PROP99) < 1e-3
    Y, N0, T0, _ = _prop99_matrix()
    assert abs(sw.fit(Y, N0, T0, "sc").estimate - PAPER_SC) < TABLE_TOLERANCE
    assert abs(sw.fit(Y, N0, T0, "did").estimate - PAPER_DID) < TABLE_TOLERANCE
    weights, time_weights = res["diagnostics"]["weights"], res["diagnostics"]["time_weights"]
    assert len(weights) == 38 and abs(sum(weights.values()) - 1) < 1e-12 and min(weights.values()) >= 0
    # the paper (Figure 1) puts the time weight on the last pre-treatment years
    assert set(k for k, w in time_weights.items() if w > 0) == {"1986", "1987", "1988"}
    assert [(c["name"], c["passed"]) for c in res["checks"]] == [("pre_fit", True)]
    effects = res["effects"]
    assert [e["label"] for e in effects] == [str(y) for y in range(1989, 2001)]
    assert abs(np.mean([e["value"] for e in effects]) - res["estimate"]["value"]) < 1e-9  # the curve averages to it


def test_variant_option_gives_the_table_rows_through_the_cli(runner, tmp_path):
    path = tmp_path / "s.yaml"
    path.write_text(yaml.safe_dump(_spec(variant="did", replications=2)))
    res = invoke(runner, ["estimate", str(path), "--format", "json"])
    assert res.exit_code == 0, res.stderr
    import json

    assert abs(json.loads(res.stdout)["estimate"]["value"] - PAPER_DID) < TABLE_TOLERANCE


@pytest.mark.peer
def test_prop99_equals_diff_diff_estimate_and_weights():
    df = pd.read_csv(PROP99)
    df["treated"] = (df.state == "California").astype(int)
    peer = _diff_diff(df, list(range(1989, 2001)), "jackknife", outcome="cigsale", treatment="treated", unit="state",
                      time="year")
    Y, N0, T0, donors = _prop99_matrix()
    ours = sw.fit(Y, N0, T0)
    assert abs(ours.estimate - peer.att) < PEER_TOLERANCE
    np.testing.assert_allclose(ours.omega, [peer.unit_weights[u] for u in donors], atol=PEER_TOLERANCE)
    np.testing.assert_allclose(ours.lam, list(peer.time_weights.values()), atol=PEER_TOLERANCE)


@pytest.mark.peer
def test_jackknife_se_with_several_treated_units_equals_diff_diff():
    from causalcli.inference.synthdid_se import jackknife

    df = _panel(3, n_units=16, n_treated=3, periods=8, pre=6)
    peer = _diff_diff(df, [6, 7], "jackknife", outcome="y", treatment="treated", unit="unit", time="period")
    Y = df.pivot(index="unit", columns="period", values="y").to_numpy()  # treated units last already
    base = sw.fit(Y, 13, 6)
    assert abs(base.estimate - peer.att) < PEER_TOLERANCE
    assert abs(jackknife(Y, 13, base).se - peer.se) < PEER_TOLERANCE


@pytest.mark.slow
@pytest.mark.peer
@pytest.mark.parametrize("method", ["placebo", "bootstrap"])
def test_placebo_and_bootstrap_se_equal_diff_diff_on_the_same_draws(method):
    from causalcli.inference import synthdid_se

    df = _panel(5, n_units=24, n_treated=3, periods=10, pre=7)
    peer = _diff_diff(df, [7, 8, 9], method, reps=60, seed=11, outcome="y", treatment="treated", unit="unit",
                      time="period")
    Y = df.pivot(index="unit", columns="period", values="y").to_numpy()
    base = sw.fit(Y, 21, 7)
    reps = getattr(synthdid_se, method)(Y, 21, base, 60, 11, jobs=2)
    assert abs(reps.se - peer.se) < 1e-6 * peer.se


@pytest.mark.slow
@pytest.mark.peer
def test_prop99_placebo_se_equals_diff_diff():
    """200 placebo replications, seed 0: the same draws as diff-diff's, so the same SE (10.28 on Prop 99;
    Monte Carlo error of an SE from 200 draws is about 5%)."""
    df = pd.read_csv(PROP99)
    df["treated"] = (df.state == "California").astype(int)
    peer = _diff_diff(df, list(range(1989, 2001)), "placebo", outcome="cigsale", treatment="treated", unit="state",
                      time="year")
    res = run_study(_spec(), jobs=2).to_dict()
    assert abs(res["estimate"]["std_error"] - peer.se) < 1e-6 * peer.se


@pytest.mark.parametrize("variant", ["sdid", "sc"])
def test_placebo_weights_solved_side_by_side_equal_one_at_a_time(variant):
    from causalcli.inference import synthdid_se

    Y = _panel(8, n_units=14, n_treated=2, periods=9, pre=6).pivot(index="unit", columns="period", values="y")
    Y = Y.to_numpy()
    base = sw.fit(Y, 12, 6, variant)
    rng = np.random.default_rng(4)
    perms = [rng.permutation(12) for _ in range(3)]
    one_at_a_time = [synthdid_se._placebo_one(Y[:12], 2, p, base) for p in perms]
    side_by_side = synthdid_se._placebo_batch(Y[:12], 2, perms, base)
    np.testing.assert_allclose(side_by_side, one_at_a_time, rtol=0, atol=1e-9)


def test_placebo_draws_do_not_depend_on_the_workers(monkeypatch):
    from causalcli.inference import synthdid_se

    monkeypatch.setattr(synthdid_se, "PARALLEL_FROM", 2)
    Y = _panel(7, n_units=12, n_treated=1, periods=7, pre=5).pivot(index="unit", columns="period", values="y")
    Y = Y.to_numpy()
    base = sw.fit(Y, 11, 5)
    one = synthdid_se.placebo(Y, 11, base, 4, seed=3, jobs=1)
    two = synthdid_se.placebo(Y, 11, base, 4, seed=3, jobs=2)
    assert one.estimates.tobytes() == two.estimates.tobytes() and one.se == two.se


BAD_SPEC = [
    ({"options": {"se": "jackknife"}}, "jackknife standard errors need at least two treated units"),
    ({"options": {"se": "bootstrap"}}, "bootstrap standard errors need at least two treated units"),
    ({"predictors": ["beer"]}, "estimator: synthetic_did weights units and periods on the outcome path alone"),
    ({"options": {"v": "equal"}}, "design.options.v belongs to estimator: synthetic_control"),
    ({"estimator": "synthetic_control", "predictors": ["beer"], "options": {"se": "placebo"}},
     "design.options.se is an option of estimator: synthetic_did"),
]


@pytest.mark.parametrize("change,message", BAD_SPEC)
def test_bad_spec_exits_2_in_one_line(runner, tmp_path, change, message):
    spec = _spec()
    options = change.pop("options", {})
    spec["design"].update(change)
    spec["design"]["options"] = options
    path = tmp_path / "s.yaml"
    path.write_text(yaml.safe_dump(spec))
    res = invoke(runner, ["estimate", str(path)])
    assert res.exit_code == 2, res.stderr
    assert message in res.stderr and len(res.stderr.strip().splitlines()) == 1


def test_panel_too_short_for_time_weights_exits_3(runner, tmp_path):
    spec = _spec()
    spec["design"]["treatment_start"] = 1971
    path = tmp_path / "s.yaml"
    path.write_text(yaml.safe_dump(spec))
    res = invoke(runner, ["estimate", str(path)])
    assert res.exit_code == 3, res.stderr
    assert "too few pre-periods: 1 before treatment_start 1971, at least 2 needed for synthetic DiD's time weights" \
        in res.stderr and len(res.stderr.strip().splitlines()) == 1


def test_placebo_time_weights_side_by_side_equal_one_draw_at_a_time(monkeypatch):
    """The placebo draws' time weights solved side by side are each draw's own Frank-Wolfe solution
    (to rounding), and splitting the draws into chunks changes no number."""
    from causalcli.models import synthdid_weights as sw

    rng = np.random.default_rng(0)
    N0, T, T0, n1 = 40, 12, 8, 3
    Y = rng.normal(size=(N0, T)).cumsum(axis=1) + rng.normal(size=(N0, 1))
    fit = sw.fit(np.vstack([Y, Y[:n1] + 1.0]), N0, T0)
    perms = [rng.permutation(N0) for _ in range(30)]
    n0 = N0 - n1
    one = np.vstack([sw.time_weights(sw.collapsed(Y[p], n0, T0), n0, T0, fit.tuning, fit.lam)[0] for p in perms])
    side_by_side = sw.placebo_time_weights(Y, [p[:n0] for p in perms], T0, fit.tuning, fit.lam)
    assert np.abs(one - side_by_side).max() < 1e-10
    monkeypatch.setattr(sw, "BATCH_MAX_CELLS", 4 * n0 * (T0 + 1))
    assert np.array_equal(sw.placebo_time_weights(Y, [p[:n0] for p in perms], T0, fit.tuning, fit.lam), side_by_side)
