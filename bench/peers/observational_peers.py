"""Peers for bench_observational: DoWhy (PSM ATT, IPW ATE) and DoubleML IRM (AIPW ATE) on one data file.

Run as a fresh process so that its imports are timed like causalcli's; prints
one JSON line ``{"estimate": ..., "std_error": ...}``.

* ``dowhy_psm``: DoWhy 0.14 ``backdoor.propensity_score_matching``, ATT, its
  default propensity model (sklearn LogisticRegression), one neighbour, no SE
  (DoWhy gives none without bootstrap).
* ``dowhy_ipw``: ``backdoor.propensity_score_weighting``, normalised weights, ATE.
* ``doubleml``: DoubleML IRM, score ATE, unpenalised logistic and linear
  regression learners, 5-fold cross-fitting, its influence-function SE.
"""

from __future__ import annotations

import argparse
import json
import sys


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("method", choices=["dowhy_psm", "dowhy_ipw", "doubleml"])
    ap.add_argument("data")
    ap.add_argument("--covariates", type=int, default=20)
    args = ap.parse_args()
    import pandas as pd

    df = pd.read_parquet(args.data)
    covs = [f"x{i}" for i in range(1, args.covariates + 1)]
    if args.method == "doubleml":
        import doubleml as dml
        from sklearn.linear_model import LinearRegression, LogisticRegression

        data = dml.DoubleMLData(df, y_col="y", d_cols="t", x_cols=covs)
        irm = dml.DoubleMLIRM(data, LinearRegression(), LogisticRegression(penalty=None, max_iter=1000), n_folds=5)
        irm.fit()
        print(json.dumps({"estimate": float(irm.coef[0]), "std_error": float(irm.se[0])}))
        return
    import networkx as nx
    from dowhy import CausalModel

    g = nx.DiGraph()
    g.add_edge("t", "y")
    for c in covs:
        g.add_edge(c, "t")
        g.add_edge(c, "y")
    model = CausalModel(data=df, treatment="t", outcome="y", graph=g)
    estimand = model.identify_effect(proceed_when_unidentifiable=True)
    if args.method == "dowhy_psm":
        est = model.estimate_effect(estimand, method_name="backdoor.propensity_score_matching", target_units="att")
    else:
        est = model.estimate_effect(estimand, method_name="backdoor.propensity_score_weighting", target_units="ate",
                                    method_params={"weighting_scheme": "ips_normalized_weight"})
    print(json.dumps({"estimate": float(est.value), "std_error": None}))


if __name__ == "__main__":
    sys.exit(main())
