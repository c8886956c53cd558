"""Clustered randomisation (`design.unit`): rows summed to units in the engine, delta method on unit sums.

The reference is a regression of the outcome on arm dummies over the rows with a CRV1 variance clustered
on the unit (statsmodels OLS, or WLS weighted by the denominator for a ratio metric, cov_type='cluster').
The estimates are the same number (difference of the arms' row means, or of their ratios). The
variances differ only by small-sample factors, applied explicitly here:

* CRV1 multiplies the sandwich (CR0) by G/(G-1) * (N-1)/(N-K) (G units, N rows, K = 2 coefficients);
* the delta method on units multiplies each arm's CR0 term by n_a/(n_a-1) (n_a units in arm a).

So the delta method's variance is exactly the sum over arms of an intercept-only CRV1 regression on that
arm's rows (K = 1: (N_a-1)/(N_a-K) = 1, G_a/(G_a-1) = n_a/(n_a-1)); and with equal units per arm
(n_a = G/2), the pooled CRV1 variance times (G/2)/(G/2-1) / (G/(G-1) * (N-1)/(N-K)).

Tolerances: ESTIMATE = 1e-9 (exact sums against numpy's sums), SE = 1e-6 (relative, after the factor).
"""

from __future__ import annotations

import json
import math

import numpy as np
import pandas as pd
import pytest

from causalcli.errors import DataError, SpecError
from causalcli.study.run import run_study
from tests.conftest import run_json

ESTIMATE = 1e-9
SE = 1e-6
UNITS = 300  # per arm


def sessions(units_per_arm: int = UNITS, seed: int = 0, icc_sd: float = 2.0, effect: float = 0.2,
             missing: float = 0.0) -> pd.DataFrame:
    """Users randomised 50/50 (exactly units_per_arm each), 1-9 sessions each, outcomes correlated within user."""
    rng = np.random.default_rng(seed)
    g = 2 * units_per_arm
    user = rng.permutation(g) + 1000  # user ids in no particular order
    arm = np.repeat([0, 1], units_per_arm)
    level = rng.normal(0, icc_sd, g)
    count = rng.integers(1, 10, g)
    rows = np.repeat(np.arange(g), count)
    n = len(rows)
    pre = level[rows] + rng.normal(0, 1, n)
    y = 5 + level[rows] + effect * arm[rows] + rng.normal(0, 1, n)
    den = rng.integers(1, 6, n)
    num = rng.binomial(den, 0.3 + 0.05 * arm[rows])
    df = pd.DataFrame({"user": user[rows], "variant": arm[rows], "y": y, "pre": pre, "num": num, "den": den,
                       "day": rng.integers(1, 8, n)})
    if missing:  # never a user's first session: every user keeps a complete row, so arms stay equal in units
        first = np.r_[True, rows[1:] != rows[:-1]]
        df.loc[(rng.random(n) < missing) & ~first, "y"] = np.nan
    return df.sample(frac=1.0, random_state=seed).reset_index(drop=True)  # rows of a user scattered


def spec(path, metrics, unit: str | None = "user", **design) -> dict:
    d = {"method": "experiment", "control": 0, "metrics": metrics, **design}
    if unit is not None:
        d["unit"] = unit
    return {"version": 1, "name": "clustered", "data": {"path": str(path)}, "treatment": "variant", "design": d}


@pytest.fixture(scope="module")
def data(tmp_path_factory):
    df = sessions(missing=0.03)
    path = tmp_path_factory.mktemp("units") / "s.parquet"
    df.to_parquet(path, index=False)
    return df, path


def crv1(y: np.ndarray, x: np.ndarray, groups: np.ndarray, weights: np.ndarray | None = None):
    """(coefficient, CRV1 variance) of the last column of x, statsmodels' cluster-robust covariance."""
    import statsmodels.api as sm

    model = sm.OLS(y, x) if weights is None else sm.WLS(y, x, weights=weights)
    fit = model.fit(cov_type="cluster", cov_kwds={"groups": groups})
    return float(fit.params[-1]), float(fit.cov_params()[-1, -1])


def delta_from_crv1(frame: pd.DataFrame, outcome: np.ndarray, weights: np.ndarray | None = None):
    """The delta method's estimate and variance from CRV1 regressions, with the factors made explicit."""
    t = frame.variant.to_numpy()
    x = np.column_stack([np.ones(len(t)), t])
    value, pooled = crv1(outcome, x, frame.user.to_numpy(), weights)
    per_arm = 0.0
    for a in (0, 1):  # intercept-only CRV1 per arm: factor G_a/(G_a-1), (N_a-1)/(N_a-1) = 1
        rows = t == a
        per_arm += crv1(outcome[rows], np.ones((rows.sum(), 1)), frame.user.to_numpy()[rows],
                        None if weights is None else weights[rows])[1]
    g, n_rows, k = frame.user.nunique(), len(frame), 2
    units = frame.groupby("variant").user.nunique()
    assert units[0] == units[1]  # equal arms: one factor converts the pooled CRV1
    half = units[0]
    crv1_factor = g / (g - 1) * (n_rows - 1) / (n_rows - k)
    return value, per_arm, pooled / crv1_factor * half / (half - 1)


def test_mean_metric_equals_crv1_regression_clustered_on_the_unit(data):
    df, path = data
    res = run_study(spec(path, [{"name": "y", "outcome": "y"}]))
    e = {x.label: x for x in res.effects}["y/1/abs"]
    rows = df.dropna(subset=["y"])  # the metric's complete rows (3% of y missing)
    value, per_arm, pooled = delta_from_crv1(rows, rows.y.to_numpy())
    assert e.value == pytest.approx(value, rel=ESTIMATE)
    assert e.std_error ** 2 == pytest.approx(per_arm, rel=SE)
    assert e.std_error ** 2 == pytest.approx(pooled, rel=SE)
    assert e.inference.startswith("delta_method+clustered_by_unit+welch_t")
    assert res.n["used"] == 2 * UNITS and res.n["rows"] == len(df)


def test_ratio_metric_equals_weighted_crv1_regression(data):
    """sum(num)/sum(den) per arm is WLS of num/den on the arm weighted by den; its scores are num - r den."""
    df, path = data
    res = run_study(spec(path, [{"name": "r", "numerator": "num", "denominator": "den"}]))
    e = {x.label: x for x in res.effects}["r/1/abs"]
    den = df.den.to_numpy().astype(float)
    value, per_arm, pooled = delta_from_crv1(df, df.num.to_numpy() / den, den)
    assert e.value == pytest.approx(value, rel=ESTIMATE)
    assert e.std_error ** 2 == pytest.approx(per_arm, rel=SE)
    assert e.std_error ** 2 == pytest.approx(pooled, rel=SE)


def test_cuped_on_units_equals_crv1_regression_of_the_adjusted_outcome(data):
    """The covariate of a per-row mean metric is the unit's sum over its row count (ratio CUPED): theta is
    pooled over both arms from unit sums, and the effect is the CRV1 regression of y - theta * pre."""
    df, path = data
    full = df.dropna(subset=["y"])
    res = run_study(spec(path, [{"name": "yc", "outcome": "y", "covariate": "pre"}]))
    e = {x.label: x for x in res.effects}["yc/1/abs"]
    theta = res.diagnostics["metrics"][0]["theta"][0]
    units = full.groupby("user").agg(y=("y", "sum"), pre=("pre", "sum"), m=("y", "size"))
    ry, rx = units.y.sum() / units.m.sum(), units.pre.sum() / units.m.sum()
    ey, ex = units.y - ry * units.m, units.pre - rx * units.m
    assert theta == pytest.approx(float((ex * ey).sum() / (ex * ex).sum()), rel=1e-9)
    value, per_arm, pooled = delta_from_crv1(full, (full.y - theta * full.pre).to_numpy())
    assert e.value == pytest.approx(value, rel=ESTIMATE)
    assert e.std_error ** 2 == pytest.approx(per_arm, rel=SE)
    assert e.std_error ** 2 == pytest.approx(pooled, rel=SE)
    raw = {x.label: x for x in run_study(spec(path, [{"name": "y", "outcome": "y"}])).effects}["y/1/abs"]
    assert e.std_error < 0.6 * raw.std_error  # the user's level is in pre: CUPED removes most of it


def test_row_level_analysis_understates_the_error_with_correlated_rows(tmp_path):
    """A/A data whose users differ a lot (intra-user correlation 0.8): the row-level standard error is a
    fraction of the clustered one, and on this draw (one of many such; the slow test counts them) the row-level
    test finds an effect that is not there."""
    df = sessions(units_per_arm=150, seed=5, icc_sd=2.0, effect=0.0)
    path = tmp_path / "aa.parquet"
    df.to_parquet(path, index=False)
    metric = [{"name": "y", "outcome": "y"}]
    clustered = run_study(spec(path, metric)).estimate
    rows = run_study(spec(path, metric, unit=None)).estimate
    assert clustered.value == pytest.approx(rows.value, rel=ESTIMATE)
    assert rows.std_error < 0.5 * clustered.std_error
    assert rows.p_value < 0.001 and clustered.p_value > 0.1


@pytest.mark.slow
def test_false_positive_rates_over_simulated_aa_experiments(tmp_path):
    """600 A/A draws: clustered on the unit the rate stays at alpha (within 3 Monte Carlo SE); on rows it is
    several times alpha (the row-level standard error is under half the clustered one here)."""
    draws, alpha = 600, 0.05
    metric = [{"name": "y", "outcome": "y"}]
    hits = {"unit": 0, "rows": 0}
    for seed in range(draws):
        path = tmp_path / f"aa{seed}.parquet"
        sessions(units_per_arm=60, seed=1000 + seed, effect=0.0).to_parquet(path, index=False)
        hits["unit"] += run_study(spec(path, metric)).estimate.p_value < alpha
        hits["rows"] += run_study(spec(path, metric, unit=None)).estimate.p_value < alpha
        path.unlink()
    mc = 3 * math.sqrt(alpha * (1 - alpha) / draws)
    assert hits["unit"] / draws <= alpha + mc
    assert hits["rows"] / draws > 0.25  # 37% in a 300-draw run: over seven times alpha


def test_time_is_the_units_first_exposure_and_srm_counts_units(tmp_path):
    df = sessions(units_per_arm=100, seed=2)
    path = tmp_path / "t.parquet"
    df.to_parquet(path, index=False)
    res = run_study(spec(path, [{"name": "y", "outcome": "y"}], time="day", expected_split={0: 0.5, 1: 0.5}))
    first = df.groupby("user").agg(day=("day", "min"), variant=("variant", "first"))
    points = res.diagnostics["cumulative"]
    for p in points:
        seen = first[first.day <= int(p["label"])]
        assert (p["n_control"], p["n_treatment"]) == ((seen.variant == 0).sum(), (seen.variant == 1).sum())
    assert points[-1]["value"] == pytest.approx(res.estimate.value, rel=1e-12)
    assert res.diagnostics["cumulative_method"]["counts"].startswith("units, each with all its rows in the period")
    srm = res.diagnostics["srm"]
    assert srm["observed"] == {"0": 100, "1": 100} and srm["counts"] == "units"
    assert "units of 'user', not rows" in next(c for c in res.checks if c.name == "srm").detail
    assert res.diagnostics["unit"]["units"] == 200 and res.diagnostics["unit"]["rows"] == len(df)


def test_json_reruns_are_byte_identical(data, runner, write_spec):
    _, path = data
    file = write_spec(spec(path, [{"name": "y", "outcome": "y", "covariate": "pre"},
                                  {"name": "r", "numerator": "num", "denominator": "den"}]))
    outs = []
    for _ in range(2):
        code, payload, _ = run_json(runner, [str(file)])
        assert code == 0
        payload.pop("timing_s")
        outs.append(json.dumps(payload))
    assert outs[0] == outs[1]


# ---------------------------------------------------------------- bad input


def test_missing_unit_column_is_exit_3_naming_it(data):
    _, path = data
    with pytest.raises(DataError, match=r"unit column 'usr' \(design.unit\) not found.*user") as err:
        run_study(spec(path, [{"name": "y", "outcome": "y"}], unit="usr"))
    assert err.value.exit_code == 3


def test_units_in_two_arms_are_exit_3_with_how_many_and_an_example(tmp_path):
    df = sessions(units_per_arm=50, seed=1)
    movers = sorted(df.user.unique())[:3]
    for u in movers:  # one session of each of these users logged in the other arm
        i = df.index[df.user == u][0]
        df.loc[i, "variant"] = 1 - df.loc[i, "variant"]
    path = tmp_path / "m.parquet"
    df.to_parquet(path, index=False)
    with pytest.raises(DataError, match=rf"3 unit\(s\) of 'user' appear in more than one arm of 'variant' "
                                        rf"\(for example user = {movers[0]}\)") as err:
        run_study(spec(path, [{"name": "y", "outcome": "y"}]))
    assert err.value.exit_code == 3


def test_unit_equal_to_the_variant_column_is_exit_2(data):
    _, path = data
    with pytest.raises(SpecError, match="design.unit 'variant' is the treatment column") as err:
        run_study(spec(path, [{"name": "y", "outcome": "y"}], unit="variant"))
    assert err.value.exit_code == 2


# ---------------------------------------------------------------- engines


@pytest.mark.engines
@pytest.mark.xdist_group("spark")
def test_postgres_and_spark_give_the_files_json(data, spark, postgres_url, runner, tmp_path, monkeypatch):
    """The GROUP BY view and the DECIMAL unit sums render for PostgreSQL and Spark: the same JSON (numbers to
    1e-9, tests/test_engines.differences) as DuckDB on the file, with missing values, CUPED, a ratio and time."""
    import pyarrow.parquet as pq
    import yaml

    from tests.engines import load_postgres, register_spark
    from tests.test_engines import ENV, differences, estimate

    _, path = data
    monkeypatch.setenv(ENV, postgres_url)
    arrow = pq.read_table(path)
    load_postgres(postgres_url, "sessions", arrow)
    register_spark("sessions", arrow)
    design = spec(path, [{"name": "y", "outcome": "y"}, {"name": "yc", "outcome": "y", "covariate": "pre"},
                         {"name": "r", "numerator": "num", "denominator": "den"}],
                  time="day", expected_split={0: 0.5, 1: 0.5})["design"]
    results = []
    for name, source in [("file", {"path": str(path)}),
                         ("pg", {"backend": "postgres", "table": "sessions", "connection_env": ENV}),
                         ("spark", {"backend": "spark", "table": "sessions"})]:
        file = tmp_path / f"{name}.yaml"
        file.write_text(yaml.safe_dump({"version": 1, "name": "clustered", "treatment": "variant",
                                        "design": design, "data": source}))
        code, got, err = estimate(runner, file)
        assert code == 0, (name, err)
        results.append(got)
    assert results[0]["n"]["used"] == 2 * UNITS and results[0]["diagnostics"]["unit"]["units"] == 2 * UNITS
    for other in results[1:]:
        assert not differences(other, results[0]), differences(other, results[0])[:5]


def test_plan_with_a_unit_reads_unit_level_variances(data, runner, write_spec, tmp_path):
    """plan with design.unit sums the rows to units as estimate does: the plan equals the plan of the same data
    aggregated by hand to one row per unit (a ratio metric: the unit's sum over its rows), and its sd is not the
    row-level one (the rows of a user are correlated). Per-unit mean and sd given in the spec still skip the data."""
    from tests.conftest import invoke

    df, path = data
    metric = {"name": "y", "outcome": "y", "mde": 0.05}
    res = invoke(runner, ["plan", str(write_spec(spec(path, [metric]))), "--format", "json"])
    assert res.exit_code == 0, res.stderr
    got = json.loads(res.stdout)
    kept = df.dropna(subset=["y"])
    units = kept.groupby("user").agg(variant=("variant", "first"), s=("y", "sum"), k=("y", "size")).reset_index()
    upath = tmp_path / "units.parquet"
    units.to_parquet(upath, index=False)
    ratio = {"name": "y", "numerator": "s", "denominator": "k", "mde": 0.05}
    ref = json.loads(invoke(runner, ["plan", str(write_spec(spec(upath, [ratio], unit=None), "u.yaml")),
                                     "--format", "json"]).stdout)
    row, want = got["metrics"][0], ref["metrics"][0]
    assert row["sd"] == pytest.approx(want["sd"], rel=1e-9) and row["baseline"] == pytest.approx(want["baseline"])
    assert row["sample_size_per_arm"] == want["sample_size_per_arm"]
    assert got["data"]["rows"] == df.user.nunique() and got["data"]["unit"] == "user"
    rows = json.loads(invoke(runner, ["plan", str(write_spec(spec(path, [metric], unit=None), "r.yaml")),
                                      "--format", "json"]).stdout)
    # the rows of a user share its level (icc_sd = 2): in rows, the units' plan needs several times the row plan
    rows_needed = row["sample_size_per_arm"] * kept.groupby("user").size().mean()
    assert rows_needed > 3 * rows["metrics"][0]["sample_size_per_arm"]
    timed = json.loads(invoke(runner, ["plan", str(write_spec(spec(path, [metric], time="day"), "t.yaml")),
                                       "--format", "json"]).stdout)
    assert timed["data"]["days"] == df.groupby("user").day.min().nunique()  # days of the units' first exposures
    given = write_spec(spec(path, [{"name": "y", "outcome": "y", "mde": 0.05, "mean": 5.0, "sd": 2.0}]), "g.yaml")
    assert invoke(runner, ["plan", str(given)]).exit_code == 0


def test_rows_without_a_unit_or_a_variant_are_dropped_and_counted(tmp_path):
    df = sessions(units_per_arm=80, seed=6)
    df["user"] = df.user.astype("Int64")
    df.loc[:4, "user"] = pd.NA            # 5 rows with no user
    df["variant"] = df.variant.astype("Int64")
    df.loc[5:11, "variant"] = pd.NA       # 7 rows of known users with no variant
    path = tmp_path / "gaps.parquet"
    df.to_parquet(path, index=False)
    res = run_study(spec(path, [{"name": "y", "outcome": "y"}]))
    kept = df.dropna(subset=["user", "variant"])
    assert res.n["rows"] == len(df) and res.n["rows_without_unit"] == 5 and res.n["dropped_missing"] == 7
    assert res.n["used"] == kept.user.nunique() == res.diagnostics["unit"]["units"]
    assert any("5 of" in w and "unit column 'user'" in w for w in res.warnings)
    t, c = kept[kept.variant == 1].y.mean(), kept[kept.variant == 0].y.mean()
    assert res.estimate.value == pytest.approx(t - c, rel=ESTIMATE)


def test_few_units_are_judged_by_the_clusters_check(tmp_path, data):
    df = sessions(units_per_arm=15, seed=8)
    path = tmp_path / "few.parquet"
    df.to_parquet(path, index=False)
    res = run_study(spec(path, [{"name": "y", "outcome": "y"}]))
    check = next(c for c in res.checks if c.name == "clusters")  # tests/test_experiment_few_units.py: the rest
    assert check.passed is None and "30 units of 'user'" in check.detail and "fewer than 42" in check.detail
    assert res.diagnostics["clusters"]["n_clusters"] == 30 and res.diagnostics["clusters"]["treated_clusters"] == 15
    many = run_study(spec(data[1], [{"name": "y", "outcome": "y"}]))
    assert next(c for c in many.checks if c.name == "clusters").passed is True
