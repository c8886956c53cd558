"""`causalcli init` for regression discontinuity and for synthetic control with several treated units.

Found in a new-user trial: init wrote an rdd spec without `running` (validate: "required key is missing")
with the score among the covariates, and for castle doctrine's 21 states with `--treatment post` said
"synthetic control takes one treated unit" where the pooled fit and `estimator: synthetic_did` take them all.
"""

from __future__ import annotations

import json
from importlib.util import find_spec
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import yaml

from conftest import invoke


def init(runner, data, *args: str) -> tuple[str, dict]:
    res = invoke(runner, ["init", str(data), *args])
    assert res.exit_code == 0, res.stderr
    return res.stdout, yaml.safe_load(res.stdout)


def saved(tmp_path, text: str):
    path = tmp_path / "starter.yaml"
    path.write_text(text)
    return path


@pytest.fixture(scope="module")
def senate(tmp_path_factory):
    """rdrobust's U.S. Senate data with R's NA written as empty fields (as the rdd tests read it)."""
    folder = Path(find_spec("rdrobust").submodule_search_locations[0])  # the file, without importing rdrobust
    d = pd.read_csv(folder / "data" / "rdrobust_RDsenate.csv")
    path = tmp_path_factory.mktemp("senate") / "senate.csv"
    d.to_csv(path, index=False, na_rep="")
    return path


def rd_data(tmp_path, n=400, seed=3):
    rng = np.random.default_rng(seed)
    score = np.round(rng.uniform(40, 90, n), 2)
    above = score >= 60
    take = np.where(above, rng.uniform(size=n) < 0.8, rng.uniform(size=n) < 0.1).astype(int)
    d = pd.DataFrame({"exam_score": score, "took": take, "sharp": above.astype(int), "region": rng.choice(["n", "s"], n),
                      "age": rng.integers(18, 30, n), "y": score / 10 + take + rng.normal(0, 1, n)})
    path = tmp_path / "rd.csv"
    d.to_csv(path, index=False)
    return path


def test_senate_rdd_guesses_margin_and_cutoff_zero_and_estimates_rdrobusts_number(runner, tmp_path, senate):
    text, spec = init(runner, senate, "--outcome", "vote", "--design", "rdd")
    assert spec["design"]["running"] == "margin" and spec["design"]["cutoff"] == 0
    assert "margin" not in spec["covariates"] and spec["categorical"] == []
    assert "state" not in spec["covariates"]  # text: rdd checks numeric covariates only
    path = saved(tmp_path, text)
    res = invoke(runner, ["validate", str(path)])
    assert res.exit_code == 0 and "adjusting for (none); covariates checked for balance at the cutoff: year" in res.stdout
    res = invoke(runner, ["estimate", str(path), "--no-refute", "--format", "json",
                          "--set", "covariates=[population]"])
    assert res.exit_code in (0, 1), res.stderr
    import json

    assert json.loads(res.stdout)["estimate"]["value"] == pytest.approx(7.41413, abs=1e-4)  # rdrobust


def test_rdd_without_a_sign_change_asks_for_the_cutoff_and_takes_up_the_treatment(runner, tmp_path):
    path = rd_data(tmp_path)
    text, spec = init(runner, path, "--outcome", "y", "--design", "rdd", "--treatment", "took")
    d = spec["design"]
    assert d["running"] == "exam_score" and d["cutoff"] == "TODO"
    assert d["fuzzy"] == "took" and d["estimand"] == "late" and "treatment" not in spec
    assert "its values run from 40" in text
    res = invoke(runner, ["validate", str(saved(tmp_path, text))])
    assert res.exit_code == 2 and "design.cutoff" in res.stderr


def test_rdd_treatment_equal_to_the_cutoff_rule_is_sharp(runner, tmp_path):
    path = rd_data(tmp_path)
    d = pd.read_csv(path)
    d["exam_score"] -= 60  # centred: the cutoff is 0 and `sharp` is exactly exam_score >= 0
    d.to_csv(path, index=False)
    text, spec = init(runner, path, "--outcome", "y", "--design", "rdd", "--treatment", "sharp")
    assert spec["design"]["cutoff"] == 0 and "fuzzy" not in spec["design"] and spec["design"]["estimand"] == "ate"
    assert "a sharp design" in text
    assert invoke(runner, ["validate", str(saved(tmp_path, text))]).exit_code == 0


def test_rdd_fuzzy_starter_with_its_cutoff_guessed_validates(runner, tmp_path):
    """init wrote `estimand: late` for a fuzzy design, which the spec refused once the cutoff was known."""
    path = rd_data(tmp_path)
    d = pd.read_csv(path)
    d["exam_score"] -= 60
    d.to_csv(path, index=False)
    text, spec = init(runner, path, "--outcome", "y", "--design", "rdd", "--treatment", "took")
    assert spec["design"]["cutoff"] == 0 and spec["design"]["fuzzy"] == "took"
    res = invoke(runner, ["validate", str(saved(tmp_path, text))])
    assert res.exit_code == 0, res.stderr


@pytest.mark.parametrize("below", [False, True])
def test_rdd_running_and_cutoff_from_a_treatment_that_one_column_thresholds(runner, tmp_path, below):
    """causaldata's close_elections_lmb (democrat is demvoteshare > 0.5) and gov_transfers (Participation is
    Income_Centered < 0): no name like a score, so init wrote TODO for both though --treatment gives them."""
    rng = np.random.default_rng(5)
    share = np.round(rng.uniform(0.2, 0.8, 600), 6)
    share = share[np.abs(share - 0.5) > 1e-4]
    won = share < 0.5 if below else share > 0.5
    d = pd.DataFrame({"district": rng.integers(1, 30, len(share)), "voteshare": share, "won": won.astype(int),
                      "y": share + 0.2 * won + rng.normal(0, 0.1, len(share))})
    path = tmp_path / "elections.csv"
    d.to_csv(path, index=False)
    text, spec = init(runner, path, "--outcome", "y", "--design", "rdd", "--treatment", "won")
    design = spec["design"]
    assert design["running"] == "voteshare" and design["cutoff"] == 0.5
    assert "voteshare" not in spec["covariates"]
    if below:  # kept as the take-up: its jump of -1 gives the effect of winning its sign
        assert design["fuzzy"] == "won" and "below the cutoff" in text
    else:
        assert "fuzzy" not in design and "a sharp design" in text
    res = invoke(runner, ["estimate", str(saved(tmp_path, text)), "--no-refute", "--format", "json", "--quiet"])
    assert res.exit_code in (0, 1), res.stderr
    assert json.loads(res.stdout)["estimate"]["value"] == pytest.approx(0.2, abs=0.1)


def test_rdd_without_a_score_like_name_writes_todo_and_lists_candidates(runner, tmp_path):
    path = rd_data(tmp_path)
    d = pd.read_csv(path).rename(columns={"exam_score": "points"})
    d.to_csv(path, index=False)
    text, spec = init(runner, path, "--outcome", "y", "--design", "rdd")
    assert spec["design"]["running"] == "TODO" and spec["design"]["cutoff"] == "TODO"
    assert "numeric columns with many values here: points" in text
    # the candidates stay in covariates, and validate refuses the running variable there once it is set
    assert "points" in spec["covariates"] and "then remove the running variable from covariates" in text


def panel(tmp_path, starts: dict[int, int], name="panel.csv", adoption_column=False):
    """8 units x 10 periods; unit u treated from starts[u] on."""
    rng = np.random.default_rng(1)
    rows = []
    for u in range(8):
        for t in range(2000, 2010):
            on = u in starts and t >= starts[u]
            rows.append({"unit": u, "year": t, "treated": int(on), "y": u + 0.1 * t + 0.5 * on + rng.normal(0, 0.1),
                         **({"first_treat": starts.get(u, 0)} if adoption_column else {})})
    path = tmp_path / name
    pd.DataFrame(rows).to_csv(path, index=False)
    return path


def test_synth_several_treated_units_with_one_start_are_listed_without_predictors(runner, tmp_path):
    text, spec = init(runner, panel(tmp_path, {1: 2006, 4: 2006, 6: 2006}), "--outcome", "y",
                      "--design", "synthetic_control", "--treatment", "treated")
    d = spec["design"]
    assert d["treated_unit"] == [1, 4, 6] and d["treatment_start"] == 2006
    assert "predictors" not in d and "estimator" not in d  # the partially pooled synthetic control
    assert "estimator: synthetic_did is the other choice" in text
    for estimator in ("synthetic_control", "synthetic_did"):
        res = invoke(runner, ["estimate", str(saved(tmp_path, text)), "--no-refute", "--format", "json",
                              "--set", f"design.estimator={estimator}", "--set", "design.options.se=jackknife"])
        assert res.exit_code in (0, 1), res.stderr


def test_synth_staggered_adoption_names_the_adoption_column_or_says_how_to_add_one(runner, tmp_path):
    starts = {1: 2005, 4: 2006, 6: 2006}
    text, spec = init(runner, panel(tmp_path, starts), "--outcome", "y", "--design", "synthetic_control",
                      "--treatment", "treated")
    assert spec["design"]["treated_unit"] == [1, 4, 6] and spec["design"]["treatment_start"] == "TODO"
    assert "units by period 2005: 1, 2006: 2" in text and "AS adoption" in text
    text, spec = init(runner, panel(tmp_path, starts, "with.csv", adoption_column=True), "--outcome", "y",
                      "--design", "synthetic_control", "--treatment", "treated")
    assert spec["design"]["treatment_start"] == "first_treat"
    assert invoke(runner, ["validate", str(saved(tmp_path, text))]).exit_code == 0


def test_synth_unit_treated_from_its_first_period_is_left_out(runner, tmp_path):
    text, spec = init(runner, panel(tmp_path, {1: 2000, 4: 2006, 6: 2006}), "--outcome", "y",
                      "--design", "synthetic_control", "--treatment", "treated")
    assert spec["design"]["treated_unit"] == [4, 6] and "no pre-period to fit" in text
