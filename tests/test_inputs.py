"""Inputs as they come: treatment codings, CSV delimiters, date time columns and messages that name the row.

Equality checks are exact (or to 1e-12): a recoded treatment, a semicolon file or a date time
column must give the very rows and periods of the reference version, so the same arithmetic runs.
"""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import yaml

from causalcli.errors import DataError, SpecError
from causalcli.study.run import run_study
from tests.conftest import base_spec, invoke, run_json, simulate
from tests.test_did import simulate_panel

EXACT = 1e-12  # same rows and periods, same arithmetic: only the last bits of summation order may differ


def _one_error(res) -> str:
    assert "Traceback" not in res.stderr
    errors = [line for line in res.stderr.splitlines() if line.startswith("error:")]
    assert len(errors) == 1, res.stderr
    return errors[0]


def _save(df: pd.DataFrame, path: Path) -> Path:
    if path.suffix == ".parquet":
        df.to_parquet(path, index=False)
    else:
        df.to_csv(path, index=False)
    return path


# ---------------------------------------------------------------- treatments


@pytest.fixture(scope="module")
def sim() -> pd.DataFrame:
    return simulate(300)


@pytest.fixture(scope="module")
def matching_reference(sim, tmp_path_factory) -> float:
    path = _save(sim, tmp_path_factory.mktemp("ref") / "ref.csv")
    return run_study(base_spec(str(path))).estimate.value


@pytest.mark.parametrize("ext", ["csv", "parquet"])
@pytest.mark.parametrize("control, treated, treated_value", [
    ("no", "yes", None), ("No", "Yes", None), ("F", "T", None), ("false", "true", None), (False, True, None),
    ("control", "treated", "treated"), ("placebo", "drug", "drug"), (1, 2, 2), ("A", "B", "b"),
])
def test_treatment_codings_give_the_0_1_estimate(tmp_path, sim, matching_reference, ext, control, treated,
                                                  treated_value):
    df = sim.copy()
    df["t"] = np.where(sim.t == 1, treated, control)
    spec = base_spec(str(_save(df, tmp_path / f"d.{ext}")))
    if treated_value is not None:
        spec["design"]["treated_value"] = treated_value
    assert run_study(spec).estimate.value == pytest.approx(matching_reference, abs=EXACT)


def test_treated_value_can_be_the_zero_like_value(tmp_path, sim, matching_reference):
    """treated_value names the treated arm even when it is the value that would read as 0."""
    df = sim.copy()
    df["t"] = np.where(sim.t == 1, "no", "yes")
    spec = base_spec(str(_save(df, tmp_path / "d.csv")))
    spec["design"]["treated_value"] = "no"
    assert run_study(spec).estimate.value == pytest.approx(matching_reference, abs=EXACT)


def test_yaml_yes_as_treated_value_matches_a_yes_column(tmp_path, sim, matching_reference, write_spec, runner):
    """YAML 1.1 reads an unquoted yes as true: it must still pick the 'yes' rows."""
    df = sim.copy()
    df["t"] = np.where(sim.t == 1, "yes", "no")
    _save(df, tmp_path / "d.parquet")
    spec = write_spec(yaml.safe_dump(base_spec("d.parquet")) .replace("method: matching",
                                                                        "method: matching\n  treated_value: yes"))
    code, payload, res = run_json(runner, [str(spec)])
    assert code in (0, 1), res.stderr  # 1: the simulated data fail the balance check, as the 0/1 version does
    assert payload["estimate"]["value"] == pytest.approx(matching_reference, abs=EXACT)


@pytest.mark.parametrize("method", ["weighting", pytest.param("dml", marks=pytest.mark.slow), "did"])
def test_other_designs_read_string_treatments(tmp_path, method):
    if method == "did":
        df = simulate_panel(units=60, periods=6, cohorts=(4,))
        ref = {"version": 1, "outcome": "y", "treatment": "d", "refute": [],
               "design": {"method": "did", "unit": "unit", "time": "time"}}
    else:
        df = simulate(300)
        df["d"] = df.t
        ref = base_spec("", treatment="d")
        ref["design"] = {"method": method, "estimand": "ate"}
        if method == "dml":
            ref["design"]["options"] = {"learner": "linear", "folds": 2}
    ref["data"] = {"path": str(_save(df, tmp_path / "ref.csv"))}
    expected = run_study(ref).estimate.value
    coded = df.assign(d=np.where(df.d == 1, "treated", "control"))
    spec = {**ref, "data": {"path": str(_save(coded, tmp_path / "coded.parquet"))},
            "design": {**ref["design"], "treated_value": "treated"}}
    assert run_study(spec).estimate.value == pytest.approx(expected, abs=EXACT)


def test_two_unnamed_strings_exit_3_naming_both_values_and_the_key(runner, tmp_path, sim, write_spec):
    df = sim.copy()
    df["t"] = np.where(sim.t == 1, "treated", "control")
    _save(df, tmp_path / "d.parquet")
    res = invoke(runner, ["estimate", str(write_spec(base_spec("d.parquet")))])
    assert res.exit_code == 3
    line = _one_error(res)
    assert "'treated'" in line and "'control'" in line and "design.treated_value" in line


def test_treated_value_not_in_the_column_exits_3(tmp_path, sim):
    df = sim.copy()
    df["t"] = np.where(sim.t == 1, "treated", "control")
    spec = base_spec(str(_save(df, tmp_path / "d.csv")))
    spec["design"]["treated_value"] = "treatment"
    with pytest.raises(DataError, match=r"treated_value 'treatment' is not a value of treatment column 't'") as info:
        run_study(spec)
    assert info.value.key == "design.treated_value"
    assert "'treated'" in str(info.value) and "'control'" in str(info.value)


def test_treatment_with_three_values_names_them(tmp_path, sim):
    df = sim.copy()
    df["t"] = np.where(sim.t == 1, "a", np.where(sim.x1 > 0, "b", "c"))
    with pytest.raises(DataError, match=r"must be binary .* found 3: 'a', 'b', 'c'|must be binary .*found 3"):
        run_study(base_spec(str(_save(df, tmp_path / "d.csv"))))


def test_stray_missing_marker_in_a_treatment_is_named_with_its_row_and_filtering_it_works(tmp_path, sim,
                                                                                         matching_reference):
    df = sim.copy()
    df["t"] = np.where(sim.t == 1, "yes", "no").astype(object)
    df.loc[16, "t"] = "n/a"
    path = _save(df, tmp_path / "d.parquet")
    with pytest.raises(DataError, match=r"treatment column 't' must be binary .* found 3: .*'n/a' \(first in row 17\) "
                                        r"looks like a missing value: .*data.filter \(e.g. \"t <> 'n/a'\"\)") as info:
        run_study(base_spec(str(path)))
    assert info.value.key == "treatment"
    res = run_study(base_spec(str(path), data={"path": str(path), "filter": "t <> 'n/a'"}))
    expected = run_study(base_spec(str(_save(sim.drop(index=16), tmp_path / "ok.csv"))))
    assert res.estimate.value == pytest.approx(expected.estimate.value, abs=EXACT)


def test_treated_value_is_refused_by_designs_without_a_two_valued_treatment():
    with pytest.raises(SpecError, match="treated_value"):
        run_study({"version": 1, "data": {"path": "x.csv"}, "treatment": "v", "outcome": "y",
                   "design": {"method": "experiment", "control": "a", "treated_value": "b"}})


# ---------------------------------------------------------------- experiments: arm values of any type


def _experiment(tmp_path: Path, variant: np.ndarray, **design) -> dict:
    rng = np.random.default_rng(5)
    y = rng.normal(size=variant.size) + 0.3 * (variant == variant.max())
    _save(pd.DataFrame({"variant": variant, "y": y}), tmp_path / "e.csv")
    return {"version": 1, "data": {"path": str(tmp_path / "e.csv")}, "treatment": "variant", "outcome": "y",
            "design": {"method": "experiment", "control": 0, **design}}


def test_control_0_matches_a_float_column_and_integer_split_keys_are_accepted(tmp_path):
    arms = np.arange(600) % 2
    ints = run_study(_experiment(tmp_path, arms))
    # pandas writes 0.0 / 1.0: DuckDB reads the variant as DOUBLE
    floats = _experiment(tmp_path, arms.astype(float), expected_split={0: 0.5, 1: 0.5})
    assert "\n0.0," in (tmp_path / "e.csv").read_text()
    res = run_study(floats)
    assert res.estimate.value == pytest.approx(ints.estimate.value, rel=1e-12)
    srm = next(c for c in res.checks if c.name == "srm")
    assert srm.passed is True
    assert [e.label for e in res.effects][:1] == [e.label for e in ints.effects][:1]


def test_experiment_metric_with_a_stray_marker_is_named_and_the_filter_fixes_it(tmp_path):
    """The experiment reads the file lazily (a DuckDB view): text holding numbers is read as numbers there too."""
    spec = _experiment(tmp_path, np.arange(600) % 2)
    clean = run_study(spec).estimate.value
    df = pd.read_csv(tmp_path / "e.csv").astype({"y": object})
    df.loc[[41, 300], "y"] = "n/a"
    _save(df, tmp_path / "e.csv")
    with pytest.raises(DataError, match=r"column 'y' \(outcome\) must be numeric: row 42 has 'n/a'; write missing "
                                        r"values as empty fields") as info:
        run_study(spec)
    assert info.value.key == "design.metrics[0].outcome"
    res = run_study({**spec, "data": {**spec["data"], "filter": "y <> 'n/a'"}})
    assert res.n["rows"] == 598 and res.estimate.value != clean
    expected = _save(df.drop(index=[41, 300]), tmp_path / "ok.csv")
    assert res.estimate.value == pytest.approx(run_study({**spec, "data": {"path": str(expected)}}).estimate.value,
                                               rel=1e-12)


# ---------------------------------------------------------------- delimiters


@pytest.mark.parametrize("delimiter, name, given", [
    (";", "d.csv", None), ("\t", "d.csv", None), ("\t", "d.tsv", None), ("|", "d.txt", "|"), (";", "d.csv", ";"),
])
def test_delimiters_are_detected_or_given(tmp_path, sim, matching_reference, delimiter, name, given):
    sim.to_csv(tmp_path / name, index=False, sep=delimiter)
    spec = base_spec(str(tmp_path / name))
    if given:
        spec["data"]["delimiter"] = given
    if name.endswith(".txt"):
        spec["data"]["format"] = "csv"
    assert run_study(spec).estimate.value == pytest.approx(matching_reference, abs=EXACT)


def test_semicolon_file_with_decimal_commas_says_what_to_do(tmp_path, sim):
    sim.to_csv(tmp_path / "d.csv", index=False, sep=";", decimal=",")
    with pytest.raises(DataError, match=r"column 'y' \(outcome\) must be numeric: row 1 has '-?\d+,\d+'; write "
                                        r"decimals with a point"):
        run_study(base_spec(str(tmp_path / "d.csv")))


def test_bad_delimiter_is_exit_2(tmp_path):
    with pytest.raises(SpecError, match="data.delimiter"):
        run_study(base_spec(str(tmp_path / "d.csv"), data={"path": "d.csv", "delimiter": ";;"}))


# ---------------------------------------------------------------- numbers: messages that name the row


@pytest.mark.parametrize("column, bad, role, needle", [
    ("y", "6,825.50", "outcome", "remove the thousands separators (6825.50)"),
    ("y", "n/a", "outcome", "write missing values as empty fields, or drop those rows with data.filter"),
    ("x1", "high", "covariate", "list the column under 'categorical' if it is a category"),
    ("x1", "$12.50", "covariate", "without currency or percent signs"),
])
def test_non_numeric_value_names_column_role_row_and_value(runner, tmp_path, sim, write_spec, column, bad, role,
                                                           needle):
    df = sim.astype({column: object})
    df.loc[16, column] = bad  # data row 17
    _save(df, tmp_path / "d.csv")
    res = invoke(runner, ["validate", str(write_spec(base_spec("d.csv")))])
    assert res.exit_code == 3
    line = _one_error(res)
    assert f"column {column!r} ({role}) must be numeric: row 17 has {bad!r}" in line, line
    assert needle in line, line


def test_following_the_missing_value_advice_works(tmp_path, sim):
    """The advice for a stray 'n/a' is to filter it out: the filtered column is then read as numbers."""
    df = sim.astype({"y": object})
    df.loc[16, "y"] = "n/a"
    path = _save(df, tmp_path / "d.csv")
    with pytest.raises(DataError, match=r"data.filter \(e.g. \"y <> 'n/a'\"\)"):
        run_study(base_spec(str(path)))
    res = run_study(base_spec(str(path), data={"path": str(path), "filter": "y <> 'n/a'"}))
    expected = run_study(base_spec(str(_save(sim.drop(index=16), tmp_path / "ok.csv"))))
    assert res.estimate.value == pytest.approx(expected.estimate.value, abs=EXACT)


def test_numbers_written_as_text_are_read_as_numbers_and_empty_text_is_missing(tmp_path, sim):
    df = sim.astype({"y": str, "x1": str})
    df.loc[5, "y"] = ""
    res = run_study(base_spec(str(_save(df, tmp_path / "d.parquet"))))
    expected = run_study(base_spec(str(_save(sim.drop(index=5), tmp_path / "ok.csv"))))
    assert res.estimate.value == pytest.approx(expected.estimate.value, abs=EXACT)
    assert res.n["dropped_missing"] == 1


def test_row_numbers_say_when_they_count_filtered_rows(tmp_path, sim):
    df = sim.astype({"y": object})
    df.loc[16, "y"] = "oops"
    path = _save(df, tmp_path / "d.csv")
    with pytest.raises(DataError, match="row 16 of the filtered data has 'oops'"):
        run_study(base_spec(str(path), data={"path": str(path), "filter": "x1 <> " + repr(float(sim.x1[0]))}))


# ---------------------------------------------------------------- date time columns: DiD


def _month(t: int) -> dt.date:
    return dt.date(2011 + (t - 1) // 12, (t - 1) % 12 + 1, 1)


@pytest.fixture(scope="module")
def panels(tmp_path_factory) -> dict[str, Path]:
    """One staggered panel with integer periods 1..8, and the same panel with monthly dates in several types."""
    out = tmp_path_factory.mktemp("panels")
    df = simulate_panel(units=80, periods=8, cohorts=(4, 6))
    days = df.assign(time=[_month(t) for t in df.time], g=[_month(g) if g else None for g in df.g])
    stamps = days.assign(time=[pd.Timestamp(d).tz_localize("UTC") + pd.Timedelta(hours=13) for d in days.time])
    text = days.assign(time=[d.isoformat() for d in days.time], g=[d.isoformat() if d else "0" for d in days.g])
    return {"integer": _save(df, out / "int.csv"), "date_csv": _save(days, out / "date.csv"),
            "date_parquet": _save(days, out / "date.parquet"), "timestamp_parquet": _save(stamps, out / "ts.parquet"),
            "iso_text_parquet": _save(text, out / "text.parquet")}


DID_CASES = {
    "twfe": {"estimator": "twfe"},
    "event_study": {"estimator": "twfe", "event_study": {"leads": 2, "lags": 2}, "options": {"honest_did": False}},
    "callaway_santanna": {"estimator": "callaway_santanna", "options": {"honest_did": False}},
}


@pytest.mark.parametrize("case", list(DID_CASES))
def test_did_on_date_time_equals_integer_time_and_labels_are_dates(panels, case):
    def spec(path: Path) -> dict:
        s = {"version": 1, "data": {"path": str(path)}, "outcome": "y", "treatment": "d", "refute": [],
             "design": {"method": "did", "unit": "unit", "time": "time", "cohort": "g", **DID_CASES[case]}}
        if case == "callaway_santanna":
            s.pop("treatment")
        return s

    ref = run_study(spec(panels["integer"]))
    for kind in ("date_csv", "date_parquet", "timestamp_parquet", "iso_text_parquet"):
        res = run_study(spec(panels[kind]))
        assert res.estimate.value == pytest.approx(ref.estimate.value, abs=EXACT), kind
        assert res.estimate.std_error == pytest.approx(ref.estimate.std_error, abs=EXACT), kind
        assert [e.value for e in res.effects] == pytest.approx([e.value for e in ref.effects], abs=EXACT)
        panel = res.diagnostics["panel"]
        assert panel["cohorts"] == {"2011-04-01": ref.diagnostics["panel"]["cohorts"]["4"],
                                    "2011-06-01": ref.diagnostics["panel"]["cohorts"]["6"]}, kind
        assert (panel["first_period"], panel["last_period"]) == ("2011-01-01", "2011-08-01")
        if case == "callaway_santanna":
            groups = res.diagnostics["aggregations"]["group"]["elements"]
            assert [e["label"] for e in groups] == ["group=2011-04-01", "group=2011-06-01"]
            first = res.diagnostics["group_time"][0]
            assert (first["group"], first["time"]) == ("2011-04-01", "2011-02-01")


def test_timestamps_are_cut_to_days_in_data_timezone(tmp_path):
    """23:30 UTC is the same day in New York and the next day in Tokyo."""
    from causalcli.data.table import load_table, require_columns
    from causalcli.study.run import as_loaded

    stamps = pd.to_datetime(["2011-07-01T23:30:00Z", "2011-07-02T10:00:00Z", "2011-07-03T01:00:00Z"])
    _save(pd.DataFrame({"ts": stamps, "naive": stamps.tz_localize(None), "y": [1.0, 2.0, 3.0]}),
          tmp_path / "t.parquet")
    expected = {"UTC": ["2011-07-01", "2011-07-02", "2011-07-03"],
                "America/New_York": ["2011-07-01", "2011-07-02"],
                "Asia/Tokyo": ["2011-07-02", "2011-07-03"]}
    for zone, days in expected.items():
        spec = as_loaded({"version": 1, "data": {"path": str(tmp_path / "t.parquet"), "timezone": zone},
                          "outcome": "y", "design": {"method": "experiment", "control": 0}})
        for column in ("ts", "naive"):  # naive timestamps are read as UTC
            table = load_table(spec)
            require_columns(table, {column: ("design.time", "time")}, timezone=zone)
            assert table.period_labels[column] == days, (zone, column)


def test_unknown_timezone_is_exit_2(runner, tmp_path, sim, write_spec):
    _save(sim, tmp_path / "d.csv")
    res = invoke(runner, ["validate", str(write_spec(base_spec("d.csv", data={"path": "d.csv",
                                                                            "timezone": "Mars/Olympus"})))])
    assert res.exit_code == 2 and "data.timezone" in _one_error(res)


def test_bad_time_and_cohort_values_name_the_row(panels, tmp_path):
    df = pd.read_parquet(panels["iso_text_parquet"])
    bad_time = df.copy()
    bad_time.loc[9, "time"] = "July 2011"
    spec = {"version": 1, "data": {"path": str(_save(bad_time, tmp_path / "t.parquet"))}, "outcome": "y",
            "design": {"method": "did", "unit": "unit", "time": "time", "cohort": "g"}, "refute": []}
    with pytest.raises(DataError, match=r"column 'time' \(time\) must hold numbers, dates \(YYYY-MM-DD\) or "
                                        r"timestamps: row 10 has 'July 2011'") as info:
        run_study(spec)
    assert info.value.key == "design.time"
    bad_cohort = df.copy()
    bad_cohort.loc[bad_cohort.g != "0", "g"] = bad_cohort.loc[bad_cohort.g != "0", "g"].where(
        bad_cohort.index[bad_cohort.g != "0"] != bad_cohort.index[bad_cohort.g != "0"][0], "soon")
    first = int(bad_cohort.index[bad_cohort.g == "soon"][0]) + 1
    spec["data"]["path"] = str(_save(bad_cohort, tmp_path / "c.parquet"))
    with pytest.raises(DataError, match=rf"column 'g' \(cohort\) must hold dates like the time column 'time': "
                                        rf"row {first} has 'soon'"):
        run_study(spec)


def test_date_cohort_with_integer_time_is_refused(panels, tmp_path):
    df = pd.read_parquet(panels["date_parquet"]).assign(time=lambda d: [x.month for x in d.time])
    spec = {"version": 1, "data": {"path": str(_save(df, tmp_path / "m.parquet"))}, "outcome": "y",
            "design": {"method": "did", "unit": "unit", "time": "time", "cohort": "g"}, "refute": []}
    with pytest.raises(DataError, match=r"column 'g' \(cohort\) is DATE but the time column 'time' holds numbers"):
        run_study(spec)


# ---------------------------------------------------------------- date time columns: synthetic control


def _synth_panel() -> pd.DataFrame:
    from tests.test_synth import factor_panel

    return pd.DataFrame(factor_panel(1, effect=3.0, units=10, periods=20, start=14))


def _synth_spec(path: Path, period) -> dict:
    return {"version": 1, "data": {"path": str(path)}, "outcome": "y", "refute": [],
            "design": {"method": "synthetic_control", "unit": "unit", "time": "t", "treated_unit": "u0",
                       "treatment_start": period(2014), "predictors": ["x"],
                       "special_predictors": [["y", period(2005)], ["y", [period(2008), period(2010)]],
                                              ["y", {"from": period(2011), "to": period(2013)}]],
                       "options": {"conformal": False, "predictors_window": [period(2003), period(2013)]}}}


def test_synth_on_date_time_equals_integer_time_and_labels_are_dates(tmp_path, write_spec, runner):
    df = _synth_panel()
    ref = run_study(_synth_spec(_save(df, tmp_path / "int.csv"), int), jobs=1)
    days = df.assign(t=[dt.date(t, 1, 1) for t in df.t])
    _save(days, tmp_path / "days.parquet")
    # treatment_start and the periods as YAML dates (datetime.date under safe_load)
    spec = write_spec(yaml.safe_dump(_synth_spec(Path("days.parquet"), lambda y: dt.date(y, 1, 1))))
    assert "treatment_start: 2014-01-01" in spec.read_text()
    code, payload, res = run_json(runner, [str(spec)])
    assert code == 0, res.stderr
    # and as ISO strings, on a timestamp column
    stamps = df.assign(t=[f"{t}-01-01T09:00:00" for t in df.t])
    text = run_study(_synth_spec(_save(stamps, tmp_path / "ts.csv"), lambda y: f"{y}-01-01"), jobs=1).to_dict()
    for out in (payload, text):
        assert out["estimate"]["value"] == pytest.approx(ref.estimate.value, abs=EXACT)
        assert out["estimate"]["p_value"] == ref.estimate.p_value
        assert [e["label"] for e in out["effects"]] == [f"{y}-01-01" for y in range(2014, 2020)]
        assert out["diagnostics"]["path"]["treatment_start"] == "2014-01-01"
        assert list(out["diagnostics"]["v_weights"]) == ["x", "y (2005-01-01)", "y (2008-01-01 to 2010-01-01)",
                                                         "y (2011-01-01 to 2013-01-01)"]
        assert out["diagnostics"]["weights"] == pytest.approx(ref.diagnostics["weights"], abs=EXACT)


def test_synth_treatment_start_must_be_a_period_in_the_time_columns_type(tmp_path):
    df = _synth_panel().assign(t=lambda d: [dt.date(t, 1, 1) for t in d.t])
    path = _save(df, tmp_path / "d.parquet")
    with pytest.raises(SpecError, match=r"treatment_start must be a date like the time column 't'"):
        run_study(_synth_spec(path, int), jobs=1)
    with pytest.raises(DataError, match=r"treatment_start 2014-02-01 is not a period of column 't' \(periods "
                                        r"2000-01-01 to 2019-01-01\)"):
        run_study(_synth_spec(path, lambda y: f"{y}-02-01" if y == 2014 else f"{y}-01-01"), jobs=1)
    numbers = _save(_synth_panel(), tmp_path / "n.csv")
    with pytest.raises(SpecError, match=r"treatment_start is a date \(2014-01-01\) but the time column 't' holds "
                                        r"numbers"):
        run_study(_synth_spec(numbers, lambda y: f"{y}-01-01" if y == 2014 else y), jobs=1)


@pytest.mark.parametrize("value,advice", [
    ("2010-10", "write a month as its first day (2010-10-01) or as a number"),
    ("Q42010", "write a quarter as its first day (2010-10-01)"),
    ("2010Q2", "write a quarter as its first day (2010-04-01)"),
    ("01/10/2010", "write dates as YYYY-MM-DD (the order of day and month in this form is ambiguous)"),
    ("soon", "fix the value, or drop the row with data.filter"),
])
def test_time_values_in_other_formats_get_their_exact_rewrite(runner, tmp_path, value, advice):
    """Months, quarters and day/month dates are common in exports: the message gives the rewrite, once."""
    (tmp_path / "t.csv").write_text(f"u,t,y,d\na,1,1,0\na,{value},2,0\nb,1,1,0\nb,2,3,1\n")
    spec = tmp_path / "s.yaml"
    spec.write_text("data: {path: t.csv}\noutcome: y\ntreatment: d\ndesign: {method: did, unit: u, time: t}\n")
    res = invoke(runner, ["validate", str(spec)])
    err = res.stderr.strip()
    assert res.exit_code == 3 and "\n" not in err
    assert f"row 2 has {value!r}; {advice}" in err and err.count("YYYY-MM-DD") <= 2


def test_did_text_covariate_advice_derives_level_columns_and_following_it_works(tmp_path):
    """did takes no `categorical`: the advice for a text covariate was to list it there, which did then refused;
    it now gives the data.derive entry for one level, and that entry, pasted, runs (missing stays missing)."""
    df = simulate_panel(units=60, periods=4, cohorts=(3,), seed=5)
    df["shift"] = np.where(df["x"] > 0.2, "1. Night", "2. Day").astype(object)
    df.loc[0, "shift"] = "1. Night"  # the first row: the one the message quotes
    df.loc[7, "shift"] = None
    path = _save(df, tmp_path / "p.csv")
    spec = {"version": 1, "data": {"path": str(path)}, "treatment": "d", "outcome": "y", "covariates": ["shift"],
            "design": {"method": "did", "unit": "unit", "time": "time", "estimator": "twfe"}, "refute": []}
    with pytest.raises(DataError) as err:
        run_study(spec)
    message = str(err.value)
    assert "under 'categorical'" not in message, message
    entry = message.split("data.derive: ", 1)[1]
    assert entry == "{shift_1_night: \"CAST(shift = '1. Night' AS INTEGER)\"}", message
    spec["data"]["derive"] = yaml.safe_load(entry)
    spec["covariates"] = ["shift_1_night"]
    res = run_study(spec)
    assert res.n["dropped_missing_covariates"] == 1
    df["night"] = np.where(df["shift"].isna(), np.nan, (df["shift"] == "1. Night").astype(float))
    expected = run_study({**spec, "data": {"path": str(_save(df, tmp_path / "q.csv"))}, "covariates": ["night"]})
    assert res.estimate.value == pytest.approx(expected.estimate.value, abs=EXACT)


def test_did_categorical_refusal_names_the_derive_way(tmp_path):
    df = simulate_panel(units=30, periods=4, cohorts=(3,), seed=5)
    spec = {"version": 1, "data": {"path": str(_save(df, tmp_path / "p.csv"))}, "treatment": "d", "outcome": "y",
            "covariates": ["state"], "categorical": ["state"],
            "design": {"method": "did", "unit": "unit", "time": "time"}}
    with pytest.raises(SpecError, match=r"data.derive \(e.g. state_b: \"CAST\(state = 'b' AS INTEGER\)\""):
        run_study(spec)


def test_rdd_text_covariate_advice_derives_a_level_column(tmp_path):
    """rdd refuses `categorical` too: its text covariate gets the same data.derive advice."""
    rng = np.random.default_rng(8)
    df = pd.DataFrame({"score": rng.uniform(-1, 1, 400)})
    df["y"] = 0.5 * (df.score >= 0) + df.score + rng.normal(scale=0.2, size=400)
    df["region"] = np.where(rng.uniform(size=400) < 0.5, "north", "south").astype(object)
    df.loc[0, "region"] = "north"
    spec = {"version": 1, "data": {"path": str(_save(df, tmp_path / "r.csv"))}, "outcome": "y",
            "covariates": ["region"], "design": {"method": "rdd", "running": "score", "cutoff": 0}}
    with pytest.raises(DataError, match=r"data.derive: \{region_north: \"CAST\(region = 'north' AS INTEGER\)\"\}"):
        run_study(spec)
