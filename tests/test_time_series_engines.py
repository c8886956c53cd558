"""time_series on engines: event-level rows aggregated per period inside PostgreSQL and Spark equal the file's."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pyarrow.parquet as pq
import pytest
import yaml

from tests.engines import load_postgres, register_spark
from tests.test_engines import ENV, differences, estimate


def events(n: int = 20000, days: int = 120, seed: int = 5) -> pd.DataFrame:
    """Timestamped orders over four months, a lift of 20% from day 100 on; a control column per order."""
    rng = np.random.default_rng(seed)
    hours = rng.uniform(0, days * 24, n)
    amount = rng.gamma(2.0, 10.0, n) * np.where(hours >= 100 * 24, 1.2, 1.0)
    stamp = (pd.Timestamp("2024-01-01", tz="UTC") + pd.to_timedelta(hours, unit="h")).floor("s")  # Spark: microseconds
    return pd.DataFrame({"stamp": stamp, "amount": np.round(amount, 4), "visits": rng.poisson(3.0, n)})


@pytest.mark.engines
@pytest.mark.xdist_group("spark")
@pytest.mark.parametrize("period, aggregate", [("day", "sum"), ("week", "mean")])
def test_event_level_series_aggregated_in_the_engine(period, aggregate, spark, postgres_url, runner, tmp_path,
                                                      monkeypatch):
    monkeypatch.setenv(ENV, postgres_url)
    path = tmp_path / "orders.parquet"
    events().to_parquet(path, index=False)
    arrow = pq.read_table(path)
    load_postgres(postgres_url, "orders", arrow)
    register_spark("orders", arrow)
    design = {"method": "time_series", "time": "stamp", "intervention": "2024-04-10", "controls": ["visits"],
              "estimator": "segmented", "aggregate": aggregate, "period": period}
    sources = {"file": {"path": str(path)},
               "pg": {"backend": "postgres", "table": "orders", "connection_env": ENV},
               "spark": {"backend": "spark", "table": "orders"}}

    def run(name: str) -> dict:
        spec = tmp_path / f"{name}.yaml"
        spec.write_text(yaml.safe_dump({"version": 1, "name": "orders", "outcome": "amount", "design": design,
                                        "data": {**sources[name], "timezone": "Asia/Jakarta"}}))
        code, got, err = estimate(runner, spec)
        assert code in (0, 1), (name, err)
        return got

    results = [run(name) for name in sources]
    assert results[0]["diagnostics"]["series"]["period"] == period
    assert results[1]["provenance"]["fetched_rows"] <= results[0]["n"]["periods"] + 5  # periods, not orders
    for other in results[1:]:
        assert not differences(other, results[0]), differences(other, results[0])[:5]
