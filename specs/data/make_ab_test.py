"""Writes specs/data/ab_test.parquet: a simulated three-arm A/B test (seed 7).

40,000 users randomised 50/25/25 to control / new_feed / new_feed_plus. Revenue has a
pre-experiment value (for CUPED); watch time per session is a ratio metric.
True effects: new_feed raises revenue by 0.20 (about 2%) and watch time per session by
1.5%; new_feed_plus does nothing. Run: python specs/data/make_ab_test.py
"""

from pathlib import Path

import numpy as np
import pandas as pd

rng = np.random.default_rng(7)
n = 40_000
variant = rng.choice(["control", "new_feed", "new_feed_plus"], size=n, p=[0.5, 0.25, 0.25])
activity = rng.gamma(2.0, 1.0, size=n)
pre_revenue = np.round(rng.gamma(2.0, 2.5, size=n) * activity, 2)
revenue = np.round(np.maximum(0.0, 0.8 * pre_revenue + rng.normal(2.0, 3.0, size=n)
                              + 0.20 * (variant == "new_feed")), 2)
sessions = 1 + rng.poisson(3.0 * activity)
lift = np.where(variant == "new_feed", 1.015, 1.0)
watch_time = np.round(sessions * rng.gamma(4.0, 2.5, size=n) * lift, 1)
frame = pd.DataFrame({"user_id": np.arange(n), "variant": variant, "pre_revenue": pre_revenue,
                      "revenue": revenue, "sessions": sessions, "watch_time": watch_time})
frame.to_parquet(Path(__file__).with_name("ab_test.parquet"), index=False)
