"""What a new user's trial of segments and observation weights found (matching, did, dml, rdd on public data:
causaldata's castle and NHEFS, Wooldridge's card, Lee-Moretti-Butler's close elections), each a test that failed
before its fix."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

import causalcli
from causalcli.data.segments import segment_labels


# ---------------------------------------------------------------- segment labels never merge two values


def test_segment_labels_of_values_beyond_six_digits_stay_distinct():
    """``%g`` wrote 1000000 and 1000001 as ``1e+06``; the designs group rows by the label, so the two segments
    were one (the effect of both, labelled once)."""
    labels = segment_labels(np.array([1000000.0, 1000001.0, 2.5, 25.0, 0.1 + 0.2, 123456789.0]))
    assert list(labels) == ["1000000", "1000001", "2.5", "25", repr(0.1 + 0.2), "123456789"]
    assert list(segment_labels(np.array([7, 1000001]))) == ["7", "1000001"]


def _binary_study(n: int = 600, seed: int = 0) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    x = rng.normal(size=n)
    group = rng.integers(0, 2, size=n)
    treat = (rng.uniform(size=n) < 1 / (1 + np.exp(-0.5 * x))).astype(int)
    y = x + treat * (1 + 2 * group) + rng.normal(size=n)
    # a code of seven digits (a tract or a FIPS-like id): 1000000 and 1000001
    return pd.DataFrame({"treat": treat, "y": y, "x": x, "code": 1_000_000 + group.astype(float)})


@pytest.mark.parametrize("method", ["matching", "dml"])
def test_a_segment_column_of_seven_digit_codes_gives_one_effect_per_code(method):
    df = _binary_study()
    spec = {"version": 1, "name": "codes", "treatment": "treat", "outcome": "y", "covariates": ["x"],
            "segments": ["code"], "design": {"method": method, "estimand": "ate"}, "refute": [], "seed": 0}
    if method == "dml":
        spec["design"]["options"] = {"learner": "linear"}
    r = causalcli.estimate(spec, data=df)
    effects = {e.label: e.value for e in r.effects}
    assert sorted(effects) == ["code=1000000", "code=1000001"]
    assert effects["code=1000001"] - effects["code=1000000"] > 1  # the simulated effects are 1 and 3


# ---------------------------------------------------------------- the human outputs show the correction, the test
# of equal effects and the weights (the trial read the JSON for each: the table, markdown and report had none)


def _weighted_segmented_matching():
    df = _binary_study()
    df["w"] = np.random.default_rng(1).uniform(0.5, 2.0, size=len(df))
    spec = {"version": 1, "name": "trial", "treatment": "treat", "outcome": "y", "covariates": ["x"],
            "segments": ["code"], "weights": "w", "design": {"method": "matching", "estimand": "ate"},
            "refute": [], "seed": 0}
    return causalcli.estimate(spec, data=df)


def _did_panel(units: int = 60, periods: int = 4, seed: int = 2) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    unit = np.repeat(np.arange(units), periods)
    time = np.tile(np.arange(periods), units)
    region = np.repeat(rng.integers(0, 2, size=units), periods)
    treated = np.repeat(rng.uniform(size=units) < 0.5, periods)
    post = (treated & (time >= 2)).astype(int)
    y = rng.normal(size=unit.size) + 0.3 * time + post * (1 + region)
    w = np.repeat(rng.uniform(1, 3, size=units), periods)  # a unit's population
    return pd.DataFrame({"unit": unit, "time": time, "post": post, "y": y, "region": region, "pop": w})


def test_the_table_shows_adjusted_p_values_the_test_of_equal_effects_and_the_weights():
    from causalcli.render.table import render_table_text

    r = _weighted_segmented_matching()
    text = render_table_text([r], width=140)
    assert "p adj" in text
    assert "p adj: holm over 2 values of code" in text
    test = r.diagnostics["heterogeneity"][0]
    assert f"test of equal effects across code: chi-square {test['statistic']:.4g} on 1 df" in text
    assert "weights    w" in text


def test_markdown_and_the_report_show_them_too():
    from causalcli.render.html import render_html
    from causalcli.render.markdown import render_markdown

    r = _weighted_segmented_matching()
    md = render_markdown([r])
    assert "| label | value | SE | CI | p | p adj |" in md
    assert "p adj: holm over 2 values of code" in md and "- test of equal effects across code: chi-square" in md
    assert "weights: w" in md
    page = render_html([r])
    assert "<th class=num>p adj</th>" in page and "test of equal effects across code" in page
    assert "weights: w</div>" in page


def test_an_unweighted_study_without_segments_shows_none_of_them():
    from causalcli.render.table import render_table_text

    df = _binary_study()
    spec = {"version": 1, "name": "plain", "treatment": "treat", "outcome": "y", "covariates": ["x"],
            "design": {"method": "matching", "estimand": "ate"}, "refute": [], "seed": 0}
    text = render_table_text([causalcli.estimate(spec, data=df)], width=140)
    assert "p adj" not in text and "weights" not in text and "test of equal effects" not in text


@pytest.mark.parametrize("estimator", ["twfe", "callaway_santanna"])
def test_did_says_which_weights_it_used(estimator):
    from causalcli.render.table import render_table_text

    spec = {"version": 1, "name": "did", "treatment": "post", "outcome": "y", "weights": "pop",
            "segments": ["region"], "refute": [], "seed": 0,
            "design": {"method": "did", "unit": "unit", "time": "time", "estimator": estimator}}
    r = causalcli.estimate(spec, data=_did_panel())
    assert r.diagnostics["weights"]["column"] == "pop" and r.diagnostics["weights"]["zero_weight_rows"] == 0
    text = render_table_text([r], width=140)
    assert "weights    pop" in text and "test of equal effects across region" in text


def test_matching_puts_its_weights_where_the_other_designs_do():
    r = _weighted_segmented_matching()
    assert r.diagnostics["weights"]["column"] == "w" and r.diagnostics["weights"]["zero_weight_rows"] == 0
    assert "observation_weights" not in r.diagnostics["matching"]


# ---------------------------------------------------------------- a segments plot for every design with segments
# (the trial's did study drew nothing, "nothing to plot", and matching only its love and propensity plots)


@pytest.mark.parametrize("family", ["matching", "did", "dml", "weighting", "iv"])
def test_every_design_with_segments_has_a_segments_plot(family):
    from causalcli.designs import get_family
    from causalcli.charts import segment_effects

    fam = get_family(family)
    module, attribute = fam.plots.split(":")
    import importlib

    assert getattr(importlib.import_module(module), attribute)["segments"] is segment_effects


def test_the_segments_plot_draws_segment_effects_only_and_names_the_weights():
    from causalcli.charts import segment_effects, segment_rows, segment_title

    spec = {"version": 1, "name": "did", "treatment": "post", "outcome": "y", "weights": "pop",
            "segments": ["region"], "refute": [], "seed": 0,
            "design": {"method": "did", "unit": "unit", "time": "time", "estimator": "callaway_santanna"}}
    r = causalcli.estimate(spec, data=_did_panel())
    assert any(e.label.startswith("event_time=") for e in r.effects)  # the event study is there too
    assert [e.label for e in segment_rows(r)] == ["region=0", "region=1"]
    assert segment_title(r) == "did: effects by segment, weighted by pop"
    assert segment_effects(r)[:8] == b"\x89PNG\r\n\x1a\n"


# ---------------------------------------------------------------- bad weights and segments: one line naming the
# key, the column, an offending value and what to do


def _run_cli(runner, tmp_path, df: pd.DataFrame, spec: dict):
    import yaml

    from tests.conftest import run_json

    df.to_csv(tmp_path / "d.csv", index=False)
    (tmp_path / "s.yaml").write_text(yaml.safe_dump({**spec, "data": {"path": "d.csv"}}))
    code, payload, res = run_json(runner, [str(tmp_path / "s.yaml"), "--no-refute"])
    return code, payload, res.stderr


def _matching_spec(**top) -> dict:
    return {"version": 1, "name": "bad", "treatment": "treat", "outcome": "y", "covariates": ["x"], **top,
            "design": {"method": "matching", "estimand": "ate"}, "seed": 0}


def test_negative_weights_name_the_first_row_its_value_and_the_filter_that_leaves_them_out(runner, tmp_path):
    df = _binary_study(200)
    df["w"] = 1.0
    df.loc[[3, 7], "w"] = -2.0
    code, out, err = _run_cli(runner, tmp_path, df, _matching_spec(weights="w"))
    line = err.strip().splitlines()[-1]
    assert code == 3 and len(err.strip().splitlines()) == 1
    assert "key 'weights'" in line
    assert "weights column 'w' has 2 negative or infinite values; weights must be >= 0 (row 4 has -2.0)" in line
    assert 'data.filter (e.g. "w >= 0 AND isfinite(w)")' in line


def test_weights_all_zero_say_what_to_do(runner, tmp_path):
    df = _binary_study(200)
    df["w"] = 0.0
    code, out, err = _run_cli(runner, tmp_path, df, _matching_spec(weights="w"))
    assert code == 3 and "weights column 'w' sums to zero: every weight is 0 or missing" in err
    assert "remove 'weights'" in err


def test_dml_names_the_segment_that_is_the_treatment_or_the_outcome(runner, tmp_path):
    df = _binary_study(200)
    for column, role in (("treat", "treatment"), ("y", "outcome")):
        spec = {**_matching_spec(segments=[column]), "design": {"method": "dml", "estimand": "ate"}}
        code, out, err = _run_cli(runner, tmp_path, df, spec)
        assert code == 2 and "key 'segments[0]'" in err and f"segments[0] is the {role} {column!r}" in err
