"""The simulated A/B test data of the experiment tests and the causalcli spec that analyses it.

``users`` is the generating script of the data tea-tasting analysed for ``tea_tasting_analyze.json``
(``make_peer_fixtures.py`` calls it); tests/test_experiment.py uses it for its own checks.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd


def users(n: int = 4000, seed: int = 42, arms: int = 2) -> pd.DataFrame:
    """Per-user data in tea-tasting's shape: sessions, orders, revenue and their pre-period covariates."""
    rng = np.random.default_rng(seed)
    variant = rng.integers(0, arms, n)
    sessions_cov = rng.poisson(2, n) + 1
    sessions = rng.poisson(sessions_cov * (1 + 0.05 * variant)) + 1
    orders_cov = rng.binomial(sessions_cov, 0.25)
    orders = rng.binomial(sessions, 0.25 + 0.02 * variant)
    basket = rng.lognormal(2.3, 0.6, n)  # a user's typical basket: what makes CUPED work
    revenue_cov = orders_cov * basket * rng.lognormal(0, 0.2, n)
    revenue = orders * basket * rng.lognormal(0, 0.2, n) * (1 + 0.05 * variant)
    return pd.DataFrame({"user": np.arange(n), "variant": variant, "sessions": sessions, "orders": orders,
                         "revenue": revenue, "sessions_covariate": sessions_cov, "orders_covariate": orders_cov,
                         "revenue_covariate": revenue_cov})


# The four metrics, as causalcli specs them; make_peer_fixtures.py gives tea-tasting the same four.
METRICS = [
    {"name": "revenue", "outcome": "revenue"},
    {"name": "revenue_cuped", "outcome": "revenue", "covariate": "revenue_covariate"},
    {"name": "orders_per_session", "numerator": "orders", "denominator": "sessions"},
    {"name": "orders_per_session_cuped", "numerator": "orders", "denominator": "sessions",
     "covariate": "orders_covariate", "covariate_denominator": "sessions_covariate"},
]


def spec_for(path: Path, metrics=None, control=0, **design) -> dict:
    return {"version": 1, "name": "ab", "data": {"path": str(path)}, "treatment": "variant",
            "design": {"method": "experiment", "control": control, "metrics": metrics or METRICS, **design}}
