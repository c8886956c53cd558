"""Golden test: the JSON of every bundled spec and of option combinations per family is unchanged, byte for byte.

The cases and the comparison live in tests/golden/golden.py; expected/ is written by
tests/golden/regenerate.py from the code as it stood (docs/DEVELOPING.md, "Golden test").
A difference here means users would see another output: either fix the change, or regenerate
deliberately and say in the commit which output changed and why.
"""

from __future__ import annotations

import json

import pytest

from tests.golden.golden import CASES, EXIT_CODES, EXPECTED, differences, expected_path, run_case, \
    serialise


def _param(case):
    return pytest.param(case, id=case.name, marks=[pytest.mark.slow] if case.slow else [])


@pytest.mark.parametrize("case", [_param(c) for c in CASES])
def test_output_equals_the_golden_file(case):
    code, payload = run_case(case)
    diff = differences(case, serialise(payload), expected_path(case).read_text())
    assert not diff, (f"{case.name}: the output changed (tests/golden/regenerate.py if deliberate):\n"
                      + "\n".join(diff[:20]))
    assert code == json.loads(EXIT_CODES.read_text())[case.name]


def test_every_case_has_its_golden_file_and_nothing_else_is_there():
    names = {c.name for c in CASES}
    files = {p.stem for p in EXPECTED.glob("*.json") if p != EXIT_CODES}
    assert files == names
    assert set(json.loads(EXIT_CODES.read_text())) == names


def test_the_comparison_sees_a_small_move_a_type_and_a_key_order():
    """The comparison is not looser than it says: a number moved by more than RTOL (1e-9) fails, a last-digit move
    (another machine's summation order) does not; a float for an integer, and key order, count."""
    case = CASES[0]
    want = json.dumps({"estimate": {"value": 1.0000000000000002, "std_error": 0.5}, "n": {"rows": 10}},
                      indent=2) + "\n"
    assert differences(case, want.replace("1.0000000000000002", "1.0000000000000004"), want) == []
    moved = want.replace("1.0000000000000002", "1.00000001")  # 1e-8
    assert differences(case, moved, want) == ["estimate.value: 1.00000001 != 1.0000000000000002"]
    assert differences(case, want.replace('"rows": 10', '"rows": 10.0'), want) == ["n.rows: 10.0 != 10"]
    reordered = json.dumps({"estimate": {"std_error": 0.5, "value": 1.0000000000000002}, "n": {"rows": 10}},
                           indent=2) + "\n"
    assert differences(case, reordered, want)
