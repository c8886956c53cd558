"""Partial compliance (``uptake:`` on an experiment metric): the complier effect ``metric/arm/cace``.

Equal to linearmodels' ``IV2SLS`` of the metric on a constant and uptake, instrumented by the arm, on the
rows of control and one arm: the point estimate to 1e-10, and the standard error after the stated factor
(``causalcli.designs.experiment.compliance``): each arm's robust term (``debiased=False``) times
``n_a / (n_a - 1)`` for a metric with sample variances, none for a 0/1 metric; with ``design.unit`` the
same with the covariance clustered on the unit.
"""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest

from causalcli.errors import DataError, SpecError
from causalcli.study.run import run_study

EXACT = 1e-10
SE = 1e-8


def compliance_data(n_per_arm=(3000, 3000), uptake=(0.05, 0.6), effect: float = 2.0, seed: int = 0,
                    binary_outcome: bool = False, dose: bool = False, confounding: float = 1.5,
                    noise: float = 3.0) -> pd.DataFrame:
    """Arms 0, 1, ...: a unit's latent v ~ U(0, 1) decides its type, the same in every arm: it takes up in arm a
    when v < uptake[a] (arm 0 is control: always-takers v < uptake[0]). The effect of uptake is ``effect`` (per
    unit of dose with ``dose``); always-takers have a baseline ``confounding`` higher, so a per-protocol comparison
    is biased."""
    rng = np.random.default_rng(seed)
    arm = np.concatenate([np.full(k, a) for a, k in enumerate(n_per_arm)])
    n = arm.size
    v = rng.random(n)
    took = v < np.asarray(uptake)[arm]
    u = took * (rng.integers(1, 4, n) if dose else 1)
    keen = v < uptake[0]  # the always-takers
    pre = rng.normal(0, 2, n)
    if binary_outcome:
        y = (rng.random(n) < 0.2 + 0.1 * keen + 0.15 * took).astype(int)
    else:
        y = 3 + effect * u + confounding * keen + pre + rng.normal(0, noise, n)
    order = rng.permutation(n)
    return pd.DataFrame({"variant": arm, "y": y, "u": u.astype(int), "pre": pre}).iloc[order].reset_index(drop=True)


def spec(path, metrics, **design) -> dict:
    return {"version": 1, "name": "compliance", "data": {"path": str(path)}, "treatment": "variant",
            "design": {"method": "experiment", "control": 0, "metrics": metrics, **design}}


def effects(result) -> dict:
    return {e.label: e for e in result.effects}


def iv(frame: pd.DataFrame, arm, cov_type: str = "robust", **kw):
    """linearmodels IV2SLS on the rows of control and ``arm``: y on a constant and u, u instrumented by the arm."""
    from linearmodels.iv import IV2SLS

    rows = frame[frame.variant.isin([0, arm])]
    z = (rows.variant == arm).astype(float)
    return IV2SLS(rows.y, np.ones((len(rows), 1)), rows.u.astype(float), z).fit(cov_type=cov_type, debiased=False,
                                                                              **kw)


@pytest.fixture(scope="module")
def balanced(tmp_path_factory):
    df = compliance_data(dose=True)
    path = tmp_path_factory.mktemp("uptake") / "ab.csv"
    df.to_csv(path, index=False)
    return df, path, run_study(spec(path, [{"name": "y", "outcome": "y", "uptake": "u"}]), refute=False)


@pytest.mark.peer
def test_cace_equals_iv2sls_robust_times_the_arms_variance_factor(balanced):
    """A dose (uptake 0-3), equal arms of m rows: CACE = IV2SLS's coefficient; SE^2 = robust SE^2 * m / (m - 1)."""
    df, _, result = balanced
    got = effects(result)["y/1/cace"]
    fit = iv(df, 1)
    m = 3000
    assert got.value == pytest.approx(float(fit.params["u"]), rel=EXACT)
    assert got.std_error == pytest.approx(float(fit.std_errors["u"]) * math.sqrt(m / (m - 1)), rel=SE)
    assert "cace_wald" in got.inference and "welch_t" in got.inference
    row = result.diagnostics["compliance"]["rows"][0]
    assert row["uptake_is_binary"] is False and row["cace"] == got.value
    assert row["itt"] == effects(result)["y/1/abs"].value
    assert row["uptake_difference"] == pytest.approx(df[df.variant == 1].u.mean() - df[df.variant == 0].u.mean(),
                                                     rel=EXACT)
    check = next(c for c in result.checks if c.name == "uptake:y")
    assert check.passed is True and "first-stage F" in check.detail
    labels = [e.label for e in result.effects]
    assert labels == ["y/1/abs", "y/1/rel", "y/1/cace"]  # beside the ITT


@pytest.mark.peer
def test_a_binary_metric_equals_iv2sls_exactly_with_several_unequal_arms(tmp_path):
    """A 0/1 metric (variances over n, as the ITT's proportion test): the robust IV2SLS SE and normal interval
    with no factor, for each of two treatment arms of unequal sizes against control."""
    df = compliance_data((2500, 1800, 3100), (0.1, 0.5, 0.8), binary_outcome=True, seed=3)
    path = tmp_path / "ab.parquet"
    df.to_parquet(path, index=False)
    result = run_study(spec(path, [{"name": "y", "outcome": "y", "uptake": "u"}]), refute=False)
    got = effects(result)
    for arm in (1, 2):
        fit = iv(df, arm)
        e = got[f"y/{arm}/cace"]
        assert e.value == pytest.approx(float(fit.params["u"]), rel=EXACT)
        assert e.std_error == pytest.approx(float(fit.std_errors["u"]), rel=SE)
        lower, upper = fit.conf_int().loc["u"]
        assert (e.ci_lower, e.ci_upper) == pytest.approx((lower, upper), rel=SE)
        assert "difference_in_proportions_wald" in e.inference
    assert [e.label for e in result.effects] == ["y/1/abs", "y/1/rel", "y/1/cace", "y/2/abs", "y/2/rel", "y/2/cace"]
    assert "holm over 2 complier effects" in got["y/2/cace"].inference


@pytest.mark.peer
def test_with_a_unit_the_cace_equals_iv2sls_clustered_on_the_unit(tmp_path):
    """design.unit: sessions of users, uptake per session; CACE = IV2SLS on the session rows, SE = its clustered
    SE (debiased=False) times sqrt(G_a / (G_a - 1)) with G_a users in each arm."""
    rng = np.random.default_rng(5)
    users = 400  # per arm
    arm = np.repeat([0, 1], users)
    complier = rng.random(2 * users) < 0.5
    count = rng.integers(1, 8, 2 * users)
    rows = np.repeat(np.arange(2 * users), count)
    took = (arm[rows] == 1) & complier[rows] & (rng.random(rows.size) < 0.8)
    y = 1 + 0.7 * took + complier[rows] + rng.normal(0, 1, 2 * users)[rows] + rng.normal(0, 1, rows.size)
    df = pd.DataFrame({"user": rows + 100, "variant": arm[rows], "y": y, "u": took.astype(int)})
    path = tmp_path / "s.csv"
    df.sample(frac=1.0, random_state=1).to_csv(path, index=False)
    result = run_study(spec(path, [{"name": "y", "outcome": "y", "uptake": "u"}], unit="user"), refute=False)
    got = effects(result)["y/1/cace"]
    fit = iv(df, 1, cov_type="clustered", clusters=df.user)
    assert got.value == pytest.approx(float(fit.params["u"]), rel=EXACT)
    assert got.std_error == pytest.approx(float(fit.std_errors["u"]) * math.sqrt(users / (users - 1)), rel=SE)
    assert "clustered_by_unit" in got.inference
    assert result.diagnostics["compliance"]["rows"][0]["uptake"] == "u"


@pytest.mark.parametrize("unit", [None, "user"])
def test_full_uptake_gives_the_itt_with_and_without_cuped(tmp_path, unit):
    """Uptake equal to the arm: the CACE, its interval and p-value are the ITT's (CUPED-adjusted too; with
    design.unit, where uptake per unit is a ratio constant within each arm)."""
    df = compliance_data(seed=2).sort_values("variant", kind="stable").reset_index(drop=True)
    df["u"] = df.variant
    df["user"] = np.arange(len(df)) // 2  # two rows a user, in one arm (3,000 rows an arm)
    path = tmp_path / "full.csv"
    df.to_csv(path, index=False)
    result = run_study(spec(path, [{"name": "y", "outcome": "y", "uptake": "u"},
                                   {"name": "yc", "outcome": "y", "covariate": "pre", "uptake": "u"}],
                            **({"unit": unit} if unit else {})), refute=False)
    got = effects(result)
    for name in ("y", "yc"):
        itt, cace = got[f"{name}/1/abs"], got[f"{name}/1/cace"]
        for key in ("value", "std_error", "ci_lower", "ci_upper", "p_value"):
            assert getattr(cace, key) == pytest.approx(getattr(itt, key), rel=1e-12), (name, key)


def test_cuped_cace_is_the_adjusted_itt_over_the_raw_uptake_difference(tmp_path):
    """With a covariate: CACE = CUPED ITT / raw uptake difference; its variance is that of the rows'
    y - theta x - cace u per arm (n - 1) over n, over the squared uptake difference (computed here on the rows)."""
    df = compliance_data(seed=4)
    path = tmp_path / "c.csv"
    df.to_csv(path, index=False)
    result = run_study(spec(path, [{"name": "y", "outcome": "y", "covariate": "pre", "uptake": "u"}]), refute=False)
    got = effects(result)
    theta = result.diagnostics["metrics"][0]["theta"][0]
    arms = [df[df.variant == a] for a in (0, 1)]
    du = arms[1].u.mean() - arms[0].u.mean()
    beta = got["y/1/abs"].value / du
    assert got["y/1/cace"].value == pytest.approx(beta, rel=EXACT)
    var = sum(np.var(a.y - theta * a.pre - beta * a.u, ddof=1) / len(a) for a in arms)
    assert got["y/1/cace"].std_error == pytest.approx(math.sqrt(var) / abs(du), rel=SE)
    assert "cuped" in got["y/1/cace"].inference


def test_the_complier_effect_is_recovered_over_simulated_experiments(tmp_path):
    """Known complier effect 2.0 (with confounded uptake, so the per-protocol contrast is off), two arms with
    different uptake: each CACE within 3 SE of 2.0, and the naive contrast by uptake is not."""
    df = compliance_data((6000, 6000, 6000), (0.1, 0.4, 0.7), effect=2.0, seed=11, confounding=4.0)
    path = tmp_path / "sim.parquet"
    df.to_parquet(path, index=False)
    got = effects(run_study(spec(path, [{"name": "y", "outcome": "y", "uptake": "u"}]), refute=False))
    for arm in (1, 2):
        e = got[f"y/{arm}/cace"]
        assert abs(e.value - 2.0) < 3 * e.std_error, (arm, e.value, e.std_error)
    naive = df[df.u == 1].y.mean() - df[df.u == 0].y.mean()
    assert abs(naive - 2.0) > 6 * got["y/2/cace"].std_error


def _coverage(uptake, draws: int, **kw) -> tuple[float, float]:
    """Shares of simulated experiments (500 units per arm, complier effect 2) whose CACE interval and whose
    Fieller set hold 2; an experiment with no CACE (equal uptake) counts as a miss of the interval."""
    import causalcli

    s = spec(None, [{"name": "y", "outcome": "y", "uptake": "u"}])
    s.pop("data")
    hits = fieller = 0
    for seed in range(draws):
        result = causalcli.estimate(s, data=compliance_data((500, 500), uptake, seed=10_000 + seed, **kw))
        e = effects(result).get("y/1/cace")
        hits += e is not None and e.ci_lower <= 2.0 <= e.ci_upper
        f = result.diagnostics["compliance"]["rows"][0]["fieller"]
        lower = -math.inf if f["lower"] is None else f["lower"]
        upper = math.inf if f["upper"] is None else f["upper"]
        fieller += (lower <= 2.0 <= upper) if f["shape"] in ("interval", "unbounded") else not lower < 2.0 < upper
    return hits / draws, fieller / draws


@pytest.mark.slow
def test_coverage_of_the_interval_and_of_fiellers_set():
    """Strong uptake (5% vs 60%): the delta-method interval covers about 95% (600 draws: 93-97%). Weak uptake
    strongly confounded with the metric (30% vs 34%, always-takers 8 higher, noise 1): the interval covers too
    little and Fieller's set does better (the check uptake:<metric> fails in nearly every draw)."""
    strong, _ = _coverage((0.05, 0.6), 600)
    assert 0.93 <= strong <= 0.97
    weak, fieller = _coverage((0.3, 0.34), 600, confounding=8.0, noise=1.0)
    assert weak < 0.93 and fieller >= 0.93 and fieller > weak + 0.03, (weak, fieller)  # 0.91 and 0.96


def test_the_blocked_pass_gives_the_fixed_point_cace(tmp_path, monkeypatch):
    """A Parquet file read as it is, summed per row-group block (the large-file pass, threshold lowered)."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    from causalcli.designs.experiment import stats

    df = compliance_data((20_000, 20_000), seed=6)
    path = tmp_path / "big.parquet"
    pq.write_table(pa.Table.from_pandas(df, preserve_index=False), path, row_group_size=5_000)
    s = spec(path, [{"name": "y", "outcome": "y", "uptake": "u"}])
    fixed = run_study(s, refute=False)
    monkeypatch.setattr(stats, "BLOCKED_ROWS", 1)
    blocked = run_study(s, refute=False)
    assert blocked.diagnostics["sufficient_statistics"]["summation"] == stats.BLOCKED_SUMMATION
    assert fixed.diagnostics["sufficient_statistics"]["summation"] == stats.EXACT_SUMMATION
    a, b = effects(fixed)["y/1/cace"], effects(blocked)["y/1/cace"]
    assert b.value == pytest.approx(a.value, rel=1e-10) and b.std_error == pytest.approx(a.std_error, rel=1e-10)
    assert b.value == pytest.approx(float(iv(df, 1).params["u"]), rel=EXACT)


def test_missing_uptake_leaves_the_row_out_of_the_metric_and_is_named(tmp_path):
    """A row without uptake is left out of that metric (ITT and CACE on the same complete rows), with a warning."""
    df = compliance_data(seed=7).astype({"u": float})
    df.loc[::50, "u"] = np.nan
    path = tmp_path / "m.csv"
    df.to_csv(path, index=False)
    result = run_study(spec(path, [{"name": "y", "outcome": "y", "uptake": "u"}]), refute=False)
    complete = df.dropna()
    assert effects(result)["y/1/cace"].value == pytest.approx(float(iv(complete, 1).params["u"]), rel=EXACT)
    assert any("metric 'y' leaves out" in w and "u" in w for w in result.warnings)


def test_a_small_uptake_difference_fails_the_check_and_zero_gives_no_cace(tmp_path):
    """Weak: the check uptake:<metric> fails and Fieller's set is unbounded (a warning); the same uptake in both
    arms: no metric/arm/cace (the ratio would divide by zero), the check fails saying why."""
    df = compliance_data((400, 400), (0.3, 0.32), seed=8)
    path = tmp_path / "weak.csv"
    df.to_csv(path, index=False)
    weak = run_study(spec(path, [{"name": "y", "outcome": "y", "uptake": "u"}]), refute=False)
    check = next(c for c in weak.checks if c.name == "uptake:y")
    assert check.passed is False and "Fieller" in check.detail
    row = weak.diagnostics["compliance"]["rows"][0]
    assert row["first_stage_f"] < 23.109 and row["fieller"]["shape"] != "interval"
    assert any("y/1/cace: Fieller" in w for w in weak.warnings)
    df["variant"] = np.repeat([0, 1], 400)
    df["u"] = np.tile([1, 1, 0, 0], 200)  # half of each arm takes up: equal shares
    df.to_csv(path, index=False)
    zero = run_study(spec(path, [{"name": "y", "outcome": "y", "uptake": "u"}]), refute=False)
    assert "y/1/cace" not in effects(zero)
    check = next(c for c in zero.checks if c.name == "uptake:y")
    assert check.passed is False and "no complier effect" in check.detail
    assert zero.diagnostics["compliance"]["rows"][0]["cace"] is None


def test_the_table_and_markdown_show_the_cace_row(balanced, runner, write_spec):
    from tests.conftest import invoke

    _, path, _ = balanced
    file = write_spec(spec(path, [{"name": "y", "outcome": "y", "uptake": "u"}]))
    for fmt in ("table", "markdown"):
        res = invoke(runner, ["estimate", str(file), "--format", fmt])
        assert res.exit_code == 0, res.stderr
        assert "y/1/cace" in res.stdout and "y/1/abs" in res.stdout


# ---------------------------------------------------------------- bad input


@pytest.mark.parametrize("metric, design, key", [
    ({"name": "q", "outcome": "y", "quantile": 0.5, "uptake": "u"}, {}, "design.metrics[0].uptake"),
    ({"name": "r", "numerator": "y", "denominator": "u", "uptake": "u"}, {}, "design.metrics[0].uptake"),
    ({"name": "y", "outcome": "y", "uptake": "u"}, {"sequential": {"method": "always_valid"}},
     "design.metrics[0].uptake"),
])
def test_combinations_not_built_are_exit_2_naming_the_key(balanced, metric, design, key):
    _, path, _ = balanced
    with pytest.raises(SpecError) as err:
        run_study(spec(path, [metric], **design), refute=False)
    assert err.value.exit_code == 2 and err.value.key == key and "uptake" in str(err.value)


def test_a_missing_or_text_uptake_column_is_exit_3_naming_it(balanced, tmp_path):
    df, path, _ = balanced
    with pytest.raises(DataError) as err:
        run_study(spec(path, [{"name": "y", "outcome": "y", "uptake": "used"}]), refute=False)
    assert err.value.exit_code == 3 and err.value.column == "used" and "design.metrics[0].uptake" in str(err.value.key)
    text = tmp_path / "text.csv"
    df.assign(u=np.where(df.u > 0, "yes please", "no")).to_csv(text, index=False)
    with pytest.raises(DataError) as err:
        run_study(spec(text, [{"name": "y", "outcome": "y", "uptake": "u"}]), refute=False)
    assert err.value.exit_code == 3 and err.value.column == "u"
    assert "\n" not in str(err.value)


# ---------------------------------------------------------------- engines


@pytest.mark.engines
@pytest.mark.xdist_group("spark")
def test_postgres_and_spark_give_the_files_json(spark, postgres_url, runner, tmp_path, monkeypatch):
    """uptake renders for PostgreSQL and Spark like the other metric columns: the file's JSON (numbers to 1e-9,
    tests/test_engines.differences), with CUPED and, in a second spec, design.unit."""
    import pyarrow as pa
    import yaml

    from tests.engines import load_postgres, register_spark
    from tests.test_engines import ENV, differences, estimate

    df = compliance_data((1500, 1200, 1300), (0.05, 0.5, 0.7), dose=True, seed=9)
    df = df.sort_values("variant", kind="stable").reset_index(drop=True)
    df["user"] = np.arange(len(df)) // 3  # three rows a user (arm sizes are multiples of 3: one arm a user)
    path = tmp_path / "c.parquet"
    df.to_parquet(path, index=False)
    monkeypatch.setenv(ENV, postgres_url)
    arrow = pa.Table.from_pandas(df, preserve_index=False)
    load_postgres(postgres_url, "compliance", arrow)
    register_spark("compliance", arrow)
    metrics = [{"name": "y", "outcome": "y", "uptake": "u"}, {"name": "yc", "outcome": "y", "covariate": "pre",
                                                               "uptake": "u"}]
    engines = {"pg": {"backend": "postgres", "table": "compliance", "connection_env": ENV},
               "spark": {"backend": "spark", "table": "compliance"}}

    def run(design: dict, source: dict) -> dict:
        file = tmp_path / "study.yaml"
        file.write_text(yaml.safe_dump({"version": 1, "name": "compliance", "treatment": "variant", "design": design,
                                        "data": source}))
        code, got, err = estimate(runner, file)
        assert code == 0, (source, err)
        return got

    for design in (spec(path, metrics)["design"], spec(path, metrics[:1], unit="user")["design"]):
        on_file = run(design, {"path": str(path)})
        assert any(e["label"] == "y/2/cace" for e in on_file["effects"])
        for name, source in engines.items():
            found = differences(run(design, source), on_file)
            assert not found, (name, found[:5])
