"""Matching ATT at scale (issue 15, point 2): simulated rows x 10 covariates, ``--no-refute`` and default refuters.

``python bench/bench_matching.py --rows 1000000`` writes ``bench/out/matching_<rows>.parquet`` and a
spec beside it (once), then times the whole ``causalcli estimate`` and a DoWhy process doing
propensity-score matching on the same file, each a fresh process, and reports peak RSS (ru_maxrss of
the children). Target: under 2 GiB and no slower than DoWhy. Then the whole command with its default
refuters, once, with the peak memory of its whole process tree (forked refuter workers included, by
``bench_scaling.measure``: summed PSS); targets under 2 minutes and under 2 GiB.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import time

import numpy as np

from common import BIN, ROOT, row, verdict

OUT = ROOT / "bench" / "out"
COVARIATES = [f"x{k}" for k in range(10)]

PEER = """
import sys, warnings
warnings.filterwarnings("ignore")
import pandas as pd
from dowhy import CausalModel
df = pd.read_parquet(sys.argv[1])
model = CausalModel(data=df, treatment="d", outcome="y", common_causes={covs!r})
est = model.identify_effect(proceed_when_unidentifiable=True)
print(model.estimate_effect(est, method_name="backdoor.propensity_score_matching", target_units="att").value)
"""


def simulate(rows: int, seed: int = 0):
    """10 standard-normal covariates, a logistic treatment (about 22% treated), a linear outcome, ATT 1."""
    import pyarrow as pa

    rng = np.random.default_rng(seed)
    X = rng.standard_normal((rows, len(COVARIATES)))
    beta = np.linspace(0.4, -0.3, len(COVARIATES))
    d = rng.random(rows) < 1.0 / (1.0 + np.exp(-(-1.4 + X @ beta)))
    y = 1.0 * d + X @ np.linspace(1.0, 0.1, len(COVARIATES)) + rng.standard_normal(rows)
    return pa.table({**{c: X[:, k] for k, c in enumerate(COVARIATES)}, "d": d.astype(np.int8), "y": y})


def write_case(rows: int) -> tuple[str, str]:
    import pyarrow.parquet as pq

    OUT.mkdir(parents=True, exist_ok=True)
    data = OUT / f"matching_{rows}.parquet"
    spec = OUT / f"matching_{rows}.yaml"
    if not data.exists():
        pq.write_table(simulate(rows), data)
    spec.write_text(f"version: 1\nname: matching-{rows}\ndata:\n  path: {data.name}\ntreatment: d\noutcome: y\n"
                    f"covariates: [{', '.join(COVARIATES)}]\ndesign:\n  method: matching\n  estimand: att\n"
                    "seed: 0\n")
    return str(data), str(spec)


def timed(argv: list[str]) -> tuple[float, float, subprocess.CompletedProcess]:
    """Wall time and peak RSS (GiB, largest child so far) of one fresh process."""
    t0 = time.perf_counter()
    run = subprocess.run(argv, cwd=ROOT, capture_output=True, text=True)
    seconds = time.perf_counter() - t0
    if run.returncode not in (0, 1):
        raise SystemExit(f"failed ({run.returncode}): {' '.join(argv)}\n{run.stderr[-2000:]}")
    return seconds, resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 2**20, run


def main(argv: list[str] | None = None) -> None:
    """``make bench`` (bench/run.py) calls main() with the defaults; run alone, it reads the command line."""
    parser = argparse.ArgumentParser()
    parser.add_argument("--rows", type=int, default=1_000_000)
    parser.add_argument("--no-peer", action="store_true")
    args = parser.parse_args([] if argv is None else argv)
    data, spec = write_case(args.rows)
    ours = [str(BIN / "causalcli"), "estimate", spec, "--no-refute", "--format", "json", "--quiet"]
    seconds, peak, run = min((timed(ours) for _ in range(2)), key=lambda r: r[0])
    result = json.loads(run.stdout)
    row(f"causalcli matching ATT, {args.rows:,} rows, --no-refute", seconds,
        f"ATT {result['estimate']['value']:.4f}, peak RSS {peak:.2f} GiB")
    verdict(peak < 2.0, f"peak memory under 2 GiB ({peak:.2f} GiB)")
    if not args.no_peer:
        peer_cmd = [sys.executable, "-c", PEER.format(covs=COVARIATES), data]
        peer = min(timed(peer_cmd)[0] for _ in range(2))
        row("DoWhy propensity_score_matching (fresh process)", peer)
        verdict(seconds <= peer, f"no slower than DoWhy ({seconds:.2f} s against {peer:.2f} s)")
    from bench_scaling import measure

    cell = measure([str(BIN / "causalcli"), "estimate", spec, "--format", "json", "--quiet"], timeout=900)
    row(f"causalcli matching ATT, {args.rows:,} rows, default refuters", cell["seconds"],
        f"peak {cell['peak_mib'] / 1024:.2f} GiB (process tree), load average {os.getloadavg()[0]:.1f}")
    verdict(cell["ok"] and cell["seconds"] < 120, f"default refuters under 2 minutes ({cell['seconds']:.0f} s)")
    verdict(cell["peak_mib"] < 2048, f"peak memory of the command's processes under 2 GiB "
                                     f"({cell['peak_mib'] / 1024:.2f} GiB)")


if __name__ == "__main__":
    sys.path.insert(0, str(ROOT / "bench"))
    main(sys.argv[1:])
