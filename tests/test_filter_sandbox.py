"""data.filter is one parsed expression over the table's own columns, rendered for every engine.

- accepted filters select the same rows as the text as written (NULLs, NaNs, dates, quoting, unicode);
- every way out (subqueries, tables, table functions, file and setting readers, second statements,
  comments, break-outs of the WHERE) is refused with exit 2 and one line, through the CLI;
- the Spark and PostgreSQL renderings parse back in their dialect with the same columns and values.
"""

from __future__ import annotations

import math

import pandas as pd
import pytest
import yaml

from causalcli.data.filter_sql import ALLOWED_FUNCTIONS, parse_filter, render_filter
from causalcli.errors import SpecError
from tests.conftest import base_spec, invoke, simulate

# filters people write (README, SPEC, the tests of data.filter) and the forms the docs promise
ACCEPTED = [
    "x1 > -1 AND region <> 'east'", "age >= 18", "country = 'ID'", "re78 <> 'n/a'", "user % 2 = 0",
    "date <= DATE '2020-01-05'", "x > 0", "x <> x", "isnan(x)", "x IS NULL", "x IS NOT NULL AND NOT isnan(x)",
    "x = 'NaN'::DOUBLE", "n IN (1, 2, 3)", "n NOT IN (1, 2)", "n BETWEEN 2 AND 5", "region LIKE 'n%'",
    "region ILIKE 'N%'", "region = 'é✓'", "region = 'it''s'", "region = 'a\\b'",
    "CASE WHEN n > 3 THEN x > 0 ELSE flag END", "coalesce(n, 0) = 0", "d >= DATE '2020-01-03'",
    "d < TIMESTAMP '2020-01-04 12:00:00'", "strftime(d, '%d') = '02'", "date_trunc('month', d) = DATE '2020-01-01'",
    "extract(day FROM d) > 2", "date_part('day', d) > 2", "d + INTERVAL 1 DAY > DATE '2020-01-04'",
    "\"a b\" > 3", "\"q\"\"t\" < 5", "lower(region) <> upper(region)", "length(region) > 3", "abs(x) > 1",
    "round(x, 1) = 0.5", "greatest(n, 3) = 3", "flag", "NOT flag", "flag IS NULL", "x > 0 OR n IS NULL",
    "X > 0", "x IS DISTINCT FROM 1.5", "substring(region, 1, 1) = 'n'", "try_cast(region AS INTEGER) IS NULL",
    "(x > 0) = flag",
    # where sqlglot groups otherwise than DuckDB: regrouped as DuckDB reads them
    "x > 0 IS NOT TRUE", "n = 2 IS DISTINCT FROM TRUE", "flag IS DISTINCT FROM n = 2", "1 < x IS NULL",
    "NOT n > 2 IS NOT NULL", "(n + 1) % 2 = 0", "x * 2 + 1 > 0 AND -n ^ 2 < 10 OR n // 2 = 1",
    "region || 'x' LIKE 'n%' OR n IN (1, 2) = flag",
]


def table_with_nulls_and_nans():
    """A small table where NULL and NaN fall on different rows, text holds quotes, unicode and a backslash."""
    nan = float("nan")
    return pd.DataFrame({
        "i": range(8),
        "x": [1.5, -2.0, nan, None, 0.5, 3.0, nan, -0.25],
        "n": pd.array([1, 2, None, 4, 5, None, 3, 6], dtype="Int64"),
        "region": ["north", "it's", None, "é✓", "a\\b", "North", "east", "south"],
        "d": pd.to_datetime(["2020-01-01", "2020-01-02", "2020-01-03", None, "2020-01-05", "2020-02-01",
                             "2020-01-02", "2020-01-09"]).date,
        "flag": pd.array([True, False, None, True, False, True, None, False], dtype="boolean"),
        "a b": range(8), 'q"t': range(8, 0, -1), "user": range(8),
        "date": pd.to_datetime([f"2020-01-0{k + 1}" for k in range(8)]).date,
        "x1": [0.0, -3, 1, 2, -0.5, 4, 0, -1], "age": [17, 18, 30, 40, 15, 60, 18, 19],
        "country": ["ID", "US", "ID", None, "FR", "ID", "id", "US"],
        "re78": ["1", "n/a", "2", None, "3", "n/a", "4", "5"],
    })


@pytest.fixture(scope="module")
def con():
    import duckdb

    connection = duckdb.connect()
    frame = table_with_nulls_and_nans()
    connection.register("frame", frame)
    connection.execute("CREATE TABLE t AS SELECT * FROM frame")
    connection.execute("UPDATE t SET x = 'NaN'::DOUBLE WHERE i IN (2, 6)")  # pandas' NaN arrives as NULL
    connection.execute("SET enable_external_access = false")
    yield connection
    connection.close()


def _columns(con) -> list[str]:
    return [row[0] for row in con.execute("SELECT column_name FROM (DESCRIBE t)").fetchall()]


@pytest.mark.parametrize("text", ACCEPTED)
def test_the_duckdb_rendering_selects_the_same_rows_as_the_text(con, text):
    rendered = render_filter(parse_filter(text, _columns(con), "t.csv"), "duckdb")
    written = con.execute(f"SELECT i FROM t WHERE ({text}) ORDER BY i").fetchall()
    checked = con.execute(f"SELECT i FROM t WHERE ({rendered}) ORDER BY i").fetchall()
    assert checked == written, (text, rendered)


def test_the_table_selects_the_same_rows_as_pandas(tmp_path):
    """Through load_table: quoted names with a space and a quote, unicode text, a NULL-safe test."""
    from causalcli.data.table import load_table
    from causalcli.spec.loading import SpecSource
    from causalcli.study import load_spec

    df = simulate(60)
    df["a b"] = range(60)
    df['q"t'] = [("é✓" if k % 3 == 0 else "plain") for k in range(60)]
    df.to_parquet(tmp_path / "d.parquet", index=False)
    text = "\"a b\" >= 10 AND \"q\"\"t\" = 'é✓' AND region IS NOT NULL"
    spec = base_spec("d.parquet", data={"path": "d.parquet", "filter": text})
    table = load_table(load_spec(SpecSource(str(tmp_path / "s.yaml"), yaml.safe_dump(spec), tmp_path)))
    assert table.rows == int(((df["a b"] >= 10) & (df['q"t'] == "é✓") & df.region.notna()).sum())


@pytest.mark.parametrize("dialect", ["spark", "postgres"])
@pytest.mark.parametrize("text", ACCEPTED)
def test_spark_and_postgres_renderings_parse_back_with_the_same_columns_and_values(con, text, dialect):
    import sqlglot
    from sqlglot import exp

    expression = parse_filter(text, _columns(con), "t.csv")
    back = sqlglot.parse_one(render_filter(expression, dialect), read=dialect)
    assert {c.name for c in back.find_all(exp.Column)} == {c.name for c in expression.find_all(exp.Column)}
    assert all(c.this.quoted and not c.table for c in back.find_all(exp.Column))
    def compared_text(tree):  # text values compared with (a date format or part is rewritten per dialect)
        return sorted(lit.this for lit in tree.find_all(exp.Literal)
                      if lit.is_string and isinstance(lit.parent, (exp.Binary, exp.In, exp.Between)))

    assert compared_text(back) == compared_text(expression)
    assert not list(back.find_all(exp.Subquery, exp.Select, exp.Table))


def test_columns_come_back_spelled_as_the_table_spells_them():
    """DuckDB matches names case-insensitively; a case-sensitive engine gets the table's own spelling."""
    rendered = render_filter(parse_filter("AGE > 1 AND Region = 'x'", ["age", "Region"], "t.csv"), "postgres")
    assert rendered == "(\"age\" > 1) AND (\"Region\" = 'x')"
    assert render_filter(parse_filter('"a`b" > 1', ["a`b"], "t.csv"), "spark") == "`a``b` > 1"


def test_the_rendering_is_read_back_before_an_engine_runs_it():
    """A tree that holds a subquery (which parse_filter never returns) is not written for any engine."""
    from sqlglot import exp

    smuggled = exp.GT(this=exp.column("x", quoted=True), expression=exp.select("1").from_("other").subquery())
    for dialect in ("duckdb", "spark", "postgres"):
        with pytest.raises(SpecError, match=f"cannot be written for {dialect}"):
            render_filter(smuggled, dialect)


def test_render_filter_knows_the_engines_dialects_and_sqlglots():
    expression = parse_filter("x > 1", ["x"], "t.csv")
    assert [render_filter(expression, d) for d in ("duckdb", "spark", "postgres")] == ['"x" > 1', "`x` > 1",
                                                                                         '"x" > 1']
    assert render_filter(expression, "trino") == '"x" > 1'  # another Ibis engine: sqlglot's dialect, checked alike
    with pytest.raises(ValueError, match="no filter dialect 'klingon'"):
        render_filter(expression, "klingon")


def test_every_allowed_function_is_accepted_and_rendered_for_every_engine():
    calls = {"coalesce": "coalesce(x, 1)", "nullif": "nullif(x, 1)", "if": "if(x > 1, 1, 0)",
             "substring": "substring(r, 1, 2)", "concat": "concat(r, 'a')", "replace": "replace(r, 'a', 'b')",
             "left": "left(r, 1)", "right": "right(r, 1)", "strpos": "strpos(r, 'a')",
             "starts_with": "starts_with(r, 'a')", "ends_with": "ends_with(r, 'a')",
             "contains": "contains(r, 'a')", "regexp_matches": "regexp_matches(r, 'a')", "round": "round(x, 1)",
             "greatest": "greatest(x, 1)", "least": "least(x, 1)", "log": "log(x)", "power": "power(x, 2)",
             "pow": "pow(x, 2)",
             "make_date": "make_date(2020, 1, 1)", "strftime": "strftime(d, '%Y')",
             "strptime": "strptime(r, '%Y')", "date_trunc": "date_trunc('month', d)",
             "date_part": "date_part('year', d)", "extract": "extract(year FROM d)",
             "date_diff": "date_diff('day', d, d)", "date_add": "date_add(d, INTERVAL 1 DAY)"}
    for name in ALLOWED_FUNCTIONS:
        call = calls.get(name, f"{name}({'r' if name in ('lower', 'upper', 'length', 'trim') else 'x'})")
        expression = parse_filter(f"{call} IS NOT NULL", ["x", "r", "d"], "t.csv")
        for dialect in ("duckdb", "spark", "postgres"):
            render_filter(expression, dialect)


# ---------------------------------------------------------------- refused: exit 2, one line


REFUSED = [
    # subqueries, other tables, table functions
    ("x1 > (SELECT count(*) FROM read_csv('/etc/passwd'))", "subquery"),
    ("x1 IN (SELECT * FROM read_text('/etc/hostname'))", "subquery"),
    ("EXISTS (SELECT 1)", "subquery"),
    ("x1 > (SELECT max(x1) FROM study_data)", "subquery"),
    ("x1 IN study_data", "IN takes a list"),
    ("t.x1 > 0", "'t.x1' is not a column"),
    ("other.x1 > 0", "'other.x1' is not a column"),
    ("main.t.x1 > 0", "is not a column"),
    ("read_csv('/etc/passwd') IS NOT NULL", "'read_csv' at character 1 reads tables, files or settings"),
    ("read_parquet('x.parquet') IS NULL", "'read_parquet' at character 1 reads"),
    ("glob('/etc/*') IS NOT NULL", "'glob' at character 1 reads"),
    ("x1 > (SELECT * FROM range(3))", "subquery"),
    # files, the environment, settings, side effects
    ("getenv('HOME') = 'x'", "'getenv' at character 1 reads"),
    ("current_setting('threads') = '1'", "'current_setting' at character 1 reads"),
    ("read_blob('/etc/hostname') IS NULL", "'read_blob' at character 1 reads"),
    ("pg_read_file('/etc/hostname') IS NULL", "'pg_read_file' at character 1 reads"),
    ("nextval('s') > 1", "'nextval' at character 1"),
    ("setseed(0.5) IS NULL", "'setseed' at character 1"),
    ("random() > 0.5", "function 'random' at character 1 is not allowed"),
    ("x1 > 0 AND current_date > DATE '2020-01-01'", "function 'current_date' at character 12 is not allowed"),
    ("sqrtt(x1) > 1", "unknown function 'sqrtt' at character 1"),
    ("count(*) > 1", "function 'count' at character 1 is not allowed"),
    ("$1 > 0", "a parameter"),
    # other statements, second statements and ways out of WHERE ( ... )
    ("SELECT 1", "the filter is a SELECT statement, not a condition"),
    ("PRAGMA version", "syntax error"),
    ("x1 = 1; DROP TABLE t", "syntax error near ';'"),
    ("1=1; COPY study_data TO '/tmp/leak.csv'", "syntax error near ';'"),
    ("1=1) UNION SELECT * FROM read_csv('/etc/passwd') WHERE (1=1", "closes no '('"),
    ("x1 > 0) UNION ALL (SELECT 1", "closes no '('"),
    ("x1 > 0 -- and nothing else", "the filter ends too early"),  # DuckDB's parser reads the text first
    ("x1 > 0 /* ) UNION SELECT 1 ( */", "closes no '('"),
    ("x1 > 0 /* a remark */", "the filter holds a comment (-- or /* */); remove it"),
    ("x1 > 0 /* */; DROP TABLE t", "';'"),
    ("x1 > 0 --\n; DROP TABLE t", "';'"),
    ("region = 'a\\' OR 1=1 --'", "never closed"),  # a backslash ends no string in DuckDB
    ("x1 + 1", "a value, not true or false"),
    # groupings sqlglot and DuckDB could read apart: parentheses say which
    ("x1 + 1 % 2 = 0", "'%' beside another arithmetic operator needs parentheses"),
    ("x1 = 1 < 2", "syntax error near '<' at character 8"),  # DuckDB's parser says it first
    ("x1 > 0 = NOT x1 IS NULL", "syntax error near '=' at character 8"),
    # words the rendering writes bare: a date part, a type, an interval
    ("extract(\"year) OR (1=1\" FROM x1) > 1", "not one plain word"),
    ("date_diff('day) OR (1=1', x1, x1) > 1", "not one plain word"),
    ("CAST(x1 AS \"INT) OR (1=1\") > 1", "the type at character 12 is in double quotes"),
    ("x1::\"INT) OR (1=1\" > 1", "the type at character 5 is in double quotes"),
    ("x1::my_type IS NULL", "cast to a built-in type"),
    ("x1 + INTERVAL '1 day) OR (1=1' > x1", "is not a number and a unit"),
    # pandas' operators (a new-user trial wrote `inlf == 1 & age > 30` and read "'BITWISEAND' is not allowed")
    ("(x1 > 0) & (x1 < 5)", "'&' is not allowed in a filter (write AND"),
    ("(x1 > 0) | (x1 < -5)", "'|' is not allowed in a filter (write OR"),
    ("~(x1 > 0)", "'~' is not allowed in a filter (write NOT"),
]


@pytest.mark.parametrize("text, needle", REFUSED)
def test_refused_filters_exit_2_with_one_line(tmp_path, runner, text, needle):
    simulate(40).to_csv(tmp_path / "d.csv", index=False)
    spec = tmp_path / "s.yaml"
    spec.write_text(yaml.safe_dump(base_spec("d.csv", data={"path": "d.csv", "filter": text})))
    res = invoke(runner, ["estimate", str(spec), "--format", "json"])
    errors = [line for line in res.stderr.splitlines() if line.startswith("error:")]
    assert res.exit_code == 2, (text, res.exit_code, res.stderr)
    assert len(errors) == 1 and "Traceback" not in res.stderr, res.stderr
    assert "key 'data.filter'" in errors[0] and needle in errors[0], errors[0]
    assert "passwd" not in errors[0].replace(text, "") and "root:" not in res.stdout + res.stderr


@pytest.mark.parametrize("text, needle", [(t, n) for t, n in REFUSED if not t.startswith(("SELECT", "PRAGMA"))])
def test_parse_filter_refuses_on_any_engine(text, needle):
    """The refusal does not lean on DuckDB: parse_filter alone says no, as on Spark or PostgreSQL."""
    with pytest.raises(SpecError) as info:
        parse_filter(text, ["x1", "region"], "d.csv")
    assert info.value.exit_code == 2 and info.value.key == "data.filter" and "\n" not in info.value.message


@pytest.mark.parametrize("text, kind", [("SELECT 1", "SELECT"), ("PRAGMA version", "PRAGMA"), ("SET x = 1", "SET"),
                                        ("ATTACH 'x.db'", "ATTACH"), ("COPY t TO 'x.csv'", "COPY"),
                                        ("CREATE TABLE u (a INT)", "CREATE")])
def test_statements_are_not_conditions(text, kind):
    with pytest.raises(SpecError, match=f"the filter is a {kind} statement, not a condition"):
        parse_filter(text, ["x1"], "d.csv")


def test_a_doubled_quote_stays_inside_its_text_value():
    expression = parse_filter("region = 'a'' OR 1=1 --'", ["region"], "d.csv")
    assert expression.expression.this == "a' OR 1=1 --"
    assert render_filter(expression, "spark") == "`region` = 'a\\' OR 1=1 --'"


def test_groupings_that_could_be_read_apart_ask_for_parentheses():
    for text, message in [("x1 = 1 < 2", "a comparison or IS test of another one needs parentheses"),
                          ("x1 > 0 = NOT x1 IS NULL", "NOT at character 10 follows a comparison"),
                          ("x1 - 4 % 3 > 0", "'%' beside another arithmetic operator needs parentheses")]:
        with pytest.raises(SpecError, match=message):
            parse_filter(text, ["x1"], "d.csv")
    rendered = [render_filter(parse_filter(text, ["x", "n"], "d.csv"), "postgres")
                for text in ("n < x IS NOT NULL", "n IS DISTINCT FROM x = 2", "x - (4 % n) > 0")]
    assert rendered == ['NOT (("n" < "x") IS NULL)', '"n" IS DISTINCT FROM ("x" = 2)', '("x" - (4 % "n")) > 0']


def test_unknown_columns_name_the_nearest_one():
    with pytest.raises(SpecError, match=r"column 'agee' not found \(did you mean 'age'\?\)$") as info:
        parse_filter("agee > 3", ["age", "region"], "d.csv")
    assert info.value.exit_code == 2
    with pytest.raises(SpecError, match="double quotes name a column"):
        parse_filter('region = "north"', ["age", "region"], "d.csv")


def test_a_filter_that_cannot_be_parsed_says_where():
    for text, message in [("age > 3 AND AND y > 0", "syntax error near 'AND' at character 13"),
                          ("age > 3 AND", "the filter ends too early: something is missing after 'AND'"),
                          ("age >> ", "syntax error near '>>' at character 5: the operator has nothing on its right")]:
        with pytest.raises(SpecError) as info:
            parse_filter(text, ["age", "y"], "d.csv")
        assert info.value.message == message


def test_nan_rows_are_kept_as_duckdb_keeps_them(con):
    """NaN is larger than every number in DuckDB: the rendering keeps that (no NULL-like rewrite)."""
    rows = con.execute(f"SELECT x FROM t WHERE ({render_filter(parse_filter('x > 2', _columns(con), 't'), 'duckdb')})"
                       ).fetchall()
    assert sum(math.isnan(r[0]) for r in rows) == 2 and len(rows) == 3


def _random_filter(rng, depth: int = 0) -> str:
    """A condition from a small grammar that mixes every operator the groupings above are about."""
    def number(d):
        pick = rng.random()
        if d > 2 or pick < 0.3:
            return rng.choice(["x", "n", "i", "x1", "age", "1", "2.5", "-1", "0", "NULL", "'NaN'::DOUBLE"])
        if pick < 0.65:
            return f"{number(d + 1)} {rng.choice(['+', '-', '*', '/', '%', '//', '^', '**'])} {number(d + 1)}"
        if pick < 0.8:
            return rng.choice(["-{}", "({})", "abs({})", "round({})"]).format(number(d + 1))
        return f"CASE WHEN {_random_filter(rng, d + 1)} THEN {number(d + 1)} ELSE {number(d + 1)} END"

    def text(d):
        if d > 2 or rng.random() < 0.6:
            return rng.choice(["region", "country", "'north'", "'it''s'", "'é✓'", "NULL"])
        return rng.choice(["{} || {}".format(text(d + 1), text(d + 1)), "lower({})".format(text(d + 1))])

    pick, d = rng.random(), depth + 1
    if depth > 3 or pick < 0.35:
        return rng.choice([
            lambda: f"{number(d)} {rng.choice(['=', '<>', '!=', '<', '>=', 'IS DISTINCT FROM'])} {number(d)}",
            lambda: f"{text(d)} {rng.choice(['=', '<>', 'LIKE', 'ILIKE', 'NOT LIKE'])} {text(d)}",
            lambda: f"{number(d)} {rng.choice(['IN', 'NOT IN'])} ({number(d)}, {number(d)})",
            lambda: f"{number(d)} {rng.choice(['BETWEEN', 'NOT BETWEEN'])} {number(d)} AND {number(d)}",
            lambda: f"{number(d)} IS {rng.choice(['', 'NOT '])}NULL",
            lambda: rng.choice(["flag", "TRUE", "isnan(x)"]),
        ])()
    if pick < 0.55:
        return f"{_random_filter(rng, d)} {rng.choice(['AND', 'OR'])} {_random_filter(rng, d)}"
    if pick < 0.75:
        return rng.choice(["NOT {}", "({})"]).format(_random_filter(rng, d))
    if pick < 0.88:
        return f"{_random_filter(rng, d)} = {_random_filter(rng, d)}"
    return f"{_random_filter(rng, d)} IS {rng.choice(['', 'NOT '])}{rng.choice(['TRUE', 'FALSE', 'NULL'])}"


def test_random_filters_select_the_rows_duckdb_selects_or_are_refused(con):
    """Filters DuckDB runs are either refused (exit 2, asking for parentheses) or select the same rows."""
    import random

    import duckdb

    rng, compared = random.Random(16), 0
    for _ in range(600):
        text = _random_filter(rng)
        try:
            written = con.execute(f"SELECT i FROM t WHERE ({text}) ORDER BY i").fetchall()
        except duckdb.Error:
            continue  # not a filter DuckDB runs: nothing to compare
        try:
            rendered = render_filter(parse_filter(text, _columns(con), "t.csv"), "duckdb")
        except SpecError:
            continue
        assert con.execute(f"SELECT i FROM t WHERE ({rendered}) ORDER BY i").fetchall() == written, (text, rendered)
        compared += 1
    assert compared > 300
