"""`segments` or `weights` where a design does not use them: exit 2 naming the key, not ignored.

Before, matching, weighting, iv and rdd ran the study and silently left the segments out of the result
(weighting, iv, matching, did and rdd report them since: tests/test_weighting_segments.py, tests/test_iv_segments.py,
tests/test_matching_segments.py, tests/test_did_segments.py, tests/test_rdd_segments.py).
"""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.conftest import invoke

SPECS = Path(__file__).resolve().parents[1] / "specs"


@pytest.mark.parametrize("spec,design", [("prop99_synth.yaml", "synthetic_control")])
def test_segments_are_refused_where_not_built(runner, spec, design):
    res = invoke(runner, ["estimate", str(SPECS / spec), "--set", "segments=[black]"])
    assert res.exit_code == 2
    assert f"segments (effects by segment) are not built for the {design} design" in res.stderr
    assert "key 'segments'" in res.stderr and "Traceback" not in res.stderr


@pytest.mark.parametrize("method", ["time_series"])
def test_segments_are_refused_for_time_series(runner, tmp_path, method):  # (iv, rdd: tests/test_{iv,rdd}_segments.py)
    designs = {"time_series": {"method": "time_series", "time": "date", "intervention": "2024-01-10"}}
    spec = tmp_path / "s.yaml"
    spec.write_text(f"version: 1\nname: s\ndata: {{path: d.csv}}\noutcome: y\nsegments: [g]\n"
                    + ("treatment: t\n" if method == "iv" else "") + f"design: {designs[method]}\n")
    (tmp_path / "d.csv").write_text("y,t,z,x,g,date\n1,0,0,-1,a,2024-01-01\n")
    res = invoke(runner, ["validate", str(spec)])
    assert res.exit_code == 2 and f"not built for the {method} design" in res.stderr


@pytest.mark.parametrize("method", ["time_series"])
def test_weights_are_refused_where_not_built(runner, tmp_path, method):
    """A design whose fits take no observation weights refuses them: before, rdd ran a spec with weights and
    ignored them (iv and rdd take them now: tests/test_iv_weights.py, tests/test_rdd_weights.py)."""
    design = {"method": "time_series", "time": "date", "intervention": "2024-01-10"}
    spec = tmp_path / "s.yaml"
    spec.write_text(f"version: 1\nname: s\ndata: {{path: d.csv}}\noutcome: y\nweights: w\ndesign: {design}\n")
    (tmp_path / "d.csv").write_text("y,w,date\n1,2,2024-01-01\n")
    res = invoke(runner, ["validate", str(spec)])
    assert res.exit_code == 2 and f"observation weights are not supported by {method}" in res.stderr
