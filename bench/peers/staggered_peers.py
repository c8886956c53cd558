"""diff-diff's ImputationDiD or SunAbraham as a whole process (bench_did_staggered.py times it from outside):
imports, reading the Parquet file, the fit with its event study. Prints one JSON line with the estimates."""

from __future__ import annotations

import json
import sys
import warnings

import pandas as pd


def main() -> None:
    name, data = sys.argv[1], sys.argv[2]
    warnings.simplefilter("ignore")
    df = pd.read_parquet(data)
    if name == "imputation":
        from diff_diff import ImputationDiD

        r = ImputationDiD().fit(df, "y", "unit", "time", "g")
        es = r.aggregate("event_study")  # the event-time effects and their SEs, as causalcli reports
        n_effects = int((~es.is_reference).sum())
    else:
        from diff_diff import SunAbraham

        r = SunAbraham().fit(df, "y", "unit", "time", "g")
        n_effects = len(r.event_study_effects)
    print(json.dumps({"peer": name, "estimate": [float(r.overall_att), float(r.overall_se)],
                      "effects": n_effects}))


if __name__ == "__main__":
    main()
