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

Standard error: Abadie-Imbens (2006) over the segment's matched focal units, adjusted for the estimated score as
the headline is (Abadie-Imbens 2016, ``se: ai2016``, where the paper's conditions hold in the segment: propensity
distance, with replacement, no exact strata, no bias correction, no unit dropped by the caliper). The score is
fitted on all N rows, so the paper's argument runs with the full-sample logit score and information: matching on
the score within a segment is consistent for the segment's effect under every assignment model of the family
(``W`` independent of ``X`` given the score, hence given the score and the segment), and the segment's estimate
is asymptotically ``known-score estimate + (dtau - c)' I^-1 Delta_N / sqrt(N)``, with ``c`` and ``dtau`` the
paper's terms averaged over the segment's rows (``causalcli.inference.abadie_imbens``, called on them) and ``I``
the information per row of the logit on all rows. So the variance is ``V_2006 + (dtau' I^-1 dtau - c' I^-1 c) / N``
(``dtau = 0`` for the ATE), named ``abadie_imbens_2016_estimated_propensity``. Measured on simulated data
(tests/test_segments_coverage.py) it covers at the nominal rate where the score-as-known variance over-covers (or
under-covers, for an ATT whose adjustment is positive). Where the conditions fail, or with ``se: ai2006``, or when
the adjusted variance is not positive, the variance is conditional on the score (what ``Match`` reports with
``X`` = the score): ``INFERENCE_GIVEN_SCORE``. With Mahalanobis distance there is no score: ``abadie_imbens``.

Heterogeneity test: given the covariates and the treatment of every row (and so the score and each segment's
matches), a segment's estimate is linear in its own rows' outcomes, and the segments of one column are disjoint
sets of rows whose outcome errors are independent: the known-score estimates are independent. The estimated score
is shared, so two adjusted segments' estimates covary by ``(dtau_s' I^-1 dtau_r - c_s' I^-1 c_r) / N`` (the same
expansion); the Wald test reads that covariance (diagonal where no segment is adjusted).

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
from causalcli.inference.multiplicity import segment_column, skipped_warning, wald_equal

if TYPE_CHECKING:  # pragma: no cover
    from causalcli.designs.matching.design import MatchingData
    from causalcli.designs.matching.nearest import MatchResult
    from causalcli.records import Estimate
    from causalcli.spec.models import Study

MIN_ARM_UNITS = 2  # a segment value with fewer units of an arm has no effect reported (one unit: no variance)
CORRECTION = "holm"
INFERENCE_GIVEN_SCORE = "abadie_imbens_2006_score_as_known"
INFERENCE_ESTIMATED_SCORE = "abadie_imbens_2016_estimated_propensity"
HETEROGENEITY_TEST = ("Wald chi-square: the column's segment effects are equal (k - 1 contrasts); disjoint rows make "
                      "the known-score effects independent, and the score estimated on all rows adds its "
                      "Abadie-Imbens (2016) covariance between adjusted segments")


@dataclass(frozen=True)
class SegmentEffects:
    effects: list["Estimate"]
    heterogeneity: list[dict[str, Any]]
    balance: list[dict[str, Any]]  # per segment value: its units, matches and max |SMD| after matching
    warnings: list[str]


def segment_effects(d: "MatchingData", score: np.ndarray, study: "Study") -> SegmentEffects:
    """One effect per value of each segment column, Holm-corrected within the column, the column's Wald test,
    and each value's balance. ``score`` is the headline's logit propensity score on every row."""
    given = "abadie_imbens" if d.distance == "mahalanobis" else INFERENCE_GIVEN_SCORE
    if d.sample_weights is not None:
        given = INFERENCE_WEIGHTED
    information = _information(d.X, score) if _score_adjustable(d) else None
    limit = study.thresholds.balance_smd
    effects, tests, balance, warnings, skipped, unbalanced, not_positive = [], [], [], [], [], [], []
    for column, values in zip(d.segment_columns, d.segment_values):
        found: list["Estimate"] = []
        terms: list[tuple[np.ndarray, np.ndarray] | None] = []  # per effect: (dtau, c), None: score as known
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
            variance, inference, term = m.std_error_matched ** 2, given, None
            if information is not None and not m.n_dropped:
                dtau, c = _score_terms(d, score, rows, m.estimate)
                adjusted = variance + (_quad(dtau, dtau, information) - _quad(c, c, information)) / d.t.size
                if adjusted > 0:
                    variance, inference, term = adjusted, INFERENCE_ESTIMATED_SCORE, (dtau, c)
                else:
                    not_positive.append(f"{label} ({adjusted:.3g})")
            found.append(normal_estimate(m.estimate, math.sqrt(variance), study.conf_level, inference, label=label))
            terms.append(term)
            row = _balance(d, m, rows, label, treated, control)
            balance.append(row)
            if not row["max_abs_smd_after"] <= limit:
                unbalanced.append(f"{label} ({row['max_abs_smd_after']:.3f}, {row['worst_covariate']})")
        test = {**_wald(found, terms, information, d.t.size), "test": HETEROGENEITY_TEST}
        rows_out, test, said = segment_column(found, column, test, study.thresholds.alpha, len(d.segment_columns),
                                              CORRECTION)
        effects += rows_out
        tests.append(test)
        warnings += said
    if not_positive:
        warnings.append(f"the Abadie-Imbens (2016) adjusted variance is not positive in {', '.join(not_positive)}; "
                        "their standard errors treat the propensity score as known")
    warnings += skipped_warning(skipped)
    if unbalanced:
        warnings.append(f"matching within {len(unbalanced)} segment value(s) left a covariate with |SMD| above "
                        f"thresholds.balance_smd {limit}: {', '.join(unbalanced[:5])}"
                        + (f" and {len(unbalanced) - 5} more" if len(unbalanced) > 5 else "")
                        + "; their effects compare unlike units (diagnostics.segment_balance)")
    return SegmentEffects(effects, tests, balance, warnings)


def _score_adjustable(d: "MatchingData") -> bool:
    """The Abadie-Imbens (2016) conditions the design allows everywhere (a caliper's drops are per segment)."""
    return (d.se == "ai2016" and d.distance == "propensity" and d.replace and d.strata is None
            and not d.bias_correction and d.sample_weights is None)  # (the paper has no weights)


def _information(X: np.ndarray, score: np.ndarray) -> np.ndarray:
    """The logit's information per row on all rows, ``mean(p (1 - p) x x')`` with ``x = [1, X]``."""
    p = 1.0 / (1.0 + np.exp(-score))
    xi = np.column_stack([np.ones(X.shape[0]), X])
    return (xi * (p * (1.0 - p))[:, None]).T @ xi / X.shape[0]


def _score_terms(d: "MatchingData", score: np.ndarray, rows: np.ndarray,
                 estimate: float) -> tuple[np.ndarray, np.ndarray]:
    """The segment's Abadie-Imbens (2016) ``dtau`` and ``c``, means over its rows (the ATC: the ATT of the controls
    on ``1 - p``, whose logit has coefficients ``-theta`` and the same information)."""
    from causalcli.inference.abadie_imbens import ai2016_ate_c, ai2016_att_terms

    p = 1.0 / (1.0 + np.exp(-score[rows]))
    y, t, X = d.y[rows], d.t[rows], d.X[rows]
    if d.estimand == "ate":
        return np.zeros(X.shape[1] + 1), ai2016_ate_c(y, t, X, p)
    # the terms do not depend on the information; their ``adjustment`` (over the segment's rows alone) is not read
    if d.estimand == "att":
        terms = ai2016_att_terms(y, t, X, p, estimate, np.eye(X.shape[1] + 1))
    else:
        terms = ai2016_att_terms(y, ~t, X, 1.0 - p, -estimate, np.eye(X.shape[1] + 1))
    return terms.dtau, terms.c


def _quad(a: np.ndarray, b: np.ndarray, information: np.ndarray) -> float:
    return float(a @ np.linalg.solve(information, b))


def _wald(found: list["Estimate"], terms: list, information: np.ndarray | None, n: int) -> dict[str, Any]:
    """``wald_equal`` over the effects with a positive standard error; adjusted pairs covary through the score."""
    usable = [(e, term) for e, term in zip(found, terms) if e.std_error is not None and e.std_error > 0]
    V = np.diag([e.std_error ** 2 for e, _ in usable])
    for i, (_, a) in enumerate(usable):
        for j, (_, b) in enumerate(usable):
            if i != j and a is not None and b is not None:
                V[i, j] = (_quad(a[0], b[0], information) - _quad(a[1], b[1], information)) / n
    if usable and np.linalg.eigvalsh(V).min() <= 0:  # estimated cross terms too large: the variances alone
        V = np.diag(np.diag(V))
    return wald_equal([e.value for e, _ in usable], V)


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

