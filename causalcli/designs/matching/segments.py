"""Matching's effects by segment (the top-level ``segments`` key), their correction, balance and heterogeneity test.

The effect within ``column=value`` is the headline's matching run on that segment's rows alone, so the segment's
focal units are matched only to the segment's other arm (MatchIt's advice for subgroup effects: match within the
subgroup). Everything else is the headline's: the distance (the logit propensity score fitted once on all rows, or
Mahalanobis on the same covariates), neighbors, caliper, tolerance, replace, exact strata, bias correction and
estimand. It is R's ``Matching::Match`` called on the segment's subset with ``X`` the headline's score, so, as there,
the score is standardised over the segment's rows: the caliper is in SDs of the score among them, and the tie
tolerance on their standardised scale. Columns constant within the segment (the segment's own column, a category
absent from it) are left out of the Mahalanobis metric and of the bias correction's regression: they add nothing to
a distance there, and would make the metric's covariance singular (Match then falls back to the identity).

Standard error: Abadie-Imbens (2006) over the segment's matched focal units. The headline's Abadie-Imbens (2016)
adjustment for the estimated score is not applied: the score is fitted on all rows, so a segment's estimate moves
with every row's treatment through it, a case the paper does not derive. The segment's variance is therefore
conditional on the score (what ``Match`` reports with ``X`` = the score), and the estimate names it
``INFERENCE_GIVEN_SCORE``. With Mahalanobis distance there is no score and the name is the headline's.

Independence: given the covariates and the treatment of every row (and so the score and each segment's matches),
a segment's estimate is linear in its own rows' outcomes, and the segments of one column are disjoint sets of rows
whose outcome errors are independent. The Abadie-Imbens variance is this conditional variance, so the segment
estimates of a column are independent and the Wald test's covariance is diagonal.

Observation weights (the top-level ``weights``): each segment's matching is the headline's weighted matching on its
rows (Match with ``weights = w[rows]``), its SE Abadie-Imbens (2006) with Match's weighted terms.

Correction: Holm over the values of one column (as weighting and iv); the headline is in no family.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import numpy as np

from causalcli.designs.matching.weighted import INFERENCE_WEIGHTED
from causalcli.errors import EstimationError
from causalcli.inference.estimate import normal_estimate
from causalcli.inference.multiplicity import segment_column, skipped_warning, wald_independent

if TYPE_CHECKING:  # pragma: no cover
    from causalcli.designs.matching.design import MatchingData
    from causalcli.designs.matching.nearest import MatchResult
    from causalcli.records import Estimate
    from causalcli.spec.models import Study

MIN_ARM_UNITS = 2  # a segment value with fewer units of an arm has no effect reported (one unit: no variance)
CORRECTION = "holm"
INFERENCE_GIVEN_SCORE = "abadie_imbens_2006_score_as_known"
HETEROGENEITY_TEST = ("Wald chi-square: the column's segment effects are equal (k - 1 contrasts); disjoint rows and "
                      "standard errors conditional on the matches make the effects independent (diagonal covariance)")


@dataclass(frozen=True)
class SegmentEffects:
    effects: list["Estimate"]
    heterogeneity: list[dict[str, Any]]
    balance: list[dict[str, Any]]  # per segment value: its units, matches and max |SMD| after matching
    warnings: list[str]


def segment_effects(d: "MatchingData", score: np.ndarray, study: "Study") -> SegmentEffects:
    """One effect per value of each segment column, Holm-corrected within the column, the column's Wald test,
    and each value's balance. ``score`` is the headline's logit propensity score on every row."""
    inference = "abadie_imbens" if d.distance == "mahalanobis" else INFERENCE_GIVEN_SCORE
    if d.sample_weights is not None:
        inference = INFERENCE_WEIGHTED
    limit = study.thresholds.balance_smd
    effects, tests, balance, warnings, skipped, unbalanced = [], [], [], [], [], []
    for column, values in zip(d.segment_columns, d.segment_values):
        found: list["Estimate"] = []
        for level in np.unique(values):
            label = f"{column}={level}"
            rows = values == level
            treated, control = int((d.t & rows).sum()), int((~d.t & rows).sum())
            if min(treated, control) < MIN_ARM_UNITS:
                skipped.append(f"{label} ({treated} treated, {control} control; at least {MIN_ARM_UNITS} of each "
                               "are needed)")
                continue
            try:
                m = match_segment(d, score, rows)
            except EstimationError as e:
                skipped.append(f"{label} ({e})")
                continue
            found.append(normal_estimate(m.estimate, m.std_error_matched, study.conf_level, inference, label=label))
            row = _balance(d, m, rows, label, treated, control)
            balance.append(row)
            if not row["max_abs_smd_after"] <= limit:
                unbalanced.append(f"{label} ({row['max_abs_smd_after']:.3f}, {row['worst_covariate']})")
        rows, test, said = segment_column(found, column, {**wald_independent(found), "test": HETEROGENEITY_TEST},
                                          study.thresholds.alpha, len(d.segment_columns), CORRECTION)
        effects += rows
        tests.append(test)
        warnings += said
    warnings += skipped_warning(skipped)
    if unbalanced:
        warnings.append(f"matching within {len(unbalanced)} segment value(s) left a covariate with |SMD| above "
                        f"thresholds.balance_smd {limit}: {', '.join(unbalanced[:5])}"
                        + (f" and {len(unbalanced) - 5} more" if len(unbalanced) > 5 else "")
                        + "; their effects compare unlike units (diagnostics.segment_balance)")
    return SegmentEffects(effects, tests, balance, warnings)


def match_segment(d: "MatchingData", score: np.ndarray, rows: np.ndarray) -> "MatchResult":
    """The headline's matching on the rows ``rows`` (a boolean mask) alone."""
    from causalcli.designs.matching.nearest import mahalanobis_coordinates, match

    X = d.X[rows]
    sw = None if d.sample_weights is None else d.sample_weights[rows]
    U = Z = None
    if d.distance == "mahalanobis":
        metric = _varying(X if d.extra_metric is None else np.column_stack([X, d.extra_metric[rows]]))
        if metric.shape[1] == 0:
            raise EstimationError("no covariate varies in it")
        U = mahalanobis_coordinates(metric, sw)
    if d.bias_correction:
        Z = _varying(X)
        Z = Z if Z.shape[1] else None
    return match(d.y[rows], d.t[rows], score[rows], estimand=d.estimand, neighbors=d.neighbors, caliper=d.caliper,
                 tolerance=d.tolerance, strata=None if d.strata is None else d.strata[rows], Z=Z, U=U,
                 replace=d.replace, weights=sw)


def _varying(X: np.ndarray) -> np.ndarray:
    """The columns of ``X`` that are not constant."""
    return X[:, np.ptp(X, axis=0) > 0] if X.shape[0] else X


def _balance(d: "MatchingData", m: "MatchResult", rows: np.ndarray, label: str, treated: int,
             control: int) -> dict[str, Any]:
    """The segment's units, matches and largest |SMD| after matching (MatchIt's conventions, on its rows)."""
    from causalcli.checks.balance import balance_table

    sw = None if d.sample_weights is None else d.sample_weights[rows]
    own = m.focal_matched if sw is None else np.where(m.focal_matched, sw, 0.0)
    table = balance_table(d.X_balance[rows], d.t[rows], d.balance_names, m.match_weights + own, d.estimand,
                          sample_weights=sw)
    worst = max(table, key=lambda r: abs(r["smd_after"]) if math.isfinite(r["smd_after"]) else math.inf)
    return {"segment": label, "treated": treated, "control": control, "matched": int(m.n_focal_matched),
            "dropped_unmatched": int(m.n_dropped), "max_abs_smd_after": abs(worst["smd_after"]),
            "worst_covariate": worst["covariate"],
            "max_abs_smd_before": max(abs(r["smd_before"]) for r in table),
            "std_error_r_match": float(m.std_error if d.replace else m.std_error_standard)}

