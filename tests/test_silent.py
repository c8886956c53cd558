"""Nothing silent: every dropped row is counted in ``n`` and warned with its reason; a duplicated column
name is exit 3; covariates the graph leaves out are named; a lone treated unit is a warning; refuters with
fewer distinct placebos than simulations run each placebo once."""

from __future__ import annotations

import itertools
import math

import numpy as np
import pandas as pd
import pytest

from causalcli.study.run import run_study
from tests.conftest import base_spec, invoke, simulate


def _warning(res, needle: str) -> str:
    found = [w for w in res.warnings if needle in w]
    assert found, f"no warning with {needle!r} in {res.warnings}"
    return found[0]


# ---------------------------------------------------------------- dropped rows


@pytest.mark.parametrize("method", ["matching", "weighting"])
def test_rows_with_a_missing_treatment_are_counted_and_warned(tmp_path, method):
    df = simulate(400).astype({"t": "float"})
    df.loc[:39, "t"] = np.nan  # 40 of 400 rows without a treatment
    df.loc[30:44, "x2"] = np.nan  # 10 more rows miss a covariate only (30-39 miss both: counted as treatment)
    path = tmp_path / "d.csv"
    df.to_csv(path, index=False)
    res = run_study(base_spec(str(path), design={"method": method, "estimand": "att"}))
    assert res.n["rows"] == 400 and res.n["dropped_missing"] == 45
    assert res.n["dropped_missing_treatment"] == 40 and res.n["dropped_missing_covariates"] == 5
    assert "dropped_missing_outcome" not in res.n
    assert res.n["treated"] + res.n["control"] == 400 - 45
    w = _warning(res, "dropped for a missing value")
    assert "45 of 400 rows" in w and "treatment 't' in 40" in w and "covariate 'x2' in 5" in w


def test_missing_row_counts_are_written_with_thousands_separators(tmp_path):
    """Found on NHEFS: '63 of 1629 rows' beside '1,629' everywhere else (init, validate, the report's n)."""
    df = simulate(1500)
    df.loc[:1099, "y"] = np.nan  # 1,100 of 1,500 rows without an outcome
    path = tmp_path / "d.csv"
    df.to_csv(path, index=False)
    res = run_study(base_spec(str(path)))
    assert "1,100 of 1,500 rows" in _warning(res, "dropped for a missing value")
    assert "outcome 'y' in 1,100" in _warning(res, "dropped for a missing value")


def test_no_missing_rows_no_warning_and_a_zero_count(tmp_path):
    path = tmp_path / "d.csv"
    simulate(400).to_csv(path, index=False)
    res = run_study(base_spec(str(path)))
    assert res.n["dropped_missing"] == 0 and not [w for w in res.warnings if "missing value" in w]


def test_filtered_rows_are_counted(tmp_path):
    path = tmp_path / "d.csv"
    df = simulate(400)
    df.to_csv(path, index=False)
    res = run_study(base_spec(str(path), data={"path": str(path), "filter": "x1 > -1"}))
    kept = int((df.x1 > -1).sum())
    assert res.n["rows"] == kept and res.n["filtered_out"] == 400 - kept
    assert list(res.n)[:2] == ["rows", "filtered_out"]
    assert "filtered_out" not in run_study(base_spec(str(path))).n
    # an experiment reads a view over the file: the raw rows are counted there
    exp = run_study({"data": {"path": str(path), "filter": "x1 > -1"}, "treatment": "t",
                     "design": {"method": "experiment", "control": 0, "metrics": [{"name": "y", "outcome": "y"}]}})
    assert exp.n["rows"] == kept and exp.n["filtered_out"] == 400 - kept


def _panel(units: int = 24, periods: int = 6, seed: int = 0) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    rows = []
    for u in range(units):
        treated = u < units // 2
        for t in range(periods):
            d = int(treated and t >= 3)
            rows.append({"unit": u, "year": 2000 + t, "d": d, "state": u % 12,
                         "y": 1.0 * d + 0.1 * u + 0.2 * t + rng.normal(scale=0.1)})
    return pd.DataFrame(rows)


def test_did_counts_rows_dropped_by_role(tmp_path):
    df = _panel().astype({"y": "float", "state": "float"})
    df.loc[[5, 17], "y"] = np.nan
    df.loc[[40, 41, 42], "state"] = np.nan
    path = tmp_path / "p.csv"
    df.to_csv(path, index=False)
    spec = {"data": {"path": str(path)}, "treatment": "d", "outcome": "y", "refute": [],
            "design": {"method": "did", "unit": "unit", "time": "year", "cluster": "state"}}
    res = run_study(spec)
    assert res.n["dropped_missing"] == 5
    assert res.n["dropped_missing_outcome"] == 2 and res.n["dropped_missing_cluster"] == 3
    w = _warning(res, "dropped for a missing value")
    assert "outcome 'y' in 2" in w and "cluster 'state' in 3" in w


def _factor_panel(units: int = 12, periods: int = 12, start: int = 9, seed: int = 4) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    f = np.column_stack([np.linspace(0, 3, periods), np.sin(np.arange(periods) / 2)])
    load = rng.uniform(0.5, 2.0, size=(units, 2))
    load[0] = 0.5 * load[1] + 0.3 * load[2] + 0.2 * load[3]
    y = 10 + load @ f.T + rng.normal(scale=0.05, size=(units, periods))
    y[0, start:] += 2.0
    return pd.DataFrame([{"unit": f"u{i}", "t": 2000 + t, "y": y[i, t], "x": load[i, 0]}
                         for i in range(units) for t in range(periods)])


def test_synth_counts_rows_without_unit_or_time_and_names_missing_predictors(tmp_path):
    df = _factor_panel()
    extra = pd.DataFrame([{"unit": None, "t": 2001, "y": 1.0, "x": 1.0}, {"unit": "u1", "t": None, "y": 1.0, "x": 1.0}])
    df = pd.concat([df, extra], ignore_index=True)
    df.loc[(df.unit == "u3") & (df.t == 2002), "x"] = np.nan
    path = tmp_path / "p.csv"
    df.to_csv(path, index=False)
    spec = {"data": {"path": str(path)}, "outcome": "y", "refute": [],
            "design": {"method": "synthetic_control", "unit": "unit", "time": "t", "treated_unit": "u0",
                       "treatment_start": 2009, "predictors": ["x"], "options": {"conformal": False}}}
    res = run_study(spec)
    assert res.n["dropped_missing"] == 2
    assert res.n["dropped_missing_unit"] == 1 and res.n["dropped_missing_time"] == 1
    assert "2 of 146 rows" in _warning(res, "dropped for a missing value")
    assert "predictor 'x' is missing in 1 unit-periods" in _warning(res, "predictor 'x'")


def test_experiment_counts_missing_variants_and_metric_rows(tmp_path):
    rng = np.random.default_rng(2)
    n = 1000
    df = pd.DataFrame({"variant": rng.choice(["a", "b"], n), "y": rng.normal(size=n), "z": rng.normal(size=n)})
    df.loc[:29, "variant"] = None
    df.loc[100:109, "z"] = np.nan
    path = tmp_path / "e.parquet"
    df.to_parquet(path)
    spec = {"data": {"path": str(path)}, "treatment": "variant",
            "design": {"method": "experiment", "control": "a", "expected_split": {"a": 0.5, "b": 0.5},
                       "metrics": [{"name": "y", "outcome": "y"}, {"name": "z", "outcome": "z"}]}}
    res = run_study(spec)
    assert res.n["dropped_missing"] == res.n["dropped_missing_treatment"] == 30
    assert res.n["used"] == 970 and res.n["missing_in_metric[z]"] == 10 and "missing_in_metric[y]" not in res.n
    assert "30 of 1,000 rows" in _warning(res, "dropped for a missing value")
    assert "variant column 'variant' in 30" in _warning(res, "dropped for a missing value")
    assert "metric 'z' leaves out 10 of 970 rows" in _warning(res, "metric 'z'")


# ---------------------------------------------------------------- duplicated columns


def test_duplicated_csv_header_is_exit_3_naming_column_and_file(tmp_path, runner, write_spec):
    path = tmp_path / "dup.csv"
    path.write_text("t,y,x1,x2,x1\n" + "\n".join(f"{i % 2},{i},{i * 0.5},{i % 3},{i % 5}" for i in range(40)) + "\n")
    spec = write_spec(base_spec(path.name))
    res = invoke(runner, ["estimate", str(spec)])
    assert res.exit_code == 3
    line = res.stderr.strip()
    assert "\n" not in line and "'x1'" in line and "dup.csv" in line and "more than once" in line


def test_duplicated_parquet_column_and_colliding_rename_are_exit_3(tmp_path):
    import pyarrow as pa
    import pyarrow.parquet as pq

    from causalcli.errors import DataError

    df = simulate(100)
    table = pa.Table.from_arrays([pa.array(df[c]) for c in ["t", "y", "x1", "x2", "x2"]],
                                 names=["t", "y", "x1", "x2", "x2"])
    pq.write_table(table, tmp_path / "dup.parquet")
    with pytest.raises(DataError, match="'x2' appears more than once"):
        run_study(base_spec(str(tmp_path / "dup.parquet")))
    df.to_csv(tmp_path / "ok.csv", index=False)
    with pytest.raises(DataError, match="two columns named 'x2'") as err:
        run_study(base_spec(str(tmp_path / "ok.csv"), data={"path": str(tmp_path / "ok.csv"),
                                                            "columns": {"region": "x2"}}))
    assert err.value.exit_code == 3 and err.value.key == "data.columns.region"


# ---------------------------------------------------------------- graph, lone treated unit


def test_covariates_outside_the_adjustment_set_are_named(tmp_path):
    path = tmp_path / "d.csv"
    simulate(400).to_csv(path, index=False)
    # x2 only causes the outcome: the backdoor set is {x1}, and x2 is left unused
    graph = {"edges": [["x1", "t"], ["x1", "y"], ["x2", "y"], ["t", "y"]]}
    res = run_study(base_spec(str(path), graph=graph, design={"method": "weighting", "estimand": "ate"}))
    assert res.diagnostics["identification"]["adjustment_set"] == ["x1"]
    w = _warning(res, "adjustment set")
    assert "'x2'" in w and "not used" in w and "'x1'" not in w.split("(")[0]
    plain = run_study(base_spec(str(path), design={"method": "weighting", "estimand": "ate"}))
    assert not [w for w in plain.warnings if "adjustment set" in w]


@pytest.mark.parametrize("method", ["matching", "weighting"])
def test_one_treated_unit_is_a_warning(tmp_path, method):
    df = simulate(200, seed=3)
    df["t"] = 0
    df.loc[df.x1.abs().idxmin(), "t"] = 1  # a single treated unit, in the middle of the controls
    path = tmp_path / "d.csv"
    df.to_csv(path, index=False)
    design = {"method": method, "estimand": "att"}
    res = run_study(base_spec(str(path), design=design))
    assert res.n["treated"] == 1
    assert "cannot be trusted" in _warning(res, "only one treated unit")
    path2 = tmp_path / "e.csv"
    simulate(200, seed=3).to_csv(path2, index=False)
    assert not [w for w in run_study(base_spec(str(path2), design=design)).warnings if "only one" in w]


def test_dml_refuses_one_treated_unit_naming_the_arm(tmp_path):
    """Cross-fitting needs units of both arms in every fold: one treated unit is exit 3, not a silent fit."""
    from causalcli.errors import DataError

    df = simulate(200, seed=3)
    df["t"] = 0
    df.loc[0, "t"] = 1
    path = tmp_path / "d.csv"
    df.to_csv(path, index=False)
    with pytest.raises(DataError, match="1 units in the smaller arm") as err:
        run_study(base_spec(str(path), design={"method": "dml", "estimand": "ate"}))
    assert err.value.exit_code == 3


# ---------------------------------------------------------------- enumerated placebos


def test_distinct_permutations_are_every_other_arrangement_once():
    from causalcli.inference.permutation import distinct_permutations

    t = np.array([1, 0, 0, 1, 0, 2])
    out = distinct_permutations(t, 100)
    expected = {p for p in itertools.permutations(t.tolist())} - {tuple(t.tolist())}
    assert len(out) == len(expected) == math.factorial(6) // (math.factorial(3) * math.factorial(2)) - 1  # 59
    assert {tuple(p.tolist()) for p in out} == expected
    assert distinct_permutations(t, 58) is None  # one more than allowed: sampled at random instead
    assert distinct_permutations(np.array([True, False, False]), 5)[0].dtype == bool
    assert distinct_permutations(np.zeros(500), 100) is None and distinct_permutations(np.arange(200) % 2, 100) is None


def test_enumerated_placebos_that_fail_leave_the_steps_of_p_to_those_estimated(tmp_path):
    """Snow's cholera 2x2 (causaldata `snow`: four rows, deaths per 10,000 in 1849 and 1854): the group permuted
    over the rows gives 5 distinct placebos, 2 of them singular (both group rows in one year). p = (1 + 3) / (1 + 3)
    comes from the 3 estimated: its steps are 1/4, where the detail said 1/6."""
    df = pd.DataFrame({"year": [1849, 1849, 1854, 1854], "lambeth": [0, 1, 0, 1],
                       "deathrate": [134.9, 130.1, 146.6, 84.9]})
    df["moved"] = df.lambeth * (df.year == 1854)
    path = tmp_path / "snow.csv"
    df.to_csv(path, index=False)
    spec = {"version": 1, "data": {"path": str(path)}, "treatment": "moved", "outcome": "deathrate",
            "design": {"method": "did", "time": "year", "group": "lambeth", "estimator": "2x2"},
            "refute": [{"placebo_treatment": {}}]}
    res = run_study(spec, jobs=1)
    assert res.estimate.value == pytest.approx(-56.9, abs=1e-9)  # (84.9 - 130.1) - (146.6 - 134.9)
    r = res.refutations[0]
    assert "only 5 distinct" in r.detail and "2 of 5 simulations could not be estimated" in r.detail, r.detail
    assert "steps of 1/4" in r.detail and r.p_value == pytest.approx(1.0)


def test_placebo_treatment_on_a_tiny_sample_enumerates_and_gives_the_exact_p(tmp_path):
    """8 units, 3 treated: C(8, 3) = 56 assignments, 55 besides the real one, fewer than 100 simulations.
    The p-value is the exact randomisation p, recomputed here over every assignment."""
    from causalcli.designs import get_design
    from causalcli.study.run import prepare_study, as_loaded

    rng = np.random.default_rng(5)
    df = pd.DataFrame({"t": [1, 1, 1, 0, 0, 0, 0, 0], "x1": rng.normal(size=8)})
    df["y"] = 3.0 * df.t + 0.1 * df.x1 + rng.normal(scale=0.1, size=8)
    path = tmp_path / "tiny.csv"
    df.to_csv(path, index=False)
    # Mahalanobis matching: no propensity refit that some assignments of 8 units would separate
    spec = base_spec(str(path), covariates=["x1"], refute=[{"placebo_treatment": {"simulations": 100}}],
                     design={"method": "matching", "estimand": "att", "options": {"distance": "mahalanobis"}})
    res = run_study(spec, jobs=1)
    r = res.refutations[0]
    assert r.simulations == 55
    assert "only 55 distinct re-assignments" in r.detail and "steps of 1/56" in r.detail
    # brute force: every assignment of 3 treated among 8, the real one included
    loaded = as_loaded(spec)
    prep = prepare_study(loaded)
    design = get_design("matching")
    data = design.prepare(loaded.study, prep.table, prep.identification, loaded)
    est = abs(res.estimate.value)
    effects = []
    for treated in itertools.combinations(range(8), 3):
        t = np.zeros(8, dtype=bool)
        t[list(treated)] = True
        effects.append(design.point(data, treatment=t))
    exact = np.mean(np.abs(effects) >= est - 1e-12)
    assert r.p_value == pytest.approx(exact, abs=1e-12)
    # the same whatever the seed: nothing is drawn at random
    assert run_study(spec, jobs=1, seed=9).refutations[0].p_value == r.p_value


def test_placebo_in_time_with_three_possible_starts_runs_each_once(tmp_path):
    df = _factor_panel(units=10, periods=12, start=8)
    path = tmp_path / "p.csv"
    df.to_csv(path, index=False)
    spec = {"data": {"path": str(path)}, "outcome": "y", "refute": [{"placebo_in_time": {"simulations": 10,
                                                                                        "min_pre": 5}}],
            "design": {"method": "synthetic_control", "unit": "unit", "time": "t", "treated_unit": "u0",
                       "treatment_start": 2008, "predictors": ["x"],
                       "special_predictors": [["y", 2001], ["y", 2004], ["y", 2007]], "options": {"conformal": False}}}
    res = run_study(spec, jobs=1)
    r = res.refutations[0]
    # pre-periods 2000-2007, five before the first fake start: 2005, 2006, 2007
    assert r.simulations == 3
    assert "only 3 distinct fake starts" in r.detail and "steps of 1/4" in r.detail
    from causalcli.designs import get_design
    from causalcli.study.run import as_loaded, prepare_study
    from causalcli.designs.synthetic_control.refute import placebo_in_time_at

    loaded = as_loaded(spec)
    prep = prepare_study(loaded)
    data = get_design("synthetic_control").prepare(loaded.study, prep.table, prep.identification, loaded)
    fakes = [placebo_in_time_at(data, s) for s in (2005.0, 2006.0, 2007.0)]
    assert r.new_effect == pytest.approx(np.mean(fakes), abs=1e-9)
    assert run_study(spec, jobs=1, seed=3).refutations[0].new_effect == r.new_effect
