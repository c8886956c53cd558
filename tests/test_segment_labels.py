"""Segment labels (``column=value``) of the designs that read segment columns from rows: a whole number stored as a
float read ``age=25.0`` in weighting and dml (the trial on NHEFS); now ``age=25``, as iv's."""

from __future__ import annotations

import numpy as np

from causalcli.data.segments import segment_labels
from causalcli.study.run import run_study
from tests.conftest import base_spec, simulate


def test_numbers_are_labelled_as_short_decimals_and_text_as_it_is():
    assert segment_labels(np.array([25.0, 2.5, 3.0])).tolist() == ["25", "2.5", "3"]
    assert segment_labels(np.array([1, 2])).tolist() == ["1", "2"]
    assert segment_labels(np.array(["a", "b"], dtype=object)).tolist() == ["a", "b"]


def test_a_weighting_segment_of_whole_floats_reads_without_a_decimal_point(tmp_path):
    d = simulate(600)
    d["band"] = np.where(d.index % 2 == 0, 25.0, 40.0)
    path = tmp_path / "d.csv"
    d.to_csv(path, index=False)
    spec = base_spec(str(path), design={"method": "weighting", "estimand": "ate"}, refute=[])
    spec["segments"] = ["band"]
    labels = {e.label for e in run_study(spec).effects}
    assert labels == {"band=25", "band=40"}
