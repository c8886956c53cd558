"""Matching's effects by segment (top-level ``segments``): R's Match on each segment's subset, simulated truths,
Mahalanobis segments, the heterogeneity test's level, and bad input.

The peer is ``tests/reference/matching/match_segments.R``: glm on every row, then ``Match(Y, Tr, X = score)`` on
each segment's rows (Mahalanobis: ``X`` = the covariates that vary there, ``Weight = 2``), output committed in
``match_segments.csv`` (R and Matching versions in ``r_session_segments.txt``), so no test calls R.
"""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

import causalcli
from tests.conftest import invoke

REFERENCE = Path(__file__).resolve().parent / "reference" / "matching"
R_SEGMENTS = pd.read_csv(REFERENCE / "match_segments.csv", dtype={"caliper": str}, keep_default_na=False,
                         na_values={"se": ["NA"]})  # caliper "NA": none
R_VERSIONS = " / ".join((REFERENCE / "r_session_segments.txt").read_text().splitlines())
# The same matches on both sides (the score agrees with glm's to ~1e-12, far inside the 1e-5 tie tolerance), so
# the estimate differs by summation order only: 1e-8 is the engine's promise (tests/reference/matching).
ESTIMATE_TOL = 1e-8
SE_RTOL = 1e-6  # the Abadie-Imbens variance: the same sums, another order (as test_match_r.py)

SEGMENT_EFFECT = {"a": 1.0, "b": 2.0, "c": 4.0}  # the effect within each value of g, as in match_segments.R


def spec(estimand: str = "ate", segments=("s", "g"), **options) -> dict:
    return {"version": 1, "name": "segments", "treatment": "treat", "outcome": "y",
            "covariates": ["x1", "x2", "s", "g"], "categorical": ["g"], "segments": list(segments),
            "design": {"method": "matching", "estimand": estimand, "options": options}, "refute": [], "seed": 0}


def simulate(n: int, seed: int, heterogeneous: bool = True) -> pd.DataFrame:
    """match_segments.R's model: the effect is SEGMENT_EFFECT[g] + (2 s - 1); s, g independent, P(s = 1) = 1/2,
    so the ATE within g=v is SEGMENT_EFFECT[v] and within s=v mean(SEGMENT_EFFECT) -/+ 1."""
    rng = np.random.default_rng(seed)
    x1, x2 = rng.normal(size=n), rng.normal(size=n)
    s = rng.integers(0, 2, size=n)
    g = rng.choice(list(SEGMENT_EFFECT), size=n)
    logit = -0.3 + 0.7 * x1 - 0.5 * x2 + 0.4 * s + 0.3 * (g == "b") - 0.3 * (g == "c")
    treat = (rng.uniform(size=n) < 1 / (1 + np.exp(-logit))).astype(int)
    tau = np.vectorize(SEGMENT_EFFECT.get)(g) + (2 * s - 1) if heterogeneous else np.full(n, 2.0)
    y = tau * treat + x1 + 0.5 * x2 + s + (g == "c") + rng.normal(size=n)
    return pd.DataFrame({"treat": treat, "y": y, "x1": x1, "x2": x2, "s": s, "g": g, "tau": tau})


def by_label(result) -> dict:
    return {e.label: e for e in result.effects}


# ---------------------------------------------------------------- R's Match on each segment's rows

SETTING_COLUMNS = ["estimand", "neighbors", "caliper", "distance", "replace", "bias_correction", "tolerance"]
SETTINGS = R_SEGMENTS.drop_duplicates(SETTING_COLUMNS)


def _setting_id(row) -> str:
    return (f"{row.estimand}-M{row.neighbors}-caliper{row.caliper}-{row.distance}"
            f"{'' if row['replace'] else '-noreplace'}{'-biasadj' if row.bias_correction else ''}")


@pytest.mark.parametrize("setting", [r for _, r in SETTINGS.iterrows()],
                         ids=[f"{_setting_id(r)}-{R_VERSIONS}" for _, r in SETTINGS.iterrows()])
def test_each_segment_is_r_match_on_its_rows_with_the_score_fitted_on_all(setting):
    data = pd.read_csv(REFERENCE / "segments_sim.csv")
    # se: ai2006, the standard error that treats the score as known, as R's Match does (the default adjusts it for
    # the estimated score: test_the_default_segment_standard_error_adds_the_estimated_score_adjustment)
    options = {"se": "ai2006", "neighbors": int(setting.neighbors), "distance": setting.distance,
               "replace": bool(setting["replace"]), "bias_correction": bool(setting.bias_correction),
               "tolerance": float(setting.tolerance)}
    if setting.caliper != "NA":
        options["caliper"] = float(setting.caliper)
    r = causalcli.estimate(spec(setting.estimand.lower(), **options), data=data)
    got = by_label(r)
    balance = {b["segment"]: b for b in r.diagnostics["segment_balance"]}
    expected = R_SEGMENTS[(R_SEGMENTS[SETTING_COLUMNS] == setting[SETTING_COLUMNS]).all(axis=1)]
    assert len(expected) == 5 and sorted(got) == sorted(expected.segment)
    for row in expected.itertuples():
        e, b = got[row.segment], balance[row.segment]
        assert (b["treated"], b["control"]) == (row.n_treated, row.n_control)
        assert b["dropped_unmatched"] == row.n_dropped
        assert row.tie_free  # else R broke a tie at random and its matches are one draw of several
        assert e.value == pytest.approx(row.estimate, rel=ESTIMATE_TOL, abs=ESTIMATE_TOL), row.segment
        if not setting["replace"]:  # Match returns no Abadie-Imbens se without replacement: its se.standard
            assert math.isnan(row.se)
            assert b["std_error_r_match"] == pytest.approx(row.se_standard, rel=SE_RTOL)
            continue
        assert b["std_error_r_match"] == pytest.approx(row.se, rel=SE_RTOL), row.segment
        if row.n_dropped == 0:  # R's se counts dropped units in N; with none dropped it is the reported one
            assert e.std_error == pytest.approx(row.se, rel=SE_RTOL), row.segment
        else:
            assert e.std_error > row.se
        assert e.inference.startswith("abadie_imbens_2006_score_as_known; p_value_adjusted: holm over "
                                      if setting.distance == "propensity" else "abadie_imbens; p_value_adjusted")


def test_the_fixtures_calipers_drop_units():
    """Guards the comparison above against a fixture where the branch of dropped units is not exercised."""
    with_caliper = R_SEGMENTS[R_SEGMENTS.caliper != "NA"]
    assert (with_caliper.n_dropped > 0).all()


# ---------------------------------------------------------------- the headline, the Wald test, the balance


def _segment_terms(data: pd.DataFrame, r, estimand: str) -> dict:
    """Per segment label: (dtau, c) of Abadie-Imbens (2016) on its rows, and the logit information on all rows."""
    from causalcli.inference.abadie_imbens import ai2016_ate_c, ai2016_att_terms

    coef = r.diagnostics["propensity_model"]["coefficients"]
    X = np.column_stack([data.x1, data.x2, data.s, data.g == "b", data.g == "c"]).astype(float)
    score = coef["(intercept)"] + X @ np.array([coef["x1"], coef["x2"], coef["s"], coef["g[b]"], coef["g[c]"]])
    p = 1 / (1 + np.exp(-score))
    xi = np.column_stack([np.ones(len(data)), X])
    information = (xi * (p * (1 - p))[:, None]).T @ xi / len(data)
    t, y = data.treat.to_numpy().astype(bool), data.y.to_numpy()
    out = {}
    for e in r.effects:
        column, level = e.label.split("=")
        rows = (data[column].astype(str) == level).to_numpy()
        if estimand == "ate":
            out[e.label] = (np.zeros(6), ai2016_ate_c(y[rows], t[rows], X[rows], p[rows]))
        else:
            flip = estimand == "atc"
            terms = ai2016_att_terms(y[rows], t[rows] ^ flip, X[rows], np.abs(flip - p[rows]),
                                     -e.value if flip else e.value, information)
            out[e.label] = (terms.dtau, terms.c)
    return out, information


@pytest.mark.parametrize("estimand", ["att", "atc", "ate"])
def test_the_default_segment_standard_error_adds_the_estimated_score_adjustment(estimand):
    """The segment's variance is R's (score as known) plus (dtau' I^-1 dtau - c' I^-1 c) / N, with the
    Abadie-Imbens (2016) terms over the segment's rows and the information of the logit on all N rows
    (causalcli/designs/matching/segments.py derives it; tests/test_segments_coverage.py measures its coverage)."""
    data = pd.read_csv(REFERENCE / "segments_sim.csv")
    r = causalcli.estimate(spec(estimand), data=data)
    known = {e.label: e for e in causalcli.estimate(spec(estimand, se="ai2006"), data=data).effects if e.label}
    terms, information = _segment_terms(data, r, estimand)
    solve = lambda a, b: float(a @ np.linalg.solve(information, b))  # noqa: E731
    moved = 0
    for e in r.effects:
        dtau, c = terms[e.label]
        assert e.value == known[e.label].value
        variance = known[e.label].std_error ** 2 + (solve(dtau, dtau) - solve(c, c)) / len(data)
        assert e.std_error == pytest.approx(np.sqrt(variance), rel=1e-10), e.label
        assert e.inference.startswith("abadie_imbens_2016_estimated_propensity; p_value_adjusted: holm over ")
        assert known[e.label].inference.startswith("abadie_imbens_2006_score_as_known; ")
        moved += abs(e.std_error / known[e.label].std_error - 1) > 0.005
    assert moved >= 3  # the adjustment is not negligible here (the test can fail)
    if estimand == "ate":  # c' I^-1 c >= 0: the ATE's variance only falls
        assert all(e.std_error < known[e.label].std_error for e in r.effects)


@pytest.mark.parametrize("options", [{"caliper": 0.05}, {"bias_correction": True}, {"replace": False},
                                     {"exact": ["s"]}])
def test_outside_the_2016_conditions_segments_treat_the_score_as_known(options):
    data = pd.read_csv(REFERENCE / "segments_sim.csv")
    r = causalcli.estimate(spec("att", segments=("g",), **options), data=data)
    assert r.effects and all(e.inference.startswith("abadie_imbens_2006_score_as_known; ") for e in r.effects)


def test_the_headline_is_unchanged_and_the_wald_test_reads_the_segments_covariance():
    data = pd.read_csv(REFERENCE / "segments_sim.csv")
    with_segments = causalcli.estimate(spec("att"), data=data)
    without = causalcli.estimate({**spec("att"), "segments": []}, data=data)
    assert with_segments.estimate.value == pytest.approx(without.estimate.value, rel=1e-12)
    assert with_segments.estimate.std_error == pytest.approx(without.estimate.std_error, rel=1e-12)
    assert with_segments.estimate.inference == without.estimate.inference == "abadie_imbens_2016_estimated_propensity"
    got = by_label(with_segments)
    terms, information = _segment_terms(data, with_segments, "att")
    solve = lambda a, b: float(a @ np.linalg.solve(information, b))  # noqa: E731
    from scipy.stats import chi2

    for column, labels in (("s", ["s=0", "s=1"]), ("g", ["g=a", "g=b", "g=c"])):
        test = next(h for h in with_segments.diagnostics["heterogeneity"] if h["segment"] == column)
        values = np.array([got[x].value for x in labels])
        # disjoint rows: independent given the score; the shared estimated score adds the off-diagonal terms
        V = np.array([[got[a].std_error ** 2 if a == b else
                       (solve(terms[a][0], terms[b][0]) - solve(terms[a][1], terms[b][1])) / len(data)
                       for b in labels] for a in labels])
        assert np.abs(V - np.diag(np.diag(V))).max() > 1e-5  # the cross terms are there
        C = np.column_stack([-np.ones(len(labels) - 1), np.eye(len(labels) - 1)])
        stat = float((C @ values) @ np.linalg.solve(C @ V @ C.T, C @ values))
        assert test["statistic"] == pytest.approx(stat, rel=1e-10)
        assert test["df"] == len(labels) - 1 and test["p_value"] == pytest.approx(chi2.sf(stat, len(labels) - 1))
        # with the score as known the covariance is diagonal: Cochran's Q about the precision-weighted mean
        known = causalcli.estimate(spec("att", se="ai2006"), data=data)
        k = by_label(known)
        w = 1 / np.array([k[x].std_error for x in labels]) ** 2
        q = float(np.sum(w * (values - np.sum(w * values) / w.sum()) ** 2))
        assert next(h for h in known.diagnostics["heterogeneity"] if h["segment"] == column)["statistic"] == \
            pytest.approx(q, rel=1e-10)
        # Holm over the column's values
        p = sorted((got[x].p_value, x) for x in labels)
        for rank, (value, x) in enumerate(p):
            assert got[x].p_value_adjusted == pytest.approx(
                min(1.0, max(min(1.0, (len(labels) - j) * p[j][0]) for j in range(rank + 1))))


def test_segment_balance_is_the_balance_table_of_the_segments_own_matches():
    from causalcli.checks.balance import balance_table
    from causalcli.designs.matching.nearest import match

    data = pd.read_csv(REFERENCE / "segments_sim.csv")
    r = causalcli.estimate(spec("att"), data=data)
    coef = r.diagnostics["propensity_model"]["coefficients"]
    X = np.column_stack([data.x1, data.x2, data.s, data.g == "b", data.g == "c"]).astype(float)
    score = coef["(intercept)"] + X @ np.array([coef["x1"], coef["x2"], coef["s"], coef["g[b]"], coef["g[c]"]])
    Xb = np.column_stack([data.x1, data.x2, data.s, data.g == "a", data.g == "b", data.g == "c"]).astype(float)
    t = data.treat.to_numpy().astype(bool)
    for row in r.diagnostics["segment_balance"]:
        column, level = row["segment"].split("=")
        rows = (data[column].astype(str) == level).to_numpy()
        m = match(data.y[rows].to_numpy(), t[rows], score[rows], estimand="att")
        table = balance_table(Xb[rows], t[rows], [f"c{j}" for j in range(6)], m.match_weights + m.focal_matched,
                              "att")
        assert row["max_abs_smd_after"] == pytest.approx(max(abs(x["smd_after"]) for x in table), rel=1e-12)
        assert row["max_abs_smd_after"] < row["max_abs_smd_before"]


# ---------------------------------------------------------------- simulated truths


@pytest.mark.parametrize("distance", ["propensity", "mahalanobis"])
def test_segment_effects_recover_the_simulated_effects(distance):
    df = simulate(8_000, seed=3)
    mean_effect = np.mean(list(SEGMENT_EFFECT.values()))
    truth = {**{f"g={v}": e for v, e in SEGMENT_EFFECT.items()}, "s=0": mean_effect - 1, "s=1": mean_effect + 1}
    r = causalcli.estimate(spec("ate", distance=distance), data=df)
    got = by_label(r)
    assert list(got) == ["s=0", "s=1", "g=a", "g=b", "g=c"]
    for label, value in truth.items():
        assert abs(got[label].value - value) < 3 * got[label].std_error, (label, got[label].value, value)
    assert all(h["p_value"] < 1e-6 for h in r.diagnostics["heterogeneity"])
    assert sum("the effect differs across the values of" in w for w in r.warnings) == 2
    assert all(b["max_abs_smd_after"] < 0.1 for b in r.diagnostics["segment_balance"])
    # the ATT within a segment: the mean effect over its treated rows
    att = by_label(causalcli.estimate(spec("att", distance=distance), data=df))
    treated = df[df.treat == 1]
    for label, e in att.items():
        column, level = label.split("=")
        sample_att = treated.tau[treated[column].astype(str) == level].mean()
        assert abs(e.value - sample_att) < 3 * e.std_error, (label, e.value, sample_att)


def test_mahalanobis_segments_leave_the_segment_column_out_of_the_metric():
    """Within g=a the dummies of g are constant: kept, they would make the covariance singular and Match's metric
    fall back to the identity. The segment's effect is matching on the covariates that vary in it."""
    from causalcli.designs.matching.nearest import mahalanobis_coordinates, match

    df = simulate(1_500, seed=4)
    r = causalcli.estimate(spec("att", segments=("g",), distance="mahalanobis"), data=df)
    got = by_label(r)
    assert r.estimator == "mahalanobis_nearest"
    for level in "abc":
        rows = (df.g == level).to_numpy()
        X = df.loc[rows, ["x1", "x2", "s"]].to_numpy(float)
        m = match(df.y[rows].to_numpy(), df.treat[rows].to_numpy().astype(bool), np.zeros(rows.sum()),
                  estimand="att", U=mahalanobis_coordinates(X))
        assert got[f"g={level}"].value == pytest.approx(m.estimate, rel=1e-12)
        assert got[f"g={level}"].std_error == pytest.approx(m.std_error_matched, rel=1e-12)
        assert got[f"g={level}"].inference.startswith("abadie_imbens; ")


@pytest.mark.slow  # a statistical check of size or coverage over many draws (make test-slow)
def test_with_a_constant_effect_the_heterogeneity_test_does_not_reject_too_often():
    """20 seeds x 2 columns x 2 distances at alpha 0.05: with the right (independent) covariance the rejections
    are at most Binomial(80, 0.05) (mean 4; more than 10 has probability 0.003). SEs too small (or the segments
    wrongly treated as sharing rows) reject far more often."""
    rejected = 0
    for seed in range(20):
        df = simulate(1_200, seed=100 + seed, heterogeneous=False)
        for distance in ("propensity", "mahalanobis"):
            r = causalcli.estimate(spec("ate", distance=distance), data=df)
            rejected += sum(h["p_value"] < 0.05 for h in r.diagnostics["heterogeneity"])
    assert rejected <= 10


# ---------------------------------------------------------------- bad input


def test_a_segment_without_controls_is_skipped_with_a_warning_naming_it():
    df = simulate(2_000, seed=5)
    df = df[~((df.g == "c") & (df.treat == 0))]  # g=c: treated units only (as a covariate g would separate the arms)
    r = causalcli.estimate({**spec("att", segments=("g",), exact=["s"]), "covariates": ["x1", "x2", "s"],
                            "categorical": []}, data=df)
    got = by_label(r)
    assert sorted(got) == ["g=a", "g=b"]
    warning = next(w for w in r.warnings if w.startswith("no effect reported for 1 segment value"))
    assert "g=c (" in warning and " 0 control" in warning
    assert [b["segment"] for b in r.diagnostics["segment_balance"]] == ["g=a", "g=b"]
    assert got["g=a"].inference.endswith("holm over 2 values of g")


def test_a_segment_the_caliper_leaves_unmatched_is_skipped_with_the_reason():
    df = simulate(2_000, seed=6)
    # in g=c, controls far from every treated unit on the score: none within the caliper
    far = (df.g == "c") & (df.treat == 0)
    df.loc[far, "x1"] = df.loc[far, "x1"] - 6
    r = causalcli.estimate(spec("att", segments=("g",), caliper=0.05), data=df)
    assert "g=c" not in by_label(r) and "g=a" in by_label(r)
    warning = next(w for w in r.warnings if w.startswith("no effect reported for"))
    assert "g=c (the caliper of 0.05 SD" in warning


def test_segments_refused_on_the_treatment_and_missing_values_counted(runner, tmp_path):
    df = simulate(600, seed=7)
    df.loc[df.index[:7], "g"] = None
    path = tmp_path / "d.csv"
    df.to_csv(path, index=False)
    import yaml

    bad = {**spec(segments=("treat",)), "data": {"path": "d.csv"}}
    (tmp_path / "bad.yaml").write_text(yaml.safe_dump(bad))
    res = invoke(runner, ["estimate", str(tmp_path / "bad.yaml")])
    assert res.exit_code == 2 and "segments[0] is the treatment 'treat'" in res.stderr
    assert "Traceback" not in res.stderr
    good = {**spec(segments=("g",), exact=[]), "covariates": ["x1", "x2", "s"], "categorical": [],
            "data": {"path": "d.csv"}}
    (tmp_path / "good.yaml").write_text(yaml.safe_dump(good))
    r = causalcli.estimate(str(tmp_path / "good.yaml"))
    assert r.n["dropped_missing_segments"] == 7 and r.n["treated"] + r.n["control"] == 593
    assert sorted(by_label(r)) == ["g=a", "g=b", "g=c"]
