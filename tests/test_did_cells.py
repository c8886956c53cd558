"""Issue 16 point 2 for did: Callaway-Sant'Anna from cohort x period cells (``causalcli/designs/did/cells.py``).

The cells' SQL runs in local DuckDB here against the row-level path on the same table (estimates, SEs, every
aggregation, the pre-test and honest-DiD to 1e-9 relative), and through PostgreSQL and Spark end to end,
where only O(cohorts x periods^2) rows come back.
"""

from __future__ import annotations

import dataclasses
import json

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
import yaml

from causalcli.designs.did.cells import RowsNeeded, engine_cells, prepare_cells
from causalcli.study.load import as_loaded
from causalcli.study.run import prepare_study
from tests.conftest import invoke
from tests.engines import load_postgres, register_spark
from tests.test_engines import ENV, ROOT, arrow_of, differences

MPDTA = ROOT / "specs" / "mpdta_did.yaml"


def fit_both(spec: dict):
    """The row-level fit and the cells fit of one spec on its local file, as plain JSON."""
    loaded = as_loaded(spec)
    prep = prepare_study(loaded, warm=True)
    design, study = prep.design, loaded.study
    rows = design.fit(design.prepare(study, prep.table, prep.identification, loaded), study, 0)
    cells = design.fit(prepare_cells(study, prep.table, lambda: None), study, 0)

    def plain(f):
        return json.loads(json.dumps({"estimate": dataclasses.asdict(f.estimate), "n": f.n, "warnings": f.warnings,
                                      "effects": [dataclasses.asdict(e) for e in f.effects],
                                      "checks": [dataclasses.asdict(c) for c in f.checks],
                                      "diagnostics": f.diagnostics}))
    return plain(rows), plain(cells)


def mpdta_spec(**options) -> dict:
    spec = yaml.safe_load(MPDTA.read_text())
    spec["data"]["path"] = str(MPDTA.parent / spec["data"]["path"])
    spec["design"]["options"].update(options)
    return spec


@pytest.mark.parametrize("options", [{}, {"control_group": "not_yet_treated"}, {"base_period": "universal"},
                                     {"aggregation": "dynamic", "method": "reg"}])
def test_cells_equal_the_rows_on_mpdta(options):
    rows, cells = fit_both(mpdta_spec(**options))
    diffs = differences(cells, rows)
    assert not diffs, diffs[:5]
    assert rows["estimate"]["std_error"] > 0 and len(rows["diagnostics"]["group_time"]) >= 12


def staggered_panel(path, units: int, periods: int, seed: int, treatment: bool = False) -> None:
    """A balanced staggered panel: cohorts 3, 5 and never, unit and period effects, dynamic effects."""
    rng = np.random.default_rng(seed)
    cohort = rng.choice(np.array([0, 3, 5]), size=units)
    unit_effect = rng.normal(50.0, 10.0, units)
    u = np.repeat(np.arange(units), periods)
    t = np.tile(np.arange(1, periods + 1), units)
    g = cohort[u]
    on = (g > 0) & (t >= g)
    y = unit_effect[u] + 0.7 * t + np.where(on, 1.0 + 0.3 * (t - g), 0.0) + rng.standard_normal(u.size)
    columns = {"id": u + 1000, "period": t, "y": y, "first": g}
    if treatment:
        columns["d"] = on.astype(np.int64)
    pq.write_table(pa.table(columns), path)


@pytest.mark.parametrize("seed", [1, 2])
def test_cells_equal_the_rows_on_simulated_staggered_panels(seed, tmp_path):
    path = tmp_path / "panel.parquet"
    staggered_panel(path, 90, 6, seed, treatment=seed == 2)
    design = {"method": "did", "unit": "id", "time": "period", "estimator": "callaway_santanna",
              **({"cohort": "first"} if seed == 1 else {})}
    spec = {"version": 1, "name": "sim", "data": {"path": str(path)}, "outcome": "y", "design": design,
            **({"treatment": "d"} if seed == 2 else {})}
    rows, cells = fit_both(spec)
    diffs = differences(cells, rows)
    assert not diffs, diffs[:5]


def test_an_unbalanced_panel_needs_the_rows(tmp_path):
    path = tmp_path / "panel.parquet"
    staggered_panel(path, 80, 6, 3)
    table = pq.read_table(path)
    pq.write_table(table.slice(1), path)  # the first unit loses a period
    loaded = as_loaded({"version": 1, "name": "sim", "data": {"path": str(path)}, "outcome": "y",
                        "design": {"method": "did", "unit": "id", "time": "period", "cohort": "first",
                                   "estimator": "callaway_santanna"}})
    prep = prepare_study(loaded, warm=True)
    with pytest.raises(RowsNeeded, match="unbalanced"):
        engine_cells(prep.table, loaded.study)


def estimate(runner, spec, *flags):
    res = invoke(runner, ["estimate", str(spec), "--format", "json", "--quiet", *flags])
    return res.exit_code, json.loads(res.stdout) if res.stdout.strip() else {}, res.stderr


def engine_spec(tmp_path, name: str, data: dict):
    spec = yaml.safe_load(MPDTA.read_text())
    spec["data"] = data
    out = tmp_path / f"{name}.yaml"
    out.write_text(yaml.safe_dump(spec))
    return out


@pytest.mark.engines
def test_postgres_sends_back_the_cells_not_the_panel(postgres_url, runner, tmp_path, monkeypatch):
    monkeypatch.setenv(ENV, postgres_url)
    load_postgres(postgres_url, "mpdta_cells", arrow_of(MPDTA.parent / "data" / "mpdta.csv"))
    spec = engine_spec(tmp_path, "pg", {"backend": "postgres", "table": "mpdta_cells", "connection_env": ENV})
    code, got, err = estimate(runner, spec, "--no-refute")
    want = estimate(runner, MPDTA, "--no-refute")[1]
    assert code == 0, err
    assert not differences(got, want), differences(got, want)[:5]
    provenance = got["provenance"]
    assert provenance["did_cells"]["computed_from"] == "cohort x period cells in the engine"
    # 4 cohorts x 15 period pairs, and a few counts: far fewer than the 2,500 rows of 500 counties
    assert provenance["fetched_rows"] < 100 < 2500 == got["n"]["rows"]
    assert estimate(runner, spec, "--no-refute")[1]["estimate"] == got["estimate"]  # reruns: the same bits


@pytest.mark.engines
@pytest.mark.xdist_group("spark")
def test_spark_sends_back_the_cells_and_fetches_the_panel_for_the_refuters(spark, runner, tmp_path):
    register_spark("mpdta_cells", arrow_of(MPDTA.parent / "data" / "mpdta.csv"))
    spec = engine_spec(tmp_path, "spark", {"backend": "spark", "table": "mpdta_cells"})
    code, got, err = estimate(runner, spec, "--no-refute")
    assert code == 0, err
    assert not differences(got, estimate(runner, MPDTA, "--no-refute")[1])
    cells_only = got["provenance"]["fetched_rows"]
    assert cells_only < 100
    refuted = estimate(runner, spec)[1]  # the refuters permute units: the panel's 2,500 rows come back too
    assert refuted["provenance"]["fetched_rows"] == cells_only + 2500
    assert not differences(refuted, estimate(runner, MPDTA)[1])
