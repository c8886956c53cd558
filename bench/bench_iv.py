"""Instrumental variables on 1,000,000 rows x 5 covariates: causalcli vs linearmodels' IV2SLS.

Both run as fresh processes (imports included) on the same Parquet file in the same run, median of
three: ``causalcli estimate`` (2SLS, robust covariance, with its default refuters and with
``--no-refute``) against a linearmodels process that reads the file with pandas and fits
``IV2SLS(...).fit(cov_type="robust")`` and reads its first-stage diagnostics (what causalcli's result
holds). The estimates and standard errors agree to 1e-8 / 1e-6. Target (issue 20 point 6): the whole
command no slower than linearmodels.
"""

from __future__ import annotations

import json
import sys
import tempfile
from pathlib import Path

import numpy as np

from common import BIN, print_load, row, time_process, verdict

ROWS, COVARIATES = 1_000_000, 5

PEER = r'''
import json, sys
import pandas as pd
from linearmodels.iv import IV2SLS
d = pd.read_parquet(sys.argv[1])
w = [c for c in d.columns if c.startswith("w")]
r = IV2SLS(d.y, d[w].assign(const=1.0), d.x, d[["z"]]).fit(cov_type="robust")
fs = r.first_stage.diagnostics
print(json.dumps({"value": float(r.params["x"]), "se": float(r.std_errors["x"]), "f": float(fs["f.stat"].iloc[0])}))
'''


def write_data(path: Path, seed: int = 0) -> None:
    import pyarrow as pa
    import pyarrow.parquet as pq

    rng = np.random.default_rng(seed)
    W = rng.normal(size=(ROWS, COVARIATES))
    u = rng.normal(size=ROWS)
    z = rng.binomial(1, 0.5, ROWS).astype(float)
    x = 0.4 * z + W @ np.full(COVARIATES, 0.2) + u + rng.normal(size=ROWS)
    y = 1.5 * x + W @ np.linspace(0.1, 0.5, COVARIATES) + 2 * u + rng.normal(size=ROWS)
    cols = {"y": y, "x": x, "z": z, **{f"w{j}": W[:, j] for j in range(COVARIATES)}}
    pq.write_table(pa.table(cols), path)


def main() -> None:
    tmp = Path(tempfile.mkdtemp(prefix="bench_iv_"))
    data = tmp / "iv.parquet"
    write_data(data)
    spec = tmp / "iv.yaml"
    spec.write_text(f"version: 1\nname: iv-1m\ndata: {{path: {data.name}}}\ntreatment: x\noutcome: y\n"
                    f"covariates: [{', '.join(f'w{j}' for j in range(COVARIATES))}]\n"
                    "design: {method: iv, instruments: [z]}\n")
    peer = tmp / "peer.py"
    peer.write_text(PEER)
    print(f"IV (2SLS, robust): {ROWS:,} rows x {COVARIATES} covariates, one instrument")
    print_load("before")
    cli = [str(BIN / "causalcli"), "estimate", str(spec), "--format", "json", "--quiet"]
    ours_norefute, _ = time_process([*cli, "--no-refute"])
    ours, run = time_process(cli)
    theirs, their_run = time_process([sys.executable, str(peer), str(data)])
    print_load("after")
    got, want = json.loads(run.stdout), json.loads(their_run.stdout)
    row("causalcli estimate --no-refute", ours_norefute)
    row("causalcli estimate (default refuters)", ours,
        f"({', '.join(r['name'] for r in got['refutations'])})")
    row("linearmodels IV2SLS process", theirs, f"ratio {ours / theirs:.2f}")
    same = (abs(got["estimate"]["value"] - want["value"]) <= 1e-8 * abs(want["value"])
            and abs(got["estimate"]["std_error"] - want["se"]) <= 1e-6 * want["se"])
    verdict(same, f"same estimate and SE as linearmodels ({got['estimate']['value']:.6f}, "
                  f"{got['estimate']['std_error']:.6f})")
    verdict(ours <= theirs, f"whole command with refuters no slower than linearmodels ({ours:.2f} s vs {theirs:.2f} s)")


if __name__ == "__main__":
    main()
