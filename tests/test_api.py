"""The Python door (issue 14, point 7): ``causalcli.estimate`` gives the command line's result.

Every bundled spec is run both ways, in the same process, and ``Result.to_dict()`` must equal
``causalcli estimate SPEC --format json`` apart from ``timing_s``. Then the other doors of the
function: a dict or YAML text for the spec, in-memory pandas, polars and Arrow data in place of
``data.path``, overrides as keywords; and what a notebook shows: ``to_frame()`` and ``_repr_html_``.
"""

from __future__ import annotations

import base64
import io
import json
import re
import subprocess
import sys
from pathlib import Path

import pandas as pd
import polars as pl
import pyarrow as pa
import pytest
import yaml

import causalcli
from causalcli.errors import DataError, SpecError
from tests.conftest import ROOT, base_spec, invoke, simulate
from tests.golden.golden import BUNDLED, SLOW_BUNDLED, SLOW_FIT


def _cli_json(runner, spec: str, *args: str) -> tuple[int, dict]:
    res = invoke(runner, ["estimate", spec, *args, "--format", "json"])
    assert res.stdout.strip(), res.stderr[-2000:]
    return res.exit_code, json.loads(res.stdout)


def _without_timing(payload: dict) -> dict:
    return {k: v for k, v in payload.items() if k != "timing_s"}


def _as_json(result) -> dict:
    """What ``to_dict()`` becomes once written as JSON (tuples are lists, as on the command line)."""
    return json.loads(json.dumps(result.to_dict(), allow_nan=False))


def _bundled(name: str):
    # A full run (refuters as written) where it takes a few seconds, else --no-refute on both sides;
    # the fits the golden test keeps for make test-slow are kept there here too.
    return pytest.param(name, id=Path(name).stem, marks=[pytest.mark.slow] if name in SLOW_FIT else [])


@pytest.mark.parametrize("name", [_bundled(n) for n in BUNDLED])
def test_estimate_equals_the_command_lines_json_for_every_bundled_spec(name, runner, monkeypatch):
    monkeypatch.chdir(ROOT)
    spec = f"specs/{name}"
    refute = name not in SLOW_BUNDLED
    code, cli = _cli_json(runner, spec, *([] if refute else ["--no-refute"]))
    result = causalcli.estimate(spec, refute=refute)
    assert _without_timing(_as_json(result)) == _without_timing(cli)
    assert result.exit_code == code
    assert result.provenance["refuted"] is refute


def test_the_bundled_specs_are_all_run():
    assert BUNDLED == sorted(p.name for p in (ROOT / "specs").glob("*.yaml")) and len(BUNDLED) >= 6


def test_estimate_is_loaded_on_first_use_only():
    code = ("import sys, causalcli; before = 'causalcli.api' in sys.modules; f = causalcli.estimate; "
            "from causalcli import estimate; "
            "print(before, f is estimate, f.__module__, 'estimate' in dir(causalcli))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120, cwd=ROOT)
    assert out.stdout.split() == ["False", "True", "causalcli.api", "True"], out.stderr[-2000:]
    with pytest.raises(AttributeError, match="no attribute 'nothing'"):
        causalcli.nothing  # noqa: B018


# ---------------------------------------------------------------- the spec as a dict or YAML text


@pytest.fixture
def sim_folder(tmp_path, monkeypatch) -> Path:
    """A folder with sim.csv and spec.yaml (matching, no refuters), the current folder during the test."""
    simulate().to_csv(tmp_path / "sim.csv", index=False)
    (tmp_path / "spec.yaml").write_text(yaml.safe_dump(base_spec("sim.csv", name="sim")))
    monkeypatch.chdir(tmp_path)
    return tmp_path


def test_a_dict_or_yaml_text_gives_the_same_result_as_the_spec_file(sim_folder):
    from_file = _as_json(causalcli.estimate("spec.yaml"))
    text = (sim_folder / "spec.yaml").read_text()
    for spec, path in ((base_spec("sim.csv", name="sim"), "<dict>"), (text, "<text>")):
        got = _as_json(causalcli.estimate(spec))
        assert got["spec_path"] == path
        assert _without_timing({**got, "spec_path": "spec.yaml"}) == _without_timing(from_file)


def test_a_dict_or_text_without_a_name_is_called_study(sim_folder):
    spec = base_spec("sim.csv")
    assert causalcli.estimate(spec).study == "study"
    assert causalcli.estimate(yaml.safe_dump(spec)).study == "study"


def test_a_bad_spec_raises_the_command_lines_error(sim_folder):
    with pytest.raises(SpecError) as err:
        causalcli.estimate(base_spec("sim.csv", design={"method": "matching", "estimand": "atx"}))
    assert err.value.exit_code == 2 and "key 'design.estimand'" in str(err.value)
    with pytest.raises(SpecError, match="takes one spec file"):
        causalcli.estimate(sim_folder)
    with pytest.raises(SpecError, match="spec must be a path, a dict or YAML text"):
        causalcli.estimate(42)


# ---------------------------------------------------------------- overrides


def test_keywords_override_spec_keys_as_set_does(sim_folder, runner):
    _, cli = _cli_json(runner, "spec.yaml", "--set", "seed=3", "--set", "design.options.caliper=0.1",
                       "--set", "covariates=[x1]")
    got = causalcli.estimate("spec.yaml", seed=3, design__options__caliper=0.1, covariates=["x1"])
    assert _without_timing(_as_json(got)) == _without_timing(cli)
    dotted = causalcli.estimate("spec.yaml", **{"seed": 3, "design.options.caliper": 0.1, "covariates": ["x1"]})
    assert dotted.estimate == got.estimate and dotted.provenance == got.provenance


def test_refute_false_skips_refutations_and_a_list_is_the_spec_key(sim_folder, runner):
    listed = [{"placebo_treatment": {"simulations": 5}}]
    _, cli = _cli_json(runner, "spec.yaml", "--set", "refute=[{placebo_treatment: {simulations: 5}}]")
    got = causalcli.estimate("spec.yaml", refute=listed)
    assert _without_timing(_as_json(got)) == _without_timing(cli)
    assert [r.name for r in got.refutations] == ["placebo_treatment"]
    skipped = causalcli.estimate("spec.yaml", refute=False)
    assert skipped.refutations == [] and skipped.provenance["refuted"] is False


def test_an_error_from_an_override_names_the_keyword(sim_folder):
    with pytest.raises(SpecError) as err:
        causalcli.estimate("spec.yaml", design__options__caliper="wide")
    assert "design__options__caliper='wide'" in str(err.value) and "--set" not in str(err.value)
    with pytest.raises(DataError) as err:
        causalcli.estimate("spec.yaml", outcome="nope")
    assert err.value.exit_code == 3 and "outcome='nope'" in str(err.value)


# ---------------------------------------------------------------- in-memory data


def _coded(df: pd.DataFrame) -> pd.DataFrame:
    """The simulated data as people have it: a yes/no treatment, other names, a row to filter out."""
    out = df.rename(columns={"y": "outcome_value"}).assign(t=df["t"].map({1: "yes", 0: "no"}))
    return pd.concat([out, out.head(3).assign(x1=99.0)], ignore_index=True)


MEMORY_SPEC = {"name": "sim", "data": {"path": "coded.csv", "columns": {"outcome_value": "y"}, "filter": "x1 < 50"},
               "treatment": "t", "outcome": "y", "covariates": ["x1", "x2", "region"], "categorical": ["region"],
               "design": {"method": "matching", "estimand": "att"}, "refute": [], "seed": 0}


@pytest.mark.parametrize("kind", ["pandas", "polars", "arrow"])
def test_in_memory_data_is_read_as_the_same_data_from_a_file(kind, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    df = _coded(simulate())
    df.to_csv("coded.csv", index=False)
    frame = {"pandas": lambda: df.astype({"region": "category"}),  # categories read as their text
             "polars": lambda: pl.from_pandas(df).with_columns(pl.col("region").cast(pl.Categorical)),
             "arrow": lambda: pa.Table.from_pandas(df, preserve_index=False)}[kind]()
    from_file = _as_json(causalcli.estimate(MEMORY_SPEC))
    in_memory = _as_json(causalcli.estimate({k: v for k, v in MEMORY_SPEC.items()}, data=frame))
    assert in_memory["n"]["filtered_out"] == 3
    memory_provenance = in_memory.pop("provenance")
    file_provenance = from_file.pop("provenance")
    assert _without_timing(in_memory) == _without_timing(from_file)
    assert memory_provenance["data_source"] == "memory"
    assert re.fullmatch(r"[0-9a-f]{64}", memory_provenance["data_fingerprint"])
    assert memory_provenance["data_fingerprint_method"].startswith("sha256(Arrow IPC stream")
    assert {k: v for k, v in file_provenance.items() if not k.startswith("data_")} == \
        {k: v for k, v in memory_provenance.items() if not k.startswith("data_")}


def test_in_memory_data_needs_no_data_path_and_has_a_stable_fingerprint(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    df = simulate()
    spec = {k: v for k, v in base_spec("unused.csv").items() if k != "data"}
    a = causalcli.estimate(spec, data=df)
    b = causalcli.estimate(yaml.safe_dump(spec), data=df)
    with_filter = causalcli.estimate({**spec, "data": {"filter": "x1 < 1"}}, data=df)
    text_with_filter = causalcli.estimate(yaml.safe_dump({**spec, "data": {"filter": "x1 < 1"}}), data=df)
    assert a.estimate == b.estimate and a.provenance["data_fingerprint"] == b.provenance["data_fingerprint"]
    assert with_filter.n["filtered_out"] > 0 and with_filter.estimate == text_with_filter.estimate
    changed = causalcli.estimate(spec, data=df.assign(y=df["y"] + 1))
    assert changed.provenance["data_fingerprint"] != a.provenance["data_fingerprint"]
    # a named pandas index is data (set_index('unit')); an unnamed one is a row numbering and is left out
    indexed = causalcli.estimate({**spec, "covariates": ["x1", "x2", "unit"]}, data=df.rename_axis("unit"))
    assert indexed.n["rows"] == a.n["rows"]
    with pytest.raises(DataError, match="column 'x3' not found"):
        causalcli.estimate({**spec, "covariates": ["x3"]}, data=df)


def test_in_memory_errors_name_the_table(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    spec = {k: v for k, v in base_spec("unused.csv").items() if k != "data"}
    df = simulate()
    with pytest.raises(DataError) as err:
        causalcli.estimate({**spec, "outcome": "nope"}, data=df)
    assert str(err.value).startswith("<pandas DataFrame>: key 'outcome': column 'nope' not found")
    twice = pd.concat([df, df[["x1"]]], axis=1)
    with pytest.raises(DataError, match="column name 'x1' appears more than once in the table's columns"):
        causalcli.estimate(spec, data=twice)
    with pytest.raises(DataError) as err:  # not "the data file has no rows" at key 'data.path', which it has not
        causalcli.estimate(spec, data=df.head(0))
    assert err.value.key == "data" and "data file" not in str(err.value) and "no rows" in str(err.value)
    with pytest.raises(DataError, match="data= takes a pandas or polars DataFrame or a pyarrow Table, not builtins.list"):
        causalcli.estimate(spec, data=[1, 2, 3])
    with pytest.raises(SpecError, match="data.filter"):
        causalcli.estimate({**spec, "data": {"filter": "read_csv('/etc/passwd') IS NOT NULL"}}, data=df)


def test_an_index_that_repeats_a_column_is_read_once(tmp_path, monkeypatch):
    # set_index('x1', drop=False) keeps the column: pandas' reset_index raised "cannot insert x1, already exists"
    monkeypatch.chdir(tmp_path)
    spec = {k: v for k, v in base_spec("unused.csv").items() if k != "data"}
    df = simulate()
    plain = causalcli.estimate(spec, data=df)
    for frame in (df.set_index("x1", drop=False), df.set_index(["x1", "x2"], drop=False)):
        again = causalcli.estimate(spec, data=frame)
        assert again.estimate == plain.estimate and again.n == plain.n
    with pytest.raises(DataError) as err:  # a level named like a column but holding other values
        causalcli.estimate(spec, data=df.set_index(df["x2"].rename("x1")))
    assert err.value.column == "x1" and "index level 'x1'" in str(err.value) and err.value.exit_code == 3


def test_a_column_arrow_cannot_read_is_named_even_when_unused(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    spec = {k: v for k, v in base_spec("unused.csv").items() if k != "data"}
    df = simulate()
    mixed = df.assign(note=[1 if i % 2 else "a" for i in range(len(df))])  # numbers and text in one column
    with pytest.raises(DataError) as err:
        causalcli.estimate(spec, data=mixed)
    assert err.value.column == "note" and "column 'note'" in str(err.value)
    assert "df.drop(columns=" in str(err.value)


@pytest.mark.parametrize("design", [{"method": "matching", "estimand": "att"}, {"method": "weighting"},
                                    {"method": "iv", "instruments": ["x2"]}])
@pytest.mark.parametrize("column", ["y", "x1"])
def test_an_infinite_value_is_a_data_error_naming_its_column(design, column, tmp_path, monkeypatch):
    # weighting and iv returned a NaN estimate, matching an EstimationError that named no column
    monkeypatch.chdir(tmp_path)
    spec = {**{k: v for k, v in base_spec("unused.csv").items() if k != "data"}, "design": design}
    if design["method"] == "iv":
        spec["covariates"] = ["x1"]
    df = simulate()
    df.loc[[3, 7], column] = float("inf")
    with pytest.raises(DataError) as err:
        causalcli.estimate(spec, data=df)
    assert err.value.column == column and err.value.exit_code == 3
    assert "infinite value in 2 rows" in str(err.value) and err.value.key == ("outcome" if column == "y" else "covariates")
    fixed = causalcli.estimate(spec, data=df, data__filter=f"isfinite({column})")  # the advice works
    assert fixed.n["filtered_out"] == 2


def _infinite_cases():
    """(design, data, column) for the designs that read their data otherwise: did's panel rows, rdd's values by
    running value, time_series' series."""
    import datetime as dt

    import numpy as np

    rng = np.random.default_rng(0)
    units, times = np.repeat(np.arange(40), 6), np.tile(np.arange(6), 40)
    treated = ((units < 20) & (times >= 3)).astype(int)
    panel = pd.DataFrame({"u": units, "t": times, "d": treated, "y": rng.normal(size=240) + treated})
    did = {"version": 1, "name": "d", "treatment": "d", "outcome": "y",
           "design": {"method": "did", "unit": "u", "time": "t", "estimator": "twfe"}}
    x = rng.uniform(-1, 1, 2000)
    rd = pd.DataFrame({"x": x, "y": 1 + x + 0.5 * (x >= 0) + rng.normal(size=2000) * 0.3})
    rdd = {"version": 1, "name": "r", "outcome": "y", "design": {"method": "rdd", "running": "x", "cutoff": 0}}
    days = [dt.date(2024, 1, 1) + dt.timedelta(days=k) for k in range(200)]
    series = pd.DataFrame({"date": days, "y": np.cumsum(rng.normal(size=200)), "c": rng.normal(size=200)})
    ts = {"version": 1, "name": "t", "outcome": "y", "design": {"method": "time_series", "time": "date",
                                                                "intervention": str(days[150]), "controls": ["c"],
                                                                "estimator": "segmented"}}
    synth = yaml.safe_load((ROOT / "specs" / "prop99_synth.yaml").read_text())
    synth.pop("data")
    smoking = pd.read_csv(ROOT / "specs" / "data" / "prop99_smoking.csv")
    return [(did, panel, "y"), (rdd, rd, "y"), (rdd, rd, "x"), (ts, series, "y"), (ts, series, "c"),
            (synth, smoking, "cigsale"), (synth, smoking, "beer")]


@pytest.mark.parametrize("case", range(7))
def test_an_infinite_value_is_a_data_error_in_did_rdd_time_series_and_synth(case):
    """did and time_series returned a NaN estimate with numpy RuntimeWarnings; rdd blamed a NaN bandwidth;
    synthetic control failed in LAPACK (exit 4)."""
    spec, df, column = _infinite_cases()[case]
    df = df.copy()
    df.loc[[3, 7], column] = float("-inf")
    with pytest.raises(DataError) as err:
        causalcli.estimate(spec, data=df, refute=False)
    assert err.value.column == column and err.value.exit_code == 3 and "infinite" in str(err.value)
    if spec["design"]["method"] in ("did", "rdd"):  # the advice works (a series or a panel needs every period)
        assert causalcli.estimate(spec, data=df, refute=False, data__filter=f"isfinite({column})").n


# ---------------------------------------------------------------- what a notebook shows


def test_to_frame_has_the_csv_columns_and_rows(runner, monkeypatch):
    monkeypatch.chdir(ROOT)
    res = invoke(runner, ["estimate", "specs/ab_test.yaml", "--no-refute", "--format", "csv"])
    csv = pd.read_csv(io.StringIO(res.stdout), dtype=str, keep_default_na=False)  # the text as written
    frame = causalcli.estimate("specs/ab_test.yaml", refute=False).to_frame()
    assert list(frame.columns) == list(csv.columns)
    assert len(frame) == len(csv) > 1
    written = frame.astype(object).where(frame.notna(), "")  # what the CSV writes for a missing value
    for column in frame.columns:
        assert [str(v) for v in written[column]] == [str(v) for v in csv[column]], column


def test_repr_html_is_the_reports_section_with_its_plots(tmp_path, runner, monkeypatch):
    monkeypatch.chdir(ROOT)
    result = causalcli.estimate("specs/mpdta_did.yaml", refute=False)
    html = result._repr_html_()
    report = tmp_path / "report.html"
    invoke(runner, ["estimate", "specs/mpdta_did.yaml", "--no-refute", "--format", "json", "--report", str(report)])
    section = re.search(r'<section class="study" id="study-mpdta-cs">.*?</section>', report.read_text(), re.S)
    assert section and section.group(0) in html  # the report's own section, byte for byte
    images = re.findall(r"data:image/png;base64,([A-Za-z0-9+/=]+)", html)
    assert len(images) >= 2 and all(base64.b64decode(i).startswith(b"\x89PNG") for i in images)
    assert html.startswith('<div class="causalcli"><style>')
    style = html[html.index("<style>") + 7:html.index("</style>")]
    # the report's styles apply inside the result only, never to the notebook's page
    selectors = [s.strip() for block in re.findall(r"([^{};]+)\{", style) for s in block.split(",")]
    assert selectors and all(s.startswith((".causalcli", "@media")) for s in selectors), selectors


def test_repr_is_one_line_with_the_headline_and_the_verdicts(sim_folder):
    # a list of results, or print(result), shows the repr: the dataclass's printed every diagnostic
    result = causalcli.estimate("spec.yaml", refute=[{"placebo_treatment": {"simulations": 5}}])
    text = repr(result)
    assert "\n" not in text and len(text) < 400 and "diagnostics" not in text, text
    assert text.startswith("<Result 'sim': matching/") and text.endswith(f"passed={result.passed}>")
    assert f"{result.estimand.upper()} " in text and f"n {result.n['used']}" in text
    failed = [c.name for c in result.checks if c.passed is False]
    assert (f"checks failed: {', '.join(failed)}" if failed else "checks passed") in text
    assert "refutations " in text
    assert str(result) == text
