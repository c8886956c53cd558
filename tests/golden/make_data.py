"""Writes the small data sets of the golden test into tests/golden/data/ (committed).

The CSVs are committed, so the golden results hang on these bytes, not on numpy's random
streams; rerun this only to add a data set (and regenerate the golden files, explaining why).
"""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import numpy as np
import pandas as pd

HERE = Path(__file__).resolve().parent
DATA = HERE / "data"
REFERENCE = HERE.parent / "reference"


def observational(n: int = 300, seed: int = 11) -> pd.DataFrame:
    """Confounded binary treatment (x1, x2, region raise treatment odds and outcome), effect 2."""
    rng = np.random.default_rng(seed)
    x1 = rng.normal(size=n)
    x2 = rng.normal(size=n)
    region = rng.choice(["north", "south", "east"], size=n)
    p = 1 / (1 + np.exp(-(-0.4 + 0.8 * x1 - 0.5 * x2 + 0.4 * (region == "south"))))
    t = (rng.uniform(size=n) < p).astype(int)
    y = 2.0 * t + 1.5 * x1 + x2 + 0.5 * (region == "south") + 0.5 * t * x1 + rng.normal(size=n)
    return pd.DataFrame({"t": t, "y": y.round(6), "x1": x1.round(6), "x2": x2.round(6), "region": region})


def experiment(n: int = 1500, seed: int = 12) -> pd.DataFrame:
    """Three arms over ten days: revenue (CUPED on pre_revenue), watch time per session."""
    rng = np.random.default_rng(seed)
    variant = rng.choice(["control", "new", "new_plus"], size=n, p=[0.5, 0.25, 0.25])
    lift = np.select([variant == "new", variant == "new_plus"], [0.4, 0.8], 0.0)
    pre = rng.gamma(2.0, 3.0, size=n)
    revenue = np.maximum(0.0, 0.7 * pre + 3 + lift + rng.normal(scale=3, size=n))
    sessions = rng.poisson(3, size=n) + 1
    watch = sessions * (7 + lift + rng.normal(scale=2, size=n)).clip(0.1)
    day = rng.integers(0, 10, size=n)
    start = dt.date(2026, 3, 2)
    days = [start + dt.timedelta(days=int(d)) for d in day]
    return pd.DataFrame({"user_id": np.arange(n), "variant": variant, "day": days,
                         "pre_revenue": pre.round(2), "revenue": revenue.round(2), "sessions": sessions,
                         "watch_time": watch.round(1)})


def compliance(users: int = 500, seed: int = 14) -> pd.DataFrame:
    """Partial compliance: users invited (uptake 5% -> 55%) or nudged (5% -> 9%, a weak first stage) to a feature,
    1-3 sessions each; using it adds 1.5 purchases per session and 0.2 to the chance of converting."""
    rng = np.random.default_rng(seed)
    variant = rng.choice(["control", "invite", "nudge"], size=users, p=[0.5, 0.3, 0.2])
    v = rng.uniform(size=users)  # the user's type: takes up in an arm when v is below its uptake
    used = (v < np.select([variant == "invite", variant == "nudge"], [0.55, 0.09], 0.05)).astype(int)
    level = rng.gamma(2.0, 1.0, size=users) + 1.0 * (v < 0.05)  # always-takers buy more anyway
    sessions = rng.integers(1, 4, size=users)
    rows = np.repeat(np.arange(users), sessions)
    purchases = np.maximum(0.0, level[rows] + 1.5 * used[rows] + rng.normal(scale=1.0, size=rows.size))
    converted = (rng.uniform(size=rows.size) < 0.3 + 0.2 * used[rows]).astype(int)
    return pd.DataFrame({"user_id": rows, "variant": variant[rows], "used": used[rows],
                         "pre_purchases": level[rows].round(3), "purchases": purchases.round(3),
                         "converted": converted})


def synth_panel(units: int = 12, periods: int = 20, start: int = 14, seed: int = 13) -> pd.DataFrame:
    """Unit 'treated' and 11 donors driven by two common factors; effect -3 from period 14."""
    rng = np.random.default_rng(seed)
    factors = np.cumsum(rng.normal(size=(periods, 2)), axis=0)
    rows = []
    for u in range(units):
        name = "treated" if u == 0 else f"donor{u:02d}"
        load = rng.uniform(0.2, 1.5, size=2)
        level = rng.normal(20, 3)
        p1, p2 = rng.normal(size=2)
        for s in range(periods):
            y = level + factors[s] @ load + rng.normal(scale=0.3) - (3.0 if u == 0 and s + 1 >= start else 0.0)
            rows.append({"unit": name, "period": s + 1, "y": round(y, 4), "p1": round(p1 + 0.1 * s, 4),
                         "p2": round(p2 * level / 20 + rng.normal(scale=0.1), 4)})
    return pd.DataFrame(rows)


def organ_donations() -> pd.DataFrame:
    """Kessler and Roth's panel (tests/reference/did) with California treated from quarter 4."""
    df = pd.read_csv(REFERENCE / "did" / "organ_donations.csv")
    df["treated"] = ((df.State == "California") & (df.Quarter_Num >= 4)).astype(int)
    return df


def main() -> None:
    DATA.mkdir(exist_ok=True)
    observational().to_csv(DATA / "observational.csv", index=False)
    experiment().to_csv(DATA / "experiment.csv", index=False)
    # the same rows as Parquet: the experiment design reads a CSV once per query (about 1 s here), Parquet in 0.1 s
    experiment().to_parquet(DATA / "experiment.parquet", index=False)
    synth_panel().to_csv(DATA / "synth_panel.csv", index=False)
    organ_donations().to_csv(DATA / "organ_donations.csv", index=False)
    compliance().to_parquet(DATA / "compliance.parquet", index=False)


if __name__ == "__main__":
    main()
