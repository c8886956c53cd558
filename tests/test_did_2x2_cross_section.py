"""A 2x2 whose treated group has no row before the start (repeated cross-sections): the message points to
``design.cohort``, and following it gives pyfixest's ``y ~ treated * post``."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from causalcli.study.run import run_study
from tests.conftest import invoke
from tests.test_did import COEF_TOL, SE_RTOL


def _cross_sections(n: int = 800, seed: int = 4) -> pd.DataFrame:
    """Individuals seen once, in year 1 or 2, in a treated or a control state; effect 2 in the treated after."""
    rng = np.random.default_rng(seed)
    group = rng.uniform(size=n) < 0.5
    year = np.where(rng.uniform(size=n) < 0.5, 1, 2)
    y = 1.0 + 0.5 * group + 0.3 * (year == 2) + 2.0 * (group & (year == 2)) + rng.normal(size=n)
    return pd.DataFrame({"id": np.arange(n), "year": year, "state": np.where(group, 10, 20),
                         "d": (group & (year == 2)).astype(int), "start": np.where(group, 2, 0), "y": y})


def test_2x2_without_treated_rows_before_the_start_points_to_cohort_and_following_it_works(
        runner, tmp_path, write_spec):
    df = _cross_sections()
    df.to_csv(tmp_path / "rcs.csv", index=False)
    spec = {"version": 1, "data": {"path": "rcs.csv"}, "treatment": "d", "outcome": "y",
            "design": {"method": "did", "unit": "id", "time": "year", "estimator": "2x2", "cluster": "id"},
            "refute": []}
    res = invoke(runner, ["estimate", str(write_spec(spec))])
    assert res.exit_code == 3
    assert "design.cohort" in res.stderr and "before the treatment starts (2)" in res.stderr
    assert "collinear" not in res.stderr
    # the advice: a column with the group's first treated period in all its rows
    spec["design"]["cohort"] = "start"
    out = run_study({**spec, "data": {"path": str(tmp_path / "rcs.csv")}})
    import pyfixest as pf

    df["treated"] = (df.start > 0).astype(int)
    df["post"] = (df.year >= 2).astype(int)
    m = pf.feols("y ~ treated * post", data=df, vcov={"CRV1": "id"})
    assert out.estimate.value == pytest.approx(m.coef()["treated:post"], abs=COEF_TOL)
    assert out.estimate.std_error == pytest.approx(m.se()["treated:post"], rel=SE_RTOL)
