"""synthetic_control on engines: finer-than-panel rows aggregated to unit x period inside PostgreSQL and Spark
(design.aggregate) give the file's JSON, and only the cells come back."""

from __future__ import annotations

import numpy as np
import pyarrow.parquet as pq
import pytest
import yaml

from tests.engines import load_postgres, register_spark
from tests.test_engines import ENV, differences, estimate
from tests.test_synth_budget import FAST, PERIODS, START, UNITS, panel


@pytest.mark.engines
@pytest.mark.xdist_group("spark")
@pytest.mark.parametrize("aggregate", ["sum", "mean"])
def test_finer_rows_aggregated_in_the_engine_equal_the_file(aggregate, spark, postgres_url, runner, tmp_path,
                                                             monkeypatch):
    monkeypatch.setenv(ENV, postgres_url)
    data = panel()
    rows = data.loc[data.index.repeat(3)].reset_index(drop=True)
    if aggregate == "sum":  # each cell's three rows add up to the panel's values
        part = np.tile([0.2, 0.3, 0.5], len(data))
        rows = rows.assign(y=(rows["y"] * part).round(8), x=(rows["x"] * part).round(8))
    path = tmp_path / "visits.parquet"
    rows.to_parquet(path, index=False)
    arrow = pq.read_table(path)
    table = f"visits_{aggregate}"
    load_postgres(postgres_url, table, arrow)
    register_spark(table, arrow)
    design = {"method": "synthetic_control", "unit": "unit", "time": "t", "treated_unit": "u00",
              "treatment_start": START, "predictors": ["x"], "special_predictors": [["y", 2], ["y", 5]],
              "aggregate": aggregate, "options": FAST}
    sources = {"file": {"path": str(path)},
               "pg": {"backend": "postgres", "table": table, "connection_env": ENV},
               "spark": {"backend": "spark", "table": table}}

    def run(name: str) -> dict:
        spec = tmp_path / f"{name}.yaml"
        spec.write_text(yaml.safe_dump({"version": 1, "name": "visits", "outcome": "y", "design": design,
                                        "data": sources[name]}))
        code, got, err = estimate(runner, spec, "--no-refute")
        assert code in (0, 1), (name, err)
        return got

    results = [run(name) for name in sources]
    assert results[0]["n"]["rows"] == len(rows) and results[0]["n"]["units"] == UNITS
    for other in results[1:]:
        assert not differences(other, results[0]), differences(other, results[0])[:5]
        # the cells (units x periods) and the distinct units and periods; never the rows
        fetched = other["provenance"]["fetched_rows"]
        assert UNITS * PERIODS <= fetched <= UNITS * PERIODS + 2 * (UNITS + PERIODS) < len(rows), fetched
