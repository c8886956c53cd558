"""`estimator: all` under did: every estimator on the same panel, side by side (issue 19, point 4).

The comparison calls each estimator's own code on the shared panel, so its numbers must be those of the single
runs exactly (==, not approximately); an estimator that cannot run is left out with its reason.
"""

from __future__ import annotations

from dataclasses import asdict

import numpy as np
import pytest

from causalcli.study.run import run_study
from tests.conftest import invoke
from tests.test_did_staggered import mpdta_spec, spec, staggered_panel
from tests.test_synth_did_staggered import _factor_panel

FIELDS = ("value", "std_error", "ci_lower", "ci_upper", "p_value", "inference")


def same(a, b) -> bool:
    return all(getattr(a, f) == getattr(b, f) for f in FIELDS)


@pytest.fixture(scope="module")
def mpdta_all():
    return run_study(mpdta_spec("all"))


def test_mpdta_every_effect_equals_its_single_run(mpdta_all):
    effects = {e.label: e for e in mpdta_all.effects}
    twfe_event_study = mpdta_spec("twfe")
    twfe_event_study["design"]["event_study"] = {"leads": 4, "lags": 3}  # the panel's every relative period
    singles = {"twfe": run_study(mpdta_spec("twfe")), "callaway_santanna": run_study(mpdta_spec("callaway_santanna")),
               "imputation": run_study(mpdta_spec("imputation")), "sun_abraham": run_study(mpdta_spec("sun_abraham"))}
    dynamic = {**singles, "twfe": run_study(twfe_event_study)}
    for name, single in singles.items():
        assert same(effects.pop(f"{name}/att"), single.estimate), name
        for e in dynamic[name].effects:
            assert same(effects.pop(f"{name}/{e.label}"), e), (name, e.label)
    assert effects == {}  # nothing else, and nothing missing from either side
    # the headline is Callaway-Sant'Anna's, with its checks; its inference names it
    cs = singles["callaway_santanna"]
    assert mpdta_all.estimator == "all" and same(mpdta_all.estimate, cs.estimate)
    assert mpdta_all.estimate.inference == "cs_analytic"
    assert [asdict(c) for c in mpdta_all.checks] == [asdict(c) for c in cs.checks]
    comparison = mpdta_all.diagnostics["comparison"]
    assert comparison["headline"] == "callaway_santanna"
    assert comparison["estimators"]["imputation"]["estimate"] == singles["imputation"].estimate.value
    assert comparison["spread"]["lowest"] == "imputation" and comparison["spread"]["highest"] == "twfe"
    assert "191 treated units" in comparison["left_out"]["synthetic_did"]


def test_the_event_study_plot_shows_every_estimator(mpdta_all):
    from causalcli.designs.did.plots import PLOTS

    png = PLOTS["event_study"](mpdta_all)
    assert png is not None and png.startswith(b"\x89PNG")


def test_headline_option_and_refuters_follow_the_headline(tmp_path):
    """options.headline picks the estimate; the default refuters run on it as in its single run."""
    df = staggered_panel(120, periods=6, covariate=False)
    df.to_csv(tmp_path / "p.csv", index=False)
    refute = {"refute": [{"placebo_treatment": {"simulations": 5}}, {"data_subset": {"simulations": 3}}]}
    both = spec(tmp_path / "p.csv", "all", honest_did=False, **refute)
    both["design"]["options"]["headline"] = "imputation"
    res = run_study(both)
    alone = run_study(spec(tmp_path / "p.csv", "imputation", honest_did=False, **refute))
    assert same(res.estimate, alone.estimate)
    assert res.diagnostics["comparison"]["headline"] == "imputation"
    assert [asdict(r) for r in res.refutations] == [asdict(r) for r in alone.refutations]


def test_an_estimator_that_cannot_run_is_left_out_with_its_reason(tmp_path):
    """No never-treated unit: Sun-Abraham, Callaway-Sant'Anna with never-treated controls, synthetic DiD and the
    fully dynamic TWFE event study cannot run; the others still report, and the headline falls back."""
    df = staggered_panel(60, periods=10, covariate=False)
    df["g"] = np.where(df.g > 0, df.g, 9)
    df.to_csv(tmp_path / "p.csv", index=False)
    s = spec(tmp_path / "p.csv", "all", honest_did=False)
    s["design"]["options"]["headline"] = "sun_abraham"
    res = run_study(s)
    left_out = res.diagnostics["comparison"]["left_out"]
    assert set(left_out) == {"callaway_santanna", "sun_abraham", "synthetic_did", "twfe/event_time"}
    assert "never-treated units" in left_out["sun_abraham"] and "control units" in left_out["callaway_santanna"]
    assert "never-treated" in left_out["synthetic_did"] and "a linear combination" in left_out["twfe/event_time"]
    assert {e.label.split("/")[0] for e in res.effects} == {"twfe", "imputation"}
    assert any(w.startswith("sun_abraham is left out of the comparison") for w in res.warnings)
    # the requested headline cannot run: the first of callaway_santanna, imputation, ... that does
    assert res.diagnostics["comparison"]["headline"] == "imputation"
    assert any(w.startswith("the headline is imputation's overall effect: sun_abraham cannot run")
               for w in res.warnings)
    assert same(res.estimate, next(e for e in res.effects if e.label == "imputation/att"))
    assert same(res.estimate, run_study(spec(tmp_path / "p.csv", "imputation", honest_did=False)).estimate)


def test_weights_leave_out_the_estimators_that_do_not_take_them(tmp_path):
    df = staggered_panel(60, periods=6, covariate=False).assign(w=1.0)
    df.to_csv(tmp_path / "p.csv", index=False)
    res = run_study(spec(tmp_path / "p.csv", "all", honest_did=False, weights="w"))
    left_out = res.diagnostics["comparison"]["left_out"]
    assert set(left_out) == {"imputation", "sun_abraham", "synthetic_did"}
    assert all("weights" in left_out[k] for k in left_out)
    assert res.diagnostics["comparison"]["headline"] == "callaway_santanna"


@pytest.mark.parametrize("adoption", [{8: 5, 9: 5, 10: 6}, {8: 5, 9: 5}], ids=["staggered", "block"])
def test_few_treated_units_add_synthetic_did_equal_to_the_synthetic_control_family(tmp_path, monkeypatch, adoption):
    """Synthetic DiD through did's comparison equals method: synthetic_control's on the same data (several
    cohorts, and one block): the same shared numerics, the same placebo draws (4 here; 200, synthdid's default,
    in use). A small panel on which synthdid's Frank-Wolfe iterations stop early: they often run to their
    10,000-step limit, which would cost seconds."""
    from causalcli.designs.did import synthetic_did

    monkeypatch.setattr(synthetic_did, "REPLICATIONS", 4)
    df = _factor_panel(3, n_units=8 + len(adoption), periods=8, adoption=adoption, effects={5: 1.0, 6: 2.0},
                       noise=1.0)
    df.to_csv(tmp_path / "p.csv", index=False)
    ours = spec(tmp_path / "p.csv", "all", unit="unit", time="period", cohort="first", honest_did=False)
    ours["design"]["options"]["draws"] = 99  # few clusters: the others' bootstrap and permutations, kept short
    ours = run_study(ours)
    theirs = run_study({"version": 1, "data": {"path": str(tmp_path / "p.csv")}, "outcome": "y", "refute": [],
                        "design": {"method": "synthetic_control", "estimator": "synthetic_did", "unit": "unit",
                                   "time": "period", "treated_unit": [f"u{i:03d}" for i in adoption],
                                   "treatment_start": "first" if len(set(adoption.values())) > 1 else 5,
                                   "options": {"se": "placebo", "replications": 4}}}, jobs=1)
    effects = {e.label: e for e in ours.effects}
    sdid = effects["synthetic_did/att"]
    assert sdid.value == pytest.approx(theirs.estimate.value, abs=1e-12)
    assert sdid.std_error == pytest.approx(theirs.estimate.std_error, rel=1e-9)
    assert sdid.inference == theirs.estimate.inference
    if len(set(adoption.values())) > 1:
        by_label = {e.label: e for e in theirs.effects}
        for e in range(3):  # event times 0..2: the first cohort's post-periods
            assert effects[f"synthetic_did/event_time={e}"].value == pytest.approx(
                by_label[f"event time {e}"].value, abs=1e-12)
    assert "synthetic_did" not in ours.diagnostics["comparison"]["left_out"]


def test_headline_outside_estimator_all_is_a_spec_error(runner, tmp_path, write_spec):
    df = staggered_panel(60, periods=6, covariate=False)
    df.to_csv(tmp_path / "p.csv", index=False)
    s = spec("p.csv", "imputation")
    s["design"]["options"]["headline"] = "twfe"
    res = invoke(runner, ["estimate", str(write_spec(s))])
    assert res.exit_code == 2 and "design.options.headline" in res.stderr and "estimator: all" in res.stderr


def test_options_go_to_the_estimators_that_take_them(tmp_path):
    """Options one estimator refuses (exit 2 alone) go to those that take them; each number is still that
    estimator's single run with its options."""
    df = staggered_panel(60, periods=6, covariate=False)
    df.to_csv(tmp_path / "p.csv", index=False)

    def run(estimator, **options):
        s = spec(tmp_path / "p.csv", estimator, honest_did=False)
        s["design"]["options"].update(options)
        if estimator in ("all", "twfe"):
            s["design"]["event_study"] = {"leads": 2, "lags": 2}
        return run_study(s)

    res = run("all", bootstrap="wild", control_group="not_yet_treated", aggregation="dynamic", draws=99)
    effects = {e.label: e for e in res.effects}
    cs = run("callaway_santanna", control_group="not_yet_treated", aggregation="dynamic", draws=99)
    assert same(effects["callaway_santanna/att"], cs.estimate) and same(res.estimate, cs.estimate)
    twfe = run("twfe", bootstrap="wild", draws=99)  # the event study: wild bootstrap p-values and intervals
    assert all(same(effects[f"twfe/{e.label}"], e) for e in twfe.effects)
    assert effects["twfe/event_time=<=-2"].inference.startswith("wild_cluster_bootstrap")
    imputation = run("imputation")
    assert same(effects["imputation/att"], imputation.estimate)


def test_the_event_study_plot_says_callaway_santannas_pre_periods_are_one_period_changes(mpdta_all):
    """Castle doctrine under estimator: all: Callaway-Sant'Anna's pre-periods (varying base period) are one-period
    changes, drawn beside the others' levels against -1 with nothing telling them apart; the legend says so, and
    not with base_period: universal, whose pre-periods are levels too."""
    import copy

    from causalcli.designs.did.plots import comparison_label

    cs = [e for e in mpdta_all.effects if e.label.startswith("callaway_santanna/event_time=")]
    periods = [float(e.label.rsplit("=", 1)[1]) for e in cs]
    assert mpdta_all.diagnostics["callaway_santanna"]["base_period"] == "varying" and min(periods) < 0
    varying = comparison_label(mpdta_all, "callaway_santanna", mpdta_all.estimate, periods)
    assert "pre-periods: one-period changes" in varying
    assert "one-period" not in comparison_label(mpdta_all, "sun_abraham", None, periods)
    universal = copy.deepcopy(mpdta_all)
    universal.diagnostics["callaway_santanna"]["base_period"] = "universal"
    assert "one-period" not in comparison_label(universal, "callaway_santanna", mpdta_all.estimate, periods)
