"""Synthetic control: the inner QP and outer gradient, simulated truths, conformal inference, bad input,
refuters and the augmented estimator.

The comparisons with the published studies (Abadie, Diamond and Hainmueller 2010 and 2015; Abadie and
Gardeazabal 2003) and with pysyncon are in tests/reference/synth/; this file uses their data for bad input
and options.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import yaml

from causalcli.study.run import as_loaded, prepare_study, run_study
from tests.conftest import invoke, run_json
from tests.reference.synth.studies import REF, fitted, prepared, spec_of


@pytest.fixture(scope="module")
def prop99():
    return fitted("prop99")


# ---------------------------------------------------------------- the inner QP and the outer gradient


def test_simplex_qp_is_exact_against_kkt_and_slsqp():
    """The active-set solution satisfies the KKT conditions and is no worse than SLSQP's."""
    from scipy.optimize import minimize

    from causalcli.models.synthetic_weights import simplex_ls

    rng = np.random.default_rng(3)
    for trial in range(30):
        k, J = rng.integers(2, 9), rng.integers(3, 40)
        A = rng.normal(size=(k, J))
        b = rng.normal(size=k) * rng.uniform(0.2, 3)
        f = simplex_ls(A.T @ A, A.T @ b, float(b @ b))
        w = f.w
        assert w.min() >= 0 and w.sum() == pytest.approx(1.0, abs=1e-12)
        g = A.T @ (A @ w - b)
        mu = g[w > 0].mean()
        # KKT: equal gradients on the support, no smaller gradient off it (1e-8: float round-off)
        assert np.all(np.abs(g[w > 0] - mu) < 1e-8 * max(1, np.abs(g).max()))
        assert np.all(g[w == 0] >= mu - 1e-8 * max(1, np.abs(g).max()))
        ref = minimize(lambda x: 0.5 * np.sum((A @ x - b) ** 2), np.full(J, 1 / J), method="SLSQP",
                       bounds=[(0, 1)] * J, constraints=[{"type": "eq", "fun": lambda x: x.sum() - 1}],
                       options={"ftol": 1e-14, "maxiter": 1000})
        assert f.loss <= ref.fun + 1e-9


def test_outer_gradient_matches_finite_differences():
    from causalcli.models.synthetic_weights import _loss_and_grad_softmax

    rng = np.random.default_rng(5)
    k, J, T0 = 5, 12, 15
    X0 = rng.normal(size=(k, J))
    X1 = X0 @ rng.dirichlet(np.ones(J)) + rng.normal(scale=0.5, size=k)
    Z0 = rng.normal(size=(T0, J)).cumsum(axis=0)
    Z1 = Z0 @ rng.dirichlet(np.ones(J)) + rng.normal(scale=0.3, size=T0)
    theta = rng.normal(size=k)
    loss, grad, _ = _loss_and_grad_softmax(theta, X1, X0, Z1, Z0)
    h = 1e-6
    fd = np.array([(_loss_and_grad_softmax(theta + h * e, X1, X0, Z1, Z0)[0]
                    - _loss_and_grad_softmax(theta - h * e, X1, X0, Z1, Z0)[0]) / (2 * h) for e in np.eye(k)])
    # central differences: error O(h^2) relative; the active set does not change within +-h here
    assert np.allclose(grad, fd, rtol=1e-4, atol=1e-7 * max(1.0, abs(loss)))


# ---------------------------------------------------------------- options on the reference studies' data


def test_placebo_in_time_with_cross_validated_v_draws_starts_it_can_fit():
    """Fake starts come after the first validation period, so every refit runs the whole procedure."""
    spec = spec_of("germany_cv", conformal=False)
    spec["refute"] = [{"placebo_in_time": {"simulations": 6, "min_pre": 5}}]
    res = run_study(spec, jobs=1)
    r = res.refutations[0]
    assert r.name == "placebo_in_time" and r.new_effect is not None
    # 0 of 6 fake starts as large: p = 1/7 is the best possible, above alpha = 0.05, so not judged (RULES)
    assert "could not be estimated" not in r.detail and r.passed is None and "too few fake starts" in r.detail


def test_basque_excluded_donor_is_not_used():
    d = prepared("basque")
    assert "Spain (Espana)" not in d.units and d.units[0] == "Basque Country (Pais Vasco)" and len(d.units) == 17


# ---------------------------------------------------------------- simulated truth


def factor_panel(seed: int, effect: float, units: int = 30, periods: int = 30, start: int = 20):
    """Outcomes from a two-factor model; the treated unit is a convex mix of donors' loadings."""
    rng = np.random.default_rng(seed)
    f = np.column_stack([np.linspace(0, 3, periods), np.sin(np.arange(periods) / 3)])
    load = rng.uniform(0.5, 2.0, size=(units, 2))
    load[0] = 0.5 * load[1] + 0.3 * load[2] + 0.2 * load[3]
    y = 10 + load @ f.T + rng.normal(scale=0.1, size=(units, periods))
    y[0, start:] += effect
    rows = []
    for i in range(units):
        for t in range(periods):
            rows.append({"unit": f"u{i}", "t": 2000 + t, "y": y[i, t], "x": load[i, 0] + rng.normal(scale=0.01)})
    return rows


def test_simulated_known_effect_is_recovered(tmp_path):
    import pandas as pd

    pd.DataFrame(factor_panel(1, effect=3.0)).to_csv(tmp_path / "p.csv", index=False)
    spec = {"data": {"path": str(tmp_path / "p.csv")}, "outcome": "y", "refute": [],
            "design": {"method": "synthetic_control", "unit": "unit", "time": "t", "treated_unit": "u0",
                       "treatment_start": 2020, "predictors": ["x"],
                       "special_predictors": [["y", 2005], ["y", 2010], ["y", 2015], ["y", 2019]]}}
    res = run_study(spec, jobs=1)
    # noise SD 0.1 per period: the mean of 10 post gaps is within 0.2 of the truth unless the fit is off
    assert res.estimate.value == pytest.approx(3.0, abs=0.2)
    assert res.estimate.p_value == pytest.approx(1 / 30)
    assert res.estimate.ci_lower < 3.0 < res.estimate.ci_upper
    assert res.checks[0].passed


def factor_spec(path, start: int = 2020, **options) -> dict:
    specials = [["y", t] for t in (2000, 2002, 2005, 2007, 2010, 2015, 2019) if t < start]
    predictors = {} if options.get("augmented") else {"predictors": ["x"], "special_predictors": specials}
    return {"data": {"path": str(path)}, "outcome": "y", "refute": [],
            "design": {"method": "synthetic_control", "unit": "unit", "time": "t", "treated_unit": "u0",
                       "treatment_start": start, **predictors, "options": options}}


def prepared_fit(spec: dict):
    """The prepared SynthData of a spec and the treated unit's fit, as the design's ``fit`` makes them."""
    from causalcli.designs.synthetic_control.panel import fit_unit

    loaded = as_loaded(spec)
    p = prepare_study(loaded)
    d = p.design.prepare(loaded.study, p.table, p.identification, loaded)
    return d, fit_unit(d, 0, np.arange(1, len(d.units)))


@pytest.mark.parametrize("augmented", [None, "ridge"])
def test_conformal_interval_endpoints_sit_at_the_alpha_boundary(tmp_path, augmented):
    """Test inversion: the conformal p-value is > alpha at the reported endpoints and <= alpha just outside.

    The endpoints come from a grid then 30 bisection steps (a grid step / 1e9), so a step of 1e-6 of the
    interval's width lands outside; the same holds for the per-period intervals (their own p-value).
    The study's JSON reports exactly these intervals, and names the refit they belong to. With the
    ridge-augmented refit on this trending panel the mean-effect test accepts nulls far from the truth
    (the interval is reported unbounded, as null): only its per-period intervals are checked.
    """
    import pandas as pd

    from causalcli.designs.synthetic_control.conformal import conformal_intervals, mean_effect_pvalue, period_pvalue

    pd.DataFrame(factor_panel(4, effect=2.0)).to_csv(tmp_path / "p.csv", index=False)
    opts = {"augmented": augmented} if augmented else {}
    d, f = prepared_fit(factor_spec(tmp_path / "p.csv", **opts))
    alpha = 0.05
    conf = conformal_intervals(d, f, alpha)
    if not augmented:
        lo, hi = conf.average
        p = mean_effect_pvalue(d, f)
        eps = 1e-6 * (hi - lo)
        assert lo < hi
        assert p(lo) > alpha and p(hi) > alpha
        assert p(lo - eps) <= alpha and p(hi + eps) <= alpha
    else:
        lo, hi = None, None
        assert "unbounded" in conf.note
    for k in (0, 4, 9):
        plo, phi = conf.periods[k]
        pk = period_pvalue(d, f, k)
        e = 1e-6 * (phi - plo)
        assert pk(plo) > alpha and pk(phi) > alpha
        assert pk(plo - e) <= alpha and pk(phi + e) <= alpha
    res = run_study(factor_spec(tmp_path / "p.csv", **opts), jobs=1)
    assert (res.estimate.ci_lower, res.estimate.ci_upper) == (lo, hi)
    assert ("conformal_cwz" in res.estimate.inference) is (lo is not None)
    assert all("conformal_cwz" in e.inference for e in res.effects)
    c = res.diagnostics["conformal"]
    assert c["estimate_fit"] == res.diagnostics["fit"]["estimator"]
    if augmented:
        assert c["interval_fit"] == "outcome_path_ridge_augmented" and c["interval_fit_is_estimate_fit"] is True
    else:
        assert c["interval_fit"] == "outcome_path_simplex" and c["interval_fit_is_estimate_fit"] is False


def test_no_conformal_interval_with_fewer_than_one_over_alpha_periods(runner, tmp_path):
    """p-values move in steps of 1/T: with 15 periods (< 1/0.05) no mean-effect interval; with 25 periods and
    15 pre-periods the mean-effect interval exists but the per-period ones (16 periods each) do not."""
    import pandas as pd

    pd.DataFrame(factor_panel(5, effect=2.0, periods=15, start=10)).to_csv(tmp_path / "p.csv", index=False)
    code, payload, res = run_json(runner, [str(_write(tmp_path, factor_spec("p.csv", start=2010)))])
    assert code == 0, res.stderr
    est = payload["estimate"]
    assert est["ci_lower"] is None and est["ci_upper"] is None and est["std_error"] is None
    assert "conformal" not in est["inference"]
    note = payload["diagnostics"]["conformal"]["note"]
    assert "the mean-effect interval needs at least 20 periods for level 0.95; the panel has 15" in note
    assert "per-period intervals need at least 19 pre-periods for level 0.95; there are 10" in note
    assert payload["diagnostics"]["conformal"]["average"] is None
    assert all(e["ci_lower"] is None and e["ci_upper"] is None for e in payload["effects"])

    pd.DataFrame(factor_panel(5, effect=2.0, periods=25, start=15)).to_csv(tmp_path / "p.csv", index=False)
    code, payload, res = run_json(runner, [str(_write(tmp_path, factor_spec("p.csv", start=2015)))])
    assert code == 0, res.stderr
    assert payload["estimate"]["ci_lower"] < payload["estimate"]["value"] < payload["estimate"]["ci_upper"]
    assert payload["diagnostics"]["conformal"]["note"] == (
        "per-period intervals need at least 19 pre-periods for level 0.95; there are 15")
    assert all(e["ci_lower"] is None for e in payload["effects"])


def stationary_factor_panel(seed: int, effect: float, units: int = 20, periods: int = 30, start: int = 20):
    """Two stationary N(0, 1) factors, unit noise SD 1; the treated unit's loadings are a convex mix of donors'."""
    import pandas as pd

    rng = np.random.default_rng(seed)
    f = rng.normal(size=(periods, 2))
    load = rng.uniform(0.5, 2.0, size=(units, 2))
    load[0] = 0.5 * load[1] + 0.3 * load[2] + 0.2 * load[3]
    y = 10 + load @ f.T + rng.normal(size=(units, periods))
    y[0, start:] += effect
    return pd.DataFrame([{"unit": f"u{i}", "t": 2000 + t, "y": y[i, t]} for i in range(units) for t in range(periods)])


def conformal_coverage(tmp_path, reps: int, effect: float = 3.0, off: float = 4.0) -> tuple[float, float, float]:
    """Share of simulated panels whose mean-effect interval covers the truth, covers truth +/- ``off``,
    and the mean width (equal V on ten pre-period outcomes: the ADH fit without nesting, to be quick)."""
    from causalcli.designs.synthetic_control.conformal import conformal_intervals

    cover = shifted = 0
    widths = []
    for r in range(reps):
        stationary_factor_panel(1000 + r, effect).to_csv(tmp_path / "c.csv", index=False)
        spec = factor_spec(tmp_path / "c.csv", v="equal")
        spec["design"].update(predictors=[], special_predictors=[["y", 2000 + k] for k in range(0, 20, 2)])
        d, f = prepared_fit(spec)
        lo, hi = conformal_intervals(d, f, 0.05).average
        cover += lo < effect < hi
        shifted += (lo < effect - off < hi) or (lo < effect + off < hi)
        widths.append(hi - lo)
    return cover / reps, shifted / reps, float(np.mean(widths))


@pytest.mark.slow  # a statistical check of size or coverage over many draws (make test-slow)
def test_conformal_mean_effect_interval_covers_in_repeated_panels_short(tmp_path):
    """12 panels (a quick version of the slow test below): the 95% interval covers the truth in at least 10
    (P(fewer) = 2% at 95% coverage), yet excludes truth +/- 4 (4 noise SDs) in at least 9, so an interval
    made wide to cover everything fails."""
    cover, shifted, width = conformal_coverage(tmp_path, 12)
    assert cover >= 10 / 12
    assert shifted <= 3 / 12
    assert width < 8.0


@pytest.mark.slow
def test_conformal_mean_effect_interval_covers_at_its_nominal_rate(tmp_path):
    """200 panels: the CWZ test is exact when the refit residuals are exchangeable, with p-values in steps of
    1/30 (so coverage near 1 - 1/30 = 0.967); 3 binomial SEs (0.015) below 0.95 is 0.905. Power: truth +/- 4
    noise SDs is covered in at most 20% (we saw about 8%)."""
    cover, shifted, width = conformal_coverage(tmp_path, 200)
    assert 0.905 <= cover <= 0.995
    assert shifted <= 0.2


def test_poor_pre_period_fit_fails_the_study_with_exit_1(runner, tmp_path):
    """The treated unit's outcome tripled: it lies above every donor, so no convex combination tracks it and
    pre-RMSPE / mean |outcome| is far above thresholds.pre_fit (0.1); the same panel unscaled passes."""
    import pandas as pd

    df = pd.DataFrame(factor_panel(6, effect=2.0))
    df.to_csv(tmp_path / "ok.csv", index=False)
    df.loc[df.unit == "u0", "y"] *= 3.0
    df.to_csv(tmp_path / "p.csv", index=False)
    code, payload, res = run_json(runner, [str(_write(tmp_path, factor_spec("ok.csv", conformal=False)))])
    assert code == 0, res.stderr
    assert [c for c in payload["checks"] if c["name"] == "pre_fit"][0]["passed"] is True
    code, payload, res = run_json(runner, [str(_write(tmp_path, factor_spec("p.csv", conformal=False)))])
    assert code == 1
    check = [c for c in payload["checks"] if c["name"] == "pre_fit"][0]
    assert check["passed"] is False
    assert payload["diagnostics"]["pre_fit_ratio"] > payload["diagnostics"]["pre_fit_threshold"] == 0.1
    assert f"{payload['diagnostics']['pre_fit_ratio']:.1%} of the treated unit's mean |outcome|" in check["detail"]
    assert "(> 10% allowed)" in check["detail"]
    assert "the synthetic unit does not track the treated unit before treatment" in check["detail"]
    # the synthetic unit cannot exceed the largest donor: it stays below the tripled treated path
    path = payload["diagnostics"]["path"]
    assert all(s < t for s, t in zip(path["synthetic"], path["treated"]))
    # the human-readable output names the failed check too
    text = invoke(runner, ["estimate", str(tmp_path / "s.yaml")])
    assert text.exit_code == 1 and "pre_fit" in text.stdout + text.stderr


def test_failed_pre_fit_without_outcome_predictors_advises_them(tmp_path):
    """causaldata's texas with init's predictors (covariates, none of them bmprison) fit the pre-period to 39% of
    the level, and the check advised "add predictors or donors, or use augmented: ridge" (refused beside
    predictors). Without the outcome among the special predictors the advice names them, with the last
    pre-period; with them, it asks for more predictors or donors."""
    import pandas as pd

    df = pd.DataFrame(factor_panel(6, effect=2.0))
    df.loc[df.unit == "u0", "y"] *= 3.0
    df.to_csv(tmp_path / "p.csv", index=False)
    covariates_only = factor_spec(tmp_path / "p.csv", conformal=False)
    del covariates_only["design"]["special_predictors"]
    check = run_study(covariates_only, jobs=1).checks[0]
    assert check.name == "pre_fit" and check.passed is False
    assert "add the outcome's pre-period values as special_predictors (e.g. [y, 2019]" in check.detail
    assert "remove predictors and use augmented: ridge" in check.detail
    check = run_study(factor_spec(tmp_path / "p.csv", conformal=False), jobs=1).checks[0]
    assert check.passed is False and "special_predictors" not in check.detail
    assert "add predictors or donors" in check.detail


# ---------------------------------------------------------------- CLI, bad input, determinism


def _write(tmp_path, spec: dict) -> Path:
    path = tmp_path / "s.yaml"
    path.write_text(yaml.safe_dump(spec, sort_keys=False))
    return path


BAD = [
    ({"treated_unit": "Atlantis"}, "treated unit 'Atlantis' not found"),
    ({"treatment_start": 2050}, "treatment_start 2050 is not a period"),
    ({"treatment_start": 1971}, "too few pre-periods: 1"),
    ({"predictors": ["lnincome", "beer"], "options": {"predictors_window": [1970, 1983]}},
     "predictor 'beer' has no value for treated unit 'California'"),
    ({"options": {"donors": {"include": ["Utah"]}}}, "donor pool has 1 unit"),
    ({"options": {"donors": {"exclude": ["Narnia"]}}}, "donor unit(s) not found"),
]


@pytest.mark.parametrize("change,message", BAD)
def test_bad_input_exits_3_naming_what_is_missing(runner, tmp_path, change, message):
    spec = spec_of("prop99")
    spec["design"].update(change)
    res = invoke(runner, ["estimate", str(_write(tmp_path, spec)), "--format", "json"])
    assert res.exit_code == 3, res.stderr
    assert message in res.stderr and len(res.stderr.strip().splitlines()) == 1


CV_BAD_SPEC = [
    ({"v": "cross_validated"}, "v: cross_validated needs cross_validation"),
    ({"cross_validation": {"predictors_window": [1971, 1980], "validate_window": [1981, 1989]}},
     "cross_validation is used only with v: cross_validated"),
    ({"v": "cross_validated", "cross_validation": {"predictors_window": [1971, 1980], "validate_window": [1985, 1992]}},
     "validate_window must end before treatment_start 1990"),
]


@pytest.mark.parametrize("change,message", CV_BAD_SPEC)
def test_cross_validation_spec_errors_exit_2(runner, tmp_path, change, message):
    spec = spec_of("germany")
    spec["design"]["options"].update(change)
    res = invoke(runner, ["estimate", str(_write(tmp_path, spec))])
    assert res.exit_code == 2, res.stderr
    assert message in res.stderr and len(res.stderr.strip().splitlines()) == 1


def test_cross_validation_special_predictors_must_pair_with_the_main_ones(runner, tmp_path):
    """V chosen on the training predictors weights the main ones entry by entry: a count that differs is exit 2
    (it was an internal error: 'operands could not be broadcast together')."""
    spec = spec_of("germany_cv")
    spec["design"]["options"]["cross_validation"]["special_predictors"].append(["trade", 1975])
    res = invoke(runner, ["estimate", str(_write(tmp_path, spec))])
    assert res.exit_code == 2, res.stderr
    assert "must give one entry per design.special_predictors entry (3)" in res.stderr and "found 4" in res.stderr
    assert len(res.stderr.strip().splitlines()) == 1


def test_cross_validation_training_predictor_without_data_exits_3(runner, tmp_path):
    """invest60 is recorded in 1980 only (as in the paper's data): a training window without 1980 fails."""
    spec = spec_of("germany_cv")
    spec["design"]["options"]["cross_validation"]["special_predictors"][2] = ["invest60", 1975]
    res = invoke(runner, ["estimate", str(_write(tmp_path, spec))])
    assert res.exit_code == 3, res.stderr
    assert "training predictor 'invest60 (1975)'" in res.stderr
    assert "cross_validation.special_predictors[2]" in res.stderr


def test_predictor_missing_for_a_donor_exits_3(runner, tmp_path):
    import pandas as pd

    df = pd.read_csv(REF / "prop99_smoking.csv")
    df.loc[df.state == "Utah", "retprice"] = np.nan
    df.to_csv(tmp_path / "d.csv", index=False)
    spec = spec_of("prop99")
    spec["data"]["path"] = "d.csv"
    res = invoke(runner, ["estimate", str(_write(tmp_path, spec))])
    assert res.exit_code == 3
    assert "predictor 'retprice' has no value for donor 'Utah'" in res.stderr


def test_generic_refuters_are_refused(runner, tmp_path):
    spec = spec_of("prop99")
    spec["refute"] = [{"placebo_treatment": {"simulations": 10}}]
    res = invoke(runner, ["estimate", str(_write(tmp_path, spec))])
    assert res.exit_code == 2
    assert "does not apply to synthetic control" in res.stderr


def test_treatment_column_is_refused(runner, tmp_path):
    spec = spec_of("prop99")
    spec["treatment"] = "cigsale"
    res = invoke(runner, ["estimate", str(_write(tmp_path, spec))])
    assert res.exit_code == 2 and "takes no 'treatment'" in res.stderr


def test_same_seed_same_json_whatever_jobs(runner, tmp_path):
    spec = spec_of("basque", conformal=False)
    path = _write(tmp_path, spec)
    outs = []
    for jobs in ("1", "2"):
        code, payload, _ = run_json(runner, [str(path), "--jobs", jobs])
        assert code == 0
        payload.pop("timing_s")
        outs.append(json.dumps(payload, sort_keys=True))
    assert outs[0] == outs[1]


# ---------------------------------------------------------------- refuters and the augmented estimator


def test_default_refuters_run_on_basque_and_ten_fake_starts_cannot_reach_alpha():
    spec = spec_of("basque", conformal=False)
    del spec["refute"]
    res = run_study(spec, jobs=1)
    by = {r.name: r for r in res.refutations}
    assert set(by) == {"placebo_in_time", "leave_one_donor_out"}
    assert by["leave_one_donor_out"].simulations == 1 and by["leave_one_donor_out"].p_value is None
    assert by["placebo_in_time"].simulations == 10
    assert all(r.tested for r in res.refutations) and by["leave_one_donor_out"].passed is True
    # the 10 eligible fake starts (1960-1969) are each run once, not drawn with repeats; 1960 has no
    # predictor data before it and cannot be fit. No fake start as large, but 1/10 > alpha = 0.05:
    # not judged rather than passed (RULES)
    pit = by["placebo_in_time"]
    assert pit.p_value == pytest.approx(1 / 10) and pit.passed is None and "too few fake starts" in pit.detail
    assert "only 10 distinct fake starts" in pit.detail and "1 of 10 refits could not be estimated" in pit.detail


def test_leave_one_donor_out_fails_when_one_donor_carries_the_effect(tmp_path):
    """The treated unit copies donor A before the start and A + 1 after it. The other donors all lie above
    A (B = A + 10, then A + 15; C = A + 20; D = A + 30), so A is the only exact match: the
    estimate is 1, and without A the synthetic unit is far above the treated one and the sign flips."""
    import pandas as pd

    t = np.arange(2000, 2015)
    a = np.linspace(10, 20, t.size) + np.sin(t)
    post = t >= 2010
    series = {"T": a + post * 1.0, "A": a, "B": a + 10 + post * 5.0, "C": a + 20, "D": a + 30}
    rows = [{"unit": u, "t": int(tt), "y": float(v)} for u, ys in series.items() for tt, v in zip(t, ys)]
    pd.DataFrame(rows).to_csv(tmp_path / "p.csv", index=False)
    spec = {"data": {"path": str(tmp_path / "p.csv")}, "outcome": "y",
            "refute": [{"leave_one_donor_out": {"donors": 3}}],
            "design": {"method": "synthetic_control", "unit": "unit", "time": "t", "treated_unit": "T",
                       "treatment_start": 2010, "special_predictors": [["y", 2001], ["y", 2005], ["y", 2009]],
                       "options": {"conformal": False}}}
    res = run_study(spec, jobs=1)
    # 1e-4: the inner QP carries a 1e-6 ridge on the weights (unique W), which shifts an exact fit by ~1e-5
    assert res.estimate.value == pytest.approx(1.0, abs=1e-4)
    loo = res.refutations[0]
    assert loo.name == "leave_one_donor_out" and loo.passed is False
    assert loo.new_effect < -5
    assert res.passed is False and res.exit_code == 1


def test_augmented_ridge_recovers_a_known_effect(tmp_path):
    import pandas as pd

    pd.DataFrame(factor_panel(2, effect=-2.0)).to_csv(tmp_path / "p.csv", index=False)
    spec = {"data": {"path": str(tmp_path / "p.csv")}, "outcome": "y", "refute": [],
            "design": {"method": "synthetic_control", "unit": "unit", "time": "t", "treated_unit": "u0",
                       "treatment_start": 2020, "options": {"augmented": "ridge"}}}
    res = run_study(spec, jobs=1)
    assert res.estimator == "augmented_synthetic_control_ridge"
    # noise SD 0.1: as for the plain fit, within 0.2 of the truth
    assert res.estimate.value == pytest.approx(-2.0, abs=0.2)
    assert sum(res.diagnostics["weights"].values()) == pytest.approx(1.0, abs=1e-9)
    assert res.diagnostics["fit"]["lambda"] > 0


def test_augmented_weights_equal_the_closed_form():
    """w_aug = w_scm + Xc (Xc'Xc + lam I)^-1 (x1c - Xc'w_scm), checked against a direct solve."""
    from causalcli.designs.synthetic_control.augmented import fit_ridge_ascm

    rng = np.random.default_rng(9)
    Y0 = rng.normal(size=(12, 8)).cumsum(axis=0)
    y1 = Y0 @ rng.dirichlet(np.ones(8)) + rng.normal(scale=0.5, size=12) + 0.7
    a = fit_ridge_ascm(y1, Y0, lambda_=3.0)
    m = Y0.mean(axis=1)
    Xc = (Y0 - m[:, None]).T
    direct = a.w_scm + Xc @ np.linalg.solve(Xc.T @ Xc + 3.0 * np.eye(12), (y1 - m) - Xc.T @ a.w_scm)
    assert np.allclose(a.w, direct, atol=1e-10) and a.w.sum() == pytest.approx(1.0, abs=1e-10)


def test_plots_draw_from_the_result_alone(prop99):
    from causalcli.render.plots import draw

    out = draw(prop99)
    assert set(out) == {"path", "gaps"}
    assert all(png.startswith(b"\x89PNG") for png in out.values())


def test_conformal_moving_block_pvalue_by_hand():
    """p = share of the T cyclic shifts whose post-window sum of |u| is at least the observed one."""
    from causalcli.designs.synthetic_control.conformal import _pvalue

    u = np.array([0.1, -0.2, 0.3, 0.0, 5.0, -4.0])  # two post-periods carry the largest residuals
    assert _pvalue(u, 2) == pytest.approx(1 / 6)
    u2 = np.array([1.0, -1.0, 1.0, -1.0, 1.0, -1.0])  # every window ties: p = 1
    assert _pvalue(u2, 2) == pytest.approx(1.0)


def test_placebo_in_time_passes_when_the_effect_starts_at_the_real_start(tmp_path):
    import pandas as pd

    pd.DataFrame(factor_panel(3, effect=4.0)).to_csv(tmp_path / "p.csv", index=False)
    spec = {"data": {"path": str(tmp_path / "p.csv")}, "outcome": "y",
            "refute": [{"placebo_in_time": {"simulations": 5, "min_pre": 6}}],
            "thresholds": {"alpha": 0.2},  # 5 fake starts: the smallest p, 1/6, can reach 0.2
            "design": {"method": "synthetic_control", "unit": "unit", "time": "t", "treated_unit": "u0",
                       "treatment_start": 2020, "predictors": ["x"],
                       "special_predictors": [["y", 2002], ["y", 2005], ["y", 2010], ["y", 2015], ["y", 2019]],
                       "options": {"conformal": False}}}
    res = run_study(spec, jobs=1)
    r = res.refutations[0]
    assert r.name == "placebo_in_time" and r.passed is True
    # the fake effects are noise around zero: far below the real effect of 4
    assert abs(r.new_effect) < 0.5 and r.p_value == pytest.approx(1 / 6)


@pytest.mark.parametrize("v", ["equal", "regression"])
def test_fixed_v_options_solve_w_once_exactly(v):
    """v: equal / regression fix V (R Synth's regression V: diag(B B') of outcomes on predictors) and solve W."""
    from scipy.optimize import minimize

    from causalcli.models.synthetic_weights import regression_v, scale_predictors
    from causalcli.designs.synthetic_control.panel import fit_unit, optimize_mask, predictor_matrix

    d = prepared("prop99", v=v)
    f = fit_unit(d, 0, np.arange(1, len(d.units)))
    X, _ = predictor_matrix(d, d.start)
    X1, X0, _ = scale_predictors(X[:, 0], X[:, 1:])
    opt = optimize_mask(d, d.start)
    V = np.full(X.shape[0], 1 / X.shape[0]) if v == "equal" else regression_v(X1, X0, d.Y[opt, 0], d.Y[opt, 1:])
    assert np.allclose(f.v, V)
    J = X0.shape[1]
    ref = minimize(lambda w: (X1 - X0 @ w) @ (V * (X1 - X0 @ w)), np.full(J, 1 / J), method="SLSQP",
                   bounds=[(0, 1)] * J, constraints=[{"type": "eq", "fun": lambda w: w.sum() - 1}],
                   options={"ftol": 1e-15, "maxiter": 2000})
    ours = (X1 - X0 @ f.w) @ (V * (X1 - X0 @ f.w))
    # the 1e-6 ridge on ||w||^2 may cost at most 1e-6 of predictor loss
    assert ours <= ref.fun + 1e-6


def test_donor_include_restricts_the_pool():
    d = prepared("prop99", donors={"include": ["Utah", "Nevada", "Montana", "Colorado", "Connecticut", "Idaho"]})
    assert d.units == ("California", "Colorado", "Connecticut", "Idaho", "Montana", "Nevada", "Utah")


def test_validate_names_the_predictors_the_donors_are_matched_on(runner):
    """validate said 'adjusting for (none)' for a synthetic control (causaldata's texas trial)."""
    from tests.conftest import SPECS, invoke

    res = invoke(runner, ["validate", str(SPECS / "prop99_synth.yaml")])
    assert res.exit_code == 0 and "adjusting for donors matched on lnincome, beer, age15to24, retprice, cigsale" \
        in res.stdout
