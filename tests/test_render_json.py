"""render_json's writer (render/json.py: dumps_indented) is json.dumps(indent=2, ensure_ascii=False,
allow_nan=False) byte for byte: on every golden result, on the values JSON treats specially, and in its errors."""

from __future__ import annotations

import enum
import json

import numpy as np
import pytest

from causalcli.render.json import dumps_indented
from tests.golden.golden import EXPECTED


def stdlib(payload) -> str:
    return json.dumps(payload, indent=2, ensure_ascii=False, allow_nan=False)


def test_every_golden_result_is_written_as_json_dumps_writes_it():
    files = sorted(EXPECTED.glob("*.json"))
    assert len(files) > 50
    for path in files:
        payload = json.loads(path.read_text())
        assert dumps_indented(payload) == stdlib(payload), path.name


class Level(enum.IntEnum):
    HIGH = 2


CASES = [
    {}, [], "", 0, -0.0, 1e16, 5e-324, 1.7976931348623157e308, 10 ** 30, True, None,
    {"a": [], "b": {}, "c": [[]], "d": [{}], "e": ({"x": 1},)},
    {"text": "é \u2028 \x00 \x1f \" \\ / \t\n", "%s": "100% sure", "%d%%": [1, "%"]},
    [{"side": "below", "lower": -1.0, "n": 3, "flag": True, "none": None},
     {"side": "above", "lower": 0.25, "n": 4, "flag": False, "none": None}],  # records: one template
    [{"a": 1, "b": 2}, {"b": 2, "a": 1}],  # same keys, another order
    [{"a": 1}, {"a": 1, "b": 2}], [{"a": 1}, [1, 2]], [{"a": [1]}, {"a": [2]}], [{"a": {"b": 1}}],
    [{}, {}], [{"a": 1}, "x"],
    {1: "int key", 2.5: "float key", True: "bool key", None: "null key"},
    {"enum": Level.HIGH, "np_float": np.float64(0.1), "np_bool": [True, False]},
    [Level.HIGH, {"k": Level.HIGH}], [{"k": np.float64(2.0)}, {"k": 1.0}],
    {"lower": [-1.0, 0.25, 1e16, 5e-324, -0.0], "n": [3, 10 ** 30, 0], "mixed": (1, 2.5), "bools": [True, 1],
     "levels": [Level.HIGH, 1], "np": [np.float64(0.5), 1.0], "side": ["below", "é \u2028 \" %s", "above"],
     "text_and_numbers": ["a", 1.0], "none": [None, 1]},  # columns (rdd's bins): one join
]


@pytest.mark.parametrize("payload", CASES, ids=range(len(CASES)))
def test_values_json_treats_specially_come_out_the_same(payload):
    assert dumps_indented(payload) == stdlib(payload)


@pytest.mark.parametrize("payload", [float("nan"), {"a": [1.0, float("inf")]}, [{"a": -float("inf")}],
                                     {"a": np.int64(3)}, {"a": {1, 2}}])
def test_what_json_refuses_raises_its_error(payload):
    with pytest.raises((ValueError, TypeError)) as want:
        stdlib(payload)
    with pytest.raises(type(want.value), match=str(want.value).replace("(", r"\(").replace(")", r"\)")):
        dumps_indented(payload)


def test_a_cycle_is_json_dumps_error():
    loop: list = []
    loop.append(loop)
    with pytest.raises(ValueError, match="Circular reference"):
        dumps_indented({"a": loop})


def test_numpy_floats_stay_on_the_fast_writer(monkeypatch):
    """numpy.float64 (a float subclass, which json.dumps writes as float.__repr__) does not send the whole
    payload back to json.dumps: rdd's diagnostics hold some, beside 11,379 plot bins."""
    import causalcli.render.json as writer

    payload = {"h": np.float64(0.25), "bins": [{"x": np.float64(1.5), "n": 3}, {"x": 2.0, "n": 4}]}
    expected = stdlib(payload)
    monkeypatch.setattr(writer.json, "dumps", lambda *a, **k: pytest.fail("fell back to json.dumps"))
    assert dumps_indented(payload) == expected


def test_clean_json_of_number_columns():
    """Flat number lists (rdd's bin columns) take clean_json's shortcut, with its answers: NaN and inf become
    null, tuples lists, and a bool or numpy scalar among them sends the list through the entry-by-entry path."""
    from causalcli.records import clean_json

    assert clean_json({"a": (1, 2.5)}) == {"a": [1, 2.5]} and type(clean_json((1, 2.5))) is list
    assert clean_json([1.0, float("nan"), float("inf"), 2]) == [1.0, None, None, 2]
    assert [type(v) for v in clean_json([True, 1, np.float64(0.5), np.int64(2)])] == [bool, int, np.float64, int]
    assert clean_json(("below", "above")) == ["below", "above"]
    assert clean_json(["a", float("nan")]) == ["a", None]
