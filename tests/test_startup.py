"""--help and validate must not import the heavy libraries (DEVELOPERS.md: startup speed)."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

from tests.conftest import SPECS

HEAVY = ("dowhy", "econml", "linearmodels", "sklearn", "matplotlib", "ibis", "pyspark", "psycopg", "sqlglot",
         "deltalake", "pyiceberg")

PROBE = """
import json, sys
from causalcli.cli import app
from causalcli.cli.common import STATE
try:
    app(sys.argv[1:], standalone_mode=True)
except SystemExit as exc:
    code = exc.code
print(json.dumps({"code": code, "heavy": [m for m in %r if m in sys.modules]}), file=sys.stderr)
""" % (HEAVY,)


def _probe(*args: str) -> dict:
    res = subprocess.run([sys.executable, "-c", PROBE, *args], capture_output=True, text=True, timeout=120)
    return json.loads(res.stderr.strip().splitlines()[-1])


def test_import_of_cli_loads_no_heavy_library():
    code = "import sys, causalcli.cli; print([m for m in %r if m in sys.modules])" % (HEAVY,)
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert out.stdout.strip() == "[]"


def test_help_imports_no_heavy_library():
    got = _probe("--help")
    assert got == {"code": 0, "heavy": []}


@pytest.mark.parametrize("spec", sorted(p.name for p in SPECS.glob("*.yaml")))
def test_validate_imports_no_heavy_library(spec):
    got = _probe("validate", str(SPECS / spec))
    assert got == {"code": 0, "heavy": []}


def test_the_probe_can_see_heavy_imports():
    # guards the two tests above against passing vacuously: a command that does need
    # a heavy library (graph drawing) shows up in the probe
    got = _probe("graph", str(SPECS / "lalonde_psm.yaml"), "--format", "png", "--output", "/dev/null")
    assert "matplotlib" in got["heavy"]


def test_provenance_versions_match_importlib_metadata(tmp_path, monkeypatch):
    # the fast path reads dist-info folder names; it must give what importlib.metadata gives, first match on
    # sys.path included, and fall back to it for what has no dist-info folder
    from importlib import metadata

    from causalcli.runtime.packages import installed_versions
    from causalcli.study.run import PROVENANCE_PACKAGES

    installed_versions.cache_clear()
    assert installed_versions(PROVENANCE_PACKAGES) == {n: metadata.version(n) for n in PROVENANCE_PACKAGES}
    (tmp_path / "Shadow_Pkg-9.1.dist-info").mkdir()
    (tmp_path / "Shadow_Pkg-9.1.dist-info" / "METADATA").write_text("Metadata-Version: 2.1\nName: shadow-pkg\nVersion: 9.1\n")
    (tmp_path / "numpy-0.0.1.dist-info").mkdir()  # earlier on sys.path: it wins, as in importlib.metadata
    (tmp_path / "numpy-0.0.1.dist-info" / "METADATA").write_text("Metadata-Version: 2.1\nName: numpy\nVersion: 0.0.1\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    installed_versions.cache_clear()
    try:
        names = ("shadow.pkg", "numpy", "no-such-package-here")
        assert installed_versions(names) == {"shadow.pkg": "9.1", "numpy": "0.0.1"}
        assert metadata.version("shadow.pkg") == "9.1" and metadata.version("numpy") == "0.0.1"
    finally:
        installed_versions.cache_clear()


@pytest.mark.parametrize("model", ["linear", "forest"])
def test_dml_estimate_does_not_import_dowhy(tmp_path, model):
    # econml.dml imports DoWhy when it is installed, for a wrapper causalcli never calls: 1.2 s of a 5 s
    # command on the 401(k) data (nuisance.econml_dml keeps it out)
    import yaml

    from tests.reference.dml.simulate import dml_spec, simulate_dml

    df, _ = simulate_dml(300, seed=1)
    df.to_csv(tmp_path / "d.csv", index=False)
    spec = dml_spec(tmp_path / "d.csv", model=model, **({"trees": 8} if model == "forest" else {}))
    (tmp_path / "s.yaml").write_text(yaml.safe_dump(spec))
    got = _probe("estimate", str(tmp_path / "s.yaml"), "--no-refute", "--format", "json", "--quiet")
    assert got["code"] == 0
    assert "econml" in got["heavy"] and "dowhy" not in got["heavy"]
