"""design.unit groups the rows by unit once: the unit checks and the statistics pass read the table of units.

Issue 17 point 7: at 10^8 rows each grouping of the rows by user costs tens of seconds, so a second one
(the statistics pass over a GROUP BY view) doubled the clustered study's time.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from causalcli.data import types
from causalcli.data.table import Table
from causalcli.study.run import run_study


def test_rows_are_grouped_by_unit_once_and_segments_carried_to_units(tmp_path, monkeypatch):
    rng = np.random.default_rng(3)
    users = np.repeat(np.arange(80), 4)
    country = np.where(users % 3 == 0, "US", "DE").astype(object)
    country[::4] = None  # a row without a value takes its unit's
    df = pd.DataFrame({"user": users, "variant": users % 2, "country": country,
                       "y": rng.normal(size=len(users))}).sample(frac=1.0, random_state=1)
    path = tmp_path / "s.parquet"
    df.to_parquet(path, index=False)
    groupings, queries = [], []
    group_rows_once, sql = types.group_rows_once, Table.sql
    monkeypatch.setattr(types, "group_rows_once", lambda *a: (groupings.append(a[1]), group_rows_once(*a))[1])
    monkeypatch.setattr(Table, "sql", lambda self, q, params=None: (queries.append(q), sql(self, q, params))[1])
    spec = {"version": 1, "name": "once", "data": {"path": str(path)}, "treatment": "variant",
            "segments": ["country"], "design": {"method": "experiment", "control": 0, "unit": "user",
                                                "metrics": [{"name": "y", "outcome": "y"}]}}
    result = run_study(spec)
    assert groupings == ["study_units"]
    assert not [q for q in queries if 'GROUP BY "user"' in q]  # no query groups the rows by unit again
    assert result.diagnostics["unit"]["units"] == 80
    units = result.diagnostics["segments"]["units"]["country"]
    assert {value: sum(arms.values()) for value, arms in units.items()} == {"US": 27, "DE": 53}
