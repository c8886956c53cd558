"""DoWhy 0.14 doing the work of `causalcli estimate` on the LaLonde NSW-CPS data.

Load the parquet, propensity-score-matching ATT with the default graph (every
covariate -> treat and -> re78), then DoWhy's placebo (permute), random-common-cause
and data-subset refuters, `--simulations` each on `--n-jobs` joblib workers.
Prints ONE JSON line on stdout; DoWhy's and sklearn's warnings go to stderr.

Seeding follows CausalModel.refute_estimate(random_seed=...): numpy's global RNG is
seeded before each refuter and random_state=None is passed. That is reproducible only
with --n-jobs 1 (loky workers have their own, unseeded RNGs); a seeded RandomState
would be worse with several workers (the same draws repeated per joblib batch).
The adjustment set is pinned to the covariate order below: DoWhy's own order comes
from a Python set and would make the (unconverged) default logit, and so the ATT,
depend on PYTHONHASHSEED. See tests/peers/DOWHY_NOTES.md.

Usage: python bench/peers/dowhy_lalonde.py [--data PATH] [--simulations 100]
       [--n-jobs 2] [--seed 0] [--rows N]
"""

from __future__ import annotations

import time

T_START = time.perf_counter()

import argparse  # noqa: E402
import json  # noqa: E402
import logging  # noqa: E402
import os  # noqa: E402
import sys  # noqa: E402
import warnings  # noqa: E402

TREATMENT = "treat"
OUTCOME = "re78"
COVARIATES = ["age", "educ", "black", "hisp", "marr", "nodegree", "re74", "re75"]


def parse_args(argv=None) -> argparse.Namespace:
    here = os.path.dirname(os.path.abspath(__file__))
    default_data = os.path.normpath(os.path.join(here, "..", "..", "specs", "data", "nsw_cps.parquet"))
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--data", default=default_data, help="parquet file (default specs/data/nsw_cps.parquet)")
    p.add_argument("--simulations", type=int, default=100, help="simulations per refuter")
    p.add_argument("--n-jobs", type=int, default=2, help="joblib workers for the refuters")
    p.add_argument("--seed", type=int, default=0, help="numpy seed (reproducible only with --n-jobs 1)")
    p.add_argument("--rows", type=int, default=None, help="random subsample of N rows (seeded)")
    return p.parse_args(argv)


def _refutation(result) -> dict:
    sig = result.refutation_result or {}
    p = sig.get("p_value")
    p = None if p is None or p != p else float(p)  # NaN is not valid JSON
    return {
        "refutation_type": result.refutation_type,
        "new_effect": float(result.new_effect),
        "p_value": p,
        "is_statistically_significant": bool(sig.get("is_statistically_significant")),
    }


def main(argv=None) -> int:
    args = parse_args(argv)
    # Quiet the loky workers too (they inherit the environment when spawned).
    os.environ.setdefault("PYTHONWARNINGS", "ignore")
    warnings.filterwarnings("ignore")
    logging.disable(logging.WARNING)
    seconds: dict[str, float] = {}

    t = time.perf_counter()
    import networkx as nx
    import numpy as np
    import pandas as pd

    import dowhy
    from dowhy.causal_estimator import estimate_effect
    from dowhy.causal_estimators.propensity_score_matching_estimator import (
        PropensityScoreMatchingEstimator,
    )
    from dowhy.causal_identifier import identify_effect
    from dowhy.causal_refuters.data_subset_refuter import refute_data_subset
    from dowhy.causal_refuters.placebo_treatment_refuter import PlaceboType, refute_placebo_treatment
    from dowhy.causal_refuters.random_common_cause import refute_random_common_cause
    from dowhy.causal_refuters.refute_estimate import refute_estimate

    seconds["import"] = time.perf_counter() - t

    t = time.perf_counter()
    df = pd.read_parquet(args.data, columns=[TREATMENT, OUTCOME, *COVARIATES])
    if args.rows is not None and args.rows < len(df):
        df = df.sample(n=args.rows, random_state=args.seed).reset_index(drop=True)
    seconds["load"] = time.perf_counter() - t

    t = time.perf_counter()
    graph = nx.DiGraph()
    graph.add_edge(TREATMENT, OUTCOME)
    for c in COVARIATES:
        graph.add_edge(c, TREATMENT)
        graph.add_edge(c, OUTCOME)
    estimand = identify_effect(graph, TREATMENT, OUTCOME, [TREATMENT, OUTCOME, *COVARIATES])
    estimand.set_identifier_method("backdoor")
    assert set(estimand.get_backdoor_variables()) == set(COVARIATES)
    estimand.set_backdoor_variables(list(COVARIATES))
    estimator = PropensityScoreMatchingEstimator(estimand)
    # DoWhy writes its "propensity_score" column into df here; the refuters reuse it,
    # as with CausalModel (py-why/dowhy#1728).
    estimate = estimate_effect(
        df, TREATMENT, OUTCOME, "backdoor", estimator, target_units="att", method_params={}
    )
    seconds["estimate"] = time.perf_counter() - t

    t = time.perf_counter()
    plans = {
        "placebo_treatment_refuter": (
            refute_placebo_treatment,
            {"treatment_names": [TREATMENT], "placebo_type": PlaceboType.PERMUTE},
        ),
        "random_common_cause": (refute_random_common_cause, {}),
        "data_subset_refuter": (refute_data_subset, {"subset_fraction": 0.8}),
    }
    refutations = {}
    for name, (refuter, extra) in plans.items():
        t_one = time.perf_counter()
        np.random.seed(args.seed)
        (result,) = refute_estimate(
            df,
            estimand,
            estimate,
            treatment_name=TREATMENT,
            outcome_name=OUTCOME,
            refuters=[refuter],
            num_simulations=args.simulations,
            random_state=None,
            n_jobs=args.n_jobs,
            **extra,
        )
        refutations[name] = _refutation(result)
        refutations[name]["seconds"] = round(time.perf_counter() - t_one, 4)
    seconds["refute"] = time.perf_counter() - t
    seconds["total"] = time.perf_counter() - T_START

    record = {
        "tool": "dowhy",
        "version": dowhy.__version__,
        "rows": int(len(df)),
        "simulations": args.simulations,
        "n_jobs": args.n_jobs,
        "seed": args.seed,
        "estimate": float(estimate.value),
        "refutations": refutations,
        "seconds": {k: round(v, 4) for k, v in seconds.items()},
    }
    sys.stdout.write(json.dumps(record) + "\n")
    sys.stdout.flush()
    return 0


if __name__ == "__main__":
    sys.exit(main())
