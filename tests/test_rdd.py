"""Issue 20, points 3 and 7: method: rdd against rdrobust (run live) on the U.S. Senate data rdrobust ships
(Cattaneo, Frandsen and Titiunik 2015: about 7.4 points) and on simulated data, for each kernel, selector, p,
fuzzy design and clusters; the checks; bad input.

Tolerances: estimates and bandwidths 1e-6 relative, intervals 1e-4 (the issue's); both sides run the same
algorithm in double precision, so agreement is ~1e-11 in practice.
"""

from __future__ import annotations

import json
import warnings
from importlib import resources

import numpy as np
import pandas as pd
import pytest
import yaml

from tests.conftest import invoke

KERNELS = {"triangular": "tri", "uniform": "uni", "epanechnikov": "epa"}


@pytest.fixture(scope="module")
def senate(tmp_path_factory):
    with resources.files("rdrobust").joinpath("data/rdrobust_RDsenate.csv").open("r") as f:
        d = pd.read_csv(f)
    path = tmp_path_factory.mktemp("senate") / "senate.csv"
    d.to_csv(path, index=False, na_rep="")
    return d, path


@pytest.fixture(scope="module")
def simulated(tmp_path_factory):
    rng = np.random.default_rng(20)
    n = 2000
    x = np.round(rng.uniform(-1, 1, n), 4)
    above = x >= 0.2
    take = np.where(above, rng.uniform(size=n) < 0.8, rng.uniform(size=n) < 0.2).astype(float)
    d = pd.DataFrame({
        "score": x, "take": take, "cluster": rng.integers(0, 50, n),
        "y": 1 + 2 * x - x ** 2 + 0.7 * above + rng.normal(0, 0.5, n),
        "yf": 1 + 2 * x + 0.7 * take + rng.normal(0, 0.5, n),
        "age": 30 + 5 * x + rng.normal(0, 2, n),  # smooth through the cutoff
        "jumpy": 3 * above + rng.normal(0, 1, n),  # a covariate that jumps
    })
    path = tmp_path_factory.mktemp("sim") / "sim.csv"
    d.to_csv(path, index=False)
    return d, path


def write_spec(folder, data_path, design: dict, outcome="y", **top) -> str:
    spec = {"version": 1, "name": "rdd", "data": {"path": str(data_path)}, "outcome": outcome,
            "design": {"method": "rdd", **design}, **top}
    path = folder / "rdd.yaml"
    path.write_text(yaml.safe_dump(spec))
    return str(path)


def run(runner, spec: str) -> tuple[int, dict, str]:
    """Exit code (0 or 1 when a check fails), the JSON, stderr."""
    res = invoke(runner, ["estimate", spec, "--format", "json", "--quiet", "--no-refute"])
    return res.exit_code, (json.loads(res.stdout) if res.stdout.strip() else {}), res.stderr


def rdrobust_fit(d: pd.DataFrame, y: str, x: str, c: float, **kw):
    from rdrobust import rdrobust

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        d = d.dropna(subset=[y, x])
        return rdrobust(d[y].to_numpy(), d[x].to_numpy(), c=c, **kw)


def assert_equal_to_rdrobust(out: dict, r) -> None:
    bw = out["diagnostics"]["bandwidth"]
    ours = [bw["h_left"], bw["h_right"], bw["b_left"], bw["b_right"]]
    np.testing.assert_allclose(ours, r.bws.to_numpy().ravel(), rtol=1e-6)
    est = out["estimate"]
    np.testing.assert_allclose(est["value"], r.coef.iloc[0, 0], rtol=1e-6)
    np.testing.assert_allclose(out["diagnostics"]["bias_corrected"]["estimate"], r.coef.iloc[1, 0], rtol=1e-6)
    np.testing.assert_allclose(out["diagnostics"]["conventional"]["std_error"], r.se.iloc[0, 0], rtol=1e-6)
    np.testing.assert_allclose(est["std_error"], r.se.iloc[2, 0], rtol=1e-6)
    np.testing.assert_allclose([est["ci_lower"], est["ci_upper"]], r.ci.iloc[2].to_numpy(), rtol=1e-4)
    np.testing.assert_allclose(est["p_value"], r.pv.iloc[2, 0], rtol=1e-4)


@pytest.mark.peer
def test_senate_incumbency_equals_rdrobust(runner, tmp_path, senate):
    d, path = senate
    code, out, err = run(runner, write_spec(tmp_path, path, {"running": "margin", "cutoff": 0}, outcome="vote"))
    assert code in (0, 1), err
    assert out["estimate"]["value"] == pytest.approx(7.41, abs=0.01)  # Cattaneo, Frandsen and Titiunik (2015)
    assert out["estimate"]["inference"] == "rd_robust_bias_corrected"
    assert out["diagnostics"]["bandwidth"]["selector"] == "mserd"
    assert_equal_to_rdrobust(out, rdrobust_fit(d, "vote", "margin", 0.0))
    assert out["n"]["used"] == d.vote.notna().sum()


@pytest.mark.peer
@pytest.mark.parametrize("kernel,selector,p", [("triangular", "mserd", 1), ("uniform", "msetwo", 1),
                                               ("epanechnikov", "cerrd", 1), ("triangular", "certwo", 2),
                                               ("uniform", "mserd", 2), ("triangular", "mserd", 0)])
def test_sharp_options_equal_rdrobust(runner, tmp_path, simulated, kernel, selector, p):
    d, path = simulated
    spec = write_spec(tmp_path, path, {"running": "score", "cutoff": 0.2,
                                       "options": {"kernel": kernel, "bandwidth": selector, "p": p}})
    code, out, err = run(runner, spec)
    assert code in (0, 1), err
    assert_equal_to_rdrobust(out, rdrobust_fit(d, "y", "score", 0.2, kernel=KERNELS[kernel], bwselect=selector, p=p))


@pytest.mark.peer
@pytest.mark.parametrize("cluster", [False, True])
def test_fuzzy_and_clustered_equal_rdrobust(runner, tmp_path, simulated, cluster):
    d, path = simulated
    design = {"running": "score", "cutoff": 0.2, "fuzzy": "take", **({"cluster": "cluster"} if cluster else {})}
    code, out, err = run(runner, write_spec(tmp_path, path, design, outcome="yf"))
    assert code in (0, 1), err
    kw = {"cluster": d["cluster"].to_numpy()} if cluster else {}
    r = rdrobust_fit(d, "yf", "score", 0.2, fuzzy=d["take"].to_numpy(), **kw)
    assert_equal_to_rdrobust(out, r)
    assert out["estimand"] == "late"
    assert out["estimate"]["inference"].endswith("_clustered") == cluster
    np.testing.assert_allclose(out["diagnostics"]["first_stage"]["jump"], r.tau_T.iloc[0, 0], rtol=1e-6)


@pytest.mark.peer
@pytest.mark.parametrize("bandwidth", ["cerrd", 0.3])  # a number: h = b, rdrobust's other clustered variance
def test_sharp_clustered_equals_rdrobust(runner, tmp_path, simulated, bandwidth):
    d, path = simulated
    code, out, err = run(runner, write_spec(tmp_path, path, {"running": "score", "cutoff": 0.2, "cluster": "cluster",
                                                             "options": {"bandwidth": bandwidth}}))
    assert code in (0, 1), err
    kw = {"h": bandwidth} if isinstance(bandwidth, float) else {"bwselect": bandwidth}
    r = rdrobust_fit(d, "y", "score", 0.2, cluster=d["cluster"].to_numpy(), **kw)
    if isinstance(bandwidth, float):
        assert out["diagnostics"]["bandwidth"]["selector"] == "manual"
    assert_equal_to_rdrobust(out, r)


def test_checks_pass_on_a_clean_design_and_fail_on_a_jumping_covariate(runner, tmp_path, simulated):
    _, path = simulated
    code, out, err = run(runner, write_spec(tmp_path, path, {"running": "score", "cutoff": 0.2},
                                            covariates=["age"]))
    assert code == 0, err
    checks = {c["name"]: c["passed"] for c in out["checks"]}
    assert checks == {"bandwidth_sensitivity": True, "covariate_balance": True, "placebo_cutoffs": True,
                      "manipulation": True}
    assert [e["label"].split(" (")[0] for e in out["effects"]] == [f"bandwidth {m}x" for m in
                                                                    ("0.5", "0.75", "1", "1.5", "2")]
    assert out["effects"][2]["value"] == out["estimate"]["value"]
    code, out, _ = run(runner, write_spec(tmp_path, path, {"running": "score", "cutoff": 0.2},
                                          covariates=["age", "jumpy"]))
    assert code == 1 and not out["passed"]
    assert "jumpy" in next(c["detail"] for c in out["checks"] if c["name"] == "covariate_balance")


def test_placebo_cutoff_fails_where_the_outcome_jumps(runner, tmp_path, simulated):
    _, path = simulated
    # the real jump is at 0.2; a "cutoff" at -0.5 with a placebo at 0.2 finds the real jump on its right side
    spec = write_spec(tmp_path, path, {"running": "score", "cutoff": -0.5, "options": {"placebo_cutoffs": [0.2]}})
    code, out, _ = run(runner, spec)
    check = next(c for c in out["checks"] if c["name"] == "placebo_cutoffs")
    assert check["passed"] is False and "0.2" in check["detail"]


@pytest.mark.parametrize("design,needle,key", [
    ({"cutoff": 5}, "outside the range of running variable 'score'", "design.cutoff"),
    ({"cutoff": "second largest"}, "at or above the cutoff", "design.cutoff"),
    ({"cutoff": 0.2, "fuzzy": "flat"}, "take-up column 'flat' is 1 on both sides", "design.fuzzy"),
])
def test_bad_input_is_one_line_with_exit_3(runner, tmp_path, simulated, design, needle, key):
    d, _ = simulated
    path = tmp_path / "bad.csv"
    d.assign(flat=1.0).to_csv(path, index=False)
    if design["cutoff"] == "second largest":  # two distinct values at or above it: a local linear fit needs 3
        design = {**design, "cutoff": float(np.sort(d.score.unique())[-2])}
    code, out, err = run(runner, write_spec(tmp_path, path, {"running": "score", **design}))
    assert code == 3, err
    assert needle in out["error"]["message"] and out["error"]["key"] == key
    assert len(err.strip().splitlines()) == 1


def test_treatment_and_fuzzy_must_agree(runner, tmp_path, simulated):
    _, path = simulated
    code, out, _ = run(runner, write_spec(tmp_path, path, {"running": "score", "cutoff": 0.2, "fuzzy": "take"},
                                          treatment="age"))
    assert code == 2 and out["error"]["key"] == "design.fuzzy"


@pytest.mark.parametrize("design,estimand,code", [
    ({"fuzzy": "take"}, "late", (0, 1)),  # the fuzzy design's estimand, as init writes it: was refused
    ({}, "ate", (0, 1)),
    ({}, "late", (2,)),  # a sharp design's effect at the cutoff is not a complier effect
    ({"fuzzy": "take"}, "ate", (2,)),
    ({}, "att", (2,)),  # was accepted and reported as ate
])
def test_estimand_must_be_the_designs(runner, tmp_path, simulated, design, estimand, code):
    _, path = simulated
    got, out, err = run(runner, write_spec(tmp_path, path, {"running": "score", "cutoff": 0.2, "estimand": estimand,
                                                             **design}, outcome="yf"))
    assert got in code, err
    if got == 2:
        assert out["error"]["key"] == "design.estimand" and len(err.strip().splitlines()) == 1
    else:
        assert out["estimand"] == estimand


def rddensity_fit(x: np.ndarray, c: float):
    from rddensity import rddensity

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return rddensity(x, c=c)


@pytest.mark.peer
def test_density_test_equals_rddensity(runner, tmp_path, senate):
    d, path = senate
    code, out, err = run(runner, write_spec(tmp_path, path, {"running": "margin", "cutoff": 0}, outcome="vote"))
    assert code in (0, 1), err
    r = rddensity_fit(d.dropna(subset=["vote", "margin"]).margin.to_numpy(), 0.0)  # the rows the study uses
    ours = out["diagnostics"]["density"]
    np.testing.assert_allclose([ours["h_left"], ours["h_right"]], r.h.to_numpy(), rtol=1e-6)
    np.testing.assert_allclose([ours["f_left"], ours["f_right"]], [r.hat["left"], r.hat["right"]], rtol=1e-6)
    np.testing.assert_allclose([ours["statistic"], ours["p_value"]], [r.test["t_jk"], r.test["p_jk"]], rtol=1e-6)
    assert next(c for c in out["checks"] if c["name"] == "manipulation")["passed"] is True


@pytest.mark.peer
def test_manipulation_fails_when_units_bunch_above_the_cutoff(runner, tmp_path):
    rng = np.random.default_rng(4)
    x = np.r_[rng.uniform(-1, 1, 1500), rng.uniform(0, 0.1, 150)]  # some units push themselves just above 0
    d = pd.DataFrame({"score": np.round(x, 3), "y": 1 + x + rng.normal(0, 1, x.size)})
    path = tmp_path / "bunch.csv"
    d.to_csv(path, index=False)
    code, out, err = run(runner, write_spec(tmp_path, path, {"running": "score", "cutoff": 0}))
    assert code == 1, err
    check = next(c for c in out["checks"] if c["name"] == "manipulation")
    assert check["passed"] is False and "jumps" in check["detail"]
    r = rddensity_fit(d.score.to_numpy(), 0.0)  # ties (3 decimals): rddensity's mass-point jackknife
    np.testing.assert_allclose(out["diagnostics"]["density"]["statistic"], r.test["t_jk"], rtol=1e-6)


def test_plots_binned_scatter_and_density(runner, tmp_path, simulated):
    _, path = simulated
    spec = write_spec(tmp_path, path, {"running": "score", "cutoff": 0.2})
    res = invoke(runner, ["estimate", spec, "--quiet", "--no-refute", "--plots", str(tmp_path / "plots")])
    assert res.exit_code in (0, 1), res.stderr
    pngs = sorted(p.name for p in (tmp_path / "plots").iterdir())
    assert pngs == ["rdd-binned_scatter.png", "rdd-density.png"]
    assert all((tmp_path / "plots" / p).read_bytes()[:4] == b"\x89PNG" for p in pngs)


def test_density_plot_scale_is_not_set_by_a_mass_point_far_from_the_cutoff(tmp_path, simulated):
    """causaldata's close_elections_lmb: 1,700 uncontested races at a vote share of 1 made one bin 17 times the
    others, and the density around the cutoff, what the plot is for, was a flat line at the bottom."""
    import causalcli
    from causalcli.designs.rdd.plots import density, density_top

    d, _ = simulated
    spec = {"outcome": "y", "design": {"method": "rdd", "running": "score", "cutoff": 0.2}}
    plain = causalcli.estimate(spec, data=d, refute=False)
    assert density_top(plain) is None  # nothing towers: the full scale
    massed = pd.concat([d, d.head(400).assign(score=1.0)], ignore_index=True)
    result = causalcli.estimate(spec, data=massed, refute=False)
    bins, diag = result.diagnostics["bins"], result.diagnostics
    height = np.asarray(bins["n"]) / (np.asarray(bins["upper"]) - np.asarray(bins["lower"]))
    centre = (np.asarray(bins["upper"]) + np.asarray(bins["lower"])) / 2
    near = np.abs(centre - 0.2) <= max(diag["density"]["h_left"], diag["density"]["h_right"])
    top = density_top(result)
    assert top is not None and height[near].max() < top < height.max() / 2
    assert density(result)[:4] == b"\x89PNG"


@pytest.mark.peer
def test_plot_bins_equal_rdplot(runner, tmp_path, senate):
    import contextlib
    import io

    from rdrobust import rdplot

    d, path = senate
    code, out, err = run(runner, write_spec(tmp_path, path, {"running": "margin", "cutoff": 0}, outcome="vote"))
    assert code in (0, 1), err
    d = d.dropna(subset=["vote", "margin"])
    with contextlib.redirect_stdout(io.StringIO()):  # rdplot prints
        r = rdplot(d.vote.to_numpy(), d.margin.to_numpy(), c=0.0, hide=True)
    assert [out["diagnostics"]["bin_count"][s] for s in ("below", "above")] == list(r.J)  # 15 and 35
    ours = out["diagnostics"]["bins"]
    theirs = r.vars_bins.dropna(subset=["rdplot_mean_y"])
    np.testing.assert_allclose(sorted(ours["outcome"]), np.sort(theirs.rdplot_mean_y), rtol=1e-9)
    np.testing.assert_allclose(sorted(ours["running"]), np.sort(theirs.rdplot_mean_x), rtol=1e-9)
    assert {len(column) for column in ours.values()} == {len(theirs)}  # columns, one entry per bin


def test_default_refuter_is_data_subset(runner, tmp_path, simulated):
    _, path = simulated
    res = invoke(runner, ["estimate", write_spec(tmp_path, path, {"running": "score", "cutoff": 0.2}),
                          "--format", "json", "--quiet"])
    out = json.loads(res.stdout)
    assert [r["name"] for r in out["refutations"]] == ["data_subset"]
    assert out["refutations"][0]["simulations"] >= 1
    assert abs(out["refutations"][0]["new_effect"] - out["estimate"]["value"]) < 3 * out["estimate"]["std_error"]


@pytest.mark.parametrize("design,covariates,key", [
    ({}, ["age", "score"], "covariates[1]"),  # as init leaves it when the running variable was a TODO
    ({"fuzzy": "take"}, ["take"], "covariates[0]"),
])
def test_running_variable_or_take_up_as_covariate_is_refused(runner, tmp_path, simulated, design, covariates, key):
    """Each covariate is its own RD (covariate_balance): the running variable was checked and passed by
    construction (an estimate of 1e-17) and counted in the Bonferroni divisor; the take-up jumps by design."""
    _, path = simulated
    code, out, err = run(runner, write_spec(tmp_path, path, {"running": "score", "cutoff": 0.2, **design},
                                            covariates=covariates))
    assert code == 2 and out["error"]["key"] == key, err
    assert "remove it from covariates" in out["error"]["message"] and len(err.strip().splitlines()) == 1
