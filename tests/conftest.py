"""Shared fixtures: small data with a known effect, spec writers, a CLI runner."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import yaml
from typer.testing import CliRunner

ROOT = Path(__file__).resolve().parents[1]
SPECS = ROOT / "specs"
TRUE_EFFECT = 2.0


def simulate(n: int = 400, seed: int = 1, effect: float = TRUE_EFFECT) -> pd.DataFrame:
    """Confounded data: x1, x2 raise both treatment odds and outcome; the effect is constant."""
    rng = np.random.default_rng(seed)
    x1 = rng.normal(size=n)
    x2 = rng.normal(size=n)
    region = rng.choice(["north", "south", "east"], size=n)
    p = 1 / (1 + np.exp(-(-0.5 + 0.8 * x1 - 0.5 * x2)))
    t = (rng.uniform(size=n) < p).astype(int)
    y = effect * t + 1.5 * x1 + x2 + (region == "south") * 0.5 + rng.normal(size=n)
    return pd.DataFrame({"t": t, "y": y, "x1": x1, "x2": x2, "region": region})


def base_spec(data_path: str, **extra) -> dict:
    spec = {
        "version": 1,
        "data": {"path": data_path},
        "treatment": "t",
        "outcome": "y",
        "covariates": ["x1", "x2"],
        "design": {"method": "matching", "estimand": "att"},
        "refute": [],
        "seed": 0,
    }
    spec.update(extra)
    return spec


@pytest.fixture
def runner() -> CliRunner:
    return CliRunner()


@pytest.fixture
def sim_csv(tmp_path: Path) -> Path:
    path = tmp_path / "sim.csv"
    simulate().to_csv(path, index=False)
    return path


@pytest.fixture
def write_spec(tmp_path: Path):
    """Write a spec mapping (or raw YAML text) beside the data; returns its path."""

    def _write(spec: dict | str, name: str = "study.yaml") -> Path:
        path = tmp_path / name
        path.write_text(spec if isinstance(spec, str) else yaml.safe_dump(spec, sort_keys=False))
        return path

    return _write


@pytest.fixture
def sim_spec(sim_csv: Path, write_spec) -> Path:
    return write_spec(base_spec(sim_csv.name))


def invoke(runner: CliRunner, args: list[str], input: str | bytes | None = None):
    from causalcli.cli import app
    from causalcli.cli.common import STATE

    STATE.reset()
    return runner.invoke(app, args, input=input)


def run_json(runner: CliRunner, args: list[str], input=None) -> tuple[int, object, object]:
    res = invoke(runner, ["estimate", *args, "--format", "json"], input=input)
    payload = json.loads(res.stdout) if res.stdout.strip() else None
    return res.exit_code, payload, res


def json_whatever_jobs(runner: CliRunner, spec_path) -> str:
    """The study's JSON (without timings, keys sorted) with --jobs 1 and 2, asserted equal: a seed fixes the
    output however the refuters are spread over processes."""
    outs = []
    for jobs in ("1", "2"):
        code, payload, _ = run_json(runner, [str(spec_path), "--jobs", jobs])
        assert code in (0, 1)
        payload.pop("timing_s")
        outs.append(json.dumps(payload, sort_keys=True))
    assert outs[0] == outs[1]
    return outs[0]


# Real engines (tests/engines.py): started once per test process, failing (never skipping) when they cannot.
# Spark tests also carry @pytest.mark.xdist_group("spark") so that one worker holds the suite's only JVM.


@pytest.fixture(scope="session")
def postgres_url() -> str:
    from tests.engines import postgres_server

    return postgres_server().url


@pytest.fixture(scope="session")
def spark():
    from tests.engines import spark_session

    return spark_session()


@pytest.fixture(scope="session", autouse=True)
def _stop_engines_at_session_end():
    yield
    from tests.engines import stop_engines

    stop_engines()
