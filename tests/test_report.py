"""The HTML report, opened as a person would: in headless Chromium."""

from __future__ import annotations

import base64
import io
import re
import shutil
import subprocess

import numpy as np
import yaml

from tests.conftest import SPECS, base_spec, invoke

CHROMIUM_FLAGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                  "--disable-background-networking", "--disable-component-update", "--disable-sync",
                  "--hide-scrollbars"]


def chromium() -> str:
    path = shutil.which("chromium") or shutil.which("chromium-browser")
    if path is None:
        raise AssertionError("chromium is not installed: `make test` installs Debian's chromium "
                             "(apt-get install chromium); this test does not skip without it")
    return path


def _report(runner, tmp_path, sim_csv):
    folder = tmp_path / "specs"
    folder.mkdir()
    (folder / "a.yaml").write_text(yaml.safe_dump(base_spec(f"../{sim_csv.name}")))
    (folder / "b.yaml").write_text(yaml.safe_dump(base_spec(f"../{sim_csv.name}", outcome="nope")))
    report = tmp_path / "report.html"
    res = invoke(runner, ["estimate", str(folder), "--format", "json", "--report", str(report)])
    assert res.exit_code == 3  # study b fails on a missing column; the report still shows both
    return report


def _image(png: bytes) -> np.ndarray:
    import matplotlib.image as mpimg

    return mpimg.imread(io.BytesIO(png), format="png")


def test_report_renders_in_chromium_with_every_plot_and_no_errors(runner, tmp_path, sim_csv):
    report = _report(runner, tmp_path, sim_csv)
    text = report.read_text()
    assert "study-a" in text and "study-b" in text and "nope" in text
    pngs = [base64.b64decode(m) for m in re.findall(r"data:image/png;base64,([A-Za-z0-9+/=]+)", text)]
    assert len(pngs) == 2
    for png in pngs:  # each plot is a real, non-blank picture
        img = _image(png)
        assert img.shape[0] > 200 and img.shape[1] > 300 and float(img[..., :3].std()) > 0.05

    browser = chromium()
    dom = subprocess.run([browser, *CHROMIUM_FLAGS, f"--user-data-dir={tmp_path / 'ud1'}",
                          "--virtual-time-budget=5000", "--dump-dom", report.as_uri()],
                         capture_output=True, text=True, timeout=120)
    body = re.search(r"<body[^>]*>", dom.stdout)
    assert body, dom.stderr[-2000:]
    tag = body.group(0)
    assert 'data-rendered="yes"' in tag
    assert 'data-images="2/2"' in tag  # every plot loaded
    assert "data-errors" not in tag  # no script error, no console error

    shot = tmp_path / "shot.png"
    subprocess.run([browser, *CHROMIUM_FLAGS, f"--user-data-dir={tmp_path / 'ud2'}", "--window-size=1200,1600",
                    f"--screenshot={shot}", report.as_uri()], capture_output=True, timeout=120)
    img = _image(shot.read_bytes())
    assert img.shape[:2] == (1600, 1200) and float(img[..., :3].std()) > 0.05


def test_report_is_deterministic(runner, tmp_path, sim_csv):
    spec = tmp_path / "s.yaml"
    spec.write_text(yaml.safe_dump(base_spec(sim_csv.name)))
    a, b = tmp_path / "a.html", tmp_path / "b.html"
    for out in (a, b):
        assert invoke(runner, ["estimate", str(spec), "--format", "json", "--report", str(out)]).exit_code == 0
    assert a.read_bytes() == b.read_bytes()


def _render_in_chromium(report, tmp_path) -> str:
    dom = subprocess.run([chromium(), *CHROMIUM_FLAGS, f"--user-data-dir={tmp_path / 'ud-all'}",
                          "--virtual-time-budget=8000", "--dump-dom", report.as_uri()],
                         capture_output=True, text=True, timeout=180)
    body = re.search(r"<body[^>]*>", dom.stdout)
    assert body, dom.stderr[-2000:]
    return body.group(0)


def test_report_of_every_design_shows_its_plots(runner, tmp_path):
    """The bundled example of each design family in one report: every plot of every design renders."""
    import json

    report = tmp_path / "all.html"
    res = invoke(runner, ["estimate", str(SPECS), "--no-refute", "--format", "json", "--report", str(report)])
    items = json.loads(res.stdout)
    assert {i["design"] for i in items} == {"matching", "weighting", "did", "synthetic_control", "dml", "experiment"}
    assert all("error" not in i for i in items), [i.get("error") for i in items]
    text = report.read_text()
    expected = {  # the plots each design's example must show (render/plots/<family>.py)
        "matching": 2, "weighting": 2, "did": 1, "synthetic_control": 2, "dml": 1, "experiment": 1,
    }
    sections = re.split(r'<section class="study', text)[1:]
    assert len(sections) == len(items)
    total = 0
    for item, section in zip(items, sections):
        n = section.count("data:image/png;base64,")
        assert n >= expected[item["design"]], (item["study"], n)
        total += n
        for m in re.findall(r"data:image/png;base64,([A-Za-z0-9+/=]+)", section):
            img = _image(base64.b64decode(m))
            assert img.shape[0] > 200 and float(img[..., :3].std()) > 0.05, item["study"]
    tag = _render_in_chromium(report, tmp_path)
    assert 'data-rendered="yes"' in tag and f'data-images="{total}/{total}"' in tag and "data-errors" not in tag
