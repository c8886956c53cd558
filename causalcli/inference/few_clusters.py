"""Inference with few clusters, shared by the designs that cluster (SPEC v1.1, "Inference with few clusters").

CRV1 t-tests over-reject when clusters are few, and badly when few of them are
treated (MacKinnon and Webb 2017; Cameron, Gelbach and Miller 2008; Conley and
Taber 2011). Here: the thresholds, the wild bootstrap's weights and name, and
the reason no inference is possible.
"""

from __future__ import annotations

from dataclasses import replace
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:  # pragma: no cover
    from causalcli.records import Estimate

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


def with_wild(estimate: "Estimate", wild: dict[str, Any], diagnostics: dict[str, Any],
              no_draw: str = "") -> tuple["Estimate", list[str]]:
    """The headline with the wild bootstrap's p-value and interval (``std_error`` stays the analytic one), the
    analytic numbers kept in ``diagnostics.analytic``; with no usable draw, no p-value or interval at all.
    ``wild``: ``p_value``, ``ci_lower``, ``ci_upper``, ``weights`` and, when the interval is missing, ``reason``;
    ``no_draw``: what may have caused no usable draw, for the warning."""
    name = wild_name(wild["weights"])
    diagnostics.update(method=name, wild=wild)
    if wild["p_value"] is None:
        diagnostics["method"] = "none"
        return replace(estimate, ci_lower=None, ci_upper=None, p_value=None, inference="none"), [
            f"no p-value or interval: the wild bootstrap gave no usable draw{no_draw}"]
    warnings = [] if wild["ci_lower"] is not None else [f"no interval from the wild bootstrap: {wild.get('reason')}"]
    diagnostics["analytic"] = {"p_value": estimate.p_value, "ci_lower": estimate.ci_lower,
                               "ci_upper": estimate.ci_upper, "inference": estimate.inference}
    return replace(estimate, p_value=wild["p_value"], ci_lower=wild["ci_lower"], ci_upper=wild["ci_upper"],
                   inference=f"{estimate.inference}+{name}"), warnings
