"""Instrumental variables' effects by segment (the top-level ``segments`` key), their correction and
heterogeneity test.

The effect within ``column=value`` is the same estimator (2SLS or LIML, the same covariates, instruments,
weights and covariance) fitted on that segment's rows alone: the fully interacted model, whose treatment
coefficient for a segment is exactly that fit. Covariates constant within the segment (the segment's own
dummies, a category absent from it) are left out of its fit, as the interacted model would absorb them in
the segment's intercept. With few clusters in a segment its p-value and interval come from the wild restricted
efficient bootstrap on its rows, as the headline's (``iv.clusters``).

Correction: Holm over the values of one column (as weighting and experiment do); the headline is in no family.

Heterogeneity: per column, the Wald chi-square of equal effects (k - 1 contrasts with the first value). The
segments' rows are disjoint, so with a robust or unadjusted covariance their estimates are independent; with
clusters that span segments they are not, and the covariance of two segments' effects is the sum over
clusters of the products of their summed influence terms (the interacted model's clustered covariance), scaled
so its diagonal is the reported variances.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from typing import TYPE_CHECKING, Any

import numpy as np

from causalcli.errors import EstimationError
from causalcli.inference.multiplicity import segment_column, skipped_warning

if TYPE_CHECKING:  # pragma: no cover
    from causalcli.designs.iv.design import IvData
    from causalcli.records import Estimate
    from causalcli.spec.models import Study

CORRECTION = "holm"
HETEROGENEITY_TEST = ("Wald chi-square: the column's segment effects are equal (k - 1 contrasts), covariance of "
                      "the effects from their influence terms (summed within clusters when clustered)")


@dataclass(frozen=True)
class SegmentEffects:
    effects: list["Estimate"]
    heterogeneity: list[dict[str, Any]]
    warnings: list[str]


@dataclass(frozen=True)
class _Segment:
    estimate: "Estimate"
    influence: np.ndarray  # the treatment coefficient's influence term on every row (zero outside the segment)


def segment_effects(d: "IvData", study: "Study", seed: int, fit_of: Any, estimate_of: Any) -> SegmentEffects:
    """One effect per value of each segment column, Holm-corrected within the column, and the column's Wald test.
    ``fit_of(data)`` is the design's k-class fit of some rows with their covariance, ``(fit, Z)``;
    ``estimate_of(fit)`` makes an ``Estimate`` of a fit as the headline does (normal or t)."""
    from causalcli.designs.iv.clusters import clustered_inference

    effects, tests, warnings, skipped = [], [], [], []
    for column, values in zip(d.segment_columns, d.segment_values):
        found: list[_Segment] = []
        for level in np.unique(values):
            label = f"{column}={level}"
            rows = values == level
            sub, why = _segment_data(d, rows)
            if sub is None:
                skipped.append(f"{label} ({why})")
                continue
            try:
                fit, influence = _fit_with_influence(sub, fit_of)
            except EstimationError as e:
                skipped.append(f"{label} ({e})")
                continue
            est = estimate_of(fit)
            if sub.clusters is not None:  # few clusters in the segment: its own wild bootstrap
                est, *_ = clustered_inference(sub, est, study.conf_level, study.design.options, seed)
            full = np.zeros(d.y.size)
            full[rows] = influence
            found.append(_Segment(replace(est, label=label), full))
        rows, test, said = segment_column([s.estimate for s in found], column,
                                          {**_wald_equal(found, d), "test": HETEROGENEITY_TEST},
                                          study.thresholds.alpha, len(d.segment_columns), CORRECTION)
        effects += rows
        tests.append(test)
        warnings += said
    return SegmentEffects(effects, tests, warnings + skipped_warning(skipped))


def _segment_data(d: "IvData", rows: np.ndarray) -> tuple["IvData | None", str]:
    """The segment's rows as an ``IvData`` (covariates constant in it left out), or None and why it has no fit."""
    exog, instruments = d.exog[rows], d.instruments[rows]
    raw = d.raw(exog)
    varies = np.r_[True, np.ptp(raw[:, 1:], axis=0) > 0]  # the constant, then the covariates that vary
    exog = exog[:, varies]
    if np.ptp(d.raw(d.x[rows])) == 0:
        return None, "the treatment does not vary in it"
    if np.any(np.ptp(d.raw(instruments), axis=0) == 0):
        return None, "an instrument is constant in it"
    n, k = int(rows.sum()), exog.shape[1] + 1
    if n <= k + instruments.shape[1]:
        return None, f"{n} rows for {k} coefficients"
    Z = np.column_stack([exog, instruments])
    if np.linalg.matrix_rank(d.raw(Z)) < Z.shape[1]:
        return None, "its covariates and instruments are collinear in it"
    clusters, G = None, 0
    if d.clusters is not None:
        clusters = np.unique(d.clusters[rows], return_inverse=True)[1].reshape(-1)
        G = int(clusters.max()) + 1
    sqrt_weights = None if d.sqrt_weights is None else d.sqrt_weights[rows]
    return replace(d, y=d.y[rows], x=d.x[rows], exog=exog, instruments=instruments, clusters=clusters,
                   n_clusters=G, sqrt_weights=sqrt_weights, segment_columns=(), segment_values=()), ""


def _fit_with_influence(d: "IvData", fit_of: Any) -> tuple[Any, np.ndarray]:
    """The k-class fit of a segment and its treatment coefficient's influence term per row,
    ``[(xhat'X)^-1 (P_Z X)_i e_i]`` for the treatment (the rows of the sandwich's meat, before any factor)."""
    fit, Z = fit_of(d)
    X = np.column_stack([d.exog, d.x])
    PzX = Z @ np.linalg.solve(Z.T @ Z, Z.T @ X)
    xhat = (1.0 - fit.kappa) * X + fit.kappa * PzX
    row = np.linalg.inv(xhat.T @ X)[-1]
    return fit, (PzX @ row) * fit.resid


def _wald_equal(found: list[_Segment], d: "IvData") -> dict[str, Any]:
    """The Wald chi-square of equal effects over one column's segments."""
    found = [s for s in found if s.estimate.std_error is not None and s.estimate.std_error > 0]
    k = len(found)
    if k < 2:
        return {"statistic": None, "df": 0, "p_value": None, "values_compared": k}
    from causalcli.inference.distributions import chi2_sf

    se = np.array([s.estimate.std_error for s in found])
    if d.clusters is None or d.cov_type != "clustered":
        V = np.diag(se * se)  # disjoint rows, independent errors: independent estimates
    else:
        sums = np.zeros((d.n_clusters, k))
        for j, s in enumerate(found):
            np.add.at(sums[:, j], d.clusters, s.influence)
        V = sums.T @ sums
        scale = se / np.sqrt(np.diag(V))
        V = V * np.outer(scale, scale)
    C = np.column_stack([-np.ones(k - 1), np.eye(k - 1)])
    diff = C @ np.array([s.estimate.value for s in found])
    try:
        stat = float(diff @ np.linalg.solve(C @ V @ C.T, diff))
    except np.linalg.LinAlgError:
        return {"statistic": None, "df": k - 1, "p_value": None, "values_compared": k}
    return {"statistic": stat, "df": k - 1, "p_value": chi2_sf(stat, k - 1), "values_compared": k}
