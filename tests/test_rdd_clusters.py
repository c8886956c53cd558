"""SPEC v1.1 "Inference with few clusters" for method: rdd: ``diagnostics.clusters`` and the ``clusters`` check
under ``design.cluster``, the counts against a direct pandas count of the rows within [c - h_left, c + h_right]
(the running variable is continuous, so no row sits on a window's edge and the closed interval equals the rows of
positive triangular weight), and the CR1 standard error against rdrobust run live on the same data (1e-6 relative,
as tests/test_rdd.py: the same algorithm in double precision).
"""

from __future__ import annotations

import json
import warnings

import numpy as np
import pandas as pd
import pytest
import yaml

from tests.conftest import invoke

CUTOFF = 0.05


def simulated_rd(n_clusters: int, seed: int, n: int = 4000) -> pd.DataFrame:
    """A sharp RD whose clusters sit along the running variable (as schools around a distance), each its rows
    spread about its own centre with its own shock: the clusters far from the cutoff have no row within the
    bandwidth, and some have rows on both sides of it."""
    rng = np.random.default_rng(seed)
    cluster = rng.integers(0, n_clusters, n)
    centre = rng.uniform(-1, 1, n_clusters)
    x = centre[cluster] + rng.normal(0, 0.15, n)
    shock = rng.normal(0, 0.2, n_clusters)[cluster]
    y = 1 + x + 0.5 * (x >= CUTOFF) + shock + rng.normal(0, 0.3, n)
    return pd.DataFrame({"x": x, "y": y, "county": [f"c{g:03d}" for g in cluster], "row_id": np.arange(n)})


def run(runner, folder, d: pd.DataFrame, cluster: str | None, **options) -> tuple[int, dict, str]:
    path = folder / "rd.csv"
    d.to_csv(path, index=False)
    design = {"method": "rdd", "running": "x", "cutoff": CUTOFF, **({"cluster": cluster} if cluster else {}),
              **({"options": options} if options else {})}
    spec = folder / "rd.yaml"
    spec.write_text(yaml.safe_dump({"version": 1, "name": "rd", "data": {"path": str(path)}, "outcome": "y",
                                    "design": design}))
    res = invoke(runner, ["estimate", str(spec), "--format", "json", "--quiet", "--no-refute"])
    return res.exit_code, (json.loads(res.stdout) if res.stdout.strip() else {}), res.stderr


def direct_counts(d: pd.DataFrame, out: dict, cluster: str) -> dict:
    """The clusters of the rows within [c - h_left, c + h_right], counted with pandas from the reported bandwidth."""
    bw = out["diagnostics"]["bandwidth"]
    below = d[(d.x >= CUTOFF - bw["h_left"]) & (d.x < CUTOFF)]
    above = d[(d.x >= CUTOFF) & (d.x <= CUTOFF + bw["h_right"])]
    return {"n_clusters": pd.concat([below, above])[cluster].nunique(), "n_clusters_all": d[cluster].nunique(),
            "clusters_below": below[cluster].nunique(), "clusters_above": above[cluster].nunique(),
            "rows_within_h": len(below) + len(above)}


def clusters_check(out: dict) -> dict:
    return next(c for c in out["checks"] if c["name"] == "clusters")


def test_twenty_clusters_are_counted_within_the_bandwidth_and_bring_the_wild_bootstrap_in(runner, tmp_path):
    d = simulated_rd(20, seed=1)
    code, out, err = run(runner, tmp_path, d, "county")
    assert code == 0, err  # the check is not failed but answered: the bootstrap's inference replaces CR1's
    diag = out["diagnostics"]["clusters"]
    expected = direct_counts(d, out, "county")
    assert {k: diag[k] for k in expected} == expected
    # the bandwidth leaves some clusters out, and those with rows on both sides count once in n_clusters
    assert diag["n_clusters"] < diag["n_clusters_all"] == 20
    assert diag["n_clusters"] < diag["clusters_below"] + diag["clusters_above"]
    assert diag["rows_within_h"] == out["n"]["within_h_below"] + out["n"]["within_h_above"]
    assert diag["thresholds"] == {"clusters": 42, "per_side": 6, "webb_weights_below": 12}
    assert diag["one_row_per_cluster"] is False
    check = clusters_check(out)
    assert check["passed"] is None and out["passed"]
    detail = check["detail"]
    assert "\n" not in detail
    assert detail.startswith(f"{diag['n_clusters']} clusters of 'county' within the bandwidth "
                             f"({diag['clusters_below']} below, {diag['clusters_above']} at or above the cutoff; 20 in all)")
    for needle in ("too narrow", "wild cluster bootstrap", "rademacher weights", "999 draws", "CR1 robust t"):
        assert needle in detail
    # the headline's p-value and interval are the bootstrap's; its standard error and the CR1 numbers stay
    est, wild, analytic = out["estimate"], diag["wild"], diag["analytic"]
    assert est["inference"] == "rd_robust_bias_corrected_clustered+wild_cluster_bootstrap_rademacher"
    assert diag["method"] == "wild_cluster_bootstrap_rademacher"
    assert (est["p_value"], est["ci_lower"], est["ci_upper"]) == (wild["p_value"], wild["ci_lower"], wild["ci_upper"])
    assert est["std_error"] == diag["robust_crv1_se"]
    assert analytic["inference"] == "rd_robust_bias_corrected_clustered"
    bc, se = out["diagnostics"]["bias_corrected"]["estimate"], diag["robust_crv1_se"]
    np.testing.assert_allclose([analytic["ci_lower"], analytic["ci_upper"]], [bc - 1.959964 * se, bc + 1.959964 * se],
                               rtol=1e-6)
    assert wild["ci_lower"] < bc < wild["ci_upper"]
    assert wild["clusters_drawn"] >= diag["n_clusters"] and wild["draws"] == 999 and not wild["enumerated"]
    # the bandwidth-sensitivity effects take their intervals from the same bootstrap, the 1x one the headline's
    assert {e["inference"] for e in out["effects"]} == {est["inference"]}
    same = next(e for e in out["effects"] if e["label"].startswith("bandwidth 1x"))
    assert (same["p_value"], same["ci_lower"], same["ci_upper"]) == (est["p_value"], est["ci_lower"], est["ci_upper"])
    assert all(e["ci_lower"] < e["value"] < e["ci_upper"] for e in out["effects"])
    assert len({e["ci_lower"] for e in out["effects"]}) == len(out["effects"])  # each refitted at its own bandwidth


def test_two_clusters_leave_no_inference(runner, tmp_path):
    rng = np.random.default_rng(2)
    x = rng.uniform(-1, 1, 2000)  # both counties on both sides of the cutoff
    d = pd.DataFrame({"x": x, "y": x + 0.5 * (x >= CUTOFF) + rng.normal(0, 0.3, x.size),
                      "county": rng.choice(["a", "b"], x.size)})
    code, out, err = run(runner, tmp_path, d, "county", bandwidth=0.5)
    assert code == 1, err
    est = out["estimate"]
    assert est["std_error"] is None and est["p_value"] is None and est["ci_lower"] is None
    assert est["inference"] == "none" and out["diagnostics"]["clusters"]["method"] == "none"
    check = clusters_check(out)
    assert check["passed"] is False and "no inference is possible: 2 clusters" in check["detail"]
    assert any(w.startswith("no standard error, p-value or interval: 2 clusters") for w in out["warnings"])


def test_two_hundred_clusters_pass_the_check(runner, tmp_path):
    d = simulated_rd(200, seed=4)
    code, out, err = run(runner, tmp_path, d, "county")
    assert code == 0, err
    diag = out["diagnostics"]["clusters"]
    expected = direct_counts(d, out, "county")
    assert {k: diag[k] for k in expected} == expected
    assert diag["n_clusters"] >= 42 and min(diag["clusters_below"], diag["clusters_above"]) >= 6
    assert clusters_check(out)["passed"] is True


@pytest.mark.parametrize("kernel,bandwidth", [("uniform", "msetwo"), ("epanechnikov", 0.3)])
def test_counts_equal_a_direct_count_for_other_kernels_and_bandwidths(runner, tmp_path, kernel, bandwidth):
    d = simulated_rd(60, seed=5)
    code, out, err = run(runner, tmp_path, d, "county", kernel=kernel, bandwidth=bandwidth)
    assert code in (0, 1), err
    diag = out["diagnostics"]["clusters"]
    expected = direct_counts(d, out, "county")
    assert {k: diag[k] for k in expected} == expected
    passes = expected["n_clusters"] >= 42 and min(expected["clusters_below"], expected["clusters_above"]) >= 6
    assert clusters_check(out)["passed"] is (True if passes else None)  # None: the wild bootstrap answered it
    assert ("wild" in out["estimate"]["inference"]) is not passes


@pytest.mark.peer
@pytest.mark.parametrize("n_clusters", [20, 200])
def test_crv1_se_equals_rdrobusts_conventional_clustered_se(runner, tmp_path, n_clusters):
    from rdrobust import rdrobust

    d = simulated_rd(n_clusters, seed=6)
    code, out, err = run(runner, tmp_path, d, "county")
    assert code in (0, 1), err
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # rdrobust's own few-clusters warning
        r = rdrobust(d.y.to_numpy(), d.x.to_numpy(), c=CUTOFF, cluster=d.county.to_numpy())
    diag = out["diagnostics"]["clusters"]
    np.testing.assert_allclose(out["diagnostics"]["bandwidth"]["h_left"], r.bws.iloc[0, 0], rtol=1e-6)
    np.testing.assert_allclose(diag["crv1_se"], r.se.iloc[0, 0], rtol=1e-6)  # Conventional
    np.testing.assert_allclose(diag["robust_crv1_se"], r.se.iloc[2, 0], rtol=1e-6)  # Robust
    assert diag["robust_crv1_se"] == out["estimate"]["std_error"]


def test_a_selector_without_a_finite_bandwidth_says_why_and_what_to_do(runner, tmp_path):
    code, out, err = run(runner, tmp_path, simulated_rd(2, seed=2), "county")  # one county on each side
    assert code == 3
    assert err.strip().endswith("key 'design.options.bandwidth': the bandwidth selector 'mserd' found no finite "
                                "bandwidth (design.cluster: 1 cluster(s) below the cutoff and 1 at or above it; the "
                                "selector's clustered variance needs at least 2 on each side): give "
                                "options.bandwidth as a number")


def test_one_cluster_per_row_is_said_plainly(runner, tmp_path):
    d = simulated_rd(20, seed=7)
    code, out, err = run(runner, tmp_path, d, "row_id")
    assert code == 0, err  # thousands of one-row clusters: HC1, which holds its size with that many
    diag = out["diagnostics"]["clusters"]
    assert diag["one_row_per_cluster"] is True
    assert diag["n_clusters"] == diag["rows_within_h"] and diag["n_clusters_all"] == len(d)
    check = clusters_check(out)
    assert check["passed"] is True
    assert check["detail"].startswith("every row used has its own value of 'row_id' (design.cluster), so each row "
                                      "is its own cluster")
    assert any(w.startswith("every row used has its own value of 'row_id'") for w in out["warnings"])


def test_without_cluster_there_is_neither_diagnostic_nor_check(runner, tmp_path):
    code, out, err = run(runner, tmp_path, simulated_rd(20, seed=1), None)
    assert code in (0, 1), err  # the nn variance's narrower intervals fail bandwidth_sensitivity here
    assert "clusters" not in out["diagnostics"]
    assert "clusters" not in {c["name"] for c in out["checks"]}
