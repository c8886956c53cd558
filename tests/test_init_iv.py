"""`causalcli init --design iv`: the note on covariates of a few whole numbers (codes or amounts?) named the
instruments too, telling the user to list them under categorical (the mroz trial: fatheduc, motheduc given
with --instrument were named beside kidslt6, kidsge6)."""

from __future__ import annotations

import numpy as np
import pandas as pd
import yaml

from conftest import invoke


def test_codes_note_names_covariates_not_instruments(runner, tmp_path):
    rng = np.random.default_rng(4)
    n = 400
    d = pd.DataFrame({"kids": rng.integers(0, 5, n), "fatheduc": rng.integers(6, 14, n),
                      "age": rng.uniform(20, 60, n)})
    d["educ"] = 8 + 0.4 * d.fatheduc + rng.normal(0, 1, n)
    d["lwage"] = 0.1 * d.educ + 0.01 * d.age + rng.normal(0, 0.3, n)
    d.to_csv(tmp_path / "w.csv", index=False)
    res = invoke(runner, ["init", str(tmp_path / "w.csv"), "-y", "lwage", "-t", "educ", "-d", "iv",
                          "-z", "fatheduc"])
    assert res.exit_code == 0, res.stderr
    spec = yaml.safe_load(res.stdout)
    assert spec["design"]["instruments"] == ["fatheduc"] and "fatheduc" not in spec["covariates"]
    note = next(line for line in res.stdout.splitlines() if "a few whole numbers" in line)
    assert "kids (5 values)" in note and "fatheduc" not in note
