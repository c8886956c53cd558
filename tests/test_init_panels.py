"""`causalcli init` on panels, from the quasi-experimental trials on causaldata.

`--design synthetic_control` on a panel with no column but unit, period and outcome (causaldata's
organ_donations): init wrote `predictors: []`, and once treated_unit and treatment_start were set validate refused
the spec ("synthetic control needs design.predictors or design.special_predictors"), which init had not said."""

from __future__ import annotations

import numpy as np
import pandas as pd
import yaml

from conftest import invoke


def test_outcome_only_panel_asks_for_special_predictors_by_key(runner, tmp_path):
    rng = np.random.default_rng(5)
    rows = [{"state": f"s{u}", "quarter": t, "rate": 0.5 + 0.01 * u + rng.normal(0, 0.01)}
            for u in range(10) for t in range(1, 7)]
    pd.DataFrame(rows).to_csv(tmp_path / "p.csv", index=False)
    res = invoke(runner, ["init", str(tmp_path / "p.csv"), "-y", "rate", "-d", "synthetic_control",
                          "-o", str(tmp_path / "p.yaml")])
    assert res.exit_code == 0, res.stderr
    spec = yaml.safe_load((tmp_path / "p.yaml").read_text())
    assert spec["design"]["special_predictors"] == [["rate", "TODO"]] and "predictors" not in spec["design"]
    spec["design"].update(treated_unit="s0", treatment_start=4)
    (tmp_path / "p.yaml").write_text(yaml.safe_dump(spec))
    res = invoke(runner, ["validate", str(tmp_path / "p.yaml")])
    assert res.exit_code == 2 and "design.special_predictors[0][1]" in res.stderr
    assert "pre-treatment periods" in res.stderr
    spec["design"]["special_predictors"] = [["rate", 1], ["rate", 3]]
    (tmp_path / "p.yaml").write_text(yaml.safe_dump(spec))
    res = invoke(runner, ["validate", str(tmp_path / "p.yaml")])
    assert res.exit_code == 0, res.stderr


def test_lead_and_lag_dummies_are_not_kept_as_covariates(runner, tmp_path):
    """castle doctrine's lead1..lead9 and lag0..lag5 (0/1 by period relative to adoption) were kept as TWFE
    covariates by init, where the lags absorb the effect; a many-valued lag1 (a lagged outcome) stays."""
    rng = np.random.default_rng(6)
    rows = []
    for u in range(12):
        start = 4 if u < 6 else 0
        for t in range(1, 8):
            rows.append({"state": u, "year": 2000 + t, "treated": int(0 < start <= t),
                         "lag0": int(start == t), "lead1": int(start == t + 1), "lag1": rng.normal(),
                         "income": rng.normal(), "y": rng.normal()})
    pd.DataFrame(rows).to_csv(tmp_path / "c.csv", index=False)
    res = invoke(runner, ["init", str(tmp_path / "c.csv"), "-y", "y", "-d", "did"])
    assert res.exit_code == 0, res.stderr
    covariates = yaml.safe_load(res.stdout)["covariates"]
    assert "lag0" not in covariates and "lead1" not in covariates
    assert {"lag1", "income"} <= set(covariates)
    assert "lag0: a 0/1 lead or lag of the treatment's start" in res.stdout


def test_effyear_is_the_cohort_and_its_empty_rows_the_never_treated(runner, tmp_path):
    """Cheng and Hoekstra's castle doctrine data give the adoption year as effyear, empty for the states that
    never adopted: init took it for nothing (cohort: TODO), and estimate then dropped the empty rows."""
    rng = np.random.default_rng(7)
    rows = [{"sid": u, "year": 2000 + t, "effyear": (2003 if u < 3 else 2005) if u < 6 else None,
             "y": rng.normal() + 0.5 * (u < 6 and 2000 + t >= (2003 if u < 3 else 2005))}
            for u in range(14) for t in range(1, 8)]
    pd.DataFrame(rows).to_csv(tmp_path / "c.csv", index=False)
    res = invoke(runner, ["init", str(tmp_path / "c.csv"), "-y", "y", "-d", "did", "-o", str(tmp_path / "c.yaml")])
    assert res.exit_code == 0, res.stderr
    assert yaml.safe_load((tmp_path / "c.yaml").read_text())["design"]["cohort"] == "effyear"
    res = invoke(runner, ["estimate", str(tmp_path / "c.yaml"), "--format", "json", "--no-refute", "--quiet"])
    n = yaml.safe_load(res.stdout)["n"]
    assert n["dropped_missing"] == 0 and n["control_units"] == 8 and n["treated_units"] == 6
