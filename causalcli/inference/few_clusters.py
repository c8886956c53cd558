"""Inference with few clusters, shared by the designs that cluster (SPEC v1.1, "Inference with few clusters").

CRV1 t-tests over-reject when clusters are few, and badly when few of them are
treated (MacKinnon and Webb 2017; Cameron, Gelbach and Miller 2008; Conley and
Taber 2011). Here: the thresholds, the wild bootstrap's weights and name, and
the reason no inference is possible.
"""

from __future__ import annotations

MIN_CLUSTERS = 42          # MacKinnon and Webb (2017): CRV1 t-tests are reliable from about 42 balanced clusters
MIN_TREATED_CLUSTERS = 6   # ... and over-reject with fewer than about 6 treated (or untreated) clusters
WEBB_BELOW = 12            # Webb weights below 12 clusters (2^G Rademacher draws are too few to resolve p)


def wild_name(weights: str) -> str:
    return f"wild_cluster_bootstrap_{weights}"


def drawn_p(p: float, draws: int) -> str:
    """A bootstrap p-value in a sentence: its value, or, when no draw was as extreme, that it is below one draw's
    share ('0' read as a certainty)."""
    return f"{p:.3g}" if p > 0 else f"below 1/{draws:,}: no draw of {draws:,} was as extreme"


def wild_weights(option: str, n_clusters: int) -> str:
    if option != "auto":
        return option
    return "webb" if n_clusters < WEBB_BELOW else "rademacher"


def no_inference_reason(n_clusters: int, n: int | None = None, k: int | None = None,
                        what: str = "clusters") -> str | None:
    if n_clusters <= 2:
        return (f"{n_clusters} {what}: the clustered variance has at most one degree of freedom and, with two "
                "clusters, the scores of the two clusters cancel, so the CRV1 standard error is zero or "
                "meaningless and no bootstrap or permutation of two clusters can give a p-value below 0.5")
    if n is not None and k is not None and n - k <= 0:
        return (f"no residual degrees of freedom: {n} observations for {k} parameters (coefficients and fixed "
                "effects), so the fit is exact and there is no variation left to measure uncertainty from")
    return None
