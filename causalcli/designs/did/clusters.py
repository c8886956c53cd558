"""Inference with few clusters for difference-in-differences (SPEC v1.1, "Inference with few clusters").

CRV1 t(G-1) tests over-reject when clusters are few, and badly when few of them
are treated: with one treated cluster a 5% test can reject half the time
(MacKinnon and Webb 2017; Cameron, Gelbach and Miller 2008; Conley and Taber
2011). The rule here, per estimate:

* ``std_error`` is always the CRV1 standard error;
* at least ``MIN_CLUSTERS`` clusters and ``MIN_TREATED_CLUSTERS`` treated (and as
  many untreated) ones: the CRV1 t(G-1) p-value and interval;
* fewer, with one treated (or one untreated) cluster: randomization inference
  over units (``randomization_inference_units``): the treatment paths are
  reassigned to other units, the estimate recomputed, p = share of assignments
  with an estimate at least as large in absolute value; the interval inverts
  the test of a constant effect tau (Y(0) = Y - tau D), which is exact
  because every estimator here is linear in the outcome;
* otherwise the restricted wild cluster bootstrap (``causalcli.inference.wild``), Webb weights
  below ``WEBB_BELOW`` clusters, Rademacher from there on;
* two clusters or fewer, or no residual degrees of freedom: no standard error,
  p-value or interval (null, with the reason in ``warnings``).

The ``clusters`` check says which applied: passed when the CRV1 inference can
be trusted, null when it cannot but the headline came from the bootstrap or
randomization inference instead, false when no inference is possible at all.

References
----------
MacKinnon, J. G. and Webb, M. D. (2017). Wild bootstrap inference for wildly
different cluster sizes. Journal of Applied Econometrics 32(2), 233-254.
MacKinnon, J. G. and Webb, M. D. (2020). Randomization inference for
difference-in-differences with few treated clusters. Journal of Econometrics
218(2), 435-450.
Conley, T. G. and Taber, C. R. (2011). Inference with "difference in
differences" with a small number of policy changes. REStat 93(1), 113-125.
"""

from __future__ import annotations

import math
from dataclasses import replace
from itertools import combinations
from typing import TYPE_CHECKING, Any, Callable

import numpy as np

from causalcli.errors import CausalcliError
from causalcli.inference.few_clusters import (MIN_CLUSTERS, MIN_TREATED_CLUSTERS, WEBB_BELOW,  # noqa: F401
                                              drawn_p, no_inference_reason, wild_name, wild_weights)
from causalcli.inference.permutation import permutation_p_value, smallest_permutation_p
from causalcli.records import Check, Estimate

if TYPE_CHECKING:  # pragma: no cover
    from causalcli.designs.did.panel import PanelData

RI = "randomization_inference_units"
RI_ROW_BUDGET = 1e8        # randomization inference: assignments x rows refitted, about 10-20 s

CRV1 = "crv1_fixest"
NONE = "none"


def cluster_counts(p: "PanelData") -> tuple[int, int]:
    """(treated clusters, untreated clusters): a cluster is treated when any of its units ever is."""
    if p.cells is not None:  # cohort x period cells, clustered by unit
        return p.cells.treated_units, p.n_clusters - p.cells.treated_units
    if p.d is not None:
        ever = np.zeros(p.n_units, dtype=bool)
        ever[p.unit[p.d > 0]] = True
    else:
        ever = p.g >= 0
    treated = np.zeros(p.n_clusters, dtype=bool)
    treated[p.cluster[ever[p.unit]]] = True
    t = int(treated.sum())
    return t, p.n_clusters - t


def choose(p: "PanelData", n_clusters: int, treated: int, untreated: int, forced_wild: bool,
           on_off: bool, rows: bool = False) -> tuple[str, str]:
    """(method, why) for the headline p-value and interval: "crv1", "wild" or "randomization". ``rows``: repeated
    cross-sections without design.cluster, each row its own observation (HC1, CRV1 with one-row clusters), so the
    words count rows of the treated and comparison groups, and the t-tests are HC1's."""
    few = min(treated, untreated)
    if rows:
        what = f"{n_clusters} rows, {treated} in the treated group and {untreated} in the comparison group"
        noun, analytic, each, either = "rows", "HC1", "in each group", "in either group"
    else:
        what = f"{n_clusters} clusters, {treated} treated and {untreated} untreated"
        noun, analytic, each, either = "clusters", "CRV1", "treated and untreated ones", "treated (or untreated) ones"
    if n_clusters >= MIN_CLUSTERS and few >= MIN_TREATED_CLUSTERS:
        if forced_wild:
            return "wild", "options.bootstrap: wild"
        return "crv1", (f"{what}: at least {MIN_CLUSTERS} {noun} and {MIN_TREATED_CLUSTERS} {each}, where "
                        f"{analytic} t-tests hold their size (MacKinnon and Webb 2017)")
    side = "treated" if treated <= untreated else "untreated"
    why = (f"{what}: {analytic} t-tests over-reject with fewer than {MIN_CLUSTERS} {noun} or fewer than "
           f"{MIN_TREATED_CLUSTERS} {either} (MacKinnon and Webb 2017; Cameron, Gelbach and Miller 2008)")
    if few == 1 and not on_off:
        return "randomization", (why + f"; with one {side} {noun[:-1]} the wild bootstrap fails too, so the p-value "
                                 f"and interval come from randomization inference over {'rows' if rows else 'units'} "
                                 "(Conley and Taber 2011; MacKinnon and Webb 2020)")
    return "wild", why


# ---------------------------------------------------------------- randomization inference over units


def assignments(g: np.ndarray, draws: int, rng: np.random.Generator) -> tuple[list[np.ndarray], bool]:
    """Placebo treatment paths: every way to give the treated units' paths to other units when there are at most
    ``draws`` of them (enumerated, the actual one included), else ``draws`` random permutations (actual excluded)."""
    treated = np.flatnonzero(g >= 0)
    k, n = treated.size, g.size
    values = np.unique(g[treated])
    if values.size == 1 and math.comb(n, k) <= draws:
        out = []
        for combo in combinations(range(n), k):
            gp = np.full(n, -1, dtype=g.dtype)
            gp[list(combo)] = values[0]
            out.append(gp)
        return out, True
    out = []
    for _ in range(draws):
        gp = rng.permutation(g)
        if not np.array_equal(gp, g):
            out.append(gp)
    return out, False


def randomization_inference(p: "PanelData", point: Callable[..., float], estimate: float, conf_level: float,
                            draws: int, seed: int) -> dict[str, Any]:
    """Randomization inference over units for the estimate ``point(p, treatment=g)`` (linear in ``p.y``).

    Under H0: effect = tau for every treated unit-period, Y(0) = y - tau D, and the placebo estimate of an
    assignment is b - tau c, with b = point(y, assignment) and c = point(D, assignment); the observed one is
    estimate - tau c0 (c0 = 1 up to rounding). p(tau) = share of assignments with |b - tau c| >= |estimate - tau c0|
    (enumerated: the actual assignment counts as one of them; sampled: (1 + count) / (1 + draws)). The interval
    is {tau : p(tau) > 1 - conf_level}, from the breakpoints where an inequality flips.
    """
    rng = np.random.default_rng(np.random.SeedSequence([seed, 0x5249]))
    # each assignment costs two fits over every row: a large panel gets fewer random assignments (at least 99),
    # so that the whole takes about as long as 1e8 rows of fitting
    budget = max(99, min(draws, int(RI_ROW_BUDGET // max(p.y.size, 1))))
    gr = p.g[p.unit]
    D = ((gr >= 0) & (p.time >= gr)).astype(np.float64)
    pD = replace(p, y=D)
    c0 = point(pD, treatment=p.g)
    plans, enumerated = assignments(p.g, budget, rng)
    b, c = [], []
    failed = 0
    for gp in plans:
        if enumerated and np.array_equal(gp, p.g):
            b.append(estimate)
            c.append(c0)
            continue
        try:
            bi, ci = point(p, treatment=gp), point(pD, treatment=gp)
        except (CausalcliError, np.linalg.LinAlgError):
            failed += 1
            continue
        if np.isfinite(bi) and np.isfinite(ci):
            b.append(bi)
            c.append(ci)
        else:
            failed += 1
    bv, cv = np.asarray(b), np.asarray(c)
    m = bv.size
    out: dict[str, Any] = {"assignments": int(m), "enumerated": enumerated, "statistic": "the estimate itself",
                           "failed_assignments": failed, "ci_lower": None, "ci_upper": None}
    if budget < draws and not enumerated:
        out["note"] = (f"{budget} random assignments instead of draws = {draws}: each one refits the "
                       f"{p.y.size:,} rows twice")
    if m == 0:
        out.update(p_value=None, reason="no placebo assignment could be estimated")
        return out

    def p_of(tau: np.ndarray) -> np.ndarray:
        obs = np.abs(estimate - tau * c0)
        extreme = np.abs(bv[None, :] - tau[:, None] * cv[None, :]) >= obs[:, None] * (1 - 1e-9) - 1e-12 * (
            1 + np.abs(obs[:, None]))
        count = extreme.sum(axis=1)
        return permutation_p_value(count, m, actual_included=enumerated)

    out["p_value"] = float(p_of(np.array([0.0]))[0])
    alpha = 1 - conf_level
    smallest = smallest_permutation_p(m, actual_included=enumerated)
    out["smallest_attainable_p"] = smallest
    if smallest > alpha:
        out["reason"] = (f"no interval: with {m} assignments the smallest attainable p-value is {smallest:.3g}, "
                         f"above {alpha:.3g}, so no effect can be rejected at the {conf_level:.0%} level")
        return out
    with np.errstate(divide="ignore", invalid="ignore"):
        cuts = np.concatenate([(bv - estimate) / (cv - c0), (bv + estimate) / (cv + c0)])
    cuts = np.unique(cuts[np.isfinite(cuts)])
    span = max(1.0, float(np.max(np.abs(cuts))) if cuts.size else 1.0, abs(estimate))
    if cuts.size == 0:
        out["reason"] = "no interval: the placebo estimates do not depend on the effect"
        return out
    mids = np.concatenate([[cuts[0] - span], (cuts[:-1] + cuts[1:]) / 2, [cuts[-1] + span]])
    acc = p_of(mids) > alpha
    if acc[0] or acc[-1]:
        out["reason"] = ("no interval: the randomization test does not reject arbitrarily large effects (the "
                         "placebo estimates move with the effect as much as the actual one), so the set of "
                         "effects it accepts is unbounded")
        return out
    if not acc.any():
        out["reason"] = "no interval: the test rejects every constant effect"
        return out
    idx = np.flatnonzero(acc)
    lo, hi = float(cuts[idx[0] - 1]), float(cuts[idx[-1]])
    out.update(ci_lower=lo, ci_upper=hi, interval="inverted test of a constant effect (hull of the accepted set)",
               accepted_set_is_interval=bool(np.all(acc[idx[0]:idx[-1] + 1])))
    return out


# ---------------------------------------------------------------- the headline, the diagnostic and the check


def apply(p: "PanelData", *, estimate: Estimate, n_obs: int | None, k: int | None, conf_level: float, draws: int,
          seed: int, wild: Callable[[str], dict[str, Any]] | None, point: Callable[..., float] | None,
          analytic_name: str, unit_level: bool = False) -> tuple[Estimate, dict[str, Any], Check, list[str]]:
    """The headline estimate with few-cluster inference, ``diagnostics.clusters``, the ``clusters`` check, warnings.

    ``estimate`` carries the analytic (CRV1, or Callaway-Sant'Anna's) SE, p-value and interval; ``wild(weights)``
    runs the wild cluster bootstrap of the headline contrast (None where it does not apply); ``point`` recomputes
    the estimate for a placebo assignment (randomization inference).
    """
    G = p.n_units if unit_level else p.n_clusters
    # repeated cross-sections without design.cluster: no clusters, each row its own observation (HC1)
    rows = not unit_level and p.hc1
    what = "units" if unit_level else "rows" if rows else "clusters"
    if unit_level:
        treated = int((p.g >= 0).sum())
        untreated = p.n_units - treated
    else:
        treated, untreated = cluster_counts(p)
    diag: dict[str, Any] = {"n_clusters": G, "cluster": "unit (Callaway-Sant'Anna's influence function)" if unit_level
                            else p.cluster_name, "treated_clusters": treated, "untreated_clusters": untreated,
                            "crv1_se" if not unit_level else "analytic_se": estimate.std_error,
                            "thresholds": {"clusters": MIN_CLUSTERS, "treated_clusters": MIN_TREATED_CLUSTERS,
                                           "webb_weights_below": WEBB_BELOW}}
    warnings: list[str] = []
    if treated == 1:
        one = what[:-1]
        warnings.append(f"one treated {one} "
                        f"({_treated_label(p, unit_level)}): the effect rests on a single "
                        f"{one}, whose own shocks cannot be told apart from the "
                        "treatment; the clusters check says how the p-value was computed, or why there is none")
    elif (p.cells.treated_units if p.cells is not None else int((p.g >= 0).sum())) == 1:
        warnings.append("one treated unit: the effect rests on a single unit, whose own shocks cannot be told apart "
                        "from the treatment")
    reason = no_inference_reason(G, n_obs, k, what)
    from causalcli.inference.estimate import normal_estimate, unusable_se_reason

    se_reason = unusable_se_reason(estimate.std_error, estimate.value)
    if reason is None and se_reason is not None:
        reason = se_reason
    if reason is not None:
        est = normal_estimate(estimate.value, None, conf_level, NONE, estimate.label)
        diag["method"] = NONE
        diag["reason"] = reason
        diag["crv1_se" if not unit_level else "analytic_se"] = None
        warnings.append(f"no standard error, p-value or interval: {reason}")
        return est, diag, Check("clusters", False, f"no inference is possible: {reason}"), warnings
    forced = p.options.bootstrap == "wild" and not unit_level
    method, why = choose(p, G, treated, untreated, forced, p.d is not None, rows)
    if unit_level and method == "wild":
        method = "randomization"  # no wild bootstrap for Callaway-Sant'Anna: permute units instead
        why += "; Callaway-Sant'Anna's p-value and interval come from randomization inference over units"
    elif method == "wild" and wild is None:  # imputation, Sun-Abraham: no wild bootstrap built, permute units
        method = "randomization"
        why += (f"; no wild bootstrap is built for estimator: {p.estimator}, so its p-value and interval come "
                "from randomization inference over units")
    weights = wild_weights(p.options.wild_weights, G)
    wild_res = None
    if wild is not None and (method == "wild" or (method == "randomization" and G < MIN_CLUSTERS)):
        wild_res = wild(weights)
        diag["wild"] = wild_res
    if method == "crv1":
        diag["method"] = analytic_name
        if rows:  # a check about clusters, where there are none: it does not apply (HC1 holds its size here)
            return estimate, diag, Check("clusters", None, (
                "does not apply: no clusters (no design.unit nor design.cluster), each row its own observation and "
                f"heteroskedasticity-robust (HC1) standard errors; the few-clusters rule read with one-row clusters "
                f"holds: {why}")), warnings
        return estimate, diag, Check("clusters", True, f"analytic inference can be trusted: {why}"), warnings
    if method == "wild":
        assert wild_res is not None
        if wild_res["p_value"] is None:
            diag["method"] = NONE
            warnings.append("no p-value or interval: the wild cluster bootstrap gave no usable draw")
            est = replace(estimate, ci_lower=None, ci_upper=None, p_value=None, inference=NONE)
            return est, diag, Check("clusters", False, f"{why}; the wild bootstrap gave no usable draw"), warnings
        name = wild_name(weights)
        diag["method"] = name
        est = replace(estimate, ci_lower=wild_res["ci_lower"], ci_upper=wild_res["ci_upper"],
                      p_value=wild_res["p_value"], inference=name)
        detail = (f"analytic inference cannot be trusted ({why}); the p-value ({drawn_p(wild_res['p_value'], wild_res['draws'])}) and "
                  f"interval come from the wild cluster bootstrap (restricted, {weights} weights, "
                  f"{wild_res['draws']} {'enumerated ' if wild_res['enumerated'] else ''}draws) instead of "
                  f"{'HC1' if rows else 'CRV1'} t "
                  f"(p = {_fmt_p(estimate.p_value)})")
        return est, diag, Check("clusters", None, detail), warnings
    # randomization inference over units
    assert point is not None
    ri = randomization_inference(p, point, estimate.value, conf_level, draws, seed)
    diag["randomization"] = ri
    diag["method"] = RI
    if ri["p_value"] is None:
        est = replace(estimate, ci_lower=None, ci_upper=None, p_value=None, inference=RI)
        warnings.append(f"no p-value or interval: {ri['reason']}")
        return est, diag, Check("clusters", False, f"{why}; {ri['reason']}"), warnings
    est = replace(estimate, ci_lower=ri["ci_lower"], ci_upper=ri["ci_upper"], p_value=ri["p_value"], inference=RI)
    if ri["ci_lower"] is None:
        warnings.append(f"no interval from randomization inference: {ri['reason']}")
    detail = (f"analytic inference cannot be trusted ({why}); randomization p = {ri['p_value']:.3g} over "
              f"{ri['assignments']} {'(all) ' if ri['enumerated'] else 'random '}assignments, against "
              f"{'analytic' if unit_level else 'HC1 t' if rows else 'CRV1 t'} p = {_fmt_p(estimate.p_value)}"
              + (f" and wild bootstrap ({weights}) p = {_fmt_p(wild_res['p_value'])}" if wild_res else ""))
    return est, diag, Check("clusters", None, detail), warnings


def _fmt_p(p: float | None) -> str:
    return "n/a" if p is None else f"{p:.3g}"


def _treated_label(p: "PanelData", unit_level: bool) -> str:
    from causalcli.designs.did.panel import show

    units = np.flatnonzero(p.g >= 0) if p.d is None else np.unique(p.unit[p.d > 0])
    if units.size == 0:
        return "?"
    first = show(p.unit_labels[units[0]])
    if unit_level or (p.n_clusters == p.n_units and np.array_equal(p.cluster, p.unit)):
        return first
    return f"holding unit {first}"
