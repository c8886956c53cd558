"""The experiment design against tea-tasting 1.14 and statsmodels' multiple-testing corrections.

Sources:

* tea-tasting (https://github.com/e10v/tea-tasting), ``Experiment.analyze`` with ``Mean`` and
  ``RatioOfMeans`` metrics, with and without CUPED covariates: Welch t, the delta method for ratios
  (Deng, Knoblich and Lu 2018), CUPED pooled over the two arms compared (Deng, Xu, Kohavi and Walker
  2013) and the relative effect's interval on the log scale. Data: ``users(6000, seed=7, arms=3)`` of
  ``simulated_users.py``; raw output and versions in ``tea_tasting_analyze.json``.
* statsmodels ``multipletests``: Holm (1979) and Benjamini-Hochberg (1995) adjusted p-values; raw
  output and version in ``statsmodels_multipletests.json``.

``make_peer_fixtures.py`` wrote both fixtures (README.md says how to regenerate them). The fixture tests
run without the peers; the live tests (tea-tasting marked ``peer``) recompute them in the same run.
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import pytest

from causalcli.inference.multiplicity import adjust
from causalcli.study.run import run_study
from tests.reference.experiment.simulated_users import spec_for, users

HERE = Path(__file__).resolve().parent
TEA = json.loads((HERE / "tea_tasting_analyze.json").read_text())
STATSMODELS = json.loads((HERE / "statsmodels_multipletests.json").read_text())

# tea-tasting computes the same formulas from DuckDB/pandas variances in double precision; both sides
# agree to ~1e-12, the issue asks 1e-6.
PEER_RTOL = 1e-6
# Holm and BH adjusted p-values are products and running minima/maxima of the same doubles on both sides.
ADJUST_RTOL = 1e-12


def effects(result) -> dict:
    return {e.label: e for e in result.effects}


def _ours(tmp_path: Path):
    """causalcli on the fixture's data, with tea-tasting's settings (log-scale relative CI, no correction)."""
    df = users(**{k: TEA["data"][k] for k in ("n", "seed", "arms")})
    path = tmp_path / "u.csv"
    df.to_csv(path, index=False)
    return df, path, effects(run_study(spec_for(path, options={"relative_ci": "log"}, correction="none")))


def _assert_equal_to_tea_tasting(ours: dict, rows_by_arm) -> None:
    """Every metric's absolute and relative effect, interval and p-value; ``rows_by_arm``: (arm, rows)."""
    checked = 0
    for arm, rows in rows_by_arm:
        for row in rows:
            m = row["metric"]
            a = ours[f"{m}/{arm}/abs"]
            r = ours[f"{m}/{arm}/rel"]
            assert a.value == pytest.approx(row["effect_size"], rel=PEER_RTOL)
            assert a.ci_lower == pytest.approx(row["effect_size_ci_lower"], rel=PEER_RTOL)
            assert a.ci_upper == pytest.approx(row["effect_size_ci_upper"], rel=PEER_RTOL)
            assert a.p_value == pytest.approx(row["pvalue"], rel=PEER_RTOL)
            assert r.value == pytest.approx(row["rel_effect_size"], rel=PEER_RTOL)
            assert r.ci_lower == pytest.approx(row["rel_effect_size_ci_lower"], rel=PEER_RTOL)
            assert r.ci_upper == pytest.approx(row["rel_effect_size_ci_upper"], rel=PEER_RTOL)
            checked += 1
    assert checked == 8  # 4 metrics x 2 treatment arms


def test_fixture_data_is_the_data_tea_tasting_analysed():
    """The generator still makes, byte for byte, the CSV tea-tasting was given (else the fixture is stale)."""
    text = users(**{k: TEA["data"][k] for k in ("n", "seed", "arms")}).to_csv(index=False)
    assert hashlib.sha256(text.encode()).hexdigest() == TEA["data"]["csv_sha256"]


@pytest.mark.parametrize("source", ["pandas", "ibis"])
def test_equal_to_tea_tasting_fixture(tmp_path, source):
    """tea-tasting 1.14 (committed output): Welch t, delta method, CUPED pooled over the two arms compared,
    log-scale relative CI, 3 arms; from a pandas frame and through Ibis + DuckDB."""
    _, _, ours = _ours(tmp_path)
    rows = TEA["results"][source]
    _assert_equal_to_tea_tasting(ours, [(key.split("-")[1], rows[key]) for key in sorted(rows)])


def _tea(df):
    import tea_tasting as tt

    exp = tt.Experiment(variant="variant", metrics={
        "revenue": tt.Mean("revenue"),
        "revenue_cuped": tt.Mean("revenue", "revenue_covariate"),
        "orders_per_session": tt.RatioOfMeans("orders", "sessions"),
        "orders_per_session_cuped": tt.RatioOfMeans("orders", "sessions", "orders_covariate", "sessions_covariate"),
    })
    return exp.analyze(df, control=0, all_variants=True)


@pytest.mark.peer
@pytest.mark.parametrize("source", ["csv", "ibis"])
def test_equal_to_tea_tasting_means_ratios_cuped_and_log_relative(tmp_path, source):
    """tea-tasting 1.14 live (Welch t, delta method, CUPED pooled over the two arms, log-scale relative CI), 3 arms."""
    df, path, ours = _ours(tmp_path)
    if source == "ibis":
        import ibis

        con = ibis.duckdb.connect()
        theirs = _tea(con.read_csv(str(path)))
    else:
        theirs = _tea(df)
    _assert_equal_to_tea_tasting(ours, [(arm, res.to_dicts()) for (_, arm), res in theirs.items()])


def test_holm_and_bh_match_statsmodels_fixture():
    """statsmodels' multipletests (committed output): Holm and Benjamini-Hochberg adjusted p-values."""
    p = STATSMODELS["p_values"]
    for ours, theirs in (("holm", "holm"), ("bh", "fdr_bh")):
        assert adjust(p, ours) == pytest.approx(STATSMODELS["results"][theirs]["pvals_corrected"], rel=ADJUST_RTOL)


def test_holm_and_bh_match_statsmodels():
    """statsmodels' multipletests computed live."""
    from statsmodels.stats.multitest import multipletests

    p = [0.01, 0.04, 0.03, 0.005, 0.2, 0.5]
    assert adjust(p, "holm") == pytest.approx(list(multipletests(p, method="holm")[1]), rel=ADJUST_RTOL)
    assert adjust(p, "bh") == pytest.approx(list(multipletests(p, method="fdr_bh")[1]), rel=ADJUST_RTOL)
    assert adjust(p, "none") == p
