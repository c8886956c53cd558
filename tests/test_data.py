"""The data layer: DuckDB reading, the sandboxed filter, renames, encoding, and bad data (exit 3)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from causalcli.data.table import design_matrix, load_table, require_columns
from causalcli.errors import DataError, SpecError
from causalcli.spec.loading import SpecSource
from causalcli.study import load_spec
from tests.conftest import base_spec, simulate


def loaded(tmp_path: Path, data_path: str, **extra):
    import yaml

    text = yaml.safe_dump(base_spec(data_path, **extra))
    return load_spec(SpecSource(str(tmp_path / "s.yaml"), text, tmp_path))


def test_csv_and_parquet_give_the_same_table(tmp_path):
    df = simulate(50)
    df.to_csv(tmp_path / "d.csv", index=False)
    df.to_parquet(tmp_path / "d.parquet", index=False)
    a, _ = load_table(loaded(tmp_path, "d.csv")).frame(["t", "y", "x1"])
    b, _ = load_table(loaded(tmp_path, "d.parquet")).frame(["t", "y", "x1"])
    pd.testing.assert_frame_equal(a, b, check_dtype=False)
    assert len(a) == 50


def test_stdin_csv(tmp_path):
    raw = simulate(30).to_csv(index=False).encode()
    table = load_table(loaded(tmp_path, "-"), stdin_bytes=raw)
    assert table.rows == 30 and table.provenance["data_source"] == "stdin"
    assert len(table.provenance["data_sha256"]) == 64


def test_filter_renames_and_missing_rows(tmp_path):
    df = simulate(100)
    df.loc[:4, "x2"] = np.nan
    df.to_csv(tmp_path / "d.csv", index=False)
    spec = loaded(tmp_path, "d.csv", covariates=["z1", "x2"])
    spec = load_spec(spec.source, ["data.filter=x1 > -1 AND region <> 'east'", "data.columns={x1: z1}"])
    table = load_table(spec)
    expected = df[(df.x1 > -1) & (df.region != "east")]
    assert table.rows == len(expected)
    frame, dropped = table.frame(["z1", "x2"])
    assert dropped == int(expected.x2.isna().sum())
    assert len(frame) == expected.x2.notna().sum()


@pytest.mark.parametrize("bad_filter", [
    "x1 > (SELECT count(*) FROM read_csv('/etc/passwd'))",
    "x1 IN (SELECT * FROM read_text('/etc/hostname'))",
    "1=1; COPY study_data TO '/tmp/leak.csv'",
    "x1 > 0) UNION ALL (SELECT 1",
])
def test_filter_cannot_read_outside_the_data(tmp_path, bad_filter):
    simulate(20).to_csv(tmp_path / "d.csv", index=False)
    spec = loaded(tmp_path, "d.csv", data={"path": "d.csv", "filter": bad_filter})
    with pytest.raises((SpecError, DataError)) as info:
        load_table(spec)
    assert info.value.exit_code in (2, 3)
    assert not Path("/tmp/leak.csv").exists()


def test_filter_that_leaves_nothing(tmp_path):
    simulate(20).to_csv(tmp_path / "d.csv", index=False)
    with pytest.raises(DataError, match="no rows are left") as info:
        load_table(loaded(tmp_path, "d.csv", data={"path": "d.csv", "filter": "x1 > 100"}))
    assert info.value.exit_code == 3 and info.value.key == "data.filter"


def test_missing_and_unreadable_files(tmp_path):
    with pytest.raises(DataError, match="not found") as info:
        load_table(loaded(tmp_path, "nope.csv"))
    assert info.value.file == "nope.csv"
    (tmp_path / "junk.parquet").write_bytes(b"not parquet at all")
    with pytest.raises(DataError, match="cannot read as parquet") as info:
        load_table(loaded(tmp_path, "junk.parquet"))
    assert info.value.exit_code == 3


def test_ragged_csv_is_a_data_error(tmp_path):
    lines = ["t,y,x1,x2"] + [f"{i % 2},{i},{i},{i}" for i in range(30)] + ["1,2,3,4,5,6"] + ["0,1,2,3"] * 5
    (tmp_path / "r.csv").write_text("\n".join(lines) + "\n")
    with pytest.raises(DataError) as info:
        load_table(loaded(tmp_path, "r.csv"))
    assert "r.csv" in str(info.value)


def test_column_checks(tmp_path):
    df = simulate(40)
    df["t3"] = np.arange(40) % 3
    df["word"] = "a"
    df.to_csv(tmp_path / "d.csv", index=False)
    table = load_table(loaded(tmp_path, "d.csv"))
    with pytest.raises(DataError, match="'x3' not found.*did you mean 'x[12]'") as info:
        require_columns(table, {"x3": ("covariates[1]", "numeric")})
    assert info.value.column == "x3" and info.value.key == "covariates[1]"
    with pytest.raises(DataError, match="must be numeric"):
        require_columns(table, {"word": ("outcome", "numeric")})
    with pytest.raises(DataError, match="must be binary"):
        require_columns(table, {"t3": ("treatment", "binary")})
    require_columns(table, {"t": ("treatment", "binary"), "region": ("covariates[2]", "any")})


def test_one_hot_encoding_drops_first_level():
    df = simulate(60)
    cols = {c: df[c].to_numpy() for c in df}
    X, names = design_matrix(cols, ["x1", "region"], ["region"], "d.csv")
    assert names == ["x1", "region[north]", "region[south]"]
    assert X[:, 2].sum() == (df.region == "south").sum() and X.shape == (60, 3)
    with pytest.raises(DataError, match="single level"):
        design_matrix({"region": np.array(["x"] * 60)}, ["region"], ["region"], "d.csv")


def test_arrays_match_frame_and_drop_missing_in_duckdb(tmp_path):
    df = simulate(80)
    df.loc[[3, 7], "x1"] = np.nan
    df.loc[[7, 9], "region"] = None
    df.to_parquet(tmp_path / "d.parquet", index=False)
    table = load_table(loaded(tmp_path, "d.parquet"))
    arrays, dropped = table.arrays(["t", "x1", "region"], as_text=("region",))
    frame, dropped_frame = table.frame(["t", "x1", "region"])
    assert dropped == dropped_frame == 3
    np.testing.assert_array_equal(arrays["x1"], frame["x1"].to_numpy())
    assert list(arrays["region"]) == list(frame["region"])


def test_weights_column_checks(tmp_path):
    from causalcli.data.weights import check_weights

    df = simulate(30)
    df["w_ok"] = 1.5
    df["w_neg"] = np.where(np.arange(30) == 4, -1.0, 1.0)
    df["w_zero"] = 0.0
    df.to_csv(tmp_path / "d.csv", index=False)
    table = load_table(loaded(tmp_path, "d.csv"))
    check_weights(table, "w_ok")
    with pytest.raises(DataError, match="1 negative") as info:
        check_weights(table, "w_neg")
    assert info.value.key == "weights" and info.value.exit_code == 3
    with pytest.raises(DataError, match="sums to zero"):
        check_weights(table, "w_zero")
    with pytest.raises(DataError, match="must be numeric"):
        check_weights(table, "region")


@pytest.mark.parametrize("method", ["matching", "weighting"])
def test_categorical_with_more_levels_than_rows_allow_exits_3_naming_it(runner, tmp_path, write_spec, method):
    """399 levels in 400 rows: 398 dummies, x1 and the intercept make 400 coefficients for 400 rows. The
    categorical is the problem (not x1, which the separation it causes used to be blamed on, exit 4)."""
    from tests.conftest import invoke

    df = simulate(400, seed=2)
    df["shop"] = [f"s{i}" for i in range(399)] + ["s0"]
    df.to_csv(tmp_path / "shops.csv", index=False)
    spec = {"version": 1, "data": {"path": "shops.csv"}, "treatment": "t", "outcome": "y",
            "covariates": ["x1", "shop"], "categorical": ["shop"], "refute": [], "design": {"method": method}}
    res = invoke(runner, ["estimate", str(write_spec(spec)), "--format", "json"])
    assert res.exit_code == 3, res.stderr
    msg = res.stderr.strip()
    assert len(msg.splitlines()) == 1
    assert "'shop' has 399 levels in 400 rows" in msg and "400 coefficients" in msg and "merge rare levels" in msg
    assert "x1" not in msg and "column 0" not in msg


@pytest.mark.parametrize("method", ["matching", "weighting"])
def test_categorical_level_in_one_arm_only_exits_3_naming_the_level(runner, tmp_path, write_spec, method):
    """A level whose 7 rows are all treated separates the arms on its own: the fix is in the data (merge
    rare levels), so exit 3 naming the design-matrix column 'region[d]', not an exit 4 about x1."""
    from tests.conftest import invoke

    df = simulate(300, seed=3)
    treated = np.flatnonzero(df.t.to_numpy() == 1)
    df.loc[treated[:7], "region"] = "d"
    df.to_csv(tmp_path / "r.csv", index=False)
    spec = {"version": 1, "data": {"path": "r.csv"}, "treatment": "t", "outcome": "y",
            "covariates": ["x1", "x2", "region"], "categorical": ["region"], "refute": [],
            "design": {"method": method}}
    res = invoke(runner, ["estimate", str(write_spec(spec)), "--format", "json"])
    assert res.exit_code == 3, res.stderr
    msg = res.stderr.strip()
    assert len(msg.splitlines()) == 1 and "r.csv" in msg
    assert "level 'region[d]' has 7 rows, all treated" in msg and "merge rare levels of 'region'" in msg
    assert "'x1'" not in msg and "column 0" not in msg


def test_single_arm_levels_include_the_reference_level():
    from causalcli.checks.balance import balance_matrix
    from causalcli.models.logit import single_arm_levels

    region = np.array(["a", "a", "b", "b", "c", "c", "c"])
    t = np.array([0, 0, 1, 0, 1, 1, 0], dtype=bool)
    Xb, names = balance_matrix({"region": region, "x": np.arange(7.0)}, ["x", "region"], ["region"])
    assert single_arm_levels(Xb, names, ["region"], t) == [("region", "region[a]", 2, "control")]


@pytest.mark.parametrize("spec_name, flags", [("lalonde_psm", ()), ("lalonde_dml", ("--no-refute",)),
                                              ("lalonde_aipw", ())])
def test_a_shuffled_copy_of_the_file_gives_the_same_json(spec_name, flags, runner, tmp_path):
    """Rows are read sorted by their values (Table.arrays): folds, refuter draws, greedy matching and ties fall
    on the same rows whatever order the file stores them in, so only provenance (the file's hash) differs."""
    import json

    import yaml

    from tests.conftest import invoke

    root = Path(__file__).resolve().parents[1] / "specs"
    spec = yaml.safe_load((root / f"{spec_name}.yaml").read_text())
    source = root / spec["data"]["path"]
    shuffled = tmp_path / source.name
    pd.read_parquet(source).sample(frac=1.0, random_state=5).to_parquet(shuffled, index=False)
    copy = tmp_path / f"{spec_name}.yaml"
    copy.write_text(yaml.safe_dump({**spec, "data": {**spec["data"], "path": shuffled.name}}))

    def run(path: Path) -> dict:
        res = invoke(runner, ["estimate", str(path), "--format", "json", "--quiet", *flags])
        out = json.loads(res.stdout)
        for key in ("provenance", "timing_s", "spec_path"):
            out.pop(key)
        return out

    assert run(copy) == run(root / f"{spec_name}.yaml")


def test_value_order_equals_sql_order_by_on_ties_and_text():
    """Table.arrays' row order (value_order: a sort refined on tied rows only) is SQL's ORDER BY over the
    columns in turn, here DuckDB's, on data with heavy ties, text (non-ASCII) and negative zero-free floats."""
    import duckdb

    from causalcli.data.table import value_order

    rng = np.random.default_rng(1)
    n = 5000
    a = {"t": rng.integers(0, 2, n).astype(float), "y": rng.integers(0, 3, n).astype(float),
         "s": np.array(rng.choice(["b", "a", "é", "c"], n), dtype=object), "x": rng.integers(-2, 5, n),
         "z": rng.normal(size=n).round(1)}
    order = value_order(a, list(a))
    frame = pd.DataFrame(a)  # noqa: F841 - read by DuckDB below
    want = duckdb.connect().execute("SELECT t, y, s, x, z FROM frame ORDER BY t, y, s, x, z").fetchnumpy()
    for c in a:
        np.testing.assert_array_equal(a[c][order], want[c])


def test_value_order_is_the_stable_lexicographic_order_of_numbers():
    """value_order's rank-and-radix sorts give numpy's stable order (np.lexsort) exactly, row for row: ties in
    every column keep their order (ROW_POSITION reports it), with many ties, wide integers (two radix
    passes), a float with all values distinct, and -0.0 equal to 0.0."""
    from causalcli.data.table import value_order

    rng = np.random.default_rng(2)
    n = 100_000  # "wide" then has over 65,536 distinct values
    a = {"few": np.round(rng.uniform(-1, 1, n), 2), "wide": rng.integers(0, 150_000, n),
         "zero": np.where(rng.uniform(size=n) < 0.5, -0.0, 0.0), "distinct": rng.normal(size=n),
         "flag": rng.integers(0, 2, n).astype(bool)}
    for cols in (["few", "distinct"], ["zero", "flag", "few"], ["wide", "zero"], ["distinct"], ["flag", "wide"],
                 ["few", "wide", "zero"]):  # a tied first column last (radix on its ranks), the rest before it
        want = np.lexsort([a[c] for c in reversed(cols)])
        np.testing.assert_array_equal(value_order(a, cols), want)


def test_the_sort_of_doubles_is_numpys_stable_argsort_where_values_differ_in_the_last_bits():
    """value_order sorts doubles as integers with the row number in their last bits (table._argsort_doubles);
    values that differ only there (a few ulps apart, either sign, -0.0 and 0.0, subnormals) are then ordered
    by their whole value, ties by row: numpy's stable argsort exactly."""
    from causalcli.data.table import _argsort_doubles

    rng = np.random.default_rng(3)
    n = 3000
    ulps = rng.integers(-3, 4, n) * np.finfo(float).eps
    for key in (1 + ulps, -(1 + ulps), np.where(rng.uniform(size=n) < 0.5, -0.0, 0.0) + rng.integers(0, 2, n) * 5e-324,
                rng.choice([-1.5, 1.5], n) * (1 + ulps), rng.normal(size=n)):
        np.testing.assert_array_equal(_argsort_doubles(key), np.argsort(key, kind="stable"))


def test_few_columns_sorted_by_duckdb_equal_value_order(tmp_path):
    # Table.arrays lets DuckDB sort up to SORT_IN_DUCKDB_COLUMNS columns; value_order (taken with positions=True)
    # must give the same arrays: ties, negative numbers, -0.0 and text included
    from causalcli.data.table import ROW_POSITION, SORT_IN_DUCKDB_COLUMNS

    rng = np.random.default_rng(3)
    n = 5000
    df = pd.DataFrame({"t": rng.integers(0, 2, n), "y": np.round(rng.normal(size=n), 1),
                       "x1": rng.integers(-3, 3, n).astype(float), "region": rng.choice(["b", "a", "é", "Z"], n)})
    df.loc[:10, "y"] = -0.0
    df.to_parquet(tmp_path / "d.parquet", index=False)
    table = load_table(loaded(tmp_path, "d.parquet"))
    assert SORT_IN_DUCKDB_COLUMNS >= 3
    for cols, text in ((["x1", "y"], ()), (["region", "y", "t"], ("region",)), (["y", "x1", "t"], ())):
        by_duckdb, _ = table.arrays(cols, as_text=text)
        by_numpy, _ = table.arrays(cols, as_text=text, positions=True)
        by_numpy.pop(ROW_POSITION)
        for c in cols:
            assert list(by_duckdb[c]) == list(by_numpy[c]), c  # (-0.0 and 0.0 are one value to both sorts)
