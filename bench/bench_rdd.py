"""Regression discontinuity at scale (issue 20, point 6): 1,000,000 rows, the whole command against rdrobust.

``python bench/bench_rdd.py --rows 1000000`` writes ``bench/out/rdd_<rows>.parquet`` and a spec beside it (once),
then times the whole ``causalcli estimate --no-refute`` (bandwidth selection, estimate, the bandwidth-sensitivity
and placebo-cutoff checks) and an ``rdrobust`` process (reading the same file, one ``rdrobust`` call: bandwidths
and estimate only), each a fresh process, the median of 3. Target: causalcli at least 5x faster. Both give the
same estimate (printed), as tests/test_rdd.py checks to 1e-6.
"""

from __future__ import annotations

import argparse
import json
import sys

import numpy as np

from common import BIN, ROOT, print_load, row, time_process, verdict

OUT = ROOT / "bench" / "out"

PEER = """
import sys, warnings
warnings.filterwarnings("ignore")
import pandas as pd
from rdrobust import rdrobust
df = pd.read_parquet(sys.argv[1])
print(rdrobust(df["y"].to_numpy(), df["score"].to_numpy(), c=0.0).coef.iloc[0, 0])
"""


def simulate(rows: int, seed: int = 0):
    """A score on [-1, 1] with 4 decimals (ties, as scores usually have), a smooth outcome and a jump of 0.5."""
    import pyarrow as pa

    rng = np.random.default_rng(seed)
    x = np.round(rng.uniform(-1, 1, rows), 4)
    y = 1 + 0.8 * x - 0.6 * x ** 2 + 0.5 * (x >= 0) + rng.standard_normal(rows)
    return pa.table({"score": x, "y": y})


def write_case(rows: int) -> tuple[str, str]:
    """The data file (written once) and its spec, in bench/out."""
    import pyarrow.parquet as pq

    OUT.mkdir(parents=True, exist_ok=True)
    data, spec = (OUT / f"rdd_{rows}.{ext}" for ext in ("parquet", "yaml"))
    if not data.exists():
        pq.write_table(simulate(rows), data)
    design = {"method": "rdd", "running": "score", "cutoff": 0}
    spec.write_text(json.dumps({"version": 1, "name": f"rdd-{rows}", "data": {"path": data.name}, "outcome": "y",
                                "design": design}))  # JSON is YAML
    return str(data), str(spec)


def main(argv: list[str] | None = None) -> None:
    """``make bench`` (bench/run.py) calls main() with the defaults; run alone, it reads the command line."""
    parser = argparse.ArgumentParser()
    parser.add_argument("--rows", type=int, default=1_000_000)
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args([] if argv is None else argv)
    data, spec = write_case(args.rows)
    print_load("before")
    ours, run = time_process([str(BIN / "causalcli"), "estimate", spec, "--no-refute", "--format", "json", "--quiet"],
                             repeat=args.repeat)
    value = json.loads(run.stdout)["estimate"]["value"]
    row(f"causalcli rdd, {args.rows:,} rows (with its checks)", ours, f"estimate {value:.6f}")
    peer, prun = time_process([sys.executable, "-c", PEER, data], repeat=args.repeat)
    row("rdrobust (fresh process, estimate only)", peer, f"estimate {float(prun.stdout.split()[-1]):.6f}")
    print_load("after")
    verdict(ours * 5 <= peer, f"at least 5x faster than rdrobust ({peer / ours:.1f}x: {ours:.2f} s against "
                              f"{peer:.2f} s)")


if __name__ == "__main__":
    sys.path.insert(0, str(ROOT / "bench"))
    main(sys.argv[1:])
