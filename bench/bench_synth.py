"""Synthetic control, 50 units x 16 periods x 12 predictors: one fit + placebo-in-space for all 49 donors vs pysyncon.

causalcli runs as a fresh process (imports included) on 2 workers:
``causalcli estimate`` with the conformal interval and refuters off, so it does exactly
the nested fit of the treated unit and the 49 placebo refits. pysyncon 1.x
(``Synth().fit`` with its defaults: Nelder-Mead over V, SLSQP for W) does the single
fit of the treated unit on the same data, timed inside its process. Targets (issue 6):
the whole placebo run under 10 s on 2 cores; at least 100x faster than pysyncon per fit,
shown two ways: causalcli's in-process single fit against pysyncon's in-process single fit
(the same measurement), and, more conservatively, causalcli's whole command / 50.
Pre-period losses are printed beside. Wall times stretch with the machine's load (printed
with the CPU time of the whole command).
"""

from __future__ import annotations

import json
import subprocess
import sys
import tempfile
from pathlib import Path

import numpy as np

from common import BIN, ROOT, row, time_process, verdict

UNITS, PERIODS, START, COVARIATES = 50, 16, 12, 8
LAGS = [1, 4, 8, 11]  # outcome in these periods: 8 covariates + 4 lags = 12 predictors


def panel(seed: int = 6) -> list[dict]:
    rng = np.random.default_rng(seed)
    factors = np.column_stack([np.linspace(0, 2, PERIODS), np.cos(np.arange(PERIODS) / 2.5)])
    load = rng.uniform(0.5, 2.0, size=(UNITS, 2))
    load[0] = load[1:6].mean(axis=0)
    y = 20 + 5 * load @ factors.T + rng.normal(scale=0.3, size=(UNITS, PERIODS))
    y[0, START:] -= 2.0
    z = rng.normal(size=(UNITS, COVARIATES)) + load[:, :1]
    rows = []
    for i in range(UNITS):
        for t in range(PERIODS):
            rec = {"unit": f"unit{i:02d}", "t": t, "y": round(float(y[i, t]), 6)}
            for c in range(COVARIATES):
                rec[f"x{c}"] = round(float(z[i, c] + rng.normal(scale=0.05)), 6)
            rows.append(rec)
    return rows


def single_fit_seconds(spec: dict, repeat: int = 5) -> float:
    """Median in-process time of the nested fit of the treated unit (data already prepared)."""
    import statistics
    import time

    sys.path.insert(0, str(ROOT))
    import numpy as np

    from causalcli.study.run import as_loaded, prepare_study
    from causalcli.designs.synthetic_control.panel import fit_unit

    loaded = as_loaded(spec)
    prep = prepare_study(loaded)
    data = prep.design.prepare(loaded.study, prep.table, prep.identification, loaded)
    donors = np.arange(1, len(data.units))
    times = []
    for _ in range(repeat):
        t0 = time.perf_counter()
        fit_unit(data, 0, donors)
        times.append(time.perf_counter() - t0)
    return statistics.median(times)


def main() -> None:
    import csv

    tmp = Path(tempfile.mkdtemp(prefix="bench_synth_"))
    data = tmp / "panel.csv"
    rows = panel()
    with data.open("w", newline="") as fh:
        w = csv.DictWriter(fh, fieldnames=list(rows[0]))
        w.writeheader()
        w.writerows(rows)
    predictors = [f"x{c}" for c in range(COVARIATES)]
    spec = {"version": 1, "name": "bench-synth", "data": {"path": str(data)}, "outcome": "y", "refute": [],
            "design": {"method": "synthetic_control", "unit": "unit", "time": "t", "treated_unit": "unit00",
                       "treatment_start": START, "predictors": predictors,
                       "special_predictors": [["y", lag] for lag in LAGS], "options": {"conformal": False}}}
    spec_path = tmp / "spec.yaml"
    spec_path.write_text(json.dumps(spec))  # JSON is YAML
    ours_cmd = [str(BIN / "causalcli"), "estimate", str(spec_path), "--format", "json", "--jobs", "2", "--quiet"]
    import os
    import resource

    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    ours, run = time_process(ours_cmd, repeat=3)
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    cpu = ((after.ru_utime + after.ru_stime) - (before.ru_utime + before.ru_stime)) / 3
    result = json.loads(run.stdout)
    # the default command also inverts the conformal test: timed once, beside the measured run
    default_spec = json.loads(json.dumps(spec))
    del default_spec["design"]["options"]["conformal"]
    default_path = tmp / "spec_default.yaml"
    default_path.write_text(json.dumps(default_spec))
    default_cmd = [str(BIN / "causalcli"), "estimate", str(default_path), "--format", "json", "--jobs", "2", "--quiet"]
    default_seconds, _ = time_process(default_cmd, repeat=1)
    peer_cmd = [sys.executable, str(ROOT / "bench" / "peers" / "pysyncon_synth.py"), str(data), "--start", str(START),
                "--predictors", ",".join(predictors), "--lags", ",".join(map(str, LAGS))]
    prun = subprocess.run(peer_cmd, cwd=ROOT, capture_output=True, text=True)
    if prun.returncode != 0:
        raise SystemExit(f"pysyncon failed: {prun.stderr[-2000:]}")
    peer_out = json.loads(prun.stdout.strip().splitlines()[-1])
    per_fit = ours / UNITS
    single = single_fit_seconds(spec)
    row(f"causalcli: fit + {UNITS - 1} placebo fits (whole command)", ours,
        f"pre-loss {result['diagnostics']['fit']['loss_v']:.4g}, p {result['estimate']['p_value']:.3g}")
    row("causalcli per fit (whole command / 50)", per_fit)
    row("causalcli default command (adds the conformal interval step)", default_seconds, "not part of the target")
    row("causalcli CPU time of the whole command (all workers)", cpu,
        f"load average {os.getloadavg()[0]:.1f} on {os.cpu_count()} cores: wall times stretch with it")
    row("pysyncon 1.x Synth().fit, one fit (in-process)", peer_out["seconds"], f"pre-loss {peer_out['loss_v']:.4g}")
    row("causalcli one fit of the treated unit (in-process, like pysyncon's)", single)
    ratio = peer_out["seconds"] / per_fit
    ratio_single = peer_out["seconds"] / single
    print(f"  ratio pysyncon / causalcli per fit: {ratio_single:.0f}x in-process single fit against single fit; "
          f"{ratio:.0f}x counting causalcli's whole command (startup, 50 fits, placebo statistics) / 50", flush=True)
    verdict(ours < 10.0, f"fit + placebo for every donor under 10 s on 2 workers ({ours:.2f} s)")
    verdict(ratio_single >= 100, f"at least 100x faster than pysyncon per fit, single fit in-process ({ratio_single:.0f}x)")
    verdict(ratio >= 100, f"at least 100x faster than pysyncon per fit, whole command / 50 ({ratio:.0f}x)")
    verdict(result["diagnostics"]["fit"]["loss_v"] <= peer_out["loss_v"] * (1 + 1e-9),
            "pre-period loss no higher than pysyncon's")


if __name__ == "__main__":
    sys.path.insert(0, str(ROOT / "bench"))
    main()
