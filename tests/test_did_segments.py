"""Difference-in-differences effects by the top-level ``segments`` (causalcli/designs/did/segments.py).

Each segment's effect is the headline's estimator fitted on that segment's units: pinned to pyfixest (TWFE, 2x2)
and diff-diff (Callaway-Sant'Anna) fitted on the segment's rows, with the tolerances of tests/test_did.py; to
our own fit of the segment alone (data.filter) for every estimator, few-cluster inference included; and to a
simulation with known effects by segment. The Wald test of equal effects is recomputed by hand.
"""

from __future__ import annotations

import warnings

import numpy as np
import pandas as pd
import pytest

from causalcli.errors import DataError, SpecError
from causalcli.study.run import run_study
from tests.conftest import invoke
from tests.reference.did.sources import MPDTA, cs_spec
from tests.test_did import COEF_TOL, SE_RTOL, _pf

EFFECTS = {"de": 1.0, "fr": 2.0, "us": -0.5}  # the simulation's effect in each country


def panel(units: int = 600, periods: int = 6, seed: int = 1, cohorts=(4,), never: float = 0.4,
          effects: dict = EFFECTS) -> pd.DataFrame:
    """Unit and period effects, a covariate, effect ``effects[country]`` from the cohort's first period on;
    ``state`` nested in country (10 states per country), ``mixed`` a cluster that spans countries."""
    rng = np.random.default_rng(seed)
    names = list(effects)
    country = rng.choice(names, size=units)
    g = np.where(rng.uniform(size=units) < never, 0, rng.choice(cohorts, size=units))
    alpha, lam = rng.normal(size=units), rng.normal(size=periods + 1)
    unit, time = np.repeat(np.arange(units), periods), np.tile(np.arange(1, periods + 1), units)
    treated = (g[unit] > 0) & (time >= g[unit])
    x = rng.normal(size=unit.size)
    effect = np.array([effects[c] for c in country])[unit]
    y = alpha[unit] + lam[time] + 0.5 * x + treated * effect + rng.normal(size=unit.size)
    state = np.array([f"{c}{i % 10}" for i, c in enumerate(country)])
    return pd.DataFrame({"unit": unit, "time": time, "g": g[unit], "d": treated.astype(int), "x": x, "y": y,
                         "country": country[unit], "state": state[unit], "mixed": (np.arange(units) % 40)[unit]})


def spec_of(path, estimator: str = "twfe", **design) -> dict:
    return {"version": 1, "data": {"path": str(path)}, "treatment": "d", "outcome": "y", "segments": ["country"],
            "design": {"method": "did", "unit": "unit", "time": "time", "estimator": estimator, **design},
            "refute": []}


@pytest.fixture(scope="module")
def sim(tmp_path_factory):
    df = panel()
    path = tmp_path_factory.mktemp("seg") / "panel.csv"
    df.to_csv(path, index=False)
    return df, path


def by_label(res) -> dict:
    return {e.label: e for e in res.effects if e.label and e.label.startswith("country=")}


# ---------------------------------------------------------------- peers on each segment's rows


@pytest.mark.peer
@pytest.mark.parametrize("cluster", [None, "state"])
def test_twfe_segment_effects_equal_pyfixest_on_the_segment(sim, cluster):
    df, path = sim
    spec = spec_of(path, **({"cluster": cluster} if cluster else {}))
    res = run_study({**spec, "covariates": ["x"]})
    got = by_label(res)
    assert sorted(got) == [f"country={c}" for c in sorted(EFFECTS)]
    for c in EFFECTS:
        m = _pf("y ~ d + x | unit + time", df[df.country == c], cluster=cluster or "unit")
        e = got[f"country={c}"]
        assert e.value == pytest.approx(m.coef()["d"], abs=COEF_TOL)
        assert e.std_error == pytest.approx(m.se()["d"], rel=SE_RTOL)
        if cluster is None:  # (10 states per country: the p-value is the wild bootstrap's, as the headline's)
            assert e.p_value == pytest.approx(m.pvalue()["d"], rel=1e-6)
    # states nested in countries: the estimates stay independent and the test is computed
    assert res.diagnostics["heterogeneity"][0]["statistic"] is not None


@pytest.mark.peer
def test_2x2_segment_effects_equal_pyfixest_on_the_segment(sim):
    df, path = sim
    df = df.assign(treated=(df.g > 0).astype(int), post=(df.time >= 4).astype(int))
    got = by_label(run_study({**spec_of(path, "2x2"), "covariates": ["x"]}))
    for c in EFFECTS:
        m = _pf("y ~ treated * post + x", df[df.country == c])
        assert got[f"country={c}"].value == pytest.approx(m.coef()["treated:post"], abs=COEF_TOL)
        assert got[f"country={c}"].std_error == pytest.approx(m.se()["treated:post"], rel=SE_RTOL)


@pytest.mark.peer
@pytest.mark.parametrize("control_group", ["never_treated", "not_yet_treated"])
def test_callaway_santanna_segment_effects_equal_diff_diff_on_the_segment(tmp_path, control_group):
    """mpdta split into two segments of counties (every other county); diff-diff's overall ATT and
    SE on each half, at tests/test_did.py's tolerances."""
    from diff_diff import CallawaySantAnna

    df = pd.read_csv(MPDTA)
    # (county codes are mostly odd: alternate along their order)
    df["half"] = np.where(df.countyreal.rank(method="dense") % 2 == 0, "even", "odd")
    path = tmp_path / "mpdta.csv"
    df.to_csv(path, index=False)
    spec = cs_spec("mpdta_nev_dr", control_group=control_group)
    res = run_study({**spec, "data": {"path": str(path)}, "segments": ["half"]})
    got = {e.label: e for e in res.effects if e.label.startswith("half=")}
    for half in ("even", "odd"):
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            peer = CallawaySantAnna(control_group=control_group, estimation_method="dr").fit(
                df[df.half == half], "lemp", "countyreal", "year", "first.treat", aggregate="all")
        assert got[f"half={half}"].value == pytest.approx(peer.overall_att, abs=1e-8)
        assert got[f"half={half}"].std_error == pytest.approx(peer.overall_se, abs=1e-6)
        assert got[f"half={half}"].inference.startswith("cs_analytic; p_value_adjusted: holm over 2 values of half")


@pytest.mark.peer
def test_repeated_cross_sections_segment_effects_equal_statsmodels_hc1(tmp_path):
    """No design.unit: each row its own unit, so any column partitions them; the 2x2 by group with HC1 SEs."""
    import statsmodels.formula.api as smf

    rng = np.random.default_rng(0)
    n = 2000
    grp, t, seg = rng.integers(0, 2, n), rng.choice([1, 2], n), rng.choice(["x", "y"], n)
    d = ((grp == 1) & (t == 2)).astype(int)
    df = pd.DataFrame({"y": grp + t + d * np.where(seg == "x", 1.0, 3.0) + rng.normal(size=n), "grp": grp, "t": t,
                       "d": d, "seg": seg, "post": (t == 2).astype(int)})
    path = tmp_path / "rcs.csv"
    df.to_csv(path, index=False)
    res = run_study({"version": 1, "data": {"path": str(path)}, "treatment": "d", "outcome": "y", "segments": ["seg"],
                     "design": {"method": "did", "time": "t", "group": "grp", "estimator": "2x2"}, "refute": []})
    got = {e.label: e for e in res.effects}
    for value in ("x", "y"):
        m = smf.ols("y ~ grp * post", data=df[df.seg == value]).fit(cov_type="HC1")
        assert got[f"seg={value}"].value == pytest.approx(m.params["grp:post"], abs=COEF_TOL)
        assert got[f"seg={value}"].std_error == pytest.approx(m.bse["grp:post"], rel=SE_RTOL)
        assert got[f"seg={value}"].inference.startswith("hc1; ")


# ---------------------------------------------------------------- the same fit on the segment alone


@pytest.mark.parametrize("estimator,design", [
    ("twfe", {}), ("twfe", {"event_study": {"leads": 2, "lags": 1}}), ("2x2", {}),
    ("callaway_santanna", {"options": {"aggregation": "dynamic"}}), ("imputation", {}), ("sun_abraham", {})])
def test_each_segment_effect_is_the_estimator_run_on_that_segment_alone(tmp_path, estimator, design):
    """Every estimator, with its options: the segment's estimate, interval and inference are those of the same
    spec filtered to the segment's units. ``small`` has 24 units: few clusters, so its p-value and interval come
    from the headline's few-cluster rule (wild bootstrap or randomization inference) with the same seed."""
    cohorts = (4,) if estimator == "2x2" else (3, 5)
    df = panel(units=400, cohorts=cohorts, seed=4)
    df.loc[df.unit < 24, "country"] = "small"
    path = tmp_path / "p.csv"
    df.to_csv(path, index=False)
    spec = spec_of(path, estimator, **design)
    got = by_label(run_study(spec))
    assert set(got) == {f"country={c}" for c in [*EFFECTS, "small"]}
    for c in [*EFFECTS, "small"]:
        alone = run_study({**spec, "segments": [], "data": {"path": str(path), "filter": f"country = '{c}'"}})
        e = got[f"country={c}"]
        assert (e.value, e.std_error, e.ci_lower, e.ci_upper, e.p_value) == (
            alone.estimate.value, alone.estimate.std_error, alone.estimate.ci_lower, alone.estimate.ci_upper,
            alone.estimate.p_value)
        assert e.inference.split(";")[0] == alone.estimate.inference
    assert got["country=small"].inference.split(";")[0] not in ("crv1_fixest", "cs_analytic")  # few clusters


# ---------------------------------------------------------------- known truth, the test, the correction


def test_a_simulation_with_different_effects_by_segment_recovers_them(tmp_path):
    df = panel(units=1500, seed=11, cohorts=(3, 5))
    path = tmp_path / "p.csv"
    df.to_csv(path, index=False)
    for estimator in ("twfe", "callaway_santanna"):
        res = run_study(spec_of(path, estimator))
        got = by_label(res)
        for c, truth in EFFECTS.items():  # a constant effect within a country: every estimator is unbiased
            assert abs(got[f"country={c}"].value - truth) < 3.5 * got[f"country={c}"].std_error
        test = res.diagnostics["heterogeneity"][0]
        assert test["p_value"] < 1e-6 and test["df"] == 2
        assert any("the effect differs across the values of 'country'" in w for w in res.warnings)


def test_the_wald_test_and_holm_correction_recomputed_by_hand(sim):
    from scipy.stats import chi2
    from statsmodels.stats.multitest import multipletests

    _, path = sim
    res = run_study(spec_of(path))
    got = [by_label(res)[f"country={c}"] for c in sorted(EFFECTS)]
    b = np.array([e.value for e in got])
    se = np.array([e.std_error for e in got])
    w = 1 / se ** 2
    q = float(np.sum(((b - np.sum(w * b) / np.sum(w)) / se) ** 2))  # Cochran's Q: independent segments
    test = res.diagnostics["heterogeneity"][0]
    assert test["statistic"] == pytest.approx(q, rel=1e-10)
    assert test["p_value"] == pytest.approx(chi2.sf(q, 2), rel=1e-8)
    holm = multipletests([e.p_value for e in got], method="holm")[1]
    assert [e.p_value_adjusted for e in got] == pytest.approx(list(holm), rel=1e-12)
    # two segments: the one standardised contrast, squared
    two = run_study({**spec_of(path), "data": {"path": str(path), "filter": "country <> 'us'"}})
    de, fr = by_label(two)["country=de"], by_label(two)["country=fr"]
    z = (fr.value - de.value) / np.hypot(de.std_error, fr.std_error)
    assert two.diagnostics["heterogeneity"][0]["statistic"] == pytest.approx(z * z, rel=1e-10)


def test_clusters_spanning_segments_leave_the_test_not_computed_and_say_why(sim):
    _, path = sim
    res = run_study(spec_of(path, cluster="mixed"))
    test = res.diagnostics["heterogeneity"][0]
    assert test["statistic"] is None and test["p_value"] is None
    assert "40 of the 40 clusters of 'mixed' hold units of several values" in test["not_computed"]
    assert len(by_label(res)) == 3  # the effects stand


# ---------------------------------------------------------------- bad input


def test_a_unit_in_two_segments_is_exit_3_naming_the_column_the_units_and_one(runner, tmp_path, write_spec):
    df = panel(units=60)
    df.loc[(df.unit.isin([7, 9])) & (df.time == 6), "country"] = "xx"
    df.to_csv(tmp_path / "p.csv", index=False)
    res = invoke(runner, ["validate", str(write_spec(spec_of("p.csv")))])
    assert res.exit_code == 3, res.stderr
    assert "segment column 'country' is not constant within a unit: 2 units take more than one value" in res.stderr
    assert "(e.g. unit 7:" in res.stderr and "give each unit one value" in res.stderr
    assert "Traceback" not in res.stderr


def test_segments_without_treated_or_control_units_are_skipped_with_a_warning(tmp_path):
    df = panel(units=300)
    treated, never = np.unique(df.unit[df.g > 0])[:30], np.unique(df.unit[df.g == 0])[:30]
    df.loc[df.unit.isin(treated), "country"] = "only_treated"
    df.loc[df.unit.isin(never), "country"] = "only_control"
    path = tmp_path / "p.csv"
    df.to_csv(path, index=False)
    for estimator in ("twfe", "2x2", "callaway_santanna"):
        res = run_study(spec_of(path, estimator))
        assert sorted(by_label(res)) == ["country=de", "country=fr", "country=us"]
        said = [w for w in res.warnings if w.startswith("no effect reported for 2 segment value(s)")]
        assert len(said) == 1, res.warnings
        assert "country=only_control (no treated units)" in said[0]
        assert "country=only_treated (no " in said[0] and "control" in said[0]


def test_estimator_all_and_role_columns_as_segments_are_exit_2(tmp_path, sim):
    _, path = sim
    with pytest.raises(SpecError, match="segments are not built for estimator: all"):
        run_study(spec_of(path, "all"))
    with pytest.raises(SpecError, match=r"segments\[0\] 'g' is design.cohort"):
        run_study({**spec_of(path, "callaway_santanna", cohort="g"), "treatment": None, "segments": ["g"]})
    with pytest.raises(SpecError, match=r"segments\[1\] 'unit' is design.unit"):
        run_study({**spec_of(path), "segments": ["country", "unit"]})
    with pytest.raises(DataError, match="segment column 'x' has 3,600 values"):
        run_study({**spec_of(path), "segments": ["x"]})


def test_a_missing_segment_value_drops_its_rows_and_counts_them(tmp_path):
    df = panel(units=120)
    df["country"] = df["country"].astype(object)
    df.loc[df.unit == 3, "country"] = None
    path = tmp_path / "p.csv"
    df.to_csv(path, index=False)
    res = run_study(spec_of(path))
    assert res.n["dropped_missing_segments"] == 6 and res.n["units"] == 119


def test_validate_accepts_segments_for_did(runner, sim, tmp_path, write_spec):
    df, _ = sim
    df.to_csv(tmp_path / "p.csv", index=False)
    res = invoke(runner, ["validate", str(write_spec(spec_of("p.csv")))])
    assert res.exit_code == 0, res.stderr


# ---------------------------------------------------------------- on an engine


def test_segments_rule_out_the_engine_cells_and_say_why(sim):
    from causalcli.designs import get_design
    from causalcli.designs.did.cells import spec_reason
    from causalcli.study.load import as_loaded

    _, path = sim
    study = as_loaded({**spec_of(path), "data": {"backend": "postgres", "table": "t", "connection_env": "X"}}).study
    assert spec_reason(study) == "segments: each segment's effect is fitted on its own units' rows"
    assert get_design("did").streams(study) is False  # the design's columns are fetched, segments included


@pytest.mark.engines
def test_segments_on_postgres_equal_the_file_and_provenance_says_why_rows(postgres_url, runner, tmp_path,
                                                                          monkeypatch, sim):
    from tests.engines import load_postgres
    from tests.test_engines import ENV, differences

    df, path = sim
    monkeypatch.setenv(ENV, postgres_url)
    load_postgres(postgres_url, "did_segments", pa_table(df))
    local = run_study(spec_of(path)).to_dict()
    remote = run_study({**spec_of(path), "data": {"backend": "postgres", "table": "did_segments",
                                                  "connection_env": ENV}}).to_dict()
    assert not differences(remote, local), differences(remote, local)[:5]
    assert remote["provenance"]["did_cells"] == {
        "computed_from": "the panel's rows, fetched", "why": "segments: each segment's effect is fitted on its own units' rows"}


def pa_table(df: pd.DataFrame):
    import pyarrow as pa

    return pa.Table.from_pandas(df, preserve_index=False)


def test_a_warning_the_headline_gave_is_not_repeated_per_segment_with_other_numbers(tmp_path):
    """castle's TWFE by region said 'staggered adoption (5 cohorts): ...' and then once per segment with its own
    count of cohorts: a segment's warning alike but for its numbers to one of the headline's is left out."""
    df = panel(cohorts=(3, 4, 5), seed=4)
    df.to_csv(tmp_path / "p.csv", index=False)
    res = run_study(spec_of(tmp_path / "p.csv"))
    staggered = [w for w in res.warnings if "staggered adoption" in w]
    assert len(staggered) == 1 and not staggered[0].startswith("segment "), res.warnings
    assert len(by_label(res)) == len(EFFECTS)
