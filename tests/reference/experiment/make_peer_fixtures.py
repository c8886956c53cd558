"""Run the experiment design's peers and store their raw output with versions.

* tea_tasting_analyze.json: tea-tasting's ``Experiment.analyze`` on ``users(6000, seed=7, arms=3)``
  (simulated_users.py), once on the pandas frame and once through Ibis + DuckDB on the CSV pandas writes
  of it: every row of its result for both comparisons with the control arm 0.
* statsmodels_multipletests.json: ``statsmodels.stats.multitest.multipletests`` (Holm and
  Benjamini-Hochberg) on a fixed list of p-values.

Run from the repository root: .venv/bin/python tests/reference/experiment/make_peer_fixtures.py
"""

from __future__ import annotations

import hashlib
import json
import platform
import sys
import tempfile
from importlib.metadata import version
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

from simulated_users import users  # noqa: E402

DATA = {"n": 6000, "seed": 7, "arms": 3}
P_VALUES = [0.01, 0.04, 0.03, 0.005, 0.2, 0.5]


def data_csv() -> str:
    """The data as the tests write it (pandas writes floats with repr: read back exactly)."""
    return users(**DATA).to_csv(index=False)


def versions(*packages: str) -> dict[str, str]:
    return {"python": platform.python_version(), **{p: version(p) for p in packages}}


def tea_tasting() -> dict:
    import ibis
    import pandas as pd
    import tea_tasting as tt

    text = data_csv()
    exp = tt.Experiment(variant="variant", metrics={
        "revenue": tt.Mean("revenue"),
        "revenue_cuped": tt.Mean("revenue", "revenue_covariate"),
        "orders_per_session": tt.RatioOfMeans("orders", "sessions"),
        "orders_per_session_cuped": tt.RatioOfMeans("orders", "sessions", "orders_covariate", "sessions_covariate"),
    })
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "users.csv"
        path.write_text(text)
        inputs = {"pandas": pd.read_csv(path), "ibis": ibis.duckdb.connect().read_csv(str(path))}
        results = {}
        for source, data in inputs.items():
            out = exp.analyze(data, control=0, all_variants=True)
            results[source] = {f"{control}-{arm}": res.to_dicts() for (control, arm), res in out.items()}
    return {
        "versions": versions("tea-tasting", "ibis-framework", "duckdb", "pandas", "numpy", "scipy"),
        "data": {"generator": "simulated_users.users", **DATA, "csv_sha256": hashlib.sha256(text.encode()).hexdigest()},
        "call": "tt.Experiment(variant='variant', metrics={revenue: Mean('revenue'), revenue_cuped: Mean('revenue', "
                "'revenue_covariate'), orders_per_session: RatioOfMeans('orders', 'sessions'), "
                "orders_per_session_cuped: RatioOfMeans('orders', 'sessions', 'orders_covariate', "
                "'sessions_covariate')}).analyze(data, control=0, all_variants=True), defaults otherwise "
                "(Welch t, alpha 0.05, relative interval on the log scale)",
        "results": results,
    }


def statsmodels_multipletests() -> dict:
    from statsmodels.stats.multitest import multipletests

    results = {}
    for method in ("holm", "fdr_bh"):
        reject, corrected, sidak, bonferroni = multipletests(P_VALUES, alpha=0.05, method=method)
        results[method] = {"reject": [bool(x) for x in reject], "pvals_corrected": [float(x) for x in corrected],
                           "alphacSidak": float(sidak), "alphacBonf": float(bonferroni)}
    return {"versions": versions("statsmodels", "numpy"), "p_values": P_VALUES,
            "call": "multipletests(p_values, alpha=0.05, method=method)", "results": results}


def main() -> None:
    for name, make in (("tea_tasting_analyze.json", tea_tasting),
                       ("statsmodels_multipletests.json", statsmodels_multipletests)):
        (HERE / name).write_text(json.dumps(make(), indent=1, sort_keys=True) + "\n")
        print("wrote", HERE / name)


if __name__ == "__main__":
    main()
