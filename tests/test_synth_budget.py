"""Synthetic control at scale: placebo-in-space under a budget of fits (issue 15) and finer-than-panel rows
aggregated to unit x period in the engine (design.aggregate, issue 16). Engines: test_synth_engines.py."""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest
import yaml

from causalcli.designs.synthetic_control.space import default_placebo_units, placebo_columns

UNITS, PERIODS, START = 24, 8, 6
FAST = {"starts": 1, "conformal": False}  # one V search per fit: these tests are about the placebos and cells


def panel(seed: int = 3) -> pd.DataFrame:
    """24 units x 8 periods, two latent factors; unit u00 loses 2 from period 6 on."""
    rng = np.random.default_rng(seed)
    load = rng.uniform(0.5, 2.0, size=(UNITS, 2))
    load[0] = load[1:5].mean(axis=0)
    factors = np.column_stack([np.linspace(0, 2, PERIODS), np.cos(np.arange(PERIODS) / 2.0)])
    y = 10 + 4 * load @ factors.T + rng.normal(scale=0.3, size=(UNITS, PERIODS))
    y[0, START:] -= 2.0
    x = load[:, 0] + rng.normal(scale=0.1, size=UNITS)
    return pd.DataFrame([{"unit": f"u{i:02d}", "t": t, "y": round(float(y[i, t]), 6), "x": round(float(x[i]), 6)}
                         for i in range(UNITS) for t in range(PERIODS)])


def spec(tmp_path, data: pd.DataFrame, name: str, placebo_units: int | None = None, **design) -> str:
    path = tmp_path / f"{name}.csv"
    data.to_csv(path, index=False)
    body = {"version": 1, "name": name, "data": {"path": str(path)}, "outcome": "y",
            "design": {"method": "synthetic_control", "unit": "unit", "time": "t", "treated_unit": "u00",
                       "treatment_start": START, "predictors": ["x"], "special_predictors": [["y", 2], ["y", 5]],
                       "options": {**FAST, **({"placebo_units": placebo_units} if placebo_units else {})},
                       **design}}
    out = tmp_path / f"{name}.yaml"
    out.write_text(yaml.safe_dump(body))
    return str(out)


def run(path: str):
    from causalcli.study.run import run_study

    return run_study(path, refute=False, jobs=1)


def test_the_default_budget_is_the_fewest_fits_with_the_stated_monte_carlo_precision():
    for alpha, expected in ((0.05, 199), (0.10, 99), (0.01, 899)):
        b = default_placebo_units(alpha)
        assert b == expected
        assert (b + 1) % 100 == 0
        assert math.sqrt(alpha * (1 - alpha) / b) <= alpha / 3  # the precision it promises
        assert b == 99 or math.sqrt(alpha * (1 - alpha) / (b - 100)) > alpha / 3  # 100 fewer would not give it


def test_placebo_units_are_every_donor_up_to_the_budget_then_a_seeded_draw():
    every, drawn = placebo_columns(150, 199, seed=4)
    assert not drawn and np.array_equal(every, np.arange(1, 151))
    a, drawn = placebo_columns(1000, 199, seed=4)
    b, _ = placebo_columns(1000, 199, seed=4)
    c, _ = placebo_columns(1000, 199, seed=5)
    assert drawn and np.array_equal(a, b) and not np.array_equal(a, c)
    assert a.size == 199 and np.unique(a).size == 199 and a.min() >= 1 and a.max() <= 1000
    assert np.all(np.diff(a) > 0)


def test_a_drawn_placebo_test_ranks_the_treated_unit_among_the_same_fits_as_the_full_one(tmp_path):
    data = panel()
    full = run(spec(tmp_path, data, "full"))
    few = run(spec(tmp_path, data, "few", placebo_units=19))
    f, d = full.diagnostics["placebo_in_space"], few.diagnostics["placebo_in_space"]
    assert "monte_carlo_se" not in f and f["units"] == UNITS  # every donor: as before the budget
    assert few.estimate.value == full.estimate.value  # the treated unit's fit is untouched
    assert d["donors"] == UNITS - 1 and d["placebo_units"] == 19 and d["units"] == 20
    assert len(d["ratios"]) == 19 and set(d["ratios"]) < set(f["ratios"])
    # a placebo's fit uses every other donor whichever are drawn: the drawn ratios are the full run's
    for unit, ratio in d["ratios"].items():
        assert ratio == f["ratios"][unit]
    treated = few.diagnostics["post_pre_rmspe_ratio"]
    rank = 1 + sum(r >= treated for r in d["ratios"].values())
    assert d["rank"] == rank and few.estimate.p_value == rank / 20
    assert d["monte_carlo_se"] == pytest.approx(math.sqrt(rank / 20 * (1 - rank / 20) / 19), rel=1e-12)
    assert set(few.diagnostics["placebo_gaps"]) == set(d["ratios"])
    again = run(spec(tmp_path, data, "few", placebo_units=19))
    assert again.diagnostics["placebo_in_space"] == d  # seeded: the same draw


def test_finer_rows_are_refused_without_aggregate_and_summed_or_averaged_with_it(tmp_path):
    from causalcli.errors import DataError

    data = panel()
    want = run(spec(tmp_path, data, "panel"))
    thirds = data.loc[data.index.repeat(3)].reset_index(drop=True)
    part = np.tile([0.2, 0.3, 0.5], len(data))
    summed = thirds.assign(y=thirds["y"] * part, x=thirds["x"] * part)  # each cell's rows add up to the panel's
    with pytest.raises(DataError, match="design.aggregate"):
        run(spec(tmp_path, summed, "refused"))
    for how, rows in (("sum", summed), ("mean", thirds)):
        got = run(spec(tmp_path, rows, f"agg-{how}", aggregate=how))
        # the cells equal the panel's values to rounding (exact decimal sums, one division)
        assert got.estimate.value == pytest.approx(want.estimate.value, rel=1e-7)
        assert got.estimate.p_value == want.estimate.p_value
        assert got.n["rows"] == len(rows) and got.n["units"] == UNITS


def test_count_aggregate_counts_rows(tmp_path):
    from causalcli.designs.synthetic_control.cells import read_cells
    from causalcli.data.table import load_table
    from causalcli.study.run import as_loaded

    data = panel()
    rows = data.loc[data.index.repeat(np.where(data["t"] % 2 == 0, 2, 1))].reset_index(drop=True)
    rows.loc[0, "y"] = np.nan  # a missing value is left out of its cell
    loaded = as_loaded(spec(tmp_path, rows, "count", aggregate="count"))
    table = load_table(loaded, lazy=True)
    cells = read_cells(table, "unit", "t", ["y", "x"], "count")
    assert cells.rows == len(rows)
    first = (cells.units == "u00") & (cells.times == 0)
    assert cells.values["y"][first][0] == 1 and cells.values["x"][first][0] == 2
    odd = (cells.units == "u03") & (cells.times == 1)
    assert cells.values["y"][odd][0] == 1


def test_aggregate_per_column_sums_the_outcome_and_averages_the_predictor(tmp_path):
    """Rows of users within unit x period: sales add up, a price-like predictor is averaged. Per column
    ({y: sum, x: mean}) gives the panel's own estimate; one word for both would not (x tripled by sum)."""
    from causalcli.errors import SpecError

    data = panel()
    want = run(spec(tmp_path, data, "panel"))
    thirds = data.loc[data.index.repeat(3)].reset_index(drop=True)
    rows = thirds.assign(y=thirds["y"] * np.tile([0.2, 0.3, 0.5], len(data)))  # y splits, x is repeated
    got = run(spec(tmp_path, rows, "per-column", aggregate={"y": "sum", "x": "mean"}))
    assert got.estimate.value == pytest.approx(want.estimate.value, rel=1e-7)
    assert got.estimate.p_value == want.estimate.p_value
    summed = run(spec(tmp_path, rows, "one-word", aggregate="sum"))
    assert summed.diagnostics["balance"] != want.diagnostics["balance"]
    with pytest.raises(SpecError, match=r"design.aggregate has no entry for column 'x' \(design.predictors\[0\]\)"):
        run(spec(tmp_path, rows, "missing", aggregate={"y": "sum"}))
    with pytest.raises(SpecError, match="design.aggregate names column 'z', which the study does not aggregate"):
        run(spec(tmp_path, rows, "extra", aggregate={"y": "sum", "x": "mean", "z": "sum"}))


def test_a_capped_weight_solve_is_said(tmp_path, monkeypatch):
    """The inner QP's active set stops at MAX_ACTIVE_SET_ITER steps (a pool of 625,000 donors reached ~490
    weighted donors, near the cap of 500): the result says so instead of passing the weights as optimal."""
    import causalcli.models.synthetic_weights as sw

    data = panel()
    clean = run(spec(tmp_path, data, "clean"))
    assert not any("stopped at its" in w for w in clean.warnings)
    monkeypatch.setattr(sw, "MAX_ACTIVE_SET_ITER", 1)
    capped = run(spec(tmp_path, data, "capped"))
    assert any("donor-weight solver stopped at its 1-step cap" in w for w in capped.warnings)
    assert capped.diagnostics["fit"]["weights_solver_capped"] is True
