"""Issue 20, point 6: rdd's fits on rows collapsed by distinct running value (local_poly.collapse) equal the fits
on the rows themselves, and rdrobust / rddensity / rdplot, on running variables with heavy ties (mass points).

Tolerances: with a bandwidth given, the collapsed and row fits agree to 1e-12; the selected bandwidths go
through pilot fits of order up to p+3, badly conditioned, where the same sums taken in another order move
the last 7-8 digits (as far as either path is from rdrobust): 1e-7 there (p = 2, a quintic pilot, moved
2.5e-8 with numpy 2.3's summation). Against the peers, the issue's
1e-6 (estimates, bandwidths) and 1e-4 (intervals), as tests/test_rdd.py.
"""

from __future__ import annotations

import contextlib
import io
import warnings

import numpy as np
import pytest

from causalcli.designs.rdd.fitting import RdSettings, rd_fit, sides
from causalcli.designs.rdd.local_poly import RowResiduals, Side, ValueResiduals, collapse, nn_residuals


def tied(n: int, decimals: int, seed: int = 7, cutoff: float = 0.0) -> tuple[np.ndarray, np.ndarray]:
    """A running variable rounded to ``decimals`` (sorted), a sharp jump of 0.5 and a take-up for fuzzy fits."""
    rng = np.random.default_rng(seed)
    x = np.sort(np.round(rng.uniform(-1, 1, n), decimals))
    take = (rng.uniform(size=n) < np.where(x >= cutoff, 0.8, 0.2)).astype(float)
    y = 3 + x - 0.5 * x ** 2 + 0.5 * take + rng.standard_normal(n)
    return x, np.column_stack([y, take])


def numbers(r) -> np.ndarray:
    b, f = r.bandwidths, r.fit
    return np.array([b.h_left, b.h_right, b.b_left, b.b_right, f.conventional, f.bias_corrected,
                     f.se_conventional, f.se_robust, f.n_left, f.n_right])


@pytest.mark.parametrize("decimals", [2, 3, 6])
@pytest.mark.parametrize("columns", [1, 2])  # sharp, fuzzy
@pytest.mark.parametrize("kernel,bandwidth,p", [("triangular", "mserd", 1), ("uniform", "msetwo", 1),
                                                ("epanechnikov", "cerrd", 2), ("triangular", 0.3, 1)])
def test_collapsed_fit_equals_the_row_fit(decimals, columns, kernel, bandwidth, p):
    x, D = tied(3000, decimals)
    D = D[:, :columns]
    settings = RdSettings(p, kernel, bandwidth, 0.95)
    collapsed = rd_fit(x, D, 0.0, settings)
    rows = rd_fit(x, D, 0.0, settings, split=sides(x, D, 0.0, collapsed=False))
    assert collapsed.split.fits[0].x.size < rows.split.fits[0].x.size or decimals == 6
    tolerance = 1e-12 if isinstance(bandwidth, float) else 1e-7
    np.testing.assert_allclose(numbers(collapsed), numbers(rows), rtol=tolerance)
    assert collapsed.n_left == rows.n_left and collapsed.n_right == rows.n_right


def test_one_sided_take_up_selects_sharp_bandwidths_on_values_as_on_rows():
    """Take-up constant below the cutoff (nobody below is treated): bandwidths are selected for the outcome
    alone (rdrobust's rule), from values as from rows."""
    x, D = tied(3000, 2)
    D[x < 0, 1] = 0.0
    settings = RdSettings(1, "triangular", "mserd", 0.95)
    collapsed = rd_fit(x, D, 0.0, settings)
    rows = rd_fit(x, D, 0.0, settings, split=sides(x, D, 0.0, collapsed=False))
    sharp = rd_fit(x, D[:, :1], 0.0, settings)
    np.testing.assert_allclose(numbers(collapsed), numbers(rows), rtol=1e-8)
    np.testing.assert_allclose(numbers(collapsed)[:4], numbers(sharp)[:4], rtol=1e-12)


@pytest.mark.parametrize("bandwidth", ["mserd", 0.6])
def test_values_that_centring_rounds_together_are_one_tie(bandwidth):
    """Two adjacent doubles below 0.5 become one number once the cutoff 1 is subtracted: the rows group them
    as one tie (one set of neighbours), so the collapsed entries are merged likewise (local_poly.merge_equal)."""
    rng = np.random.default_rng(7)
    x = np.round(rng.uniform(0, 2, 3000), 2)
    nudge = (x < 0.5) & (rng.uniform(size=x.size) < 0.5)
    x[nudge] = np.nextafter(x[nudge], 1.0)
    x = np.sort(x)
    assert np.unique(x - 1.0).size < np.unique(x).size
    D = (1 + x + 0.5 * (x >= 1) + rng.standard_normal(x.size))[:, None]
    settings = RdSettings(1, "triangular", bandwidth, 0.95)
    collapsed = rd_fit(x, D, 1.0, settings)
    rows = rd_fit(x, D, 1.0, settings, split=sides(x, D, 1.0, collapsed=False))
    np.testing.assert_allclose(numbers(collapsed), numbers(rows), rtol=1e-10)


def test_value_residuals_give_the_row_meat():
    """The nearest-neighbour meat from per-value sums is the row meat, whole ties and window edges included."""
    x, D = tied(2000, 2)
    side = Side(x, D)
    values = collapse(side)
    rng = np.random.default_rng(3)
    for low, high in ((x[0], x[-1]), (x[137], x[1650])):  # windows hold whole ties, as bandwidth windows do
        start, stop = int(np.searchsorted(x, low, side="left")), int(np.searchsorted(x, high, side="right"))
        rows = slice(start, stop)
        grouped = slice(int(np.searchsorted(values.x, x[start])), int(np.searchsorted(values.x, x[stop - 1])) + 1)
        by_row = RowResiduals(nn_residuals(x[rows], D[rows], 3), None)
        by_value = ValueResiduals(values, grouped, 3)
        regressors = np.column_stack([np.ones(x.size), x, x ** 2])
        for s in (np.array([1.0, 0.0]), rng.normal(size=2)):
            want = by_row.meat(regressors[rows], s, 3)
            got = by_value.meat(np.column_stack([np.ones(grouped.stop - grouped.start), values.x[grouped],
                                                 values.x[grouped] ** 2]), s, 3)
            np.testing.assert_allclose(got, want, rtol=1e-12)


def test_collapse_keeps_counts_sums_and_scatter():
    x = np.array([-1.0, -1.0, 0.5, 2.0, 2.0, 2.0])
    D = np.array([[1.0, 0.0], [3.0, 1.0], [5.0, 1.0], [1.0, 0.0], [2.0, 1.0], [6.0, 1.0]])
    c = collapse(Side(x, D))
    np.testing.assert_array_equal(c.x, [-1.0, 0.5, 2.0])
    np.testing.assert_array_equal(c.counts, [2, 1, 3])
    np.testing.assert_array_equal(c.D, [[4.0, 1.0], [5.0, 1.0], [9.0, 2.0]])
    assert c.rows == 6
    np.testing.assert_allclose(c.scatter[0], [[2.0, 1.0], [1.0, 0.5]])  # (1, 0), (3, 1) about (2, 0.5)
    np.testing.assert_allclose(c.scatter[1], 0.0)
    np.testing.assert_allclose(c.scatter[2], np.cov(D[3:].T, bias=True) * 3)


@pytest.mark.peer
@pytest.mark.parametrize("fuzzy", [False, True])
def test_mass_points_equal_rdrobust(fuzzy):
    """rdrobust's mass-point rules (masspoints='adjust': the pilot keeps 10 distinct values) on a score with
    2 decimals (201 values for 4,000 rows), through the collapsed path."""
    from rdrobust import rdrobust

    x, D = tied(4000, 2)
    D = D if fuzzy else D[:, :1]
    r = rd_fit(x, D, 0.0, RdSettings(1, "triangular", "mserd", 0.95))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        peer = rdrobust(D[:, 0], x, c=0.0, **({"fuzzy": D[:, 1]} if fuzzy else {}))
    b = r.bandwidths
    np.testing.assert_allclose([b.h_left, b.h_right, b.b_left, b.b_right], peer.bws.to_numpy().ravel(), rtol=1e-6)
    np.testing.assert_allclose([r.fit.conventional, r.fit.bias_corrected], peer.coef.iloc[:2, 0], rtol=1e-6)
    np.testing.assert_allclose([r.fit.se_conventional, r.fit.se_robust], peer.se.iloc[[0, 2], 0], rtol=1e-6)
    np.testing.assert_allclose(r.robust_interval(0.95)[:2], peer.ci.iloc[2].to_numpy(), rtol=1e-4)


@pytest.mark.peer
def test_density_with_mass_points_equals_rddensity():
    from rddensity import rddensity

    from causalcli.designs.rdd.density import density_test

    x, _ = tied(4000, 2, seed=11)
    t = density_test(x, 0.0)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        peer = rddensity(x, c=0.0)
    np.testing.assert_allclose([t.h_left, t.h_right], peer.h.to_numpy().ravel(), rtol=1e-6)
    np.testing.assert_allclose([t.f_left, t.f_right], [peer.hat["left"], peer.hat["right"]], rtol=1e-6)
    np.testing.assert_allclose([t.statistic, t.p_value], [peer.test["t_jk"], peer.test["p_jk"]], rtol=1e-6)


@pytest.mark.peer
def test_bins_with_mass_points_equal_rdplot():
    """rdplot's esmvpr bin count (mass points) and its bins' means, from per-value sums."""
    from rdrobust import rdplot

    from causalcli.designs.rdd.bins import binned_means

    x, D = tied(4000, 2, seed=5)
    bins, count = binned_means(x, D[:, 0], 0.0)
    with contextlib.redirect_stdout(io.StringIO()), warnings.catch_warnings():
        warnings.simplefilter("ignore")
        peer = rdplot(D[:, 0], x, c=0.0, hide=True)
    assert [count["below"], count["above"]] == list(peer.J)
    theirs = peer.vars_bins.dropna(subset=["rdplot_mean_y"])
    np.testing.assert_allclose(sorted(bins["outcome"]), np.sort(theirs.rdplot_mean_y), rtol=1e-9)
    np.testing.assert_allclose(sorted(bins["running"]), np.sort(theirs.rdplot_mean_x), rtol=1e-9)
    assert sum(bins["n"]) == x.size


# ---------------------------------------------------------------- the engine's per-value sums


def _table_of(tmp_path, frame):
    """A study's Table over a parquet file of ``frame`` (DuckDB)."""
    import yaml

    from causalcli.data.table import load_table
    from causalcli.spec.loading import SpecSource
    from causalcli.study import load_spec

    frame.to_parquet(tmp_path / "d.parquet", index=False)
    spec = {"version": 1, "name": "rdd", "data": {"path": "d.parquet"}, "outcome": "y",
            "design": {"method": "rdd", "running": "score", "cutoff": 0}}
    return load_table(load_spec(SpecSource(str(tmp_path / "s.yaml"), yaml.safe_dump(spec), tmp_path)))


@pytest.mark.parametrize("decimals", [2, 6])
def test_engine_by_value_equals_the_rows_by_value(tmp_path, decimals):
    """``by_value.from_table`` (one GROUP BY in DuckDB) gives what ``from_rows`` gives on the same complete rows:
    values and counts exactly, sums to 1e-12 (another summation order), scatters (the engine's stable variance
    times the count, against numpy's two-pass sums) to 1e-9 of the value's total scatter, extremes exactly.
    Missing values (NULL, NaN) in any column drop the row, an integer take-up is read as a number."""
    import pandas as pd

    from causalcli.designs.rdd.by_value import from_rows, from_table

    x, D = tied(3000, decimals)
    frame = pd.DataFrame({"score": x, "y": D[:, 0] + 1e6, "take": D[:, 1].astype(int)})  # a large mean, too
    frame.loc[[3, 50], "y"] = np.nan
    frame.loc[[7], "score"] = None
    frame = frame.sample(frac=1.0, random_state=1)  # the file's order is not the values' order
    got = from_table(_table_of(tmp_path, frame), "score", ["y", "take"])
    complete = frame.dropna().sort_values(["score", "y", "take"])
    want = from_rows(complete["score"].to_numpy(), complete[["y", "take"]].to_numpy(dtype=float))
    np.testing.assert_array_equal(got.values.x, want.values.x)
    np.testing.assert_array_equal(got.values.counts, want.values.counts)
    assert got.rows == len(complete) == 2997
    np.testing.assert_allclose(got.values.D, want.values.D, rtol=1e-12)
    scale = np.maximum(want.values.scatter[:, [0, 1], [0, 1]].sum(axis=0), 1.0)  # no ties: all zero
    np.testing.assert_allclose(got.values.scatter / scale, want.values.scatter / scale, atol=1e-9)
    np.testing.assert_array_equal(got.low, want.low)
    np.testing.assert_array_equal(got.high, want.high)


def test_sharp_rdd_without_refuters_never_reads_the_rows(runner, tmp_path, monkeypatch):
    """Without clusters the estimate, its checks and covariate balance run on the engine's per-value sums: the
    rows are not read (``Table.arrays`` is never called), and the result equals the one from rows (a subset
    refuter reads them; tests/test_rdd.py holds both to rdrobust)."""
    import json

    import pandas as pd
    import yaml

    from causalcli.data.table import Table
    from causalcli.designs.rdd.fitting import RdSettings, rd_fit
    from tests.conftest import invoke

    x, D = tied(3000, 3)
    rng = np.random.default_rng(3)
    pd.DataFrame({"score": x, "y": D[:, 0], "age": 30 + x + rng.standard_normal(x.size)}).to_parquet(
        tmp_path / "d.parquet", index=False)
    spec = {"version": 1, "name": "rdd", "data": {"path": "d.parquet"}, "outcome": "y", "covariates": ["age"],
            "design": {"method": "rdd", "running": "score", "cutoff": 0}}
    (tmp_path / "s.yaml").write_text(yaml.safe_dump(spec))

    def no_rows(self, *args, **kwargs):
        raise AssertionError("the rows were read")

    monkeypatch.setattr(Table, "arrays", no_rows)
    res = invoke(runner, ["estimate", str(tmp_path / "s.yaml"), "--format", "json", "--quiet", "--no-refute"])
    assert res.exit_code in (0, 1), res.stderr
    out = json.loads(res.stdout)
    rows = rd_fit(x, D[:, :1], 0.0, RdSettings(1, "triangular", "mserd", 0.95), split=sides(x, D[:, :1], 0.0,
                                                                                              collapsed=False))
    assert out["estimate"]["value"] == pytest.approx(rows.fit.conventional, rel=1e-8)
    assert out["diagnostics"]["bandwidth"]["h_left"] == pytest.approx(rows.bandwidths.h_left, rel=1e-7)
    assert out["n"]["used"] == 3000 and "age" in out["diagnostics"]["balance"]
    assert {c["name"] for c in out["checks"]} >= {"bandwidth_sensitivity", "covariate_balance", "manipulation",
                                                   "placebo_cutoffs"}
