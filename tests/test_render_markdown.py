"""`--format markdown` on designs whose `diagnostics.balance` is not matching's list of SMD records: rdd's maps
each covariate to its RD fit, synthetic control's lists predictors. Both stopped the run with an internal error
(exit 4, TypeError / KeyError 'covariate'), the bundled `specs/prop99_synth.yaml` included."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import yaml

from tests.conftest import invoke

SPECS = Path(__file__).resolve().parent.parent / "specs"


def test_markdown_of_synthetic_control_with_predictors(runner):
    # one start and no conformal interval: the rendering is the point, not the fit (4 s -> 1.5 s)
    res = invoke(runner, ["estimate", str(SPECS / "prop99_synth.yaml"), "--format", "markdown", "--no-refute",
                          "--set", "design.options.starts=1", "--set", "design.options.conformal=false"])
    assert res.exit_code == 0, res.stdout + res.stderr
    assert "| prop99-synth | synthetic_control | att |" in res.stdout
    assert "SMD" not in res.stdout


def test_markdown_of_rdd_with_covariates(runner, tmp_path):
    rng = np.random.default_rng(3)
    x = rng.uniform(-1, 1, 800)
    d = pd.DataFrame({"score": x, "age": 30 + 5 * x + rng.normal(0, 2, 800),
                      "y": 1 + x + 0.5 * (x >= 0) + rng.normal(0, 0.5, 800)})
    d.to_csv(tmp_path / "rd.csv", index=False)
    spec = {"version": 1, "name": "rd", "data": {"path": "rd.csv"}, "outcome": "y", "covariates": ["age"],
            "design": {"method": "rdd", "running": "score", "cutoff": 0}}
    (tmp_path / "rd.yaml").write_text(yaml.safe_dump(spec))
    res = invoke(runner, ["estimate", str(tmp_path / "rd.yaml"), "--format", "markdown", "--no-refute"])
    assert res.exit_code in (0, 1), res.stdout + res.stderr
    assert "| rd | rdd | ate |" in res.stdout and "covariate_balance" in res.stdout
