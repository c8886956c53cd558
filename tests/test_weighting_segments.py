"""Weighting's effects by segment (top-level ``segments``): simulated truths, and IPW and AIPW by hand.

The hand computations take the propensity score from the coefficients the result reports (the fit on
all rows) and recompute everything else independently of ``causalcli.designs.weighting``: the Hajek
means on the segment's rows, the stacked-equations sandwich with its Jacobian by complex-step
differentiation (exact to rounding, unlike finite differences), per-arm OLS by ``lstsq``.
"""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest

import causalcli
from tests.conftest import invoke

SEGMENT_EFFECT = {"a": 1.0, "b": 2.0, "c": 4.0}  # the effect within each value of g
S_SHIFT = 1.0  # the effect is SEGMENT_EFFECT[g] + S_SHIFT * (2 s - 1): +-1 by the binary segment s
# Hand against the code: the same formulas in another order (sums, lstsq against normal equations); 1e-10
# relative is 10^5 times the rounding of sums over 10^4 terms.
HAND_RTOL = 1e-10


def simulate(n: int, seed: int, heterogeneous: bool = True) -> pd.DataFrame:
    """Confounded data: x1, x2, s and g move both treatment odds and outcome; s and g independent, P(s=1) = 1/2,
    so the effect within g=v is SEGMENT_EFFECT[v] and within s=v it is mean(SEGMENT_EFFECT) -/+ S_SHIFT."""
    rng = np.random.default_rng(seed)
    x1, x2 = rng.normal(size=n), rng.normal(size=n)
    s = rng.integers(0, 2, size=n)
    g = rng.choice(list(SEGMENT_EFFECT), size=n)
    logit = -0.3 + 0.7 * x1 - 0.5 * x2 + 0.4 * s + 0.3 * (g == "b") - 0.3 * (g == "c")
    t = (rng.uniform(size=n) < 1 / (1 + np.exp(-logit))).astype(int)
    tau = (np.vectorize(SEGMENT_EFFECT.get)(g) + S_SHIFT * (2 * s - 1)) if heterogeneous else np.full(n, 2.0)
    y = tau * t + x1 + 0.5 * x2 + s + (g == "c") + rng.normal(size=n)
    return pd.DataFrame({"t": t, "y": y, "x1": x1, "x2": x2, "s": s, "g": g})


def spec(estimator: str = "ipw", estimand: str = "ate", **options) -> dict:
    return {"version": 1, "name": "segments", "treatment": "t", "outcome": "y",
            "covariates": ["x1", "x2", "s", "g"], "categorical": ["g"], "segments": ["s", "g"],
            "design": {"method": "weighting", "estimand": estimand, "options": {"estimator": estimator, **options}},
            "refute": [], "seed": 0}


def effects(result) -> dict:
    return {e.label: e for e in result.effects}


def propensity(result, df: pd.DataFrame) -> tuple[np.ndarray, np.ndarray]:
    """The logistic design [1, covariates] rebuilt from the data, and the reported coefficients."""
    coef = result.diagnostics["propensity_model"]["coefficients"]
    cols = []
    for name in coef:
        if name == "(intercept)":
            cols.append(np.ones(len(df)))
        elif "[" in name:  # a categorical level, as design_matrix names it
            column, level = name[:-1].split("[")
            cols.append((df[column].astype(str) == level).to_numpy(float))
        else:
            cols.append(df[name].to_numpy(float))
    return np.column_stack(cols), np.array(list(coef.values()))


def weights(e, t, estimand):
    return {"ate": (1 / e, 1 / (1 - e)), "att": (np.ones_like(e), e / (1 - e)),
            "atc": ((1 - e) / e, np.ones_like(e)), "ato": (1 - e, e)}[estimand]


def stacked_sandwich(Z, beta, t, y, rows, estimand):
    """(effect, SE, influence function) of the Hajek difference on ``rows``, the logistic score on every row.

    Parameters (beta, mu1, mu0); V = A^-1 B A^-T / n with A the Jacobian of the mean estimating function by complex
    steps; the influence function of mu1 - mu0 is c' A^-1 g_i / n (its norm is the SE)."""
    tf = t.astype(float)
    k, n = Z.shape[1], len(y)

    def g(theta):
        b, m1, m0 = theta[:k], theta[k], theta[k + 1]
        e = 1 / (1 + np.exp(-(Z @ b)))
        w1, w0 = weights(e, t, estimand)
        return np.column_stack([Z * (tf - e)[:, None], rows * tf * w1 * (y - m1), rows * (1 - tf) * w0 * (y - m0)])

    e = 1 / (1 + np.exp(-(Z @ beta)))
    w1, w0 = weights(e, t, estimand)
    mu1 = np.sum(rows * tf * w1 * y) / np.sum(rows * tf * w1)
    mu0 = np.sum(rows * (1 - tf) * w0 * y) / np.sum(rows * (1 - tf) * w0)
    theta = np.r_[beta, mu1, mu0].astype(complex)
    A = np.empty((k + 2, k + 2))
    for j in range(k + 2):
        step = theta.copy()
        step[j] += 1e-30j
        A[:, j] = g(step).mean(0).imag / 1e-30
    G = g(theta.real)
    c = np.zeros(k + 2)
    c[k], c[k + 1] = 1, -1
    influence = G @ np.linalg.solve(A, np.eye(k + 2)).T @ c / n
    return mu1 - mu0, math.sqrt(influence @ influence), influence


# ---------------------------------------------------------------- simulated truths


@pytest.mark.parametrize("estimator", ["ipw", "aipw"])
def test_segment_effects_recover_the_simulated_effects_and_the_test_rejects(estimator):
    df = simulate(20_000, seed=11)
    r = causalcli.estimate(spec(estimator), data=df)
    by = effects(r)
    mean_effect = np.mean(list(SEGMENT_EFFECT.values()))
    truth = {**{f"g={v}": e for v, e in SEGMENT_EFFECT.items()},
             "s=0": mean_effect - S_SHIFT, "s=1": mean_effect + S_SHIFT}
    assert list(by) == ["s=0", "s=1", "g=a", "g=b", "g=c"]
    for label, value in truth.items():
        assert abs(by[label].value - value) < 3 * by[label].std_error, (label, by[label].value, value)
        assert by[label].inference.startswith("influence_function; p_value_adjusted: holm over ")
    tests = {h["segment"]: h for h in r.diagnostics["heterogeneity"]}
    assert tests["g"]["df"] == 2 and tests["s"]["df"] == 1
    assert tests["g"]["p_value"] < 1e-6 and tests["s"]["p_value"] < 1e-6
    assert sum("the effect differs across the values of" in w for w in r.warnings) == 2


@pytest.mark.slow  # a statistical check of size or coverage over many draws (make test-slow)
def test_with_a_constant_effect_the_heterogeneity_test_rejects_at_its_level():
    """20 seeds x 2 estimators x 2 columns, at alpha 0.05: the Wald test's rejections are Binomial(80, 0.05) if its
    covariance is right (mean 4); more than 10 has probability 0.003. Too small a covariance (the segments' shared
    propensity term left out, or the SEs too small) rejects far more often."""
    rejected = 0
    for seed in range(20):
        df = simulate(1_500, seed=100 + seed, heterogeneous=False)
        for estimator in ("ipw", "aipw"):
            r = causalcli.estimate(spec(estimator), data=df)
            rejected += sum(h["p_value"] < 0.05 for h in r.diagnostics["heterogeneity"])
    assert rejected <= 10


# ---------------------------------------------------------------- IPW by hand


@pytest.mark.parametrize("estimand,trim", [("ate", None), ("att", None), ("atc", None), ("ato", None),
                                           ("ate", 0.2)])
def test_ipw_segment_is_the_hajek_difference_on_its_rows_with_the_full_data_propensity(estimand, trim):
    df = simulate(4_000, seed=5)
    options = {"trim": trim} if trim else {}
    if estimand == "ato":
        s = spec("ipw", "ate", overlap=True, **options)
        del s["design"]["estimand"]
    else:
        s = spec("ipw", estimand, **options)
    r = causalcli.estimate(s, data=df)
    Z, beta = propensity(r, df)
    e = 1 / (1 + np.exp(-(Z @ beta)))
    t, y = df["t"].to_numpy().astype(bool), df["y"].to_numpy()
    kept = np.ones(len(df), bool) if trim is None else (e >= trim) & (e <= 1 - trim)
    if trim:
        assert not kept.all()
    by = effects(r)
    influence = {}
    for column in ("s", "g"):
        for level in sorted(df[column].astype(str).unique()):
            rows = kept & (df[column].astype(str) == level).to_numpy()
            w1, w0 = weights(e, t, estimand)
            hajek = (np.sum(w1 * y * (rows & t)) / np.sum(w1 * (rows & t))
                     - np.sum(w0 * y * (rows & ~t)) / np.sum(w0 * (rows & ~t)))
            got = by[f"{column}={level}"]
            assert got.value == pytest.approx(hajek, rel=HAND_RTOL, abs=HAND_RTOL)
            value, se, influence[f"{column}={level}"] = stacked_sandwich(Z, beta, t, y, rows, estimand)
            assert value == pytest.approx(hajek, rel=HAND_RTOL)
            assert got.std_error == pytest.approx(se, rel=1e-9)
    # the Wald test of g from the dense influence vectors (they share the logistic score's term)
    labels = ["g=a", "g=b", "g=c"]
    Phi = np.column_stack([influence[x] for x in labels])
    C = np.array([[-1.0, 1, 0], [-1, 0, 1]])
    diff = C @ np.array([by[x].value for x in labels])
    stat = diff @ np.linalg.solve(C @ Phi.T @ Phi @ C.T, diff)
    g_test = next(h for h in r.diagnostics["heterogeneity"] if h["segment"] == "g")
    assert g_test["statistic"] == pytest.approx(stat, rel=1e-8)
    # the correlation is there: leaving it out moves the statistic
    naive = diff @ np.linalg.solve(C @ np.diag(np.diag(Phi.T @ Phi)) @ C.T, diff)
    assert abs(naive - stat) > 1e-3 * stat


# ---------------------------------------------------------------- AIPW by hand


def _ols_predict(X, y):
    coef = np.linalg.lstsq(np.column_stack([np.ones(len(y)), X]), y, rcond=None)[0]
    return coef


@pytest.mark.parametrize("estimand", ["ate", "att", "atc"])
def test_aipw_segment_is_the_mean_of_the_influence_function_over_its_rows(estimand):
    df = simulate(4_000, seed=6)
    r = causalcli.estimate(spec("aipw", estimand), data=df)
    Z, beta = propensity(r, df)
    e = 1 / (1 + np.exp(-(Z @ beta)))
    t, y = df["t"].to_numpy().astype(float), df["y"].to_numpy()
    X = Z[:, 1:]
    m1 = np.column_stack([np.ones(len(y)), X]) @ _ols_predict(X[t == 1], y[t == 1])
    m0 = np.column_stack([np.ones(len(y)), X]) @ _ols_predict(X[t == 0], y[t == 0])
    # the per-unit terms: the effect is sum(num) / sum(den) over the units it averages over
    num = {"ate": m1 - m0 + t * (y - m1) / e - (1 - t) * (y - m0) / (1 - e),
           "att": t * (y - m0) - (1 - t) * e * (y - m0) / (1 - e),
           "atc": (1 - t) * (m1 - y) + t * (1 - e) * (y - m1) / e}[estimand]
    den = {"ate": np.ones(len(y)), "att": t, "atc": 1 - t}[estimand]
    by = effects(r)
    for column in ("s", "g"):
        for level in sorted(df[column].astype(str).unique()):
            rows = (df[column].astype(str) == level).to_numpy()
            share = den[rows].mean()  # the segment's treated (att), control (atc) or whole (ate) share
            psi = (num[rows] / share)  # each unit's term; its mean over the segment is the effect
            value = psi.mean()
            influence = (num[rows] - den[rows] * value) / share
            se = math.sqrt(np.mean(influence ** 2) / rows.sum())
            got = by[f"{column}={level}"]
            assert got.value == pytest.approx(value, rel=HAND_RTOL)
            assert got.std_error == pytest.approx(se, rel=1e-9)
    # the whole sample as one segment is the headline
    share = den.mean()
    assert r.estimate.value == pytest.approx(np.mean(num / share), rel=HAND_RTOL)


# ---------------------------------------------------------------- rows, limits, renderers


def test_rows_missing_a_segment_value_are_dropped_and_counted():
    df = simulate(1_000, seed=2)
    df["region"] = np.where(np.arange(len(df)) % 10 == 0, None, np.where(df["x1"] > 0, "north", "south"))
    s = spec() | {"segments": ["region"]}
    r = causalcli.estimate(s, data=df)
    assert r.n["dropped_missing_segments"] == 100 and r.n["used"] == 900
    assert [e.label for e in r.effects] == ["region=north", "region=south"]
    whole = causalcli.estimate(spec() | {"segments": []}, data=df[df["region"].notna()])
    assert r.estimate.value == pytest.approx(whole.estimate.value, rel=1e-12)


def test_a_segment_value_without_both_arms_is_left_out_with_a_warning():
    df = simulate(1_000, seed=3)
    df["site"] = np.where(df.index < 5, "tiny", "big")
    df.loc[df.index < 5, "t"] = 1
    r = causalcli.estimate(spec() | {"segments": ["site"]}, data=df)
    assert [e.label for e in r.effects] == ["site=big"]
    assert any("site=tiny (5 treated, 0 control)" in w for w in r.warnings)
    assert r.diagnostics["heterogeneity"][0]["statistic"] is None


def test_too_many_segment_values_and_the_treatment_or_outcome_as_segment_are_refused(runner, tmp_path):
    df = simulate(300, seed=4)
    df["id"] = np.arange(len(df)).astype(str)
    df.to_csv(tmp_path / "d.csv", index=False)
    import yaml

    for segments, code, words in ((["id"], 3, "segment column 'id' has 300 values (at most 50)"),
                                  (["t"], 2, "segments[0] is the treatment 't'"),
                                  (["y"], 2, "segments[0] is the outcome 'y'")):
        s = spec() | {"segments": segments, "data": {"path": "d.csv"}}
        (tmp_path / "s.yaml").write_text(yaml.safe_dump(s))
        res = invoke(runner, ["estimate", str(tmp_path / "s.yaml")])
        assert res.exit_code == code and words in res.stderr and "Traceback" not in res.stderr


def test_renderers_show_the_segment_effects_and_the_heterogeneity_test():
    from causalcli.render.html import render_html
    from causalcli.render.markdown import render_markdown

    r = causalcli.estimate(spec(), data=simulate(2_000, seed=8))
    md = render_markdown([r])
    assert "| g=b |" in md and "| s=1 |" in md
    html = render_html([r])
    assert "<td>g=c</td>" in html and "heterogeneity" in html and "Wald chi-square" in html
