"""Experiment effects by segment (top-level `segments`), their correction and Cochran's Q, from one grouped pass.

Tolerances:
* EXACT = 1e-12: a segment's sums are sums over a subset of the rows on the pass's exact grid, so its
  effect equals the study filtered to that segment; only the centres differ (the filtered study takes
  them from its own first rows), which moves the last bits.
* PEER_RTOL = 1e-10: statsmodels' multipletests and combine_effects compute the same formulas in doubles.
"""

from __future__ import annotations

import json
import math
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from causalcli.errors import DataError, SpecError
from causalcli.study.run import run_study

EXACT = 1e-12
PEER_RTOL = 1e-10

METRICS = [{"name": "y", "outcome": "y"},
           {"name": "y_cuped", "outcome": "y", "covariate": "pre"},
           {"name": "orders_per_session", "numerator": "orders", "denominator": "sessions"},
           {"name": "conversion", "outcome": "converted"}]


def users(n: int = 4000, seed: int = 5) -> pd.DataFrame:
    """Two treatment arms; the effect on y is large in US only (heterogeneous across countries)."""
    rng = np.random.default_rng(seed)
    variant = rng.choice(["control", "B", "C"], n)
    country = rng.choice(["DE", "FR", "US"], n)
    platform = rng.choice(["android", "ios"], n)
    pre = rng.normal(10, 2, n)
    y = pre + rng.normal(size=n) + np.where((variant == "B") & (country == "US"), 1.5, 0.0)
    sessions = rng.poisson(3, n) + 1
    return pd.DataFrame({"variant": variant, "country": country, "platform": platform, "pre": pre, "y": y,
                         "orders": rng.binomial(sessions, 0.2), "sessions": sessions,
                         "converted": (rng.random(n) < 0.1 + 0.03 * (variant == "C")).astype(np.int64),
                         "day": rng.integers(1, 8, n)})


@pytest.fixture(scope="module")
def data(tmp_path_factory) -> Path:
    path = tmp_path_factory.mktemp("segments") / "u.parquet"
    users().to_parquet(path, index=False)
    return path


def spec(path: Path, segments=("country", "platform"), metrics=None, **design) -> dict:
    out = {"version": 1, "name": "ab", "data": {"path": str(path)}, "treatment": "variant",
           "design": {"method": "experiment", "control": "control", "metrics": metrics or METRICS, **design}}
    if segments:
        out["segments"] = list(segments)
    return out


def by_label(result) -> dict:
    return {e.label: e for e in result.effects}


@pytest.fixture(scope="module")
def segmented(data):
    return run_study(spec(data))


def test_a_segment_effect_is_the_study_on_that_segment_s_rows(data, segmented):
    got = by_label(segmented)
    for column, value in (("country", "US"), ("platform", "ios")):
        only = spec(data, segments=())
        only["data"]["filter"] = f"{column} = '{value}'"
        alone = by_label(run_study(only))
        for label, want in alone.items():
            metric, arm, kind = label.split("/")
            seg = got[f"{metric}/{arm}/{kind}/{column}={value}"]
            for field in ("value", "std_error", "ci_lower", "ci_upper", "p_value"):
                assert getattr(seg, field) == pytest.approx(getattr(want, field), rel=EXACT), (label, field)
            assert seg.inference.split(";")[0] == want.inference.split(";")[0]


def test_the_overall_effects_and_headline_do_not_move_with_segments(data, segmented):
    plain = run_study(spec(data, segments=()))
    k = len(plain.effects)
    assert [e.to_dict() for e in segmented.effects[:k]] == [e.to_dict() for e in plain.effects]
    assert segmented.estimate == plain.estimate
    labels = [e.label for e in segmented.effects[k:]]
    # metric x arm x (3 countries + 2 platforms) x {abs, rel}
    assert len(labels) == 4 * 2 * 5 * 2
    arm = segmented.diagnostics["arms"]["treatment"][0]  # arms in order of appearance
    assert labels[:4] == [f"y/{arm}/abs/country=DE", f"y/{arm}/rel/country=DE", f"y/{arm}/abs/country=FR",
                          f"y/{arm}/rel/country=FR"]
    assert labels[8] == f"y/{arm}/abs/platform=ios"


def test_the_correction_runs_over_one_column_s_values_per_metric_and_arm(segmented):
    multipletests = pytest.importorskip("statsmodels.stats.multitest").multipletests
    got = by_label(segmented)
    for kind in ("abs", "rel"):
        family = [got[f"y_cuped/C/{kind}/country={v}"] for v in ("DE", "FR", "US")]
        want = multipletests([e.p_value for e in family], method="holm")[1]
        assert [e.p_value_adjusted for e in family] == pytest.approx(list(want), rel=PEER_RTOL)
        assert family[0].inference.endswith("p_value_adjusted: holm over 3 values of country")
    assert segmented.diagnostics["segments"]["values"] == {"country": ["DE", "FR", "US"],
                                                           "platform": ["android", "ios"]}


def test_cochran_q_equals_statsmodels_and_warns_when_the_effect_differs(segmented):
    combine_effects = pytest.importorskip("statsmodels.stats.meta_analysis").combine_effects
    got = by_label(segmented)
    rows = {(h["metric"], h["arm"], h["segment"]): h for h in segmented.diagnostics["segments"]["heterogeneity"]}
    for metric, arm in (("y", "B"), ("conversion", "C")):
        cells = [got[f"{metric}/{arm}/abs/country={v}"] for v in ("DE", "FR", "US")]
        peer = combine_effects(np.array([e.value for e in cells]), np.array([e.std_error ** 2 for e in cells]))
        h = rows[(metric, arm, "country")]
        homogeneity = peer.test_homogeneity()
        assert h["statistic"] == pytest.approx(peer.q, rel=PEER_RTOL)
        assert h["p_value"] == pytest.approx(homogeneity.pvalue, rel=PEER_RTOL)
        assert h["df"] == homogeneity.df == 2
    assert rows[("y", "B", "country")]["p_value"] < 1e-4  # the US-only effect
    warned = [w for w in segmented.warnings if "Cochran's Q" in w]
    assert any(w.startswith("y/B: the absolute effect differs across the values of 'country'") for w in warned)
    assert not any(w.startswith("y/B:") and "'platform'" in w for w in warned)


def test_one_grouped_pass_with_time_keeps_the_cumulative_effect(data):
    with_segments = run_study(spec(data, time="day"))
    without = run_study(spec(data, segments=(), time="day"))
    assert with_segments.diagnostics["cumulative"] == without.diagnostics["cumulative"]
    assert with_segments.diagnostics["sufficient_statistics"]["passes"] == \
        without.diagnostics["sufficient_statistics"]["passes"]


def test_a_segment_without_treated_units_is_reported_with_nulls_and_a_warning(tmp_path):
    df = users(1200)
    df.loc[(df.country == "FR") & (df.variant == "B"), "variant"] = "control"  # no B in FR
    df.loc[df.index[:7], "country"] = None
    path = tmp_path / "sparse.parquet"
    df.to_parquet(path, index=False)
    result = run_study(spec(path, segments=("country",), metrics=METRICS[:1]))
    got = json.loads(json.dumps([e.to_dict() for e in result.effects]))
    fr = next(e for e in got if e["label"] == "y/B/abs/country=FR")
    assert fr["value"] is None and fr["std_error"] is None and fr["p_value_adjusted"] is None
    de = by_label(result)["y/B/abs/country=DE"]
    assert de.inference.endswith("holm over 2 values of country")  # FR has no p-value: not in the family
    q = next(h for h in result.diagnostics["segments"]["heterogeneity"] if h["arm"] == "B")
    assert q["values_compared"] == 2 and q["df"] == 1
    assert any("have no standard error: y/B/abs/country=FR" in w for w in result.warnings)
    assert any(w.startswith("7 rows have no value in segment column 'country'") for w in result.warnings)
    assert result.diagnostics["segments"]["units"]["country"]["FR"] == {"control": pytest.approx(
        int(((df.country == "FR") & (df.variant == "control")).sum())), "B": 0, "C": int(
        ((df.country == "FR") & (df.variant == "C")).sum())}


def test_bad_segments_are_refused_with_one_line(data):
    with pytest.raises(DataError, match=r"segment column 'y' has 4,000 distinct values \(at most 50\); coarsen") as e:
        run_study(spec(data, segments=("country", "y")))
    assert e.value.exit_code == 3 and e.value.key == "segments[1]"
    with pytest.raises(DataError, match="segment column 'contry' not found"):
        run_study(spec(data, segments=("contry",)))
    with pytest.raises(SpecError, match="segments\\[0\\] is the variant column 'variant'") as e:
        run_study(spec(data, segments=("variant",)))
    assert e.value.exit_code == 2



def test_values_past_the_first_rows_and_too_many_combinations_are_refused_after_the_pass(tmp_path, monkeypatch):
    from causalcli.designs.experiment import stats as experiment_stats

    monkeypatch.setattr(experiment_stats, "HEAD_ROWS", 300)  # the first rows the file's columns are counted in
    df = users(600)
    df["late"] = np.where(np.arange(600) < 300, "early", [f"v{i % 70}" for i in range(600)])
    for k, name in enumerate(("a", "b", "c")):
        df[name] = (np.arange(600) + 7 * k) % 30
    path = tmp_path / "late.parquet"
    df.to_parquet(path, index=False)
    with pytest.raises(DataError, match="segment column 'late' has 71 distinct values") as e:
        run_study(spec(path, segments=("country", "late"), metrics=METRICS[:1]))
    assert e.value.key == "segments[1]"
    with pytest.raises(DataError, match="segments a 30 x b 30 x c 30 make 27,000 combinations") as e:
        run_study(spec(path, segments=("a", "b", "c"), metrics=METRICS[:1]))
    assert e.value.exit_code == 3


@pytest.mark.engines
@pytest.mark.xdist_group("spark")
def test_segments_in_postgres_and_spark_give_the_file_s_json(data, spark, postgres_url, runner, tmp_path,
                                                             monkeypatch):
    import pyarrow.parquet as pq
    import yaml

    from tests.engines import load_postgres, register_spark
    from tests.test_engines import ENV, differences, estimate

    monkeypatch.setenv(ENV, postgres_url)
    arrow = pq.read_table(data)
    load_postgres(postgres_url, "segmented_ab", arrow)
    register_spark("segmented_ab", arrow)
    base = spec(data, metrics=METRICS + [{"name": "crash", "outcome": "converted",
                                          "guardrail": {"direction": "increase_is_bad", "margin": 0.5}}],
                # an engine orders arms by value, a file by appearance: the plan orders both
                expected_split={"control": 33.4, "B": 33.3, "C": 33.3})
    on_file = tmp_path / "file.yaml"
    on_file.write_text(yaml.safe_dump(base))
    want_code, want, _ = estimate(runner, on_file)
    assert len(want["effects"]) == 5 * 2 * 2 + 5 * 2 * 5 * 2
    assert math.isfinite(want["diagnostics"]["segments"]["heterogeneity"][0]["statistic"])
    for name, source in (("postgres", {"backend": "postgres", "table": "segmented_ab", "connection_env": ENV}),
                         ("spark", {"backend": "spark", "table": "segmented_ab"})):
        on_engine = tmp_path / f"{name}.yaml"
        on_engine.write_text(yaml.safe_dump({**base, "data": source}))
        code, got, err = estimate(runner, on_engine)
        assert code == want_code, (name, err)
        assert not differences(got, want), (name, differences(got, want)[:5])
        assert got["provenance"]["backend"] == name


def test_the_forest_plot_draws_every_metric_arm_and_segment(segmented):
    from causalcli.designs.experiment.plots import PLOTS
    from causalcli.designs.experiment.segments import forest_rows

    assert PLOTS["forest"](segmented).startswith(b"\x89PNG")  # drawn with segments (none without: lifts is)
    rows = forest_rows(segmented.effects)
    assert len(rows) == 4 * 2 * (1 + 5)  # metric x arm: the overall effect, then 3 countries and 2 platforms
    assert [text for text, _, _ in rows[:3]] == [rows[0][1].label[:-len("/rel")], "  country=DE", "  country=FR"]
    assert all(e.label.split("/")[2] == "rel" for _, e, _ in rows)
