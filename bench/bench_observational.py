"""Matching ATT and AIPW on 100,000 rows x 20 covariates: causalcli vs DoWhy and DoubleML (issue 4, point 7).

Data: simulated, confounded, a constant effect of 2 (the same file for every
tool, written once as Parquet). Every command runs as a fresh process
(imports included) with ``--no-refute``; causalcli's runs take the median of
three, peers one run. Targets: matching ATT with its Abadie-Imbens SE under
5 s, AIPW under 2 s (whole command, 2 cores).
"""

from __future__ import annotations

import json
import resource
import sys
import tempfile
from pathlib import Path

import numpy as np

from common import BIN, ROOT, print_load, row, time_process, verdict


def timed(argv: list[str], repeat: int = 3):
    """time_process plus the CPU seconds (user + system) per run of the child processes.

    On a shared 2-core machine the wall time depends on what else runs; the
    CPU time says how much work the command itself did.
    """
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    wall, run = time_process(argv, repeat=repeat)
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    cpu = (after.ru_utime - before.ru_utime + after.ru_stime - before.ru_stime) / repeat
    return wall, cpu, run

N, K, EFFECT = 100_000, 20, 2.0


def write_data(folder: Path) -> Path:
    import pandas as pd

    rng = np.random.default_rng(20260101)
    X = rng.normal(size=(N, K))
    beta_t = np.linspace(0.4, -0.4, K) / np.sqrt(K) * 3
    t = (rng.uniform(size=N) < 1 / (1 + np.exp(-(-1.0 + X @ beta_t)))).astype(np.int8)
    y = EFFECT * t + X @ np.linspace(1.0, 0.1, K) + rng.normal(size=N)
    df = pd.DataFrame(X, columns=[f"x{i}" for i in range(1, K + 1)])
    df.insert(0, "y", y)
    df.insert(0, "t", t)
    path = folder / "obs.parquet"
    df.to_parquet(path, index=False)
    return path


def spec(folder: Path, data: Path, name: str, design: str) -> Path:
    covs = ", ".join(f"x{i}" for i in range(1, K + 1))
    path = folder / f"{name}.yaml"
    path.write_text(f"version: 1\nname: {name}\ndata: {{path: {data}}}\ntreatment: t\noutcome: y\n"
                    f"covariates: [{covs}]\ndesign: {design}\n")
    return path


def main() -> None:
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        data = write_data(folder)
        print_load("before the runs")
        cli = [str(BIN / "causalcli"), "estimate", "--no-refute", "--format", "json", "--quiet", "--jobs", "2"]
        peer = [sys.executable, str(ROOT / "bench" / "peers" / "observational_peers.py")]

        m_spec = spec(folder, data, "match", "{method: matching, estimand: att}")
        ours_m, cpu_m, run = timed([*cli, str(m_spec)])
        res = json.loads(run.stdout)
        row("causalcli matching ATT + Abadie-Imbens SE", ours_m,
            f"ATT {res['estimate']['value']:.3f} (SE {res['estimate']['std_error']:.3f}; truth {EFFECT}); "
            f"CPU {cpu_m:.2f} s")
        peer_m, pcpu_m, prun = timed([*peer, "dowhy_psm", str(data)], repeat=1)
        pm = json.loads(prun.stdout.strip().splitlines()[-1])
        row("DoWhy 0.14 propensity_score_matching ATT (no SE)", peer_m, f"ATT {pm['estimate']:.3f}; CPU {pcpu_m:.2f} s")
        print(f"  ratio DoWhy / causalcli: {peer_m / ours_m:.1f}x", flush=True)
        verdict(ours_m < 5.0, f"matching ATT with SE under 5 s ({ours_m:.2f} s)")

        a_spec = spec(folder, data, "aipw", "{method: weighting, estimand: ate, options: {estimator: aipw}}")
        ours_a, cpu_a, run = timed([*cli, str(a_spec)])
        res = json.loads(run.stdout)
        row("causalcli weighting AIPW ATE + influence-function SE", ours_a,
            f"ATE {res['estimate']['value']:.3f} (SE {res['estimate']['std_error']:.3f}); CPU {cpu_a:.2f} s")
        peer_a, pcpu_a, prun = timed([*peer, "doubleml", str(data)], repeat=1)
        pa = json.loads(prun.stdout.strip().splitlines()[-1])
        row("DoubleML IRM ATE (logistic/linear, 5 folds)", peer_a,
            f"ATE {pa['estimate']:.3f} (SE {pa['std_error']:.3f}); CPU {pcpu_a:.2f} s")
        print(f"  ratio DoubleML / causalcli: {peer_a / ours_a:.1f}x", flush=True)
        verdict(ours_a < 2.0, f"AIPW under 2 s ({ours_a:.2f} s)")

        i_spec = spec(folder, data, "ipw", "{method: weighting, estimand: ate, options: {estimator: ipw}}")
        ours_i, cpu_i, run = timed([*cli, str(i_spec)])
        res = json.loads(run.stdout)
        row("causalcli weighting IPW ATE + influence-function SE", ours_i,
            f"ATE {res['estimate']['value']:.3f} (SE {res['estimate']['std_error']:.3f}); CPU {cpu_i:.2f} s")
        peer_i, pcpu_i, prun = timed([*peer, "dowhy_ipw", str(data)], repeat=1)
        pi = json.loads(prun.stdout.strip().splitlines()[-1])
        row("DoWhy 0.14 propensity_score_weighting ATE (no SE)", peer_i, f"ATE {pi['estimate']:.3f}; CPU {pcpu_i:.2f} s")
        print(f"  ratio DoWhy / causalcli: {peer_i / ours_i:.1f}x", flush=True)


if __name__ == "__main__":
    sys.path.insert(0, str(ROOT / "bench"))
    main()
