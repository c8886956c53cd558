"""Peer timings for bench_did.py: one peer per process, data loaded first, the fit timed in-process.

Prints one JSON line: {"peer", "seconds", "max_rss_mib", "estimate"}.
"""

from __future__ import annotations

import argparse
import json
import resource
import time
import warnings

import pandas as pd


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("peer", choices=["pyfixest", "linearmodels", "diff_diff", "csdid"])
    ap.add_argument("data")
    ap.add_argument("--draws", type=int, default=999)
    args = ap.parse_args()
    warnings.simplefilter("ignore")
    df = pd.read_parquet(args.data)
    if args.peer == "pyfixest":
        import pyfixest as pf

        t0 = time.perf_counter()
        m = pf.feols("y ~ d + x | unit + time", data=df, vcov={"CRV1": "unit"})
        est = float(m.coef()["d"]), float(m.se()["d"])
    elif args.peer == "linearmodels":
        from linearmodels import PanelOLS

        t0 = time.perf_counter()
        panel = df.set_index(["unit", "time"])
        m = PanelOLS(panel["y"], panel[["d", "x"]], entity_effects=True, time_effects=True).fit(
            cov_type="clustered", cluster_entity=True)
        est = float(m.params["d"]), float(m.std_errors["d"])
    elif args.peer == "diff_diff":
        from diff_diff import CallawaySantAnna

        t0 = time.perf_counter()
        r = CallawaySantAnna(control_group="never_treated", estimation_method="dr", n_bootstrap=args.draws,
                             seed=0).fit(df, "y", "unit", "time", "g", aggregate="all")
        est = float(r.overall_att), float(r.overall_se)
    else:
        from csdid.att_gt import ATTgt

        t0 = time.perf_counter()
        a = ATTgt(yname="y", tname="time", idname="unit", gname="g", data=df, control_group=["nevertreated"],
                  biters=args.draws, cband=True)
        a.fit(est_method="dr", bstrap=True)
        a.aggte(typec="simple")
        est = float("nan"), float("nan")
    seconds = time.perf_counter() - t0
    rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(json.dumps({"peer": args.peer, "seconds": seconds, "max_rss_mib": rss, "estimate": est}))


if __name__ == "__main__":
    main()
