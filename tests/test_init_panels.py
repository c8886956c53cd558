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
