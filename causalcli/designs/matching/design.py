"""Nearest-neighbour matching: ATT, ATC and ATE.

Matching with replacement and ties kept (or without replacement, greedy in
data order), on the logit of an estimated propensity score or by Mahalanobis
distance on the covariates, optionally within exact strata and with the
Abadie-Imbens (2011) bias correction, with the Abadie-Imbens (2006) standard
error, adjusted for the estimated score (Abadie and Imbens 2016) where that
applies. The semantics mirror R's
``Matching::Match`` (see ``causalcli.designs.matching.nearest``), against which the tests
are pinned. Diagnostics: a MatchIt-style balance table, overlap, E-value and
Rosenbaum bounds (``causalcli.checks.balance``, ``causalcli.checks.overlap``,
``causalcli.checks.sensitivity``). Effects by the top-level ``segments``: the same
matching within each segment's rows (``segments.py``). Observation weights (the top-level ``weights``): R's
``Match(weights = w)`` on a weighted logit score (``weighted.py``).

References
----------
Abadie, A. and Imbens, G. W. (2006). Large sample properties of matching
estimators for average treatment effects. Econometrica 74(1), 235-267.
Abadie, A. and Imbens, G. W. (2016). Matching on the estimated propensity
score. Econometrica 84(2), 781-807.
Rosenbaum, P. R. and Rubin, D. B. (1983). The central role of the propensity
score in observational studies for causal effects. Biometrika 70(1), 41-55.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import cached_property
from typing import TYPE_CHECKING

import numpy as np

from causalcli.data.missing import study_roles_missing
from causalcli.data.segments import SEGMENT_ROLE, check_segment_columns, check_segment_levels, segment_labels
from causalcli.data.table import ROW_POSITION, MissingRows, binary_study_arrays, single_treated_warning
from causalcli.designs.base import Fit
from causalcli.designs.binary_treatment import BinaryTreatmentDesign
from causalcli.designs.matching.weighted import INFERENCE_WEIGHTED
from causalcli.data.weights import keep_positive_weights, zero_weight_warning
from causalcli.errors import DataError, SpecError
from causalcli.inference.estimate import normal_estimate
from causalcli.models.logit import LogitDesign

if TYPE_CHECKING:  # pragma: no cover
    from causalcli.data.missing import Roles
    from causalcli.data.table import Table
    from causalcli.graph import Identification
    from causalcli.designs.matching.spec import MatchingOptions
    from causalcli.spec.loading import LoadedSpec
    from causalcli.spec.models import Study

EXACT_ROLE = ("exact", "exact-matching column")  # n.dropped_missing_exact; how messages name the column


@dataclass(frozen=True)
class MatchingData:
    """Arrays the estimator and the refuters share (picklable for joblib workers)."""

    X: np.ndarray
    t: np.ndarray  # bool
    y: np.ndarray
    covariates: tuple[str, ...]
    X_balance: np.ndarray  # every level of a categorical covariate, for the balance table
    balance_names: tuple[str, ...]
    neighbors: int
    caliper: float | None
    tolerance: float
    estimand: str
    rows: int
    dropped_missing: int
    file: str
    coef: np.ndarray  # full-data propensity coefficients: refuters start their refits here
    iterations: int
    scaling: tuple[np.ndarray, np.ndarray] = (np.zeros(0), np.zeros(0))  # full-data centre and SD of X
    strata: np.ndarray | None = None  # exact-matching cell per row (codes), or None
    exact: tuple[str, ...] = ()
    bias_correction: bool = False
    distance: str = "propensity"
    extra_metric: np.ndarray | None = None  # exact columns outside the covariates (Mahalanobis metric)
    replace: bool = True
    se: str = "ai2016"  # headline SE on the propensity score: ai2016 (adjusted where it applies) or ai2006
    missing: MissingRows | None = None  # rows dropped for a missing value, by role
    positions: np.ndarray | None = None  # each row's place among the rows used, in the file's order (messages)
    segment_columns: tuple[str, ...] = ()  # the top-level segments
    segment_values: tuple[np.ndarray, ...] = ()  # their values as labels, one array per column
    sample_weights: np.ndarray | None = None  # the top-level weights (positive), or None: weighted.py
    weights_column: str | None = None
    zero_weight: int = 0  # rows of weight 0 left out (n.dropped_zero_weight)

    @cached_property
    def logit(self) -> LogitDesign:
        """The propensity logit's design the refuters' refits share, from ``X`` and ``scaling``; its
        matrix is built by ``before_refuters``, before the workers fork."""
        return LogitDesign(self.X, self.scaling, names=self.covariates)


class MatchingDesign(BinaryTreatmentDesign[MatchingData]):
    name = "matching"
    estimators = ("psm_nearest", "mahalanobis_nearest")  # which one runs: design.options.distance
    estimands = ("att", "atc", "ate")
    inference = ("abadie_imbens", "abadie_imbens_2016_estimated_propensity", "abadie_imbens_2006_score_as_known",
                 INFERENCE_WEIGHTED)
    reference = "Abadie and Imbens (2006), Econometrica; semantics of R Matching::Match"
    segments_built = True  # segments.py: the same matching within each segment's rows
    weights_built = True  # the top-level weights as R's Match(weights = w), with replacement (weighted.py)

    def check_spec(self, study: "Study", spec: "LoadedSpec") -> None:
        super().check_spec(study, spec)
        check_segment_columns(study, spec.source.display)
        opts: MatchingOptions = study.design.options
        if study.weights and not opts.replace:
            raise SpecError("weights with replace: false are not built (R's Match then counts neighbours by weight "
                            "and breaks the resulting ties at random); use replace: true or remove 'weights'",
                            file=spec.source.display, key="weights")
        if not opts.replace and opts.bias_correction:
            # Match switches BiasAdjust off without replacement (ties = FALSE); not guessed here
            raise SpecError("bias_correction is not available with replace: false (R's Match has no bias "
                            "adjustment without replacement); remove one of them",
                            file=spec.source.display, key="design.options")
        unbuilt = []
        if opts.distance == "mahalanobis" and opts.caliper is not None:
            unbuilt.append("caliper with distance: mahalanobis (the caliper is on the propensity score)")
        if unbuilt:
            raise SpecError(f"matching option(s) {', '.join(unbuilt)} are not built yet; remove them",
                            file=spec.source.display, key="design.options")

    def column_roles(self, study: "Study") -> dict[str, tuple[str, str]]:
        roles = super().column_roles(study)
        for i, c in enumerate(study.design.options.exact):
            roles.setdefault(c, (f"design.options.exact[{i}]", "any"))
        return roles

    def validate(self, study: "Study", table: "Table", spec: "LoadedSpec") -> None:
        super().validate(study, table, spec)
        check_segment_levels(study.segments, table)

    def missing_roles(self, study: "Study", identification: "Identification") -> "Roles":
        """Treatment, outcome, the adjustment set, the exact columns, the other segment columns, then the weights
        (the order ``binary_study_arrays`` attributes them in)."""
        covs, exact = list(identification.adjustment_set), tuple(study.design.options.exact)
        taken = {study.treatment, study.outcome, *covs, *exact}
        segs = [c for c in study.segments if c not in taken]
        taken |= set(segs)
        return (study_roles_missing(study.treatment, study.outcome, covs, exact, EXACT_ROLE)
                + [(c, *SEGMENT_ROLE) for c in segs]
                + ([(study.weights, "weights", "weights")] if study.weights and study.weights not in taken else []))

    def prepare(self, study: "Study", table: "Table", identification: "Identification",
                spec: "LoadedSpec") -> MatchingData:
        covs = list(identification.adjustment_set)
        categorical = tuple(c for c in study.categorical if c in covs)
        exact = tuple(study.design.options.exact)
        arrays = binary_study_arrays(table, study.treatment, study.outcome, covs, list(categorical), extra=exact,
                                     extra_text=tuple(c for c in exact if c not in covs),
                                     extra_role=EXACT_ROLE, segments=tuple(study.segments), weights=study.weights)
        cols, X, names, t, dropped = arrays.cols, arrays.X, arrays.names, arrays.t, arrays.dropped
        opts = study.design.options
        # a row of weight 0 is no one's match and matches no one, yet would count in n
        cols, X, t, sample_weights, zero_weight = keep_positive_weights(cols, X, t, study.weights, table.file)
        if sample_weights is not None:
            _require_weight(sample_weights, t, opts.neighbors, study, table.file, self.estimand(study, spec))
        from causalcli.checks.balance import balance_matrix
        from causalcli.checks.overlap import require_common_support
        from causalcli.models.logit import SeparationError, explain_separation, fit_logit

        Xb, bnames = balance_matrix(cols, covs, categorical)
        try:
            # weighted, as weighting's and as MatchIt's matchit(s.weights = ) (add_s.weights exists to leave them out)
            ps = fit_logit(X, t.astype(np.float64), sample_weights, names=names)
        except SeparationError as err:
            raise explain_separation(err, Xb, bnames, categorical, t, table.file) from None
        require_common_support(ps.probability, t, table.file)
        return MatchingData(
            X=X, t=t, y=np.asarray(cols[study.outcome], dtype=np.float64), covariates=tuple(names),
            X_balance=Xb, balance_names=tuple(bnames),
            neighbors=opts.neighbors, caliper=opts.caliper, tolerance=opts.tolerance,
            estimand=self.estimand(study, spec), rows=table.rows, dropped_missing=dropped, file=table.file,
            coef=ps.coef, iterations=ps.iterations, scaling=(X.mean(axis=0), X.std(axis=0)),
            strata=_strata(cols, exact), exact=exact,
            bias_correction=opts.bias_correction, distance=opts.distance,
            extra_metric=_codes(cols, tuple(c for c in exact if c not in covs)), positions=cols.get(ROW_POSITION),
            replace=opts.replace, se=opts.se, missing=arrays.missing,
            segment_columns=tuple(study.segments),
            segment_values=tuple(segment_labels(cols[c]) for c in study.segments),
            sample_weights=sample_weights, weights_column=study.weights, zero_weight=zero_weight,
        )

    # ------------------------------------------------------------ estimation

    def fit(self, prepared: MatchingData, study: "Study", seed: int, jobs: int | None = None) -> Fit:
        from causalcli.designs.matching.nearest import match

        d = prepared
        score = d.coef[0] + d.X @ d.coef[1:]
        probability = 1.0 / (1.0 + np.exp(-score))
        sw = d.sample_weights
        m = match(d.y, d.t, score, estimand=d.estimand, neighbors=d.neighbors, caliper=d.caliper,
                  tolerance=d.tolerance, strata=d.strata, Z=d.X if d.bias_correction else None,
                  U=_metric(d, d.X, d.extra_metric, sw), replace=d.replace, weights=sw)
        # R's Match keeps caliper-dropped units in N (with a zero contrast), which
        # understates the SE; report the SE of the matched-sample effect and keep
        # R's number beside it (equal when the caliper drops nobody).
        missing = d.missing or MissingRows({"dropped_missing": d.dropped_missing})
        warnings = [*missing.warnings, *single_treated_warning(d.t)]
        warnings += zero_weight_warning(d.zero_weight, d.weights_column or "")
        se_2016, why_not_2016 = _ai2016(d, m, score, probability)
        if se_2016 is not None and d.se == "ai2016":
            estimate = normal_estimate(m.estimate, se_2016, study.conf_level,
                                       "abadie_imbens_2016_estimated_propensity")
        else:
            estimate = normal_estimate(m.estimate, m.std_error_matched, study.conf_level,
                                       "abadie_imbens" if sw is None else INFERENCE_WEIGHTED)
            if d.se == "ai2016" and why_not_2016.startswith("the adjusted variance"):
                warnings.append(f"the Abadie-Imbens (2016) adjustment is not used: {why_not_2016}; the standard "
                                "error treats the propensity score as known")
        focal_name = {"att": "treated", "atc": "control", "ate": "all"}[d.estimand]
        # each unit's weight in the matched sample: its own (observation) weight as a matched focal unit, plus its
        # summed pair weight as a match, the weights the estimate puts on the outcomes
        weights = m.match_weights + (m.focal_matched if sw is None else np.where(m.focal_matched, sw, 0.0))
        n = {
            "rows": d.rows,
            **missing.n,
            **({"dropped_zero_weight": d.zero_weight} if d.zero_weight else {}),
            "treated": int(d.t.sum()),
            "control": int((~d.t).sum()),
            "used": int(np.count_nonzero(weights)),
            "matched": int(m.n_focal_matched),
            "dropped_unmatched": int(m.n_dropped),
        }
        if d.estimand == "att":
            n.update({"treated_matched": int(m.n_focal_matched),
                      "controls_matched": int(np.count_nonzero(m.match_weights)),
                      "treated_dropped_caliper": int(m.n_dropped)})
        units = "units" if d.estimand == "ate" else f"{focal_name} units"
        if m.n_dropped:
            why = []
            if d.caliper is not None:
                why.append(f"the caliper of {d.caliper} SD")
            if d.exact:
                why.append(f"exact matching on {', '.join(d.exact)}")
            if not d.replace:
                why.append("matching without replacement (unused matches ran out)")
            warnings.append(
                f"{' and '.join(why)} dropped {m.n_dropped:,} of {m.n_focal:,} {units} with no match close enough "
                f"({_ids(m.dropped, d.positions)}); the estimate is the effect on the units that were matched"
            )
        per_focal = m.n_pairs / max(m.n_focal_matched, 1)
        if d.replace and per_focal > 2 * d.neighbors:
            # R's ties = TRUE keeps every control within the tolerance of the k-th nearest: on large or
            # coarse data that is many more than k, which changes the estimand's variance and the refuters' cost
            n["matched_pairs"] = int(m.n_pairs)
            by_weight = ("" if sw is None else "neighbours counted by weight (matches of weight below 1 bring more "
                         "of them; rescale the weights to change that) and ")
            warnings.append(
                f"{by_weight}ties within the tolerance ({d.tolerance} on the squared standardised score) gave "
                f"{int(m.n_pairs):,} "
                f"matched pairs, {per_focal:.1f} matches per {units[:-1]} for neighbors: {d.neighbors}; "
                "all tied matches share the weight (as R's Match with ties = TRUE). To match closer to "
                f"{d.neighbors} per unit, lower design.options.tolerance (e.g. 1e-9), or add a continuous "
                "covariate if the score takes few distinct values"
            )
        if m.ties_broken:
            warnings.append(
                f"without replacement, {m.ties_broken} units had more than {d.neighbors} candidate matches within "
                f"the tie tolerance ({d.tolerance}); the first in data order were kept. R's Match breaks such ties "
                "at random, so its matches and estimate can differ"
            )
        from causalcli.checks.balance import balance_check, balance_table
        from causalcli.checks.overlap import overlap_check, overlap_summary
        from causalcli.checks.sensitivity import evalue, rosenbaum_bounds

        balance = balance_table(d.X_balance, d.t, d.balance_names, weights, d.estimand, sample_weights=sw)
        bounds = study.thresholds.propensity_bounds
        overlap = overlap_summary(probability, d.t, bounds, weights, sample_weights=sw,
                                  share_unmatched=float(m.n_dropped / max(m.n_focal, 1)))
        if d.estimand == "att":
            overlap["share_treated_unmatched"] = overlap["share_unmatched"]
        arm = {"att": "treated", "atc": "control"}.get(d.estimand, "all")
        checks = [balance_check(balance, study.thresholds.balance_smd, "matching"),
                  overlap_check(overlap, study.thresholds.max_outside, bounds, arm, narrower=self.estimands)]
        sensitivity = {
            "e_value": evalue(estimate.value, estimate.ci_lower, estimate.ci_upper, float(np.std(d.y, ddof=1))),
            "rosenbaum": rosenbaum_bounds(m.differences, study.thresholds.alpha, estimate.value),
        }
        diagnostics = {
            "balance": balance,
            "balance_threshold": study.thresholds.balance_smd,
            "overlap": overlap,
            "sensitivity": sensitivity,
            "propensity_model": {
                "model": "logistic regression (unpenalised maximum likelihood)",
                "iterations": d.iterations,
                "coefficients": dict(zip(("(intercept)", *d.covariates), map(float, d.coef))),
            },
            "matching": {
                "neighbors": d.neighbors,
                "caliper_sd": d.caliper,
                "replace": d.replace,
                "ties": ("kept, weighted equally" if d.replace else
                         f"broken by data order ({m.ties_broken} units had ties; R's Match breaks them at random)"),
                "distance": ("Mahalanobis distance on the covariates (Match's Weight = 2)"
                             if d.distance == "mahalanobis" else "absolute difference of the logit propensity score"),
                "exact": list(d.exact),
                "bias_correction": ({"covariates": list(d.covariates), "slopes": m.bias_coefficients,
                                     "estimate_unadjusted": m.estimate_unadjusted}
                                    if d.bias_correction else None),
                "std_error_ai2006": float(m.std_error_matched),
                "std_error_ai2016": se_2016,
                "std_error_ai2016_note": (
                    "Abadie-Imbens (2016) standard error for matching on an estimated logit score: "
                    "std_error_ai2006^2 - c' I^-1 c / N for the ATE, plus dtau' I^-1 dtau / N for the ATT and "
                    "ATC (can go either way)" if se_2016 is not None else f"not computed: {why_not_2016}"),
                "std_error_r_match": float(m.std_error if d.replace else m.std_error_standard),
                "std_error_note": (
                    f"std_error_ai2006 is Abadie-Imbens (2006) over {'all the matched units' if d.estimand == 'ate' else f'the matched {focal_name} units'}, treating the "
                    "score as known; "
                    + ("std_error_r_match is R Matching::Match's se, which also counts units dropped by the caliper "
                       "or exact matching (equal when none is dropped)" if d.replace else
                       "without replacement R's Match computes no Abadie-Imbens se; std_error_r_match is its "
                       "se.standard (pair differences as independent), what its summary() prints")
                    + f"; the headline std_error is {estimate.inference}"),
            },
        }
        if sw is not None:  # only with weights: the unweighted output (and its golden files) is unchanged
            # where weighting, dml, iv and rdd put theirs, so the renderers say a study was weighted
            diagnostics["weights"] = {
                "column": d.weights_column, "zero_weight_rows": d.zero_weight, "sum": float(sw.sum()),
                "note": "R Match(weights = w): a weighted propensity logit, neighbours counted by weight, each focal "
                        "unit's weight shared among its matches in proportion to theirs; the caliper in weighted "
                        "SDs; rows of weight 0 are left out"}
        effects = []
        if d.segment_columns:
            from causalcli.designs.matching.segments import segment_effects

            by_segment = segment_effects(d, score, study)
            effects, diagnostics["heterogeneity"] = by_segment.effects, by_segment.heterogeneity
            diagnostics["segment_balance"] = by_segment.balance
            warnings += by_segment.warnings
        estimator = "mahalanobis_nearest" if d.distance == "mahalanobis" else "psm_nearest"
        return Fit(estimator, d.estimand, estimate, n, effects=effects, diagnostics=diagnostics, checks=checks,
                   warnings=warnings)

    def before_refuters(self, prepared: MatchingData, names: list[str]) -> None:
        if prepared.distance != "mahalanobis":
            prepared.logit.matrix  # built here, in the main process: forked workers share its pages

    def point(self, prepared: MatchingData, *, treatment=None, extra_covariate=None, rows=None) -> float:
        from causalcli.designs.matching.nearest import match, match_att_point
        from causalcli.models.logit import refit_logit

        d = prepared
        # the permuted treatment of placebo_treatment, read by either distance (Mahalanobis matching ignored it, and
        # every placebo gave the estimate itself: 19 of 19 "as large", p = 1, on NHEFS)
        X, t, y, strata, extra = d.X, d.t if treatment is None else treatment, d.y, d.strata, d.extra_metric
        sw = d.sample_weights
        start = d.coef
        # on the propensity score, X itself is read only by the bias correction (the logit reads its design)
        reads_x = d.distance == "mahalanobis" or d.bias_correction
        design = None if d.distance == "mahalanobis" else d.logit
        if rows is not None:
            X, t, y = X[rows] if reads_x else None, t[rows], y[rows]
            design = None if design is None else design.subset(rows)
            strata = None if strata is None else strata[rows]
            extra = None if extra is None else extra[rows]
            sw = None if sw is None else sw[rows]
        if d.distance == "mahalanobis":
            if extra_covariate is not None:
                X = np.column_stack([X, extra_covariate])
            return match(y, t, np.zeros(t.size), estimand=d.estimand, neighbors=d.neighbors,
                         tolerance=d.tolerance, strata=strata, Z=X if d.bias_correction else None,
                         U=_metric(d, X, extra, sw), replace=d.replace, weights=sw).estimate
        if treatment is not None:
            # a permuted treatment is unrelated to X: start from the intercept-only model
            start = np.zeros_like(d.coef)
            share = t.mean() if sw is None else float(np.dot(sw, t) / sw.sum())
            start[0] = np.log(share / (1.0 - share))
        # the full data's design, centred and scaled once, serves every refit (an added standard-normal
        # covariate is already centred and scaled): no pass over X to recompute it
        if extra_covariate is not None:
            X = np.column_stack([X, extra_covariate]) if reads_x else None
            start = np.append(start, 0.0)
            design = design.with_column(extra_covariate)
        ps = refit_logit(design, t, start, weights=sw)
        if d.estimand == "att" and strata is None and not d.bias_correction and d.replace:
            return match_att_point(y, t, ps.linear_predictor, neighbors=d.neighbors, caliper=d.caliper,
                                   tolerance=d.tolerance, weights=sw)
        return match(y, t, ps.linear_predictor, estimand=d.estimand, neighbors=d.neighbors, caliper=d.caliper,
                     tolerance=d.tolerance, strata=strata, Z=X if d.bias_correction else None,
                     replace=d.replace, weights=sw).estimate


def _strata(cols: dict, exact: tuple[str, ...]) -> np.ndarray | None:
    """One integer code per combination of the exact-matching columns (None without them)."""
    if not exact:
        return None
    codes = np.column_stack([np.unique(np.asarray(cols[c]).astype(str), return_inverse=True)[1].reshape(-1)
                             for c in exact])
    return np.unique(codes, axis=0, return_inverse=True)[1].reshape(-1)


def _ids(rows: np.ndarray, positions: np.ndarray | None, limit: int = 10) -> str:
    """Row numbers (1-based, among the rows used, in the table's order) of dropped units, the first ``limit``."""
    rows = np.sort(positions[rows]) if positions is not None else rows
    shown = ", ".join(str(int(r) + 1) for r in rows[:limit])
    return f"rows {shown}{', ...' if rows.size > limit else ''}"


def _codes(cols: dict, names: tuple[str, ...]) -> np.ndarray | None:
    """Integer codes of the given columns (None without any)."""
    if not names:
        return None
    return np.column_stack([np.unique(np.asarray(cols[c]).astype(str), return_inverse=True)[1].reshape(-1)
                            for c in names]).astype(np.float64)


def _metric(d: MatchingData, X: np.ndarray, extra: np.ndarray | None,
            weights: np.ndarray | None = None) -> np.ndarray | None:
    """Mahalanobis coordinates of the covariates (and exact columns outside them, as Match's X), or None."""
    if d.distance != "mahalanobis":
        return None
    from causalcli.designs.matching.nearest import mahalanobis_coordinates

    return mahalanobis_coordinates(X if extra is None else np.column_stack([X, extra]), weights)


def _require_weight(w: np.ndarray, t: np.ndarray, neighbors: int, study: "Study", file: str, estimand: str) -> None:
    """Both arms among the rows of positive weight, and enough weight in the arm(s) that supply the matches:
    R's Match counts neighbours by weight (weighted.py) and has no answer when they weigh less than M."""
    if t.all() or not t.any():
        raise DataError(f"treatment {study.treatment!r} has only one arm in the rows of positive weight "
                        f"({study.weights!r})", file=file, column=study.treatment, key="treatment")
    m = min(neighbors, int(t.sum()), int((~t).sum())) if estimand == "ate" else neighbors
    arms = {"att": ((~t, "control"),), "atc": ((t, "treated"),)}.get(estimand, ((~t, "control"), (t, "treated")))
    for arm, name in arms:
        total = float(w[arm].sum())
        if total < min(m, int(arm.sum())):
            raise DataError(f"the {name} rows' weights ({study.weights!r}) sum to {total:.4g}, less than "
                            f"design.options.neighbors ({neighbors}); matching counts neighbours by weight (as R's "
                            "Match: a row of weight 2 counts as two): rescale the weights, e.g. to a mean of 1",
                            file=file, key="weights", column=study.weights)


def _ai2016(d: MatchingData, m, score: np.ndarray, probability: np.ndarray) -> tuple[float | None, str]:
    """Abadie-Imbens (2016) SE on the estimated logit score, or None and the reason it does not apply.

    The paper covers nearest-neighbour matching with replacement on a logit score
    estimated by maximum likelihood, on the whole sample: not Mahalanobis
    distance, exact strata, the bias correction, matching without replacement, or
    a caliper that drops units (the estimand then changes with the score).
    """
    reasons = []
    if d.distance != "propensity":
        reasons.append("Mahalanobis matching does not use the score")
    if not d.replace:
        reasons.append("no derivation for matching without replacement")
    if d.strata is not None:
        reasons.append("exact matching")
    if d.bias_correction:
        reasons.append("bias correction")
    if m.n_dropped:
        reasons.append("units dropped by the caliper")
    if d.sample_weights is not None:
        reasons.append("observation weights")
    if min(int(d.t.sum()), int((~d.t).sum())) < 2:  # its within-arm covariances need two units per arm
        reasons.append("an arm with a single unit")
    if reasons:
        return None, "the Abadie-Imbens (2016) theory does not cover " + ", ".join(reasons)
    from causalcli.inference.abadie_imbens import ai2016_ate_variance_reduction, ai2016_att_terms
    from causalcli.models.logit import LogitFit

    fit = LogitFit(coef=d.coef, linear_predictor=score, probability=probability, converged=True,
                   iterations=d.iterations)
    if d.estimand == "ate":
        adj = -ai2016_ate_variance_reduction(d.y, d.t, d.X, probability, information=fit.information(d.X))
    elif d.estimand == "att":
        adj = ai2016_att_terms(d.y, d.t, d.X, probability, m.estimate, fit.information(d.X)).adjustment
    else:  # the ATC is the ATT of the controls, on the score 1 - p
        adj = ai2016_att_terms(d.y, ~d.t, d.X, 1.0 - probability, -m.estimate, fit.information(d.X)).adjustment
    var = m.std_error_matched ** 2 + adj
    if not var > 0:
        return None, f"the adjusted variance is not positive ({var:.3g})"
    return float(np.sqrt(var)), ""
