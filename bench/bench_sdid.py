"""Synthetic DiD with placebo SE (200 replications), 1,000 units x 50 periods, one treated unit, vs diff-diff.

Both run as fresh processes on the same CSV in the same run: ``causalcli estimate`` (refuters off,
2 workers) against diff-diff's ``SyntheticDiD(variance_method="placebo")`` (compiled backend), the
file read by each. The estimates agree to 1e-8 (same weights, synthdid's Frank-Wolfe) and the
placebo SEs too (both draw permutation r as the r-th ``default_rng(0).permutation(N0)``). Target
(issue 19 point 5): the whole command no slower than diff-diff's. Wall times stretch with the
machine's load (printed).
"""

from __future__ import annotations

import json
import subprocess
import sys
import tempfile
from pathlib import Path

import numpy as np

from common import BIN, ROOT, print_load, row, time_process, verdict

UNITS, PERIODS, START, REPLICATIONS = 1000, 50, 40, 200


def write_panel(path: Path, seed: int = 1) -> None:
    """A two-factor panel; unit u0000 treated from period START with an effect of 2."""
    rng = np.random.default_rng(seed)
    F = rng.normal(size=(PERIODS, 2)).cumsum(axis=0)
    Y = rng.normal(size=(UNITS, 2)) @ F.T + rng.normal(size=(UNITS, 1)) + 0.5 * rng.normal(size=(UNITS, PERIODS))
    Y[0, START:] += 2.0
    with path.open("w") as fh:
        fh.write("unit,period,y,treated\n")
        for i in range(UNITS):
            for t in range(PERIODS):
                fh.write(f"u{i:04d},{t},{Y[i, t]:.10g},{int(i == 0)}\n")


def main() -> None:
    tmp = Path(tempfile.mkdtemp(prefix="bench_sdid_"))
    data = tmp / "panel.csv"
    write_panel(data)
    spec = tmp / "sdid.yaml"
    spec.write_text(f"""version: 1
name: bench-sdid
data: {{path: {data}}}
outcome: y
design:
  method: synthetic_control
  estimator: synthetic_did
  unit: unit
  time: period
  treated_unit: u0000
  treatment_start: {START}
  options: {{se: placebo, replications: {REPLICATIONS}}}
refute: []
""")
    print_load("before")
    ours, run = time_process([str(BIN / "causalcli"), "estimate", str(spec), "--format", "json", "--jobs", "2"],
                             repeat=1)
    res = json.loads(run.stdout)
    peer, prun = time_process([sys.executable, str(ROOT / "bench" / "peers" / "sdid_peer.py"), str(data),
                               "--start", str(START), "--replications", str(REPLICATIONS)], repeat=1)
    p = json.loads(prun.stdout.strip().splitlines()[-1])
    print_load("after")
    est, se = res["estimate"]["value"], res["estimate"]["std_error"]
    row("causalcli estimate (whole command, 2 workers)", ours, f"estimate {est:.6f} se {se:.6f}")
    row("diff-diff SyntheticDiD (whole process)", peer, f"estimate {p['estimate']:.6f} se {p['se']:.6f} "
        f"(fit alone {p['seconds_fit']:.2f} s)")
    verdict(abs(est - p["estimate"]) < 1e-6, f"same estimate (|diff| {abs(est - p['estimate']):.2e})")
    verdict(abs(se - p["se"]) < 1e-6 * p["se"], f"same placebo SE (|diff| {abs(se - p['se']):.2e})")
    verdict(ours <= peer, f"whole command no slower than diff-diff's: {ours:.2f} s vs {peer:.2f} s "
                          f"(ratio {ours / peer:.2f})")


if __name__ == "__main__":
    main()
