"""causalcli's logit and matching engine against R (glm and Matching::Match).

The fixtures in this folder were written by ``match_lalonde.R`` (R and
Matching versions in ``r_session.txt``; how to regenerate in README.md), so
these tests need no R. Data: Dehejia-Wahba NSW treated units with CPS-1
controls (``specs/data/nsw_cps.parquet``), the NSW experimental sample
(``specs/data/nsw_experimental.csv``) and two small synthetic sets
(``synthetic.csv``).
"""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from causalcli.designs.matching.nearest import match, match_att_point
from causalcli.errors import EstimationError
from causalcli.models.logit import fit_logit

HERE = Path(__file__).resolve().parent
ROOT = HERE.parents[2]
COVARIATES = ["age", "educ", "black", "hisp", "marr", "nodegree", "re74", "re75"]

# Both sides compute the same maximum-likelihood estimate (R's glm is run to
# epsilon 1e-14); what remains is rounding in two different algorithms,
# observed below 1e-12. 1e-8 is the accuracy the engine promises.
GLM_RTOL = 1e-8
# The linear predictor crosses zero, where a relative tolerance means nothing:
# an absolute floor at the size of its rounding error (|terms| ~ 10, eps 1e-16).
LP_ATOL = 1e-12
# The matching is the same set of pairs (checked exactly below), so estimate
# and standard errors differ only by summation order (observed ~1e-15);
# 1e-6 is the agreement the engine promises.
MATCH_RTOL = 1e-6
# Match's pair weights are 1/M_i; both sides compute them in one division.
WEIGHT_RTOL = 1e-14
# match_att_point (the refuters' point estimate) forms the same mean by a different summation order.
POINT_RTOL = 1e-12

R_SESSION = (HERE / "r_session.txt").read_text().splitlines()
R_MATCHING = R_SESSION[1].replace(" ", "-")  # e.g. "Matching-4.10.8"


def _read_data(name: str) -> pd.DataFrame:
    if name == "nsw_cps":
        return pd.read_parquet(ROOT / "specs" / "data" / "nsw_cps.parquet")
    return pd.read_csv(ROOT / "specs" / "data" / "nsw_experimental.csv")


COEF = pd.read_csv(HERE / "glm_coef.csv")
FITTED = pd.read_csv(HERE / "glm_fitted.csv")
RESULTS = pd.read_csv(HERE / "match_results.csv", keep_default_na=True)
PAIRS = pd.read_csv(HERE / "match_pairs.csv.gz")
SYNTHETIC = pd.read_csv(HERE / "synthetic.csv")
DATA = {name: _read_data(name) for name in ("nsw_cps", "nsw_experimental")}


def _glm_inputs(dataset: str) -> tuple[np.ndarray, np.ndarray, np.ndarray | None]:
    base = "nsw_experimental" if dataset == "nsw_experimental_weighted" else dataset
    d = DATA[base]
    X = d[COVARIATES].to_numpy(dtype=np.float64)
    t = d["treat"].to_numpy(dtype=np.float64)
    # The weights match_lalonde.R gives glm: ((row - 1) %% 5) * 0.5 in R's 1-based rows.
    w = (np.arange(len(d)) % 5) * 0.5 if dataset == "nsw_experimental_weighted" else None
    return X, t, w


def _match_inputs(dataset: str) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Outcome, treatment and the score R's Match received for a data set."""
    if dataset.startswith("synthetic"):
        s = SYNTHETIC[SYNTHETIC["dataset"] == dataset]
        return s["y"].to_numpy(float), s["treat"].to_numpy() == 1, s["score"].to_numpy(float)
    d = DATA[dataset]
    b = COEF.loc[COEF["dataset"] == dataset, "estimate"].to_numpy()
    # R's glm linear predictor, recomputed from its coefficients.
    score = b[0] + d[COVARIATES].to_numpy(dtype=np.float64) @ b[1:]
    return d["re78"].to_numpy(float), d["treat"].to_numpy() == 1, score


def _caliper(value: float) -> float | None:
    return None if math.isnan(value) else float(value)


def _row_id(row: pd.Series) -> str:
    cal = "none" if math.isnan(row["caliper"]) else f"{row['caliper']:g}"
    return f"{R_MATCHING}:{row['dataset']}:M{int(row['neighbors'])}:caliper={cal}"


ROWS = [row for _, row in RESULTS.iterrows()]
OK_ROWS = [r for r in ROWS if not math.isnan(r["estimate"])]
NA_ROWS = [r for r in ROWS if math.isnan(r["estimate"])]
GLM_SETS = sorted(COEF["dataset"].unique())


def test_fixtures_cover_the_grid():
    """The R output has every setting the tests rely on (guards a bad regeneration)."""
    assert R_SESSION[1].startswith("Matching ")
    assert set(GLM_SETS) == {"nsw_cps", "nsw_experimental", "nsw_experimental_weighted"}
    for dataset in ("nsw_cps", "nsw_experimental", "synthetic"):
        sub = RESULTS[RESULTS["dataset"] == dataset]
        assert {(int(m), _caliper(c)) for m, c in zip(sub["neighbors"], sub["caliper"])} >= {
            (m, c) for m in (1, 3) for c in (None, 0.2, 0.05)
        }
    assert len(NA_ROWS) >= 1
    assert (RESULTS.loc[RESULTS["dataset"] == "nsw_cps", "n_dropped"] > 0).any()


# ------------------------------------------------------------------ glm


@pytest.mark.parametrize("dataset", GLM_SETS, ids=lambda d: f"R-glm:{d}")
def test_logit_coefficients_equal_r_glm(dataset):
    """fit_logit's coefficients equal R glm(binomial)'s (R version in r_session.txt)."""
    X, t, w = _glm_inputs(dataset)
    fit = fit_logit(X, t, w)
    expected = COEF.loc[COEF["dataset"] == dataset, "estimate"].to_numpy()
    assert fit.converged
    np.testing.assert_allclose(fit.coef, expected, rtol=GLM_RTOL, atol=0)


@pytest.mark.parametrize("dataset", GLM_SETS, ids=lambda d: f"R-glm:{d}")
def test_logit_fitted_values_equal_r_glm(dataset):
    """Fitted probabilities and linear predictor equal glm's on a sample of rows."""
    X, t, w = _glm_inputs(dataset)
    fit = fit_logit(X, t, w)
    ref = FITTED[FITTED["dataset"] == dataset]
    rows = ref["row"].to_numpy()
    assert len(rows) >= 9
    np.testing.assert_allclose(fit.probability[rows], ref["fitted"].to_numpy(), rtol=GLM_RTOL, atol=0)
    np.testing.assert_allclose(fit.linear_predictor[rows], ref["linear_predictor"].to_numpy(),
                               rtol=GLM_RTOL, atol=LP_ATOL)


def test_perfect_separation_raises():
    X = np.array([[-2.0], [-1.0], [-0.5], [0.5], [1.0], [2.0]])
    t = np.array([0, 0, 0, 1, 1, 1])
    with pytest.raises(EstimationError, match="separate"):
        fit_logit(X, t)


def test_quasi_separation_raises():
    # Units with x = 0 are of both arms; x < 0 only control, x > 0 only treated.
    rng = np.random.default_rng(7)
    x = np.r_[-rng.random(20) - 0.1, np.zeros(10), rng.random(20) + 0.1]
    z = rng.normal(size=x.size)
    t = np.r_[np.zeros(20), np.tile([0, 1], 5), np.ones(20)]
    with pytest.raises(EstimationError, match="separate"):
        fit_logit(np.column_stack([x, z]), t)


def test_collinear_covariates_raise():
    X = np.column_stack([np.arange(10.0), 2.0 * np.arange(10.0) + 1.0])
    with pytest.raises(EstimationError, match="collinear"):
        fit_logit(X, np.tile([0, 1], 5))


# ------------------------------------------------------------------ Match


@pytest.mark.parametrize("row", OK_ROWS, ids=_row_id)
def test_match_equals_r_match(row):
    """Estimate, Abadie-Imbens SE and se.standard equal R's Matching::Match (version in the id)."""
    y, t, score = _match_inputs(row["dataset"])
    m = match(y, t, score, estimand="att", neighbors=int(row["neighbors"]), caliper=_caliper(row["caliper"]))
    assert m.estimate == pytest.approx(row["estimate"], rel=MATCH_RTOL)
    assert m.std_error == pytest.approx(row["se"], rel=MATCH_RTOL)
    assert m.std_error_standard == pytest.approx(row["se_standard"], rel=MATCH_RTOL)
    assert m.n_focal == row["n_treated"]
    assert m.n_focal_matched == pytest.approx(row["n_treated_matched"], abs=1e-9)
    assert m.n_dropped == pytest.approx(row["n_dropped"], abs=1e-9)
    dropped = [] if pd.isna(row["dropped"]) else [int(i) for i in str(row["dropped"]).split(";")]
    assert m.dropped.tolist() == dropped


@pytest.mark.parametrize("row", OK_ROWS, ids=_row_id)
def test_matched_pairs_equal_r_match(row):
    """The same pairs, in Match's order, with Match's weights; control weights K_M(j) follow."""
    y, t, score = _match_inputs(row["dataset"])
    m = match(y, t, score, estimand="att", neighbors=int(row["neighbors"]), caliper=_caliper(row["caliper"]))
    sel = (PAIRS["dataset"] == row["dataset"]) & (PAIRS["neighbors"] == row["neighbors"])
    sel &= PAIRS["caliper"].isna() if math.isnan(row["caliper"]) else np.isclose(PAIRS["caliper"], row["caliper"])
    ref = PAIRS[sel]
    assert len(ref) == row["n_pairs"]
    treated, control, weight = m.pairs
    np.testing.assert_array_equal(treated, ref["treated"].to_numpy())
    np.testing.assert_array_equal(control, ref["control"].to_numpy())
    np.testing.assert_allclose(weight, ref["weight"].to_numpy(), rtol=WEIGHT_RTOL, atol=0)
    expected_k = np.bincount(ref["control"].to_numpy(), weights=ref["weight"].to_numpy(), minlength=y.size)
    np.testing.assert_allclose(m.match_weights, expected_k, rtol=WEIGHT_RTOL, atol=0)
    assert m.match_weights[t].sum() == 0.0


@pytest.mark.parametrize("row", [r for r in OK_ROWS if r["dataset"].startswith("nsw")], ids=_row_id)
def test_end_to_end_logit_then_match_equals_r(row):
    """fit_logit's score, matched by match, reproduces Match on glm's score."""
    X, t, _ = _glm_inputs(row["dataset"])
    d = DATA[row["dataset"]]
    fit = fit_logit(X, t)
    m = match(d["re78"].to_numpy(float), t == 1, fit.linear_predictor, estimand="att",
              neighbors=int(row["neighbors"]), caliper=_caliper(row["caliper"]))
    assert m.estimate == pytest.approx(row["estimate"], rel=MATCH_RTOL)
    assert m.std_error == pytest.approx(row["se"], rel=MATCH_RTOL)


@pytest.mark.parametrize("row", OK_ROWS, ids=_row_id)
def test_point_path_agrees_with_match(row):
    """The refuters' point estimate (match_att_point) equals the full match's."""
    y, t, score = _match_inputs(row["dataset"])
    kw = dict(neighbors=int(row["neighbors"]), caliper=_caliper(row["caliper"]))
    full = match(y, t, score, estimand="att", **kw)
    assert match_att_point(y, t, score, **kw) == pytest.approx(full.estimate, rel=POINT_RTOL)


@pytest.mark.parametrize("row", NA_ROWS, ids=_row_id)
def test_caliper_dropping_every_treated_unit_raises(row):
    """Where R's Match returns NA (no treated unit left), both paths raise EstimationError."""
    y, t, score = _match_inputs(row["dataset"])
    kw = dict(neighbors=int(row["neighbors"]), caliper=_caliper(row["caliper"]))
    with pytest.raises(EstimationError, match="caliper"):
        match(y, t, score, estimand="att", **kw)
    with pytest.raises(EstimationError, match="caliper"):
        match_att_point(y, t, score, **kw)


def test_one_arm_only_raises():
    with pytest.raises(EstimationError):
        match(np.arange(4.0), np.ones(4, dtype=bool), np.arange(4.0))


# ------------------------------------------------------------------ estimands, exact, bias adjustment

OPTIONS = pd.read_csv(HERE / "match_options.csv", keep_default_na=False, na_values=["NA"])


def _opt_id(r) -> str:
    cal = "none" if math.isnan(r["caliper"]) else f"{r['caliper']:g}"
    return (f"{R_MATCHING}:{r['dataset']}:{r['estimand']}:M{int(r['neighbors'])}:caliper={cal}:"
            f"exact={r['exact'] or '-'}:bias={r['bias_adjust']}")


@pytest.mark.parametrize("row", [r for _, r in OPTIONS.iterrows()], ids=_opt_id)
def test_match_options_equal_r_match(row):
    """ATE / ATC, exact strata and BiasAdjust: estimate, SE and drops equal Match's (match_options.R)."""
    d = DATA["nsw_experimental"]
    y, t, score = _match_inputs("nsw_experimental")
    exact = [c for c in row["exact"].split(";") if c]
    strata = None
    if exact:
        strata = np.unique(d[exact].to_numpy(), axis=0, return_inverse=True)[1].reshape(-1)
    Z = d[COVARIATES].to_numpy(float) if str(row["bias_adjust"]).upper() == "TRUE" else None
    r = match(y, t, score, estimand=row["estimand"].lower(), neighbors=int(row["neighbors"]),
              caliper=_caliper(row["caliper"]), strata=strata, Z=Z)
    assert r.n_dropped == int(row["n_dropped"])
    assert r.estimate == pytest.approx(row["estimate"], rel=MATCH_RTOL)
    assert r.estimate_unadjusted == pytest.approx(row["estimate_noadj"], rel=MATCH_RTOL)
    assert r.std_error == pytest.approx(row["se"], rel=MATCH_RTOL)
