"""A/B/n experiments: closed forms, exact summation, SRM, A/A error rates, bad input.

The comparisons with tea-tasting 1.14 and statsmodels are in tests/reference/experiment/.

Tolerances:
* CLOSED_RTOL = 1e-9: our sums are exact up to a rounding quantum ~2**-47 of the sum
  of |terms|; a two-pass numpy computation on the same rows agrees far below 1e-9.
* A/A rates: 4000 simulated experiments, binomial SE of a 5% rate 0.34 points;
  the band [3.8%, 6.2%] is 3.5 SE wide on each side.
"""

from __future__ import annotations

import json
import math
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from causalcli.designs.experiment.analysis import Comparison, absolute, relative_delta
from causalcli.inference.multiplicity import adjust
from causalcli.designs.experiment.stats import Moments
from causalcli.study.run import run_study
from tests.conftest import invoke, run_json
from tests.reference.experiment.simulated_users import METRICS, spec_for, users

CLOSED_RTOL = 1e-9


@pytest.fixture
def users_csv(tmp_path: Path) -> Path:
    path = tmp_path / "users.csv"
    users().to_csv(path, index=False)
    return path


def effects(result) -> dict:
    return {e.label: e for e in result.effects}


# ---------------------------------------------------------------- CUPED


@pytest.mark.peer
def test_cuped_reduces_variance_as_tea_tasting_and_reports_it(users_csv):
    res = run_study(spec_for(users_csv))
    rows = {(m["metric"], m["arm"]): m for m in res.diagnostics["metrics"]}
    e = effects(res)
    # the reported reduction is 1 - SE_cuped^2 / SE_plain^2
    expected = 1 - (e["revenue_cuped/1/abs"].std_error / e["revenue/1/abs"].std_error) ** 2
    assert rows[("revenue_cuped", "1")]["variance_reduction"] == pytest.approx(expected, rel=1e-12)
    assert 0.05 < expected < 1
    assert rows[("revenue", "1")]["variance_reduction"] is None


# ---------------------------------------------------------------- closed forms


def test_welch_and_delta_method_closed_forms(users_csv):
    """Welch (scipy.stats.ttest_ind, equal_var=False) and a hand-written delta method on the same rows."""
    from scipy import stats

    df = pd.read_csv(users_csv)
    res = run_study(spec_for(users_csv, correction="none"))
    e = effects(res)
    c, t = df[df.variant == 0], df[df.variant == 1]
    tt = stats.ttest_ind(t.revenue, c.revenue, equal_var=False)
    ci = tt.confidence_interval(0.95)
    a = e["revenue/1/abs"]
    assert a.value == pytest.approx(t.revenue.mean() - c.revenue.mean(), rel=CLOSED_RTOL)
    assert a.p_value == pytest.approx(tt.pvalue, rel=1e-9)
    assert (a.ci_lower, a.ci_upper) == pytest.approx((ci.low, ci.high), rel=1e-9)

    def ratio(g):  # delta method for mean(orders)/mean(sessions), per unit
        x, y = g.orders.to_numpy(), g.sessions.to_numpy()
        r = x.mean() / y.mean()
        lin = (x - r * y) / y.mean()
        return r, lin.var(ddof=1) / len(g)

    (rc, vc), (rt, vt) = ratio(c), ratio(t)
    o = e["orders_per_session/1/abs"]
    assert o.value == pytest.approx(rt - rc, rel=CLOSED_RTOL)
    assert o.std_error == pytest.approx(math.sqrt(vc + vt), rel=CLOSED_RTOL)
    rel = e["orders_per_session/1/rel"]
    assert rel.value == pytest.approx(rt / rc - 1, rel=CLOSED_RTOL)
    assert rel.std_error == pytest.approx(math.sqrt(vt / rc**2 + rt**2 * vc / rc**4), rel=CLOSED_RTOL)


def test_cuped_and_regression_adjustment_closed_form(tmp_path):
    """theta = pooled Cov(X)^-1 Cov(X, y) over the two arms; adjusted mean y_a - theta'(x_a - x_pooled)."""
    df = users(5000, seed=3)
    path = tmp_path / "u.csv"
    df.to_csv(path, index=False)
    covs = ["revenue_covariate", "orders_covariate"]
    res = run_study(spec_for(path, metrics=[
        {"name": "ra", "outcome": "revenue", "covariates": covs},
        {"name": "one", "outcome": "revenue", "covariates": ["revenue_covariate"]},
        {"name": "cuped", "outcome": "revenue", "covariate": "revenue_covariate"}], correction="none"))
    e = effects(res)
    X = df[covs].to_numpy()
    y = df.revenue.to_numpy()
    S = np.cov(np.column_stack([X, y]), rowvar=False)
    theta = np.linalg.solve(S[:2, :2], S[:2, 2])
    xbar = X.mean(axis=0)
    means, var = {}, {}
    for arm in (0, 1):
        g = (df.variant == arm).to_numpy()
        z = y[g] - (X[g] - xbar) @ theta
        means[arm], var[arm] = z.mean(), z.var(ddof=1) / g.sum()
    got = e["ra/1/abs"]
    assert got.value == pytest.approx(means[1] - means[0], rel=CLOSED_RTOL)
    assert got.std_error == pytest.approx(math.sqrt(var[0] + var[1]), rel=CLOSED_RTOL)
    theta_reported = next(m["theta"] for m in res.diagnostics["metrics"] if m["metric"] == "ra")
    # theta is a solve with two correlated covariates: compare on the scale of its largest element
    assert theta_reported == pytest.approx(list(theta), abs=CLOSED_RTOL * np.abs(theta).max())
    # one covariate in `covariates` is CUPED
    assert e["one/1/abs"].value == e["cuped/1/abs"].value
    assert e["one/1/abs"].std_error == e["cuped/1/abs"].std_error


def test_normal_distribution_option_uses_z():
    c = Comparison("m", "1", 100, 100, 1.0, 1.2, 1.0, 1.2, 1.0, 1.0, 1.0, 1.0, ())
    t = absolute(c, 0.95, "normal")
    assert t.df is None
    assert t.ci_upper - t.value == pytest.approx(1.959963984540054 * math.sqrt(0.02), rel=1e-12)


# ---------------------------------------------------------------- multiple testing, MDE


def test_correction_named_and_applied_across_metrics_and_arms(tmp_path):
    df = users(3000, seed=5, arms=3)
    path = tmp_path / "u.csv"
    df.to_csv(path, index=False)
    for method in ("holm", "bh"):
        res = run_study(spec_for(path, correction=method))
        abs_rows = [e for e in res.effects if e.label.endswith("/abs")]
        assert len(abs_rows) == 8
        assert [e.p_value_adjusted for e in abs_rows] == pytest.approx(adjust([e.p_value for e in abs_rows], method))
        assert all(f"{method} over 8 tests" in e.inference for e in res.effects)
    assert res.estimate.p_value_adjusted == res.effects[0].p_value_adjusted


def test_mde_at_achieved_sample_size(users_csv):
    res = run_study(spec_for(users_csv, options={"alpha": 0.05, "power": 0.8}))
    e = effects(res)
    row = next(m for m in res.diagnostics["metrics"] if m["metric"] == "revenue")
    assert row["mde_abs"] == pytest.approx((1.959963984540054 + 0.8416212335729143) * e["revenue/1/abs"].std_error)
    assert row["mde_rel"] == pytest.approx(row["mde_abs"] / row["mean_control"])


# ---------------------------------------------------------------- exactness and determinism


def test_sums_are_exact_and_thread_order_independent(tmp_path):
    """The sums equal exact rational sums of the same rows; DuckDB with 1 or 4 threads gives the same bits."""
    from fractions import Fraction

    import duckdb

    from causalcli.data.table import Table
    from causalcli.designs.experiment.stats import compute_statistics

    rng = np.random.default_rng(0)
    n = 300_000
    df = pd.DataFrame({"variant": rng.integers(0, 2, n), "y": rng.lognormal(3, 1.5, n) + 1e6})
    results = []
    for threads in (1, 4):
        con = duckdb.connect()
        con.execute(f"SET threads TO {threads}")
        con.register("df_view", df)
        con.execute("CREATE TABLE study_data AS SELECT * FROM df_view")
        table = Table(con, "mem", n, {"variant": "BIGINT", "y": "DOUBLE"})
        results.append(compute_statistics(table, "variant", {"y": ("y",)}, {"y": (("y", "y"),)}, {"y"}, None, set()))
    a, b = results
    assert a.groups == b.groups and a.centres == b.centres
    k = a.centres["y"]
    for arm in (0, 1):
        y = df.y[df.variant == arm].to_numpy()
        d = [Fraction(float(v - k)) for v in y]  # the same centred doubles DuckDB sums
        exact_s = sum(d)
        exact_ss = sum(Fraction(float((v - k) * (v - k))) for v in y)
        sums = a.groups[None][arm]
        # only the rounding of each term to the summation quantum q (~2**-45 of sum |d| here, with the
        # safety margin): about sqrt(n / 12) q, i.e. ~4e-12 of the sum's scale sqrt(n * sum d^2)
        assert abs(float(Fraction(sums.s["y"]) - exact_s)) <= 1e-10 * math.sqrt(len(y) * float(exact_ss))
        assert float(Fraction(sums.ss[("y", "y")]) / exact_ss) == pytest.approx(1, abs=1e-12)


def test_same_numbers_as_an_in_memory_two_pass_computation(tmp_path):
    """Parquet path vs numpy two-pass means and variances on a sample that fits (1e-9)."""
    df = users(200_000, seed=11)
    df["revenue"] += 1e7  # a large offset: naive sums of squares would lose ~14 digits here
    df["revenue_covariate"] += 1e7
    path = tmp_path / "u.parquet"
    df.to_parquet(path)
    res = run_study(spec_for(path, metrics=[METRICS[1]], correction="none"))
    e = effects(res)["revenue_cuped/1/abs"]
    y, x = df.revenue.to_numpy(), df.revenue_covariate.to_numpy()
    theta = np.cov(x, y)[0, 1] / np.var(x, ddof=1)
    out = {}
    for arm in (0, 1):
        g = (df.variant == arm).to_numpy()
        z = y[g] - theta * (x[g] - x.mean())
        out[arm] = (z.mean(), z.var(ddof=1) / g.sum())
    assert e.value == pytest.approx(out[1][0] - out[0][0], rel=CLOSED_RTOL)
    assert e.std_error == pytest.approx(math.sqrt(out[0][1] + out[1][1]), rel=CLOSED_RTOL)


def test_sorted_data_forces_a_verified_repeat_pass(tmp_path):
    """Data sorted by the metric: the first rows underestimate the spread; the bound check repeats the pass."""
    df = users(50_000, seed=2).sort_values("revenue").reset_index(drop=True)
    path = tmp_path / "s.parquet"
    df.to_parquet(path)
    res = run_study(spec_for(path, metrics=[METRICS[0]], correction="none"))
    assert res.diagnostics["sufficient_statistics"]["passes"] == 2
    c, t = df[df.variant == 0].revenue, df[df.variant == 1].revenue
    e = effects(res)["revenue/1/abs"]
    assert e.value == pytest.approx(t.mean() - c.mean(), rel=CLOSED_RTOL)
    assert e.std_error == pytest.approx(math.sqrt(t.var() / len(t) + c.var() / len(c)), rel=CLOSED_RTOL)


def test_reruns_are_byte_identical(runner, users_csv, write_spec):
    spec = write_spec(spec_for(users_csv))
    outs = []
    for _ in range(2):
        code, payload, _ = run_json(runner, [str(spec)])
        assert code == 0
        payload.pop("timing_s")
        outs.append(json.dumps(payload, sort_keys=True))
    assert outs[0] == outs[1]


def test_validate_names_each_metrics_cuped_columns(runner, users_csv, write_spec):
    """An experiment has no graph: validate names the columns its metrics adjust for (CUPED, regression), not the
    graph's empty adjustment set, which read as if the covariates of a CUPED spec were ignored."""
    metrics = [*METRICS, {"name": "orders", "outcome": "orders", "covariates": ["orders_covariate", "sessions_covariate"]}]
    res = invoke(runner, ["validate", str(write_spec(spec_for(users_csv, metrics=metrics)))])
    assert res.exit_code == 0, res.stderr
    assert ("adjusting for revenue_covariate (in revenue_cuped), orders_covariate (in orders_per_session_cuped, "
            "orders), sessions_covariate (in orders)") in res.stdout
    res = invoke(runner, ["validate", str(write_spec(spec_for(users_csv, metrics=METRICS[:1])))])
    assert res.exit_code == 0 and "adjusting for (none: no metric has a covariate)" in res.stdout


def test_missing_values_use_each_metrics_complete_rows(tmp_path):
    df = users(4000, seed=9)
    df.loc[::7, "revenue_covariate"] = np.nan
    df.loc[::11, "sessions"] = None
    path = tmp_path / "m.parquet"
    df.to_parquet(path)
    res = run_study(spec_for(path, metrics=[METRICS[1], METRICS[2]], correction="none"))
    rows = {m["metric"]: m for m in res.diagnostics["metrics"]}
    ok = df.revenue_covariate.notna()
    assert rows["revenue_cuped"]["n_control"] == int((ok & (df.variant == 0)).sum())
    ok2 = df.sessions.notna()
    assert rows["orders_per_session"]["n_treatment"] == int((ok2 & (df.variant == 1)).sum())
    g = df[ok2]
    r = lambda a: g[g.variant == a].orders.mean() / g[g.variant == a].sessions.mean()  # noqa: E731
    assert effects(res)["orders_per_session/1/abs"].value == pytest.approx(r(1) - r(0), rel=CLOSED_RTOL)
    assert any("complete rows" in w for w in res.warnings)


def test_capping_winsorises_at_the_pooled_quantile(tmp_path):
    df = users(5000, seed=4)
    path = tmp_path / "c.csv"
    df.to_csv(path, index=False)
    res = run_study(spec_for(path, metrics=[METRICS[0]], options={"cap_quantile": 0.99}, correction="none"))
    y = pd.read_csv(path).revenue.to_numpy()
    cap = np.sort(y)[math.ceil(0.99 * len(y)) - 1]  # DuckDB quantile_disc: the value at rank ceil(q n)
    assert res.diagnostics["caps"]["revenue"] == pytest.approx(cap, rel=1e-15)
    capped = np.minimum(y, cap)
    v = df.variant.to_numpy()
    assert effects(res)["revenue/1/abs"].value == pytest.approx(capped[v == 1].mean() - capped[v == 0].mean(),
                                                                 rel=CLOSED_RTOL)


@pytest.mark.parametrize("ext", ["csv", "parquet"])
def test_capping_keeps_missing_values_missing(tmp_path, ext):
    """DuckDB's least() skips NULL and ranks NaN highest: a capped column must not turn them into the cap."""
    df = users(2000, seed=12)
    df["revenue"] = df.revenue.astype(float)
    df.loc[::9, "revenue"] = np.nan  # NULL in CSV; NaN in Parquet
    path = tmp_path / f"c.{ext}"
    df.to_csv(path, index=False) if ext == "csv" else df.to_parquet(path, index=False)
    res = run_study(spec_for(path, metrics=[METRICS[0]], options={"cap_quantile": 0.95}, correction="none"))
    y = df.revenue.to_numpy()
    kept = ~np.isnan(y)
    cap = np.sort(y[kept])[math.ceil(0.95 * kept.sum()) - 1]
    assert res.diagnostics["caps"]["revenue"] == pytest.approx(cap, rel=1e-15)
    assert res.n["missing_in_metric[revenue]"] == int((~kept).sum())
    v = df.variant.to_numpy()
    capped = np.minimum(y, cap)
    assert effects(res)["revenue/1/abs"].value == pytest.approx(
        capped[kept & (v == 1)].mean() - capped[kept & (v == 0)].mean(), rel=CLOSED_RTOL)


# ---------------------------------------------------------------- SRM and A/A


def test_srm_fires_on_a_505_495_split_of_a_million_rows(tmp_path, runner, write_spec):
    import duckdb

    path = tmp_path / "srm.parquet"
    duckdb.sql(f"COPY (SELECT CASE WHEN i < 505000 THEN 'control' ELSE 'treatment' END AS variant, "
               f"(hash(i) % 1000)::DOUBLE AS y FROM range(1000000) t(i)) TO '{path}'")
    spec = write_spec(spec_for(path, metrics=[{"name": "y", "outcome": "y"}], control="control",
                               expected_split={"control": 0.5, "treatment": 0.5}))
    code, payload, res = run_json(runner, [str(spec)])
    assert code == 1, res.stderr
    srm = payload["diagnostics"]["srm"]
    assert srm["statistic"] == pytest.approx(2 * 5000**2 / 500000)  # (o - e)^2 / e summed: 100
    assert srm["p_value"] < 1e-20 and srm["passed"] is False
    assert [c["name"] for c in payload["checks"] if c["passed"] is False] == ["srm"]


def test_srm_passes_on_a_fair_split_and_respects_unequal_plans(tmp_path):
    rng = np.random.default_rng(1)
    n = 100_000
    df = pd.DataFrame({"variant": np.where(rng.random(n) < 0.2, "b", "a"), "y": rng.normal(size=n)})
    path = tmp_path / "f.parquet"
    df.to_parquet(path)
    ok = run_study(spec_for(path, metrics=[{"name": "y", "outcome": "y"}], control="a",
                            expected_split={"a": 0.8, "b": 0.2}))
    assert ok.checks[0].passed is True
    assert ok.diagnostics["srm"]["expected"] == pytest.approx({"a": 0.8 * n, "b": 0.2 * n})
    # an 80/20 plan against 50/50 would fail: the check fails where the plan says so
    wrong = run_study(spec_for(path, metrics=[{"name": "y", "outcome": "y"}], control="a",
                               expected_split={"a": 0.5, "b": 0.5}))
    assert wrong.checks[0].passed is False


def test_srm_detail_separates_numbered_arms_from_their_counts(users_csv):
    """Arms 0 and 1 (tea-tasting's variant column) read '0 2,023 (50.58% ...), 1 1,977' without a separator: the
    arm and its count ran together. Each arm is followed by a colon, planned split or not."""
    for split in ({0: 0.5, 1: 0.5}, None):
        res = run_study(spec_for(users_csv, **({"expected_split": split} if split else {})))
        observed = res.diagnostics["srm"]["observed"]
        detail = res.checks[0].detail
        for arm, count in observed.items():
            assert f"{arm}: {count:,} (" in detail


def test_srm_is_not_run_without_a_planned_split(tmp_path, runner, write_spec):
    """No expected_split: no equal shares assumed (an unequal 80/20 design would fail it); passed is null with
    the reason, and the study exits 0."""
    rng = np.random.default_rng(1)
    n = 100_000
    df = pd.DataFrame({"variant": np.where(rng.random(n) < 0.2, "b", "a"), "y": rng.normal(size=n)})
    path = tmp_path / "f.parquet"
    df.to_parquet(path)
    res = run_study(spec_for(path, metrics=[{"name": "y", "outcome": "y"}], control="a"))
    check = res.checks[0]
    assert check.name == "srm" and check.passed is None
    assert "no planned allocation given" in check.detail and "b: 19,955" in check.detail
    srm = res.diagnostics["srm"]
    assert srm["p_value"] is None and srm["passed"] is None and srm["expected_split_given"] is False
    assert srm["observed"] == {"a": 80_045, "b": 19_955}
    code, payload, out = run_json(runner, [str(write_spec(spec_for(path, metrics=[{"name": "y", "outcome": "y"}],
                                                                 control="a")))])
    assert code == 0, out.stderr
    assert payload["checks"][0]["passed"] is None and payload["diagnostics"]["srm"]["p_value"] is None


@pytest.mark.parametrize("head", [6, 20_000])  # arms seen in the first rows, or first seen after them
def test_headline_arm_is_the_first_treatment_arm_in_the_data(tmp_path, head):
    """Without expected_split, arms come in order of first appearance (not alphabetical): the headline is the
    first treatment arm in the data; with it, the order of expected_split."""
    rng = np.random.default_rng(3)
    n = 30_000
    variant = np.where(np.arange(n) < head, "ctl", rng.choice(["zeta", "alpha", "ctl"], n))
    variant[head] = "zeta"  # zeta is seen before alpha
    variant[head + 1] = "alpha"
    variant[:head] = "ctl"
    y = rng.normal(size=n) + np.select([variant == "zeta", variant == "alpha"], [1.0, 2.0], 0.0)
    path = tmp_path / "arms.parquet"
    pd.DataFrame({"variant": variant, "y": y}).to_parquet(path)
    res = run_study(spec_for(path, metrics=[{"name": "y", "outcome": "y"}], control="ctl"))
    assert res.diagnostics["arms"]["treatment"] == ["zeta", "alpha"]
    assert res.estimate.value == effects(res)["y/zeta/abs"].value
    assert res.estimate.value == pytest.approx(1.0, abs=0.1)  # zeta's true effect 1 (SE ~ 0.014)
    planned = run_study(spec_for(path, metrics=[{"name": "y", "outcome": "y"}], control="ctl",
                                 expected_split={"ctl": 0.4, "alpha": 0.3, "zeta": 0.3}))
    assert planned.diagnostics["arms"]["treatment"] == ["alpha", "zeta"]
    assert planned.estimate.value == effects(planned)["y/alpha/abs"].value


def _aa_rates(draws: int, n: int, seed: int) -> dict[str, float]:
    """A/A experiments from per-arm moments of simulated skewed data: rejection rates at 5%."""
    from causalcli.designs.experiment.analysis import MetricShape, compare

    rng = np.random.default_rng(seed)
    shapes = {
        "mean": MetricShape("mean", "y", None, (), "mean", "none"),
        "cuped": MetricShape("cuped", "y", None, (("x", None),), "mean", "cuped"),
        "ratio": MetricShape("ratio", "y", "s", (), "ratio", "none"),
    }
    hits = {k: 0 for k in shapes} | {"holm_any": 0}
    for _ in range(draws):
        arms = []
        for _a in range(2):
            x = rng.lognormal(0, 1, n)
            s = rng.poisson(3, n) + 1.0
            y = 0.7 * x + rng.lognormal(0, 1, n) * s / 3
            cols = {"y": y, "x": x, "s": s}
            arms.append(cols)
        ps = []
        for name, shape in shapes.items():
            use = ["y", "x"] if name == "cuped" else (["y", "s"] if name == "ratio" else ["y"])

            def mom(parts):
                data = {c: np.concatenate([p[c] for p in parts]) for c in use}
                cov = {(a, b): float(np.cov(data[a], data[b])[0, 1]) for a in use for b in use}
                return Moments(len(data["y"]), {c: float(data[c].mean()) for c in use}, cov)

            c = compare(shape, mom([arms[0]]), mom([arms[1]]), mom(arms), "1")
            p = absolute(c, 0.95, "t").p_value
            hits[name] += p < 0.05
            ps.append(p)
        hits["holm_any"] += min(adjust(ps, "holm")) < 0.05
    return {k: v / draws for k, v in hits.items()}


@pytest.mark.slow  # a statistical check of size or coverage over many draws (make test-slow)
def test_aa_false_positive_rate_near_five_percent():
    rates = _aa_rates(draws=4000, n=400, seed=123)
    for name in ("mean", "cuped", "ratio"):
        assert 0.038 <= rates[name] <= 0.062, rates
    assert rates["holm_any"] <= 0.062, rates  # family-wise error controlled across 3 metrics


def test_relative_delta_is_consistent_with_absolute_at_large_n():
    c = Comparison("m", "1", 10**6, 10**6, 10.0, 10.1, 10.0, 10.1, 4.0, 4.0, 4.0, 4.0, ())
    r = relative_delta(c, 0.95, "t")
    assert r.value == pytest.approx(0.01)
    assert r.std_error == pytest.approx(math.sqrt(4e-6 / 100 + 10.1**2 * 4e-6 / 10**4), rel=1e-12)


# ---------------------------------------------------------------- bad input


@pytest.mark.parametrize("change, code, needle", [
    (lambda s, d: s["design"].update(control=7), 3, "control arm 7 not found"),
    (lambda s, d: s["design"]["metrics"].__setitem__(0, {"name": "v", "outcome": "label"}), 3, "must be numeric"),
    (lambda s, d: s["design"]["metrics"].__setitem__(0, {"name": "r", "numerator": "orders",
                                                          "denominator": "zero_in_b"}), 3, "totals zero"),
    (lambda s, d: s.update(data={"path": s["data"]["path"], "filter": "variant = 0 OR user = 1"}), 3,
     "at least two"),
    (lambda s, d: s["design"]["metrics"].__setitem__(0, {"name": "x", "outcome": "y", "numerator": "z",
                                                          "denominator": "w"}), 2, "not both"),
    (lambda s, d: s.update(refute=[{"placebo_treatment": {}}]), 2, "refuters do not apply"),
    (lambda s, d: s["design"]["metrics"].__setitem__(0, {"name": "n", "outcome": "nope"}), 3, "not found"),
    (lambda s, d: s.update(data={"path": s["data"]["path"], "filter": "CAST('x' || user AS INTEGER) > 0"}), 2,
     "'x0' cannot be read as a number"),  # a runtime error of the filter, raised when the view is first read
])
def test_bad_input_is_one_line_with_its_exit_code(tmp_path, runner, write_spec, change, code, needle):
    df = users(400, seed=1)
    df["label"] = "x"
    df["zero_in_b"] = np.where(df.variant == 1, 0, 1)
    path = tmp_path / "bad.csv"
    df.to_csv(path, index=False)
    spec = spec_for(path, metrics=[dict(m) for m in METRICS])
    change(spec, df)
    res = invoke(runner, ["estimate", str(write_spec(spec)), "--format", "json"])
    assert res.exit_code == code, (res.exit_code, res.stderr)
    err = res.stderr.strip()
    assert needle in err and "\n" not in err and "Traceback" not in err


def test_experiment_needs_no_outcome_covariates_or_graph(users_csv):
    res = run_study(spec_for(users_csv))
    assert res.diagnostics["identification"]["estimand"] == "randomised"
    assert res.refutations == []
    assert res.estimate.value == effects(res)["revenue/1/abs"].value  # primary metric, first treatment arm


# ---------------------------------------------------------------- the streaming (view) data path


def test_data_is_a_view_and_the_filter_cannot_read_other_files(tmp_path, runner, write_spec):
    """The experiment reads the file through a view (no copy); the spec's filter still reads nothing else."""
    from causalcli.data.table import load_table
    from causalcli.study.run import as_loaded

    df = users(2000, seed=8)
    path = tmp_path / "u.parquet"
    df.to_parquet(path)
    secret = tmp_path / "secret.csv"
    secret.write_text("s\n73109\n")  # a value no temporary path contains
    table = load_table(as_loaded(spec_for(path)), lazy=True)
    kind = table.sql("SELECT table_type FROM information_schema.tables WHERE table_name = 'study_data'")[0][0]
    assert kind == "VIEW" and table.rows == 2000
    for attack in (f"user < (SELECT max(s) FROM read_csv('{secret}'))",
                   f"user IN (SELECT s FROM '{secret}')",
                   "user < (SELECT count(*) FROM read_text('/etc/hostname'))",
                   "user < (SELECT count(*) FROM glob('/etc/*'))"):
        spec = write_spec(spec_for(path, correction="none") | {"data": {"path": str(path), "filter": attack}})
        res = invoke(runner, ["estimate", str(spec), "--format", "json"])
        assert res.exit_code in (2, 3), (attack, res.exit_code, res.stdout[:300])
        assert "73109" not in res.stdout + res.stderr, res.stdout
        assert "a filter can read only the data's own columns" in res.stderr, res.stderr
    ok = run_study(spec_for(path, correction="none") | {"data": {"path": str(path), "filter": "user % 2 = 0"}})
    assert ok.n["rows"] == 1000


def test_plots_draw_from_the_result_alone(users_csv, tmp_path):
    from causalcli.render.plots import draw

    res = run_study(spec_for(users_csv))
    pngs = draw(res)
    assert set(pngs) == {"lifts", "arm_sizes"}
    assert all(p.startswith(b"\x89PNG") for p in pngs.values())
    assert draw(res) == pngs  # no timestamps: reruns draw the same bytes


def test_integer_metrics_are_summed_exactly(tmp_path):
    """Integer columns sit on the centring grid: means and variances equal exact rational arithmetic."""
    from fractions import Fraction

    rng = np.random.default_rng(5)
    n = 200_000
    df = pd.DataFrame({"variant": rng.integers(0, 2, n), "k": rng.poisson(6, n) + 10**6})
    path = tmp_path / "k.parquet"
    df.to_parquet(path)
    res = run_study(spec_for(path, metrics=[{"name": "k", "outcome": "k"}], correction="none"))
    row = res.diagnostics["metrics"][0]
    for arm, key in ((0, "mean_control"), (1, "mean_treatment")):
        k = df.k[df.variant == arm]
        assert row[key] == float(Fraction(int(k.sum()), len(k)))
    k0, k1 = (df.k[df.variant == a].to_numpy() for a in (0, 1))

    def var(v):
        s, ss, m = int(v.sum()), int((v.astype(object) ** 2).sum()), len(v)
        return Fraction(ss * m - s * s, m * (m - 1))

    se = math.sqrt(float(var(k1) / len(k1) + var(k0) / len(k0)))
    assert effects(res)["k/1/abs"].std_error == pytest.approx(se, rel=1e-15)


def test_srm_false_alarm_rate_under_fair_randomisation():
    """Binomial arm sizes of fair 50/50 experiments: the SRM p-value is uniform, P(p < 0.05) ~ 5%."""
    from causalcli.designs.experiment.analysis import srm

    rng = np.random.default_rng(77)
    draws = 4000
    n_c = rng.binomial(1_000_000, 0.5, draws)
    rate = np.mean([srm({"a": int(c), "b": 1_000_000 - int(c)}, {"a": 0.5, "b": 0.5})["p_value"] < 0.05
                    for c in n_c])
    assert 0.038 <= rate <= 0.062


@pytest.mark.slow
def test_aa_false_positive_rate_through_the_whole_pipeline(tmp_path):
    """1000 A/A experiments end to end (files, DuckDB pass, analysis): rejection rate at 5% (SE 0.69 points)."""
    rng = np.random.default_rng(2024)
    hits = 0
    draws = 1000
    for i in range(draws):
        n = 1000
        pre = rng.gamma(2, 5, n)
        df = pd.DataFrame({"variant": rng.integers(0, 2, n), "pre": pre, "y": pre + rng.exponential(5, n),
                           "s": rng.poisson(3, n) + 1})
        df["w"] = df.s * rng.lognormal(0, 1, n)
        path = tmp_path / f"aa{i % 2}.parquet"
        df.to_parquet(path)
        res = run_study(spec_for(path, metrics=[{"name": "y", "outcome": "y", "covariate": "pre"},
                                                {"name": "r", "numerator": "w", "denominator": "s"}]))
        hits += sum(e.p_value < 0.05 for e in res.effects if e.label.endswith("/abs"))
    rate = hits / (2 * draws)
    assert 0.03 <= rate <= 0.07, rate


@pytest.mark.slow  # a statistical check of size or coverage over many draws (make test-slow)
def test_intervals_cover_a_known_effect_at_their_nominal_rate():
    """A true lift of 0.3 on a skewed metric: 95% Welch and CUPED intervals cover it ~95% (SE 0.49 points)."""
    from causalcli.designs.experiment.analysis import MetricShape, compare

    rng = np.random.default_rng(31)
    shapes = [MetricShape("m", "y", None, (), "mean", "none"),
              MetricShape("c", "y", None, (("x", None),), "mean", "cuped")]
    cover = [0, 0]
    draws = 2000
    for _ in range(draws):
        parts = []
        for arm in (0, 1):
            x = rng.lognormal(0, 1, 500)
            parts.append({"x": x, "y": 0.8 * x + rng.lognormal(0, 0.8, 500) + 0.3 * arm})

        def mom(ps, use):
            data = {c: np.concatenate([p[c] for p in ps]) for c in use}
            return Moments(len(data["y"]), {c: float(data[c].mean()) for c in use},
                           {(a, b): float(np.cov(data[a], data[b])[0, 1]) for a in use for b in use})

        for i, shape in enumerate(shapes):
            use = ["y", "x"] if shape.covariates else ["y"]
            t = absolute(compare(shape, mom(parts[:1], use), mom(parts[1:], use), mom(parts, use), "1"), 0.95, "t")
            cover[i] += t.ci_lower <= 0.3 <= t.ci_upper
    for c in cover:
        assert 0.935 <= c / draws <= 0.965, cover
