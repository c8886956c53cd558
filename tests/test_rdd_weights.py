"""Observation weights (top-level ``weights``) in method: rdd, against rdrobust's ``weights=`` (run live).

rdrobust multiplies each row's kernel weight by its weight in every local fit: the estimates, the Gram matrices and
the variances' RX (so a row's term in the meat carries w^2; the nearest-neighbour residuals themselves are
unweighted), in the bandwidth selector's pilot, bias and variance fits alike; the standardisation, the pilot's
distinct-value counts and mass-point rule, and the neighbours count rows, unweighted. The study is equal to it:
estimates, SEs and bandwidths to 1e-6 relative, intervals to 1e-4 (tests/test_rdd.py's tolerances), sharp and
fuzzy, with and without clusters, the checks' fits included. Integer weights are not repeated rows in rdrobust
(the meat's w^2, the neighbours and the selector's row counts), except the point estimate at given bandwidths:
that is what is tested. Zero weights are left out and counted; negative ones exit 3.
"""

from __future__ import annotations

import json
import warnings

import numpy as np
import pandas as pd
import pytest
import yaml

from tests.conftest import invoke
from tests.test_rdd import run, write_spec

RTOL = 1e-6  # estimates, SEs, bandwidths: as tests/test_rdd.py (the same algorithm in double precision)
RTOL_CI = 1e-4  # intervals and p-values: as tests/test_rdd.py


@pytest.fixture(scope="module")
def data(tmp_path_factory):
    rng = np.random.default_rng(31)
    n = 2000
    x = np.round(rng.uniform(-1, 1, n), 3)  # ties: the collapsed path and rdrobust's tie-aware neighbours
    above = x >= 0.2
    take = np.where(above, rng.uniform(size=n) < 0.8, rng.uniform(size=n) < 0.2).astype(float)
    w = rng.uniform(0.2, 3, n).round(3)
    d = pd.DataFrame({
        "score": x, "take": take, "cluster": rng.integers(0, 50, n), "w": w,
        # heteroskedastic, and the weights matter: heavy rows sit on a steeper line
        "y": 1 + 2 * x - x ** 2 + 0.7 * above + (w > 1.5) * 0.8 * x + rng.normal(0, 0.3 + 0.4 * (x > 0.5), n),
        "yf": 1 + 2 * x + 0.7 * take + rng.normal(0, 0.5, n),
        "age": 30 + 5 * x + rng.normal(0, 2, n),
    })
    path = tmp_path_factory.mktemp("rddw") / "w.csv"
    d.to_csv(path, index=False)
    return d, path


def rdrobust_fit(d: pd.DataFrame, y: str, c: float, **kw):
    from rdrobust import rdrobust

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return rdrobust(d[y].to_numpy(), d["score"].to_numpy(), c=c, **kw)


def assert_equal_to_rdrobust(out: dict, r) -> None:
    bw = out["diagnostics"]["bandwidth"]
    np.testing.assert_allclose([bw["h_left"], bw["h_right"], bw["b_left"], bw["b_right"]], r.bws.to_numpy().ravel(),
                               rtol=RTOL)
    est = out["estimate"]
    np.testing.assert_allclose(est["value"], r.coef.iloc[0, 0], rtol=RTOL)
    np.testing.assert_allclose(out["diagnostics"]["bias_corrected"]["estimate"], r.coef.iloc[1, 0], rtol=RTOL)
    np.testing.assert_allclose(out["diagnostics"]["conventional"]["std_error"], r.se.iloc[0, 0], rtol=RTOL)
    np.testing.assert_allclose(est["std_error"], r.se.iloc[2, 0], rtol=RTOL)
    np.testing.assert_allclose([est["ci_lower"], est["ci_upper"]], r.ci.iloc[2].to_numpy(), rtol=RTOL_CI)
    np.testing.assert_allclose(est["p_value"], r.pv.iloc[2, 0], rtol=RTOL_CI)


@pytest.mark.peer
@pytest.mark.parametrize("kernel,selector", [("triangular", "mserd"), ("epanechnikov", "msetwo"),
                                             ("uniform", "cerrd"), ("triangular", 0.4)])
def test_sharp_weighted_equals_rdrobust(runner, tmp_path, data, kernel, selector):
    d, path = data
    options = {"kernel": kernel, "bandwidth": selector}
    code, out, err = run(runner, write_spec(tmp_path, path, {"running": "score", "cutoff": 0.2, "options": options},
                                            weights="w"))
    assert code in (0, 1), err
    kw = {"h": selector} if not isinstance(selector, str) else {"bwselect": selector}
    r = rdrobust_fit(d, "y", 0.2, weights=d["w"].to_numpy(), kernel=kernel[:3], **kw)
    assert_equal_to_rdrobust(out, r)
    unweighted = rdrobust_fit(d, "y", 0.2, kernel=kernel[:3], **kw)
    assert abs(out["estimate"]["value"] - unweighted.coef.iloc[0, 0]) > 1e-3  # the weights did something
    assert out["diagnostics"]["weights"]["column"] == "w"


@pytest.mark.peer
@pytest.mark.parametrize("cluster", [False, True])
def test_fuzzy_weighted_equals_rdrobust(runner, tmp_path, data, cluster):
    d, path = data
    design = {"running": "score", "cutoff": 0.2, "fuzzy": "take", **({"cluster": "cluster"} if cluster else {})}
    code, out, err = run(runner, write_spec(tmp_path, path, design, outcome="yf", weights="w"))
    assert code in (0, 1), err
    kw = {"cluster": d["cluster"].to_numpy()} if cluster else {}
    r = rdrobust_fit(d, "yf", 0.2, fuzzy=d["take"].to_numpy(), weights=d["w"].to_numpy(), **kw)
    assert_equal_to_rdrobust(out, r)
    np.testing.assert_allclose(out["diagnostics"]["first_stage"]["jump"], r.tau_T.iloc[0, 0], rtol=RTOL)


@pytest.mark.peer
@pytest.mark.parametrize("bandwidth", ["mserd", "certwo", 0.3])
def test_sharp_clustered_weighted_equals_rdrobust(runner, tmp_path, data, bandwidth):
    d, path = data
    design = {"running": "score", "cutoff": 0.2, "cluster": "cluster", "options": {"bandwidth": bandwidth}}
    code, out, err = run(runner, write_spec(tmp_path, path, design, weights="w"))
    assert code in (0, 1), err
    kw = {"h": bandwidth} if not isinstance(bandwidth, str) else {"bwselect": bandwidth}
    r = rdrobust_fit(d, "y", 0.2, cluster=d["cluster"].to_numpy(), weights=d["w"].to_numpy(), **kw)
    assert_equal_to_rdrobust(out, r)
    np.testing.assert_allclose(out["diagnostics"]["clusters"]["crv1_se"], r.se.iloc[0, 0], rtol=RTOL)


@pytest.mark.peer
@pytest.mark.parametrize("cluster", [False, True])
def test_checks_are_weighted_fits_equal_to_rdrobust(runner, tmp_path, data, cluster):
    """Covariate balance (the covariate as the outcome), placebo cutoffs (the rows of that side) and the
    bandwidth-sensitivity refits (h and b scaled) are rdrobust with the same weights; the density test is not
    weighted (rddensity takes no weights) and says so."""
    d, path = data
    design = {"running": "score", "cutoff": 0.2, "options": {"placebo_cutoffs": [-0.4, 0.6]},
              **({"cluster": "cluster"} if cluster else {})}
    code, out, err = run(runner, write_spec(tmp_path, path, design, covariates=["age"], weights="w"))
    assert code in (0, 1), err
    kw = {"cluster": d["cluster"].to_numpy()} if cluster else {}
    balance = rdrobust_fit(d, "age", 0.2, weights=d["w"].to_numpy())  # by value, nn variance, as unweighted
    np.testing.assert_allclose(out["diagnostics"]["balance"]["age"]["estimate"], balance.coef.iloc[0, 0], rtol=RTOL)
    np.testing.assert_allclose(out["diagnostics"]["balance"]["age"]["p_value"], balance.pv.iloc[2, 0], rtol=RTOL_CI)
    for c, side in ((-0.4, d["score"] < 0.2), (0.6, d["score"] >= 0.2)):
        s = d[side]
        kw_side = {"cluster": s["cluster"].to_numpy()} if cluster else {}
        r = rdrobust_fit(s, "y", c, weights=s["w"].to_numpy(), **kw_side)
        got = out["diagnostics"]["placebo_cutoffs"][f"{c:g}"]
        np.testing.assert_allclose([got["estimate"], got["h_left"]], [r.coef.iloc[0, 0], r.bws.iloc[0, 0]], rtol=RTOL)
        np.testing.assert_allclose([got["ci_lower"], got["ci_upper"]], r.ci.iloc[2].to_numpy(), rtol=RTOL_CI)
    bw = out["diagnostics"]["bandwidth"]
    twice = next(e for e in out["effects"] if e["label"].startswith("bandwidth 2x"))
    r = rdrobust_fit(d, "y", 0.2, weights=d["w"].to_numpy(), h=[2 * bw["h_left"], 2 * bw["h_right"]],
                     b=[2 * bw["b_left"], 2 * bw["b_right"]], **kw)
    np.testing.assert_allclose([twice["value"], twice["std_error"]], [r.coef.iloc[0, 0], r.se.iloc[2, 0]], rtol=RTOL)
    manipulation = next(c for c in out["checks"] if c["name"] == "manipulation")
    assert "unweighted" in manipulation["detail"] and "rddensity takes no weights" in manipulation["detail"]
    code, plain, err = run(runner, write_spec(tmp_path, path, design, covariates=["age"]))
    assert plain["diagnostics"]["density"]["statistic"] == out["diagnostics"]["density"]["statistic"]


def test_unit_weights_change_nothing(runner, tmp_path, data):
    """Weights of 1 are the unweighted study, bit for bit in every number that matters."""
    d, _ = data
    path = tmp_path / "ones.csv"
    d.assign(one=1.0).to_csv(path, index=False)
    design = {"running": "score", "cutoff": 0.2, "fuzzy": "take"}
    _, plain, _ = run(runner, write_spec(tmp_path, path, design, outcome="yf"))
    _, ones, _ = run(runner, write_spec(tmp_path, path, design, outcome="yf", weights="one"))
    for key in ("value", "std_error", "ci_lower", "ci_upper"):
        np.testing.assert_allclose(ones["estimate"][key], plain["estimate"][key], rtol=1e-12)
    assert ones["diagnostics"]["bandwidth"] == pytest.approx(plain["diagnostics"]["bandwidth"], rel=1e-12)


@pytest.mark.parametrize("clustered", [False, True])
def test_integer_weights_are_repeated_rows_for_the_estimate_and_the_clustered_meat(clustered):
    """At given bandwidths the local fits' normal equations with integer weights are those of the rows repeated,
    so the conventional and bias-corrected estimates agree. The variance: with clusters the CR1 meat sums
    w_i RX_i r_i within a cluster, what its w copies sum, so each side's variance differs only by the small-sample
    factor (n-1)/(n-k), n the rows (not the copies); without clusters it does not hold: rdrobust's nn meat gives a
    row w^2 (the weight in RX), the copies w, and the copies are each other's nearest neighbours. (With a
    selected bandwidth the selector's standardisation and counts are of rows, so bandwidths differ too.)"""
    from causalcli.designs.rdd.estimator import fit_side
    from causalcli.designs.rdd.fitting import RdSettings, rd_fit

    rng = np.random.default_rng(5)
    n = 1500
    x = np.sort(np.round(rng.uniform(-1, 1, n), 3))
    y = 1 + x + 0.5 * (x >= 0) + rng.normal(0, 0.5, n)
    w = rng.integers(1, 4, n).astype(float)
    cl = rng.integers(0, 40, n)
    st = RdSettings(1, "triangular", 0.5, 0.95)
    weighted = rd_fit(x, y[:, None], 0.0, st, cl if clustered else None, weights=w)
    reps = np.repeat(np.arange(n), w.astype(int))
    repeated = rd_fit(x[reps], y[reps, None], 0.0, st, cl[reps] if clustered else None)
    np.testing.assert_allclose(weighted.fit.conventional, repeated.fit.conventional, rtol=1e-10)
    np.testing.assert_allclose(weighted.fit.bias_corrected, repeated.fit.bias_corrected, rtol=1e-10)
    if not clustered:
        assert abs(weighted.fit.se_conventional / repeated.fit.se_conventional - 1) > 0.01
        return
    k = st.p + 1  # h == b: both variances use k = p + 1 (conventional) and q + 1 (robust, rdrobust's h == b path)
    for ours, theirs in zip(weighted.split.fits, repeated.split.fits):
        fw, fr = (fit_side(side, "", 0.5, 0.5, st.p, st.p + 1, "triangular", 3) for side in (ours, theirs))
        n_w, n_r = fw.part.stop - fw.part.start, fr.part.stop - fr.part.start
        (cw, rw), (cr, rr) = fw.variances(np.ones(1), st.p, st.p + 1), fr.variances(np.ones(1), st.p, st.p + 1)
        factor = (lambda n, k: (n - 1) / (n - k))
        np.testing.assert_allclose(cw / factor(n_w, k), cr / factor(n_r, k), rtol=1e-10)
        np.testing.assert_allclose(rw / factor(n_w, k + 1), rr / factor(n_r, k + 1), rtol=1e-10)


def test_engine_weighted_by_value_equals_the_rows_by_value(tmp_path):
    """``by_value.from_table`` with weights (one GROUP BY over the rows of positive weight, their deviations from
    the value's mean by a window) gives ``from_rows``'s weighted sums on the same rows: sums to 1e-12, the
    w^2-weighted means and scatters to 1e-9 of the scale; rows of weight 0 and missing weights are left out."""
    from tests.test_rdd_collapsed import _table_of

    from causalcli.designs.rdd.by_value import from_rows, from_table, zero_weight_rows

    rng = np.random.default_rng(8)
    n = 3000
    frame = pd.DataFrame({"score": np.round(rng.uniform(-1, 1, n), 2), "y": rng.normal(1e6, 1, n),
                          "take": rng.integers(0, 2, n), "w": rng.uniform(0, 3, n).round(1)})
    frame.loc[[4, 9], "w"] = np.nan
    table = _table_of(tmp_path, frame)
    got = from_table(table, "score", ["y", "take"], "w")
    kept = frame.dropna()
    assert zero_weight_rows(table, ["score", "y", "take"], "w") == int((kept["w"] == 0).sum()) > 0
    kept = kept[kept["w"] > 0].sort_values(["score", "y", "take"])
    want = from_rows(kept["score"].to_numpy(), kept[["y", "take"]].to_numpy(dtype=float), kept["w"].to_numpy())
    np.testing.assert_array_equal(got.values.counts, want.values.counts)
    assert_weighted_sums_equal(got.values.weighted, want.values.weighted)


def assert_weighted_sums_equal(g, v) -> None:
    """Two ``WeightedSums`` (engine and rows): sums to 1e-12, the w^2-weighted scatters to 1e-9 of the scale."""
    for a, b in ((g.total, v.total), (g.sums, v.sums), (g.square_total, v.square_total),
                 (g.square_mean, v.square_mean)):
        np.testing.assert_allclose(a, b, rtol=1e-12)
    scale = np.maximum(v.square_scatter[:, [0, 1], [0, 1]].sum(axis=0), 1.0)
    np.testing.assert_allclose(g.square_scatter / scale, v.square_scatter / scale, atol=1e-9)


def test_collapsed_weighted_fit_equals_the_row_fit():
    """The fits by value (weighted sums, the meat's w^2 terms from each value's w^2-weighted mean and scatter)
    equal the fits on the rows, through bandwidth selection, sharp and fuzzy."""
    from causalcli.designs.rdd.fitting import RdSettings, rd_fit, sides

    rng = np.random.default_rng(9)
    n = 2500
    x = np.sort(np.round(rng.uniform(-1, 1, n), 2))
    take = ((x >= 0) & (rng.uniform(size=n) < 0.7) | (rng.uniform(size=n) < 0.2)).astype(float)
    D = np.column_stack([1 + x + 0.5 * take + rng.normal(0, 0.5, n), take])
    w = rng.uniform(0.1, 4, n)
    for columns in (1, 2):
        st = RdSettings(1, "triangular", "mserd", 0.95)
        by_value = rd_fit(x, D[:, :columns], 0.0, st, weights=w)
        rows = rd_fit(x, D[:, :columns], 0.0, st, split=sides(x, D[:, :columns], 0.0, collapsed=False, weights=w))
        np.testing.assert_allclose(
            [by_value.fit.conventional, by_value.fit.se_conventional, by_value.fit.se_robust,
             by_value.bandwidths.h_left, by_value.bandwidths.b_left],
            [rows.fit.conventional, rows.fit.se_conventional, rows.fit.se_robust, rows.bandwidths.h_left,
             rows.bandwidths.b_left], rtol=1e-8)


@pytest.mark.peer
def test_the_wild_bootstraps_draws_are_weighted_rdrobust_fits():
    """With few clusters, each draw's t* is rdrobust with the same weights on the draw's data (the restricted
    fit weighted too: least squares with kernel times weight at b)."""
    from rdrobust import rdrobust

    from causalcli.designs.rdd.fitting import RdSettings, rd_fit
    from causalcli.designs.rdd.local_poly import kernel_weights
    from causalcli.designs.rdd.wild import RdWildBootstrap
    from causalcli.inference.few_clusters import wild_weights
    from causalcli.inference.wild import bootstrap_weights

    rng = np.random.default_rng(3)
    n, G = 2000, 10
    cl = rng.integers(0, G, n)
    x = np.sort(rng.uniform(-1, 1, n))
    y = 1 + x + 0.5 * (x >= 0) + rng.normal(0, 0.3, G)[cl] + rng.normal(0, 0.3, n)
    w = rng.uniform(0.2, 3, n)
    st = RdSettings(1, "triangular", "mserd", 0.95)
    result = rd_fit(x, y[:, None], 0.0, st, cl, weights=w)
    boot = RdWildBootstrap(result, st)
    boot.V, _ = bootstrap_weights(boot.G, 99, np.random.default_rng(4), wild_weights("auto", boot.G))
    bw = result.bandwidths
    left = x < 0
    wb = np.where(left, kernel_weights(x, bw.b_left, "triangular"), kernel_weights(x, bw.b_right, "triangular"))
    wh = np.where(left, kernel_weights(x, bw.h_left, "triangular"), kernel_weights(x, bw.h_right, "triangular"))
    used = (wb > 0) | (wh > 0)
    X = np.column_stack([np.ones_like(x), ~left * x, ~left * x ** 2, left * x, left * x ** 2])
    for b0 in (0.0, 0.4):
        _, tstar = boot.t_stats(b0)
        u = y - b0 * ~left
        root = np.sqrt(wb[used] * w[used])
        beta = np.linalg.lstsq(X[used] * root[:, None], u[used] * root, rcond=None)[0]
        fitted = X[used] @ beta
        labels = list(np.unique(cl[used]))
        for k in range(3):
            v = boot.V[k, [labels.index(g) for g in cl[used]]]
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                r = rdrobust(fitted + v * (u[used] - fitted), x[used], c=0.0, h=[bw.h_left, bw.h_right],
                             b=[bw.b_left, bw.b_right], cluster=cl[used], weights=w[used])
            np.testing.assert_allclose(tstar[k], r.coef.iloc[1, 0] / r.se.iloc[2, 0], rtol=RTOL)


@pytest.mark.peer
@pytest.mark.parametrize("cluster", [False, True])
def test_zero_weights_are_left_out_and_counted(runner, tmp_path, data, cluster):
    d, _ = data
    d = d.copy()
    zero = np.arange(0, len(d), 7)
    d.loc[zero, "w"] = 0.0
    path = tmp_path / "zero.csv"
    d.to_csv(path, index=False)
    design = {"running": "score", "cutoff": 0.2, **({"cluster": "cluster"} if cluster else {})}
    code, out, err = run(runner, write_spec(tmp_path, path, design, weights="w"))
    assert code in (0, 1), err
    assert out["n"]["dropped_zero_weight"] == zero.size
    assert out["n"]["used"] == len(d) - zero.size
    assert out["diagnostics"]["weights"]["zero_weight_rows"] == zero.size
    assert f"{zero.size} rows with a weight of 0 ('w') left out" in " ".join(out["warnings"])  # (the trial: none)
    kept = d[d["w"] > 0]
    kw = {"cluster": kept["cluster"].to_numpy()} if cluster else {}
    assert_equal_to_rdrobust(out, rdrobust_fit(kept, "y", 0.2, weights=kept["w"].to_numpy(), **kw))


@pytest.mark.parametrize("bad,needle", [("negative", "negative or infinite"), ("all_zero", "sums to zero")])
def test_negative_or_all_zero_weights_exit_3(runner, tmp_path, data, bad, needle):
    d = data[0].copy()
    if bad == "negative":
        d.loc[3, "w"] = -1.0
    else:
        d["w"] = 0.0
    path = tmp_path / "bad.csv"
    d.to_csv(path, index=False)
    res = invoke(runner, ["estimate", write_spec(tmp_path, path, {"running": "score", "cutoff": 0.2}, weights="w"),
                          "--format", "json", "--quiet", "--no-refute"])
    assert res.exit_code == 3
    assert needle in res.stderr and "'w'" in res.stderr and "Traceback" not in res.stderr


def test_data_subset_refuter_runs_on_the_weighted_rows(runner, tmp_path, data):
    d, path = data
    res = invoke(runner, ["estimate", write_spec(tmp_path, path, {"running": "score", "cutoff": 0.2}, weights="w",
                                                 refute=["data_subset"]), "--format", "json", "--quiet"])
    out = json.loads(res.stdout)
    subset = next(r for r in out["refutations"] if r["name"] == "data_subset")
    assert subset["new_effect"] is not None and abs(subset["new_effect"] - out["estimate"]["value"]) < 0.5


@pytest.mark.engines
@pytest.mark.parametrize("engine", ["postgres", pytest.param("spark", marks=pytest.mark.xdist_group("spark"))])
def test_weighted_study_on_an_engine_equals_the_file(runner, tmp_path, data, engine, request, monkeypatch):
    """The weighted GROUP BY (a window over each running value for the w^2-weighted scatter, rows of weight 0
    counted apart) runs in PostgreSQL and Spark as in DuckDB: the same result, zero weights included."""
    import pyarrow as pa

    from tests.engines import engine_source

    d, _ = data
    d = d.copy()
    d.loc[::11, "w"] = 0.0
    path = tmp_path / "zero.csv"
    d.to_csv(path, index=False)
    design = {"running": "score", "cutoff": 0.2}
    code_file, want, err = run(runner, write_spec(tmp_path, path, design, weights="w"))
    assert code_file in (0, 1), err
    table = pa.Table.from_pandas(d, preserve_index=False)
    source = engine_source(request, monkeypatch, engine, "rdd_weighted", table)
    spec = yaml.safe_load(open(write_spec(tmp_path, path, design, weights="w")))
    spec["data"] = source
    engine_spec = tmp_path / "engine.yaml"
    engine_spec.write_text(yaml.safe_dump(spec))
    code, got, err = run(runner, str(engine_spec))
    assert code == code_file, err
    assert got["n"]["dropped_zero_weight"] == want["n"]["dropped_zero_weight"] > 0
    for key in ("value", "std_error", "ci_lower", "ci_upper"):
        assert got["estimate"][key] == pytest.approx(want["estimate"][key], rel=1e-9), key
    assert got["diagnostics"]["bandwidth"] == pytest.approx(want["diagnostics"]["bandwidth"], rel=1e-9)
