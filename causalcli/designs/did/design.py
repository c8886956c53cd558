"""Difference-in-differences: the ``Design`` of the family, which checks the spec and the data and dispatches.

The estimators live one to a module beside this one:

* ``two_by_two``: y on treated, post and treated x post (plus covariates), by OLS;
* ``twfe``: y on the treatment with unit and time fixed effects absorbed; with ``event_study``, one coefficient
  per relative period (``regression`` holds the design matrices, the CRV1 fit and the point estimate the
  refuters recompute; ``pre_trend`` the joint test of the leads; ``bacon`` the Goodman-Bacon decomposition);
* ``callaway_santanna``: group-time ATT(g,t) and their aggregations, the semantics of R ``did::att_gt`` /
  ``aggte``;
* ``honest`` (and ``honest_lp``): Rambachan-Roth relative-magnitude confidence sets;
* ``clusters``: the inference with few clusters; ``panel``: the panel's checks and arrays (``PanelData``);
* ``comparison`` (``estimator: all``): every estimator above, and ``synthetic_did`` with few treated units,
  on the same ``PanelData``, side by side;
* ``segments``: the top-level ``segments``, the headline's estimator fitted on each segment's units.

``prepare`` returns ``PanelData`` (picklable, never changed afterwards); nothing is kept on the design.

References
----------
Callaway, B. and Sant'Anna, P. H. C. (2021). Difference-in-differences with
multiple time periods. Journal of Econometrics 225(2), 200-230.
Goodman-Bacon, A. (2021). Difference-in-differences with variation in
treatment timing. Journal of Econometrics 225(2), 254-277.
Rambachan, A. and Roth, J. (2023). A more credible approach to parallel
trends. Review of Economic Studies 90(5), 2555-2591.
Cameron, A. C., Gelbach, J. B. and Miller, D. L. (2008). Bootstrap-based
improvements for inference with clustered errors. REStat 90(3), 414-427.
"""

from __future__ import annotations

from dataclasses import replace
from typing import TYPE_CHECKING, Any

import numpy as np

from causalcli.data.table import require_columns
from causalcli.designs.base import Design, Fit, RefutersNotRun, require
from causalcli.designs.did.cells import CellsData
from causalcli.designs.did.staggered import STAGGERED, check_staggered_spec, fit_staggered, point_staggered
from causalcli.designs.did.panel import missing_roles as panel_missing_roles
from causalcli.designs.did.panel import (PanelData, build_panel, check_absorbing, check_cohort,
                                         check_constant_within_unit, check_group, check_rows, read_panel,
                                         subset_units)
from causalcli.errors import DataError, SpecError

if TYPE_CHECKING:  # pragma: no cover
    from causalcli.data.table import Table
    from causalcli.graph import Identification
    from causalcli.spec.loading import LoadedSpec
    from causalcli.spec.models import Study

__all__ = ["DidDesign", "PanelData"]


class DidDesign(Design):
    name = "did"
    preload_modules = ("scipy.special",)  # t and chi-square tails of the headline and the pre-trend test
    estimators = ("twfe", "2x2", "callaway_santanna", "imputation", "sun_abraham", "all")
    estimands = ("att",)
    inference = ("crv1_fixest", "hc1", "wild_cluster_bootstrap_webb", "wild_cluster_bootstrap_rademacher",
                 "randomization_inference_units", "cs_analytic", "cs_multiplier_bootstrap",
                 "imputation_conservative_clustered", "imputation_conservative_clustered_overall_att",
                 "sun_abraham_crv1", "sun_abraham_crv1_overall_att", "synthetic_did_placebo_se_normal",
                 "synthetic_did_staggered_placebo_se_normal", "none")
    reference = ("Callaway and Sant'Anna (2021); semantics of R did::att_gt/aggte; TWFE as fixest/pyfixest feols "
                 "with CRV1")
    segments_built = True  # segments.py: the same estimator fitted on each segment's units

    # ------------------------------------------------------------ spec and data checks

    def check_spec(self, study: "Study", spec: "LoadedSpec") -> None:
        require(study, spec, "outcome")
        self.estimand(study, spec)
        d = study.design
        file = spec.source.display
        if d.group and not study.treatment:
            raise SpecError("design.group needs 'treatment', the treated-period indicator (1 in the group's rows "
                            "from the start on), which gives the start", file=file, key="treatment")
        if d.estimator != "callaway_santanna" and not study.treatment and not d.cohort:
            raise SpecError("the did design needs 'treatment' (0/1 per unit and period) or 'design.cohort'",
                            file=file, key="treatment")
        if d.estimator == "callaway_santanna" and not study.treatment and not d.cohort:
            raise SpecError("callaway_santanna needs 'design.cohort' (first treated period) or 'treatment'",
                            file=file, key="design.cohort")
        if d.group and d.cohort:
            raise SpecError("design.group and design.cohort both say which rows are treated: keep one", file=file,
                            key="design.group")
        if d.unit is None:
            check_cross_sections_spec(d, file)
        if d.event_study is not None and d.estimator not in ("twfe", "all"):
            raise SpecError("event_study goes with estimator: twfe (callaway_santanna reports its dynamic "
                            "aggregation in effects)", file=file, key="design.event_study")
        o = d.options
        if o.headline is not None and d.estimator != "all":
            raise SpecError(f"headline chooses among the estimators of estimator: all; estimator: {d.estimator} "
                            "reports its own: remove design.options.headline", file=file,
                            key="design.options.headline")
        if d.estimator in STAGGERED:
            check_staggered_spec(study, file)
        # estimator: all gives each option to the estimators it applies to (comparison.options_for)
        if o.bootstrap == "multiplier" and d.estimator not in ("callaway_santanna", "all"):
            raise SpecError("bootstrap: multiplier is the Callaway-Sant'Anna bootstrap; use bootstrap: wild for "
                            f"{d.estimator}", file=file, key="design.options.bootstrap")
        if o.bootstrap == "wild" and d.estimator == "callaway_santanna":
            raise SpecError("bootstrap: wild applies to 2x2 and twfe; callaway_santanna uses bootstrap: multiplier",
                            file=file, key="design.options.bootstrap")
        if study.segments:
            from causalcli.designs.did.segments import check_segments_spec

            check_segments_spec(study, file)
        if study.categorical:
            c = study.categorical[0]
            raise SpecError("categorical covariates are not built yet for the did design; encode each level as "
                            f"a 0/1 column with data.derive (e.g. {c}_b: \"CAST({c} = 'b' AS INTEGER)\": missing "
                            "stays missing) and list those under covariates", file=file, key="categorical")

    def validate(self, study: "Study", table: "Table", spec: "LoadedSpec") -> None:
        d = study.design
        roles: dict[str, tuple[str, str]] = {d.unit: ("design.unit", "any")} if d.unit else {}
        roles.setdefault(d.time, ("design.time", "time"))
        roles.setdefault(study.outcome, ("outcome", "numeric"))
        if study.treatment:
            roles.setdefault(study.treatment, ("treatment", "binary"))
        if d.cohort:
            roles.setdefault(d.cohort, ("design.cohort", "any"))
        if d.group:
            roles.setdefault(d.group, ("design.group", "any"))
        if d.cluster:
            roles.setdefault(d.cluster, ("design.cluster", "any"))
        if study.weights:
            roles.setdefault(study.weights, ("weights", "numeric"))
        for i, c in enumerate(study.covariates):
            roles.setdefault(c, (f"covariates[{i}]", "numeric_only"))
        for i, c in enumerate(study.segments):
            roles.setdefault(c, (f"segments[{i}]", "any"))
        require_columns(table, roles, d.treated_value, spec.study.data.timezone)
        if study.segments:
            from causalcli.data.segments import check_segment_levels
            from causalcli.designs.did.segments import check_constant

            check_segment_levels(study.segments, table)
            if d.unit:  # (repeated cross-sections: each row its own unit)
                check_constant(table, d.unit, study.segments)
        if d.cohort:  # in the time column's type: read as the same period numbers
            from causalcli.data.types import cohort_column

            cohort_column(table, d.cohort, d.time, timezone=spec.study.data.timezone)
        check_rows(study, table)
        if d.cohort:
            check_cohort(table, d.unit, d.time, d.cohort, study.treatment)
        if d.group:
            check_group(table, d.unit, d.time, d.group, study.treatment)
        absorbing = d.estimator != "twfe" or d.event_study is not None
        if study.treatment and absorbing and d.unit:
            check_absorbing(table, d.unit, d.time, study.treatment)
        if d.cluster and d.unit:
            check_constant_within_unit(table, d.unit, d.cluster, "design.cluster", "cluster")
        if study.weights and d.estimator == "callaway_santanna":  # (non-negative: ``data.table.check_weights``)
            check_constant_within_unit(table, d.unit, study.weights, "weights", "weight")

    def missing_roles(self, study: "Study", identification: "Identification") -> list[tuple[str, str, str]]:
        # the cells path (on an engine) reads the rows instead when one is incomplete: the same counts
        return panel_missing_roles(study)

    def streams(self, study: "Study") -> bool:
        # on an engine, no covariates, weights or bootstrap: cohort x period cells there (``cells``)
        from causalcli.designs.did.cells import spec_reason

        return study.data.backend != "duckdb" and spec_reason(study) is None

    def prepare(self, study: "Study", table: "Table", identification: "Identification",
                spec: "LoadedSpec") -> "PanelData | CellsData":
        if table.engine is None:
            from causalcli.designs.did.cells import spec_reason

            why = spec_reason(study) if study.data.backend != "duckdb" else None
            if why:  # on an engine, the rows were fetched (``streams``): say why the cells could not serve
                table.provenance["did_cells"] = {"computed_from": "the panel's rows, fetched", "why": why}
            return build_panel(study, table, read_panel(study, table))
        from causalcli.data.table import fetch_engine_rows
        from causalcli.designs.did.cells import RowsNeeded, prepare_cells

        def fetch() -> PanelData:
            local = fetch_engine_rows(table, spec, self.columns(study))
            return build_panel(study, local, read_panel(study, local))

        try:
            prepared = prepare_cells(study, table, fetch)
        except RowsNeeded as why:
            table.provenance["did_cells"] = {"computed_from": "the panel's rows, fetched", "why": str(why)}
            return fetch()
        table.provenance["did_cells"] = prepared.diagnostics
        return prepared

    # ------------------------------------------------------------ estimation

    def fit(self, prepared: "PanelData | CellsData", study: "Study", seed: int, jobs: int | None = None) -> Fit:
        from causalcli.runtime.threads import single_threaded_blas

        if isinstance(prepared, CellsData) and prepared.group_time is None:
            prepared = prepared.panel  # 2x2, twfe, event study on the cells (``cells_regression``)
        if isinstance(prepared, CellsData):
            from causalcli.designs.did.callaway_santanna import fit_cs, with_few_units

            p = prepared.panel
            return _guard_honest_did(with_few_units(p, fit_cs(p, study, seed, (prepared.group_time, 0)), study,
                                                    seed))

        # thin products (rows x a few regressors): a second BLAS thread only spins, and stalls on a busy machine
        with single_threaded_blas():
            if prepared.estimator == "all":
                from causalcli.designs.did.comparison import fit_all
                from causalcli.runtime.jobs import resolve_jobs

                # jobs: synthetic DiD's placebo draws, spread over processes as method: synthetic_control does
                return fit_all(prepared, study, seed, resolve_jobs(jobs),
                               lambda p: _guard_honest_did(_fit(p, study, seed)))
            fit = _guard_honest_did(_fit(prepared, study, seed))
            if study.weights:  # where the other designs put theirs, so the renderers say the study was weighted
                fit.diagnostics["weights"] = {
                    "column": study.weights, "zero_weight_rows": prepared.n.get("dropped_zero_weight", 0),
                    "note": "observation weights: weighted least squares for 2x2, TWFE and the event study (fixest's "
                            "weights=), unit weights for Callaway-Sant'Anna (constant within a unit); the pre-trend "
                            "test and segment effects are weighted alike; rows of weight 0 are dropped"}
            if prepared.segment_columns:
                from causalcli.designs.did.segments import segment_effects

                by_segment = segment_effects(prepared, study, seed, lambda p: _fit(p, study, seed), fit.warnings)
                fit.diagnostics["segments"] = by_segment.counts
                fit.diagnostics["heterogeneity"] = by_segment.heterogeneity
                fit = replace(fit, effects=[*fit.effects, *by_segment.effects],
                              warnings=[*fit.warnings, *by_segment.warnings])
            return fit

    # ------------------------------------------------------------ refuters

    def before_refuters(self, prepared: "PanelData | CellsData", names: list[str]) -> None:
        if isinstance(prepared, CellsData) and names and prepared.rows is None:
            try:
                prepared.rows = prepared.fetch()  # refuters permute and subsample units: the panel's rows, once
            except DataError as exc:  # e.g. above data.max_rows: the estimate from the cells stands
                raise RefutersNotRun(f"the refuters permute and subsample units, so they need the panel's rows, "
                                     f"and fetching them failed ({exc.message}); the estimate comes from the "
                                     "engine's cohort x period cells. Run them on a data.sample of units, or "
                                     "pass --no-refute") from None

    def point(self, prepared: "PanelData | CellsData", *, treatment=None, extra_covariate=None, rows=None) -> float:
        p = _rows(prepared)
        g = p.g if treatment is None else treatment
        if rows is not None:
            p, g = subset_units(p, rows, g)
        if extra_covariate is not None:
            p = replace(p, X=np.column_stack([p.X, extra_covariate]), xnames=(*p.xnames, "_random_"))
        if p.estimator == "callaway_santanna":
            from causalcli.designs.did.callaway_santanna import point_cs

            return point_cs(p, g)
        if p.estimator in STAGGERED:
            return point_staggered(p, g)
        from causalcli.designs.did.regression import point_linear

        return point_linear(p, g, own_treatment=treatment is None)

    def refute_once(self, prepared: "PanelData | CellsData", name: str, options: Any,
                    rng: np.random.Generator) -> float:
        p = _rows(prepared)
        if name == "placebo_treatment":
            # permute whole treatment paths (cohorts) across units, not rows
            return self.point(p, treatment=rng.permutation(p.g))
        if name == "random_common_cause":
            if p.estimator == "callaway_santanna":
                u = rng.standard_normal(p.n_units)
                return self.point(p, extra_covariate=u[p.unit])
            return self.point(p, extra_covariate=rng.standard_normal(p.y.size))
        if name == "data_subset":
            k = max(2, int(round(options.fraction * p.n_units)))
            units = np.sort(rng.choice(p.n_units, size=k, replace=False))
            return self.point(p, rows=units)
        raise SpecError(f"refuter {name!r} does not apply to the did design; its refuters: "
                        f"{', '.join(self.default_refuters)}", key="refute")

    def treatment_of(self, prepared: "PanelData | CellsData") -> np.ndarray:
        return _rows(prepared).g

    def units(self, prepared: "PanelData | CellsData") -> int:
        return _rows(prepared).n_units


def check_cross_sections_spec(d: Any, file: str) -> None:
    """A did spec without design.unit: repeated cross-sections, which only the 2x2 can compare, by their groups."""
    if d.estimator != "2x2":
        raise SpecError(f"design.unit is missing: estimator {d.estimator} follows units over time; set design.unit "
                        "to the column that identifies units or, for repeated cross-sections (each row a different "
                        "person or house, seen once), estimator: 2x2 with design.group", file=file, key="design.unit")
    if not d.group and not d.cohort:
        raise SpecError("2x2 on repeated cross-sections (no design.unit) needs design.group: the 0/1 column marking "
                        "the treated group's rows, before and after the start (or design.cohort: the group's first "
                        "treated period, 0 for the comparison group); for a panel, set design.unit instead",
                        file=file, key="design.group")


def _rows(prepared: "PanelData | CellsData") -> PanelData:
    """The panel's rows: ``prepare``'s own, or those the cells path fetched for the refuters."""
    if isinstance(prepared, CellsData):
        assert prepared.rows is not None, "before_refuters fetches the rows"
        return prepared.rows
    return prepared


def _fit(p: PanelData, study: "Study", seed: int) -> Fit:
    if p.estimator == "callaway_santanna":
        from causalcli.designs.did.callaway_santanna import fit_cs, with_few_units

        return with_few_units(p, fit_cs(p, study, seed), study, seed)
    if p.estimator in STAGGERED:
        return fit_staggered(p, study, seed)
    if p.estimator == "2x2":
        from causalcli.designs.did.two_by_two import fit_2x2

        return fit_2x2(p, study, seed)
    from causalcli.designs.did.twfe import fit_event_study, fit_twfe

    if p.leads is not None:
        return fit_event_study(p, study, seed)
    return fit_twfe(p, study, seed)


def _guard_honest_did(fit: Fit) -> Fit:
    """Honest-DiD sets built on a zero or near-zero standard error are rounding noise: skipped, with the reason."""
    from causalcli.inference.estimate import unusable_se_reason

    honest = fit.diagnostics.get("sensitivity", {}).get("honest_did")
    if not honest or "skipped" in honest:
        return fit
    reason = unusable_se_reason(honest.get("std_error"), honest.get("estimate", 0.0))
    if fit.estimate.std_error is None and reason is None:
        reason = "the estimate has no standard error (see warnings)"
    if reason is not None:
        fit.diagnostics["sensitivity"]["honest_did"] = {"skipped": f"not computed: {reason}"}
    return fit
