"""``validate`` counts the rows a study will use and drop before any estimate: its counts are estimate's
``n.dropped_missing*`` (one aggregate, the roles in the order ``prepare`` attributes a row missing several)."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from tests.conftest import base_spec, invoke, run_json, simulate

COUNTED = ("rows", "filtered_out", "dropped_missing")  # n keys validate and estimate share, with dropped_missing_*


def _validate_json(runner, spec, *flags) -> dict:
    res = invoke(runner, ["validate", str(spec), "--format", "json", *flags])
    assert res.exit_code == 0, res.stderr
    return json.loads(res.stdout)


def _shared(n: dict) -> dict:
    return {k: v for k, v in n.items() if k in COUNTED or k.startswith("dropped_missing_")}


def _saved(df: pd.DataFrame, path) -> str:
    """The frame as CSV (NaN as an empty field: NULL to DuckDB); its name, beside the spec."""
    df.to_csv(path, index=False)
    return path.name


def _binary(tmp_path) -> str:
    """NULL (an empty field) and NaN in treatment, outcome, covariates and an exact-matching column, with rows
    missing several of them (counted under the first)."""
    df = simulate(600).astype({"t": "float"})
    df.loc[:29, "t"] = np.nan          # 30 without a treatment
    df.loc[20:44, "y"] = np.nan        # 15 more without an outcome (20-29 miss both: treatment)
    df.loc[40:79, "x2"] = np.nan       # 35 more without a covariate
    df["region"] = df["region"].where(~df.index.isin(range(75, 95)), None)  # 15 more without the exact column
    text = df.to_csv(index=False, na_rep="")
    lines = text.splitlines()
    lines[51] = lines[51].replace(",,", ",NaN,", 1)  # a literal NaN as well as empty fields (row 50: x2)
    path = tmp_path / "binary.csv"
    path.write_text("\n".join(lines) + "\n")
    return path.name


def _panel(tmp_path) -> str:
    rng = np.random.default_rng(0)
    rows = []
    for u in range(30):
        for t in range(6):
            d = int(u < 15 and t >= 3)
            rows.append({"unit": u, "year": 2000 + t, "d": float(d), "state": float(u % 10), "x": rng.normal(),
                         "y": 1.0 * d + 0.1 * u + 0.2 * t + rng.normal(scale=0.1)})
    df = pd.DataFrame(rows)
    df.loc[[5, 17, 33], "y"] = np.nan
    df.loc[[17, 60, 61, 62], "x"] = np.nan    # 17 misses the outcome first
    df.loc[[90, 91], "state"] = np.nan
    df.loc[[61, 120], "d"] = np.nan          # 61 misses the treatment before its covariate
    return _saved(df, tmp_path / "panel.csv")


def _iv(tmp_path) -> str:
    rng = np.random.default_rng(3)
    n = 800
    z1, z2, w, u = rng.normal(size=(4, n))
    t = 0.8 * z1 + 0.5 * z2 + u + 0.3 * w
    df = pd.DataFrame({"t": t, "y": 2.0 * t + u + w + rng.normal(size=n), "w": w, "z1": z1, "z2": z2,
                       "g": rng.integers(0, 40, n)})
    df = df.astype({"g": "float"})
    df.loc[:9, "z2"] = np.nan
    df.loc[5:24, "w"] = np.nan
    df.loc[100:111, "g"] = np.nan
    df.loc[200:203, "y"] = np.nan
    return _saved(df, tmp_path / "iv.csv")


def _rdd(tmp_path) -> str:
    rng = np.random.default_rng(5)
    n = 2000
    x = rng.uniform(-1, 1, n)
    take = (rng.uniform(size=n) < np.where(x >= 0, 0.8, 0.2)).astype(float)
    df = pd.DataFrame({"x": x, "y": 1.0 + x + 2.0 * take + rng.normal(scale=0.5, size=n), "take": take,
                       "age": rng.normal(size=n)})
    df.loc[:14, "x"] = np.nan
    df.loc[10:39, "y"] = np.nan
    df.loc[50:59, "take"] = np.nan
    df.loc[60:99, "age"] = np.nan  # a covariate: its balance check only
    return _saved(df, tmp_path / "rdd.csv")


def _experiment(tmp_path) -> str:
    rng = np.random.default_rng(2)
    n = 1000
    df = pd.DataFrame({"variant": rng.choice(["a", "b"], n), "y": rng.normal(size=n)})
    df.loc[:59, "variant"] = None
    df.loc[100:109, "y"] = np.nan  # the metric's own count (n.missing_in_metric), not a dropped row
    return _saved(df, tmp_path / "e.csv")


def _synth(tmp_path) -> str:
    rng = np.random.default_rng(4)
    load = rng.uniform(0.5, 2.0, size=10)
    rows = [{"unit": f"u{i}", "t": 2000 + t, "x": load[i], "y": 10 + load[i] * t + rng.normal(scale=0.1)
             + (2.0 if i == 0 and t >= 9 else 0.0)} for i in range(10) for t in range(12)]
    rows += [{"unit": None, "t": 2001, "x": 1.0, "y": 1.0}, {"unit": "u1", "t": None, "x": 1.0, "y": 1.0},
             {"unit": None, "t": None, "x": 1.0, "y": 2.0}]
    return _saved(pd.DataFrame(rows), tmp_path / "synth.csv")


CASES = {
    "matching": lambda tmp: base_spec(_binary(tmp), design={"method": "matching", "estimand": "att",
                                                            "options": {"exact": ["region"]}}),
    "weighting": lambda tmp: base_spec(_binary(tmp), design={"method": "weighting", "estimand": "ate"}),
    "weighting-filtered": lambda tmp: base_spec(_binary(tmp), data={"path": "binary.csv", "filter": "x1 > -1.5"},
                                                design={"method": "weighting", "estimand": "ate"}),
    "did": lambda tmp: {"data": {"path": _panel(tmp)}, "treatment": "d", "outcome": "y", "covariates": ["x"],
                        "refute": [], "design": {"method": "did", "unit": "unit", "time": "year", "cluster": "state"}},
    "iv": lambda tmp: {"data": {"path": _iv(tmp)}, "treatment": "t", "outcome": "y", "covariates": ["w"],
                       "refute": [], "design": {"method": "iv", "instruments": ["z1", "z2"], "cluster": "g"}},
    "rdd": lambda tmp: {"data": {"path": _rdd(tmp)}, "outcome": "y", "covariates": ["age"], "refute": [],
                        "design": {"method": "rdd", "running": "x", "cutoff": 0, "fuzzy": "take"}},
    "experiment": lambda tmp: {"data": {"path": _experiment(tmp)}, "treatment": "variant",
                               "design": {"method": "experiment", "control": "a",
                                          "metrics": [{"name": "y", "outcome": "y"}]}},
    "synthetic_control": lambda tmp: {"data": {"path": _synth(tmp)}, "outcome": "y", "refute": [],
                                      "design": {"method": "synthetic_control", "unit": "unit", "time": "t",
                                                 "treated_unit": "u0", "treatment_start": 2009, "predictors": ["x"],
                                                 "options": {"conformal": False}}},
}
ONE_ROLE = ("experiment",)  # rows without a variant only


@pytest.mark.parametrize("case", sorted(CASES))
def test_validate_counts_equal_estimates_dropped_missing(case, runner, write_spec, tmp_path):
    spec = write_spec(CASES[case](tmp_path))
    report = _validate_json(runner, spec)
    code, result, res = run_json(runner, [str(spec), "--no-refute"])
    assert code in (0, 1), res.stderr
    n = report["n"]
    assert _shared(n) == _shared(result["n"])
    assert len([k for k in n if k.startswith("dropped_missing_")]) >= (1 if case in ONE_ROLE else 2)
    assert n["complete"] == n["rows"] - n["dropped_missing"] > 0
    assert report["not_counted"] is None


def test_validate_counts_by_first_missing_role_and_warns_above_five_percent(runner, write_spec, tmp_path):
    spec = write_spec(CASES["matching"](tmp_path))
    report = _validate_json(runner, spec)
    # treatment 30; outcome rows 30-44 (15); x2 rows 45-79 (35, row 50 a literal NaN); region rows 80-94 (15)
    assert report["n"] == {"rows": 600, "complete": 505, "dropped_missing": 95, "dropped_missing_treatment": 30,
                           "dropped_missing_outcome": 15, "dropped_missing_covariates": 35,
                           "dropped_missing_exact": 15}
    [warning] = report["warnings"]
    assert "95 of 600 rows (15.8%)" in warning and "covariate 'x2' (40 rows)" in warning  # x2 misses the most
    text = invoke(runner, ["validate", str(spec)]).stdout
    assert "the study uses 505 complete rows; 95 are dropped for a missing value (treatment 30, outcome 15, " \
           "covariates 35, exact 15)" in text
    assert f"warning: {warning}" in text


def test_no_warning_at_or_below_five_percent(runner, write_spec, tmp_path):
    df = simulate(400)
    df.loc[:19, "y"] = np.nan  # 20 of 400: 5%, not more
    df.to_csv(tmp_path / "d.csv", index=False)
    report = _validate_json(runner, write_spec(base_spec("d.csv")))
    assert report["n"]["dropped_missing"] == 20 and report["warnings"] == []


def test_validate_json_lists_several_specs_and_writes_output(runner, write_spec, tmp_path):
    simulate(100).to_csv(tmp_path / "d.csv", index=False)
    spec = write_spec(base_spec("d.csv"))
    out = tmp_path / "v.json"
    res = invoke(runner, ["validate", str(spec), str(spec), "--format", "json", "-o", str(out)])
    assert res.exit_code == 0 and res.stdout == ""
    reports = json.loads(out.read_text())
    assert [r["n"] for r in reports] == [{"rows": 100, "complete": 100, "dropped_missing": 0}] * 2


def test_designs_that_count_missing_values_otherwise_say_so(runner, write_spec, tmp_path):
    rng = np.random.default_rng(1)
    n = 120
    y = np.cumsum(rng.normal(size=n)) + 50
    y[90:] += 5
    pd.DataFrame({"day": pd.date_range("2024-01-01", periods=n).strftime("%Y-%m-%d"), "y": y}).to_csv(
        tmp_path / "ts.csv", index=False)
    spec = write_spec({"data": {"path": "ts.csv"}, "outcome": "y", "refute": [],
                       "design": {"method": "time_series", "time": "day", "intervention": "2024-03-31",
                                  "estimator": "segmented"}})
    report = _validate_json(runner, spec)
    assert report["n"] == {"rows": 120} and "time_series does not drop rows" in report["not_counted"]


def test_validate_text_says_when_every_row_is_complete_and_counts_one_dropped_row(runner, write_spec, tmp_path):
    simulate(100).to_csv(tmp_path / "d.csv", index=False)
    res = invoke(runner, ["validate", str(write_spec(base_spec("d.csv")))])
    assert res.exit_code == 0 and "  rows: 100, all complete in the columns the study uses\n" in res.stdout
    df = simulate(100)
    df.loc[0, "y"] = np.nan
    df.to_csv(tmp_path / "d.csv", index=False)
    res = invoke(runner, ["validate", str(write_spec(base_spec("d.csv")))])
    assert "the study uses 99 complete rows; 1 is dropped for a missing value (outcome 1)" in res.stdout


@pytest.mark.parametrize("command", ["validate", "plan"])
def test_a_failed_spec_is_an_error_object_in_the_json_as_estimate_writes_it(runner, write_spec, tmp_path, command):
    # jq over a batch saw only the specs that passed: the failed one was a line on stderr alone
    simulate(100).to_csv(tmp_path / "d.csv", index=False)
    good = write_spec(base_spec("d.csv")) if command == "validate" else \
        Path(__file__).resolve().parents[1] / "specs" / "ab_test.yaml"
    bad = tmp_path / "bad.yaml"
    bad.write_text("version: 1\nname: bad\ndata: {path: d.csv}\ntreatment: t\noutcome: nope\n"
                   "design: {method: matching}\n")
    res = invoke(runner, [command, str(bad), str(good), "--format", "json"])
    assert res.exit_code == 2 and "error: " in res.stderr
    reports = json.loads(res.stdout)
    assert isinstance(reports, list) and len(reports) == 2
    error = reports[0]["error"]
    assert error["exit_code"] == 2 and error["key"] and error["message"] and error["file"] == str(bad)
    assert (reports[0]["spec"] if command == "validate" else reports[0]["spec_path"]) == str(bad)
    assert "error" not in reports[1]
    alone = invoke(runner, [command, str(bad), "--format", "json"])
    assert alone.exit_code == 2 and json.loads(alone.stdout)["error"] == error  # one spec: one object
