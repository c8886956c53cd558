"""Write tests/golden/expected/ from the current code (deliberately: a changed golden file is a changed output).

    .venv/bin/python tests/golden/regenerate.py                 # every case
    .venv/bin/python tests/golden/regenerate.py did-twfe synth  # cases whose name starts with these
    .venv/bin/python tests/golden/regenerate.py --check --jobs 1  # compare only (e.g. one worker vs the default)

A commit that changes a file in expected/ must say which output changed and why (docs/DEVELOPING.md).
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))

from tests.golden.golden import (  # noqa: E402
    CASES, EXIT_CODES, EXPECTED, differences, expected_path, run_case, serialise)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("prefixes", nargs="*", help="Only cases whose name starts with one of these.")
    parser.add_argument("--check", action="store_true", help="Compare with expected/ instead of writing.")
    parser.add_argument("--jobs", type=int, default=None, help="--jobs passed to estimate (default: the CLI's).")
    args = parser.parse_args()
    cases = [c for c in CASES if not args.prefixes or c.name.startswith(tuple(args.prefixes))]
    EXPECTED.mkdir(exist_ok=True)
    codes = json.loads(EXIT_CODES.read_text()) if EXIT_CODES.exists() else {}
    failed = 0
    for case in cases:
        t0 = time.perf_counter()
        code, payload = run_case(case, jobs=args.jobs)
        text = serialise(payload)
        took = time.perf_counter() - t0
        if args.check:
            diff = differences(case, text, expected_path(case).read_text())
            if code != codes.get(case.name):
                diff.append(f"exit code {code} != {codes.get(case.name)}")
            failed += bool(diff)
            print(f"{'DIFF' if diff else 'same'} {case.name} ({took:.2f} s)", *diff[:10], sep="\n  ")
        else:
            expected_path(case).write_text(text)
            codes[case.name] = code
            print(f"wrote {case.name} exit {code} ({took:.2f} s)")
    if not args.check:
        known = {c.name for c in CASES}
        EXIT_CODES.write_text(json.dumps({k: codes[k] for k in sorted(codes) if k in known}, indent=2) + "\n")
        for stale in EXPECTED.glob("*.json"):
            if stale != EXIT_CODES and stale.stem not in known:
                stale.unlink()
                print(f"removed {stale.name} (no such case)")
    return 1 if failed else 0


if __name__ == "__main__":
    raise SystemExit(main())
