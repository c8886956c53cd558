"""`data.na_values`: CSV strings read as missing besides the empty field (R's NA, Stata's '.').

Found in a new-user trial: the U.S. Senate data rdrobust ships writes NA for missing, so its outcome read as
text and estimate stopped (exit 3) until the file was rewritten by hand.
"""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import yaml

from conftest import invoke


def files(tmp_path):
    rng = np.random.default_rng(5)
    n = 300
    d = pd.DataFrame({"treat": rng.integers(0, 2, n), "age": rng.normal(40, 5, n).round(1),
                      "group": rng.choice(["a", "b"], n)})
    d["y"] = 1 + d.treat + 0.1 * d.age + rng.normal(0, 1, n)
    d.loc[rng.choice(n, 20, replace=False), "y"] = np.nan
    d.loc[rng.choice(n, 15, replace=False), "age"] = np.nan
    empty, marked = tmp_path / "empty.csv", tmp_path / "marked.csv"
    d.to_csv(empty, index=False, na_rep="")
    d.to_csv(marked, index=False, na_rep="NA")
    return empty, marked


def spec(tmp_path, data: str, **data_keys) -> str:
    body = {"version": 1, "name": "s", "data": {"path": data, **data_keys}, "treatment": "treat", "outcome": "y",
            "covariates": ["age"], "design": {"method": "weighting", "estimand": "ate"}}
    path = tmp_path / f"{len(list(tmp_path.glob('*.yaml')))}.yaml"
    path.write_text(yaml.safe_dump(body))
    return str(path)


def estimate(runner, path):
    res = invoke(runner, ["estimate", path, "--format", "json", "--no-refute", "--quiet"])
    return res.exit_code, (json.loads(res.stdout) if res.stdout.strip() else None), res.stderr


def test_na_values_reads_r_style_missing_like_empty_fields(runner, tmp_path):
    empty, marked = files(tmp_path)
    code, want, err = estimate(runner, spec(tmp_path, str(empty)))
    assert code in (0, 1), err
    code, got, err = estimate(runner, spec(tmp_path, str(marked), na_values=["NA"]))
    assert code in (0, 1), err
    assert got["estimate"] == want["estimate"] and got["n"] == want["n"]
    assert got["n"]["dropped_missing"] > 0


def test_without_na_values_the_error_says_to_set_it(runner, tmp_path):
    _, marked = files(tmp_path)
    code, _, err = estimate(runner, spec(tmp_path, str(marked)))
    assert code == 3 and "or set data.na_values: ['NA'] to read it as missing" in err


def test_init_writes_na_values_for_a_file_with_na_markers_and_the_spec_validates(runner, tmp_path):
    _, marked = files(tmp_path)
    res = invoke(runner, ["init", str(marked), "--treatment", "treat", "--outcome", "y", "-o",
                          str(tmp_path / "starter.yaml")])
    assert res.exit_code == 0, res.stderr
    text = (tmp_path / "starter.yaml").read_text()
    got = yaml.safe_load(text)
    assert got["data"]["na_values"] == ["NA"] and "age" in got["covariates"]
    assert "data.na_values: [NA]" in text
    assert invoke(runner, ["validate", str(tmp_path / "starter.yaml")]).exit_code == 0


def test_init_leaves_na_values_out_when_text_columns_are_text(runner, tmp_path):
    empty, _ = files(tmp_path)
    d = pd.read_csv(empty).assign(country=lambda f: np.where(f.treat == 1, "NA", "EU"))  # Namibia, not missing
    d.to_csv(empty, index=False)
    res = invoke(runner, ["init", str(empty), "--treatment", "treat", "--outcome", "y"])
    assert res.exit_code == 0 and "na_values" not in yaml.safe_load(res.stdout)["data"]
