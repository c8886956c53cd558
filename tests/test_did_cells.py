"""Issue 16 point 2 for did: Callaway-Sant'Anna, TWFE, the event study and 2x2 from cohort x period cells
(``causalcli/designs/did/cells.py``, ``cells_regression.py``).

The cells' SQL runs in local DuckDB here against the row-level path on the same table (estimates, SEs, every
aggregation, the pre-tests, Goodman-Bacon and honest-DiD to 1e-9 relative), and through PostgreSQL and Spark
end to end, where only O(cohorts x periods^2) rows come back, however many units.
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


def mpdta_spec(design: dict | None = None, **options) -> dict:
    spec = yaml.safe_load(MPDTA.read_text())
    spec["data"]["path"] = str(MPDTA.parent / spec["data"]["path"])
    if design:  # another estimator: Callaway-Sant'Anna's options do not apply
        spec["design"].update(design, options={})
    spec["design"]["options"].update(options)
    return spec


TWFE = {"estimator": "twfe"}
EVENT_STUDY = {"estimator": "twfe", "event_study": {"leads": 3, "lags": 2}}
SUN_ABRAHAM = {"estimator": "sun_abraham"}


# honest-DiD's linear programs take most of the time: checked once per estimator family
QUICK = {"honest_did": False}


@pytest.mark.parametrize("design,options", [(None, {}), (None, {"control_group": "not_yet_treated", **QUICK}),
                                            (None, {"base_period": "universal", **QUICK}),
                                            (None, {"aggregation": "dynamic", "method": "reg", **QUICK}),
                                            (TWFE, {}), (EVENT_STUDY, {}), (SUN_ABRAHAM, QUICK)])
def test_cells_equal_the_rows_on_mpdta(design, options):
    rows, cells = fit_both(mpdta_spec(design, **options))
    diffs = differences(cells, rows)
    assert not diffs, diffs[:5]
    assert rows["estimate"]["std_error"] > 0
    d = rows["diagnostics"]
    if design is None:
        assert len(d["group_time"]) >= 12 and ("sensitivity" in d) == (options.get("honest_did") is not False)
    else:  # what the regressions carry besides the estimate came from the cells too
        assert d["pre_trend"]["p_value"] > 0 and d["standard_errors"]["clusters"] == 500
        assert ("sensitivity" in d) == (design is EVENT_STUDY)
        assert len(d["goodman_bacon"]["comparisons"]) >= 3 if design is not SUN_ABRAHAM else d["sun_abraham"]


def staggered_panel(path, units: int, periods: int, seed: int, treatment: bool = False,
                    cohorts: tuple[int, ...] = (0, 3, 5)) -> None:
    """A balanced staggered panel: cohorts 3, 5 and never, unit and period effects, dynamic effects."""
    rng = np.random.default_rng(seed)
    cohort = rng.choice(np.array(cohorts), size=units)
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


def sim_spec(path, design: dict, treatment: bool = True) -> dict:
    return {"version": 1, "name": "sim", "data": {"path": str(path)}, "outcome": "y",
            "design": {"method": "did", "unit": "id", "time": "period", **design},
            **({"treatment": "d"} if treatment else {})}


@pytest.mark.parametrize("design", [{"estimator": "callaway_santanna", "options": QUICK}, TWFE])
def test_cells_equal_the_rows_on_a_simulated_staggered_panel(design, tmp_path):
    # cohorts from the treatment column (mpdta above has a cohort column): its first treated periods in SQL
    path = tmp_path / "panel.parquet"
    staggered_panel(path, 90, 6, 2, treatment=True)
    rows, cells = fit_both(sim_spec(path, design))
    diffs = differences(cells, rows)
    assert not diffs, diffs[:5]


def test_a_singular_pre_test_covariance_is_singular_from_the_cells_too(tmp_path):
    """Many small cohorts: more pre-treatment ATT(g,t) than the units can span. The cells' covariance carries
    rounding noise (~1e-14 of its scale) that R did's rule (solve() fails below eps) took for information: the
    cells gave a Wald test of W ~ 1e13, p = 0 where the rows said singular, and another rank."""
    path = tmp_path / "panel.parquet"
    staggered_panel(path, 50, 12, 1, treatment=True, cohorts=(0, 0, 0, 0, 3, 4, 5, 6, 7, 8, 9, 10, 11))
    rows, cells = fit_both(sim_spec(path, {"estimator": "callaway_santanna", "options": QUICK}))
    (from_rows,), (from_cells,) = ([c for c in f["checks"] if c["name"] == "pre_trend"] for f in (rows, cells))
    assert from_rows == from_cells and from_rows["passed"] is None
    assert "is singular (rank 28)" in from_rows["detail"]


def test_the_2x2_from_cells_equals_the_rows(tmp_path):
    path = tmp_path / "panel.parquet"
    staggered_panel(path, 60, 5, 4, treatment=True, cohorts=(0, 3))
    rows, cells = fit_both(sim_spec(path, {"estimator": "2x2"}))
    diffs = differences(cells, rows)
    assert not diffs, diffs[:5]
    assert set(rows["diagnostics"]["coefficients"]) == {"(intercept)", "treated", "post", "treated_x_post"}


@pytest.mark.parametrize("change,why", [("unbalanced", "unbalanced"), ("on_off", "switches off in 1 rows")])
def test_panels_the_cells_cannot_describe_need_the_rows(change, why, tmp_path):
    path = tmp_path / "panel.parquet"
    staggered_panel(path, 80, 6, 3, treatment=True)
    table = pq.read_table(path)
    if change == "unbalanced":
        table = table.slice(1)  # the first unit loses a period
    else:  # one treated unit-period turned off: twfe uses an on/off treatment as given
        d = table.column("d").to_numpy().copy()
        d[np.flatnonzero(d)[1]] = 0
        table = table.set_column(table.schema.get_field_index("d"), "d", pa.array(d))
    pq.write_table(table, path)
    loaded = as_loaded(sim_spec(path, TWFE))
    prep = prepare_study(loaded, warm=True)
    with pytest.raises(RowsNeeded, match=why):
        engine_cells(prep.table, loaded.study)


def estimate(runner, spec, *flags):
    res = invoke(runner, ["estimate", str(spec), "--format", "json", "--quiet", *flags])
    return res.exit_code, json.loads(res.stdout) if res.stdout.strip() else {}, res.stderr


def engine_spec(tmp_path, name: str, data: dict, spec: dict | None = None):
    spec = dict(spec or yaml.safe_load(MPDTA.read_text()), data=data)
    out = tmp_path / f"{name}.yaml"
    out.write_text(yaml.safe_dump(spec))
    return out


def file_and_engine(tmp_path, name: str, spec: dict, data: dict):
    """The spec on its file and on the engine's table ``data``."""
    return engine_spec(tmp_path, f"{name}_file", spec["data"], spec), engine_spec(tmp_path, name, data, spec)


def simulated(tmp_path, units: int, seed: int = 5):
    """A staggered panel (treatment column, 6 periods) as a file and as Arrow, with a static TWFE spec."""
    path = tmp_path / f"panel{units}.parquet"
    staggered_panel(path, units, 6, seed, treatment=True)
    return sim_spec(path, TWFE), pq.read_table(path)


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
def test_a_panel_above_max_rows_keeps_its_estimate_and_reports_the_refuters_not_run(postgres_url, runner, tmp_path,
                                                                                    monkeypatch):
    # the estimate needs only the cells; the refuters need the 2,500 rows, above data.max_rows: they are reported
    # as not run with the reason, and the study still succeeds with the file's estimate
    monkeypatch.setenv(ENV, postgres_url)
    load_postgres(postgres_url, "mpdta_capped", arrow_of(MPDTA.parent / "data" / "mpdta.csv"))
    spec = engine_spec(tmp_path, "capped", {"backend": "postgres", "table": "mpdta_capped", "connection_env": ENV,
                                            "max_rows": 1000})
    code, got, err = estimate(runner, spec)
    assert code == 0, err
    want = estimate(runner, MPDTA, "--no-refute")[1]["estimate"]
    assert {k: v for k, v in got["estimate"].items() if isinstance(v, float)} == pytest.approx(
        {k: v for k, v in want.items() if isinstance(v, float)}, rel=1e-9)  # the cells' sums, as elsewhere here
    assert got["refutations"] and all(r["passed"] is None and r["p_value"] is None for r in got["refutations"])
    assert all("not run" in r["detail"] and "data.max_rows" in r["detail"] for r in got["refutations"])
    assert got["provenance"]["fetched_rows"] < 100


@pytest.mark.engines
def test_postgres_runs_the_regressions_from_cells_whatever_the_number_of_units(postgres_url, runner, tmp_path,
                                                                               monkeypatch):
    monkeypatch.setenv(ENV, postgres_url)
    load_postgres(postgres_url, "mpdta_es", arrow_of(MPDTA.parent / "data" / "mpdta.csv"))
    data = {"backend": "postgres", "table": "mpdta_es", "connection_env": ENV}
    local, remote = file_and_engine(tmp_path, "es", mpdta_spec(EVENT_STUDY), data)
    code, got, err = estimate(runner, remote, "--no-refute")
    assert code == 0, err
    assert not differences(got, estimate(runner, local, "--no-refute")[1])
    assert got["provenance"]["did_cells"]["computed_from"] == "cohort x period cells in the engine"
    assert got["provenance"]["fetched_rows"] < 100 and got["estimator"] == "twfe_event_study"
    fetched = []
    for units in (100, 1000):  # static TWFE, cohorts from the treatment column
        spec, arrow = simulated(tmp_path, units)
        load_postgres(postgres_url, f"sim{units}", arrow)
        local, remote = file_and_engine(tmp_path, f"sim{units}", spec,
                                        {"backend": "postgres", "table": f"sim{units}", "connection_env": ENV})
        code, got, err = estimate(runner, remote, "--no-refute")
        assert code == 0, err
        assert not differences(got, estimate(runner, local, "--no-refute")[1])
        assert got["n"]["units"] == units and "goodman_bacon" in got["diagnostics"]
        fetched.append(got["provenance"]["fetched_rows"])
    assert fetched[0] == fetched[1] < 100  # 3 cohorts x 21 period pairs and a few counts, however many units


@pytest.mark.engines
@pytest.mark.xdist_group("spark")
def test_spark_sends_back_the_cells_and_fetches_the_panel_for_the_refuters(spark, runner, tmp_path):
    register_spark("mpdta_cells", arrow_of(MPDTA.parent / "data" / "mpdta.csv"))
    # honest-DiD from the cells is compared on PostgreSQL and locally: here it would only cost time
    local, remote = file_and_engine(tmp_path, "spark", mpdta_spec(**QUICK), {"backend": "spark",
                                                                            "table": "mpdta_cells"})
    code, got, err = estimate(runner, remote, "--no-refute")
    assert code == 0, err
    assert not differences(got, estimate(runner, local, "--no-refute")[1])
    cells_only = got["provenance"]["fetched_rows"]
    assert cells_only < 100
    refuted = estimate(runner, remote)[1]  # the refuters permute units: the panel's 2,500 rows come back too
    assert refuted["provenance"]["fetched_rows"] == cells_only + 2500
    assert not differences(refuted, estimate(runner, local)[1])
    spec, arrow = simulated(tmp_path, 100)  # static TWFE: the check that the treatment stays on, in Spark SQL
    register_spark("sim_cells", arrow)
    local, remote = file_and_engine(tmp_path, "sim", spec, {"backend": "spark", "table": "sim_cells"})
    code, got, err = estimate(runner, remote, "--no-refute")
    assert code == 0, err
    assert got["provenance"]["did_cells"]["computed_from"] == "cohort x period cells in the engine"
    assert not differences(got, estimate(runner, local, "--no-refute")[1])
