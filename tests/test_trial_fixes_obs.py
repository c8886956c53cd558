"""Problems found by trying matching, weighting and dml as a new user on public observational data
(NHEFS, NSW-PSID, NSW-CPS). Each test reproduces one problem on small simulated data built like the
public file that showed it."""

from __future__ import annotations

import numpy as np
import pandas as pd
import yaml

from conftest import invoke


def _smokers(n: int = 300, seed: int = 0) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    age = rng.integers(25, 75, n)
    quit_ = (rng.random(n) < 1 / (1 + np.exp(-(age - 50) / 10))).astype(int)
    return pd.DataFrame({"quit": quit_, "age": age, "gain": 2 + 3 * quit_ + 0.1 * age + rng.normal(0, 1, n)})


def _write_spec(tmp_path, data: str, **keys) -> str:
    spec = {"version": 1, "name": "s", "data": {"path": data}, "treatment": "quit", "outcome": "gain",
            "covariates": ["age"], "design": {"method": "weighting", "estimand": "ate"}, **keys}
    path = tmp_path / "s.yaml"
    path.write_text(yaml.safe_dump(spec))
    return str(path)


def test_a_text_treatment_with_one_value_is_a_data_error_not_an_internal_one(runner, tmp_path):
    # NHEFS with qsmk recoded as 'quit'/'kept smoking' but one arm only: validate and estimate said
    # "internal error: ConversionException: Could not convert string 'kept smoking' to DOUBLE", exit 4.
    df = _smokers()
    df["quit"] = "kept smoking"
    df.to_csv(tmp_path / "one.csv", index=False)
    spec = _write_spec(tmp_path, "one.csv")
    for command in (["validate", spec], ["estimate", spec, "--no-refute"]):
        res = invoke(runner, command)
        assert res.exit_code == 3, res.stderr
        assert "internal error" not in res.stderr
        assert "treatment column 'quit' has only one value, 'kept smoking'" in res.stderr


def test_init_says_when_the_treatment_holds_one_value(runner, tmp_path):
    # A file with one arm only (a filtered export) got a starter spec without a word; the user learnt it at
    # validate, after editing the covariates.
    df = _smokers()
    df["quit"] = 0
    df.to_csv(tmp_path / "one.csv", index=False)
    for design in ("weighting", "matching", "dml"):
        res = invoke(runner, ["init", str(tmp_path / "one.csv"), "-t", "quit", "-y", "gain", "-d", design])
        assert res.exit_code == 0, res.stderr
        assert "# Note: quit holds only the value 0 in the 300 rows: there is nothing to compare" in res.stdout
    _smokers().to_csv(tmp_path / "two.csv", index=False)
    res = invoke(runner, ["init", str(tmp_path / "two.csv"), "-t", "quit", "-y", "gain", "-d", "weighting"])
    assert "nothing to compare" not in res.stdout
