"""Staggered DiD: imputation and Sun-Abraham on 20,000 units vs diff-diff's ImputationDiD and SunAbraham.

The panel is bench_did.py's Callaway-Sant'Anna panel: 20,000 units x 20 periods, 5 cohorts and never-treated
units, effects growing with event time (400,000 rows, Parquet). Both sides run as whole fresh processes on
the same file in the same run, timed from outside (imports, reading, the fit and its event study, output):
``causalcli estimate --no-refute`` (pre-trend test and, for Sun-Abraham, the honest-DiD sets included) and
bench/peers/staggered_peers.py (diff-diff's fit plus, for imputation, its event-study aggregation); medians
of 3 runs. Target (issue 19): the whole command no slower than diff-diff.
"""

from __future__ import annotations

import json
import shutil
import sys
import tempfile
from pathlib import Path

from common import BIN, ROOT, print_load, row, time_process, verdict


def main() -> None:
    from bench_did import make_cs

    tmp = Path(tempfile.mkdtemp(prefix="bench_did_staggered_"))
    try:
        data = tmp / "panel.parquet"
        make_cs(data)
        print("  20,000 units x 20 periods x 5 cohorts (400,000 rows), CRV1/conservative SEs on the unit", flush=True)
        print_load("before")
        for estimator, peer_name in (("imputation", "ImputationDiD"), ("sun_abraham", "SunAbraham")):
            spec = tmp / f"{estimator}.yaml"
            spec.write_text("version: 1\ndata: {path: panel.parquet}\noutcome: y\n"
                            f"design: {{method: did, unit: unit, time: time, cohort: g, estimator: {estimator}}}\n")
            ours, run = time_process([str(BIN / "causalcli"), "estimate", str(spec), "--no-refute", "--format",
                                      "json", "--quiet"])
            res = json.loads(run.stdout)
            theirs, prun = time_process([sys.executable, str(ROOT / "bench" / "peers" / "staggered_peers.py"),
                                         estimator, str(data)])
            peer = json.loads(prun.stdout.strip().splitlines()[-1])
            est, se = res["estimate"]["value"], res["estimate"]["std_error"]
            row(f"causalcli estimator: {estimator} (whole command)", ours, f"ATT {est:.8f} se {se:.8f}")
            row(f"diff-diff {peer_name} (whole process)", theirs,
                f"ATT {peer['estimate'][0]:.8f} se {peer['estimate'][1]:.8f}")
            print(f"  ratio diff-diff / causalcli: {theirs / ours:.2f}x", flush=True)
            verdict(ours <= theirs, f"{estimator}: whole command no slower than diff-diff")
            verdict(abs(est - peer["estimate"][0]) < 1e-8 and abs(se - peer["estimate"][1]) < 1e-6 * se,
                    f"{estimator}: same overall effect (1e-8) and SE (1e-6 relative) as diff-diff")
        print_load("after")
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    sys.path.insert(0, str(ROOT / "bench"))
    main()
