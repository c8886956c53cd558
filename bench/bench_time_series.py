"""Time series, three years of daily data with five control series: causalcli's whole command against the
statsmodels-based ``causalimpact`` package (PyPI 0.2.6), each a fresh process on the same CSV.

causalcli runs ``estimate`` with ``estimator: structural`` (local level + AR(1) + weekly seasonal +
regression, MLE, 1000 simulated paths over 50 parameter draws) and its default refuter
(placebo_in_time), imports included. The package fits its own default model (local level and
regression, MLE, no simulation) with ``CausalImpact(...).run()``. ``tfcausalimpact`` (TensorFlow
Probability; its default fit, variational inference, with the same weekly season) runs too, from a venv of
its own (``bench/out/tfcausalimpact-venv``, made with pip on the first run; skipped, and said, if it does not
install), once: it takes minutes. Targets (issue 18): the whole command under 5 s; at least 10x faster than
the package as a process. The effects are printed beside.
Wall times stretch with the machine's load (printed).
"""

from __future__ import annotations

import csv
import datetime as dt
import json
import sys
import tempfile
from pathlib import Path

import numpy as np

from common import BIN, ROOT, print_load, row, time_process, verdict

TF_VENV = ROOT / "bench" / "out" / "tfcausalimpact-venv"
TF_PEER = """
import json, sys
import pandas as pd
from causalimpact import CausalImpact
df = pd.read_csv(sys.argv[1]).drop(columns=["date"])
start = int(sys.argv[2])
ci = CausalImpact(df, [0, start - 1], [start, len(df) - 1], model_args={"nseasons": 7})
post = ci.inferences.iloc[start:]
print(json.dumps({"average_effect": float((df["sales"].iloc[start:] - post["complete_preds_means"]).mean())}))
"""


def tf_python() -> Path | None:
    """The python of tfcausalimpact's own venv, made on the first run; None when it does not install."""
    import subprocess

    python = TF_VENV / "bin" / "python"
    if not python.exists():
        print("  (making a venv for tfcausalimpact: pip install tfcausalimpact, once)", flush=True)
        made = subprocess.run([sys.executable, "-m", "venv", str(TF_VENV)], capture_output=True)
        if made.returncode == 0:
            made = subprocess.run([str(python), "-m", "pip", "install", "--quiet", "tfcausalimpact"],
                                  capture_output=True, text=True)
        if made.returncode != 0:
            print(f"  tfcausalimpact did not install: not run ({str(made.stderr)[-300:].strip()})", flush=True)
            return None
    return python

DAYS, START, CONTROLS = 3 * 365, 900, 5

PEER = """
import sys, json, pandas as pd
import pandas.core.dtypes.common as common
common.is_datetime_or_timedelta_dtype = lambda x: False  # causalcli's tests say why (pandas 2 removed it)
from causalcli_peer_data import path, start
from causalimpact import CausalImpact
df = pd.read_csv(path).drop(columns=["date"])
ci = CausalImpact(df, [0, start - 1], [start, len(df) - 1])
ci.run()
post = ci.inferences.iloc[start:]
print(json.dumps({"average_effect": float((post["response"] - post["point_pred"]).mean())}))
"""


def write_data(folder: Path) -> Path:
    rng = np.random.default_rng(18)
    common = np.cumsum(rng.normal(scale=0.2, size=DAYS))
    X = 10 + common[:, None] + np.cumsum(rng.normal(scale=0.1, size=(DAYS, CONTROLS)), axis=0) \
        + rng.normal(size=(DAYS, CONTROLS))
    noise = np.zeros(DAYS)
    for t in range(1, DAYS):
        noise[t] = 0.5 * noise[t - 1] + rng.normal()
    weekly = np.tile([0.0, 1.0, 2.0, 1.0, 0.0, -2.0, -2.0], DAYS // 7 + 1)[:DAYS]
    y = 50 + X @ np.linspace(1.0, 0.2, CONTROLS) + weekly + noise
    y[START:] += 2.0
    path = folder / "daily.csv"
    first = dt.date(2023, 1, 1)
    with path.open("w", newline="") as f:
        out = csv.writer(f)
        out.writerow(["date", "sales", *[f"c{j}" for j in range(CONTROLS)]])
        for t in range(DAYS):
            out.writerow([(first + dt.timedelta(days=t)).isoformat(), round(float(y[t]), 6),
                          *[round(float(x), 6) for x in X[t]]])
    return path


def main() -> None:
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        data = write_data(folder)
        start_day = (dt.date(2023, 1, 1) + dt.timedelta(days=START)).isoformat()
        spec = folder / "ts.yaml"
        spec.write_text(f"""version: 1
name: bench-time-series
data: {{path: {data.name}}}
outcome: sales
design:
  method: time_series
  time: date
  intervention: {start_day}
  controls: [{', '.join(f'c{j}' for j in range(CONTROLS))}]
  estimator: structural
  seasonality: 7
""")
        (folder / "causalcli_peer_data.py").write_text(f"path = {str(data)!r}\nstart = {START}\n")
        (folder / "peer.py").write_text(PEER)
        print(f"time_series: {DAYS} days, {CONTROLS} controls, intervention at day {START}")
        print_load("before")
        ours, run = time_process([str(BIN / "causalcli"), "estimate", str(spec), "--format", "json"], repeat=3)
        result = json.loads(run.stdout)
        row("causalcli estimate (structural, default refuters)", ours,
            f"average effect {result['estimate']['value']:.4f}; timing {result['timing_s']}")
        theirs, peer_run = time_process([sys.executable, str(folder / "peer.py")], repeat=1,
                                        env={"PYTHONPATH": str(folder)})
        peer = json.loads(peer_run.stdout.strip().splitlines()[-1])
        row("causalimpact 0.2.6 (CausalImpact(...).run(), MLE)", theirs,
            f"average effect {peer['average_effect']:.4f}")
        tf = tf_python()
        if tf is not None:
            (folder / "tf_peer.py").write_text(TF_PEER)
            slow, tf_run = time_process([str(tf), str(folder / "tf_peer.py"), str(data), str(START)], repeat=1,
                                        env={"TF_CPP_MIN_LOG_LEVEL": "3"})
            tf_effect = json.loads(tf_run.stdout.strip().splitlines()[-1])["average_effect"]
            row("tfcausalimpact (TensorFlow Probability, VI, weekly season)", slow,
                f"average effect {tf_effect:.4f}; ratio {slow / ours:.0f}x")
        print_load("after")
        verdict(ours < 5.0, f"whole command under 5 s ({ours:.2f} s)")
        verdict(theirs / ours >= 10, f"at least 10x faster than the causalimpact package ({theirs / ours:.1f}x)")


if __name__ == "__main__":
    main()
