"""The data-generating process of the dml tests, and the causalcli spec they run on its CSV.

Confounded data with a known effect: constant (2), by segment (1, 2, 3), or varying
with a covariate (1 + x0); the peer script (``make_doubleml_fixture.py``) draws the
same data from the same seeds.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd

SEGMENT_EFFECTS = {"a": 1.0, "b": 2.0, "c": 3.0}


def simulate_dml(n: int = 2000, seed: int = 0, *, binary: bool = True, heterogeneous: bool = False,
                 nonlinear: bool = False, forest_cate: bool = False) -> tuple[pd.DataFrame, np.ndarray]:
    """Confounded data and each row's true effect.

    x0 and x1 drive both treatment and outcome; ``seg`` (a, b, c) sets the effect when
    ``heterogeneous`` (1, 2, 3), else the effect is 2; ``forest_cate`` makes it 1 + x0.
    """
    rng = np.random.default_rng(seed)
    x = rng.normal(size=(n, 4))
    seg = rng.choice(list(SEGMENT_EFFECTS), size=n)
    index = 0.8 * x[:, 0] - 0.5 * x[:, 1] + (0.6 * np.sin(2 * x[:, 2]) if nonlinear else 0.0)
    if binary:
        t = (rng.uniform(size=n) < 1 / (1 + np.exp(-index))).astype(int)
    else:
        t = index + rng.normal(size=n)
    if forest_cate:
        effect = 1.0 + x[:, 0]
    elif heterogeneous:
        effect = np.array([SEGMENT_EFFECTS[s] for s in seg])
    else:
        effect = np.full(n, 2.0)
    g = (2 * np.sin(x[:, 0]) + x[:, 1] ** 2) if nonlinear else (1.5 * x[:, 0] + x[:, 1])
    y = effect * t + g + 0.5 * x[:, 3] + rng.normal(size=n)
    df = pd.DataFrame({"t": t, "y": y, **{f"x{j}": x[:, j] for j in range(4)}, "seg": seg})
    return df, effect


def dml_spec(path: Path, **design_options) -> dict:
    extra = design_options.pop("_study", {})
    spec = {"version": 1, "name": "dml", "data": {"path": str(path)}, "treatment": "t", "outcome": "y",
            "covariates": ["x0", "x1", "x2", "x3"],
            "design": {"method": "dml", "estimand": design_options.pop("estimand", "ate"),
                       "options": {"learner": "linear", **design_options}},
            "refute": [], "seed": 0}
    spec.update(extra)
    return spec


def in_reading_order(df, treatment: str, outcome: str, covariates: list[str]):
    """The rows in the order causalcli reads a study's rows: by their values, treatment, outcome, then the
    covariates (``Table.arrays``); folds drawn by position then fall on the same rows in both programs."""
    return df.sort_values([treatment, outcome, *covariates], kind="stable").reset_index(drop=True)
