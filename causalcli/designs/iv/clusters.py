"""Few clusters for instrumental variables (SPEC v1.1, "Inference with few clusters").

With ``design.cluster`` the CRV1 t-test of 2SLS over-rejects when clusters are few (and more so with
weak instruments: Davidson and MacKinnon 2010; Young 2022). Below ``MIN_CLUSTERS`` the p-value and
interval come from the wild restricted efficient bootstrap (``inference.wild_iv``: the test of no
effect, and the interval by inverting it; LIML's k recomputed in every draw), Webb weights below 12
clusters; ``std_error`` stays CRV1. Two clusters or fewer leave no inference.
"""

from __future__ import annotations

from dataclasses import replace
from typing import TYPE_CHECKING, Any

import numpy as np

from causalcli.inference.few_clusters import (MIN_CLUSTERS, WEBB_BELOW, drawn_p, no_inference_reason, wild_weights,
                                              with_wild)
from causalcli.records import Check, Estimate

if TYPE_CHECKING:  # pragma: no cover
    from causalcli.designs.iv.design import IvData


def clustered_inference(d: "IvData", estimate: Estimate, conf_level: float, options: Any,
                        seed: int) -> tuple[Estimate, dict[str, Any], Check, list[str]]:
    """The headline with few-cluster inference, ``diagnostics.clusters``, the ``clusters`` check, warnings."""
    G = d.n_clusters
    diag: dict[str, Any] = {"n_clusters": G, "crv1_se": estimate.std_error,
                            "thresholds": {"clusters": MIN_CLUSTERS, "webb_weights_below": WEBB_BELOW}}
    if G >= MIN_CLUSTERS:
        diag["method"] = estimate.inference
        return estimate, diag, Check("clusters", True, f"{G} clusters: at least {MIN_CLUSTERS}, where clustered "
                                                       "t-tests hold their size (MacKinnon and Webb 2017)"), []
    why = (f"{G} clusters, fewer than {MIN_CLUSTERS}: clustered (CRV1) t-tests of IV estimates over-reject with few "
           "clusters (MacKinnon and Webb 2017; Davidson and MacKinnon 2010)")
    reason = no_inference_reason(G)
    if reason is not None:
        diag.update(method="none", reason=reason, crv1_se=None)
        est = replace(estimate, std_error=None, ci_lower=None, ci_upper=None, p_value=None, inference="none")
        return est, diag, Check("clusters", False, f"no inference is possible: {reason}"), [
            f"no standard error, p-value or interval: {reason}"]
    from causalcli.inference.wild import bootstrap_weights
    from causalcli.inference.wild_iv import WreBootstrap
    from causalcli.runtime.threads import single_threaded_blas

    weights = wild_weights(options.wild_weights, G)
    V, enumerated = bootstrap_weights(G, options.draws, np.random.default_rng(seed), weights)
    # the CRV1 factor scales t and every t* alike: the p-value and the inverted interval do not depend on it
    boot = WreBootstrap(d.y, d.x, d.exog, d.instruments, d.clusters, G, V, liml=d.liml)
    with single_threaded_blas():  # small batched solves
        p = boot.p_value(0.0)
        ci = boot.interval(estimate.value, estimate.std_error, conf_level) if p is not None else {}
    wild = {"method": "wild restricted efficient (WRE) bootstrap, Davidson and MacKinnon (2010); the interval "
                      "inverts the test", "p_value": p, "ci_lower": ci.get("ci_lower"), "ci_upper": ci.get("ci_upper"),
            "weights": weights, "draws": int(V.shape[0]), "enumerated": enumerated}
    if ci.get("reason"):
        wild["reason"] = ci["reason"]
    est, warnings = with_wild(estimate, wild, diag)
    if est.p_value is None:
        return est, diag, Check("clusters", False, f"{why}; the wild bootstrap gave no usable draw"), warnings
    detail = (f"analytic inference cannot be trusted ({why}); the p-value ({drawn_p(p, V.shape[0])}) and interval come from the wild "
              f"restricted efficient bootstrap ({weights} weights, {V.shape[0]} {'enumerated ' if enumerated else ''}"
              f"draws) instead of the CRV1 t (p = {estimate.p_value:.3g})")
    return est, diag, Check("clusters", None, detail), warnings
