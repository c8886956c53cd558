"""Effects by segment (top-level ``segments``) in method: rdd, against rdrobust (run live) on each segment's rows.

The effect within ``column=value`` is rdrobust on that value's rows: the bandwidths selected again on them (or the
given one kept), the same kernel, p, weights and clusters; estimates, SEs and bandwidths equal to 1e-6 relative,
intervals and p-values to 1e-4 (tests/test_rdd.py's tolerances), sharp and fuzzy, with weights and with clusters.
With few clusters in a segment the p-value and interval are the wild bootstrap's, as the headline of a study of
that segment alone. The Wald test of equal effects is Cochran's Q of the bias-corrected estimates with their
robust SEs, recomputed here from rdrobust's numbers. Simulated jumps that differ by segment are recovered.
"""

from __future__ import annotations

import json
import warnings

import numpy as np
import pandas as pd
import pytest
import yaml

from tests.conftest import invoke
from tests.test_rdd_weights import assert_weighted_sums_equal

RTOL = 1e-6  # estimates, SEs, bandwidths: as tests/test_rdd.py (the same algorithm in double precision)
RTOL_CI = 1e-4  # intervals and p-values: as tests/test_rdd.py
JUMPS = {"a": 0.5, "b": 1.5, "c": 1.0}  # the true jump in each segment


@pytest.fixture(scope="module")
def data(tmp_path_factory):
    rng = np.random.default_rng(11)
    n = 6000
    x = np.round(rng.uniform(-1, 1, n), 3)  # ties: the collapsed path and rdrobust's tie-aware neighbours
    g = rng.choice(list(JUMPS), n)
    jump = pd.Series(g).map(JUMPS).to_numpy()
    above = x >= 0
    take = np.where(above, rng.uniform(size=n) < 0.8, rng.uniform(size=n) < 0.2).astype(float)
    w = rng.uniform(0.2, 3, n).round(3)
    d = pd.DataFrame({
        "score": x, "g": g, "take": take, "w": w,
        "nested": [f"{s}{i}" for s, i in zip(g, rng.integers(0, 300, n))],  # ~7 rows a cluster, within a segment
        "spanning": rng.integers(0, 300, n),  # clusters holding rows of every segment
        "y": 1 + x - 0.5 * x ** 2 + jump * above + (w > 1.5) * 0.5 * x + rng.normal(0, 0.4 + 0.3 * (x > 0.5), n),
        "yf": 1 + x + jump * take + rng.normal(0, 0.5, n),
    })
    path = tmp_path_factory.mktemp("rddseg") / "seg.csv"
    d.to_csv(path, index=False)
    return d, path


def write_spec(folder, data_path, design: dict, outcome="y", **top) -> str:
    spec = {"version": 1, "name": "rdd", "data": {"path": str(data_path)}, "outcome": outcome,
            "design": {"method": "rdd", "running": "score", "cutoff": 0.0, **design}, "segments": ["g"], **top}
    path = folder / "rdd.yaml"
    path.write_text(yaml.safe_dump(spec))
    return str(path)


def run(runner, spec: str, command: str = "estimate") -> tuple[int, dict, str]:
    args = [command, spec] + (["--format", "json", "--quiet", "--no-refute"] if command == "estimate" else [])
    res = invoke(runner, args)
    return res.exit_code, (json.loads(res.stdout) if command == "estimate" and res.stdout.strip() else {}), res.stderr


def rdrobust_fit(d: pd.DataFrame, y: str, **kw):
    from rdrobust import rdrobust

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return rdrobust(d[y].to_numpy(), d["score"].to_numpy(), c=0.0, **kw)


def segment_rows(out: dict, column: str = "g") -> dict[str, dict]:
    return {e["label"].split("=", 1)[1]: e for e in out["effects"] if e["label"].startswith(f"{column}=")}


def assert_segment_equals_rdrobust(effect: dict, detail: dict, r, analytic: bool = True) -> None:
    bw = detail["bandwidth"]
    np.testing.assert_allclose([bw["h_left"], bw["h_right"], bw["b_left"], bw["b_right"]], r.bws.to_numpy().ravel(),
                               rtol=RTOL)
    np.testing.assert_allclose(effect["value"], r.coef.iloc[0, 0], rtol=RTOL)
    np.testing.assert_allclose(detail["bias_corrected"]["estimate"], r.coef.iloc[1, 0], rtol=RTOL)
    np.testing.assert_allclose(detail["conventional"]["std_error"], r.se.iloc[0, 0], rtol=RTOL)
    np.testing.assert_allclose(effect["std_error"], r.se.iloc[2, 0], rtol=RTOL)
    if analytic:
        np.testing.assert_allclose([effect["ci_lower"], effect["ci_upper"]], r.ci.iloc[2].to_numpy(), rtol=RTOL_CI)
        np.testing.assert_allclose(effect["p_value"], r.pv.iloc[2, 0], rtol=RTOL_CI)


@pytest.mark.peer
@pytest.mark.parametrize("weighted,cluster,bandwidth", [(False, None, "mserd"), (True, None, "mserd"),
                                                       (True, None, "certwo"), (False, "nested", "msetwo"),
                                                       (True, "nested", "mserd"), (True, None, 0.3)])
def test_sharp_segments_equal_rdrobust_on_each_segment(runner, tmp_path, data, weighted, cluster, bandwidth):
    d, path = data
    design = {"options": {"bandwidth": bandwidth}, **({"cluster": cluster} if cluster else {})}
    code, out, err = run(runner, write_spec(tmp_path, path, design, **({"weights": "w"} if weighted else {})))
    assert code in (0, 1), err
    rows = segment_rows(out)
    assert sorted(rows) == ["a", "b", "c"]
    for value, effect in rows.items():
        s = d[d["g"] == value]
        kw = {"h": bandwidth} if not isinstance(bandwidth, str) else {"bwselect": bandwidth}
        kw.update({"weights": s["w"].to_numpy()} if weighted else {})
        kw.update({"cluster": s[cluster].to_numpy()} if cluster else {})
        r = rdrobust_fit(s, "y", **kw)
        detail = out["diagnostics"]["segments"]["g"][value]
        assert_segment_equals_rdrobust(effect, detail, r)
        assert detail["below_cutoff"] + detail["above_cutoff"] == detail["rows"] == len(s)
        assert effect["inference"].startswith("rd_robust_bias_corrected" + ("_clustered" if cluster else ""))
        if cluster:  # enough clusters in each segment: the CR1 robust interval, not the bootstrap's
            assert detail["clusters"]["method"] == "rd_robust_bias_corrected_clustered"
            assert detail["clusters"]["n_clusters"] >= 42
    # a selected bandwidth is selected again on each segment's rows; a given one is kept
    hs = {v: out["diagnostics"]["segments"]["g"][v]["bandwidth"]["h_left"] for v in rows}
    assert len(set(hs.values())) == (1 if bandwidth == 0.3 else 3)


@pytest.mark.peer
@pytest.mark.parametrize("weighted,cluster", [(False, False), (True, False), (True, True)])
def test_fuzzy_segments_equal_rdrobust_on_each_segment(runner, tmp_path, data, weighted, cluster):
    d, path = data
    design = {"fuzzy": "take", **({"cluster": "nested"} if cluster else {})}
    code, out, err = run(runner, write_spec(tmp_path, path, design, outcome="yf",
                                            **({"weights": "w"} if weighted else {})))
    assert code in (0, 1), err
    for value, effect in segment_rows(out).items():
        s = d[d["g"] == value]
        kw = {"weights": s["w"].to_numpy()} if weighted else {}
        kw.update({"cluster": s["nested"].to_numpy()} if cluster else {})
        r = rdrobust_fit(s, "yf", fuzzy=s["take"].to_numpy(), **kw)
        detail = out["diagnostics"]["segments"]["g"][value]
        assert_segment_equals_rdrobust(effect, detail, r)
        np.testing.assert_allclose(detail["first_stage"]["jump"], r.tau_T.iloc[0, 0], rtol=RTOL)
        assert abs(effect["value"] - JUMPS[value]) < 4 * effect["std_error"]


def test_simulated_jumps_by_segment_are_recovered_and_the_wald_test_is_cochrans_q(runner, tmp_path, data):
    """Each segment's robust interval covers its own jump, not the others'; the column's test is Cochran's Q of
    the bias-corrected estimates with their robust SEs (recomputed here from those numbers), and rejects."""
    from scipy.stats import chi2

    d, path = data
    code, out, err = run(runner, write_spec(tmp_path, path, {}))
    assert code in (0, 1), err
    rows = segment_rows(out)
    for value, effect in rows.items():
        assert effect["ci_lower"] < JUMPS[value] < effect["ci_upper"], value
        others = [j for v, j in JUMPS.items() if v != value]
        assert not any(effect["ci_lower"] < j < effect["ci_upper"] for j in others), value
    details = out["diagnostics"]["segments"]["g"]
    b = np.array([details[v]["bias_corrected"]["estimate"] for v in "abc"])
    se = np.array([details[v]["bias_corrected"]["robust_std_error"] for v in "abc"])
    np.testing.assert_allclose(se, [rows[v]["std_error"] for v in "abc"], rtol=1e-12)
    pooled = (b / se ** 2).sum() / (1 / se ** 2).sum()
    q = float((((b - pooled) / se) ** 2).sum())
    test = out["diagnostics"]["heterogeneity"][0]
    assert test["segment"] == "g" and test["df"] == 2 and test["values_compared"] == 3
    np.testing.assert_allclose(test["statistic"], q, rtol=1e-10)
    np.testing.assert_allclose(test["p_value"], chi2.sf(q, 2), rtol=1e-8)
    assert test["p_value"] < 1e-6 and "bias-corrected" in test["test"] and "independent" in test["test"]
    assert any("the effect differs across the values of 'g'" in w for w in out["warnings"])
    # Holm over the column's three values
    p = sorted((rows[v]["p_value"], v) for v in "abc")
    holm, running = {}, 0.0
    for rank, (pv, v) in enumerate(p):
        running = max(running, min(1.0, (3 - rank) * pv))
        holm[v] = running
    for v in "abc":
        assert rows[v]["p_value_adjusted"] == pytest.approx(holm[v], rel=1e-12)
        assert rows[v]["inference"].endswith("p_value_adjusted: holm over 3 values of g")
    assert out["provenance"]["rdd_segments"]["g"].startswith("the engine: one GROUP BY")


def test_few_clusters_in_a_segment_take_the_headlines_wild_bootstrap(runner, tmp_path, data):
    """A segment with few clusters gets the headline's few-cluster path: its p-value and interval are those of a
    study of that segment alone (data.filter), the wild cluster bootstrap's; the test carries a caveat."""
    d, _ = data
    rng = np.random.default_rng(2)
    few = d.assign(cl=np.where(d["g"] == "a", "a" + pd.Series(rng.integers(0, 12, len(d))).astype(str), d["nested"]))
    path = tmp_path / "few.csv"
    few.to_csv(path, index=False)
    code, out, err = run(runner, write_spec(tmp_path, path, {"cluster": "cl"}))
    assert code in (0, 1), err
    a = segment_rows(out)["a"]
    assert "wild_cluster_bootstrap" in a["inference"]
    assert "wild_cluster_bootstrap" not in segment_rows(out)["b"]["inference"]
    code, alone, err = run(runner, write_spec(tmp_path, path, {"cluster": "cl"}, segments=[],
                                              data={"path": str(path), "filter": "g = 'a'"}))
    assert code in (0, 1), err
    for key in ("value", "std_error", "ci_lower", "ci_upper", "p_value"):
        assert a[key] == pytest.approx(alone["estimate"][key], rel=1e-9), key
    assert a["inference"].split(";")[0] == alone["estimate"]["inference"]
    assert "g=a" in out["diagnostics"]["heterogeneity"][0]["caveat"]


def test_clusters_spanning_segments_leave_the_test_not_computed(runner, tmp_path, data):
    _, path = data
    code, out, err = run(runner, write_spec(tmp_path, path, {"cluster": "spanning"}))
    assert code in (0, 1), err
    test = out["diagnostics"]["heterogeneity"][0]
    assert test["statistic"] is None and test["p_value"] is None
    assert "hold rows of several values of 'g'" in test["not_computed"]
    assert len(segment_rows(out)) == 3  # each segment's effect stands


def test_engine_group_by_equals_the_segments_rows(tmp_path, data):
    """``by_value.by_segment`` (one GROUP BY (segment, running value), weighted) gives what ``from_rows`` gives on
    each segment's complete rows: sums to 1e-12, the w^2-weighted means and scatters to 1e-9 of the scale."""
    from tests.test_rdd_collapsed import _table_of

    from causalcli.designs.rdd.by_value import by_segment, from_rows

    d, _ = data
    table = _table_of(tmp_path, d[["score", "y", "take", "w", "g"]])
    got = dict(by_segment(table, "score", ["y", "take"], "g", "w"))
    assert sorted(got) == ["a", "b", "c"]
    for value, bv in got.items():
        s = d[d["g"] == value].sort_values(["score", "y", "take"])
        want = from_rows(s["score"].to_numpy(), s[["y", "take"]].to_numpy(dtype=float), s["w"].to_numpy())
        np.testing.assert_array_equal(bv.values.x, want.values.x)
        np.testing.assert_array_equal(bv.values.counts, want.values.counts)
        assert_weighted_sums_equal(bv.values.weighted, want.values.weighted)


def test_a_segment_without_rows_above_the_cutoff_is_skipped_with_a_warning(runner, tmp_path, data):
    d, _ = data
    extra = pd.DataFrame({"score": np.linspace(-0.9, -0.1, 40), "g": "d", "take": 0.0, "w": 1.0, "nested": "d0",
                          "spanning": 0, "y": 1.0, "yf": 1.0})
    path = tmp_path / "below.csv"
    pd.concat([d, extra]).to_csv(path, index=False)
    code, out, err = run(runner, write_spec(tmp_path, path, {}))
    assert code in (0, 1), err
    assert sorted(segment_rows(out)) == ["a", "b", "c"]
    said = next(w for w in out["warnings"] if w.startswith("no effect reported"))
    assert "g=d (0 row(s) with 0 distinct value(s) of 'score' at or above the cutoff" in said
    assert out["diagnostics"]["segments"]["g"]["d"]["skipped"].startswith("0 row(s)")
    assert out["diagnostics"]["heterogeneity"][0]["values_compared"] == 3


def test_missing_segment_values_drop_the_rows_from_the_study(runner, tmp_path, data):
    d, _ = data
    holes = d.copy()
    holes.loc[holes.index[:50], "g"] = np.nan
    path = tmp_path / "holes.csv"
    holes.to_csv(path, index=False)
    code, out, err = run(runner, write_spec(tmp_path, path, {}))
    assert code in (0, 1), err
    assert out["n"]["dropped_missing_segments"] == 50 and out["n"]["used"] == len(d) - 50
    r = rdrobust_fit(holes.dropna(subset=["g"]), "y")
    np.testing.assert_allclose(out["estimate"]["value"], r.coef.iloc[0, 0], rtol=RTOL)


@pytest.mark.parametrize("segment,key", [("score", "design.running"), ("take", "design.fuzzy"), ("y", "outcome")])
def test_a_segment_that_is_a_role_of_the_design_is_refused(runner, tmp_path, data, segment, key):
    _, path = data
    code, _, err = run(runner, write_spec(tmp_path, path, {"fuzzy": "take"}, segments=[segment]), "validate")
    assert code == 2, err
    assert "segments[0]" in err and "Traceback" not in err
    assert key in err or "outcome" in err


def test_a_segment_of_too_many_values_exits_3(runner, tmp_path, data):
    _, path = data
    code, _, err = run(runner, write_spec(tmp_path, path, {}, segments=["spanning"]), "validate")
    assert code == 3 and "has 300 values (at most 50)" in err


def test_values_that_differ_past_the_sixth_digit_are_two_segments_from_the_engine(runner, tmp_path, data):
    """``1.0000001`` and ``1.0000002`` are two segments (their labels read back exactly, as the rows path of every
    design makes them), each from the engine's GROUP BY and equal to rdrobust on its rows."""
    d, _ = data
    path = tmp_path / "close.csv"
    d.assign(k=np.where(d["g"] == "a", 2.0, np.where(d["g"] == "b", 1.0000001, 1.0000002))).to_csv(path, index=False)
    code, out, err = run(runner, write_spec(tmp_path, path, {}, segments=["g", "k"], weights="w"))
    assert code in (0, 1), err
    assert sorted(segment_rows(out, "k")) == ["1.0000001", "1.0000002", "2"]
    assert out["provenance"]["rdd_segments"]["k"].startswith("the engine")
    s = d[d["g"] == "b"]
    r = rdrobust_fit(s, "y", weights=s["w"].to_numpy())
    assert_segment_equals_rdrobust(segment_rows(out, "k")["1.0000001"], out["diagnostics"]["segments"]["k"]["1.0000001"],
                                   r)
    assert segment_rows(out, "k")["2"]["value"] == pytest.approx(segment_rows(out)["a"]["value"], rel=1e-9)


@pytest.mark.engines
@pytest.mark.parametrize("engine", ["postgres", pytest.param("spark", marks=pytest.mark.xdist_group("spark"))])
def test_segments_on_an_engine_equal_the_file(runner, tmp_path, data, engine, request, monkeypatch):
    """The GROUP BY (segment value, running value), weighted (its window partitioned by both), runs in PostgreSQL
    and Spark as in DuckDB: the same segment effects."""
    import pyarrow as pa

    from tests.engines import engine_source

    d, path = data
    spec_path = write_spec(tmp_path, path, {}, weights="w")
    code_file, want, err = run(runner, spec_path)
    assert code_file in (0, 1), err
    table = pa.Table.from_pandas(d, preserve_index=False)
    source = engine_source(request, monkeypatch, engine, "rdd_segments", table)
    spec = yaml.safe_load(open(spec_path))
    spec["data"] = source
    engine_spec = tmp_path / "engine.yaml"
    engine_spec.write_text(yaml.safe_dump(spec))
    code, got, err = run(runner, str(engine_spec))
    assert code == code_file, err
    mine, theirs = segment_rows(got), segment_rows(want)
    assert sorted(mine) == sorted(theirs) == ["a", "b", "c"]
    for value in mine:
        for key in ("value", "std_error", "ci_lower", "ci_upper", "p_value_adjusted"):
            assert mine[value][key] == pytest.approx(theirs[value][key], rel=1e-9), (value, key)
    assert got["provenance"]["rdd_segments"]["g"].startswith("the engine")
