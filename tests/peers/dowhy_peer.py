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
    once per refuter, with ``num_simulations=simulations``, ``n_jobs``,
    ``random_state=np.random.RandomState(seed)`` (one fresh generator per refuter),
    ``placebo_type=PlaceboType.PERMUTE`` (the functional API needs the enum: it compares
    ``placebo_type == PlaceboType.PERMUTE``, so the string "permute" that CausalModel
    accepts would silently fall back to random 0/1 placebo data) and
    ``subset_fraction=fraction``. The refuters get the frame that estimation mutated,
    exactly as ``CausalModel.refute_estimate`` passes ``model._data``.

    Returns ``{"dowhy_version", "estimate", "placebo_treatment_refuter", "random_common_cause",
    "data_subset_refuter"}``; each refuter entry holds what DoWhy's CausalRefutation
    carries (``refutation_type``, ``estimated_effect``, ``new_effect``, ``p_value``,
    ``is_statistically_significant``) plus ``test`` (which of DoWhy's two tests its rule
    picked), ``simulations`` (the simulated effects, captured on their way into DoWhy's
    test) and ``n_distinct`` (how many distinct values among them).

    What DoWhy computes
    -------------------
    Each refuter re-runs a deep copy of the fitted estimator ``simulations`` times (joblib,
    ``n_jobs``) on altered data; ``new_effect`` is the plain MEAN of the simulated effects.

    * placebo_treatment_refuter (permute): the treatment column is permuted across rows
      into a new column "placebo" that replaces the treatment; new_effect = mean placebo
      ATT (expected near 0). Its p-value is NOT about the estimate: DoWhy tests the
      value 0 (a dummy estimate hard-coded to zero) against the placebo distribution, so
      it asks "is 0 a plausible draw of the placebo effects?" (py-why/dowhy#159,
      py-why/dowhy#312).
    * random_common_cause: adds ``w_random ~ N(0, 1)`` to the data and to the adjustment
      set, re-estimates; new_effect = mean; the p-value tests the ORIGINAL estimate
      against that distribution.
    * data_subset_refuter: re-estimates on ``data.sample(frac=fraction)`` (without
      replacement); new_effect = mean; the p-value tests the original estimate against it.

    p-value (``dowhy.causal_refuter.test_significance``, test_type "auto"): with >= 100
    simulations a percentile "bootstrap" test, ``p = 2 * min(h, 1 - h)`` where
    ``h = mean(sim > x) + 0.5 * mean(sim == x)`` and x is the tested value (0 for the
    placebo refuter, the estimate otherwise): two-sided, granularity 1/simulations. With
    fewer than 100 a normal approximation: ``z = (x - mean(sim)) / std(sim)`` (ddof 0) and
    ``p = Phi(-|z|)``, a ONE-sided tail that is not doubled, so at 20 simulations the
    0.05 cut is really a two-sided 10% test. ``is_statistically_significant`` is
    ``p_value <= 0.05``; for a refuter "significant" means the estimate FAILS the check
    (py-why/dowhy#312). There is no multiple-testing or Monte Carlo error adjustment.

    Known defects (all present in 0.14, reproduced on NSW-CPS)
    ----------------------------------------------------------
    * Stale propensity column (py-why/dowhy#1728): estimation writes
      "propensity_score" into the frame; every refuter copies that frame, and
      ``fit()`` skips the model when the column exists. So the placebo refuter matches
      the permuted treatment on the ORIGINAL treatment's scores (placebo ATT far from 0
      whenever covariates predict the outcome), the random common cause never enters the
      score (every simulation equals the estimate exactly), and the subset refuter reuses
      full-sample scores. ``refit_propensity=True`` drops the column before refuting
      (what DoWhy's estimator would do on a clean frame); given scores are always reused.
    * Zero-variance simulations: with the stale column, random_common_cause returns the
      estimate 100 times: the bootstrap test gives p = 1.0, the normal test
      ``0/0`` -> p = nan (py-why/dowhy#807); an earlier bootstrap formula gave p = 2.0
      (py-why/dowhy#804).
    * Seeds: an int ``random_state`` is converted to a RandomState by the placebo and
      common-cause refuters (after py-why/dowhy#719) but NOT by data_subset_refuter,
      which passes the int to ``DataFrame.sample`` in every simulation: all subsets are
      the same rows, the "distribution" is one point. With ``n_jobs > 1`` the
      RandomState is pickled into each joblib batch and only the workers' copies
      advance, so batches repeat the same draws and results depend on n_jobs and joblib's
      batching; with ``random_state=None`` draws come from each worker's unseeded global
      RNG and are not reproducible (py-why/dowhy#556, py-why/dowhy#418; seeding was
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
