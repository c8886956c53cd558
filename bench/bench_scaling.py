"""How cost grows with rows: the whole `causalcli estimate` (default refuters) per design, beside its peer.

Issue 15, point 5: 10^4 to 10^7 rows (10^8 for the experiment; panels are units x periods).

Every cell is a fresh process run as a user runs it (``causalcli estimate spec.yaml --format json
--quiet``: default refuters, default ``--jobs``), on data made by the other benchmarks' generators
(imported from them) and kept in ``bench/out/``. Each runs under a small wrapper process, which
times it and reads its ``ru_maxrss`` from ``wait4``. Peak memory of the whole process tree is the
larger of (a) the sum of the proportional set size (PSS) of every process of the tree, sampled by
every 0.1 s from /proc/<pid>/smaps_rollup, less often when a sample takes long, so watching costs at most a
tenth of a core (forked refuter workers count; pages they share with their parent count once),
and (b) that ``ru_maxrss`` (exact, but of the largest single process only). Runs under 30 s are
run twice: the faster time and the larger peak are kept.

The peer runs on the same file, as a fresh process that imports its library, reads the file and
fits: experiment tea-tasting, did pyfixest, matching and weighting DoWhy, dml EconML, synthetic
control pysyncon (one fit, no placebo inference: it has none).

Every cell is cached in ``bench/out/scaling.json`` as soon as it is measured and skipped on the next
run (``BENCH_SCALING_FRESH=1`` measures again). A cell runs at most ``BENCH_SCALING_TIMEOUT`` s
(600); a cell is not run when the next smaller size timed out, failed or was not run, or when
the smaller sizes predict more than the timeout or more than ``BENCH_SCALING_MAX_GIB`` (12) of
memory (``predict``). ``BENCH_SCALING_MAX_ROWS`` caps the sizes measured, ``BENCH_SCALING_DESIGNS``
(comma list) picks designs; the table and the plot show every cell in the cache. Writes
``bench/out/scaling.png`` and the table between the markers of ``docs/performance.md``.
"""

from __future__ import annotations

import json
import math
import os
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Callable, NamedTuple

from common import BIN, ROOT

OUT = ROOT / "bench" / "out"
CACHE = OUT / "scaling.json"
PNG = OUT / "scaling.png"
DOCS = ROOT / "docs" / "performance.md"
BEGIN, END = "<!-- scaling:begin (bench/bench_scaling.py writes this block) -->", "<!-- scaling:end -->"

TIMEOUT = float(os.environ.get("BENCH_SCALING_TIMEOUT", "600"))
MAX_ROWS = int(float(os.environ.get("BENCH_SCALING_MAX_ROWS", "1e8")))
MAX_GIB = float(os.environ.get("BENCH_SCALING_MAX_GIB", "12"))
FRESH = os.environ.get("BENCH_SCALING_FRESH", "") == "1"
REPEAT_BELOW = 30.0  # seconds: cheaper runs are run twice
ABOVE_FLOOR = 1.5  # a size enters the growth fit when its cost is at least this times the smallest size's
SIZES = [10**4, 10**5, 10**6, 10**7]
COVARIATES = 10  # matching, weighting, dml
SYNTH_PERIODS = 16  # synthetic control: units = rows / 16 (12 pre-periods, 4 post)
TWFE_PERIODS = 10  # did: units = rows / 10


# ---------------------------------------------------------------------------------------------- the cases


class Case(NamedTuple):  # not a dataclass: bench/run.py loads this file without registering the module
    """One design: its sizes, how to make the data and spec of a size, and the peer's command on it."""

    design: str
    what: str  # the data and settings, printed before its cells
    peer_label: str
    sizes: list[int]
    make: Callable[[int], tuple[str, list[str] | None]]  # rows -> (spec path, peer argv or None)
    peer_max_rows: int = 10**8  # larger sizes: the peer is not run (said in the docs)


def _scaling_file(name: str) -> Path:
    """A data file of the scaling cases, in bench/out/scaling/ (made on first use)."""
    folder = OUT / "scaling"
    folder.mkdir(parents=True, exist_ok=True)
    return folder / name


def _experiment(rows: int) -> tuple[str, list[str]]:
    import bench_experiment

    path = OUT / f"experiment_{rows}.parquet"
    if not path.exists():
        bench_experiment.generate(path, rows)
    return bench_experiment.spec(path), [sys.executable, "-c", bench_experiment.PEER, str(path)]


def _did(rows: int) -> tuple[str, list[str]]:
    import bench_did

    data = _scaling_file(f"did_{rows}.parquet")
    folder = data.parent
    if not data.exists():
        bench_did.make_twfe(data, units=rows // TWFE_PERIODS, periods=TWFE_PERIODS)
    spec = folder / f"did_{rows}.yaml"
    spec.write_text(f"version: 1\nname: did-{rows}\ndata: {{path: {data.name}}}\ntreatment: d\noutcome: y\n"
                    "covariates: [x]\ndesign: {method: did, unit: unit, time: time, estimator: twfe}\nseed: 0\n")
    return str(spec), [sys.executable, str(ROOT / "bench" / "peers" / "did_peers.py"), "pyfixest", str(data)]


def _matching(rows: int) -> tuple[str, list[str]]:
    import bench_matching

    data, spec = bench_matching.write_case(rows)
    return spec, [sys.executable, "-c", bench_matching.PEER.format(covs=bench_matching.COVARIATES), data]


def _weighting(rows: int) -> tuple[str, list[str]]:
    import bench_observational

    folder = OUT / "scaling" / f"weighting_{rows}"
    folder.mkdir(parents=True, exist_ok=True)
    data = folder / "obs.parquet"
    # its generator and its spec read the size and the covariate count from module constants
    bench_observational.N, bench_observational.K = rows, COVARIATES
    if not data.exists():
        bench_observational.write_data(folder)
    spec = bench_observational.spec(folder, data, f"weighting-{rows}", "{method: weighting, estimand: ate}")
    return str(spec), [sys.executable, str(ROOT / "bench" / "peers" / "observational_peers.py"), "dowhy_ipw",
                       str(data), "--covariates", str(COVARIATES)]


DML_PEER = """
import sys
sys.path[:0] = [sys.argv[2], sys.argv[3]]
import warnings
warnings.simplefilter("ignore")
import pandas as pd
import bench_dml
bench_dml.P = int(sys.argv[4])
print(bench_dml.econml_alone(pd.read_parquet(sys.argv[1])))
"""


def _dml(rows: int) -> tuple[str, list[str]]:
    import inspect

    import bench_dml

    data = _scaling_file(f"dml_{rows}.parquet")
    folder = data.parent
    if not data.exists():
        bench_dml.simulate(rows, COVARIATES).to_parquet(data)
    if "covariates" in inspect.signature(bench_dml.write_spec).parameters:
        spec = bench_dml.write_spec(folder, str(data), refute=True, covariates=COVARIATES)
    else:  # older bench_dml: the covariate count is a module constant
        bench_dml.P = COVARIATES
        spec = bench_dml.write_spec(folder, str(data), refute=True)
    if hasattr(bench_dml, "econml_process"):  # its own fresh-process peer: read the file, fit once
        return str(spec), [sys.executable, str(ROOT / "bench" / "bench_dml.py"), "--econml", "linear", str(data)]
    return str(spec), [sys.executable, "-c", DML_PEER, str(data), str(ROOT / "bench"), str(ROOT), str(COVARIATES)]


def _synth(rows: int) -> tuple[str, list[str]]:
    import csv

    import bench_synth

    data = _scaling_file(f"synth_{rows}.csv")
    folder = data.parent
    predictors = [f"x{c}" for c in range(bench_synth.COVARIATES)]
    if not data.exists():
        # its generator reads the panel's shape from module constants
        bench_synth.UNITS, bench_synth.PERIODS = rows // SYNTH_PERIODS, SYNTH_PERIODS
        panel = bench_synth.panel()
        tmp = data.with_suffix(".tmp")
        with tmp.open("w", newline="") as fh:
            writer = csv.DictWriter(fh, fieldnames=list(panel[0]))
            writer.writeheader()
            writer.writerows(panel)
        tmp.rename(data)
    spec = {"version": 1, "name": f"synth-{rows}", "data": {"path": str(data)}, "outcome": "y",
            "design": {"method": "synthetic_control", "unit": "unit", "time": "t", "treated_unit": "unit00",
                       "treatment_start": bench_synth.START, "predictors": predictors,
                       "special_predictors": [["y", lag] for lag in bench_synth.LAGS]}}
    spec_path = folder / f"synth_{rows}.yaml"
    spec_path.write_text(json.dumps(spec))  # JSON is YAML
    return str(spec_path), [sys.executable, str(ROOT / "bench" / "peers" / "pysyncon_synth.py"), str(data),
                            "--start", str(bench_synth.START), "--predictors", ",".join(predictors),
                            "--lags", ",".join(map(str, bench_synth.LAGS))]


def _iv(rows: int) -> tuple[str, list[str]]:
    import bench_iv

    data = _scaling_file(f"iv_{rows}.parquet")
    folder = data.parent
    if not data.exists():
        bench_iv.ROWS = rows  # its generator reads the size from a module constant
        bench_iv.write_data(data)
    spec = folder / f"iv_{rows}.yaml"
    spec.write_text(f"version: 1\nname: iv-{rows}\ndata: {{path: {data.name}}}\ntreatment: x\noutcome: y\n"
                    f"covariates: [{', '.join(f'w{j}' for j in range(bench_iv.COVARIATES))}]\n"
                    "design: {method: iv, instruments: [z]}\nseed: 0\n")
    return str(spec), [sys.executable, "-c", bench_iv.PEER, str(data)]


def _rdd(rows: int) -> tuple[str, list[str]]:
    import bench_rdd

    data, spec = bench_rdd.write_case(rows)
    return spec, [sys.executable, "-c", bench_rdd.PEER, data]


TS_PEER = """
import json, sys
import pandas as pd
import pandas.core.dtypes.common as common
common.is_datetime_or_timedelta_dtype = lambda x: False  # pandas 2 removed it; the package still calls it
from causalimpact import CausalImpact
events = pd.read_parquet(sys.argv[1])
daily = events.groupby("date").agg({"sales": "sum", **{c: "mean" for c in events.columns if c.startswith("c")}})
start = int(sys.argv[2])
ci = CausalImpact(daily.reset_index(drop=True), [0, start - 1], [start, len(daily) - 1])
ci.run()
post = ci.inferences.iloc[start:]
print(json.dumps({"average_effect": float((post["response"] - post["point_pred"]).mean())}))
"""


def _time_series(rows: int) -> tuple[str, list[str]]:
    """Event rows (a sale each) over bench_time_series's three years of days, summed to days in the engine."""
    import datetime as dt

    import numpy as np
    import pyarrow as pa
    import pyarrow.parquet as pq

    import bench_time_series as ts

    data = _scaling_file(f"ts_{rows}.parquet")
    folder = data.parent
    controls = [f"c{j}" for j in range(ts.CONTROLS)]
    if not data.exists():
        import csv
        import tempfile

        with tempfile.TemporaryDirectory() as tmp:
            daily = list(csv.DictReader(ts.write_data(Path(tmp)).open()))
        rng = np.random.default_rng(18)
        day = np.sort(np.concatenate([np.arange(len(daily)), rng.integers(0, len(daily), max(rows - len(daily), 0))]))
        per_day = np.bincount(day, minlength=len(daily))
        y = np.array([float(r["sales"]) for r in daily])
        share = rng.uniform(0.5, 1.5, day.size)
        share /= np.bincount(day, weights=share)[day]  # each day's events add up to its sales
        first = dt.date(2023, 1, 1)
        dates = np.array([first + dt.timedelta(days=int(d)) for d in range(len(daily))], dtype="datetime64[D]")
        columns = {"date": pa.array(dates[day]), "sales": y[day] * share}
        for c in controls:  # a control's events average to its day's value
            x = np.array([float(r[c]) for r in daily])
            noise = rng.normal(size=day.size)
            columns[c] = x[day] + noise - (np.bincount(day, weights=noise) / per_day)[day]
        pq.write_table(pa.table(columns), data)
    start = (dt.date(2023, 1, 1) + dt.timedelta(days=ts.START)).isoformat()
    how = ", ".join(["sales: sum", *(f"{c}: mean" for c in controls)])
    spec = folder / f"ts_{rows}.yaml"
    spec.write_text(f"version: 1\nname: ts-{rows}\ndata: {{path: {data.name}}}\noutcome: sales\n"
                    f"design: {{method: time_series, time: date, intervention: {start}, "
                    f"controls: [{', '.join(controls)}], estimator: structural, seasonality: 7, "
                    f"aggregate: {{{how}}}}}\nseed: 0\n")
    return str(spec), [sys.executable, "-c", TS_PEER, str(data), str(ts.START)]


CASES = [
    Case("experiment", "CUPED mean + ratio metric (bench_experiment's data); no default refuters", "tea-tasting",
         [*SIZES, 10**8], _experiment),
    Case("did", f"TWFE, staggered adoption, one covariate, CRV1; units x {TWFE_PERIODS} periods (bench_did's data)",
         "pyfixest feols", SIZES, _did),
    Case("synthetic_control", f"units x {SYNTH_PERIODS} periods, 12 predictors, nested V, conformal interval "
         "(bench_synth's data)", "pysyncon, one fit",
         # smaller sizes too: past 625 units (10^4 rows) it exceeds the timeout, and its growth is in units
         [400, 10**3, 3 * 10**3, 5 * 10**3, *SIZES], _synth, peer_max_rows=10**3),
    Case("matching", f"ATT, 1:1 on the propensity score, {COVARIATES} covariates (bench_matching's data)",
         "DoWhy PSM (no SE)", SIZES, _matching),
    Case("weighting", f"IPW ATE, logistic score, {COVARIATES} covariates (bench_observational's data)",
         "DoWhy IPW (no SE)", SIZES, _weighting),
    Case("dml", f"LinearDML ATE, gbm learners, 5 folds, {COVARIATES} covariates (bench_dml's data)",
         "EconML LinearDML", SIZES, _dml),
    Case("iv", "2SLS, one instrument, 5 covariates, robust SE (bench_iv's data)", "linearmodels IV2SLS", SIZES, _iv),
    Case("rdd", "sharp, 4-decimal score, MSE-optimal bandwidth, checks (bench_rdd's data)", "rdrobust", SIZES, _rdd),
    Case("time_series", "event rows over 1,095 days, 5 controls, summed/averaged to days in the engine, structural "
         "model (bench_time_series's series)", "causalimpact (pandas groupby, then fit)", SIZES, _time_series),
]

# ---------------------------------------------------------------------------------------------- measuring


# A small fresh process between this one and the command: a child's ru_maxrss starts from its parent's
# resident size at fork (Linux keeps the pre-exec high-water mark), and this process holds generated data.
WRAPPER = """
import json, os, subprocess, sys, time
t0 = time.perf_counter()
proc = subprocess.Popen(sys.argv[2:])
_, status, usage = os.wait4(proc.pid, 0)
seconds = time.perf_counter() - t0
with open(sys.argv[1], "w") as fh:
    json.dump({"seconds": seconds, "exit": os.waitstatus_to_exitcode(status), "maxrss_kib": usage.ru_maxrss}, fh)
"""


def _tree_pss(root: "psutil.Process") -> int:
    """Summed proportional set size (bytes) of the command's processes (the wrapper, a few MiB, left out), from
    /proc/<pid>/smaps_rollup: the kernel's one-line totals, far cheaper than parsing smaps per mapping."""
    import psutil

    total = 0
    try:
        children = root.children(recursive=True)
    except (psutil.NoSuchProcess, psutil.ZombieProcess):
        return 0
    for p in children:
        try:
            with open(f"/proc/{p.pid}/smaps_rollup") as fh:
                for line in fh:
                    if line.startswith("Pss:"):
                        total += int(line.split()[1]) * 1024
                        break
        except (FileNotFoundError, ProcessLookupError, PermissionError):
            pass
    return total


def _watch(wrapper: subprocess.Popen, timeout: float) -> tuple[int, bool]:
    """Wait for the wrapper, sampling its command's tree (summed PSS, bytes) every 0.1 s, or less often when a
    sample itself takes long (a tree of several GiB): at most a tenth of one core goes to watching, so the
    watcher does not slow what it measures. Kill the wrapper's session after ``timeout`` s. Returns (peak
    summed PSS, timed out)."""
    import psutil

    root = psutil.Process(wrapper.pid)
    tree_pss = 0
    t0 = time.perf_counter()
    while wrapper.poll() is None:
        started = time.perf_counter()
        tree_pss = max(tree_pss, _tree_pss(root))
        cost = time.perf_counter() - started
        if time.perf_counter() - t0 > timeout:
            os.killpg(wrapper.pid, signal.SIGKILL)  # the session this benchmark started, nothing else
            wrapper.wait()
            return tree_pss, True
        time.sleep(max(0.1, 9 * cost))
    return tree_pss, False


def measure(argv: list[str], timeout: float) -> dict:
    """Wall time and peak memory (MiB) of a fresh process tree; killed (whole session) after ``timeout`` s."""
    with tempfile.TemporaryDirectory() as tmp:
        report = Path(tmp) / "usage.json"
        out, err = Path(tmp) / "stdout", Path(tmp) / "stderr"
        with out.open("w") as fo, err.open("w") as fe:
            wrapper = subprocess.Popen([sys.executable, "-I", "-S", "-c", WRAPPER, str(report), *argv], cwd=ROOT,
                                       stdout=fo, stderr=fe, start_new_session=True)
            try:
                tree_pss, timed_out = _watch(wrapper, timeout)
            except BaseException:  # interrupted: the command's session goes with us
                os.killpg(wrapper.pid, signal.SIGKILL)
                raise
        usage = json.loads(report.read_text()) if report.exists() else {"seconds": timeout, "exit": -9,
                                                                        "maxrss_kib": 0}
        stdout, stderr = out.read_text(errors="replace"), err.read_text(errors="replace")
    largest = usage["maxrss_kib"] / 1024
    ok = not timed_out and usage["exit"] in (0, 1)
    try:  # causalcli's own split of its time (load, estimate, refute); peers print other things
        timing = json.loads(stdout)["timing_s"]
    except (ValueError, KeyError, TypeError):
        timing = None
    return {"seconds": round(usage["seconds"], 3), "peak_mib": round(max(tree_pss / 2**20, largest), 1),
            "tree_pss_mib": round(tree_pss / 2**20, 1), "largest_rss_mib": round(largest, 1),
            "exit": usage["exit"], "timed_out": timed_out, "ok": ok, "timing_s": timing, "stdout_tail": stdout[-300:],
            "stderr_tail": "" if ok else stderr[-1500:]}


def measure_cell(argv: list[str]) -> dict:
    runs = [measure(argv, TIMEOUT)]
    if runs[0]["ok"] and runs[0]["seconds"] < REPEAT_BELOW:
        runs.append(measure(argv, TIMEOUT))
    best = min(runs, key=lambda r: (not r["ok"], r["seconds"]))
    return {**best, "peak_mib": max(r["peak_mib"] for r in runs), "runs": [r["seconds"] for r in runs]}


def _git() -> str:
    head = subprocess.run(["git", "rev-parse", "--short", "HEAD"], cwd=ROOT, capture_output=True, text=True)
    dirty = subprocess.run(["git", "status", "--porcelain", "--untracked-files=no"], cwd=ROOT, capture_output=True,
                           text=True)
    return head.stdout.strip() + ("+dirty" if dirty.stdout.strip() else "")


def load_cache() -> dict:
    import re

    cache = json.loads(CACHE.read_text()) if CACHE.exists() else {}
    for cell in cache.values():  # cells measured before timing_s was kept: it ends the JSON output
        if "timing_s" not in cell:
            found = re.search(r'"timing_s": (\{[^}]*\})', cell.get("stdout_tail", ""))
            cell["timing_s"] = json.loads(found.group(1)) if found else None
    return cache


def save_cache(cache: dict) -> None:
    tmp = CACHE.with_suffix(".tmp")
    tmp.write_text(json.dumps(cache, indent=1, sort_keys=True))
    tmp.replace(CACHE)


def key(design: str, rows: int, tool: str) -> str:
    return f"{design}/{rows}/{tool}"


def predict(cache: dict, case: Case, earlier: list[int], rows: int, tool: str, field: str) -> float:
    """The cost at ``rows``: the start-up floor (the smallest size) plus the cost above it, grown from the
    size before at the exponent seen between the two sizes before when both are at least twice the floor
    (at least 1: linear; at most 3), else linearly."""
    measured = [(n, cache[key(case.design, n, tool)][field]) for n in earlier
                if cache.get(key(case.design, n, tool), {}).get("ok")]
    (n1, v1) = measured[-1]
    if len(measured) == 1:  # one size only: no floor to subtract
        return v1 * rows / n1
    floor = measured[0][1]
    power = 1.0
    if len(measured) >= 3 and measured[-2][1] >= 2 * floor:  # both well above the floor: their exponent
        (n0, v0) = measured[-2]
        power = min(3.0, max(1.0, math.log((v1 - floor) / (v0 - floor)) / math.log(n1 / n0)))
    return floor + (v1 - floor) * (rows / n1) ** power


def why_not(cache: dict, case: Case, rows: int, tool: str) -> str | None:
    """The reason not to run a cell, read from the smaller sizes' cells (None: run it)."""
    if tool == "peer" and rows > case.peer_max_rows:
        return f"not run: the peer is run up to {case.peer_max_rows:,} rows"
    earlier = [n for n in case.sizes if n < rows]
    if not earlier:
        return None
    prev = cache.get(key(case.design, earlier[-1], tool))
    if prev is None:  # not measured: not run for a reason, which then holds here too, or not yet
        return why_not(cache, case, earlier[-1], tool)
    if prev.get("timed_out"):
        return f"not run: {earlier[-1]:,} rows already exceeded {TIMEOUT:.0f} s"
    if not prev.get("ok"):
        return f"not run: {earlier[-1]:,} rows failed"
    seconds = predict(cache, case, earlier, rows, tool, "seconds")
    mib = predict(cache, case, earlier, rows, tool, "peak_mib")
    if seconds > TIMEOUT:
        return f"not run: predicted {seconds:.0f} s from {prev['seconds']:.0f} s at {earlier[-1]:,} rows"
    if mib > MAX_GIB * 1024:
        return f"not run: predicted {mib / 1024:.0f} GiB from {prev['peak_mib'] / 1024:.1f} GiB at {earlier[-1]:,} rows"
    return None


def run_case(case: Case, cache: dict) -> None:
    print(f"  -- {case.design}: {case.what}; peer: {case.peer_label}", flush=True)
    for rows in case.sizes:
        if rows > MAX_ROWS:
            continue
        todo = [t for t in ("causalcli", "peer") if FRESH or key(case.design, rows, t) not in cache]
        if FRESH:
            for tool in todo:
                cache.pop(key(case.design, rows, tool), None)
        if not todo:
            continue
        reasons = {t: why_not(cache, case, rows, t) for t in todo}
        if all(reasons.values()):
            for tool in todo:
                print(f"  {case.design:<18} {rows:>11,}  {tool:<9}  {reasons[tool]}", flush=True)
            continue
        t0 = time.perf_counter()
        spec, peer = case.make(rows)
        made = time.perf_counter() - t0
        if made > 1:
            print(f"  ({case.design} {rows:,} rows: data ready in {made:.0f} s)", flush=True)
        for tool in todo:
            if reasons[tool]:
                print(f"  {case.design:<18} {rows:>11,}  {tool:<9}  {reasons[tool]}", flush=True)
                continue
            argv = ([str(BIN / "causalcli"), "estimate", spec, "--format", "json", "--quiet"]
                    if tool == "causalcli" else peer)
            load = os.getloadavg()[0]
            cell = measure_cell(argv)
            cell.update(load_before=round(load, 2), load_after=round(os.getloadavg()[0], 2), git=_git(),
                        when=time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime()))
            cache[key(case.design, rows, tool)] = cell
            save_cache(cache)
            state = "TIMED OUT" if cell["timed_out"] else ("ok" if cell["ok"] else f"FAILED (exit {cell['exit']})")
            print(f"  {case.design:<18} {rows:>11,}  {tool:<9}  {cell['seconds']:8.2f} s  "
                  f"{cell['peak_mib']:8.0f} MiB  {state}  load {load:.1f}", flush=True)
            if not cell["ok"] and not cell["timed_out"]:
                print("    " + cell["stderr_tail"][-600:].replace("\n", "\n    "), flush=True)


# ---------------------------------------------------------------------------------------------- fitting


def exponent(points: list[tuple[int, float]]) -> tuple[float | None, list[int] | None]:
    """Growth exponent of the cost above the start-up floor.

    The floor is the cost at the smallest size; the slope is the least-squares slope of
    log(cost - floor) on log(rows) over the sizes whose cost is at least 1.5 times the floor (at the
    smallest of them the subtracted floor is at most two thirds of the cost). Fewer than two such
    sizes: None (and those sizes); fewer than three measured sizes: None, None.
    """
    import numpy as np

    if len(points) < 3:
        return None, None
    floor = points[0][1]
    used = [(n, v - floor) for n, v in points[1:] if v >= ABOVE_FLOOR * floor]
    if len(used) < 2:
        return None, [n for n, _ in used]
    slope = np.polyfit(np.log([n for n, _ in used]), np.log([v for _, v in used]), 1)[0]
    return float(slope), [n for n, _ in used]


def series(cache: dict, case: Case, tool: str, field: str) -> list[tuple[int, float]]:
    pts = []
    for rows in case.sizes:
        cell = cache.get(key(case.design, rows, tool))
        if cell and cell.get("ok"):
            pts.append((rows, cell[field]))
    return pts


# ---------------------------------------------------------------------------------------------- output


def _rows(n: int) -> str:
    return f"10^{round(math.log10(n))}" if 10 ** round(math.log10(n)) == n else f"{n:,}"


def _cell(cell: dict | None, reason: str | None) -> tuple[str, str]:
    """(time, memory) as the table shows them; a cell not run shows what its reason implies, starred."""
    if cell is None:
        if reason is None:
            return "", ""
        if "failed" in reason or "up to" in reason:
            return "not run*", ""
        if "GiB" in reason:
            return "not run*", "> " + reason.split("predicted ")[1].split(" from")[0] + "*"
        return f"> {TIMEOUT:.0f} s*", ""
    if cell.get("timed_out"):  # the peak up to the kill is a lower bound
        return f"> {TIMEOUT:.0f} s", f"≥ {cell['peak_mib'] / 1024:.2f} GiB" if cell["peak_mib"] > 1 else ""
    if not cell.get("ok"):
        return f"failed (exit {cell['exit']})", f"{cell['peak_mib'] / 1024:.2f} GiB"
    return f"{cell['seconds']:.1f} s", f"{cell['peak_mib'] / 1024:.2f} GiB"


def _exp_text(value: float | None, used: list[int] | None, points: list[tuple[int, float]]) -> str:
    if used is None and len(points) == 2:  # no floor to subtract: the raw slope, a lower bound
        (n0, v0), (n1, v1) = points
        return f"≥ {math.log(v1 / v0) / math.log(n1 / n0):.2f} ({_rows(n0)}, {_rows(n1)}; floor not subtracted)"
    if used is None:
        return "— (too few sizes)"
    if value is None:
        return f"— ({'one size' if used else 'no size'} above {ABOVE_FLOOR}x the floor)"
    return f"{value:.2f} ({', '.join(_rows(n) for n in used)})"


def table(cache: dict) -> str:
    lines = ["| design | rows | causalcli time | of which refuters | causalcli peak memory | peer | peer time "
             "| peer peak memory |",
             "| --- | ---: | ---: | ---: | ---: | --- | ---: | ---: |"]
    notes: dict[str, list[str]] = {}  # reason -> cells
    for case in CASES:
        for rows in case.sizes:  # every cached cell, whatever BENCH_SCALING_MAX_ROWS limits the measuring to
            shown = []
            for tool in ("causalcli", "peer"):
                cell = cache.get(key(case.design, rows, tool))
                reason = None if cell else why_not(cache, case, rows, tool)
                if reason:
                    cells = notes.setdefault(f"{case.design} {tool if tool == 'causalcli' else case.peer_label}"
                                             f"|{reason}", [])
                    cells.append(_rows(rows))
                shown.append(_cell(cell, reason))
            if not any(s[0] for s in shown):
                continue
            timing = (cache.get(key(case.design, rows, "causalcli")) or {}).get("timing_s") or {}
            refute = f"{timing['refute']:.1f} s" if "refute" in timing else ""
            lines.append(f"| {case.design} | {_rows(rows)} | {shown[0][0]} | {refute} | {shown[0][1]} | "
                         f"{case.peer_label} | {shown[1][0]} | {shown[1][1]} |")
    lines += ["", f"Growth exponents: slope of log(cost - floor) on log(rows), floor = the smallest size's cost, "
              f"over the sizes costing at least {ABOVE_FLOOR}x the floor (in brackets):", "",
              "| design | causalcli time | causalcli memory | peer time | peer memory |",
              "| --- | --- | --- | --- | --- |"]
    for case in CASES:
        texts = []
        for tool in ("causalcli", "peer"):
            for field in ("seconds", "peak_mib"):
                points = series(cache, case, tool, field)
                texts.append(_exp_text(*exponent(points), points))
        lines.append(f"| {case.design} | {' | '.join(texts)} |")
    cells = [c for c in cache.values() if isinstance(c, dict) and "load_before" in c]
    loads = sorted(c["load_before"] for c in cells)
    commits = sorted({c["git"] for c in cells})
    dates = sorted(c["when"] for c in cells)
    lines += ["", f"Measured {dates[0]} to {dates[-1]} at commit(s) {', '.join(commits)}; load average before the "
              f"runs {loads[0]:.1f} to {loads[-1]:.1f} on {os.cpu_count()} cores."] if cells else []
    if notes:
        lines += ["", "\\* Not run:", ""] + [
            f"- {k.split('|')[0]} at {', '.join(v)} rows: {k.split('|')[1].removeprefix('not run: ')}."
            for k, v in notes.items()]
    return "\n".join(lines)


def write_docs(cache: dict) -> None:
    block = f"{BEGIN}\n{table(cache)}\n{END}"
    text = DOCS.read_text() if DOCS.exists() else f"# Performance\n\n{BEGIN}\n{END}\n"
    if BEGIN not in text or END not in text:
        text = text.rstrip("\n") + f"\n\n{BEGIN}\n{END}\n"
    head, rest = text.split(BEGIN, 1)
    tail = rest.split(END, 1)[1]
    DOCS.write_text(head + block + tail)


def plot(cache: dict) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    from matplotlib import ticker

    fig, axes = plt.subplots(2, len(CASES), figsize=(4 * len(CASES), 7.5), squeeze=False)
    for j, case in enumerate(CASES):
        for i, (field, label) in enumerate((("seconds", "wall time (s)"), ("peak_mib", "peak memory (MiB)"))):
            ax = axes[i][j]
            for tool, style, name in (("causalcli", "o-", "causalcli"), ("peer", "s--", case.peer_label)):
                pts = series(cache, case, tool, field)
                if pts:
                    ax.plot([n for n, _ in pts], [v for _, v in pts], style, label=name)
                if field == "seconds":  # timed out: an upward marker at the timeout
                    over = [n for n in case.sizes if (cache.get(key(case.design, n, tool)) or {}).get("timed_out")]
                    if over:
                        ax.plot(over, [TIMEOUT] * len(over), "^", color=ax.lines[-1].get_color() if pts else "k")
            if field == "seconds":
                ax.axhline(TIMEOUT, color="grey", lw=0.6, ls=":")
                ax.set_title(case.design)
            ax.set_xscale("log")
            ax.set_yscale("log")
            low, high = ax.get_xlim()
            for axis in (ax.xaxis, ax.yaxis):  # decades as 10^k over a wide range, else 1, 2, 5 per decade
                wide = axis is ax.xaxis and high / low > 100
                axis.set_major_locator(ticker.LogLocator(subs=(1.0,) if wide else (1.0, 2.0, 5.0)))
                axis.set_major_formatter(ticker.LogFormatterSciNotation() if wide
                                         else ticker.FuncFormatter(lambda v, _: f"{v:g}"))
                axis.set_minor_formatter(ticker.NullFormatter())
            ax.set_xlabel("rows")
            ax.set_ylabel(label)
            ax.grid(True, which="major", lw=0.3)
            if i == 0 and any(not line.get_label().startswith("_") for line in ax.lines):
                ax.legend(fontsize=8)
    fig.suptitle("Whole command (fresh process, default refuters) against rows; dotted: the timeout")
    fig.tight_layout()
    fig.savefig(PNG, dpi=80)
    plt.close(fig)


def main() -> None:
    # killed (make bench interrupted, or a timeout of the caller's): finish through measure's cleanup
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))
    OUT.mkdir(parents=True, exist_ok=True)
    only = [d for d in os.environ.get("BENCH_SCALING_DESIGNS", "").split(",") if d]
    cache = load_cache()
    print(f"  timeout {TIMEOUT:.0f} s per run, sizes up to {MAX_ROWS:,} rows, cache {CACHE.relative_to(ROOT)}"
          f"{' (fresh)' if FRESH else ''}; load average {os.getloadavg()[0]:.1f} on {os.cpu_count()} cores",
          flush=True)
    for case in CASES:
        if not only or case.design in only:
            run_case(case, cache)
    write_docs(cache)
    plot(cache)
    print(f"  wrote {PNG.relative_to(ROOT)} and the table in {DOCS.relative_to(ROOT)}", flush=True)


if __name__ == "__main__":
    sys.path.insert(0, str(ROOT / "bench"))
    main()
