"""time_series (structural) against the statsmodels-based ``causalimpact`` package (PyPI 0.2.6), live.

That package fits CausalImpact's model without AR(1) or seasonality (a local level and a static
regression on the controls) by maximum likelihood with statsmodels' UnobservedComponents, on data
standardised by the pre-period, and forecasts with the plug-in Kalman forecast (no parameter
uncertainty). Ours with ``options.ar1: false`` is the same model; it carries the regression
coefficients in the state (GLS given the variances) instead of as likelihood parameters, so the
optimiser's end point differs slightly. Tolerances:

* the counterfactual (the plug-in forecast) and the average effect: 1e-3 of the pre-period sd of y
  (what two optimisers' stopping rules leave; measured 6e-5 on this data);
* the width of the pointwise 95% band: within 10% and not narrower by more than 3%: ours adds
  parameter uncertainty and is a Monte Carlo quantile of 1000 paths (its error is about 3%).

The package imports PyMC on load (about 10 s), so this is in the slow suite.
"""

from __future__ import annotations

import datetime as dt

import numpy as np
import pandas as pd
import pytest

import causalcli
from tests.test_time_series import START, frame, simulate


@pytest.mark.peer
@pytest.mark.slow
def test_structural_matches_causalimpact_package(monkeypatch):
    import pandas.core.dtypes.common as common

    # causalimpact 0.2.6 calls a helper pandas 2 removed, with a result it never uses (its period check)
    monkeypatch.setattr(common, "is_datetime_or_timedelta_dtype", lambda x: False, raising=False)
    from causalimpact import CausalImpact

    y, X = simulate(T=300, start=240, effect=3.0, phi=0.0, season=False, seed=2)
    peer = CausalImpact(pd.DataFrame({"y": y, "x0": X[:, 0], "x1": X[:, 1]}), [0, 239], [240, 299])
    peer.run()
    inf = peer.inferences
    spec = {"version": 1, "name": "ts", "outcome": "sales",
            "design": {"method": "time_series", "time": "date", "controls": ["c0", "c1"],
                       "intervention": str(START + dt.timedelta(days=240)), "estimator": "structural",
                       "options": {"ar1": False}}}
    r = causalcli.estimate(spec, data=frame(y, X), refute=False)
    path = r.diagnostics["path"]
    scale = float(np.std(y[:240]))
    ours = np.array(path["counterfactual"][240:])
    theirs = inf["point_pred"].to_numpy()[240:]
    np.testing.assert_allclose(ours, theirs, rtol=0, atol=1e-3 * scale)
    assert abs(r.estimate.value - float(np.mean(y[240:] - theirs))) < 1e-3 * scale
    width = np.array(path["upper"][240:]) - np.array(path["lower"][240:])
    peer_width = (inf["point_pred_upper"] - inf["point_pred_lower"]).to_numpy()[240:]
    ratio = width / peer_width
    assert 0.97 < np.median(ratio) < 1.10, np.median(ratio)
