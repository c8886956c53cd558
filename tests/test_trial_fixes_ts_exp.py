"""Fixes from a new user's trials on public data (causaldata's google_stock, social_insure, thornton_hiv,
nsw_mixtape, training_bias_reduction; statsmodels' co2 and macrodata) for time_series, experiment,
weighting and dml."""

from __future__ import annotations

import numpy as np
import pytest
from rich.console import Console

from causalcli.records import Check, Estimate
from causalcli.render.table import build
from causalcli.result import Result
from tests.conftest import base_spec, invoke


def _table_text(result: Result, width: int) -> str:
    console = Console(width=width, record=True)
    for part in build([result]):
        console.print(part)
    return console.export_text()


def test_the_table_prints_brackets_from_the_data_as_they_are():
    """thornton_hiv with two metrics: the table's n row read 'missing_in_metric 67  missing_in_metric 67' (rich took
    '[got]' for a style tag and dropped it), and a segment value '[/old]' ended the study as an internal error
    (rich's MarkupError on a closing tag). Text from the data or the spec is printed as it is."""
    effects = [Estimate(0.43, 0.03, 0.36, 0.49, 0.95, 0.001, "welch_t", "got/1/abs/grp=[/old]"),
               Estimate(0.47, 0.03, 0.41, 0.52, 0.95, 0.001, "welch_t", "got/1/abs/grp=[young]")]
    result = Result(study="hiv [b]", spec_path="hiv.yaml", design="experiment", estimator="difference_in_means",
                    estimand="ate", estimate=effects[0],
                    n={"rows": 4820, "missing_in_metric[got]": 67, "missing_in_metric[hiv]": 67}, effects=effects,
                    checks=[Check("guardrail:[bold]x", False, "arm [red]1[/red] fails")],
                    warnings=["segment value [/old] is sparse"])
    text = _table_text(result, 200)
    assert "missing_in_metric[got] 67  missing_in_metric[hiv] 67" in text
    assert "got/1/abs/grp=[/old]" in text and "got/1/abs/grp=[young]" in text
    assert "guardrail:[bold]x" in text and "arm [red]1[/red] fails" in text
    assert "hiv [b]" in text and "segment value [/old] is sparse" in text


def test_short_effect_labels_are_not_cut_inside_their_date_at_80_columns():
    """google_stock at 80 columns: 'pointwise/2015-08-1' on one line and '0' on the next read as a wrong date.
    Labels up to 24 characters keep their line; the interval wraps at its space instead, and the row that says
    how many effects are left out folds within the label's width."""
    labels = [f"{kind}/2015-08-{d:02d}" for kind in ("pointwise", "cumulative") for d in range(10, 30)]
    effects = [Estimate(-1.323e-05, 0.02424, -0.07226, 0.02389, 0.95, 0.282, "x", label) for label in labels]
    result = Result(study="google_stock", spec_path="g.yaml", design="time_series", estimator="structural",
                    estimand="att", estimate=effects[0], n={"rows": 84}, effects=effects)
    lines = _table_text(result, 80).splitlines()
    assert all(len(line) <= 80 for line in lines)
    shown = [line.split("│")[2].strip() for line in lines if line.count("│") >= 7]
    assert "pointwise/2015-08-10" in shown and "cumulative/2015-08-29" in shown
    assert not any(cell.startswith("pointwise/") and len(cell) < len("pointwise/2015-08-10") for cell in shown)
    assert any(line.rstrip().endswith("│ │") and "more" in line for line in lines)


@pytest.mark.parametrize("design, key, home", [
    ({"method": "weighting", "estimand": "ate", "estimator": "aipw"}, "design.estimator", "design.options.estimator"),
    ({"method": "weighting", "estimand": "ate", "trim": 0.01}, "design.trim", "design.options.trim"),
    ({"method": "time_series", "time": "d", "intervention": 5, "ar1": False}, "design.ar1", "design.options.ar1"),
])
def test_a_key_that_belongs_under_options_says_so(runner, sim_csv, write_spec, design, key, home):
    """time_series takes design.estimator, weighting design.options.estimator: '--set design.estimator=aipw' on
    weighting answered "did you mean 'estimand'?". A key of the options model one level down is named there."""
    res = invoke(runner, ["validate", str(write_spec(base_spec(sim_csv.name, design=design)))])
    assert res.exit_code == 2
    assert f"key '{key}': unknown key here: it belongs under 'design.options' ({home})" in res.stderr
    assert "did you mean" not in res.stderr


def test_a_refuters_refit_names_the_separating_covariate():
    """Mixtape's training_bias_reduction (8 units, one covariate X) under weighting: two placebo permutations
    separate the arms, and their message read "the one on X[:, 0] most; drop or coarsen X[:, 0]". The refits'
    shared design carries the covariates' names, through subsets and the added random covariate."""
    import numpy as np

    from causalcli.models.logit import LogitDesign, SeparationError, refit_logit

    X = np.array([[11.0], [7.0], [5.0], [3.0], [10.0], [8.0], [4.0], [1.0]])
    design = LogitDesign(X, (X.mean(axis=0), X.std(axis=0)), names=("X",))
    separated = np.array([1.0, 0.0, 0.0, 0.0, 1.0, 1.0, 0.0, 0.0])  # X >= 8 exactly
    for shared, t in ((design, separated), (design.subset(np.arange(1, 8)), separated[1:])):
        with pytest.raises(SeparationError) as err:
            refit_logit(shared, t, np.zeros(2))
        assert "the one on 'X' most" in str(err.value) and "X[:, 0]" not in str(err.value)
    noise = np.array([0.1, -0.2, 0.3, -0.1, 0.2, 0.0, -0.3, 0.15])
    with pytest.raises(SeparationError) as err:
        refit_logit(design.with_column(noise), separated, np.zeros(3))
    assert "X[:, " not in str(err.value)


@pytest.mark.parametrize("sub, per_year, period", [("quarter", 4, "quarter"), ("month", 12, "month")])
def test_init_dates_a_series_by_its_year_and_quarter_or_month(runner, tmp_path, sub, per_year, period):
    """statsmodels' macrodata (year and quarter columns, no date): init made 'year' the time and 'quarter' a
    control, and validate then said 'there are 4 rows for period 1959 ... set design.aggregate', which would sum
    the quarters. init now derives the first day of each quarter (or month) and estimate reads the period."""
    import numpy as np
    import pandas as pd

    from tests.test_init import estimate, init, write

    rng = np.random.default_rng(3)
    rows = 6 * per_year
    frame = pd.DataFrame({"year": (1959 + np.arange(rows) // per_year).astype(float),
                          sub: (1 + np.arange(rows) % per_year).astype(float),
                          "realcons": 100 + np.cumsum(rng.normal(size=rows)), "pop": rng.normal(size=rows)})
    frame.to_csv(tmp_path / "macro.csv", index=False)
    text, spec = init(runner, tmp_path / "macro.csv", "-y", "realcons", "-d", "time_series")
    assert spec["design"]["time"] == "date" and "date" in spec["data"]["derive"]
    assert spec["design"]["controls"] == ["pop"] and spec["design"]["seasonality"] == per_year
    assert "between 1959-01-01 and 1964-" in text
    code, out = estimate(runner, write(tmp_path, text), "--set", "design.intervention=1963-01-01")
    assert code in (0, 1), out
    assert out["diagnostics"]["series"]["period"] == period
    assert out["diagnostics"]["series"]["pre_periods"] == 4 * per_year


def test_init_keeps_the_year_when_year_and_quarter_do_not_date_one_row_each(runner, tmp_path):
    """A panel of units by year and quarter (two rows per quarter) is not one series: no date is derived."""
    import pandas as pd

    from tests.test_init import init

    frame = pd.DataFrame({"year": [2000] * 8 + [2001] * 8, "quarter": [1, 1, 2, 2, 3, 3, 4, 4] * 2,
                          "y": range(16), "x": [v % 3 for v in range(16)]})
    frame.to_csv(tmp_path / "panel.csv", index=False)
    _, spec = init(runner, tmp_path / "panel.csv", "-y", "y", "-d", "time_series")
    assert "derive" not in spec["data"] and spec["design"]["time"] == "year"


def test_init_experiment_says_how_many_rows_have_no_arm(runner, tmp_path):
    """thornton_hiv: 1,919 of 4,820 rows have no value of the incentive column 'any'; init said nothing and
    estimate dropped 40% of the rows with a warning. init says it, with a filter that parses ('any' is an SQL
    keyword, so the column is quoted), and the spec with that filter estimates on the assigned rows."""
    import pandas as pd

    from tests.test_init import estimate, init, write

    frame = pd.DataFrame({"any": [0.0, 1.0, None, 1.0, 0.0, None, 1.0, 0.0] * 10,
                          "got": [0, 1, None, 1, 1, 0, 1, 0] * 10})
    frame.to_csv(tmp_path / "hiv.csv", index=False)
    text, spec = init(runner, tmp_path / "hiv.csv", "-t", "any", "-y", "got", "-d", "experiment")
    note = """20 of 80 rows have no value of any: estimate drops them (data.filter: '"any" IS NOT NULL'"""
    assert note in text
    code, out = estimate(runner, write(tmp_path, text), "--set", 'data.filter="any" IS NOT NULL')
    assert code in (0, 1) and out["n"]["rows"] == 60 and out["n"]["filtered_out"] == 20


def test_a_series_with_holes_names_its_last_missing_period():
    """statsmodels' co2 (weekly, 59 weeks missing up to 1985-08-03): the message named the first hole only,
    1958-05-10, and said 'cut the series with data.filter', so where to cut took a look at the file. It names the
    last one too."""
    import causalcli
    from causalcli.errors import DataError
    from tests.test_time_series import frame, simulate, spec

    y, X = simulate()
    data = frame(y, X)
    data.loc[[3, 40, 71], "sales"] = np.nan
    with pytest.raises(DataError) as err:
        causalcli.estimate(spec(), data=data, refute=False)
    assert "outcome 'sales' has no value for 2024-01-04 (3 of 300 periods missing, the last 2024-03-12)" in str(err.value)
    one = frame(y, X)
    one.loc[40, "sales"] = np.nan
    with pytest.raises(DataError) as err:
        causalcli.estimate(spec(), data=one, refute=False)
    assert "(1 of 300 periods missing):" in str(err.value)
