"""Problems found by trying causalcli as a new user on public data sets (issue 13 trial).

Each test reproduces one problem on small simulated data built like the public file that showed it.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import yaml

from conftest import invoke


def _left_out(text: str) -> dict[str, str]:
    out = {}
    for line in text.splitlines():
        if line.startswith("#   ") and ": " in line:
            col, why = line[4:].rsplit(": ", 1) if line.startswith("#   Unnamed: ") else line[4:].split(": ", 1)
            out[col] = why
    return out


def test_init_leaves_out_a_row_index_pandas_saved_with_the_data(runner, tmp_path):
    # NSW treated rows concatenated with CPS controls and saved with to_parquet: the repeated
    # index is written as __index_level_0__, is not unique, and being sorted by arm it moved the
    # matched ATT from 1,693 to 2,597 when init kept it as a covariate.
    rng = np.random.default_rng(0)
    treated = pd.DataFrame({"treat": True, "age": rng.normal(25, 5, 40), "y": rng.normal(size=40)})
    control = pd.DataFrame({"treat": False, "age": rng.normal(30, 5, 200), "y": rng.normal(size=200)})
    both = pd.concat([treated, control])
    both.to_parquet(tmp_path / "d.parquet")
    both.to_csv(tmp_path / "d.csv")  # an empty header, which DuckDB names column0
    both.rename_axis("Unnamed: 0").to_csv(tmp_path / "e.csv")  # a CSV read and re-saved by pandas
    for name, index in (("d.parquet", "__index_level_0__"), ("d.csv", "column0"), ("e.csv", "Unnamed: 0")):
        res = invoke(runner, ["init", str(tmp_path / name), "-t", "treat", "-y", "y"])
        assert res.exit_code == 0, res.stderr
        assert yaml.safe_load(res.stdout)["covariates"] == ["age"]
        assert "row index" in _left_out(res.stdout)[index]
