"""Matching with observation weights (SPEC's top-level ``weights``), as R's ``Match(..., weights = w)``.

Against R: ``tests/reference/matching/match_weights.R`` wrote ``match_weights.csv`` (Matching 4.10-8: estimand x
M x caliper x two kinds of weights, Mahalanobis, exact, bias adjustment) on ``weights_sim.csv`` with the weighted
logit's coefficients in ``weights_glm_coef.txt``. Here also: weights of 1 against no weights, integer weights
against repeated rows (the estimate always; the SE only when the repeated rows are focal units), a population
effect recovered from an unequal sample, rows of weight 0, bad weights, segments and the refuters.
"""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest

import causalcli
from causalcli.designs.matching.nearest import mahalanobis_coordinates, match
from tests.conftest import invoke
from tests.reference.matching.test_match_r import HERE

SIM = pd.read_csv(HERE / "weights_sim.csv")
REF = pd.read_csv(HERE / "match_weights.csv", keep_default_na=False, na_values=["NA"])
COEF = {line.split()[0]: np.array(line.split()[1:], dtype=float)
        for line in (HERE / "weights_glm_coef.txt").read_text().splitlines()}
X = SIM[["x1", "x2", "b"]].to_numpy(float)
T = SIM["treat"].to_numpy().astype(bool)
Y = SIM["y"].to_numpy(float)
R_SESSION = (HERE / "r_session_weights.txt").read_text().splitlines()


def _score(weights: str) -> np.ndarray:
    c = COEF[weights]
    return c[0] + X @ c[1:]


def _r_match(row) -> "object":
    w = SIM[row.weights].to_numpy(float)
    kw = {"estimand": row.estimand.lower(), "neighbors": int(row.neighbors), "weights": w}
    if not pd.isna(row.caliper):
        kw["caliper"] = float(row.caliper)
    if row.distance == "mahalanobis":
        kw["U"] = mahalanobis_coordinates(X, w)
    if row.exact:
        kw["strata"] = SIM["b"].to_numpy()
    if row.bias_correction:
        kw["Z"] = X
    return match(Y, T, _score(row.weights), **kw)


def _id(row) -> str:
    return (f"{row.weights}-{row.estimand}-M{row.neighbors}-cal{row.caliper}-{row.distance}"
            f"{'-exact' if row.exact else ''}{'-bias' if row.bias_correction else ''}")


@pytest.mark.parametrize("row", [r for _, r in REF.iterrows()], ids=[_id(r) for _, r in REF.iterrows()])
def test_match_equals_r_match_with_weights(row):
    """Estimate to 1e-8, Match's se and se.standard to 1e-6 relative, the pairs and the focal units' summed weight,
    and the matched sample's weighted means (the balance table's weights) equal to those of Match's pairs."""
    m = _r_match(row)
    assert m.estimate == pytest.approx(row.estimate, abs=1e-8)
    assert m.std_error == pytest.approx(row.se, rel=1e-6)
    assert m.std_error_standard == pytest.approx(row.se_standard, rel=1e-6)
    assert m.estimate_unadjusted == pytest.approx(row.estimate_unadjusted, abs=1e-8)
    assert m.n_pairs == row.n_pairs
    w = SIM[row.weights].to_numpy(float)
    unit = m.match_weights + np.where(m.focal_matched, w, 0.0)
    focal = {"att": T, "atc": ~T, "ate": np.ones_like(T)}[row.estimand.lower()]
    assert float(w[focal & m.focal_matched].sum()) == pytest.approx(row.wnobs, rel=1e-12)
    x1 = SIM["x1"].to_numpy(float)
    assert np.dot(unit[T], x1[T]) / unit[T].sum() == pytest.approx(row.x1_treated_after, abs=1e-10)
    assert np.dot(unit[~T], x1[~T]) / unit[~T].sum() == pytest.approx(row.x1_control_after, abs=1e-10)


def test_reference_was_run_with_the_documented_r():
    assert R_SESSION[0].startswith("R version 4.2") and R_SESSION[1] == "Matching 4.10.8"


def test_the_grid_drops_units_under_the_caliper_and_brings_several_matches():
    """The fixture exercises what weights change: caliper drops, and fractional weights below 1 (more matches)."""
    assert (REF["ndrops"].abs() > 1).any()
    frac = REF[(REF.weights == "frac") & (REF.neighbors == 1) & (REF.distance == "propensity")]
    assert (frac.n_pairs > frac.wnobs / SIM["frac"].mean() * 1.2).any()


def _study(data: pd.DataFrame, estimand="att", weights="frac", refute=False, **options):
    spec = {"version": 1, "treatment": "treat", "outcome": "y", "covariates": ["x1", "x2", "b"],
            "design": {"method": "matching", "estimand": estimand, "options": options}, "refute": []}
    if weights:
        spec["weights"] = weights
    if refute:
        spec["refute"] = ["placebo_treatment", "random_common_cause", "data_subset"]
    return causalcli.estimate(spec, data=data, refute=refute)


@pytest.mark.parametrize("weights", ["frac", "int"])
@pytest.mark.parametrize("estimand", ["att", "ate"])
def test_study_equals_r_with_the_weighted_logit(weights, estimand):
    """The whole study: the propensity logit fitted with the weights (R's glm(weights = w)) and Match's estimate and
    se on it. The headline SE is over the matched focal units, Match's se when none is dropped (none here)."""
    r = _study(SIM, estimand, weights)
    row = REF[(REF.weights == weights) & (REF.estimand == estimand.upper()) & (REF.neighbors == 1)
              & REF.caliper.isna() & (REF.distance == "propensity") & ~REF.exact & ~REF.bias_correction].iloc[0]
    coef = list(r.diagnostics["propensity_model"]["coefficients"].values())
    np.testing.assert_allclose(coef, COEF[weights], rtol=1e-7, atol=1e-9)
    assert r.estimate.value == pytest.approx(row.estimate, abs=1e-8)
    assert r.estimate.std_error == pytest.approx(row.se, rel=1e-6)
    assert r.estimate.inference == "abadie_imbens_2006_weighted_score_as_known"
    assert r.diagnostics["matching"]["std_error_ai2016"] is None


def test_weights_of_one_equal_no_weights_exactly():
    score = _score("frac")
    ones = np.ones(T.size)
    for kw in ({"estimand": "att"}, {"estimand": "ate", "neighbors": 3}, {"estimand": "atc", "caliper": 0.1},
               {"estimand": "att", "Z": X}, {"estimand": "ate", "U": mahalanobis_coordinates(X)}):
        a, b = match(Y, T, score, **kw), match(Y, T, score, weights=ones, **kw)
        assert (a.estimate, a.std_error, a.std_error_matched, a.n_pairs) == \
            (b.estimate, b.std_error, b.std_error_matched, b.n_pairs)
        np.testing.assert_array_equal(a.match_weights, b.match_weights)
    data = SIM.assign(one=1.0)
    unweighted, weighted = _study(data, weights=None), _study(data, weights="one")
    # the logit's Newton steps with a weight vector of ones may differ in the last bits
    assert weighted.estimate.value == pytest.approx(unweighted.estimate.value, abs=1e-12)
    assert weighted.estimate.std_error == pytest.approx(
        unweighted.diagnostics["matching"]["std_error_ai2006"], rel=1e-12)


def _repeated(w: np.ndarray) -> np.ndarray:
    return np.repeat(np.arange(w.size), w.astype(int))


@pytest.mark.parametrize("estimand", ["att", "atc", "ate"])
@pytest.mark.parametrize("caliper", [None, 0.1])
def test_integer_weights_equal_repeated_rows(estimand, caliper):
    """Integer weights are frequency weights: the matches and the estimate equal those on rows repeated w times
    (ties kept, so the copies of a control are matched together; the caliper is in weighted SDs). The SE equals
    too when only focal units are repeated; a repeated *match* differs: Match's control term ``K_j^2 - KK_j`` counts a
    unit of weight w once, w copies count as w independent units (``(K_j^2 - KK_j) / w``)."""
    score = _score("int")
    focal = {"att": T, "atc": ~T, "ate": np.ones_like(T)}[estimand]
    w_focal = np.where(focal, SIM["int"].to_numpy(float), 1.0)
    w_all = SIM["int"].to_numpy(float)
    for w, se_equal in ((w_focal, estimand != "ate"), (w_all, False)):
        idx = _repeated(w)
        a = match(Y, T, score, estimand=estimand, caliper=caliper, neighbors=2, weights=w)
        b = match(Y[idx], T[idx], score[idx], estimand=estimand, caliper=caliper, neighbors=2)
        assert a.estimate == pytest.approx(b.estimate, abs=1e-10)
        if se_equal:
            assert a.std_error == pytest.approx(b.std_error, rel=1e-10)
        else:
            assert not a.std_error == pytest.approx(b.std_error, rel=1e-3)


def test_a_population_effect_is_recovered_from_an_unequal_sample():
    """Units with x > 0 have an effect of 3, the others 1; the sample keeps a quarter of the x > 0 units, whose
    weight is 4. The weighted ATT recovers the population's (computed on 2 million simulated units); without the
    weights the estimate is that of the sample, far from it."""
    rng = np.random.default_rng(5)

    def draw(n):
        x = rng.normal(size=n)
        t = rng.random(n) < 1 / (1 + np.exp(-(0.5 * x)))
        tau = np.where(x > 0, 3.0, 1.0)
        return x, t, tau

    x, t, tau = draw(2_000_000)
    truth = float(tau[t].mean())
    x, t, tau = draw(8000)
    keep = (x <= 0) | (rng.random(x.size) < 0.25)
    x, t, tau = x[keep], t[keep], tau[keep]
    y = x + tau * t + rng.normal(size=x.size)
    data = pd.DataFrame({"treat": t.astype(int), "y": y, "x1": x, "x2": rng.normal(size=x.size), "b": 0,
                         "w": np.where(x > 0, 4.0, 1.0)})
    spec_cov = {"covariates": ["x1", "x2"]}
    weighted = causalcli.estimate({"version": 1, "treatment": "treat", "outcome": "y", **spec_cov, "weights": "w",
                                   "design": {"method": "matching", "estimand": "att"}, "refute": []}, data=data)
    unweighted = causalcli.estimate({"version": 1, "treatment": "treat", "outcome": "y", **spec_cov,
                                     "design": {"method": "matching", "estimand": "att"}, "refute": []}, data=data)
    assert abs(weighted.estimate.value - truth) < 3 * weighted.estimate.std_error
    assert abs(unweighted.estimate.value - truth) > 6 * unweighted.estimate.std_error


def test_rows_of_weight_zero_are_left_out_and_counted():
    data = SIM.copy()
    data.loc[::7, "frac"] = 0.0
    r = _study(data)
    kept = _study(data[data.frac > 0].reset_index(drop=True))
    assert r.n["dropped_zero_weight"] == int((data.frac == 0).sum())
    assert r.estimate.value == kept.estimate.value and r.estimate.std_error == kept.estimate.std_error
    assert any("weight of 0" in w for w in r.warnings)


def _write(tmp_path, data: pd.DataFrame, **design) -> str:
    data.to_csv(tmp_path / "d.csv", index=False)
    spec = tmp_path / "s.yaml"
    options = ", ".join(f"{k}: {v}" for k, v in design.items())
    spec.write_text("version: 1\nname: s\ndata: {path: d.csv}\ntreatment: treat\noutcome: y\n"
                    f"covariates: [x1, x2, b]\nweights: w\ndesign: {{method: matching, options: {{{options}}}}}\n"
                    "refute: []\n")
    return str(spec)


def test_negative_or_infinite_weights_exit_3(runner, tmp_path):
    for bad in (-1.0, math.inf):
        data = SIM.assign(w=SIM["frac"])
        data.loc[3, "w"] = bad
        res = invoke(runner, ["estimate", _write(tmp_path, data)])
        assert res.exit_code == 3 and "'w'" in res.stderr and "negative or infinite" in res.stderr


def test_weights_without_replacement_are_refused(runner, tmp_path):
    res = invoke(runner, ["estimate", _write(tmp_path, SIM.assign(w=SIM["frac"]), replace="false")])
    assert res.exit_code == 2 and "weights with replace: false are not built" in res.stderr


def test_controls_weighing_less_than_neighbors_exit_3(runner, tmp_path):
    data = SIM.assign(w=np.where(SIM.treat == 1, 1.0, 0.001))
    res = invoke(runner, ["estimate", _write(tmp_path, data, neighbors=3)])
    assert res.exit_code == 3 and "the control rows' weights ('w') sum to 0.322" in res.stderr


def test_segments_are_each_segments_weighted_matching():
    spec = {"version": 1, "treatment": "treat", "outcome": "y", "covariates": ["x1", "x2", "b"], "weights": "frac",
            "segments": ["b"], "design": {"method": "matching", "estimand": "ate"}, "refute": []}
    r = causalcli.estimate(spec, data=SIM)
    score = np.array(list(r.diagnostics["propensity_model"]["coefficients"].values()))
    lp = score[0] + X @ score[1:]
    w = SIM["frac"].to_numpy(float)
    for e in r.effects:
        rows = SIM["b"].to_numpy() == int(e.label.split("=")[1])
        m = match(Y[rows], T[rows], lp[rows], estimand="ate", weights=w[rows])
        assert e.value == pytest.approx(m.estimate, abs=1e-10)
        assert e.std_error == pytest.approx(m.std_error_matched, rel=1e-10)
        assert e.inference.startswith("abadie_imbens_2006_weighted_score_as_known")


def test_refuters_refit_with_the_weights():
    r = _study(SIM, refute=True)
    names = {x.name: x for x in r.refutations}
    assert set(names) == {"placebo_treatment", "random_common_cause", "data_subset"}
    # random_common_cause adds an unrelated covariate to the weighted refits: the estimate barely moves
    assert names["random_common_cause"].passed
