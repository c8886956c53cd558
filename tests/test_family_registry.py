"""The registry is the one list of design families (issue 14, point 1).

A toy family declared in the test suite (``tests/toy_family.py``) is registered with
``causalcli.designs.register`` and then appears in ``schema``, ``methods`` (text and JSON) and
``estimate`` (``--plots`` included) with no other change; after ``unregister`` it is gone.
The family index of ``docs/designs/README.md`` is generated from the same registry.
"""

from __future__ import annotations

import json
import math

import numpy as np
import pandas as pd
import pytest

import causalcli.designs as designs
from tests.conftest import ROOT, invoke, run_json
from tests.toy_family import FAMILY, difference_in_means


@pytest.fixture
def toy_family(request):
    designs.register(FAMILY)
    request.addfinalizer(lambda: designs.unregister(FAMILY.name))
    return FAMILY


@pytest.fixture
def toy_spec(tmp_path, write_spec):
    rng = np.random.default_rng(3)
    t = np.repeat([0, 1], 30)
    data = pd.DataFrame({"t": t, "y": 1.0 + 1.5 * t + rng.normal(size=t.size)})
    data.to_csv(tmp_path / "toy.csv", index=False)
    spec = {"version": 1, "data": {"path": "toy.csv"}, "treatment": "t", "outcome": "y",
            "design": {"method": "toy"}, "refute": [{"placebo_treatment": {"simulations": 19}}], "seed": 0}
    return write_spec(spec), data


def _schema_methods(schema: dict) -> set[str]:
    """The `method` constants of every design model in the JSON Schema of the study spec."""
    found = set()
    for definition in schema.get("$defs", {}).values():
        method = definition.get("properties", {}).get("method", {})
        found.update([method["const"]] if "const" in method else method.get("enum", []))
    return found


def test_toy_family_reaches_schema(runner, toy_family):
    res = invoke(runner, ["schema"])
    assert res.exit_code == 0, res.stderr
    assert {"toy", "matching", "did", "synthetic_control"} <= _schema_methods(json.loads(res.stdout))


def test_toy_family_reaches_methods(runner, toy_family):
    res = invoke(runner, ["methods"])
    assert res.exit_code == 0, res.stderr
    assert f"  {'toy':<18} {toy_family.summary}" in res.stdout.splitlines()
    res = invoke(runner, ["methods", "--format", "json"])
    listed = {d["name"]: d for d in json.loads(res.stdout)["designs"]}
    assert listed["toy"]["estimators"] == ["difference_in_means"]
    assert listed["toy"]["inference"] == ["normal_unpooled"]
    assert list(listed)[-1] == "toy"  # order=999: listed last


def test_toy_family_estimates_and_plots(runner, toy_family, toy_spec, tmp_path):
    spec, data = toy_spec
    plots = tmp_path / "plots"
    code, out, res = run_json(runner, [str(spec), "--plots", str(plots), "--jobs", "1"])
    assert code == 0, res.stderr
    value, se = difference_in_means(data["y"].to_numpy(), data["t"].to_numpy())
    est = out["estimate"]
    assert out["design"] == "toy" and out["estimator"] == "difference_in_means"
    assert est["value"] == pytest.approx(value, rel=1e-12) and est["std_error"] == pytest.approx(se, rel=1e-12)
    assert est["ci_lower"] == pytest.approx(value - 1.959963984540054 * se, rel=1e-9)
    assert est["p_value"] == pytest.approx(math.erfc(abs(value / se) / math.sqrt(2)), rel=1e-9)
    assert out["n"] == {"rows": 60, "dropped_missing": 0, "treated": 30, "control": 30}
    # the default refuter hooks of Design work through point / treatment_of
    (placebo,) = out["refutations"]
    assert placebo["name"] == "placebo_treatment" and placebo["simulations"] == 19
    assert (plots / "study-means.png").read_bytes().startswith(b"\x89PNG")


def test_unknown_method_lists_the_registry(runner, toy_spec):
    spec, _ = toy_spec  # toy not registered: the spec is refused, naming the methods there are
    code, _, res = run_json(runner, [str(spec)])
    assert code == 2 and "toy" in res.stderr and "matching" in res.stderr


def test_unregister_removes_the_family(runner):
    designs.register(FAMILY)
    designs.unregister(FAMILY.name)
    assert "toy" not in designs.families()
    assert "toy" not in _schema_methods(json.loads(invoke(runner, ["schema"]).stdout))


def test_docs_index_is_generated_from_the_registry():
    """docs/designs/README.md equals ``python -m causalcli.designs``; every page it links exists."""
    committed = (ROOT / "docs/designs/README.md").read_text()
    assert committed == designs.docs_index(), (
        "docs/designs/README.md is out of date: .venv/bin/python -m causalcli.designs > docs/designs/README.md")
    for family in designs.families().values():
        assert (ROOT / family.docs).is_file(), f"{family.name}: no page {family.docs}"
