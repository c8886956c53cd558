"""Coverage of the effects by segment (top-level ``segments``) over simulated data with known truths (slow).

Matching (causalcli/designs/matching/segments.py): 2,000 rows, three covariates and a three-valued segment
(shares 0.3, 0.4, 0.3), all four in the logit propensity (the segment shifts it by 0, +0.5, -0.5) and in the outcome;
effect ``tau_s + slope x1``. Each draw runs the design's ``segment_effects`` on the logit fitted to all rows (the
path ``causalcli.estimate`` takes, pinned to it on one draw below; the API's loading costs 0.1 s a draw, the
segments 0.01-0.02 s). 1,500 draws per case on two processes:

* ATT, tau = (1, 2, 3) + 0.5 x1: the segment's ATT is tau_s + 0.5 E[x1 | treated, s] (3-d Gauss-Hermite);
* ATE, tau = 2 + 0.5 x1 in every segment: equal segment ATEs, so the same draws give the Wald test's level.
  (A constant added to the treated outcomes of a segment moves its estimate by that constant and leaves every
  variance term as it is, so distinct segment ATEs would cover exactly as these do.)
* ATT, constant effect 2: equal segment ATTs, for the Wald test's level.

Binomial SD of a 95% coverage rate over 1,500 draws: 0.56 points; the band [0.93, 0.97] is 0.95 -/+ 3.6 SD, so an
exact interval fails it with probability about 3e-4 per segment. Wald rejection at 5%: SD 0.56 points, band
[0.03, 0.07]. Measured (2 cores, 67 s for the three cases), coverage by segment a, b, c and SE / SD over draws:
ATT by segment 0.954, 0.958, 0.953 (1.03-1.05); ATE 0.946, 0.953, 0.936 (0.97-1.00), Wald 0.060; constant ATT
0.947, 0.943, 0.941 (0.98-1.00), Wald 0.063. With the standard error that treats the score as known (Abadie-Imbens
2006, ``se: ai2006``, ``_matching_segments(..., se="ai2006")`` on the same draws): ATT by segment 0.967, 0.973,
0.965 (1.09-1.12), ATE 0.961, 0.971, 0.952 (1.03-1.11), constant ATT 0.956, 0.957, 0.948 (1.02-1.04): too wide
where the effect varies along the score, the reason segments carry the Abadie-Imbens (2016) adjustment.

did (causalcli/designs/did/segments.py): 200 units over 6 periods, a two-valued segment (effects 1.0 and 2.5, a
segment-specific level and trend, so the segment is a confounder of the pooled comparison), 40% never treated,
AR(1) errors within the unit (rho 0.6); TWFE with one cohort (period 3), Callaway-Sant'Anna with cohorts 3, 4, 5
(honest-DiD off: it is the headline's and costs 1 s a draw). 800 draws each through ``causalcli.estimate``: each
segment's CRV1 / analytic interval (about 100 clusters per segment, so no few-cluster bootstrap) must cover at
[0.93, 0.97] (binomial SD 0.77 points: 0.95 -/+ 2.6 SD; 800 draws keep the file under 3 minutes on 2 cores,
the API's loading being most of a draw's 0.1 s). Measured (100 s): TWFE 0.949, 0.934 (SE / SD 0.99, 0.97);
Callaway-Sant'Anna 0.944, 0.936 (0.98, 0.96).
"""

from __future__ import annotations

import warnings

import numpy as np
import pandas as pd
import pytest

Z95 = 1.959963984540054
SEGMENTS = np.array(["a", "b", "c"])
SEGMENT_SHARE = (0.3, 0.4, 0.3)
LOGIT = np.array([-0.3, 0.6, -0.5, 0.4])  # intercept, x1, x2, x3
LOGIT_SHIFT = np.array([0.0, 0.5, -0.5])  # by segment
JOBS = 2


def _in_two(fn, seeds) -> list:
    """``fn(seed)`` over the seeds on two processes (each draw seeded alone: the split does not matter)."""
    from joblib import Parallel, delayed

    chunks = np.array_split(np.asarray(seeds), JOBS)
    return [r for part in Parallel(n_jobs=JOBS)(delayed(lambda c: [fn(int(s)) for s in c])(c) for c in chunks)
            for r in part]


# ---------------------------------------------------------------- matching


def _matching_draw(rng, n: int, effects, slope: float):
    X = rng.normal(size=(n, 3))
    s = rng.choice(3, size=n, p=SEGMENT_SHARE)
    t = rng.uniform(size=n) < 1 / (1 + np.exp(-(LOGIT[0] + X @ LOGIT[1:] + LOGIT_SHIFT[s])))
    tau = np.asarray(effects)[s] + slope * X[:, 0]
    y = X[:, 0] + 0.5 * X[:, 1] - 0.5 * X[:, 2] + np.array([0.0, 1.0, -0.5])[s] + tau * t + rng.normal(size=n)
    return pd.DataFrame({"t": t.astype(int), "y": y, "x1": X[:, 0], "x2": X[:, 1], "x3": X[:, 2],
                         "seg": SEGMENTS[s]})


def _matching_truth(estimand: str, effects, slope: float) -> np.ndarray:
    """The population effect within each segment: the ATT averages x1 over the treated (3-d Gauss-Hermite)."""
    if estimand == "ate":
        return np.asarray(effects, dtype=float)
    z, w = np.polynomial.hermite_e.hermegauss(40)
    w = w / w.sum()
    grid = np.meshgrid(z, z, z, indexing="ij")
    weight = w[:, None, None] * w[None, :, None] * w[None, None, :]
    out = []
    for effect, shift in zip(effects, LOGIT_SHIFT):
        p = 1 / (1 + np.exp(-(LOGIT[0] + sum(b * g for b, g in zip(LOGIT[1:], grid)) + shift)))
        out.append(effect + slope * float((weight * p * grid[0]).sum() / (weight * p).sum()))
    return np.array(out)


def _matching_spec(estimand: str) -> dict:
    return {"version": 1, "name": "coverage", "treatment": "t", "outcome": "y",
            "covariates": ["x1", "x2", "x3", "seg"], "categorical": ["seg"], "segments": ["seg"],
            "design": {"method": "matching", "estimand": estimand}, "refute": [], "seed": 0}


def _matching_segments(df: pd.DataFrame, estimand: str, se: str = "ai2016"):
    """The design's segment_effects on the logit fitted to all rows, as MatchingDesign.fit calls it (``se``: the
    design option; ai2006 gave the score-as-known coverage quoted above)."""
    from causalcli.designs.matching.design import MatchingData
    from causalcli.designs.matching.segments import segment_effects
    from causalcli.models.logit import fit_logit
    from causalcli.spec.models import Thresholds

    class Study:  # what segment_effects reads of the study
        conf_level = 0.95
        thresholds = Thresholds()

    names = ("x1", "x2", "x3", "seg[b]", "seg[c]")
    X = np.column_stack([df.x1, df.x2, df.x3, df.seg == "b", df.seg == "c"]).astype(float)
    t = df.t.to_numpy().astype(bool)
    fit = fit_logit(X, t.astype(float))
    d = MatchingData(X=X, t=t, y=df.y.to_numpy(float), covariates=names, X_balance=X, balance_names=names,
                     neighbors=1, caliper=None, tolerance=1e-5, estimand=estimand, rows=len(df), dropped_missing=0,
                     file="simulated", coef=fit.coef, iterations=fit.iterations, segment_columns=("seg",),
                     segment_values=(df.seg.to_numpy(str),), se=se)
    return segment_effects(d, fit.linear_predictor, Study)


def _matching_one(estimand: str, effects, slope: float, seed: int, se: str = "ai2016") -> list[float]:
    r = _matching_segments(_matching_draw(np.random.default_rng(seed), 2000, effects, slope), estimand, se)
    assert [e.label for e in r.effects] == ["seg=a", "seg=b", "seg=c"]
    return [x for e in r.effects for x in (e.value, e.std_error)] + [r.heterogeneity[0]["p_value"]]


def test_the_coverage_draws_take_the_apis_path():
    """The direct call below equals causalcli.estimate on the same data (effects, SEs, inference, the Wald test)."""
    import causalcli

    df = _matching_draw(np.random.default_rng(0), 2000, (1.0, 2.0, 3.0), 0.5)
    for estimand in ("att", "ate"):
        api = causalcli.estimate(_matching_spec(estimand), data=df)
        direct = _matching_segments(df, estimand)
        got = [e for e in api.effects if e.label]
        assert [e.label for e in got] == [e.label for e in direct.effects]
        for a, b in zip(got, direct.effects):
            # the API reads the data through a table: the same numbers up to summation order
            assert (a.value, a.std_error) == pytest.approx((b.value, b.std_error), rel=1e-10)
            assert a.inference == b.inference
            assert a.inference.startswith("abadie_imbens_2016_estimated_propensity")
        assert api.diagnostics["heterogeneity"][0]["statistic"] == pytest.approx(
            direct.heterogeneity[0]["statistic"], rel=1e-8)


MATCHING_CASES = {  # id: (estimand, segment effects, slope on x1, whether the segment effects are equal)
    "att_by_segment": ("att", (1.0, 2.0, 3.0), 0.5, False),
    "ate_equal": ("ate", (2.0, 2.0, 2.0), 0.5, True),
    "att_constant": ("att", (2.0, 2.0, 2.0), 0.0, True),
}
MATCHING_DRAWS = 1500


@pytest.mark.slow
@pytest.mark.parametrize("case", list(MATCHING_CASES))
def test_matching_segment_intervals_cover_at_the_nominal_rate(case):
    estimand, effects, slope, equal = MATCHING_CASES[case]
    truth = _matching_truth(estimand, effects, slope)
    out = np.array(_in_two(lambda s: _matching_one(estimand, effects, slope, s), range(1, MATCHING_DRAWS + 1)))
    value, se, p = out[:, 0:6:2], out[:, 1:6:2], out[:, 6]
    coverage = (np.abs(value - truth) <= Z95 * se).mean(axis=0)
    rejection = float((p < 0.05).mean())
    print(case, "coverage", coverage, "Wald rejection", rejection, "SE / SD", se.mean(axis=0) / value.std(axis=0))
    assert ((coverage >= 0.93) & (coverage <= 0.97)).all(), (case, coverage)
    if equal:
        assert 0.03 <= rejection <= 0.07, (case, rejection)
    else:
        assert rejection > 0.99, (case, rejection)  # effects 1 apart, SEs about 0.2


# ---------------------------------------------------------------- did

DID_EFFECTS = {"a": 1.0, "b": 2.5}
DID_DRAWS = 800


def _did_panel(rng, units: int, periods: int, cohorts, rho: float = 0.6) -> pd.DataFrame:
    seg = rng.choice(list(DID_EFFECTS), size=units)
    g = np.where(rng.uniform(size=units) < 0.4, 0, rng.choice(cohorts, size=units))
    alpha, lam = rng.normal(size=units) + 0.5 * (seg == "b"), rng.normal(size=periods + 1)
    e = np.empty((units, periods))
    e[:, 0] = rng.normal(size=units) / np.sqrt(1 - rho ** 2)  # stationary AR(1) within the unit
    for k in range(1, periods):
        e[:, k] = rho * e[:, k - 1] + rng.normal(size=units)
    unit, time = np.repeat(np.arange(units), periods), np.tile(np.arange(1, periods + 1), units)
    treated = (g[unit] > 0) & (time >= g[unit])
    effect = np.array([DID_EFFECTS[s] for s in seg])[unit]
    y = alpha[unit] + lam[time] + 0.3 * (seg == "b")[unit] * time + treated * effect + e.ravel()
    return pd.DataFrame({"unit": unit, "time": time, "g": g[unit], "d": treated.astype(int), "y": y,
                         "seg": seg[unit]})


def _did_one(estimator: str, seed: int) -> list[float]:
    import causalcli

    design = {"method": "did", "unit": "unit", "time": "time", "estimator": estimator}
    if estimator == "callaway_santanna":
        design.update(cohort="g", options={"honest_did": False})
    spec = {"version": 1, "name": "coverage", "treatment": "d", "outcome": "y", "segments": ["seg"],
            "design": design, "refute": [], "seed": 0}
    df = _did_panel(np.random.default_rng(seed), 200, 6, (3,) if estimator == "twfe" else (3, 4, 5))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        r = causalcli.estimate(spec, data=df)
    got = {e.label: e for e in r.effects if e.label}
    inference = {"twfe": "crv1_fixest;", "callaway_santanna": "cs_analytic;"}[estimator]
    assert all(got[f"seg={s}"].inference.startswith(inference) for s in DID_EFFECTS)  # no few-cluster bootstrap
    return [x for s in DID_EFFECTS for x in (got[f"seg={s}"].ci_lower, got[f"seg={s}"].ci_upper,
                                              got[f"seg={s}"].value, got[f"seg={s}"].std_error)]


@pytest.mark.slow
@pytest.mark.parametrize("estimator", ["twfe", "callaway_santanna"])
def test_did_segment_intervals_cover_at_the_nominal_rate(estimator):
    out = np.array(_in_two(lambda s: _did_one(estimator, s), range(1, DID_DRAWS + 1))).reshape(DID_DRAWS, 2, 4)
    truth = np.array(list(DID_EFFECTS.values()))
    coverage = ((out[..., 0] <= truth) & (truth <= out[..., 1])).mean(axis=0)
    print(estimator, "coverage", coverage, "SE / SD", out[..., 3].mean(axis=0) / out[..., 2].std(axis=0))
    assert ((coverage >= 0.93) & (coverage <= 0.97)).all(), (estimator, coverage)
