"""DoWhy 0.14 as a peer: its propensity-score-matching ATT and three refuters.

Plain functions, no tests here. DoWhy (and sklearn, joblib, networkx) are imported
inside the functions so that importing this module stays cheap.

What DoWhy 0.14's ``backdoor.propensity_score_matching`` computes (read from
``dowhy/causal_estimators/propensity_score_{estimator,matching_estimator}.py``):

* Propensity model: if the frame has no column named ``propensity_score_column``
  (default ``"propensity_score"``), ``sklearn.linear_model.LogisticRegression()`` with
  sklearn defaults (L2 penalty, C=1.0, lbfgs, max_iter=100, intercept) is fitted on the
  raw, unscaled adjustment-set columns (categoricals one-hot encoded, numerics as is);
  ``predict_proba[:, 1]`` is then WRITTEN INTO THE CALLER'S FRAME as that column.
  If the column already exists, no model is fitted and the column is used as the score.
  That is the documented way to pass given scores: ``propensity_score_column=<name>``.
* ATT: for each treated unit, the single nearest control on the score
  (``NearestNeighbors(n_neighbors=1, algorithm="ball_tree")`` on the 1-d score), with
  replacement, no caliper, ties broken arbitrarily by the tree (one control kept, tied
  controls are not averaged); ATT = mean over treated of (y_treated - y_matched_control).
  No standard error unless bootstrap CIs are requested.
* On the NSW-CPS data the default model does not converge (lbfgs stops at 100
  iterations on dollar-scaled re74/re75), so the fitted scores, and the ATT, depend on
  the column order of the adjustment set. DoWhy builds that set through a Python
  ``set``, so its order, and DoWhy's estimate, change with PYTHONHASHSEED from one
  process to the next (749 to 1,717 over hash seeds 0-5; related reports:
  py-why/dowhy#556, py-why/dowhy#418). ``dowhy_psm_att`` therefore pins the adjustment
  set to the order of ``covariates`` so the peer is reproducible.
"""

from __future__ import annotations

from contextlib import contextmanager
from typing import Any, Iterator, Sequence

import numpy as np
import pandas as pd

#: Column we put given propensity scores in (must not clash with DoWhy's default name).
GIVEN_PS_COLUMN = "_peer_given_propensity"
#: DoWhy's default propensity column, which its estimator writes into the frame.
DOWHY_PS_COLUMN = "propensity_score"

REFUTERS = ("placebo_treatment_refuter", "random_common_cause", "data_subset_refuter")


def _default_graph(treatment: str, outcome: str, covariates: Sequence[str]):
    import networkx as nx

    graph = nx.DiGraph()
    graph.add_nodes_from([treatment, outcome, *covariates])
    graph.add_edge(treatment, outcome)
    for c in covariates:
        graph.add_edge(c, treatment)
        graph.add_edge(c, outcome)
    return graph


def _fit_psm(
    df: pd.DataFrame,
    treatment: str,
    outcome: str,
    covariates: Sequence[str],
    propensity: Any = None,
    fix_order: bool = True,
):
    """Identify, build and run DoWhy's PSM ATT; return (data, estimand, estimate).

    ``data`` is the working frame DoWhy has mutated: after the call it holds the
    propensity column (DoWhy's own fitted one, or the given scores). DoWhy's refuters
    receive exactly this frame, as CausalModel.refute_estimate does with model._data.
    """
    from dowhy.causal_estimator import estimate_effect
    from dowhy.causal_estimators.propensity_score_matching_estimator import (
        PropensityScoreMatchingEstimator,
    )
    from dowhy.causal_identifier import identify_effect

    covariates = list(covariates)
    for name in (GIVEN_PS_COLUMN, DOWHY_PS_COLUMN):
        if name in (treatment, outcome, *covariates):
            raise ValueError(f"column name {name!r} is reserved by the DoWhy peer")
    data = df[[treatment, outcome, *covariates]].copy()

    estimand = identify_effect(
        _default_graph(treatment, outcome, covariates),
        action_nodes=treatment,
        outcome_nodes=outcome,
        observed_nodes=[treatment, outcome, *covariates],
    )
    estimand.set_identifier_method("backdoor")
    found = list(estimand.get_backdoor_variables())
    if set(found) != set(covariates):
        raise AssertionError(f"DoWhy's backdoor set {found} != covariates {covariates}")
    if fix_order:
        # Same set, caller's order: removes the PYTHONHASHSEED dependence (see module doc).
        estimand.set_backdoor_variables(covariates)

    kwargs: dict[str, Any] = {}
    if propensity is not None:
        scores = np.asarray(propensity, dtype=float).reshape(-1)
        if scores.shape[0] != len(data):
            raise ValueError(f"{scores.shape[0]} propensity scores for {len(data)} rows")
        data[GIVEN_PS_COLUMN] = scores
        # Column present => fit() skips the model and estimate_effect() uses it as is.
        kwargs["propensity_score_column"] = GIVEN_PS_COLUMN
    estimator = PropensityScoreMatchingEstimator(estimand, **kwargs)
    estimate = estimate_effect(
        data,
        treatment,
        outcome,
        "backdoor",
        estimator,
        control_value=0,
        treatment_value=1,
        target_units="att",
        method_params={},  # None would crash: `"fit_params" in None`
    )
    return data, estimand, estimate


def dowhy_psm_att(
    df: pd.DataFrame,
    treatment: str,
    outcome: str,
    covariates: Sequence[str],
    *,
    propensity: Any = None,
    seed: int = 0,
) -> float:
    """DoWhy 0.14's propensity-score-matching ATT with the default graph.

    Functional API: ``dowhy.causal_identifier.identify_effect`` on the graph
    {every covariate -> treatment, every covariate -> outcome, treatment -> outcome},
    ``PropensityScoreMatchingEstimator`` and ``dowhy.causal_estimator.estimate_effect``
    with ``target_units="att"``.

    * ``propensity=None``: DoWhy's default model, ``LogisticRegression()`` with sklearn
      defaults (L2, C=1, lbfgs, max_iter=100) on the raw covariates, in the order given
      by ``covariates`` (DoWhy's own order is hash-seed dependent; see module doc).
      On NSW-CPS it stops unconverged and gives an ATT of about 1,770 for the column
      order age, educ, black, hisp, marr, nodegree, re74, re75, but anywhere from about
      -530 to 2,800 (median 1,240) over other orders.
    * ``propensity=<array of n scores>``: the scores are put in a column and passed via
      ``propensity_score_column``; DoWhy then fits no model and matches on them.

    The matching is 1-NN with replacement on the score, no caliper, one control per
    treated unit even when several are tied. ``seed`` is accepted for signature parity
    and seeds numpy's global RNG; nothing in this estimator draws random numbers (the
    lbfgs fit and the ball-tree search are deterministic for a fixed row order, but
    tie-breaking depends on the row order).

    The caller's ``df`` is not modified (DoWhy mutates a private copy).
    """
    np.random.seed(seed)
    _, _, estimate = _fit_psm(df, treatment, outcome, covariates, propensity)
    return float(estimate.value)


@contextmanager
def _capture_simulations(store: dict[str, list[float]]) -> Iterator[None]:
    """Record the simulated effects each refuter hands to ``test_significance``.

    DoWhy computes them but does not return them; wrapping the module-level name
    does not change any result.
    """
    import dowhy.causal_refuters.data_subset_refuter as subset_mod
    import dowhy.causal_refuters.placebo_treatment_refuter as placebo_mod
    import dowhy.causal_refuters.random_common_cause as rcc_mod

    modules = {
        "placebo_treatment_refuter": placebo_mod,
        "random_common_cause": rcc_mod,
        "data_subset_refuter": subset_mod,
    }
    originals = {name: mod.test_significance for name, mod in modules.items()}

    def wrap(name, original):
        def recorded(estimate, simulations, *args, **kwargs):
            store[name] = [float(x) for x in np.asarray(simulations, dtype=float)]
            return original(estimate, simulations, *args, **kwargs)

        return recorded

    for name, mod in modules.items():
        mod.test_significance = wrap(name, originals[name])
    try:
        yield
    finally:
        for name, mod in modules.items():
            mod.test_significance = originals[name]


def dowhy_refutations(
    df: pd.DataFrame,
    treatment: str,
    outcome: str,
    covariates: Sequence[str],
    *,
    simulations: int = 100,
    fraction: float = 0.8,
    n_jobs: int = 1,
    seed: int = 0,
    propensity: Any = None,
    refit_propensity: bool = False,
    seeding: str = "global",
) -> dict:
    """Run DoWhy 0.14's placebo, random-common-cause and data-subset refuters on the PSM ATT.

    Calls ``dowhy.causal_refuters.refute_estimate.refute_estimate`` (the functional API)
    once per refuter with ``num_simulations=simulations``, ``n_jobs`` and
    ``placebo_type=PlaceboType.PERMUTE`` / ``subset_fraction=fraction``. The functional
    API needs the enum: it compares ``placebo_type == PlaceboType.PERMUTE``, so the string
    "permute" (fine for CausalModel) silently falls back to random 0/1 placebo data.
    The refuters get the frame that estimation mutated, exactly as
    ``CausalModel.refute_estimate`` passes ``model._data`` (see the stale-column defect).

    ``seeding="global"`` (default) does what CausalModel's documented ``random_seed=``
    does: ``np.random.seed(seed)`` in this process before each refuter and
    ``random_state=None``. Reproducible with ``n_jobs=1``; with ``n_jobs > 1`` the loky
    workers draw from their own unseeded global RNGs: valid, distinct draws, but not
    reproducible. ``seeding="random_state"`` passes ``np.random.RandomState(seed)``
    (identical numbers to "global" at ``n_jobs=1``; degenerate at ``n_jobs > 1``, below).
    ``refit_propensity=True`` drops DoWhy's stale propensity column before refuting.

    Returns ``{"dowhy_version", "estimate", "placebo_treatment_refuter",
    "random_common_cause", "data_subset_refuter"}``; each refuter entry holds what DoWhy's
    CausalRefutation carries (``refutation_type``, ``estimated_effect``, ``new_effect``,
    ``p_value``, ``is_statistically_significant``) plus ``test`` (which of DoWhy's two
    tests its rule picked), ``simulations`` (the simulated effects, captured on their way
    into DoWhy's test) and ``n_distinct`` (number of distinct simulated values).

    What DoWhy computes
    -------------------
    Each refuter re-runs a deep copy of the fitted estimator ``simulations`` times (joblib,
    ``n_jobs``) on altered data; ``new_effect`` is the plain MEAN of the simulated effects
    (no median, no spread is returned).

    * placebo_treatment_refuter (permute): a row permutation of the treatment becomes a
      new column "placebo" that replaces the treatment; new_effect = mean placebo ATT
      (expected near 0). Its p-value is NOT about the estimate: DoWhy tests a dummy
      estimate hard-coded to 0 against the placebo distribution, i.e. "is 0 a plausible
      draw of the placebo effects?" (py-why/dowhy#159, py-why/dowhy#312). A large
      estimate can never make it fail; only a placebo distribution away from 0 can.
    * random_common_cause: adds ``w_random ~ N(0, 1)`` to the data and to the adjustment
      set and re-estimates; new_effect = mean; the p-value tests the ORIGINAL estimate
      against that distribution.
    * data_subset_refuter: re-estimates on ``data.sample(frac=fraction)`` (rows without
      replacement); new_effect = mean; the p-value tests the original estimate against it.

    p-value (``dowhy.causal_refuter.test_significance``, test_type "auto"): with >= 100
    simulations a percentile ("bootstrap") test, ``p = 2 * min(h, 1 - h)`` with
    ``h = mean(sim > x) + 0.5 * mean(sim == x)``, x the tested value (0 for the placebo
    refuter, the estimate otherwise): two-sided, in steps of 1/simulations. With fewer
    than 100 a normal approximation: ``z = (x - mean(sim)) / std(sim)`` (ddof 0) and
    ``p = Phi(-|z|)``, a ONE-sided tail that is not doubled, so below 100 simulations the
    0.05 cut is a two-sided 10% test. ``is_statistically_significant`` is
    ``p_value <= 0.05`` and for a refuter means the estimate FAILS the check
    (py-why/dowhy#312, py-why/dowhy#367). No multiple-testing or Monte Carlo adjustment.

    Known defects (present in 0.14, reproduced on NSW-CPS)
    ------------------------------------------------------
    * Stale propensity column (py-why/dowhy#1728): estimation writes "propensity_score"
      into the frame; the refuters copy that frame and ``fit()`` skips the model when the
      column exists. The placebo refuter then matches the permuted treatment on the
      ORIGINAL treatment's scores (for IPW that biases the placebo effect, #1728; for 1-NN
      matching the placebo mean stays near 0 here), the random common cause never enters
      the score (all simulations equal the estimate exactly), and the subset refuter
      reuses full-sample scores. With ``refit_propensity=True`` random_common_cause moves
      (mean about 1,080 vs 1,770 at 100 simulations, p = 0.08) because the unconverged
      default logit changes with any added column.
    * Zero-variance simulations: with the stale column random_common_cause returns the
      estimate every time: the bootstrap test gives p = 1.0, the normal test computes
      0/0 and p = nan (py-why/dowhy#807); an older bootstrap formula gave p = 2.0
      (py-why/dowhy#804).
    * Seeds: an int ``random_state`` is turned into a RandomState by the placebo and
      common-cause refuters (py-why/dowhy#719) but NOT by data_subset_refuter, which
      passes the int to ``DataFrame.sample`` in every simulation: every subset is the same
      rows (here 20 x -738.4, p = 0.0, "fails"). With ``n_jobs > 1`` a RandomState is
      pickled into each joblib batch and only the workers' copies advance, so batches
      repeat the same draws (measured: 8-16 distinct values out of 100, changing from run
      to run with joblib's batching; at 20 simulations the placebo gave 20 identical
      values and p = 0.0). With ``random_state=None`` draws come from each worker's
      unseeded RNG: not reproducible (py-why/dowhy#556, py-why/dowhy#418; seeding is
      being added refuter by refuter, py-why/dowhy#1557, py-why/dowhy#1571).
    * The estimate itself depends on PYTHONHASHSEED when the default propensity model
      does not converge (see module doc); pinned here by ``covariates`` order.
    """
    import dowhy
    from dowhy.causal_refuters.data_subset_refuter import refute_data_subset
    from dowhy.causal_refuters.placebo_treatment_refuter import (
        PlaceboType,
        refute_placebo_treatment,
    )
    from dowhy.causal_refuters.random_common_cause import refute_random_common_cause
    from dowhy.causal_refuters.refute_estimate import refute_estimate

    if seeding == "global":
        # CausalModel.refute_estimate(..., random_seed=seed): np.random.seed in this
        # process, random_state=None, so draws come from numpy's global RNG.
        def random_state():
            return None
    elif seeding == "random_state":
        def random_state():
            return np.random.RandomState(seed)
    else:
        raise ValueError(f"seeding must be 'global' or 'random_state', not {seeding!r}")

    data, estimand, estimate = _fit_psm(df, treatment, outcome, covariates, propensity)
    if refit_propensity and DOWHY_PS_COLUMN in data.columns:
        data = data.drop(columns=[DOWHY_PS_COLUMN])

    plans = {
        "placebo_treatment_refuter": (
            refute_placebo_treatment,
            {"treatment_names": [treatment], "placebo_type": PlaceboType.PERMUTE},
        ),
        "random_common_cause": (refute_random_common_cause, {}),
        "data_subset_refuter": (refute_data_subset, {"subset_fraction": fraction}),
    }
    out: dict[str, Any] = {"dowhy_version": dowhy.__version__, "estimate": float(estimate.value)}
    captured: dict[str, list[float]] = {}
    with _capture_simulations(captured):
        for name, (refuter, extra) in plans.items():
            if seeding == "global":
                np.random.seed(seed)  # re-seeded per refuter, as random_seed= does per call
            (result,) = refute_estimate(
                data,
                estimand,
                estimate,
                treatment_name=treatment,
                outcome_name=outcome,
                refuters=[refuter],
                num_simulations=simulations,
                random_state=random_state(),
                n_jobs=n_jobs,
                **extra,
            )
            sig = result.refutation_result or {}
            sims = captured.get(name, [])
            out[name] = {
                "refutation_type": result.refutation_type,
                "estimated_effect": float(result.estimated_effect),
                "new_effect": float(result.new_effect),
                "p_value": float(sig.get("p_value", float("nan"))),
                "is_statistically_significant": bool(sig.get("is_statistically_significant")),
                "test": "bootstrap" if len(sims) >= 100 else "normal",
                "simulations": sims,
                "n_distinct": len(set(sims)),
            }
    return out
