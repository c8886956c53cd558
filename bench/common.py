"""Helpers for benchmarks: time fresh processes, print ratios."""

from __future__ import annotations

import os
import statistics
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
BIN = Path(sys.executable).parent


def time_process(argv: list[str], repeat: int = 3, env: dict | None = None) -> tuple[float, subprocess.CompletedProcess]:
    """Median wall time of a fresh process (imports included), and its last run."""
    times = []
    last = None
    for _ in range(repeat):
        t0 = time.perf_counter()
        last = subprocess.run(argv, cwd=ROOT, capture_output=True, text=True, env={**os.environ, **(env or {})})
        times.append(time.perf_counter() - t0)
        if last.returncode not in (0, 1):
            raise SystemExit(f"benchmark command failed ({last.returncode}): {' '.join(argv)}\n{last.stderr[-2000:]}")
    return statistics.median(times), last


def row(label: str, seconds: float, note: str = "") -> None:
    print(f"  {label:<58} {seconds:8.2f} s  {note}", flush=True)


def verdict(ok: bool, text: str) -> None:
    print(f"  [{'met' if ok else 'MISSED'}] {text}", flush=True)


def print_load(when: str) -> None:
    """The machine's load average, printed beside timings (wall times stretch with it)."""
    print(f"  load average {when}: {os.getloadavg()[0]:.1f} on {os.cpu_count()} cores", flush=True)
