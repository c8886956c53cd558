"""A sample drawn unequally from a population with a known average effect, and its sampling weights.

Population: ``x1, x2 ~ N(0, 1)``, treatment odds ``logit e = 0.3 + 0.8 x1 - 0.5 x2``, outcome
``y = 2 + x1 + 0.5 x2 + t (1 + x1) + N(0, 1)``: the effect ``1 + x1`` averages ``POPULATION_ATE`` = 1 over the
population. Units enter the sample with probability ``0.05 + 0.9 expit(2 x1)``, so the sample over-represents large
effects (its own average effect is near 1.54) and the sampling weight ``s = 1 / P(sampled)`` (1.05 to 20) is
correlated with the outcome. Weighted by ``s``, the estimators aim at the population's effect; unweighted, at the
sample's. (The inclusion probability is kept away from 0: with ``expit(-1 + 1.5 x1)`` the weights reached 500 and
the IPW intervals of 1,000-unit samples covered 82%, their sandwich SE far from its limit.)

``sim_sampled.csv`` (this folder) is ``sampled_study(5000, seed=11)`` written once and committed, so R
(``weighting_sampling_weights.R``) and Python read the same numbers.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

POPULATION_ATE = 1.0


def sampled_study(population: int, seed: int) -> pd.DataFrame:
    """The sampled units of a population of ``population`` units: ``t, y, x1, x2`` and the sampling weight ``s``."""
    rng = np.random.default_rng(seed)
    x1 = rng.normal(size=population)
    x2 = rng.normal(size=population)
    t = (rng.uniform(size=population) < 1 / (1 + np.exp(-(0.3 + 0.8 * x1 - 0.5 * x2)))).astype(int)
    y = 2 + x1 + 0.5 * x2 + t * (1 + x1) + rng.normal(size=population)
    inclusion = 0.05 + 0.9 / (1 + np.exp(-2 * x1))
    sampled = rng.uniform(size=population) < inclusion
    return pd.DataFrame({"t": t, "y": y, "x1": x1, "x2": x2, "s": 1 / inclusion})[sampled].reset_index(drop=True)


if __name__ == "__main__":  # pragma: no cover - writes the committed fixture
    from pathlib import Path

    sampled_study(5000, seed=11).to_csv(Path(__file__).with_name("sim_sampled.csv"), index=False,
                                        float_format="%.10g")
