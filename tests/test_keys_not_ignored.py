"""No spec key is silently ignored: for every design and every top-level key of SPEC.md, changing the key changes
the result (USED), is refused with exit 2 naming it (REFUSED), or leaves the result alone with a warning naming it
(WARNED). ``EXPECTED`` is that table; a design that starts ignoring a key, or a new design or key without a row,
fails here. The design options one estimator reads and another does not are refused under the other
(``test_an_option_of_another_estimator_is_refused``).

Found by running every design's spec twice, with and without each key: before, matching, weighting, dml, did, iv,
rdd, experiment, synthetic_control and time_series ran unchanged with data.sample on a file, with thresholds their
checks never read, with weighting's folds and outcome_model where no model used them, dml's forest sizes under
model: linear, did's Callaway-Sant'Anna options under twfe, imputation and sun_abraham, time_series' options of the
other estimator, synthetic control's conformal_grid without conformal and ridge_lambda without augmented, and an
experiment's 'outcome' beside its metrics; a graph in a synthetic_control or time_series spec crashed in DoWhy.
"""

from __future__ import annotations

import copy
import math
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from causalcli.errors import CausalcliError
from causalcli.study.run import run_study
from tests.conftest import simulate

ROOT = Path(__file__).resolve().parents[1]
USED, REFUSED, WARNED = "used", "refused", "warned"
NO_DRAWS = "no_draws"  # seed: nothing in the study is drawn at random; it is recorded in provenance.seed alone

THRESHOLDS = ("alpha", "balance_smd", "propensity_bounds", "max_outside", "srm_alpha", "pre_fit")
KEYS = ("treatment", "outcome", "covariates", "categorical", "weights", "graph", "segments", "conf_level",
        *(f"thresholds.{t}" for t in THRESHOLDS), "refute", "seed", "data.filter", "data.sample", "data.max_rows",
        "data.timezone")


def _row(used=(), refused=(), warned=(), **other) -> dict[str, str]:
    row = {**{k: USED for k in used}, **{k: REFUSED for k in refused}, **{k: WARNED for k in warned}, **other}
    return row


_ALL_DATA = ("data.filter",)
_ENGINE_ONLY = {"data.sample": USED, "data.max_rows": WARNED}
_UNREAD = tuple(f"thresholds.{t}" for t in THRESHOLDS)

# Keys a design has no need for (treatment in synthetic control, outcome in an experiment with metrics) appear
# only where the design's spec below leaves them out.
EXPECTED: dict[str, dict[str, str]] = {
    "matching": _row(("covariates", "categorical", "weights", "graph", "segments", "conf_level", "thresholds.alpha",
                      "thresholds.balance_smd", "thresholds.propensity_bounds", "thresholds.max_outside", "refute",
                      "seed", *_ALL_DATA),
                     (), ("thresholds.srm_alpha", "thresholds.pre_fit", "data.timezone"),
                     **_ENGINE_ONLY),
    "weighting": _row(("covariates", "categorical", "weights", "graph", "segments", "conf_level", "thresholds.alpha",
                       "thresholds.balance_smd", "thresholds.propensity_bounds", "thresholds.max_outside", "refute",
                       "seed", *_ALL_DATA),
                      (), ("thresholds.srm_alpha", "thresholds.pre_fit", "data.timezone"),
                      **_ENGINE_ONLY),
    "dml": _row(("covariates", "categorical", "weights", "graph", "segments", "conf_level", "thresholds.alpha",
                 "thresholds.propensity_bounds", "thresholds.max_outside", "refute", "seed", *_ALL_DATA),
                (), ("thresholds.balance_smd", "thresholds.srm_alpha", "thresholds.pre_fit", "data.timezone"),
                **_ENGINE_ONLY),
    "did": _row(("covariates", "weights", "graph", "segments", "conf_level", "thresholds.alpha", "refute", "seed",
                 "data.timezone", *_ALL_DATA),
                ("categorical",), [k for k in _UNREAD if k != "thresholds.alpha"], **_ENGINE_ONLY),
    "synthetic_control": _row(("conf_level", "thresholds.alpha", "thresholds.pre_fit", "refute", "seed",
                               "data.timezone", *_ALL_DATA),
                              ("treatment", "covariates", "categorical", "weights", "graph", "segments"),
                              ("thresholds.balance_smd", "thresholds.propensity_bounds", "thresholds.max_outside",
                               "thresholds.srm_alpha"), **_ENGINE_ONLY),
    "experiment": _row(("segments", "conf_level", "thresholds.alpha", "thresholds.srm_alpha", "data.timezone",
                        *_ALL_DATA),
                       ("outcome", "covariates", "categorical", "weights", "graph", "refute"),
                       ("thresholds.balance_smd", "thresholds.propensity_bounds", "thresholds.max_outside",
                        "thresholds.pre_fit"), seed=NO_DRAWS, **_ENGINE_ONLY),
    "iv": _row(("covariates", "categorical", "weights", "graph", "segments", "conf_level", "thresholds.alpha", "refute",
                "seed", *_ALL_DATA),
               (), [*(k for k in _UNREAD if k != "thresholds.alpha"), "data.timezone"],
               **_ENGINE_ONLY),
    "rdd": _row(("treatment", "covariates", "weights", "segments", "conf_level", "thresholds.alpha", "refute", "seed",
                 *_ALL_DATA),
                ("categorical", "graph"),
                [*(k for k in _UNREAD if k != "thresholds.alpha"), "data.timezone"], **_ENGINE_ONLY),
    "time_series": _row(("conf_level", "thresholds.alpha", "thresholds.pre_fit", "refute", "seed", "data.timezone",
                         *_ALL_DATA),
                        ("treatment", "covariates", "categorical", "weights", "graph", "segments"),
                        ("thresholds.balance_smd", "thresholds.propensity_bounds", "thresholds.max_outside",
                         "thresholds.srm_alpha"), **{**_ENGINE_ONLY, "data.sample": REFUSED}),  # gaps
}


def stamps(period, days: int, alternate: bool = True) -> pd.Series:
    """Timestamps ``days`` apart at 20:00 UTC (the next day in Tokyo); ``alternate``: 10:00 in even periods (the
    same day), so another time zone relabels some periods and keeps the even ones (the treatment's start)."""
    period = pd.Series(np.asarray(period))
    hours = np.where((period % 2 == 1) | (not alternate), 20, 10)
    return pd.Timestamp("2024-01-01") + pd.to_timedelta(period * days, "D") + pd.to_timedelta(hours, "h")


@pytest.fixture(scope="module")
def data(tmp_path_factory) -> Path:
    """Small data for every design, with a weight, a segment and a timestamp column near midnight UTC (so that
    another time zone moves some rows to the next day)."""
    folder = tmp_path_factory.mktemp("keys")
    rng = np.random.default_rng(3)
    obs = simulate(500)
    obs["w"] = rng.uniform(0.5, 2, len(obs)).round(3)
    obs["g"] = rng.choice(["a", "b"], len(obs))
    obs.to_csv(folder / "obs.csv", index=False)
    n = 1200
    x1, z, u = rng.normal(size=n), rng.integers(0, 2, n), rng.normal(size=n)
    t = ((0.8 * z + 0.5 * u + 0.3 * x1 + rng.normal(size=n)) > 0.5).astype(int)
    pd.DataFrame({"y": t + x1 + u + rng.normal(size=n), "t": t, "z": z, "x1": x1, "x2": rng.normal(size=n),
                  "g": rng.choice(["a", "b"], n),
                  "w": 0.5 + (np.arange(n) % 7) / 4}).to_csv(folder / "iv.csv", index=False)  # (no draw: later data stay)
    x = np.round(rng.uniform(-1, 1, n), 3)
    pd.DataFrame({"x": x, "y": 1 + x + 0.7 * (x >= 0) + rng.normal(0, .5, n), "age": rng.normal(size=n),
                  "t": (x >= 0).astype(int), "g": rng.choice(["a", "b"], n),
                  "w": 0.5 + (np.arange(n) % 7) / 4}).to_csv(folder / "rdd.csv", index=False)  # (no draw)
    ts = pd.read_csv(ROOT / "tests/reference/time_series/vignette.csv")
    ts["date"] = stamps(np.arange(len(ts)), 1, alternate=False)  # every day moves: the intervention's day changes
    ts.to_csv(folder / "ts.csv", index=False)
    organ = pd.read_csv(ROOT / "tests/golden/data/organ_donations.csv")
    organ["day"] = stamps(organ["Quarter_Num"], 7)
    organ["x1"] = rng.normal(size=len(organ))
    organ["w"] = rng.uniform(0.5, 2, len(organ)).round(3)
    organ["g"] = np.where(organ["State"] < "M", "a", "b")  # a segment constant within each state (no draw)
    organ.to_csv(folder / "organ.csv", index=False)
    synth = pd.read_csv(ROOT / "tests/golden/data/synth_panel.csv")
    synth["day"] = stamps(synth["period"], 7)
    synth["t"] = ((synth.unit == "treated") & (synth.period >= 14)).astype(int)
    synth.to_csv(folder / "synth.csv", index=False)
    exp = pd.read_parquet(ROOT / "tests/golden/data/experiment.parquet")
    exp["seen"] = pd.to_datetime(exp["day"]) + pd.Timedelta(hours=20)
    exp["g"] = np.where(exp["user_id"] % 2 == 0, "even", "odd")
    exp.to_csv(folder / "exp.csv", index=False)
    return folder


def base(design: str, folder: Path) -> dict:
    spec = {
        "matching": {"data": {"path": "obs.csv"}, "treatment": "t", "outcome": "y", "covariates": ["x1", "x2"],
                     "design": {"method": "matching", "estimand": "att"}},
        "weighting": {"data": {"path": "obs.csv"}, "treatment": "t", "outcome": "y", "covariates": ["x1", "x2"],
                      "design": {"method": "weighting", "estimand": "ate"}},
        "dml": {"data": {"path": "obs.csv"}, "treatment": "t", "outcome": "y", "covariates": ["x1", "x2"],
                "design": {"method": "dml", "options": {"model": "linear", "learner": "lasso", "folds": 3}}},
        "did": {"data": {"path": "organ.csv"}, "treatment": "treated", "outcome": "Rate",
                "design": {"method": "did", "unit": "State", "time": "day"}},
        "synthetic_control": {"data": {"path": "synth.csv"}, "outcome": "y",
                              "design": {"method": "synthetic_control", "unit": "unit", "time": "day",
                                         "treated_unit": "treated", "treatment_start": "2024-04-08",
                                         "predictors": ["p1", "p2"], "options": {"starts": 2, "conformal": False}}},
        "experiment": {"data": {"path": "exp.csv"}, "treatment": "variant",
                       "design": {"method": "experiment", "control": "control", "time": "seen",
                                  "expected_split": {"control": 0.5, "new": 0.25, "new_plus": 0.25},
                                  "metrics": [{"name": "revenue", "outcome": "revenue"}]}},
        "iv": {"data": {"path": "iv.csv"}, "treatment": "t", "outcome": "y", "covariates": ["x1"],
               "design": {"method": "iv", "instruments": ["z"]}},
        "rdd": {"data": {"path": "rdd.csv"}, "outcome": "y", "design": {"method": "rdd", "running": "x", "cutoff": 0}},
        "time_series": {"data": {"path": "ts.csv"}, "outcome": "y",
                        "design": {"method": "time_series", "time": "date", "intervention": "2024-03-10",
                                   "controls": ["x1"], "estimator": "segmented"}},
    }[design]
    spec["data"]["path"] = str(folder / spec["data"]["path"])
    return {"version": 1, "name": "s", "seed": 0, "refute": [], **spec}


# ``refute`` as each design's refuters are named: a few simulations, enough to see alpha and seed move them
REFUTE = {"synthetic_control": [{"placebo_in_time": {"simulations": 3, "min_pre": 5}}],
          "time_series": [{"placebo_in_time": {"simulations": 3}}],
          "rdd": [{"data_subset": {"simulations": 5}}],
          "iv": [{"random_common_cause": {"simulations": 3}}, {"data_subset": {"simulations": 5}}]}
DEFAULT_REFUTE = [{"placebo_treatment": {"simulations": 9}}, {"data_subset": {"simulations": 5}}]
# a column of each design's data to add as a covariate (a categorical one for `categorical`), and its graph
COLUMNS = {"matching": ("w", "region"), "weighting": ("w", "region"), "dml": ("w", "region"),
           "did": ("x1", "State"), "synthetic_control": ("p1", "p1"), "experiment": ("pre_revenue", "g"),
           "iv": ("x2", "g"), "rdd": ("age", "g"), "time_series": ("x1", "x1")}
TREATMENT = {"synthetic_control": "t", "rdd": "t", "time_series": "x1", "experiment": "variant"}
OUTCOME = {"experiment": "revenue"}
SAMPLE_ROWS = {"did": 120, "synthetic_control": 200}  # panels keep whole units: 27 states x 6, 12 units x 20
THRESHOLD_VALUES = {"alpha": 0.3, "balance_smd": 1e-4, "propensity_bounds": [0.3, 0.7], "max_outside": 0.0,
                    "srm_alpha": 0.99, "pre_fit": 1e-6}


def change(design: str, key: str, spec: dict) -> tuple[dict, dict]:
    """(the spec without the key, the spec with it set to a meaningful non-default value)."""
    spec = copy.deepcopy(spec)
    cov, cat = COLUMNS[design]
    refute = REFUTE.get(design, DEFAULT_REFUTE)
    new = copy.deepcopy(spec)
    if key == "treatment":
        new["treatment"] = TREATMENT[design]
    elif key == "outcome":
        new["outcome"] = OUTCOME.get(design, "y")
    elif key == "covariates":
        new["covariates"] = [*spec.get("covariates", []), cov]
    elif key == "categorical":
        new["covariates"] = [*spec.get("covariates", []), cat]
        new["categorical"] = [cat]
    elif key == "weights":
        new["weights"] = "w"
    elif key == "graph":
        t, y = spec.get("treatment") or "t", spec.get("outcome") or "y"
        extra = spec.get("covariates", [])[0] if spec.get("covariates") else cov
        new["graph"] = {"edges": [[extra, t], [extra, y], [t, y]]}  # fewer adjustments than the covariates listed
    elif key == "segments":
        new["segments"] = ["g"]
    elif key == "conf_level":
        new["conf_level"] = 0.8
    elif key.startswith("thresholds."):
        name = key.split(".")[1]
        if name == "alpha" and design != "experiment":  # the refuters read it: run them on both sides
            spec["refute"] = new["refute"] = refute
        if name == "alpha" and design == "experiment":  # the test of effects differing across segments reads it
            spec["segments"] = new["segments"] = ["g"]
        # an experiment's segments barely differ: only a large alpha calls the difference
        new["thresholds"] = {name: 0.99 if (design, name) == ("experiment", "alpha") else THRESHOLD_VALUES[name]}
    elif key == "refute":
        new["refute"] = refute
    elif key == "seed":
        if design != "experiment":
            spec["refute"] = new["refute"] = refute
        new["seed"] = 7
    elif key == "data.filter":
        new["data"]["filter"] = f"{spec['outcome'] if spec.get('outcome') else 'revenue'} IS NOT NULL AND " \
                                f"{spec['outcome'] if spec.get('outcome') else 'revenue'} > -1e9"
    elif key == "data.sample":
        new["data"]["sample"] = {"rows": SAMPLE_ROWS.get(design, 300), "seed": 1}
    elif key == "data.max_rows":
        new["data"]["max_rows"] = 10
    elif key == "data.timezone":
        new["data"]["timezone"] = "Asia/Tokyo"
    else:
        raise AssertionError(f"no change written for {key}")
    return spec, new


def outcome_of(spec: dict) -> tuple[str, object]:
    """("ok", the result without timing and provenance) or (f"exit{code}", (key, message))."""
    try:
        out = run_study(copy.deepcopy(spec)).to_dict()
    except CausalcliError as exc:
        return f"exit{exc.exit_code}", (exc.key, str(exc))
    out.pop("timing_s")
    provenance = out.pop("provenance")
    out["seed"] = provenance["seed"]
    return "ok", out


def _same(a, b) -> bool:
    if isinstance(a, float) and isinstance(b, float) and math.isnan(a) and math.isnan(b):
        return True
    if isinstance(a, dict) and isinstance(b, dict):
        return a.keys() == b.keys() and all(_same(a[k], b[k]) for k in a)
    if isinstance(a, list) and isinstance(b, list):
        return len(a) == len(b) and all(_same(x, y) for x, y in zip(a, b))
    return a == b


def test_every_design_and_key_has_an_expected_behaviour():
    from causalcli.designs import families

    assert set(EXPECTED) == set(families())
    for design, row in EXPECTED.items():
        spec = base(design, Path("/nowhere"))
        optional = {k for k in ("treatment", "outcome") if spec.get(k)}  # given by the base spec: not a choice
        assert set(row) == set(KEYS) - optional, (design, sorted(set(KEYS) - optional ^ set(row)))


CASES = [(d, k) for d, row in EXPECTED.items() for k in row]


@pytest.mark.parametrize("design,key", CASES, ids=[f"{d}-{k}" for d, k in CASES])
def test_a_key_is_used_refused_or_warned(data, design, key):
    without, with_key = change(design, key, base(design, data))
    expected = EXPECTED[design][key]
    status0, before = outcome_of(without)
    assert status0 == "ok", before
    status, after = outcome_of(with_key)
    if expected == REFUSED:
        assert status == "exit2", f"{design} {key}: expected exit 2, got {status}"
        named, message = after  # categorical is refused as the covariates it adds where covariates are
        assert named == key or (key == "categorical" and named == "covariates"), (named, message)
        return
    assert status == "ok", after
    if expected == USED:
        assert not _same(before, after), f"{design} ignores {key}"
        assert not any(w.startswith(f"{key} is not used") for w in after["warnings"]), after["warnings"]
    elif expected == WARNED:
        assert any(w.startswith(f"{key} is not used") for w in after["warnings"]), after["warnings"]
        rest = {**after, "warnings": [w for w in after["warnings"] if not w.startswith(f"{key} is not used")]}
        assert _same(before, rest)
    else:  # NO_DRAWS
        assert _same({**before, "seed": None}, {**after, "seed": None}) and before["seed"] != after["seed"]


# (design, keys of the design block choosing the estimator, the option of another estimator and its value)
OTHER_ESTIMATORS = [
    ("weighting", {}, "outcome_model", "gbm"),
    ("weighting", {}, "folds", 2),
    ("weighting", {"options": {"estimator": "aipw"}}, "folds", 2),
    ("dml", {}, "trees", 40),
    ("dml", {}, "min_leaf", 20),
    *[("did", {"estimator": est}, name, value) for est in ("twfe", "2x2")
      for name, value in (("control_group", "not_yet_treated"), ("method", "reg"), ("base_period", "universal"),
                          ("aggregation", "dynamic"))],
    *[("did", {"estimator": est}, name, value) for est in ("imputation", "sun_abraham")
      for name, value in (("method", "reg"), ("base_period", "universal"))],
    ("synthetic_control", {}, "conformal_grid", 25),
    ("synthetic_control", {}, "ridge_lambda", 0.5),
    *[("time_series", {}, name, value) for name, value in (("ar1", False), ("draws", 200), ("parameter_draws", 10),
                                                         ("expected_model_size", 1.0),
                                                         ("prior_information_weight", 0.5))],
    *[("time_series", {"estimator": "structural"}, name, value) for name, value in (("trend", False),
                                                                                  ("hac_lags", 3))],
]


def with_design(spec: dict, keys: dict) -> dict:
    """``spec`` with ``keys`` merged into its design block (``options`` merged too)."""
    spec = copy.deepcopy(spec)
    for key, value in keys.items():
        if key == "options":
            spec["design"].setdefault("options", {}).update(value)
        else:
            spec["design"][key] = value
    return spec


@pytest.mark.parametrize("design,chosen,name,value", OTHER_ESTIMATORS,
                         ids=[f"{d}-{i}-{n}" for i, (d, _, n, _) in enumerate(OTHER_ESTIMATORS)])
def test_an_option_of_another_estimator_is_refused(data, design, chosen, name, value):
    spec = with_design(base(design, data), {**chosen, "options": {**chosen.get("options", {}), name: value}})
    status, (key, message) = outcome_of(spec)
    assert status == "exit2" and key == f"design.options.{name}", message
    assert "is not read by this study" in message and "remove it" in message


@pytest.mark.parametrize("design,chosen,name,value", [
    ("weighting", {"options": {"estimator": "aipw"}}, "outcome_model", "gbm"),
    ("weighting", {"options": {"propensity_model": "gbm"}}, "folds", 2),
    ("dml", {"options": {"model": "forest", "trees": 20}}, "min_leaf", 20),
    ("time_series", {"estimator": "structural", "options": {"draws": 200, "parameter_draws": 10}}, "ar1", False),
    ("time_series", {}, "hac_lags", 3),
    ("synthetic_control", {"options": {"conformal": True, "conformal_grid": 20}}, "conformal_grid", 25),
])
def test_the_same_option_is_used_by_its_own_estimator(data, design, chosen, name, value):
    """The refusals above are not of options that do nothing: under their own estimator they move the result."""
    spec = with_design(base(design, data), chosen)
    status0, before = outcome_of(spec)
    status, after = outcome_of(with_design(spec, {"options": {name: value}}))
    assert status0 == status == "ok", (before, after)
    assert not _same(before, after)


def test_validate_warns_of_unread_settings_as_estimate_does(runner):
    """validate is where a CI job first meets a spec: the warnings of settings no check reads show there too."""
    from pathlib import Path

    from tests.conftest import invoke

    spec = Path(__file__).resolve().parents[1] / "specs" / "lalonde_psm.yaml"
    res = invoke(runner, ["validate", str(spec), "--set", "thresholds.pre_fit=0.2", "--format", "json"])
    assert res.exit_code == 0, res.stderr
    import json

    warnings = json.loads(res.stdout)["warnings"]  # one spec: one object
    assert any(w.startswith("thresholds.pre_fit is not used") for w in warnings)
