"""Callaway-Sant'Anna against R's ``did`` on its example data ``mpdta`` (Callaway and Sant'Anna 2021).

Source: ``mpdta_r_did_ref_attgt.csv``, ``mpdta_r_did_ref_aggte.csv`` and ``mpdta_r_did_ref_pretest.csv`` are
R ``did::att_gt(bstrap = FALSE, panel = TRUE)`` and ``did::aggte(type = ..., bstrap = FALSE)`` output (did 2.x),
published with the csdid project's parity tests; ``r_did_mpdta.R`` states the calls. Data: ``mpdta.csv`` (R did's
example data) and ``did_sim_data.csv`` (scenario ``sim_nev_dr``). See README.md.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from causalcli.study.run import run_study
from tests.reference.did.sources import R_P_TOL, R_TOL, REF, SCENARIOS, cs_spec  # tolerances explained there


@pytest.mark.parametrize("scenario", list(SCENARIOS))
def test_callaway_santanna_equals_r_did(scenario):
    """R did::att_gt + aggte on mpdta (fixtures mpdta_r_did_ref_*.csv): ATT(g,t) and SE, four aggregations, pre-test."""
    res = run_study(cs_spec(scenario))
    att = pd.read_csv(REF / "mpdta_r_did_ref_attgt.csv").query("scenario == @scenario")
    gt = pd.DataFrame(res.diagnostics["group_time"])
    assert len(gt) == len(att)
    np.testing.assert_allclose(gt.group, att.group)
    np.testing.assert_allclose(gt.time, att.t)
    np.testing.assert_allclose(gt.att, att.att, atol=R_TOL, rtol=0)
    np.testing.assert_allclose(gt.std_error.astype(float), att.se, atol=R_TOL, rtol=0)
    agg = pd.read_csv(REF / "mpdta_r_did_ref_aggte.csv").query("scenario == @scenario")
    for kind in ("simple", "group", "dynamic", "calendar"):
        ref = agg[agg.type == kind]
        ours = res.diagnostics["aggregations"][kind]
        assert ours["att"] == pytest.approx(ref.overall_att.iloc[0], abs=R_TOL)
        assert ours["std_error"] == pytest.approx(ref.overall_se.iloc[0], abs=R_TOL)
        if kind != "simple":
            assert len(ours["elements"]) == len(ref)
            labels = [float(e["label"].split("=")[1]) for e in ours["elements"]]
            np.testing.assert_allclose(labels, ref.egt.astype(float))
            np.testing.assert_allclose([e["att"] for e in ours["elements"]], ref.att_egt, atol=R_TOL, rtol=0)
            np.testing.assert_allclose([e["std_error"] for e in ours["elements"]], ref.se_egt, atol=R_TOL, rtol=0)
    pre = pd.read_csv(REF / "mpdta_r_did_ref_pretest.csv").query("scenario == @scenario").iloc[0]
    assert res.diagnostics["pre_trend"]["statistic"] == pytest.approx(pre.W, abs=R_TOL)
    assert res.diagnostics["pre_trend"]["p_value"] == pytest.approx(pre.Wpval, abs=R_P_TOL)
    assert res.estimate.value == pytest.approx(agg[agg.type == "simple"].overall_att.iloc[0], abs=R_TOL)
    assert res.estimate.inference == "cs_analytic"
