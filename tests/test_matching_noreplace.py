"""Matching without replacement (``replace: false``) against R's ``Match(replace = FALSE)``.

Fixtures: ``tests/reference/matching/match_noreplace.R`` (Matching 4.10-8) on a simulated,
tie-free data set (``noreplace_sim.csv``: every setting gave the same matches under five
RNG seeds, ``tie_free``). Without replacement Match computes no Abadie-Imbens ``se``; the
script takes it from Matching's own ``RmatchLoop(version = "standard")`` on the same
matches (``se_ai``) and keeps Match's ``se.standard``. Estimates and SEs are compared to
1e-6 relative: both sides sum the same few hundred doubles, and the score comes from two
logistic fits that agree to about 1e-9 (see ``test_match_r.py``).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from causalcli.study.run import run_study

REF = Path(__file__).parent / "reference" / "matching"
SIM = pd.read_csv(REF / "noreplace_sim.csv")
ROWS = pd.read_csv(REF / "match_noreplace.csv", keep_default_na=False, na_values=["NA"])
PAIRS = pd.read_csv(REF / "match_noreplace_pairs.csv", keep_default_na=False, na_values=["NA"])
COVS = ["x1", "x2", "x3", "g"]


def _id(r) -> str:
    cal = "-" if np.isnan(r["caliper"]) else r["caliper"]
    return f"Matching-4.10.8:replace=FALSE:{r['estimand']}:M{r['neighbors']}:caliper={cal}:{r['distance']}:" \
           f"exact={r['exact'] or '-'}"


CASES = [r for _, r in ROWS.iterrows()]


def _spec(path: str, r) -> dict:
    options = {"replace": False, "neighbors": int(r["neighbors"]), "distance": r["distance"],
               "exact": [r["exact"]] if r["exact"] else []}
    if not np.isnan(r["caliper"]):
        options["caliper"] = float(r["caliper"])
    return {"version": 1, "data": {"path": path}, "treatment": "treat", "outcome": "y", "covariates": COVS,
            "design": {"method": "matching", "estimand": r["estimand"].lower(), "options": options}, "refute": []}


def test_fixture_is_tie_free_and_match_computes_no_ai_se_without_replacement():
    assert ROWS["tie_free"].astype(str).str.upper().eq("TRUE").all()
    assert ROWS["se_match_is_null"].astype(str).str.upper().eq("TRUE").all()
    assert len(ROWS) == 36


@pytest.mark.parametrize("r", CASES, ids=_id)
def test_without_replacement_equals_r_match(r):
    """Matches, estimate, AI SE (R's convention: dropped units counted) and se.standard equal R's."""
    from causalcli.designs.matching.nearest import mahalanobis_coordinates, match
    from causalcli.models.logit import fit_logit

    X = SIM[COVS].to_numpy(float)
    t = SIM["treat"].to_numpy().astype(bool)
    y = SIM["y"].to_numpy(float)
    score = fit_logit(X, t.astype(float)).linear_predictor
    U = mahalanobis_coordinates(X) if r["distance"] == "mahalanobis" else None
    strata = SIM["g"].to_numpy() if r["exact"] else None
    cal = None if np.isnan(r["caliper"]) else float(r["caliper"])
    m = match(y, t, score, estimand=r["estimand"].lower(), neighbors=int(r["neighbors"]), caliper=cal,
              strata=strata, U=U, replace=False)
    assert m.ties_broken == 0
    assert m.estimate == pytest.approx(r["estimate"], rel=1e-6)
    assert m.std_error == pytest.approx(r["se_ai"], rel=1e-6)
    assert m.std_error_standard == pytest.approx(r["se_standard"], rel=1e-6)
    assert m.n_dropped == int(r["n_dropped"])
    # every control is used at most once in each direction, and the pairs are R's
    sel = PAIRS[(PAIRS.estimand == r["estimand"]) & (PAIRS.neighbors == r["neighbors"])
                & (PAIRS.distance == r["distance"]) & (PAIRS.exact == r["exact"])
                & ((PAIRS.caliper.isna() & np.isnan(r["caliper"])) | (PAIRS.caliper == r["caliper"]))]
    assert len(sel) == int(r["n_pairs"])
    assert m.match_weights.max() <= 1.0 + 1e-12 or r["estimand"] == "ATE"
    if r["estimand"] != "ATE":
        used = sel.control if r["estimand"] == "ATT" else sel.treated
        assert used.is_unique
        # each unit's total weight as a match (K) is R's: the same controls (treated for the ATC) were used
        k = np.bincount(used.to_numpy(int), weights=sel.weight.to_numpy(float), minlength=t.size)
        np.testing.assert_allclose(m.match_weights, k, atol=1e-12)


@pytest.mark.parametrize("r", CASES[::5], ids=_id)
def test_whole_study_without_replacement_equals_r_match(r):
    path = str(REF / "noreplace_sim.csv")
    res = run_study(_spec(path, r))
    diag = res.diagnostics["matching"]
    assert res.estimate.value == pytest.approx(r["estimate"], rel=1e-6)
    assert diag["replace"] is False
    assert diag["std_error_r_match"] == pytest.approx(r["se_standard"], rel=1e-6)
    assert res.n["dropped_unmatched"] == int(r["n_dropped"])
    # no derivation of the estimated-score adjustment without replacement: unadjusted, and said so
    assert res.estimate.inference == "abadie_imbens"
    assert diag["std_error_ai2016"] is None and "without replacement" in diag["std_error_ai2016_note"]
    if int(r["n_dropped"]) == 0:
        assert res.estimate.std_error == pytest.approx(r["se_ai"], rel=1e-6)
    else:
        assert any("without replacement" in w and "dropped" in w for w in res.warnings)
    assert not any("tie" in w for w in res.warnings)


def test_ties_are_broken_by_data_order_and_warned(tmp_path):
    """Two controls equidistant from the first treated unit: the earlier row is its match, the
    later one goes to the next treated unit, and the study warns that R would randomise."""
    from causalcli.designs.matching.nearest import match

    score = np.array([0.0, 1.0, -1.0, 0.05, 5.0, 6.0])
    t = np.array([1, 0, 0, 1, 0, 0], dtype=bool)
    y = np.array([10.0, 1.0, 2.0, 20.0, 0.0, 0.0])
    m = match(y, t, score, estimand="att", neighbors=1, replace=False)
    assert m.ties_broken == 1
    # unit 0 takes row 1 (score +1, first in data order); unit 3 then takes row 2 (score -1)
    assert m.estimate == pytest.approx(((10 - 1) + (20 - 2)) / 2)
    rng = np.random.default_rng(4)
    n = 400
    x = np.round(rng.normal(size=n), 1)  # rounded: many exactly tied scores
    tt = (rng.uniform(size=n) < 1 / (1 + np.exp(1 - x))).astype(int)
    pd.DataFrame({"t": tt, "x": x, "y": x + tt + rng.normal(size=n)}).to_csv(tmp_path / "d.csv", index=False)
    spec = {"version": 1, "data": {"path": str(tmp_path / "d.csv")}, "treatment": "t", "outcome": "y",
            "covariates": ["x"], "refute": [], "design": {"method": "matching", "options": {"replace": False}}}
    res = run_study(spec)
    assert any("first in data order were kept" in w and "at random" in w for w in res.warnings)
    assert "broken by data order" in res.diagnostics["matching"]["ties"]
    again = run_study(spec)
    assert again.estimate.value == res.estimate.value


def test_running_out_of_controls_drops_the_last_units_in_data_order():
    """More treated than controls: the first treated units (data order) get the controls."""
    from causalcli.designs.matching.nearest import match

    rng = np.random.default_rng(2)
    score = rng.normal(size=30)
    t = np.arange(30) < 20  # 20 treated, 10 controls
    y = rng.normal(size=30)
    m = match(y, t, score, estimand="att", neighbors=1, replace=False)
    assert m.n_focal_matched == 10 and m.n_dropped == 10
    assert list(m.dropped) == list(range(10, 20))


def test_nothing_to_match_exits_4_and_refuters_run_without_replacement(runner, tmp_path):
    """Exact strata with no control beside any treated unit: Match returns NA; here exit 4 with the
    reason. On matchable data the refuters refit without replacement too."""
    import yaml

    from tests.conftest import run_json

    rng = np.random.default_rng(3)
    n = 200
    x = rng.normal(size=n)
    t = (np.arange(n) % 2).astype(int)
    pd.DataFrame({"t": t, "x": x, "grp": np.where(t == 1, "a", "b"), "y": rng.normal(size=n)}).to_csv(
        tmp_path / "d.csv", index=False)
    (tmp_path / "s.yaml").write_text(yaml.safe_dump({
        "version": 1, "data": {"path": "d.csv"}, "treatment": "t", "outcome": "y", "covariates": ["x"],
        "refute": [], "design": {"method": "matching", "options": {"replace": False, "exact": ["grp"]}}}))
    code, _, res = run_json(runner, [str(tmp_path / "s.yaml")])
    assert code == 4
    assert "enough candidate matches" in res.stderr
    spec = _spec(str(REF / "noreplace_sim.csv"), CASES[0])
    spec["refute"] = [{"placebo_treatment": {"simulations": 5}}, {"data_subset": {"simulations": 5}}]
    out = run_study(spec)
    assert all(r.new_effect is not None for r in out.refutations)
