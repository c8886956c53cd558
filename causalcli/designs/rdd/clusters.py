"""The clusters of a clustered RD (SPEC v1.1 "Inference with few clusters"): how many the estimate rests on, and
whether its cluster-robust (CR1) inference can be trusted.

The counts are of the clusters with a row of positive kernel weight at h on each side, the rows the conventional
estimate and its CR1 variance rest on (the rows rdrobust counts in its own few-clusters warning). No few-cluster
correction is built: rdrobust has no wild cluster bootstrap (nor is one established for the robust bias-corrected
statistic), and its bias-reduced CR2/CR3 variances (``vce='cr2'``/``'cr3'``) are not built here, so with too few
clusters the check fails and says what to do.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import numpy as np

from causalcli.inference.few_clusters import MIN_CLUSTERS, MIN_TREATED_CLUSTERS
from causalcli.records import Check

if TYPE_CHECKING:  # pragma: no cover
    from causalcli.designs.rdd.fitting import RdResult

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


def clusters_check(counts: ClusterCounts, column: str, crv1_se: float, robust_se: float
                   ) -> tuple[dict[str, Any], Check, list[str]]:
    """``diagnostics.clusters``, the ``clusters`` check and its warnings."""
    singletons = counts.within_h == counts.rows_within_h
    diagnostics = {
        "column": column, "n_clusters": counts.within_h, "n_clusters_all": counts.all,
        "clusters_below": counts.below, "clusters_above": counts.above,
        "rows_within_h": counts.rows_within_h, "one_row_per_cluster": singletons,
        "crv1_se": crv1_se, "robust_crv1_se": robust_se,
        "thresholds": {"clusters": MIN_CLUSTERS, "per_side": MIN_TREATED_CLUSTERS}, "counts": COUNTS,
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
        return diagnostics, Check("clusters", True, f"{plain}{counted}: enough for cluster-robust (CR1) "
                                                    f"local-polynomial inference (at least {MIN_CLUSTERS}, and "
                                                    f"{MIN_TREATED_CLUSTERS} on each side)"), warnings
    detail = (f"{plain}{counted}, fewer than {MIN_CLUSTERS} (or {MIN_TREATED_CLUSTERS} on a side): cluster-robust "
              "local-polynomial intervals are too narrow with so few clusters (MacKinnon and Webb 2017), and no "
              "few-cluster correction is built for rdd (no wild cluster bootstrap, which rdrobust has not either, "
              "nor rdrobust's bias-reduced CR2/CR3 variances): use data with more clusters, a wider "
              "design.options.bandwidth if it takes in more of them, or read the interval as indicative only")
    return diagnostics, Check("clusters", False, detail), warnings
