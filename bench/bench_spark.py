"""A/B experiment on 100,000,000 rows read by local Spark from a partitioned Parquet folder, beside embedded DuckDB.

Issue 16, point 5. bench_experiment's data (CUPED mean + ratio metric) are written once as a folder of
Parquet files (``bench/out/experiment_<rows>_parts/``, about ``PARTS`` files; cached), which Spark reads
itself (``data: {backend: spark, path: FOLDER}``: distributed, ``local[*]``); the same spec without a backend
runs on the single file with the default embedded DuckDB. Each runs as a user runs it, a fresh
``causalcli estimate spec.yaml --format json --quiet``, alternately, twice each; the best time is kept.

Memory: the whole process tree's peak (bench_scaling.measure: summed PSS sampled every 0.1 s, or the
largest process's ru_maxrss), and, sampled beside it every 0.1 s, each process's own high-water mark
(``VmHWM``): the Python client's apart from the JVM that local Spark runs as the client's child.
Printed too: ``provenance.fetched_rows`` of the Spark run (rows the client received: independent of the
rows) and whether the two results agree (every number outside provenance and timing to 1e-9 relative).
``BENCH_SPARK_ROWS`` picks a smaller size (default 100,000,000). Needs Java and PySpark (``make engines``);
without them it says so and measures nothing.
"""

from __future__ import annotations

import json
import os
import shutil
import sys
import threading
import time
from pathlib import Path

from common import BIN, ROOT, row, verdict

OUT = ROOT / "bench" / "out"
ROWS = int(float(os.environ.get("BENCH_SPARK_ROWS", "1e8")))
PARTS = 20
TIMEOUT = 1800.0  # seconds per run


def why_no_spark() -> str | None:
    """Why local Spark cannot start here (None: it can)."""
    import importlib.util

    if importlib.util.find_spec("pyspark") is None:
        return "PySpark is not installed in this environment (pip install -e '.[spark]')"
    java_home = os.environ.get("JAVA_HOME")
    if not shutil.which("java") and not (java_home and (Path(java_home) / "bin" / "java").exists()):
        return "no Java found (neither java on PATH nor JAVA_HOME)"
    return None


def partitioned(source: Path, rows: int) -> Path:
    """The file as a folder of about ``PARTS`` Parquet files (made once, streaming, and kept)."""
    import pyarrow.dataset as ds

    folder = OUT / f"experiment_{rows}_parts"
    if folder.is_dir():
        return folder
    tmp = OUT / f"experiment_{rows}_parts.tmp"
    shutil.rmtree(tmp, ignore_errors=True)
    t0 = time.perf_counter()
    per_file = -(-rows // PARTS)
    ds.write_dataset(ds.dataset(source, format="parquet"), tmp, format="parquet",
                     basename_template="part-{i}.parquet",
                     max_rows_per_file=per_file, max_rows_per_group=min(per_file, 1_000_000),
                     min_rows_per_group=min(per_file, 1_000_000))
    tmp.rename(folder)
    files = sorted(folder.glob("*.parquet"))
    size = sum(f.stat().st_size for f in files) / 2**30
    print(f"  (wrote {len(files)} Parquet files, {size:.2f} GiB, in {time.perf_counter() - t0:.0f} s: {folder})",
          flush=True)
    return folder


def spark_spec(folder: Path, rows: int) -> Path:
    import yaml

    import bench_experiment

    spec = yaml.safe_load(Path(bench_experiment.spec(OUT / f"experiment_{rows}.parquet")).read_text())
    spec["name"] = "ab-bench-spark"
    spec["data"] = {"backend": "spark", "path": str(folder), "format": "parquet"}
    out = OUT / f"experiment_{rows}_spark.yaml"
    out.write_text(yaml.safe_dump(spec, sort_keys=False))
    return out


class HighWater:
    """Each descendant process's own peak resident size (``VmHWM``, MiB), sampled every 0.1 s, by kind."""

    def __init__(self) -> None:
        self.peaks: dict[int, tuple[str, float]] = {}
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def __enter__(self) -> "HighWater":
        self._thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self._stop.set()
        self._thread.join()

    def _run(self) -> None:
        import psutil

        me = psutil.Process()
        while not self._stop.is_set():
            for proc in me.children(recursive=True):
                try:
                    status = Path(f"/proc/{proc.pid}/status").read_text()
                    name = proc.name()
                except (OSError, psutil.Error):
                    continue
                hwm = next((int(line.split()[1]) / 1024 for line in status.splitlines()
                            if line.startswith("VmHWM:")), 0.0)
                kind = "jvm" if name == "java" else "client" if name.startswith("causalcli") else name
                old = self.peaks.get(proc.pid, (kind, 0.0))
                self.peaks[proc.pid] = (kind, max(old[1], hwm))
            time.sleep(0.1)

    def peak(self, kind: str) -> float:
        return max((mib for k, mib in self.peaks.values() if k == kind), default=0.0)


class CommandFailed(Exception):
    """A measured command did not finish with exit 0 or 1."""


def run(argv: list[str], writes_json: bool = True) -> dict:
    """One fresh run of ``argv``: bench_scaling.measure's time and tree peak, the client's and the JVM's own
    peaks, and the result (``writes_json``: a causalcli estimate, whose JSON goes to ``--output``)."""
    import tempfile

    from bench_scaling import measure

    with tempfile.TemporaryDirectory() as tmp, HighWater() as hw:
        output = Path(tmp) / "result.json"
        measured = measure([*argv, "--output", str(output)] if writes_json else argv, TIMEOUT)
        if not measured["ok"]:
            raise CommandFailed(f"exit {measured['exit']}{' (timed out)' if measured['timed_out'] else ''}: "
                                f"{' '.join(argv)}\n{measured['stderr_tail'].strip()[-1500:]}")
        result = json.loads(output.read_text()) if writes_json else None
    return {**measured, "client_mib": hw.peak("client"), "jvm_mib": hw.peak("jvm"), "result": result}


# Not compared: where the data came from, how long it took, and how each engine summed (the centres its
# sums are taken about are a numerical device: DuckDB's from the first rows, Spark's from its mean).
NOT_COMPARED = ("provenance", "timing_s", "sufficient_statistics")


def numbers(value, where: str = "") -> dict[str, float]:
    """Every number of a result outside ``NOT_COMPARED``, by its path."""
    if isinstance(value, dict):
        return {k: v for key, item in value.items() if key not in NOT_COMPARED
                for k, v in numbers(item, f"{where}/{key}").items()}
    if isinstance(value, list):
        return {k: v for i, item in enumerate(value) for k, v in numbers(item, f"{where}/{i}").items()}
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        return {where: float(value)}
    return {}


def largest_gap(a: dict, b: dict) -> tuple[float, str, int]:
    """The largest relative gap between two results' numbers, where it is, and how many numbers were compared."""
    na, nb = numbers(a), numbers(b)
    if na.keys() != nb.keys():
        return float("inf"), f"different fields: {sorted(na.keys() ^ nb.keys())[:5]}", len(na)
    gaps = [(abs(na[k] - nb[k]) / max(abs(na[k]), abs(nb[k])) if na[k] != nb[k] else 0.0, k) for k in na]
    return (*max(gaps, default=(0.0, "")), len(na))


def main() -> None:
    import bench_experiment

    reason = why_no_spark()
    if reason:
        print(f"  skipped, nothing measured: {reason}; `make engines` installs Java", flush=True)
        return
    OUT.mkdir(parents=True, exist_ok=True)
    source = OUT / f"experiment_{ROWS}.parquet"
    if not source.exists():
        t0 = time.perf_counter()
        bench_experiment.generate(source, ROWS)
        print(f"  (generated {ROWS:,} rows in {time.perf_counter() - t0:.0f} s)", flush=True)
    folder = partitioned(source, ROWS)
    spark_spec_path = str(spark_spec(folder, ROWS))
    commands = {"spark": [str(BIN / "causalcli"), "estimate", spark_spec_path, "--format", "json", "--quiet"],
                "duckdb": [str(BIN / "causalcli"), "estimate", bench_experiment.spec(source), "--format", "json",
                           "--quiet"]}
    runs: dict[str, list[dict]] = {"spark": [], "duckdb": []}
    load_before = bench_experiment.load_average()
    start_up = []  # the fixed cost of Spark: validate starts the JVM and reads the folder's schema, no rows
    try:
        for _ in range(2):  # alternate, so load from other work on the machine hits both alike
            for engine, argv in commands.items():
                runs[engine].append(run(argv))
            start_up.append(run([str(BIN / "causalcli"), "validate", spark_spec_path, "--quiet"], writes_json=False))
    except CommandFailed as exc:  # e.g. a JVM that cannot start: said, and the other benchmarks go on
        print(f"  failed, nothing measured: {exc}", flush=True)
        return
    load_after = bench_experiment.load_average()
    best = {e: min(r["seconds"] for r in rs) for e, rs in runs.items()}
    peak = {e: {k: max(r[k] for r in rs) for k in ("peak_mib", "client_mib", "jvm_mib")} for e, rs in runs.items()}
    results = {e: rs[-1]["result"] for e, rs in runs.items()}
    prov = results["spark"]["provenance"]
    files = len(list(folder.glob("*.parquet")))
    row(f"causalcli on Spark, local[{os.cpu_count()}] ({ROWS:,} rows, {files} Parquet files)", best["spark"],
        f"tree peak {peak['spark']['peak_mib'] / 1024:.2f} GiB: client {peak['spark']['client_mib']:.0f} MiB, "
        f"JVM {peak['spark']['jvm_mib']:.0f} MiB")
    row(f"causalcli on embedded DuckDB (one {source.stat().st_size / 2**30:.2f} GiB file)", best["duckdb"],
        f"tree peak {peak['duckdb']['peak_mib'] / 1024:.2f} GiB (client {peak['duckdb']['client_mib']:.0f} MiB)")
    row("causalcli validate on Spark (JVM start-up, schema only)",
        min(r["seconds"] for r in start_up), f"JVM {max(r['jvm_mib'] for r in start_up):.0f} MiB")
    ratio = best["spark"] / best["duckdb"]
    timing = (results["spark"].get("timing_s") or {})
    print(f"  best of two fresh processes each; runs {[r['seconds'] for r in runs['spark']]} s (Spark) against "
          f"{[r['seconds'] for r in runs['duckdb']]} s (DuckDB); the last Spark run's timing_s {timing}; "
          f"load average {load_before} before, {load_after} after", flush=True)
    print(f"  ratio Spark / DuckDB: {ratio:.2f}x; rows fetched by the Spark client: {prov.get('fetched_rows')} "
          f"(backend {prov.get('backend')}, engine {prov.get('engine_version')})", flush=True)
    gap, where, compared = largest_gap(results["spark"], results["duckdb"])
    verdict(gap <= 1e-9, f"Spark and DuckDB agree to 1e-9 relative on all {compared} numbers outside provenance, "
            f"timing and summation details (max gap {gap:.1e}{' at ' + where if where else ''})")
    fetched = prov.get("fetched_rows")
    verdict(isinstance(fetched, int) and fetched < 1000, f"the Spark client fetched few rows ({fetched}), "
            "independent of the rows")


if __name__ == "__main__":
    sys.path.insert(0, str(ROOT / "bench"))
    main()
