"""pysyncon's Synth on a panel CSV written by bench_synth.py: one fit, its defaults; prints JSON (seconds, loss)."""

from __future__ import annotations

import argparse
import json
import time

import pandas as pd


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("csv")
    ap.add_argument("--start", type=int, required=True)
    ap.add_argument("--predictors", required=True, help="comma-separated columns averaged over the pre-period")
    ap.add_argument("--lags", required=True, help="comma-separated outcome periods used as special predictors")
    args = ap.parse_args()
    from pysyncon import Dataprep, Synth

    df = pd.read_csv(args.csv)
    units = sorted(df.unit.unique())
    pre = range(int(df.t.min()), args.start)
    dp = Dataprep(foo=df, predictors=args.predictors.split(","), predictors_op="mean", time_predictors_prior=pre,
                  special_predictors=[("y", [int(x)], "mean") for x in args.lags.split(",")], dependent="y",
                  unit_variable="unit", time_variable="t", treatment_identifier=units[0],
                  controls_identifier=units[1:], time_optimize_ssr=pre)
    t0 = time.perf_counter()
    synth = Synth()
    synth.fit(dataprep=dp)
    print(json.dumps({"seconds": time.perf_counter() - t0, "loss_v": float(synth.loss_V)}))


if __name__ == "__main__":
    main()
