"""A quantile metric (P90 of watch time) on 100,000,000 rows of Parquet: causalcli vs tea-tasting's plain mean.

tea-tasting has no quantile metric; its time for a plain mean of the same column on the same file, in the
same run, is the yardstick (issue 17, point 7: within 1.5x of tea-tasting's plain metrics, under 1 GiB).
The file is bench_experiment's (``bench/out/experiment_<rows>.parquet``, generated when missing;
``BENCH_QUANTILE_ROWS`` changes the size). Both tools run as fresh processes, alternately, twice each:
best wall time, peak RSS of the whole process (``wait4``), load average before and after. On a 1,000,000-row
sample the order statistics must equal numpy's ``quantile(method="inverted_cdf")`` exactly.
"""

from __future__ import annotations

import json
import os
import sys
from pathlib import Path

from common import BIN, ROOT, row, verdict

OUT = ROOT / "bench" / "out"
ROWS = int(os.environ.get("BENCH_QUANTILE_ROWS", "100000000"))
SAMPLE = 1_000_000
LEVEL = 0.9

PEER = r'''
import json, sys
import ibis, tea_tasting as tt
con = ibis.duckdb.connect()
data = con.read_parquet(sys.argv[1])
res = tt.Experiment(variant="variant", metrics={"watch": tt.Mean("watch_time")}).analyze(data, control="control")
print(json.dumps(res.to_dicts()))
'''


def spec(path: Path) -> str:
    import yaml

    out = path.with_name(path.stem + "_quantile.yaml")
    out.write_text(yaml.safe_dump({
        "version": 1, "name": "quantile-bench", "data": {"path": str(path)}, "treatment": "variant",
        "design": {"method": "experiment", "control": "control",
                   "metrics": [{"name": "p90_watch", "outcome": "watch_time", "quantile": LEVEL}]},
    }, sort_keys=False))
    return str(out)


def sample_check(path: Path) -> bool:
    """The order statistics on a 1M-row sample equal numpy's inverted-CDF quantiles at the same levels."""
    import numpy as np
    import pyarrow.parquet as pq

    from causalcli.designs.experiment.quantile import interval_levels
    from causalcli.inference.distributions import normal_quantile
    from causalcli.study.run import run_study

    sample = OUT / "quantile_sample.parquet"
    pq.write_table(pq.ParquetFile(path).read_row_groups([0]).slice(0, SAMPLE), sample)
    df = pq.read_table(sample, columns=["variant", "watch_time"]).to_pandas()
    found = run_study(spec(sample), refute=False).diagnostics["metrics"][0]
    z = normal_quantile(0.975)  # the spec's default conf_level, 0.95
    ok = True
    for side in ("control", "treatment"):
        x = df.loc[df.variant == side, "watch_time"].to_numpy()
        lower, upper = interval_levels(len(x), LEVEL, z)
        want = [float(v) for v in np.quantile(x, [lower, LEVEL, upper], method="inverted_cdf")]
        got = found[side]["order_statistics"]
        ok = ok and [got["lower"], got["quantile"], got["upper"]] == want
    return ok


def main() -> None:
    from bench_experiment import data_file, load_average, run_rss

    path = data_file(ROWS)
    ours_cmd = [str(BIN / "causalcli"), "estimate", spec(path), "--format", "json", "--quiet"]
    peer_cmd = [sys.executable, "-c", PEER, str(path)]
    ours_runs, peer_runs = [], []
    load_before = load_average()
    for _ in range(2):  # alternate, so load from other work hits both alike
        ours_runs.append(run_rss(ours_cmd))
        peer_runs.append(run_rss(peer_cmd))
    load_after = load_average()
    ours_t, peer_t = min(r[0] for r in ours_runs), min(r[0] for r in peer_runs)
    ours_rss, peer_rss = max(r[1] for r in ours_runs), max(r[1] for r in peer_runs)
    result = json.loads(ours_runs[-1][2])
    how = result["diagnostics"]["quantiles"]
    effect = {e["label"]: e for e in result["effects"]}["p90_watch/treatment/abs"]
    row(f"causalcli estimate ({ROWS:,} rows, P90 quantile metric)", ours_t,
        f"peak RSS {ours_rss:.2f} GiB, quantile passes {how['passes']}, {how['fetched_values']:,} values fetched, "
        f"fetched_rows {result['provenance'].get('fetched_rows', 'n/a')}")
    row("tea-tasting 1.14 via Ibis + DuckDB (plain mean of the column)", peer_t, f"peak RSS {peer_rss:.2f} GiB")
    print(f"  P90 difference {effect['value']:.6g} [{effect['ci_lower']:.6g}, {effect['ci_upper']:.6g}]; runs "
          f"{', '.join(f'{r[0]:.2f} s (CPU {r[3]:.1f} s)' for r in ours_runs)} against "
          f"{', '.join(f'{r[0]:.2f} s (CPU {r[3]:.1f} s)' for r in peer_runs)}; load average {load_before} before, "
          f"{load_after} after", flush=True)
    ratio = ours_t / peer_t
    print(f"  ratio causalcli / tea-tasting: {ratio:.2f}x", flush=True)
    verdict(ratio <= 1.5, f"within 1.5x of tea-tasting's plain mean ({ratio:.2f}x)")
    verdict(ours_rss < 1.0, f"peak RSS of the whole process under 1 GiB ({ours_rss:.2f} GiB)")
    verdict(sample_check(path), "1M-row sample: order statistics equal numpy's inverted-CDF quantiles")


if __name__ == "__main__":
    sys.path.insert(0, str(ROOT / "bench"))
    sys.path.insert(0, str(ROOT))
    main()
