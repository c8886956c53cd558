"""Each output of ``estimate`` on its own: a renderer or a plot that raises costs that output (or that
study's part of it) only. The failure is one line on stderr naming the output and the study, with the
--debug hint, and exit 4 (a bug, as an internal error inside a study); every other file is written whole."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import yaml

from tests.conftest import base_spec, invoke

PNG_START, PNG_END = b"\x89PNG\r\n\x1a\n", b"IEND\xaeB`\x82"


@pytest.fixture
def two_studies(tmp_path, sim_csv) -> Path:
    folder = tmp_path / "batch"
    folder.mkdir()
    for name in ("a", "b"):
        (folder / f"{name}.yaml").write_text(yaml.safe_dump({**base_spec(f"../{sim_csv.name}"), "name": name}))
    return folder


def _raising_for_study_a(real):
    def renderer(items, *args, **kwargs):
        if any(getattr(item, "estimate", None) is not None and item.study == "a" for item in items):
            raise ZeroDivisionError("division by zero")
        return real(items, *args, **kwargs)
    return renderer


def _errors(stderr: str) -> list[str]:
    return [line for line in stderr.splitlines() if line.startswith("error:")]


def _whole_png(path: Path) -> bool:
    data = path.read_bytes()
    return data.startswith(PNG_START) and data.endswith(PNG_END)


def _whole_report(path: Path, studies: list[str]) -> str:
    page = path.read_text()
    assert page.endswith("</html>\n")
    for study in studies:  # each an estimated section, not an error one
        assert f'<section class="study" id="study-{study}">' in page
    return page


def test_a_failing_markdown_renderer_costs_no_other_output(runner, two_studies, tmp_path, monkeypatch):
    import causalcli.render.markdown as markdown

    monkeypatch.setattr(markdown, "render_markdown", _raising_for_study_a(markdown.render_markdown))
    out, report, plots = tmp_path / "out.md", tmp_path / "r.html", tmp_path / "plots"
    res = invoke(runner, ["estimate", str(two_studies), "--format", "markdown", "-o", str(out),
                          "--report", str(report), "--plots", str(plots)])
    assert res.exit_code == 4
    [line] = _errors(res.stderr)
    assert line.startswith(f"error: --output {out} (study a): internal error: ZeroDivisionError")
    assert "run with --debug" in line and "Traceback" not in res.stderr
    text = out.read_text()
    assert "### b" in text and "### a" not in text
    assert "| a | | | | | | | | error (exit 4): its markdown output could not be written" in text
    _whole_report(report, ["a", "b"])
    names = sorted(p.name for p in plots.iterdir())
    assert names == ["a-love.png", "a-propensity.png", "b-love.png", "b-propensity.png"]
    assert all(_whole_png(plots / n) for n in names)


def test_a_failing_plot_costs_only_itself(runner, two_studies, tmp_path, monkeypatch):
    from causalcli.designs.matching import plots as matching_plots

    real = matching_plots.PLOTS["love"]

    def love(result):
        if result.study == "a":
            raise ValueError("no axes")
        return real(result)

    monkeypatch.setitem(matching_plots.PLOTS, "love", love)
    out, report, plots = tmp_path / "out.json", tmp_path / "r.html", tmp_path / "plots"
    res = invoke(runner, ["estimate", str(two_studies), "--format", "json", "-o", str(out),
                          "--report", str(report), "--plots", str(plots)])
    assert res.exit_code == 4
    assert [i["study"] for i in json.loads(out.read_text()) if "estimate" in i] == ["a", "b"]
    names = sorted(p.name for p in plots.iterdir())
    assert names == ["a-propensity.png", "b-love.png", "b-propensity.png"]
    assert all(_whole_png(plots / n) for n in names)
    page = _whole_report(report, ["a", "b"])
    assert "plot love could not be drawn: internal error: ValueError: no axes" in page
    assert page.count("<figure>") == 3
    errors = _errors(res.stderr)
    assert len(errors) == 2
    assert errors[0].startswith(f"error: --report {report} (study a, plot love): internal error: ValueError")
    assert errors[1].startswith(f"error: --plots {plots / 'a-love.png'} (study a): internal error: ValueError")
    assert all("run with --debug" in e for e in errors)


def test_a_failing_json_renderer_keeps_the_old_file_and_writes_the_rest(runner, sim_spec, tmp_path, monkeypatch):
    import causalcli.render.json as json_renderer

    def boom(items):
        raise RuntimeError("encoder broke")

    monkeypatch.setattr(json_renderer, "render_json", boom)
    out, report, plots = tmp_path / "out.json", tmp_path / "r.html", tmp_path / "plots"
    out.write_text('{"old": true}\n')
    res = invoke(runner, ["estimate", str(sim_spec), "--format", "json", "-o", str(out),
                          "--report", str(report), "--plots", str(plots)])
    assert res.exit_code == 4
    [line] = _errors(res.stderr)
    assert line.startswith(f"error: --output {out} (study ") and "RuntimeError: encoder broke" in line
    assert out.read_text() == '{"old": true}\n'  # atomic: the old file whole, no partial one beside it
    assert sorted(p.name for p in tmp_path.iterdir() if p.name.startswith(".")) == []
    _whole_report(report, ["study"])
    assert len(list(plots.iterdir())) == 2


def test_a_failing_jsonl_study_on_stdout_is_its_error_object(runner, two_studies, monkeypatch):
    import causalcli.render.json as json_renderer

    monkeypatch.setattr(json_renderer, "render_jsonl", _raising_for_study_a(json_renderer.render_jsonl))
    res = invoke(runner, ["estimate", str(two_studies), "--format", "jsonl"])
    assert res.exit_code == 4
    a, b = (json.loads(line) for line in res.stdout.splitlines())
    assert a["error"]["exit_code"] == 4 and "its jsonl output could not be written" in a["error"]["message"]
    assert b["study"] == "b" and b["estimate"]["value"] is not None
    [line] = _errors(res.stderr)
    assert line.startswith("error: --format jsonl (study a): internal error: ZeroDivisionError")
