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
