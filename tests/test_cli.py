"""The command-line contract: commands, formats, batch behaviour and exit codes 0-4."""

from __future__ import annotations

import csv
import io
import json
from pathlib import Path

import numpy as np
import pytest
import yaml

from tests.conftest import SPECS, base_spec, invoke, run_json, simulate


def test_version_and_help(runner):
    res = invoke(runner, ["--version"])
    assert res.exit_code == 0 and res.stdout.startswith("causalcli ")
    res = invoke(runner, ["--help"])
    assert res.exit_code == 0 and "estimate" in res.stdout and "schema" in res.stdout


def test_estimate_json_contract(runner, sim_spec):
    code, out, res = run_json(runner, [str(sim_spec)])
    assert code == 0, res.stderr
    assert out["schema"] == "causalcli.result/v1"
    assert out["study"] == "study" and out["design"] == "matching" and out["estimand"] == "att"
    est = out["estimate"]
    assert set(est) == {"value", "std_error", "ci_lower", "ci_upper", "conf_level", "p_value", "inference"}
    assert est["inference"] == "abadie_imbens_2016_estimated_propensity"  # matching on the estimated score
    assert est["ci_lower"] < est["value"] < est["ci_upper"]
    assert out["n"]["rows"] == 400 and out["n"]["treated"] + out["n"]["control"] == 400
    assert {c["name"] for c in out["checks"]} == {"balance", "overlap"}
    assert out["passed"] is True and out["refutations"] == []
    prov = out["provenance"]
    assert len(prov["data_sha256"]) == 64 and len(prov["spec_sha256"]) == 64
    assert prov["versions"]["causalcli"] and prov["seed"] == 0
    assert set(out["timing_s"]) >= {"load", "estimate", "refute", "total"}
    assert "lalonde" not in res.stdout and res.stdout.lstrip().startswith("{")


def _without_timing(text: str) -> list:
    items = [json.loads(line) for line in text.splitlines() if line.strip()]
    for item in items:
        item.pop("timing_s", None)
    return items


def test_same_seed_gives_byte_identical_json_whatever_jobs(runner, sim_csv, write_spec):
    spec = write_spec(base_spec(sim_csv.name, refute=[{"placebo_treatment": {"simulations": 12}},
                                                     {"data_subset": {"simulations": 12}}]))
    a = invoke(runner, ["estimate", str(spec), "--format", "jsonl", "--jobs", "1"])
    b = invoke(runner, ["estimate", str(spec), "--format", "jsonl", "--jobs", "2"])
    c = invoke(runner, ["estimate", str(spec), "--format", "jsonl", "--jobs", "1", "--seed", "5"])
    assert a.exit_code in (0, 1)
    strip = lambda s: [l.split(',"timing_s"')[0] for l in s.splitlines()]  # noqa: E731
    assert strip(a.stdout) == strip(b.stdout)
    assert _without_timing(a.stdout)[0]["refutations"] != _without_timing(c.stdout)[0]["refutations"]


def test_formats(runner, sim_spec):
    for fmt in ("jsonl", "markdown", "csv", "table"):
        res = invoke(runner, ["estimate", str(sim_spec), "--format", fmt])
        assert res.exit_code == 0, (fmt, res.stderr)
        assert res.stdout.strip()
    res = invoke(runner, ["estimate", str(sim_spec), "--format", "csv"])
    rows = list(csv.DictReader(io.StringIO(res.stdout)))
    assert rows[0]["kind"] == "estimate" and rows[0]["inference"] == "abadie_imbens_2016_estimated_propensity"
    res = invoke(runner, ["estimate", str(sim_spec), "--format", "markdown"])
    assert res.stdout.startswith("| study |") and "<details>" in res.stdout


def test_machine_format_keeps_stdout_clean(runner, sim_spec):
    res = invoke(runner, ["estimate", str(sim_spec), "--format", "json"])
    json.loads(res.stdout)
    assert "study: att" in res.stderr
    quiet = invoke(runner, ["estimate", str(sim_spec), "--format", "json", "--quiet"])
    assert quiet.stderr == ""


def test_output_is_written_atomically(runner, sim_spec, tmp_path):
    out = tmp_path / "res" / "r.json"
    out.parent.mkdir()  # causalcli creates no folder for --output (tests/test_cli_batch.py)
    res = invoke(runner, ["estimate", str(sim_spec), "--format", "json", "--output", str(out)])
    assert res.exit_code == 0 and res.stdout == ""
    assert json.loads(out.read_text())["study"] == "study"
    assert [p.name for p in out.parent.iterdir()] == ["r.json"]


def test_bad_input_leaves_no_output_file(runner, sim_csv, write_spec, tmp_path):
    spec = write_spec(base_spec(sim_csv.name, covariates=["x1", "nope"]))
    out = tmp_path / "r.json"
    res = invoke(runner, ["estimate", str(spec), "--output", str(out), "--format", "json"])
    assert res.exit_code == 3 and not out.exists()
    assert "nope" in res.stderr and "Traceback" not in res.stderr


def test_batch_runs_every_study_and_exits_with_highest_code(runner, sim_csv, write_spec, tmp_path):
    folder = tmp_path / "batch"
    folder.mkdir()
    good = base_spec(f"../{sim_csv.name}")
    (folder / "a_good.yaml").write_text(yaml.safe_dump(good))
    (folder / "b_missing_col.yaml").write_text(yaml.safe_dump({**good, "outcome": "nope"}))
    (folder / "c_bad_key.yaml").write_text(yaml.safe_dump({**good, "outcomes": "y"}))
    res = invoke(runner, ["estimate", str(folder), "--format", "json"])
    assert res.exit_code == 3
    items = json.loads(res.stdout)
    assert [i["study"] for i in items] == ["a_good", "b_missing_col", "c_bad_key"]
    assert items[0]["estimate"]["value"] is not None
    assert items[1]["error"]["exit_code"] == 3 and items[1]["error"]["key"] == "outcome"
    assert items[2]["error"]["exit_code"] == 2 and items[2]["error"]["key"] == "outcomes"
    res = invoke(runner, ["estimate", str(folder), "--format", "jsonl"])
    assert len(res.stdout.splitlines()) == 3


def test_spec_on_stdin_and_data_on_stdin(runner, sim_csv, write_spec, tmp_path):
    text = yaml.safe_dump(base_spec(str(sim_csv)))
    code, out, res = run_json(runner, ["-"], input=text)
    assert code == 0 and out["study"] == "stdin"
    spec = write_spec(base_spec("-"))
    code, out, res = run_json(runner, [str(spec)], input=sim_csv.read_bytes())
    assert code == 0 and out["provenance"]["data_source"] == "stdin"


def test_set_overrides_and_fail_on(runner, sim_spec):
    code, out, _ = run_json(runner, [str(sim_spec), "--set", "design.options.neighbors=3", "--set", "name=k3"])
    assert out["study"] == "k3"
    # an impossible balance threshold fails the balance check: exit 1, result still written
    code, out, _ = run_json(runner, [str(sim_spec), "--set", "thresholds.balance_smd=0.000001"])
    assert code == 1 and out["passed"] is False and out["estimate"]["value"] is not None
    code, out, _ = run_json(runner, [str(sim_spec), "--set", "thresholds.balance_smd=0.000001", "--fail-on", "refutations"])
    assert code == 0 and out["passed"] is True
    code, _, _ = run_json(runner, [str(sim_spec), "--set", "thresholds.balance_smd=0.000001", "--fail-on", "none"])
    assert code == 0


def _one_error_line(res) -> str:
    lines = [l for l in res.stderr.splitlines() if l.strip()]
    assert "Traceback" not in res.stderr
    errors = [l for l in lines if l.startswith("error:")]
    assert len(errors) == 1, res.stderr
    return errors[0]


@pytest.mark.parametrize("mutate, code, needle", [
    (lambda s: s.update(outcome="missing_col"), 3, "missing_col"),
    (lambda s: s.update(outcome="region"), 3, "must be numeric"),
    (lambda s: s.update(treatment="x1", covariates=["x2"]), 3, "must be binary"),
    (lambda s: s.update(treatment="x1"), 2, "'x1' is the treatment"),
    (lambda s: s["data"].update(path="nowhere.csv"), 3, "not found"),
    (lambda s: s["data"].update(filter="x1 > 99"), 3, "no rows are left"),
    (lambda s: s.update(outcomee="y"), 2, "did you mean 'outcome'"),
    (lambda s: s.pop("data"), 2, "'data'"),
    (lambda s: s["design"].update(options={"neighbors": "two"}), 2, "design.options.neighbors"),
    (lambda s: s["design"].update(method="magic"), 2, "unknown method"),
    (lambda s: s.update(graph={"edges": [["x1", "t"], ["t", "y"], ["y", "x1"]]}), 2, "cycle"),
    (lambda s: s.update(graph={"edges": [["ghost", "t"], ["t", "y"]]}), 2, "ghost"),
])
def test_bad_input_exit_codes(runner, sim_csv, write_spec, mutate, code, needle):
    spec = base_spec(sim_csv.name)
    mutate(spec)
    res = invoke(runner, ["estimate", str(write_spec(spec)), "--format", "json"])
    assert res.exit_code == code, res.stderr
    line = _one_error_line(res)
    assert needle in line
    assert ("study.yaml" if code == 2 else ".csv") in line  # spec errors name the spec, data errors the data file
    assert json.loads(res.stdout)["error"]["exit_code"] == code


def test_yaml_syntax_error_names_the_line(runner, write_spec):
    spec = write_spec("version: 1\ndata: {path: d.csv\ntreatment: t\n")
    res = invoke(runner, ["estimate", str(spec)])
    assert res.exit_code == 2
    assert "study.yaml:" in _one_error_line(res) and "YAML syntax error" in res.stderr


def test_debug_shows_traceback(runner, sim_csv, write_spec):
    spec = write_spec(base_spec(sim_csv.name, outcome="missing_col"))
    res = invoke(runner, ["estimate", str(spec), "--debug"])
    assert res.exit_code == 3 and "Traceback" in res.stderr


def test_perfect_separation_is_exit_4(runner, tmp_path, write_spec):
    df = simulate(200)
    df["sep"] = df["t"] * 10 + np.random.default_rng(0).normal(size=200) * 0.01
    df.to_csv(tmp_path / "sep.csv", index=False)
    res = invoke(runner, ["estimate", str(write_spec(base_spec("sep.csv", covariates=["x1", "sep"]))), "--format", "json"])
    assert res.exit_code == 4, res.stderr
    assert "separat" in _one_error_line(res)


def test_refutations_fail_gives_exit_1(runner, tmp_path, write_spec):
    # no effect at all: the placebo refuter cannot tell the estimate from chance
    df = simulate(300, effect=0.0)
    df.to_csv(tmp_path / "null.csv", index=False)
    spec = write_spec(base_spec("null.csv", refute=[{"placebo_treatment": {"simulations": 30}}]))
    code, out, _ = run_json(runner, [str(spec), "--fail-on", "refutations"])
    assert out["refutations"][0]["name"] == "placebo_treatment"
    assert out["refutations"][0]["passed"] is False and code == 1
    assert "no effect can be told from noise" in out["refutations"][0]["detail"]  # its own interval covers 0 too


def test_validate_says_the_weights_and_segments_the_study_reads(runner, tmp_path, write_spec):
    """The trial: validate named the covariates but not the weights or segments estimate would use."""
    df = simulate(200)
    df["w"], df["g"] = 1.0 + (df["x1"] > 0), np.where(df["x2"] > 0, "a", "b")
    df.to_csv(tmp_path / "w.csv", index=False)
    spec = write_spec(base_spec("w.csv", weights="w", segments=["g"]))
    res = invoke(runner, ["validate", str(spec)])
    assert res.exit_code == 0 and "  weighted by w; effects by segment: g\n" in res.stdout, res.stdout
    report = json.loads(invoke(runner, ["validate", str(spec), "--format", "json"]).stdout)
    assert (report["weights"], report["segments"]) == ("w", ["g"])
    plain = invoke(runner, ["validate", str(write_spec(base_spec("w.csv")))]).stdout
    assert "weighted by" not in plain and "effects by segment" not in plain


def test_validate_graph_methods_schema_init(runner, sim_spec, sim_csv, tmp_path):
    res = invoke(runner, ["validate", str(sim_spec)])
    assert res.exit_code == 0 and res.stdout.startswith("ok ")
    res = invoke(runner, ["graph", str(sim_spec), "--format", "json"])
    g = json.loads(res.stdout)
    assert g["adjustment_set"] == ["x1", "x2"] and ["x1", "t"] in g["edges"]
    assert "digraph" in invoke(runner, ["graph", str(sim_spec), "--format", "dot"]).stdout
    png = tmp_path / "g.png"
    assert invoke(runner, ["graph", str(sim_spec), "--format", "png", "-o", str(png)]).exit_code == 0
    assert png.read_bytes()[:4] == b"\x89PNG"
    m = json.loads(invoke(runner, ["methods", "--format", "json"]).stdout)
    assert m["designs"][0]["name"] == "matching" and m["designs"][0]["options"]["neighbors"]["default"] == 1
    assert "placebo_treatment" in invoke(runner, ["methods"]).stdout
    schema = json.loads(invoke(runner, ["schema"]).stdout)
    assert "design" in schema["properties"]
    res = invoke(runner, ["init", str(sim_csv), "--treatment", "t", "--outcome", "y"])
    starter = yaml.safe_load(res.stdout)
    assert starter["covariates"] == ["x1", "x2", "region"] and starter["categorical"] == ["region"]


def test_init_spec_round_trips(runner, sim_csv, tmp_path):
    res = invoke(runner, ["init", str(sim_csv), "--treatment", "t", "--outcome", "y"])
    spec = tmp_path / "starter.yaml"
    spec.write_text(res.stdout)
    assert invoke(runner, ["validate", str(spec)]).exit_code == 0


def test_user_graph_is_identified_with_dowhy(runner, sim_csv, write_spec):
    # x2 affects only the outcome: the backdoor set from DoWhy is {x1}
    spec = write_spec(base_spec(sim_csv.name, graph={"dot": "digraph { x1 -> t; x1 -> y; x2 -> y; t -> y }"}))
    g = json.loads(invoke(runner, ["graph", str(spec), "--format", "json"]).stdout)
    assert g["adjustment_set"] == ["x1"] and g["identified_by"] == "dowhy.identify_effect_auto"
    code, out, _ = run_json(runner, [str(spec)])
    assert out["diagnostics"]["identification"]["adjustment_set"] == ["x1"]
    assert [b["covariate"] for b in out["diagnostics"]["balance"]] == ["x1"]


def test_plots_are_written_from_the_result(runner, sim_spec, tmp_path):
    res = invoke(runner, ["estimate", str(sim_spec), "--format", "json", "--plots", str(tmp_path / "plots")])
    assert res.exit_code == 0
    names = sorted(p.name for p in (tmp_path / "plots").iterdir())
    assert names == ["study-love.png", "study-propensity.png"]
    for p in (tmp_path / "plots").iterdir():
        assert p.read_bytes()[:4] == b"\x89PNG" and p.stat().st_size > 5000


def test_report_is_written_atomically_with_every_plot(runner, sim_spec, tmp_path):
    report = tmp_path / "r.html"
    res = invoke(runner, ["estimate", str(sim_spec), "--format", "json", "--report", str(report)])
    assert res.exit_code == 0
    text = report.read_text()
    assert text.startswith("<!DOCTYPE html>") and text.count("data:image/png;base64,") == 2
    assert "abadie_imbens" in text and "http" not in text.replace("http-equiv", "")
    assert [p.name for p in tmp_path.iterdir() if p.name.startswith((".r.html", "r.html"))] == ["r.html"]


def test_bundled_demo_spec_validates(runner):
    res = invoke(runner, ["validate", str(SPECS / "lalonde_psm.yaml")])
    assert res.exit_code == 0 and "16,177 rows" in res.stdout


def test_no_progress_bar_when_stderr_is_not_a_terminal(runner, sim_csv, write_spec):
    spec = write_spec(base_spec(sim_csv.name, refute=[{"placebo_treatment": {"simulations": 20}}]))
    res = invoke(runner, ["estimate", str(spec), "--format", "json"])
    assert "refuting" not in res.stderr and "\x1b[" not in res.stderr


def test_progress_reporter_counts_every_simulation(sim_csv, write_spec, monkeypatch):
    from causalcli.runtime import progress
    from causalcli.study.run import run_study

    seen = []

    class Recorder(progress.Reporter):
        def task(self, description, total):
            seen.append((description, total))
            return super().task(description, total)

    monkeypatch.setattr(progress, "_reporter", Recorder())
    spec = write_spec(base_spec(sim_csv.name, refute=[{"placebo_treatment": {"simulations": 7}},
                                                     {"data_subset": {"simulations": 5}}]))
    run_study(str(spec), jobs=2)
    assert seen == [("matching: refuting", 12)]


@pytest.mark.parametrize("suffix, text", [
    (".dot", 'digraph { "x1" -> "t"; x1 -> y; x2 -> y; t -> y }'),
    (".gml", 'graph [ directed 1 node [ id 0 label "x1" ] node [ id 1 label "t" ] node [ id 2 label "y" ] '
             'node [ id 3 label "x2" ] edge [ source 0 target 1 ] edge [ source 0 target 2 ] '
             'edge [ source 3 target 2 ] edge [ source 1 target 2 ] ]'),
])
def test_graph_from_file(runner, sim_csv, write_spec, tmp_path, suffix, text):
    (tmp_path / f"g{suffix}").write_text(text)
    spec = write_spec(base_spec(sim_csv.name, graph={"file": f"g{suffix}"}))
    g = json.loads(invoke(runner, ["graph", str(spec), "--format", "json"]).stdout)
    assert g["adjustment_set"] == ["x1"]
    assert sorted(map(tuple, g["edges"])) == [("t", "y"), ("x1", "t"), ("x1", "y"), ("x2", "y")]


def test_graph_file_errors(runner, sim_csv, write_spec, tmp_path):
    spec = write_spec(base_spec(sim_csv.name, graph={"file": "missing.dot"}))
    res = invoke(runner, ["graph", str(spec)])
    assert res.exit_code == 2 and "not found" in res.stderr
    (tmp_path / "bad.dot").write_text("graph { a -- b }")
    spec = write_spec(base_spec(sim_csv.name, graph={"file": "bad.dot"}))
    res = invoke(runner, ["graph", str(spec)])
    assert res.exit_code == 2 and "digraph" in res.stderr


def test_design_not_built_is_refused(runner, sim_csv, write_spec, request):
    from causalcli import designs

    from causalcli.designs.dml.spec import DmlDesign

    entry = designs.Family("dml", "test stand-in", DmlDesign, "causalcli.designs.not_a_module:Nothing",
                           planned="planned: later")
    designs.register(entry)
    request.addfinalizer(lambda: designs.unregister("dml"))
    spec = base_spec(sim_csv.name)
    spec["design"] = {"method": "dml"}
    res = invoke(runner, ["estimate", str(write_spec(spec)), "--format", "json"])
    assert res.exit_code == 2
    assert "not built yet" in _one_error_line(res) and "planned: later" in res.stderr


def test_weights_refused_by_designs_that_lack_them(runner, tmp_path, write_spec):
    """Every design but synthetic_control, time_series and experiment takes weights (tests/test_keys_not_ignored.py
    lists them); a time series refuses them in one line naming the key."""
    rng = np.random.default_rng(0)
    days = np.arange(np.datetime64("2024-01-01"), np.datetime64("2024-04-01"))
    with open(tmp_path / "w.csv", "w", newline="") as f:
        out = csv.writer(f)
        out.writerow(["date", "y", "w"])
        out.writerows(zip(days.astype(str), rng.normal(size=days.size), [1.0] * days.size))
    spec = {"version": 1, "data": {"path": "w.csv"}, "outcome": "y", "weights": "w",
            "design": {"method": "time_series", "time": "date", "intervention": "2024-03-01"}, "refute": []}
    res = invoke(runner, ["estimate", str(write_spec(spec)), "--format", "json"])
    assert res.exit_code == 2
    assert "observation weights are not supported by time_series yet" in _one_error_line(res)


def test_the_table_shows_the_first_and_last_effects_of_a_long_list():
    """A time series' 144 pointwise and cumulative effects would bury the checks: the terminal table keeps the
    first and last 15 and says how many more the other formats hold."""
    from rich.console import Console

    from causalcli.records import Estimate
    from causalcli.render.table import TABLE_EFFECTS, build
    from causalcli.result import Result

    effects = [Estimate(float(i), 1.0, i - 2.0, i + 2.0, 0.95, 0.5, "x", f"pointwise/{i}") for i in range(100)]
    head = Estimate(1.0, 1.0, -1.0, 3.0, 0.95, 0.3, "x")
    result = Result(study="long", spec_path="long.yaml", design="time_series", estimator="structural", estimand="att", estimate=head,
                    n={"rows": 100}, effects=effects)
    console = Console(width=200, record=True)
    for part in build([result]):
        console.print(part)
    text = console.export_text()
    assert "pointwise/0 " in text and "pointwise/14 " in text and "pointwise/99 " in text
    assert "pointwise/50 " not in text
    assert f"... {100 - TABLE_EFFECTS} more" in text


def test_the_table_wraps_long_effect_labels_rather_than_cutting_them():
    """At 80 columns an experiment's labels (``metric/arm/rel/segment=value``) are longer than their column: each
    wraps onto further lines and keeps its end, which is what tells the absolute, relative and segment rows apart."""
    from rich.console import Console

    from causalcli.records import Estimate
    from causalcli.render.table import build
    from causalcli.result import Result

    labels = [f"revenue_per_session_cuped/treatment/{kind}/platform={p}" for p in ("android", "ios") for kind in ("abs", "rel")]
    effects = [Estimate(0.1 * i, 0.05, 0.1 * i - 0.1, 0.1 * i + 0.1, 0.95, 0.04, "welch_t", label)
               for i, label in enumerate(labels)]
    result = Result(study="ab", spec_path="ab.yaml", design="experiment", estimator="difference_in_means",
                    estimand="ate", estimate=effects[0], n={"rows": 100}, effects=effects)
    console = Console(width=80, record=True)
    for part in build([result]):
        console.print(part)
    lines = console.export_text().splitlines()
    rows: list[str] = []  # each effect's label, its cells joined over the lines it wraps onto
    for line in lines:
        cells = [c.strip() for c in line.split("│")]
        if len(cells) < 8 or cells[2] in ("", "label"):
            continue
        if cells[3]:  # a value: the first line of a row
            rows.append(cells[2])
        elif rows:
            rows[-1] += cells[2]
    assert "…" not in "".join(lines)
    assert rows == labels
