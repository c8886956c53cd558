"""Weighting with observation (sampling) weights, SPEC's top-level ``weights``, read as probability weights.

Against R (survey::svyglm, glm with weights, MatchIt with s.weights): ``tests/reference/weighting/
test_r_survey_sampling_weights.py``. Here: the stacked-equation SE against a numerical sandwich of the s-weighted
estimating equations, AIPW against statsmodels' weighted nuisance fits, integer weights against repeated rows,
a population effect recovered from an unequal sample (and missed without the weights), the overlap shares, rows
of weight 0 or with a missing weight, and the refuters.
"""

from __future__ import annotations

import json
import math

import numpy as np
import pandas as pd
import pytest

import causalcli
from causalcli.designs.weighting.design import fit_propensity
from causalcli.designs.weighting.estimators import aipw, ipw
from tests.conftest import invoke
from tests.reference.weighting.sampled import POPULATION_ATE, sampled_study
from tests.reference.weighting.studies import HERE

SAMPLED = pd.read_csv(HERE / "sim_sampled.csv")
BASE = {"version": 1, "treatment": "t", "outcome": "y", "covariates": ["x1", "x2"], "refute": []}


def _estimate(data: pd.DataFrame, estimand: str = "ate", weights: str | None = "s", refute=False, **extra):
    options = extra.pop("options", {})
    spec = {**BASE, "design": {"method": "weighting", "estimand": estimand, "options": options}, **extra}
    if weights:
        spec["weights"] = weights
    return causalcli.estimate(spec, data=data, refute=refute)


def _weighted_logit(Z: np.ndarray, t: np.ndarray, s: np.ndarray) -> np.ndarray:
    """The s-weighted logistic fit from statsmodels (not causalcli's Newton)."""
    import statsmodels.api as sm

    return sm.GLM(t, Z, family=sm.families.Binomial(), freq_weights=s).fit(tol=1e-13, maxiter=100).params


def _hajek(e, estimand):
    return {"ate": (1 / e, 1 / (1 - e)), "att": (np.ones_like(e), e / (1 - e)),
            "atc": ((1 - e) / e, np.ones_like(e)), "ato": (1 - e, e)}[estimand]


def _weighted_stacked_sandwich(data: pd.DataFrame, estimand: str, trim: float = 0.0, segments=None):
    """The M-estimation sandwich ``A^-1 B A^-T`` of the s-weighted estimating equations, ``A`` by central differences.

    Parameters (beta, then mu1, mu0 of each segment); equations per unit: ``s Z (t - e)``, and for each segment
    ``keep s t w1 (y - mu1)``, ``keep s (1 - t) w0 (y - mu0)`` with ``keep`` its rows among the trimmed ones (the
    logit uses every row). Returns the effects ``mu1 - mu0`` and their covariance.
    """
    X = data[["x1", "x2"]].to_numpy()
    t, y, s = data["t"].to_numpy(float), data["y"].to_numpy(float), data["s"].to_numpy(float)
    Z = np.column_stack([np.ones(len(t)), X])
    beta = _weighted_logit(Z, t, s)
    e_hat = 1 / (1 + np.exp(-(Z @ beta)))
    trimmed = ((e_hat >= trim) & (e_hat <= 1 - trim)).astype(float)
    keeps = [trimmed * g for g in (segments if segments is not None else [np.ones(len(t))])]
    k, m = Z.shape[1], len(keeps)

    def g(th):
        e = 1 / (1 + np.exp(-(Z @ th[:k])))
        w1, w0 = _hajek(e, estimand)
        means = [c for j, keep in enumerate(keeps) for c in (keep * s * t * w1 * (y - th[k + 2 * j]),
                                                              keep * s * (1 - t) * w0 * (y - th[k + 2 * j + 1]))]
        return np.column_stack([Z * (s * (t - e))[:, None], *means])

    w1, w0 = _hajek(e_hat, estimand)
    mus = [mu for keep in keeps for mu in (np.sum(keep * s * t * w1 * y) / np.sum(keep * s * t * w1),
                                           np.sum(keep * s * (1 - t) * w0 * y) / np.sum(keep * s * (1 - t) * w0))]
    theta = np.r_[beta, mus]
    A = np.empty((theta.size, theta.size))
    for j in range(theta.size):
        h = 1e-6 * max(1.0, abs(theta[j]))
        up, dn = theta.copy(), theta.copy()
        up[j] += h
        dn[j] -= h
        A[:, j] = (g(up).sum(0) - g(dn).sum(0)) / (2 * h)
    G = g(theta)
    Ainv = np.linalg.inv(A)
    V = Ainv @ (G.T @ G) @ Ainv.T
    C = np.zeros((m, theta.size))
    for j in range(m):
        C[j, k + 2 * j], C[j, k + 2 * j + 1] = 1, -1
    return C @ theta, C @ V @ C.T


# Central differences of smooth equations: accurate to ~1e-7 relative, so 1e-5 leaves room and still fails when a
# term lacks its factor s (the SEs then differ by percents). The point estimates: the same sums, rounding and the
# two logits' stopping rules (1e-9).
SANDWICH_RTOL = 1e-5
POINT_RTOL = 1e-9


@pytest.mark.parametrize("estimand,trim", [("ate", 0.0), ("att", 0.0), ("atc", 0.0), ("ato", 0.0), ("ate", 0.1)])
def test_weighted_ipw_se_equals_numerical_sandwich_of_the_stacked_equations(estimand, trim):
    """The reported SE (propensity score estimated) is the sandwich of the s-weighted stacked estimating
    equations: every equation, the logistic score's included, multiplied by the observation weight."""
    options = {"overlap": True} if estimand == "ato" else {}
    if trim:
        options["trim"] = trim
    res = _estimate(SAMPLED, "ate" if estimand == "ato" else estimand, options=options)
    value, V = _weighted_stacked_sandwich(SAMPLED, estimand, trim)
    assert res.estimate.value == pytest.approx(value[0], rel=POINT_RTOL)
    assert res.estimate.std_error == pytest.approx(math.sqrt(V[0, 0]), rel=SANDWICH_RTOL)
    assert res.estimate.inference == "influence_function"


def test_weighted_segment_effects_and_their_wald_test_equal_the_sandwich_on_the_segment_rows():
    """A segment's IPW effect: the Hajek means over its rows with the logit of all rows, s-weighted, with the
    sandwich of those equations; the segments share the logit's term, so the Wald test of equal effects reads
    their joint covariance."""
    data = SAMPLED.assign(g=np.where(SAMPLED.x2 > 0.5, "high", np.where(SAMPLED.x2 > -0.5, "mid", "low")))
    res = _estimate(data, "att", segments=["g"])
    by_label = {e.label: e for e in res.effects}
    levels = ["high", "low", "mid"]  # sorted, as the design compares them with the first
    value, V = _weighted_stacked_sandwich(data, "att", segments=[(data.g == v).to_numpy(float) for v in levels])
    assert [by_label[f"g={v}"].value for v in levels] == pytest.approx(value, rel=POINT_RTOL)
    assert [by_label[f"g={v}"].std_error for v in levels] == pytest.approx(np.sqrt(np.diag(V)), rel=SANDWICH_RTOL)
    C = np.array([[-1.0, 1.0, 0.0], [-1.0, 0.0, 1.0]])
    wald = float((C @ value) @ np.linalg.solve(C @ V @ C.T, C @ value))
    assert res.diagnostics["heterogeneity"][0]["statistic"] == pytest.approx(wald, rel=SANDWICH_RTOL)


@pytest.mark.parametrize("estimand", ["ate", "att", "atc"])
def test_weighted_aipw_equals_statsmodels_weighted_nuisances(estimand):
    """AIPW with weights: the logit fitted with them, each arm's outcome model by WLS (statsmodels here), the
    effect the s-weighted mean of the scores over the estimand's arm, the SE from the s-weighted scores."""
    import statsmodels.api as sm

    X = SAMPLED[["x1", "x2"]].to_numpy()
    t, y, s = SAMPLED["t"].to_numpy(), SAMPLED["y"].to_numpy(float), SAMPLED["s"].to_numpy(float)
    Z = np.column_stack([np.ones(len(t)), X])
    e = 1 / (1 + np.exp(-(Z @ _weighted_logit(Z, t.astype(float), s))))
    m1, m0 = (sm.WLS(y[t == a], Z[t == a], weights=s[t == a]).fit().predict(Z) for a in (1, 0))
    score = {"ate": m1 - m0 + t * (y - m1) / e - (1 - t) * (y - m0) / (1 - e),
             "att": t * (y - m0) - (1 - t) * e * (y - m0) / (1 - e),
             "atc": (1 - t) * (m1 - y) + t * (1 - e) * (y - m1) / e}[estimand]
    count = {"ate": np.ones(len(t)), "att": t, "atc": 1 - t}[estimand] * s
    value = np.sum(s * score) / count.sum()
    se = math.sqrt(np.sum((s * score - count * value) ** 2)) / count.sum()
    res = _estimate(SAMPLED, estimand, options={"estimator": "aipw"})
    assert res.estimate.value == pytest.approx(value, rel=POINT_RTOL)
    assert res.estimate.std_error == pytest.approx(se, rel=POINT_RTOL)


@pytest.mark.parametrize("estimator,estimand", [("ipw", "ate"), ("ipw", "att"), ("aipw", "ate"), ("aipw", "att"),
                                                ("aipw", "atc")])
def test_integer_weights_give_the_point_estimates_of_repeated_rows(estimator, estimand):
    """Whole-number weights: the weighted logit, WLS and weighted means are those of each row repeated that many
    times, so the headline, the segment effects and the balance table's means equal the repeated data's."""
    data = SAMPLED.assign(k=np.random.default_rng(4).integers(1, 4, size=len(SAMPLED)).astype(float),
                          g=np.where(SAMPLED.x2 > 0, "high", "low"))
    repeated = data.loc[data.index.repeat(data.k.astype(int))].reset_index(drop=True)
    options = {"estimator": estimator}
    a = _estimate(data, estimand, weights="k", segments=["g"], options=options)
    b = _estimate(repeated, estimand, weights=None, segments=["g"], options=options)
    assert a.estimate.value == pytest.approx(b.estimate.value, rel=POINT_RTOL)
    assert [e.value for e in a.effects] == pytest.approx([e.value for e in b.effects], rel=POINT_RTOL)
    for ra, rb in zip(a.diagnostics["balance"], b.diagnostics["balance"]):
        for key in ("mean_treated_before", "mean_control_before", "mean_treated_after", "mean_control_after"):
            assert ra[key] == pytest.approx(rb[key], rel=POINT_RTOL, abs=1e-12)
    assert a.n["used"] == len(data) and b.n["used"] == len(repeated)


@pytest.mark.parametrize("estimator", ["ipw", "aipw"])
def test_sampling_weights_recover_the_population_effect_an_unequal_sample_misses(estimator):
    """A sample over-representing large effects (``sampled.py``, ~50,000 units of a population of 100,000 whose
    average effect is 1): weighted by the inverse inclusion probability, the estimate lies within 3 SEs of 1;
    unweighted it estimates the sample's effect, more than 20 SEs away."""
    data = sampled_study(100_000, seed=3)
    options = {"estimator": estimator}
    weighted = _estimate(data, options=options).estimate
    unweighted = _estimate(data, weights=None, options=options).estimate
    assert abs(weighted.value - POPULATION_ATE) < 3 * weighted.std_error
    assert abs(unweighted.value - POPULATION_ATE) > 20 * unweighted.std_error


def test_weighted_interval_covers_the_population_effect_at_its_nominal_rate():
    """95% intervals of the weighted IPW and AIPW ATE over 300 samples (each of a new population of 10,000, about
    5,000 units): the SE of units sampled with probability 1/s from an infinite population. Binomial SE of a
    rate: 1.26 points; the band allows 3 of them below. (IPW's sandwich converges slowly: at 1,500 units it
    covered 90.5%, at 5,000 93.7%; AIPW 96% and 95%.)"""
    hits = {"ipw": 0, "aipw": 0}
    reps = 300
    for seed in range(reps):
        d = sampled_study(10_000, seed=100 + seed)
        X, t, y, s = d[["x1", "x2"]].to_numpy(), d.t.to_numpy(bool), d.y.to_numpy(float), d.s.to_numpy(float)
        from causalcli.designs.weighting.design import fit_outcome

        e = fit_propensity(X, t, s=s).e
        r = ipw(y, t, e, "ate", Z=np.column_stack([np.ones(t.size), X]), s=s)
        m0, m1 = fit_outcome(X, t, y, s=s)
        q = aipw(y, t, e, m0, m1, "ate", s)
        for name, fit in (("ipw", r), ("aipw", q)):
            hits[name] += abs(fit["value"] - POPULATION_ATE) <= 1.959964 * fit["std_error"]
    for name, k in hits.items():
        assert 0.912 <= k / reps <= 0.988, (name, k)


def test_overlap_shares_are_those_of_the_weighted_population():
    """The shares of units outside thresholds.propensity_bounds are shares of the weights ``s``."""
    res = _estimate(SAMPLED, thresholds={"propensity_bounds": [0.3, 0.7]})
    X = SAMPLED[["x1", "x2"]].to_numpy()
    t, s = SAMPLED.t.to_numpy(bool), SAMPLED.s.to_numpy(float)
    e = 1 / (1 + np.exp(-(np.column_stack([np.ones(t.size), X]) @ _weighted_logit(
        np.column_stack([np.ones(t.size), X]), t.astype(float), s))))
    outside = (e < 0.3) | (e > 0.7)
    overlap = res.diagnostics["overlap"]
    assert overlap["share_treated_outside"] == pytest.approx(s[t & outside].sum() / s[t].sum(), rel=1e-12)
    assert overlap["share_control_outside"] == pytest.approx(s[~t & outside].sum() / s[~t].sum(), rel=1e-12)
    assert overlap["share_all_outside"] == pytest.approx(s[outside].sum() / s.sum(), rel=1e-12)
    assert overlap["share_all_outside"] != pytest.approx(outside.mean(), rel=1e-3)  # the weights matter here


def _run_cli(runner, tmp_path, data: pd.DataFrame, name: str, *args, **spec):
    import yaml

    data.to_csv(tmp_path / f"{name}.csv", index=False)
    full = {**BASE, "data": {"path": f"{name}.csv"}, "weights": "s",
            "design": {"method": "weighting", "estimand": "ate"}, **spec}
    path = tmp_path / f"{name}.yaml"
    path.write_text(yaml.safe_dump(full))
    res = invoke(runner, ["estimate", str(path), "--format", "json", *args])
    return res.exit_code, (json.loads(res.stdout) if res.stdout.strip() else None), res.stderr


def test_zero_weights_are_dropped_and_said_missing_ones_counted_negative_ones_refused(runner, tmp_path):
    """As iv and did: rows of weight 0 dropped (n.dropped_zero_weight, a warning) with the estimate of the data
    without them; a missing weight drops its row under the weights role; a negative one is exit 3."""
    zero = SAMPLED.assign(s=np.where(np.arange(len(SAMPLED)) < 10, 0.0, SAMPLED.s))
    code, got, err = _run_cli(runner, tmp_path, zero, "zero")
    _, kept, _ = _run_cli(runner, tmp_path, SAMPLED.iloc[10:], "kept")
    assert code in (0, 1), err
    assert got["estimate"]["value"] == pytest.approx(kept["estimate"]["value"], rel=1e-12)
    assert got["estimate"]["std_error"] == pytest.approx(kept["estimate"]["std_error"], rel=1e-12)
    assert got["n"]["dropped_zero_weight"] == 10 and got["n"]["used"] == len(SAMPLED) - 10
    assert any(w.startswith("10 rows with a weight of 0 ('s') left out") for w in got["warnings"])
    assert got["diagnostics"]["weights"] == {**kept["diagnostics"]["weights"], "zero_weight_rows": 10}

    missing = SAMPLED.assign(s=np.where(np.arange(len(SAMPLED)) < 4, np.nan, SAMPLED.s))
    code, got, err = _run_cli(runner, tmp_path, missing, "missing")
    assert code in (0, 1), err
    assert got["n"]["dropped_missing_weights"] == 4 and got["n"]["used"] == len(SAMPLED) - 4
    _, kept, _ = _run_cli(runner, tmp_path, SAMPLED.iloc[4:], "kept4")
    assert got["estimate"]["value"] == pytest.approx(kept["estimate"]["value"], rel=1e-12)
    validated = invoke(runner, ["validate", str(tmp_path / "missing.yaml")])
    assert validated.exit_code == 0 and "4 are dropped for a missing value (weights 4)" in validated.stdout

    negative = SAMPLED.assign(s=np.where(np.arange(len(SAMPLED)) < 3, -1.0, SAMPLED.s))
    code, _, err = _run_cli(runner, tmp_path, negative, "negative")
    assert code == 3 and "weights column 's' has 3 negative or infinite values; weights must be >= 0" in err


@pytest.mark.parametrize("estimator", ["ipw", "aipw"])
def test_refuters_refit_with_the_weights(runner, tmp_path, estimator):
    """On sim_sampled the weighted ATE (1.04; aipw 1.02) and the unweighted one (1.57) differ by over 4 SEs: the
    random common cause's refits, with the weights, stay near the weighted estimate, and the placebo's near 0."""
    refute = [{"random_common_cause": {"simulations": 10}}, {"placebo_treatment": {"simulations": 10}}]
    design = {"method": "weighting", "estimand": "ate", "options": {"estimator": estimator}}
    code, got, err = _run_cli(runner, tmp_path, SAMPLED, "refuted", refute=refute, design=design)
    assert code in (0, 1), err
    unweighted = _estimate(SAMPLED, weights=None, options={"estimator": estimator}).estimate.value
    headline = got["estimate"]["value"]
    assert abs(headline - unweighted) > 0.3
    refs = {r["name"]: r for r in got["refutations"]}
    assert refs["random_common_cause"]["new_effect"] == pytest.approx(headline, abs=0.05)
    assert abs(refs["placebo_treatment"]["new_effect"]) < 0.5 * abs(headline)


@pytest.mark.parametrize("options", [{"propensity_model": "gbm"},
                                     {"estimator": "aipw", "propensity_model": "gbm", "outcome_model": "gbm"}])
def test_gradient_boosting_reads_the_weights(options):
    """Boosting takes the weights as sample_weight: the propensity scores are those of scikit-learn's classifier
    fitted with them on the same folds, and the study's estimate moves with the weights."""
    from sklearn.ensemble import HistGradientBoostingClassifier

    from causalcli.models.folds import permuted_fold_ids

    X = SAMPLED[["x1", "x2"]].to_numpy()
    t, s = SAMPLED.t.to_numpy(bool), SAMPLED.s.to_numpy(float)
    label = permuted_fold_ids(t.size, 5, 0)
    e = np.empty(t.size)
    for k in range(5):
        train = label != k
        clf = HistGradientBoostingClassifier(random_state=0, early_stopping=True).fit(X[train], t[train],
                                                                                     sample_weight=s[train])
        e[~train] = clf.predict_proba(X[~train])[:, 1]
    assert fit_propensity(X, t, "gbm", s=s).e == pytest.approx(e, rel=1e-12)
    weighted = _estimate(SAMPLED, options=options, seed=0).estimate.value
    assert weighted != pytest.approx(_estimate(SAMPLED, weights=None, options=options, seed=0).estimate.value,
                                     rel=1e-3)
