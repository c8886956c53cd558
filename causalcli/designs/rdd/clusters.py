"""The clusters of a clustered RD (SPEC v1.1 "Inference with few clusters"): how many the estimate rests on,
whether its cluster-robust (CR1) inference can be trusted, and, when it cannot, the wild cluster bootstrap's.

The counts are of the clusters with a row of positive kernel weight at h on each side, the rows the conventional
estimate and its CR1 variance rest on (the rows rdrobust counts in its own few-clusters warning). Below 42 of them
(or 6 on a side) the p-value and interval come from the restricted wild cluster bootstrap of the robust
bias-corrected t statistic (``rdd.wild``; rdrobust has no few-cluster correction), and ``std_error`` stays the
robust CR1 one; with two clusters or fewer there is no inference.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from typing import TYPE_CHECKING, Any

import numpy as np

from causalcli.inference.few_clusters import (MIN_CLUSTERS, MIN_TREATED_CLUSTERS, WEBB_BELOW, drawn_p,
                                              no_inference_reason, wild_weights, with_wild)
from causalcli.records import Check, Estimate

if TYPE_CHECKING:  # pragma: no cover
    from causalcli.designs.rdd.fitting import RdResult, RdSettings

COUNTS = ("n_clusters, clusters_below and clusters_above count the clusters with at least one row of positive kernel "
          "weight at h (below the cutoff within h_left, at or above it within h_right): the rows of the estimate; "
          "a cluster with rows on both sides counts once in n_clusters and on each side; n_clusters_all counts the "
          "clusters of every row used")


@dataclass(frozen=True)
class ClusterCounts:
    within_h: int   # distinct clusters among the rows with weight at h, both sides together
    below: int      # ... below the cutoff (within h_left)
    above: int      # ... at or above it (within h_right)
    all: int        # among every row used
    rows_within_h: int
    rows_all: int


def count_clusters(result: "RdResult", kernel: str) -> ClusterCounts:
    """The clusters of the rows of a clustered fit, within its h on each side and in all."""
    assert result.split.rows is not None  # a clustered fit keeps its rows
    left, right = result.split.rows
    assert left.clusters is not None and right.clusters is not None
    bw = result.bandwidths
    below = left.clusters[left.window(bw.h_left, kernel)[0]]
    above = right.clusters[right.window(bw.h_right, kernel)[0]]
    every = np.concatenate([left.clusters, right.clusters])
    return ClusterCounts(int(np.unique(np.concatenate([below, above])).size), int(np.unique(below).size),
                         int(np.unique(above).size), int(np.unique(every).size), int(below.size + above.size),
                         int(every.size))


def clustered_inference(result: "RdResult", settings: "RdSettings", column: str, estimate: Estimate,
                        options: Any, seed: int) -> tuple[Estimate, dict[str, Any], Check, list[str]]:
    """The headline with few-cluster inference, ``diagnostics.clusters``, the ``clusters`` check and warnings."""
    counts = count_clusters(result, settings.kernel)
    singletons = counts.within_h == counts.rows_within_h
    diagnostics: dict[str, Any] = {
        "column": column, "n_clusters": counts.within_h, "n_clusters_all": counts.all,
        "clusters_below": counts.below, "clusters_above": counts.above,
        "rows_within_h": counts.rows_within_h, "one_row_per_cluster": singletons,
        "crv1_se": result.fit.se_conventional, "robust_crv1_se": result.fit.se_robust,
        "thresholds": {"clusters": MIN_CLUSTERS, "per_side": MIN_TREATED_CLUSTERS, "webb_weights_below": WEBB_BELOW},
        "counts": COUNTS,
    }
    counted = (f"{counts.within_h:,} clusters of {column!r} within the bandwidth ({counts.below:,} below, "
               f"{counts.above:,} at or above the cutoff; {counts.all:,} in all)")
    warnings: list[str] = []
    plain = ""
    if singletons:
        every = "every row used" if counts.all == counts.rows_all else "every row within the bandwidth"
        plain = (f"{every} has its own value of {column!r} (design.cluster), so each row is its own cluster and the "
                 "CR1 variance is the heteroskedasticity-robust (HC1) one of the fit's residuals, not a clustered "
                 "one: name the column rows share (a user, a school, a county), or drop design.cluster for "
                 "rdrobust's default nearest-neighbour variance; ")
        warnings.append(plain.rstrip("; "))
    if counts.within_h >= MIN_CLUSTERS and min(counts.below, counts.above) >= MIN_TREATED_CLUSTERS:
        diagnostics["method"] = estimate.inference
        return estimate, diagnostics, Check("clusters", True, f"{plain}{counted}: enough for cluster-robust (CR1) "
                                                              f"local-polynomial inference (at least {MIN_CLUSTERS}, "
                                                              f"and {MIN_TREATED_CLUSTERS} on each side)"), warnings
    few = (f"{plain}{counted}, fewer than {MIN_CLUSTERS} (or {MIN_TREATED_CLUSTERS} on a side): cluster-robust "
           "local-polynomial intervals are too narrow with so few clusters (MacKinnon and Webb 2017)")
    reason = no_inference_reason(counts.within_h)
    if reason is not None:
        diagnostics.update(method="none", reason=reason)
        est = replace(estimate, std_error=None, ci_lower=None, ci_upper=None, p_value=None, inference="none")
        return est, diagnostics, Check("clusters", False, f"{few}; no inference is possible: {reason}"), [
            *warnings, f"no standard error, p-value or interval: {reason}"]
    wild = wild_interval(result, settings, options, seed, estimate.conf_level)
    est, said = with_wild(estimate, wild, diagnostics, " (a side of the cutoff may hold a single cluster)")
    if est.p_value is None:
        return est, diagnostics, Check("clusters", False, f"{few}; the wild bootstrap gave no usable draw"), [
            *warnings, *said]
    warnings += said
    p, weights = wild["p_value"], wild["weights"]
    detail = (f"{few}; the p-value ({drawn_p(p, wild['draws'])}) and interval come from the restricted wild cluster bootstrap "
              f"({weights} weights, {wild['draws']:,} {'enumerated ' if wild['enumerated'] else ''}draws over "
              f"{wild['clusters_drawn']} clusters) instead of the CR1 robust t (p = {estimate.p_value:.3g})")
    return est, diagnostics, Check("clusters", None, detail), warnings


def wild_interval(result: "RdResult", settings: "RdSettings", options: Any, seed: int, conf_level: float
                  ) -> dict[str, Any]:
    """The wild cluster bootstrap's p-value of no effect and interval for one fit (``diagnostics.clusters.wild``)."""
    from causalcli.designs.rdd.wild import RdWildBootstrap
    from causalcli.inference.wild import bootstrap_weights

    boot = RdWildBootstrap(result, settings)
    weights = wild_weights(options.wild_weights, boot.G)
    boot.V, enumerated = bootstrap_weights(boot.G, options.draws, np.random.default_rng(seed), weights)
    p = boot.p_value(0.0)
    ci = boot.interval(result.fit.bias_corrected, result.fit.se_robust, conf_level) if p is not None else {}
    wild = {"method": "restricted wild cluster bootstrap of the robust bias-corrected t statistic (rows within "
                      "max(h, b), one weight per cluster); the interval inverts the test",
            "p_value": p, "ci_lower": ci.get("ci_lower"), "ci_upper": ci.get("ci_upper"), "weights": weights,
            "draws": int(boot.V.shape[0]), "enumerated": enumerated, "clusters_drawn": boot.G}
    if ci.get("reason"):
        wild["reason"] = ci["reason"]
    return wild
