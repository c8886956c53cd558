"""The three reference studies as causalcli specs, their published donor weights, and helpers to fit them.

Used by the reference tests in this folder and by tests/test_synth.py (bad input and options on the
same data). Sources of the data and weights: README.md in this folder.
"""

from __future__ import annotations

from functools import lru_cache
from pathlib import Path

import numpy as np
import yaml

from causalcli.study.run import as_loaded, prepare_study, run_study

REF = Path(__file__).resolve().parent

# Donor weights as the papers print them: ADH (2010) Table 2; R Synth's example output for Abadie and
# Gardeazabal (2003); ADH (2015) Table 2. Donors not listed have weight 0.
PUBLISHED = {
    "prop99": {"Utah": 0.334, "Nevada": 0.234, "Montana": 0.199, "Colorado": 0.164, "Connecticut": 0.069},
    "basque": {"Cataluna": 0.851, "Madrid (Comunidad De)": 0.149},
    "germany": {"Austria": 0.42, "USA": 0.22, "Japan": 0.16, "Switzerland": 0.11, "Netherlands": 0.09},
}


def spec_of(name: str, **options) -> dict:
    """The study's spec (``<name>.yaml``) with its data path made absolute and ``options`` added."""
    spec = yaml.safe_load((REF / f"{name}.yaml").read_text())
    spec["data"]["path"] = str(REF / spec["data"]["path"])
    spec["design"].setdefault("options", {}).update(options)
    return spec


@lru_cache(maxsize=None)
def fitted(name: str):
    """The study run as its spec stands (one run per test process: tests only read the result)."""
    return run_study(spec_of(name), jobs=1)


def prepared(name: str, **options):
    """The SynthData the design's ``prepare`` builds for a reference study."""
    loaded = as_loaded(spec_of(name, **options))
    p = prepare_study(loaded)
    return p.design.prepare(loaded.study, p.table, p.identification, loaded)


def published_loss(d, weights: dict[str, float]) -> tuple[float, np.ndarray]:
    """Pre-period outcome loss (mean squared gap over the optimisation window) of the given donor weights,
    renormalised to sum to 1, and the gap of every period."""
    from causalcli.designs.synthetic_control.panel import optimize_mask

    w = np.array([weights.get(u, 0.0) for u in d.units[1:]])
    w = w / w.sum()
    opt = optimize_mask(d, d.start)
    e = d.Y[opt, 0] - d.Y[opt, 1:] @ w
    return float(e @ e / e.size), d.Y[:, 0] - d.Y[:, 1:] @ w
