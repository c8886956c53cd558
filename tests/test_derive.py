"""``data.derive``: columns computed in the engine from sandboxed SQL expressions (a user trial could not write
Hernan and Robins' age^2, wt71^2, ... of the NHEFS IP-weighting model).

A derived column must give what the same column computed by hand gives: the estimates are compared to 1e-12
relative, though they are equal in exact arithmetic too (the same doubles reach the same code; 1e-12 leaves
room for a last bit of CSV text read back). On PostgreSQL and Spark, 1e-9, as every engine comparison
(tests/test_engines.py: sums and fits in another order).
"""

from __future__ import annotations

import json
from pathlib import Path

import duckdb
import numpy as np
import pandas as pd
import pytest
import yaml

from tests.conftest import invoke
from tests.engines import load_postgres, register_spark

ROOT = Path(__file__).resolve().parents[1]
LALONDE = ROOT / "specs" / "data" / "nsw_cps.parquet"
ENV = "CAUSALCLI_TEST_WAREHOUSE"
COVARIATES = ["age", "educ", "black", "hisp", "marr", "nodegree", "re74", "re75"]
# the derived columns, and the same columns by hand in pandas
DERIVE = {"re74_sq": "re74 * re74", "age_sq": "power(age, 2)", "re74_cube": "re74_sq * re74",
          "u74": "CASE WHEN re74 = 0 THEN 'none' WHEN re74 < 5000 THEN 'low' ELSE 'high' END"}


def by_hand(frame: pd.DataFrame) -> pd.DataFrame:
    out = frame.copy()
    out["re74_sq"] = out["re74"] * out["re74"]
    out["age_sq"] = (out["age"] ** 2).astype(np.float64)
    out["re74_cube"] = out["re74_sq"] * out["re74"]
    out["u74"] = np.where(out["re74"] == 0, "none", np.where(out["re74"] < 5000, "low", "high"))
    return out


def spec(data: dict, method: str = "weighting", covariates: list[str] | None = None, **extra) -> dict:
    covariates = covariates or [*COVARIATES, "re74_sq", "age_sq", "re74_cube", "u74"]
    return {"version": 1, "name": "derive", "data": data, "treatment": "treat", "outcome": "re78",
            "covariates": covariates, "categorical": [c for c in covariates if c == "u74"],
            "design": {"method": method, "estimand": "att"}, "refute": [], "seed": 0, **extra}


def write(tmp_path: Path, mapping: dict, name: str = "study.yaml") -> Path:
    path = tmp_path / name
    path.write_text(yaml.safe_dump(mapping, sort_keys=False))
    return path


def estimate(runner, path: Path) -> tuple[int, dict, str]:
    res = invoke(runner, ["estimate", str(path), "--format", "json", "--quiet"])
    return res.exit_code, (json.loads(res.stdout) if res.stdout.strip() else {}), res.stderr


def close(a: float, b: float, tolerance: float) -> bool:
    return abs(a - b) <= tolerance * max(abs(a), abs(b))


@pytest.mark.parametrize("method", ["weighting", "matching"])
def test_derived_columns_equal_the_same_columns_computed_by_hand(method, runner, tmp_path):
    by_pandas = tmp_path / "lalonde_by_hand.csv"
    by_hand(pd.read_parquet(LALONDE)).to_csv(by_pandas, index=False)
    derived = write(tmp_path, spec({"path": str(LALONDE), "derive": DERIVE}, method), "derived.yaml")
    computed = write(tmp_path, spec({"path": str(by_pandas)}, method), "by_hand.yaml")
    code, got, err = estimate(runner, derived)
    want_code, want, _ = estimate(runner, computed)
    assert code == want_code and code in (0, 1), err
    for key in ("value", "std_error"):
        assert close(got["estimate"][key], want["estimate"][key], 1e-12), (key, got["estimate"], want["estimate"])
    assert got["n"] == want["n"]
    assert got["provenance"]["derive"] == DERIVE and "derive" not in want["provenance"]


def test_validate_lists_the_derived_columns_with_their_types(runner, tmp_path):
    res = invoke(runner, ["validate", str(write(tmp_path, spec({"path": str(LALONDE), "derive": DERIVE})))])
    assert res.exit_code == 0, res.stderr
    assert "derived: re74_sq DOUBLE, age_sq DOUBLE, re74_cube DOUBLE, u74 VARCHAR" in res.stdout


def test_derived_columns_read_the_renamed_columns_and_serve_as_outcome_and_treatment(runner, tmp_path):
    """After data.columns: the renamed names; a derived outcome and treatment are read like any column."""
    frame = pd.read_parquet(LALONDE)
    by_pandas = tmp_path / "by_hand.csv"
    frame.assign(log78=np.log1p(frame["re78"]), treated=frame["treat"]).to_csv(by_pandas, index=False)
    data = {"path": str(LALONDE), "columns": {"re78": "earnings78"},
            "derive": {"log78": "ln(earnings78 + 1)", "treated": "CAST(treat AS INTEGER)"}}
    derived = spec(data, covariates=COVARIATES, outcome="log78", treatment="treated")
    computed = {**derived, "data": {"path": str(by_pandas)}}
    code, got, err = estimate(runner, write(tmp_path, derived, "derived.yaml"))
    want_code, want, _ = estimate(runner, write(tmp_path, computed, "by_hand.yaml"))
    assert code == want_code and code in (0, 1), err
    assert close(got["estimate"]["value"], want["estimate"]["value"], 1e-12)


def experiment(data: dict, outcome: str) -> dict:
    """The bundled A/B test with its first metric's outcome replaced (streamed: study_data is a view)."""
    mapping = yaml.safe_load((ROOT / "specs" / "ab_test.yaml").read_text())
    mapping["data"] = data
    mapping["design"]["metrics"][0]["outcome"] = outcome
    return mapping


def test_an_experiment_reads_a_derived_metric_from_its_view(runner, tmp_path):
    """An experiment aggregates study_data as a view over the file: the derived column is computed there."""
    source = ROOT / "specs" / "data" / "ab_test.parquet"
    frame = pd.read_parquet(source)
    by_pandas = tmp_path / "by_hand.parquet"
    frame.assign(revenue_cents=frame["revenue"] * 100).to_parquet(by_pandas)
    code, got, err = estimate(runner, write(tmp_path, experiment(
        {"path": str(source), "derive": {"revenue_cents": "revenue * 100"}}, "revenue_cents"), "derived.yaml"))
    want_code, want, _ = estimate(runner, write(tmp_path, experiment({"path": str(by_pandas)}, "revenue_cents"),
                                                "by_hand.yaml"))
    assert code == want_code, err
    assert len(got["effects"]) == len(want["effects"]) > 0
    for a, b in zip(got["effects"], want["effects"]):
        assert a["label"] == b["label"] and close(a["value"], b["value"], 1e-12), (a, b)


def test_the_filter_runs_first_so_an_expression_never_meets_the_rows_it_removes(runner, tmp_path):
    """ln(0) is an error in DuckDB: with the filter first, ln(re74) is computed on rows with re74 > 0 only."""
    data = {"path": str(LALONDE), "filter": "re74 > 0", "derive": {"l74": "ln(re74)"}}
    code, got, err = estimate(runner, write(tmp_path, spec(data, covariates=[*COVARIATES, "l74"])))
    assert code in (0, 1), err
    assert got["n"]["rows"] == int((pd.read_parquet(LALONDE)["re74"] > 0).sum())


def test_the_filter_cannot_read_a_derived_column(runner, tmp_path):
    data = {"path": str(LALONDE), "filter": "re74_sq > 1", "derive": {"re74_sq": "re74 * re74"}}
    res = invoke(runner, ["validate", str(write(tmp_path, spec(data, covariates=COVARIATES)))])
    assert res.exit_code == 2
    assert "key 'data.filter': the filter reads 're74_sq', a column of data.derive" in res.stderr
    assert "write its expression in the filter (re74 * re74)" in res.stderr


REFUSED = [
    ("x", "(SELECT max(age) FROM study_data)", "key 'data.derive.x': the expression is a SUBQUERY statement"),
    ("x", "age + (SELECT 1)", "key 'data.derive.x': a subquery at character 8 is not allowed"),
    ("x", "other.age * 2", "key 'data.derive.x': 'other.age' is not a column"),
    ("x", "age IN (SELECT age FROM lalonde)", "key 'data.derive.x': a subquery"),
    ("x", "length(read_csv('/etc/passwd'))", "key 'data.derive.x': 'read_csv' at character 8 reads tables, files "
                                             "or settings, which an expression cannot"),
    ("x", "current_setting('threads')", "'current_setting' at character 1 reads tables, files or settings"),
    ("x", "foo(age)", "key 'data.derive.x': unknown function 'foo' at character 1: an expression may call abs"),
    ("x", "nope * 2", "key 'data.derive.x': column 'nope' not found (did you mean 'nodegree'?)"),
    ("x", "age; DROP TABLE raw_data", "key 'data.derive.x': syntax error near ';'"),
    ("x", "age -- a comment", "key 'data.derive.x': the expression holds a comment"),
    ("bad name", "age * 2", "key 'data.derive.bad name': 'bad name' is not a column name: name a derived column "
                            "with letters, digits and _"),
    ("2age", "age * 2", "key 'data.derive.2age': '2age' is not a column name"),
    ("AGE", "age * 2", "key 'data.derive.AGE': 'AGE' is already a column in the data ('age'); give the derived "
                       "column another name"),
    ("re78", "age * 2", "key 'data.derive.re78': 're78' is already a column in the data ('re78')"),
    ("x", "ln(age - 100)", "key 'data.derive.x': 'ln(age - 100)' fails on the rows: cannot take logarithm of a "
                           "negative number; it reads age BIGINT"),
]


@pytest.mark.parametrize(("name", "expression", "message"), REFUSED, ids=[r[1] for r in REFUSED])
def test_refused_expressions_and_names_exit_2_in_one_line_naming_the_key(name, expression, message, runner,
                                                                       tmp_path):
    res = invoke(runner, ["validate", str(write(tmp_path, spec({"path": str(LALONDE),
                                                                "derive": {name: expression}},
                                                               covariates=COVARIATES)))])
    assert res.exit_code == 2, res.stdout
    assert message in res.stderr, res.stderr
    assert res.stderr.count("\n") == 1 and "Traceback" not in res.stderr


def test_a_name_derived_twice_apart_from_case_is_a_clash(runner, tmp_path):
    data = {"path": str(LALONDE), "derive": {"Age2": "age * age", "age2": "age + age"}}
    res = invoke(runner, ["validate", str(write(tmp_path, spec(data, covariates=COVARIATES)))])
    assert res.exit_code == 2
    assert "key 'data.derive.age2': 'age2' is already a column derived above ('Age2')" in res.stderr


def test_a_name_kept_by_a_rename_is_a_clash_on_every_engine(runner, tmp_path):
    """The old name of a renamed column is still in an engine's query: refused on the file too, alike."""
    data = {"path": str(LALONDE), "columns": {"age": "years"}, "derive": {"age": "years * 2"}}
    res = invoke(runner, ["validate", str(write(tmp_path, spec(data, covariates=COVARIATES[1:])))])
    assert res.exit_code == 2 and "key 'data.derive.age': 'age' is already a column" in res.stderr


def test_a_spec_without_derive_hashes_as_before():
    from causalcli.spec.models import DataSpec

    assert "derive" not in DataSpec(path="x.csv").model_dump()
    assert DataSpec(path="x.csv", derive={"a": "b"}).model_dump()["derive"] == {"a": "b"}


def test_spark_reads_duckdbs_log_as_base_ten():
    """DuckDB's log(x) is base 10 and Spark's LOG(x) natural: the engine's query says the base."""
    from causalcli.data.engine import _portable
    import sqlglot

    tree = sqlglot.parse_one("SELECT log(x), log(2, x), ln(x) FROM t", read="duckdb")
    assert _portable(tree, "spark").sql("spark") == "SELECT LOG(10, x), LOG(2, x), LN(x) FROM t"
    assert _portable(tree, "postgres").sql("postgres").startswith("SELECT LOG(x), CAST(LOG(CAST(2 AS DECIMAL)")
    rounded = sqlglot.parse_one("SELECT round(x, 2), round(x) FROM t", read="duckdb")
    assert _portable(rounded, "postgres").sql("postgres") == \
        "SELECT CAST(ROUND(CAST(x AS DECIMAL), 2) AS DOUBLE PRECISION), ROUND(x) FROM t"


# ---------------------------------------------------------------- engines

# log(re74 + 1) > 3 keeps re74 > 999 in base 10 and re74 > 19 in base e: another covariate on Spark without
# the rewrite above
ENGINE_DERIVE = {**DERIVE, "high74": "CASE WHEN log(re74 + 1) > 3 THEN 1 ELSE 0 END", "l75": "log10(re75 + 1)",
                 "k75": "round(re75 * 0.001, 1)"}  # PostgreSQL has no round(double precision, integer)


def engine_case(tmp_path: Path, data: dict) -> Path:
    return write(tmp_path, spec({**data, "derive": ENGINE_DERIVE},
                                covariates=[*COVARIATES, "re74_sq", "age_sq", "re74_cube", "u74", "high74", "l75", "k75"]),
                 f"{data.get('backend', 'duckdb')}.yaml")


def lalonde_arrow():
    return duckdb.connect().execute("SELECT * FROM read_parquet(?)", [str(LALONDE)]).to_arrow_table()


def assert_same_as_duckdb(runner, tmp_path: Path, on_engine: Path) -> dict:
    code, got, err = estimate(runner, on_engine)
    want_code, want, _ = estimate(runner, engine_case(tmp_path, {"path": str(LALONDE)}))
    assert code == want_code and code in (0, 1), err
    for key in ("value", "std_error"):
        assert close(got["estimate"][key], want["estimate"][key], 1e-9), (key, got["estimate"], want["estimate"])
    assert got["n"] == want["n"]
    return got


@pytest.mark.engines
def test_derived_columns_on_postgres_equal_duckdb(postgres_url, runner, tmp_path, monkeypatch):
    monkeypatch.setenv(ENV, postgres_url)
    load_postgres(postgres_url, "lalonde_derive", lalonde_arrow())
    got = assert_same_as_duckdb(runner, tmp_path, engine_case(
        tmp_path, {"backend": "postgres", "table": "lalonde_derive", "connection_env": ENV}))
    assert got["provenance"]["backend"] == "postgres" and got["provenance"]["derive"] == ENGINE_DERIVE


@pytest.mark.engines
def test_an_expression_postgres_refuses_is_named_by_its_key_never_the_connection(postgres_url, runner, tmp_path,
                                                                                 monkeypatch):
    monkeypatch.setenv(ENV, postgres_url)
    load_postgres(postgres_url, "lalonde_derive_bad", lalonde_arrow())
    data = {"backend": "postgres", "table": "lalonde_derive_bad", "connection_env": ENV,
            "derive": {"ok": "age * 2", "x": "upper(age)"}}
    res = invoke(runner, ["validate", str(write(tmp_path, spec(data, covariates=COVARIATES)))])
    assert res.exit_code == 2, res.stdout
    assert "key 'data.derive.x': 'upper(age)' cannot be computed" in res.stderr
    assert postgres_url not in res.stderr and res.stderr.count("\n") == 1


@pytest.mark.engines
@pytest.mark.xdist_group("spark")
def test_derived_columns_on_spark_equal_duckdb(spark, runner, tmp_path):
    register_spark("lalonde_derive", lalonde_arrow())
    got = assert_same_as_duckdb(runner, tmp_path, engine_case(tmp_path, {"backend": "spark",
                                                                         "table": "lalonde_derive"}))
    assert got["provenance"]["backend"] == "spark"


def test_a_large_parquet_file_with_derived_columns_is_not_read_as_it_is(runner, tmp_path, monkeypatch):
    """The experiment's blocked pass reads a large Parquet file as it is, which holds no derived column: a study
    with data.derive takes the exact pass over study_data (the threshold lowered so a small file counts)."""
    from causalcli.designs.experiment import stats

    monkeypatch.setattr(stats, "BLOCKED_ROWS", 1)
    source = str(ROOT / "specs" / "data" / "ab_test.parquet")
    code, got, err = estimate(runner, write(tmp_path, experiment(
        {"path": source, "derive": {"revenue_cents": "revenue * 100"}}, "revenue_cents")))
    assert code == 0, err
    assert got["diagnostics"]["sufficient_statistics"]["summation"] == stats.EXACT_SUMMATION


@pytest.mark.engines
def test_an_experiment_aggregates_a_derived_metric_in_postgres(postgres_url, runner, tmp_path, monkeypatch):
    """Experiments stream: study_data is a view in the engine, the derived column part of it."""
    monkeypatch.setenv(ENV, postgres_url)
    source = ROOT / "specs" / "data" / "ab_test.parquet"
    load_postgres(postgres_url, "ab_derive", duckdb.connect().execute("SELECT * FROM read_parquet(?)",
                                                                      [str(source)]).to_arrow_table())
    derive = {"derive": {"revenue_cents": "revenue * 100"}}
    code, got, err = estimate(runner, write(tmp_path, experiment(
        {"backend": "postgres", "table": "ab_derive", "connection_env": ENV, **derive}, "revenue_cents"), "pg.yaml"))
    want_code, want, _ = estimate(runner, write(tmp_path, experiment({"path": str(source), **derive},
                                                                     "revenue_cents"), "file.yaml"))
    assert code == want_code == 0, err
    assert got["provenance"]["fetched_rows"] < 20  # aggregated there, not fetched
    for a, b in zip(got["effects"], want["effects"]):
        assert a["label"] == b["label"] and close(a["value"], b["value"], 1e-9), (a, b)
