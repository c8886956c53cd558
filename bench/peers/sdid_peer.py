"""diff-diff's SyntheticDiD for bench_sdid.py, as a fresh process: the file read, the fit with placebo SE.

Prints one JSON line: {"seconds_fit", "estimate", "se"} (the process's wall time is taken by the caller).
"""

from __future__ import annotations

import argparse
import json
import time
import warnings

import pandas as pd


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("data")
    ap.add_argument("--start", type=int, required=True)
    ap.add_argument("--replications", type=int, default=200)
    args = ap.parse_args()
    warnings.simplefilter("ignore")
    from diff_diff import SyntheticDiD

    df = pd.read_csv(args.data)
    t0 = time.perf_counter()
    periods = sorted(df["period"].unique())
    r = SyntheticDiD(variance_method="placebo", n_bootstrap=args.replications, seed=0).fit(
        df, outcome="y", treatment="treated", unit="unit", time="period",
        post_periods=[p for p in periods if p >= args.start])
    print(json.dumps({"seconds_fit": time.perf_counter() - t0, "estimate": float(r.att), "se": float(r.se)}))


if __name__ == "__main__":
    main()
