"""data.sample on the embedded duckdb backend: the rows (or a panel's whole units) an engine would draw.

Before, a spec's data.sample on a file was ignored: the study ran on every row without a word. The reference is
the sampling rule written out in Python with hashlib: the rows whose md5 of "seed|value|value..." (the columns the
design reads, as DuckDB prints them: integers here, so Python prints them alike) is smallest; for a panel, whole
units in the order of md5("seed|unit"), while their rows add up to at most data.sample.rows.
"""

from __future__ import annotations

import hashlib

import numpy as np
import pandas as pd

from causalcli.study.load import as_loaded
from causalcli.study.run import prepare_study, run_study


def _md5(*parts) -> str:
    return hashlib.md5("|".join(str(p) for p in parts).encode()).hexdigest()


def _study_rows(spec: dict, columns: list[str]) -> pd.DataFrame:
    table = prepare_study(as_loaded(spec)).table
    return table.con.execute(f"SELECT {', '.join(columns)} FROM study_data").df()


def _integers(tmp_path, n=400) -> str:
    rng = np.random.default_rng(5)
    x1 = rng.integers(-50, 50, n)
    t = (rng.uniform(size=n) < 1 / (1 + np.exp(-x1 / 30))).astype(int)
    df = pd.DataFrame({"t": t, "y": 3 * t + x1 + rng.integers(-20, 20, n), "x1": x1, "x2": rng.integers(0, 9, n),
                       "other": rng.integers(0, 1000, n)})
    path = tmp_path / "d.csv"
    df.to_csv(path, index=False)
    return str(path)


def _spec(path: str, **data) -> dict:
    return {"version": 1, "name": "s", "data": {"path": path, **data}, "treatment": "t", "outcome": "y",
            "covariates": ["x1", "x2"], "design": {"method": "matching", "estimand": "att"}, "refute": []}


def test_sampled_rows_are_those_of_smallest_seeded_hash(tmp_path):
    path = _integers(tmp_path)
    df = pd.read_csv(path)
    key = [_md5(7, *row) for row in df[["t", "y", "x1", "x2"]].itertuples(index=False)]  # the design's columns
    expected = df.assign(key=key).sort_values("key").head(150).drop(columns="key")
    got = _study_rows(_spec(path, sample={"rows": 150, "seed": 7}), ["t", "y", "x1", "x2", "other"])
    order = ["t", "y", "x1", "x2", "other"]
    pd.testing.assert_frame_equal(got.sort_values(order).reset_index(drop=True),
                                  expected[order].sort_values(order).reset_index(drop=True), check_dtype=False)


def test_the_estimate_runs_on_the_sample_and_says_so(tmp_path):
    path = _integers(tmp_path)
    full = run_study(_spec(path))
    sampled = run_study(_spec(path, sample={"rows": 150, "seed": 7}))
    assert full.n["rows"] == 400 and sampled.n["rows"] == 150
    assert sampled.provenance["sample"] == {"rows": 150, "seed": 7} and "sample" not in full.provenance
    assert sampled.estimate.value != full.estimate.value
    other = run_study(_spec(path, sample={"rows": 150, "seed": 8}))
    assert other.estimate.value != sampled.estimate.value
    assert run_study(_spec(path, sample={"rows": 150, "seed": 7})).to_dict()["estimate"] == \
        sampled.to_dict()["estimate"]  # the same rows on every run
    # a sample as large as the data keeps every row, as on an engine
    assert run_study(_spec(path, sample={"rows": 400})).estimate == full.estimate


def test_a_panel_keeps_whole_units_in_the_order_of_their_hash(tmp_path):
    rng = np.random.default_rng(2)
    units, periods = 30, 6
    df = pd.DataFrame({"unit": np.repeat(np.arange(units), periods), "time": np.tile(np.arange(1, periods + 1), units)})
    df["treated"] = ((df.unit < 12) & (df.time >= 4)).astype(int)
    df["y"] = rng.integers(0, 100, len(df)) + 5 * df.treated
    df = df[~((df.unit == 3) & (df.time == 1))]  # units of unequal sizes: the running sum matters
    path = tmp_path / "panel.csv"
    df.to_csv(path, index=False)
    spec = {"version": 1, "name": "p", "data": {"path": str(path), "sample": {"rows": 100, "seed": 4}},
            "treatment": "treated", "outcome": "y", "design": {"method": "did", "unit": "unit", "time": "time"},
            "refute": []}
    sizes = df.groupby("unit").size()
    order = sorted(sizes.index, key=lambda u: (_md5(4, u), u))
    kept = [u for u, total in zip(order, np.cumsum([sizes[u] for u in order])) if total <= 100]
    got = _study_rows(spec, ["unit"])
    assert sorted(got.unit.unique()) == sorted(kept)
    assert len(got) == sizes[kept].sum()
    res = run_study(spec)
    assert res.provenance["sample"] == {"rows": 100, "seed": 4, "by": "unit"} and res.n["rows"] == len(got)
