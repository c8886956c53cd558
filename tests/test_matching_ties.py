"""Ties at scale (issue 15, point 2): matches as runs of the sorted controls, no list of pairs.

Above ``runs.PAIRS_LIMIT`` pairs the estimate, the control weights and the Abadie-Imbens variance
come from prefix sums over the controls in score order; they must equal the all-pairs computation.
"""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest

from causalcli.designs.matching import nearest, runs
from causalcli.study import run_study


def _coarse(n: int = 2000, seed: int = 3, levels: int = 10):
    """A score with few distinct values (heavy ties) and outcomes far from 0 (cancellation in sums)."""
    rng = np.random.default_rng(seed)
    score = np.round(rng.standard_normal(n) * levels / 4) / (levels / 4)
    treated = rng.random(n) < 1.0 / (1.0 + np.exp(-score))
    y = 5e4 + 800.0 * score + 3.0 * treated + 50.0 * rng.standard_normal(n)
    return y, treated, score


def _both(monkeypatch, **kwargs):
    """``match`` listing all pairs, then through runs only (limit 0)."""
    y, treated, score = _coarse()
    pairs = nearest.match(y, treated, score, **kwargs)
    pairs_point = nearest.match_att_point(y, treated, score, neighbors=kwargs.get("neighbors", 1),
                                          caliper=kwargs.get("caliper"))
    monkeypatch.setattr(runs, "PAIRS_LIMIT", 0)
    by_runs = nearest.match(y, treated, score, **kwargs)
    runs_point = nearest.match_att_point(y, treated, score, neighbors=kwargs.get("neighbors", 1),
                                         caliper=kwargs.get("caliper"))
    return pairs, by_runs, pairs_point, runs_point


@pytest.mark.parametrize("estimand", ["att", "atc"])
@pytest.mark.parametrize("neighbors", [1, 4])
@pytest.mark.parametrize("caliper", [None, 0.3])
def test_runs_equal_all_pairs_under_heavy_ties(monkeypatch, estimand, neighbors, caliper):
    pairs, by_runs, pairs_point, runs_point = _both(monkeypatch, estimand=estimand, neighbors=neighbors,
                                                    caliper=caliper)
    assert pairs.pairs is not None and by_runs.pairs is None  # the second never listed the pairs
    assert by_runs.n_pairs == pairs.n_pairs == pairs.pairs[0].size > 20 * pairs.n_focal_matched
    for field in ("estimate", "estimate_unadjusted", "std_error", "std_error_matched", "std_error_standard"):
        assert getattr(by_runs, field) == pytest.approx(getattr(pairs, field), rel=1e-10, abs=1e-10), field
    assert runs_point == pytest.approx(pairs_point, rel=1e-10, abs=1e-10)
    np.testing.assert_allclose(by_runs.match_weights, pairs.match_weights, rtol=1e-12, atol=1e-12)
    # controls no treated unit uses keep an exact 0 (they count as unused)
    assert np.array_equal(by_runs.match_weights > 0, pairs.match_weights > 0)
    np.testing.assert_array_equal(by_runs.focal_matched, pairs.focal_matched)
    np.testing.assert_array_equal(by_runs.dropped, pairs.dropped)
    np.testing.assert_allclose(by_runs.differences, pairs.differences, rtol=1e-10, atol=1e-8)
    np.testing.assert_allclose(by_runs.contrasts, pairs.contrasts, rtol=1e-10, atol=1e-8)


def test_runs_are_exact_at_the_tolerance_boundary():
    """The runs hold exactly the controls Match's comparison admits, on a score with near-ties."""
    rng = np.random.default_rng(7)
    n = 3000
    score = rng.integers(0, 40, n) * 0.05 + rng.choice([0.0, 1e-9, 3e-3, -3e-3], n)
    treated = rng.random(n) < 0.3
    xs, _ = nearest._standardise(score)
    tr, c = np.flatnonzero(treated), np.flatnonzero(~treated)
    c_sorted, lo, cnt = runs.match_runs(tr, c, xs, score, 2, math.inf, False, 1e-5)
    for i in range(0, tr.size, 37):
        d2 = (xs[c] - xs[tr[i]]) ** 2
        expected = np.sort(c[d2 <= np.sort(d2)[1] + 1e-5])
        np.testing.assert_array_equal(np.sort(c_sorted[lo[i]:lo[i] + cnt[i]]), expected)


@pytest.mark.parametrize("estimand", ["att", "ate"])
def test_heavy_ties_warn_and_count_the_matched_pairs(tmp_path, estimand):
    rng = np.random.default_rng(0)
    n = 1500
    x = rng.integers(0, 3, n).astype(float)  # a score with three distinct values
    t = (rng.random(n) < 1.0 / (1.0 + np.exp(-(x - 1.5)))).astype(int)
    y = x + t + rng.normal(size=n)
    pd.DataFrame({"t": t, "y": y, "x": x}).to_csv(tmp_path / "ties.csv", index=False)
    spec = {"version": 1, "data": {"path": str(tmp_path / "ties.csv")}, "treatment": "t", "outcome": "y",
            "covariates": ["x"], "design": {"method": "matching", "estimand": estimand}, "refute": [], "seed": 0}
    res = run_study(spec)
    pairs = res.n["matched_pairs"]
    assert pairs > 100 * t.sum()
    # every treated unit is matched to all controls with its value of x (and, for the ATE, every control to
    # all treated units with its value)
    within = sum(int(((x == v) & (t == 1)).sum() * ((x == v) & (t == 0)).sum()) for v in (0, 1, 2))
    assert pairs == (within if estimand == "att" else 2 * within)
    warning = next(w for w in res.warnings if w.startswith("ties within the tolerance"))
    assert f"{pairs:,} matched pairs" in warning and "design.options.tolerance" in warning
    # the ATE's focal units are all units: "per unit", never "per all unit"
    assert ("matches per treated unit" if estimand == "att" else "matches per unit for") in warning
    note = res.diagnostics["matching"]["std_error_note"]
    assert ("over the matched treated units" if estimand == "att" else "over all the matched units") in note


def test_no_tie_warning_when_matches_are_near_neighbors(tmp_path):
    rng = np.random.default_rng(1)
    n = 400
    x = rng.normal(size=n)
    t = (rng.random(n) < 1.0 / (1.0 + np.exp(-x))).astype(int)
    pd.DataFrame({"t": t, "y": x + t + rng.normal(size=n), "x": x}).to_csv(tmp_path / "a.csv", index=False)
    spec = {"version": 1, "data": {"path": str(tmp_path / "a.csv")}, "treatment": "t", "outcome": "y",
            "covariates": ["x"], "design": {"method": "matching", "estimand": "att"}, "refute": [], "seed": 0}
    res = run_study(spec)
    assert "matched_pairs" not in res.n
    assert not any(w.startswith("ties within the tolerance") for w in res.warnings)


@pytest.mark.parametrize("levels", [3, 50, 10**9])
def test_stable_argsort_equals_numpy_stable_sort(levels):
    """The fast sort that orders the candidates gives exactly numpy's stable order, ties included."""
    from causalcli.designs.matching.runs import stable_argsort

    rng = np.random.default_rng(levels)
    values = rng.integers(0, levels, 20_000).astype(np.float64) / 7.0
    values[::97] = -0.0  # equal to 0.0 for a sort
    values[::89] = 0.0
    assert np.array_equal(stable_argsort(values), np.argsort(values, kind="stable"))
    smooth = rng.normal(size=5_000)
    assert np.array_equal(stable_argsort(smooth), np.argsort(smooth, kind="stable"))
