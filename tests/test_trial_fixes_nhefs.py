"""Fixes from a new-user trial of weighting, matching and dml on NHEFS (Hernan and Robins, "Causal
Inference: What If", chapters 12-15): what the human renderers print."""

from __future__ import annotations

import numpy as np
import pytest

from causalcli.render.fmt import num


@pytest.mark.parametrize(("value", "shown"), [
    (4.29972666567046, "4.300"),  # NHEFS AIPW upper bound: it read [2.447, 4.3]
    (2.4468025981327726, "2.447"),
    (0.4870726071267902, "0.4871"),
    (np.float64(3.0), "3.000"),
    (0.1, "0.1000"),
    (999.96, "1000"),  # rounds up to four digits: no dangling point
    (-0.05, "-0.05000"),
    (1566.0, "1,566.0"),
    (403, "403"),  # a count stays a count
])
def test_floats_keep_their_trailing_zeros(value, shown):
    assert num(value) == shown


def test_three_digit_columns_keep_their_zeros_too():
    assert num(0.037, 3) == "0.0370" and num(0.0370001, 3) == "0.0370"
