"""Batches that never lose work, outputs checked before estimating, and errors that name their cause.

- any exception inside a study (expected or not) is that study's error object, exit 4 for
  an unexpected one; the other studies are estimated and written to every output;
- a reader that leaves early (`| head -1`) ends the run quietly with 141 (128 + SIGPIPE);
- `--output`, `--report` and `--plots` are proven writable before any estimation (exit 2);
- CSV carries `p_value_adjusted`; `--set` errors cite the `--set`; filter errors say what is wrong.
"""

from __future__ import annotations

import csv
import io
import json
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from tests.conftest import ROOT, SPECS, base_spec, invoke, simulate


# ---------------------------------------------------------------- a study that raises inside its design


@pytest.fixture
def batch(tmp_path, sim_csv) -> Path:
    """A folder of two matching studies; 'boom' is made to fail inside the design's fit."""
    folder = tmp_path / "batch"
    folder.mkdir()
    (folder / "a_boom.yaml").write_text(yaml.safe_dump({**base_spec(f"../{sim_csv.name}"), "name": "boom"}))
    (folder / "b_good.yaml").write_text(yaml.safe_dump({**base_spec(f"../{sim_csv.name}"), "name": "good"}))
    return folder


@pytest.fixture
def boom_inside_fit(monkeypatch):
    """The matching design's fit raises ZeroDivisionError for the study named 'boom' (a bug, not a user error)."""
    from causalcli.designs.matching.design import MatchingDesign

    real_fit = MatchingDesign.fit

    def fit(self, prepared, study, seed, jobs=None):
        if study.name == "boom":
            return 1 / 0
        return real_fit(self, prepared, study, seed, jobs)

    monkeypatch.setattr(MatchingDesign, "fit", fit)


def _check_items(items: list[dict]) -> None:
    assert [i["study"] for i in items] == ["boom", "good"]
    error = items[0]["error"]
    assert error["exit_code"] == 4
    assert error["message"].startswith("internal error: ZeroDivisionError: division by zero")
    assert "\n" not in error["message"]
    assert items[1]["estimate"]["value"] is not None and "error" not in items[1]


@pytest.mark.parametrize("fmt", ["json", "jsonl"])
def test_an_exception_inside_a_design_is_that_studys_error_object(runner, batch, boom_inside_fit, fmt):
    res = invoke(runner, ["estimate", str(batch), "--format", fmt])
    assert res.exit_code == 4
    items = json.loads(res.stdout) if fmt == "json" else [json.loads(l) for l in res.stdout.splitlines()]
    _check_items(items)
    errors = [l for l in res.stderr.splitlines() if l.startswith("error:")]
    assert len(errors) == 1 and "a_boom.yaml" in errors[0] and "ZeroDivisionError" in errors[0]
    assert "Traceback" not in res.stderr
    assert "good: att" in res.stderr  # the estimated study's summary line


def test_the_other_studies_reach_every_output(runner, batch, boom_inside_fit, tmp_path):
    out, report, plots = tmp_path / "all.json", tmp_path / "r.html", tmp_path / "plots"
    res = invoke(runner, ["estimate", str(batch), "--format", "json", "-o", str(out), "--report", str(report),
                          "--plots", str(plots)])
    assert res.exit_code == 4 and res.stdout == ""
    _check_items(json.loads(out.read_text()))
    html = report.read_text()
    assert "ZeroDivisionError" in html and "good" in html
    names = sorted(p.name for p in plots.iterdir())
    assert names and all(n.startswith("good-") for n in names)
    csv_res = invoke(runner, ["estimate", str(batch), "--format", "csv"])
    kinds = [(r["study"], r["kind"]) for r in csv.DictReader(io.StringIO(csv_res.stdout))]
    assert ("boom", "error") in kinds and ("good", "estimate") in kinds and csv_res.exit_code == 4


def test_debug_shows_the_traceback_of_an_internal_error(runner, batch, boom_inside_fit):
    res = invoke(runner, ["estimate", str(batch), "--format", "json", "--debug"])
    assert res.exit_code == 4 and "Traceback" in res.stderr and "ZeroDivisionError" in res.stderr
    _check_items(json.loads(res.stdout))


# ---------------------------------------------------------------- a reader that leaves early

PIPE_CLOSED = 141  # what a shell reports for a writer killed by SIGPIPE (yes | head -1)


def _cli(*args: str) -> list[str]:
    return [sys.executable, "-m", "causalcli", *args]


@pytest.mark.parametrize("fmt", ["jsonl", "json", "table"])
def test_stdout_closed_before_any_output_ends_quietly_with_141(batch, fmt):
    proc = subprocess.Popen(_cli("estimate", str(batch), "--format", fmt, "--no-refute"), cwd=ROOT,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    proc.stdout.close()  # the reader is gone before the first result is written
    err = proc.stderr.read().decode()
    assert proc.wait(timeout=120) == PIPE_CLOSED
    assert "BrokenPipe" not in err and "internal error" not in err and "Exception ignored" not in err, err


def test_head_takes_the_first_line_and_the_run_ends_quietly(batch):
    script = f"{sys.executable} -m causalcli estimate {batch} --format jsonl --no-refute | head -1; " \
             "echo \"status=${PIPESTATUS[0]}\" >&2"
    res = subprocess.run(["bash", "-c", script], cwd=ROOT, capture_output=True, text=True, timeout=120)
    assert json.loads(res.stdout)["study"] == "boom"  # one whole line, the first study
    assert "BrokenPipe" not in res.stderr and "internal error" not in res.stderr, res.stderr
    # 141 when head had left before the second study was written (the usual case); 0 when the
    # second line still fitted in the pipe before head exited: either way no error is printed.
    assert res.stderr.strip().splitlines()[-1] in (f"status={PIPE_CLOSED}", "status=0")


# ---------------------------------------------------------------- outputs checked before any work


@pytest.fixture
def no_estimation(monkeypatch):
    """Records every run_study call: a refused output must come before any."""
    import causalcli.study.run

    calls = []
    real = causalcli.study.run.run_study

    def run_study(*args, **kwargs):
        calls.append(args)
        return real(*args, **kwargs)

    monkeypatch.setattr(causalcli.study.run, "run_study", run_study)
    return calls


def _refused(runner, spec: Path, args: list[str], calls: list) -> str:
    res = invoke(runner, ["estimate", str(spec), "--format", "json", *args])
    assert res.exit_code == 2, res.stderr
    assert res.stdout == "" and calls == []
    lines = [l for l in res.stderr.splitlines() if l.strip()]
    assert len(lines) == 1 and "Traceback" not in res.stderr
    return lines[0]


def test_output_parent_must_exist_and_is_never_created(runner, sim_spec, tmp_path, no_estimation):
    target = tmp_path / "nonexistent" / "dir" / "out.json"
    line = _refused(runner, sim_spec, ["-o", str(target)], no_estimation)
    assert line.startswith(f"error: --output {target}:") and "does not exist" in line and "create it" in line
    assert not (tmp_path / "nonexistent").exists()
    line = _refused(runner, sim_spec, ["-o", "/nonexistent/dir/out.json"], no_estimation)
    assert "--output /nonexistent/dir/out.json" in line and not Path("/nonexistent").exists()


def test_output_whose_parent_is_a_file(runner, sim_spec, tmp_path, no_estimation):
    (tmp_path / "afile").write_text("x")
    line = _refused(runner, sim_spec, ["-o", str(tmp_path / "afile" / "out.json")], no_estimation)
    assert f"--output {tmp_path / 'afile' / 'out.json'}" in line and "is a file, not a folder" in line


def test_output_that_is_a_folder(runner, sim_spec, tmp_path, no_estimation):
    line = _refused(runner, sim_spec, ["-o", str(tmp_path)], no_estimation)
    assert "is a folder; give a file name" in line


# /proc refuses new files even to root, whose permission bits would say yes: the check must write.
@pytest.mark.parametrize("option, target", [("--output", "/proc/out.json"), ("-o", "/proc/out.json"),
                                            ("--report", "/proc/r.html"), ("--plots", "/proc/plots")])
def test_unwritable_targets_are_refused_before_estimating(runner, sim_spec, no_estimation, option, target):
    line = _refused(runner, sim_spec, [option, target], no_estimation)
    name = "--output" if option == "-o" else option
    assert line.startswith(f"error: {name} {target}:") and "choose a folder you can write to" in line


def test_plots_folder_is_created_but_not_its_parent(runner, sim_spec, tmp_path, no_estimation):
    line = _refused(runner, sim_spec, ["--plots", str(tmp_path / "missing" / "plots")], no_estimation)
    assert "--plots" in line and "does not exist" in line and not (tmp_path / "missing").exists()
    (tmp_path / "taken").write_text("x")
    line = _refused(runner, sim_spec, ["--plots", str(tmp_path / "taken")], no_estimation)
    assert "exists and is not a folder" in line
    res = invoke(runner, ["estimate", str(sim_spec), "--format", "json", "--plots", str(tmp_path / "plots")])
    assert res.exit_code == 0 and no_estimation
    assert sorted(p.suffix for p in (tmp_path / "plots").iterdir()) == [".png", ".png"]


def test_writable_outputs_leave_no_trace_of_the_check(runner, sim_spec, tmp_path):
    res = invoke(runner, ["estimate", str(sim_spec), "--format", "json", "-o", str(tmp_path / "r.json"),
                          "--report", str(tmp_path / "r.html")])
    assert res.exit_code == 0
    made = {p.name for p in tmp_path.iterdir()} - {"sim.csv", "study.yaml"}
    assert made == {"r.json", "r.html"}  # no temporary file left beside them


def test_write_atomic_needs_the_folder_and_leaves_no_partial_file(tmp_path):
    from causalcli.runtime.atomic import write_atomic
    from causalcli.errors import SpecError

    with pytest.raises(SpecError, match=r"--report .*/missing/r.html: cannot write"):
        write_atomic(tmp_path / "missing" / "r.html", "x", "--report")
    assert not (tmp_path / "missing").exists()
    (tmp_path / "r.json").write_text("old")
    write_atomic(tmp_path / "r.json", "new")
    assert (tmp_path / "r.json").read_text() == "new" and os.listdir(tmp_path) == ["r.json"]


# ---------------------------------------------------------------- CSV and --set


def test_csv_carries_p_value_adjusted(runner):
    spec = str(SPECS / "ab_test.yaml")
    as_json = invoke(runner, ["estimate", spec, "--format", "json", "--no-refute"])
    as_csv = invoke(runner, ["estimate", spec, "--format", "csv", "--no-refute"])
    assert as_csv.exit_code == as_json.exit_code
    rows = list(csv.DictReader(io.StringIO(as_csv.stdout)))
    effects = json.loads(as_json.stdout)["effects"]
    assert len(rows) == 1 + len(effects)
    for row, effect in zip(rows[1:], effects):
        assert row["label"] == effect["label"]
        assert float(row["p_value_adjusted"]) == effect["p_value_adjusted"]  # same float, written by repr
        assert float(row["p_value_adjusted"]) >= float(row["p_value"])  # Holm never lowers a p-value


def test_csv_leaves_p_value_adjusted_empty_where_there_is_none(runner, sim_spec):
    res = invoke(runner, ["estimate", str(sim_spec), "--format", "csv"])
    rows = list(csv.DictReader(io.StringIO(res.stdout)))
    assert "p_value_adjusted" in rows[0] and rows[0]["p_value_adjusted"] == "" and rows[0]["p_value"] != ""


def _error_line(res) -> str:
    lines = [l for l in res.stderr.splitlines() if l.startswith("error:")]
    assert len(lines) == 1 and "Traceback" not in res.stderr, res.stderr
    return lines[0]


def test_set_errors_name_the_set_not_a_line_of_the_file(runner, sim_spec):
    res = invoke(runner, ["estimate", str(sim_spec), "--set", "design.estimand=bogus"])
    line = _error_line(res)
    assert res.exit_code == 2 and "--set design.estimand=bogus: " in line
    assert not re.search(rf"{re.escape(str(sim_spec))}:\d", line)  # no 'study.yaml:12', the file's own value
    res = invoke(runner, ["estimate", str(sim_spec), "--set", "design.method=nope"])
    assert res.exit_code == 2 and "--set design.method=nope: unknown method 'nope'" in _error_line(res)
    res = invoke(runner, ["estimate", str(sim_spec), "--set", "design.options.caliper=-1"])
    line = _error_line(res)
    assert "--set design.options.caliper=-1: " in line and "(found -1)" in line  # the value as typed


def test_set_errors_found_after_validation_name_the_set(runner, sim_spec):
    res = invoke(runner, ["estimate", str(sim_spec), "--set", "outcome=nosuch"])
    line = _error_line(res)
    assert res.exit_code == 3 and "--set outcome=nosuch: column 'nosuch' not found" in line
    res = invoke(runner, ["estimate", str(sim_spec), "--set", "covariates=[x1, nope]"])
    assert res.exit_code == 3 and "--set covariates=[x1, nope]: " in _error_line(res)
    res = invoke(runner, ["estimate", str(sim_spec), "--set", "refute.3.placebo_treatment.simulations=5"])
    assert res.exit_code == 2 and "--set refute.3.placebo_treatment.simulations=5: index 3 is out of range" in \
        _error_line(res)


def test_the_files_own_error_keeps_its_line_beside_a_set(runner, sim_csv, write_spec):
    spec = write_spec(base_spec(sim_csv.name, design={"method": "matching", "estimand": "bogus"}))
    res = invoke(runner, ["estimate", str(spec), "--set", "seed=3"])
    line = _error_line(res)
    assert res.exit_code == 2 and f"{spec}:" in line and "--set" not in line
    line_no = int(line.split(f"{spec}:")[1].split(":")[0])
    assert spec.read_text().splitlines()[line_no - 1].strip().startswith("estimand:")


# ---------------------------------------------------------------- filter errors in plain words


@pytest.fixture
def filter_data(tmp_path) -> Path:
    df = simulate(40)
    df["age"] = range(40)
    df["day"] = "2020-01-01"
    df.to_csv(tmp_path / "d.csv", index=False)
    return tmp_path


def _filter_error(folder: Path, text: str) -> str:
    from causalcli.data.table import load_table
    from causalcli.errors import SpecError
    from causalcli.spec.loading import SpecSource
    from causalcli.study import load_spec

    spec = base_spec("d.csv", data={"path": "d.csv", "filter": text, "columns": {"x1": "score"}})
    loaded = load_spec(SpecSource(str(folder / "s.yaml"), yaml.safe_dump(spec), folder))
    with pytest.raises(SpecError) as info:
        load_table(loaded)
    assert info.value.exit_code == 2 and info.value.key == "data.filter"
    message = info.value.message
    assert "Error:" not in message and "__postfix" not in message and "\n" not in message  # no raw DuckDB text
    return message


@pytest.mark.parametrize("text, expected", [
    ("agee > 3", "column 'agee' not found (did you mean 'age'?)"),
    ("age > 3 AND scor < 1", "column 'scor' not found (did you mean 'score'?)"),  # names after data.columns
    ("zzz > 3", "column 'zzz' not found; the data has: t, y, score, x2, region, age, day, x1"),
    ("region = \"north\"", "double quotes name a column; text values take single quotes ('north')"),
])
def test_filter_unknown_column(filter_data, text, expected):
    assert expected in _filter_error(filter_data, text)


@pytest.mark.parametrize("text, expected", [
    ("age > 3 AND AND y > 0", "syntax error near 'AND' at character 13"),
    ("age > 3 AND", "the filter ends too early: something is missing after 'AND'"),
    ("age >> ", "syntax error near '>>' at character 5: the operator has nothing on its right"),
    ("age = = 1", "syntax error near '=' at character 7"),
    ("age > 3)", "the ')' at character 8 closes no '('"),
    ("age IN (1, 2", "the '(' at character 8 is never closed"),
    ("region = 'north", "the quote at character 10 is never closed"),
    ("age > 3; SELECT 1", "syntax error near ';'"),
    ("sqrtt(age) > 1", "unknown function 'sqrtt' at character 1"),
])
def test_filter_syntax_error(filter_data, text, expected):
    assert expected in _filter_error(filter_data, text)


@pytest.mark.parametrize("text, expected", [
    ("region > 3", "type mismatch at character 8: cannot compare text (VARCHAR) with a number; "
                   "column types: region VARCHAR"),
    ("age > 'abc'", "type mismatch at character 7: 'abc' cannot be read as a number (INT64); column types: age BIGINT"),
    ("region + 1 > 2", "type mismatch at character 8: '+' cannot take text (VARCHAR), a number"),
    ("region LIKE 1", "'LIKE' cannot take text (VARCHAR), a number"),
])
def test_filter_type_mismatch(filter_data, text, expected):
    assert expected in _filter_error(filter_data, text)


@pytest.mark.parametrize("text", [
    "age > (SELECT count(*) FROM read_csv('/etc/passwd'))",
    "read_csv('/etc/passwd') IS NOT NULL",
    "age > 0) UNION ALL (SELECT 1",
])
def test_filter_errors_in_plain_words_keep_the_sandbox(filter_data, text):
    message = _filter_error(filter_data, text)
    assert "passwd" not in message.replace(text, "")  # nothing read from the file reaches the message


def test_filter_error_through_the_cli(runner, filter_data):
    spec = filter_data / "s.yaml"
    spec.write_text(yaml.safe_dump(base_spec("d.csv", data={"path": "d.csv", "filter": "agee > 3"})))
    res = invoke(runner, ["estimate", str(spec), "--format", "json"])
    assert res.exit_code == 2
    assert _error_line(res).endswith("key 'data.filter': column 'agee' not found (did you mean 'age'?)")


def test_validate_names_the_set_and_survives_an_internal_error(runner, sim_spec, monkeypatch):
    res = invoke(runner, ["validate", str(sim_spec), "--set", "outcome=nosuch"])
    assert res.exit_code == 3 and "--set outcome=nosuch: column 'nosuch' not found" in _error_line(res)

    from causalcli.designs.matching.design import MatchingDesign

    def boom(self, *args, **kwargs):
        raise ZeroDivisionError("division by zero")

    monkeypatch.setattr(MatchingDesign, "validate", boom)
    res = invoke(runner, ["validate", str(sim_spec), str(sim_spec)])
    lines = [ln for ln in res.stderr.splitlines() if ln.startswith("error:")]
    assert res.exit_code == 4 and len(lines) == 2  # both specs reported, neither stops the other
    assert "internal error: ZeroDivisionError: division by zero" in lines[0] and "Traceback" not in res.stderr


def test_output_to_a_device_or_pipe_writes_through_it_and_never_replaces_it(runner, sim_spec, tmp_path):
    """Renaming a temporary file over /dev/null (as root) would replace the device with a regular file."""
    import stat
    import threading

    fifo = tmp_path / "results.pipe"
    os.mkfifo(fifo)
    got = {}

    def read_pipe():
        with open(fifo, "rb") as fh:
            got["data"] = fh.read()

    reader = threading.Thread(target=read_pipe)
    reader.start()
    res = invoke(runner, ["estimate", str(sim_spec), "--no-refute", "--format", "json", "-o", str(fifo)])
    reader.join(timeout=60)
    assert res.exit_code in (0, 1), res.stderr
    assert stat.S_ISFIFO(fifo.stat().st_mode) and json.loads(got["data"])["estimate"]["value"] is not None
    res = invoke(runner, ["estimate", str(sim_spec), "--no-refute", "--format", "json", "-o", "/dev/null"])
    assert res.exit_code in (0, 1), res.stderr
    assert stat.S_ISCHR(os.stat("/dev/null").st_mode)


@pytest.mark.parametrize("command", ["estimate", "validate"])
def test_a_data_error_line_names_the_spec_that_read_the_data(runner, sim_csv, write_spec, command):
    # two specs on one data file: the stderr line of a data error named only the data file
    # ('error: sim.csv: key ...'), so a CI log did not say which study to fix
    good = write_spec(base_spec(sim_csv.name), "a_good.yaml")
    bad = write_spec(base_spec(sim_csv.name, outcome="nosuch"), "b_bad.yaml")
    res = invoke(runner, [command, str(good), str(bad)])
    lines = [ln for ln in res.stderr.splitlines() if ln.startswith("error:")]
    assert res.exit_code == 3 and len(lines) == 1
    assert lines[0].startswith(f"error: {bad}: {sim_csv.name}: key 'outcome': column 'nosuch' not found")
    # a spec error is in the spec itself: named once, with its line
    write_spec({**base_spec(sim_csv.name), "outcomee": "y"}, "b_bad.yaml")
    res = invoke(runner, [command, str(good), str(bad)])
    assert f"error: {bad}:" in res.stderr and res.stderr.count(str(bad)) == 1


def test_validate_refuses_data_on_stdin_that_carries_the_spec(runner, sim_csv, write_spec):
    # validate read the spec from stdin, then the data from the same, emptied stdin: "the data file
    # has no rows" (exit 3), where estimate names the clash (exit 2)
    spec = yaml.safe_dump(base_spec("-"))
    for command in ("estimate", "validate"):
        res = invoke(runner, [command, "-"], input=spec)
        assert res.exit_code == 2, (command, res.stderr)
        assert "data.path '-' reads stdin, which already carries the spec" in res.stderr
    res = invoke(runner, ["validate", str(write_spec(base_spec("-")))], input=sim_csv.read_text())
    assert res.exit_code == 0, res.stderr


def test_ctrl_c_turned_into_another_exception_still_stops_the_batch(runner, batch, tmp_path, monkeypatch):
    # Cython code interrupted mid-parse raises ValueError for the KeyboardInterrupt (EconML's boosting:
    # "... is not a valid PEP 3118 buffer format string"): the batch counted it as the study's error
    # (exit 4), estimated the rest and wrote --output as if nobody had pressed Ctrl-C
    import signal

    import causalcli.study.run as run

    # a Spark test earlier in this process leaves PySpark's SIGINT handler installed (it cancels jobs), and
    # the command keeps a handler it did not expect: start from Python's own, as a fresh process does
    previous = signal.signal(signal.SIGINT, signal.default_int_handler)
    real = run.run_study

    def run_study(spec, **kwargs):
        if spec.name == "boom":
            try:
                signal.raise_signal(signal.SIGINT)
            except KeyboardInterrupt:
                raise ValueError("'T{=d:sum_gradients:}' is not a valid PEP 3118 buffer format string") from None
        return real(spec, **kwargs)

    monkeypatch.setattr(run, "run_study", run_study)
    out = tmp_path / "out.json"
    res = invoke(runner, ["estimate", str(batch), "--output", str(out)])
    assert res.exit_code == 130 and "interrupted" in res.stderr
    assert not out.exists() and "good" not in res.stderr
    try:
        assert signal.getsignal(signal.SIGINT) is signal.default_int_handler  # the command put it back
    finally:
        signal.signal(signal.SIGINT, previous)
