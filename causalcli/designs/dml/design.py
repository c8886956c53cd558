"""Double machine learning through EconML.

``model: linear`` is EconML's ``LinearDML``: the outcome and the treatment are
residualised on the covariates with cross-fitted learners, and the outcome
residual is regressed on the treatment residual (times the segment dummies,
when ``segments`` are given), with a heteroskedasticity-robust (HC1) covariance.
``model: forest`` is EconML's ``CausalForestDML``: the same residuals feed a
generalised random forest over the covariates; for a binary treatment the ATE
and ATT are its doubly robust averages of out-of-bag forest predictions.

Observation weights (the top-level ``weights``) are probability weights: EconML's ``sample_weight`` fits every
nuisance model and the final stage with them, and the ATE, ATT, segment effects and CATE summary are weighted
means (``final.py``); rows of weight 0 are dropped and counted (docs/designs/dml.md, "Observation weights").

Cross-fitting folds are drawn once from the seed (stratified by a binary
treatment) and passed to EconML as explicit splits, so refuters reuse them.
The module map: ``data.py`` (what prepare builds and what fit learns),
``nuisance.py`` (learners, cross-fitting, nuisance diagnostics and overlap),
``final.py`` (final stage and its inference, the refuters' recomputation),
this module (the ``Design``: spec and data checks, prepare, fit, point).

References
----------
Chernozhukov, V., Chetverikov, D., Demirer, M., Duflo, E., Hansen, C., Newey, W.
and Robins, J. (2018). Double/debiased machine learning for treatment and
structural parameters. The Econometrics Journal 21(1), C1-C68.
Athey, S., Tibshirani, J. and Wager, S. (2019). Generalized random forests.
Annals of Statistics 47(2), 1148-1178.
Battocchi, K. et al. (2019). EconML: A Python package for ML-based heterogeneous
treatment effects estimation. https://github.com/py-why/EconML
"""

from __future__ import annotations

from dataclasses import replace
from typing import TYPE_CHECKING, Any

import numpy as np

from causalcli.data.missing import study_roles_missing
from causalcli.data.segments import SEGMENT_ROLE, check_segment_columns, check_segment_levels, segment_labels
from causalcli.data.table import TABLE, MissingRows, require_columns, study_arrays, study_roles
from causalcli.data.table import quote_identifier as _quote
from causalcli.data.weights import keep_positive_weights, zero_weight_warning
from causalcli.designs.base import Design, Fit, require
from causalcli.designs.dml.common_cause import common_cause_point, prime
from causalcli.designs.dml.data import DmlData, effect_modifier_names, effect_modifiers
from causalcli.designs.dml.final import (INFERENCE, PLACEBO_TREES, REFUTER_TREES, cate_summary, final_stage_point,
                                         headline, heterogeneity_tests, segment_effects)
from causalcli.designs.dml.nuisance import (cross_fit, dml_overlap_check, learner_names, nuisance_summary,
                                            worse_than_constant)
from causalcli.errors import DataError, EstimationError, SpecError

if TYPE_CHECKING:  # pragma: no cover
    from causalcli.data.missing import Roles
    from causalcli.data.table import Table
    from causalcli.graph import Identification
    from causalcli.spec.loading import LoadedSpec
    from causalcli.spec.models import Study



class DmlDesign(Design):
    name = "dml"
    estimators = ("linear_dml", "causal_forest_dml")
    estimands = ("ate", "att")
    inference = tuple(INFERENCE.values())
    reference = ("Chernozhukov et al. (2018), Econometrics Journal; Athey, Tibshirani and Wager (2019), "
                 "Annals of Statistics; EconML (py-why)")
    weights_built = True  # the top-level weights as probability weights: every fit and average weighted
    segments_built = True
    thresholds_checked = ("alpha", "propensity_bounds", "max_outside")  # the overlap check of the nuisance score
    uses_adjustment_set = True  # covariates outside the graph's adjustment set are left out (and warned)
    provenance_packages = ("econml", "scikit-learn")  # the learners' fits change with their versions

    # ------------------------------------------------------------ spec and data

    def check_spec(self, study: "Study", spec: "LoadedSpec") -> None:
        require(study, spec, "treatment", "outcome", "covariates")
        self.estimand(study, spec)
        check_segment_columns(study, spec.source.display)  # names segments[i] and the column (exit 2)

    def validate(self, study: "Study", table: "Table", spec: "LoadedSpec") -> None:
        from causalcli.data.types import coded_binary

        roles = study_roles(study, "numeric")
        if coded_binary(table, study.treatment, study.design.treated_value):  # yes/no, true/false, two labels
            roles[study.treatment] = ("treatment", "binary")
        require_columns(table, roles, study.design.treated_value)
        binary = self._binary(study, table, spec)
        if self.estimand(study, spec) == "att" and not binary:
            raise SpecError(f"estimand 'att' needs a binary treatment; {study.treatment!r} is continuous "
                            "(use estimand: ate, the effect of one more unit of treatment)",
                            file=spec.source.display, key="design.estimand")
        check_segment_levels(study.segments, table)

    def _binary(self, study: "Study", table: "Table", spec: "LoadedSpec") -> bool:
        kind = study.design.options.treatment_type
        q = _quote(study.treatment)
        distinct, outside = table.sql(
            f"SELECT count(DISTINCT {q}), count(*) FILTER (WHERE CAST({q} AS DOUBLE) NOT IN (0, 1)) FROM {TABLE}")[0]
        if distinct < 2:
            raise DataError(f"treatment column {study.treatment!r} has a single value; it must vary",
                            file=table.file, key="treatment", column=study.treatment)
        if kind == "binary" and outside:
            raise DataError(f"treatment_type is binary but {study.treatment!r} takes values other than 0 and 1",
                            file=table.file, key="treatment", column=study.treatment)
        if kind == "auto":
            return not outside
        return kind == "binary"

    def missing_roles(self, study: "Study", identification: "Identification") -> "Roles":
        """Treatment, outcome, the adjustment set's covariates, the segment columns, then the weights (their rows
        are dropped), the order ``study_arrays`` attributes them in."""
        roles = study_roles_missing(study.treatment, study.outcome, list(identification.adjustment_set),
                                    tuple(study.segments), SEGMENT_ROLE)
        used = {column for column, _, _ in roles}
        return roles + ([(study.weights, "weights", "weights")] if study.weights and study.weights not in used else [])

    def prepare(self, study: "Study", table: "Table", identification: "Identification", spec: "LoadedSpec") -> DmlData:
        covs = list(identification.adjustment_set)
        if not covs:
            raise SpecError("dml needs at least one covariate to adjust for", file=spec.source.display,
                            key="covariates")
        segs = list(study.segments)
        categorical = tuple(c for c in study.categorical if c in covs)
        arrays = study_arrays(table, study.treatment, study.outcome, covs, list(categorical), extra=tuple(segs),
                              extra_text=tuple(c for c in segs if not table.is_numeric(c)), extra_role=SEGMENT_ROLE,
                              weights=study.weights)
        cols, W, names, t, dropped = arrays.cols, arrays.X, arrays.names, arrays.t, arrays.dropped
        cols, W, t, sample_weights, zero_weight = keep_positive_weights(cols, W, t, study.weights, table.file)
        n = t.size
        binary = self._binary(study, table, spec)
        opts = study.design.options
        if binary:
            n_treated = int(t.sum())
            if min(n_treated, n - n_treated) < 2 * opts.folds:
                raise DataError(f"{min(n_treated, n - n_treated)} units in the smaller arm of {study.treatment!r}: "
                                f"too few for {opts.folds} cross-fitting folds (need {2 * opts.folds})",
                                file=table.file, key="design.options.folds", column=study.treatment)
        elif np.ptp(t) == 0:
            raise DataError(f"treatment {study.treatment!r} is constant in the complete rows", file=table.file,
                            key="treatment", column=study.treatment)
        seg_values = tuple(segment_labels(cols[c]) for c in segs)
        dummies, dummy_names = [], []
        for c, values in zip(segs, seg_values):
            levels = np.unique(values)
            for level in levels[1:]:
                dummies.append((values == level).astype(np.float64))
                dummy_names.append(f"{c}={level}")
        S = np.column_stack(dummies) if dummies else np.empty((n, 0))
        return DmlData(
            W=W, covariates=tuple(names), t=t, y=np.asarray(cols[study.outcome], dtype=np.float64), binary=binary,
            S=S, segment_dummies=tuple(dummy_names), segment_columns=tuple(segs), segment_values=seg_values,
            model=opts.model, learner=opts.learner, folds=opts.folds, trees=opts.trees, min_leaf=opts.min_leaf,
            estimand=self.estimand(study, spec), treatment=study.treatment, rows=table.rows,
            dropped_missing=dropped, file=table.file, missing=arrays.missing,
            sample_weights=sample_weights, weights_column=study.weights, zero_weight=zero_weight,
        )

    # ------------------------------------------------------------ estimation

    def fit(self, prepared: DmlData, study: "Study", seed: int, jobs: int | None = None) -> Fit:
        d = prepared
        X = effect_modifiers(d)
        est, cf, caught = cross_fit(d, X, seed)
        treated = d.t == 1 if d.binary else None
        estimate = headline(est, d, X, study.conf_level)
        effects, warn_seg = segment_effects(est, d, X, study.conf_level)
        missing = d.missing or MissingRows({"dropped_missing": d.dropped_missing})
        n = {"rows": d.rows, **missing.n, **({"dropped_zero_weight": d.zero_weight} if d.zero_weight else {}),
             "used": int(d.t.size)}
        if d.binary:
            n.update(treated=int(treated.sum()), control=int((~treated).sum()))
        nuisance = nuisance_summary(est, d, cf.y_res, cf.t_res, study.thresholds.propensity_bounds)
        checks = [dml_overlap_check(nuisance, d, study.thresholds.max_outside, study.thresholds.propensity_bounds)]
        diagnostics: dict[str, Any] = {
            "nuisance": nuisance,
            "dml": {
                "estimator": "LinearDML" if d.model == "linear" else "CausalForestDML",
                "learner": d.learner,
                "learners": learner_names(d.learner, d.binary),
                "folds": d.folds,
                "fold_sizes": np.bincount(cf.ids, minlength=d.folds).tolist(),
                "treatment_type": "binary" if d.binary else "continuous",
                "effect_scale": ("treated (1) against control (0)" if d.binary
                                 else "per one unit of treatment (a linear dose-response is assumed)"),
                "controls": list(d.covariates),
                "effect_modifiers": effect_modifier_names(d),
            },
        }
        if d.sample_weights is not None:
            diagnostics["weights"] = {
                "column": d.weights_column, "zero_weight_rows": d.zero_weight, "sum": float(d.sample_weights.sum()),
                "note": "probability (sampling) weights: every nuisance model and the final stage are fitted with them "
                        "(EconML's sample_weight), the ATE, ATT, segment effects and CATE summary are weighted means; "
                        "the folds are drawn on rows; rows of weight 0 are dropped"}
        if d.segment_columns:
            diagnostics["heterogeneity"] = heterogeneity_tests(est, d, effects, cf.y_res, cf.t_res)
        if d.model == "forest":
            diagnostics["cate"] = cate_summary(est, d, X)
        warnings_out = [*missing.warnings, *caught, *worse_than_constant(nuisance, d), *warn_seg]
        warnings_out += zero_weight_warning(d.zero_weight, d.weights_column or "")
        if d.model == "linear" and not d.segment_columns and d.estimand == "att":
            warnings_out.append("model: linear without segments estimates one constant effect, so the ATT equals "
                                "the ATE; use segments or model: forest for effects that differ among the treated")
        estimator = "linear_dml" if d.model == "linear" else "causal_forest_dml"
        return Fit(estimator, d.estimand, estimate, n, effects=effects, diagnostics=diagnostics, checks=checks,
                   warnings=warnings_out, refute_on=replace(d, cross_fit=cf))

    # ------------------------------------------------------------ refuters

    def point(self, prepared: DmlData, *, treatment=None, extra_covariate=None, rows=None) -> float:
        """The point estimate under a refuter's change, recomputing only what it touches.

        ``prepared`` is the copy ``fit`` returned in ``Fit.refute_on``, with the fit's ``CrossFit``.
        A permuted treatment or a subset of rows reuses the out-of-fold residuals and refits only the
        final stage (``final_stage_point``). An added covariate refits (small data, tree learners) or
        continues each fold's nuisance models on it (``common_cause``), then refits the final stage.
        """
        d, cf = prepared, prepared.cross_fit
        if cf is None:
            raise EstimationError("the dml refuters need the data its fit returned (Fit.refute_on), which carry "
                                  "the cross-fitted residuals")
        if extra_covariate is None:
            trees = REFUTER_TREES if treatment is None else PLACEBO_TREES  # model: forest only
            return final_stage_point(d, cf, treatment, rows, trees=trees)
        return common_cause_point(d, cf, extra_covariate)

    def before_refuters(self, prepared: DmlData, names: list[str]) -> None:
        """random_common_cause: the fold models' predictions, computed once here in the main process;
        the forked workers inherit them."""
        if "random_common_cause" in names:
            prime(prepared)

    def treatment_of(self, prepared: DmlData) -> np.ndarray:
        return prepared.t

    def units(self, prepared: DmlData) -> int:
        return int(prepared.t.size)
