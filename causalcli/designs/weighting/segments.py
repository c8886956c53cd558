"""Weighting's effects by segment (the top-level ``segments`` key), their correction and heterogeneity test.

Each segment column is read with the study's arrays (a row missing its value is dropped and counted,
as dml does) and analysed on its own: the effect within ``column=value`` uses every row with that
value. The nuisance models are the headline's, fitted once on all rows (trimming as the headline's):

* IPW: the Hajek means restricted to the segment's kept rows (``ipw``'s ``keep``), the propensity
  score fixed at its fit on all rows. The estimating equations are the logistic score over all rows
  and the two weighted means over the segment's rows, so the influence function is the weighted
  means' own term on the segment's rows plus the logistic score's term over all rows (the effect's
  derivative in the coefficients times their influence function).
* AIPW: the sum of the per-unit scores (``aipw_score``) over the segment's rows over the number of
  them (att: of its treated rows; atc: of its control rows); the influence function is each segment
  row's score minus the effect, over that number. The score is Neyman-orthogonal in the propensity and
  outcome models, and multiplying it by a segment's indicator keeps it so, so the (cross-)fitted
  nuisances add no term, as for the headline.

Correction: Holm over the values of one column (the family experiment uses, at its default
correction); the headline is not part of any family.

Heterogeneity: per column, the Wald chi-square of equal segment effects (k - 1 contrasts with the
first value) with the covariance of the effects from their influence functions. Under IPW with the
logistic score the effects of one column share its term, so they are correlated; the covariance is
formed from low-rank pieces (never the n x k matrix of influence vectors):
``phi_g = u_g + (Z a_g) * (t - e)`` with ``u_g`` on the segment's rows only, so
``phi_g . phi_h = [g = h] u_g . u_g + b_g . a_h + b_h . a_g + a_g' M a_h``, ``b_g = Z'(u_g (t - e))``,
``M = Z' diag((t - e)^2) Z``. The covariance is then scaled so its diagonal is the reported variances
(the weights-known SE's n / (n - 1)).

With observation weights ``s`` (the top-level ``weights``) every estimating equation is multiplied by them:
the means are weighted by ``s w``, the AIPW scores and their counts by ``s``, and ``t - e`` above reads
``s (t - e)``.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import numpy as np

from causalcli.inference.estimate import normal_estimate
from causalcli.inference.multiplicity import corrected_over_values, differs_warning

if TYPE_CHECKING:  # pragma: no cover
    from causalcli.designs.weighting.design import WeightingData, _Run
    from causalcli.records import Estimate

MIN_ARM_UNITS = 2  # a segment value with fewer units of an arm has no effect reported
CORRECTION = "holm"
HETEROGENEITY_TEST = ("Wald chi-square: the column's segment effects are equal (k - 1 contrasts), covariance from "
                      "their influence functions")


@dataclass(frozen=True)
class _Segment:
    label: str
    value: float
    std_error: float
    own: np.ndarray  # u_g: the influence function's term on the segment's rows (zero elsewhere)
    correction: np.ndarray | None  # a_g: the logistic score's term is (Z @ a_g) * (t - e)


@dataclass(frozen=True)
class SegmentEffects:
    effects: list["Estimate"]
    heterogeneity: list[dict[str, Any]]
    warnings: list[str]


def segment_effects(d: "WeightingData", run: "_Run", conf_level: float, alpha: float, inference: str) -> SegmentEffects:
    """One effect per value of each segment column, Holm-corrected within the column, and the column's Wald test.

    ``d`` is the ``WeightingData``, ``run`` the headline's fit (its propensity, kept rows and, for
    aipw, outcome predictions); ``inference`` the headline's name of its inference.
    """
    effects, tests, warnings, skipped = [], [], [], []
    score = _aipw_score(d, run) if d.estimator == "aipw" else None
    for column, values in zip(d.segment_columns, d.segment_values):
        found: list[_Segment] = []
        for level in np.unique(values):
            label = f"{column}={level}"
            in_segment = values == level
            treated, control = int((d.t & in_segment & run.keep).sum()), int((~d.t & in_segment & run.keep).sum())
            if min(treated, control) < MIN_ARM_UNITS:
                skipped.append(f"{label} ({treated} treated, {control} control)")
                continue
            found.append(_ipw_segment(d, run, in_segment, label) if score is None
                         else _aipw_segment(score, in_segment[run.keep], label))
        rows = [normal_estimate(s.value, s.std_error, conf_level, inference, label=s.label) for s in found]
        effects += corrected_over_values(rows, column, CORRECTION)
        test = {"segment": column, **_wald_equal(found, run, d.t, d.sample_weights), "test": HETEROGENEITY_TEST}
        tests.append(test)
        if said := differs_warning(column, test, alpha, len(d.segment_columns)):
            warnings.append(said)
    if skipped:
        warnings.append(f"no effect reported for {len(skipped)} segment value(s) with fewer than {MIN_ARM_UNITS} "
                        f"units of an arm in the rows used: {', '.join(skipped[:5])}"
                        + (f" and {len(skipped) - 5} more" if len(skipped) > 5 else ""))
    return SegmentEffects(effects, tests, warnings)


def _ipw_segment(d: "WeightingData", run: "_Run", in_segment: np.ndarray, label: str) -> _Segment:
    """The Hajek IPW effect on the segment's kept rows with the propensity score of the fit on all rows."""
    from causalcli.designs.weighting.estimators import ipw

    r = ipw(d.y, d.t, run.e_all, d.estimand, Z=run.extra["Z"], keep=run.keep & in_segment, s=d.sample_weights)
    return _Segment(label, r["value"], r["std_error"], r["influence_known"], r["correction"])


def _aipw_score(d: "WeightingData", run: "_Run") -> tuple[np.ndarray, np.ndarray]:
    """Each kept row's AIPW score and the row's count in the effect's denominator (1, or its arm's indicator),
    both times the row's observation weight."""
    from causalcli.designs.weighting.estimators import aipw_score

    keep = run.keep
    score, arm = aipw_score(d.y[keep], d.t[keep], run.e_all[keep], run.extra["m0"], run.extra["m1"], d.estimand)
    count = np.ones(score.size) if arm is None else arm
    if d.sample_weights is None:
        return score, count
    s = d.sample_weights[keep]
    return s * score, s * count


def _aipw_segment(score: tuple[np.ndarray, np.ndarray], in_segment: np.ndarray, label: str) -> _Segment:
    """The mean of the AIPW scores over the segment's rows (its treated or control rows for att, atc)."""
    psi, count = score
    total = float(count[in_segment].sum())
    value = float(psi[in_segment].sum()) / total
    own = np.where(in_segment, psi - count * value, 0.0) / total
    return _Segment(label, value, math.sqrt(float(np.dot(own, own))), own, None)


def _wald_equal(found: list[_Segment], run: "_Run", t: np.ndarray, s: np.ndarray | None) -> dict[str, Any]:
    """The Wald chi-square of equal effects over one column's segments, from their influence functions."""
    found = [s for s in found if math.isfinite(s.std_error) and s.std_error > 0]
    k = len(found)
    if k < 2:
        return {"statistic": None, "df": 0, "p_value": None, "values_compared": k}
    from causalcli.designs.weighting.estimators import logistic_residual
    from causalcli.inference.distributions import chi2_sf

    V = np.diag([float(np.dot(s.own, s.own)) for s in found])
    if found[0].correction is not None:  # the logistic score's term, shared by every segment
        Z = run.extra["Z"]
        r = logistic_residual(t, run.e_all, s)  # the logistic score's factor, every row
        A = np.column_stack([s.correction for s in found])
        B = np.column_stack([Z.T @ (s.own * r) for s in found])
        M = (Z * (r * r)[:, None]).T @ Z
        V = V + B.T @ A + A.T @ B + A.T @ M @ A
    se = np.array([s.std_error for s in found])
    scale = se / np.sqrt(np.diag(V))
    V = V * np.outer(scale, scale)
    C = np.column_stack([-np.ones(k - 1), np.eye(k - 1)])
    diff = C @ np.array([s.value for s in found])
    try:
        stat = float(diff @ np.linalg.solve(C @ V @ C.T, diff))
    except np.linalg.LinAlgError:
        return {"statistic": None, "df": k - 1, "p_value": None, "values_compared": k}
    return {"statistic": stat, "df": k - 1, "p_value": chi2_sf(stat, k - 1), "values_compared": k}

