"""Difference-in-differences: 2x2, two-way fixed effects, event studies and Callaway-Sant'Anna.

* ``2x2``: y on treated, post and treated x post (plus covariates), by OLS.
* ``twfe``: y on the treatment with unit and time fixed effects absorbed
  (``causalcli.models.fixed_effects``); with ``event_study``, one coefficient per relative
  period -leads..-2 and 0..lags (end points binned, -1 the reference).
* ``callaway_santanna``: group-time ATT(g,t) and their aggregations, the
  semantics of R ``did::att_gt`` / ``aggte`` (``causalcli.designs.did.callaway_santanna``).

Standard errors of the regressions are CRV1 on ``cluster`` (default: the unit)
with fixest's small-sample corrections and t(G-1) p-values.

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

from dataclasses import dataclass, replace
from typing import TYPE_CHECKING, Any

import numpy as np

from causalcli.data.table import require_columns
from causalcli.data.types import period_json, period_text
from causalcli.designs.base import Design, Fit, require
from causalcli.errors import DataError, EstimationError, SpecError
from causalcli.records import Check, Estimate

if TYPE_CHECKING:  # pragma: no cover
    from causalcli.data.table import Table
    from causalcli.graph import Identification
    from causalcli.spec.loading import LoadedSpec
    from causalcli.spec.models import Study


@dataclass(frozen=True)
class PanelData:
    """Arrays shared by the estimator and the refuters (picklable)."""

    estimator: str
    unit: np.ndarray        # row -> unit code
    n_units: int
    time: np.ndarray        # row -> period index into ``times``
    times: np.ndarray       # sorted distinct periods
    y: np.ndarray
    g: np.ndarray           # unit -> first treated period index, -1 = never (in the panel)
    d: np.ndarray | None    # row treatment (twfe without absorbing assumption); None: 1(time >= g)
    X: np.ndarray           # covariates (rows x k)
    xnames: tuple[str, ...]
    w: np.ndarray | None
    cluster: np.ndarray
    n_clusters: int
    cluster_name: str
    leads: int | None
    lags: int | None
    options: Any
    n: dict
    panel: dict
    warnings: tuple[str, ...]
    unit_labels: np.ndarray
    time_labels: tuple[str, ...] | None = None  # ISO day of each period number when time holds dates


class DidDesign(Design):
    name = "did"
    summary = "Difference-in-differences: 2x2, TWFE, event study, Callaway-Sant'Anna"
    estimators = ("twfe", "2x2", "callaway_santanna")
    estimands = ("att",)
    inference = ("crv1_fixest", "wild_cluster_bootstrap_webb", "wild_cluster_bootstrap_rademacher",
                 "randomization_inference_units", "cs_analytic", "cs_multiplier_bootstrap", "none")
    reference = ("Callaway and Sant'Anna (2021); semantics of R did::att_gt/aggte; TWFE as fixest/pyfixest feols "
                 "with CRV1")

    # ------------------------------------------------------------ spec and data checks

    def check_spec(self, study: "Study", spec: "LoadedSpec") -> None:
        require(study, spec, "outcome")
        self.estimand(study, spec)
        d = study.design
        file = spec.source.display
        if d.estimator != "callaway_santanna" and not study.treatment and not d.cohort:
            raise SpecError("the did design needs 'treatment' (0/1 per unit and period) or 'design.cohort'",
                            file=file, key="treatment")
        if d.estimator == "callaway_santanna" and not study.treatment and not d.cohort:
            raise SpecError("callaway_santanna needs 'design.cohort' (first treated period) or 'treatment'",
                            file=file, key="design.cohort")
        if d.event_study is not None and d.estimator != "twfe":
            raise SpecError("event_study goes with estimator: twfe (callaway_santanna reports its dynamic "
                            "aggregation in effects)", file=file, key="design.event_study")
        o = d.options
        if o.bootstrap == "multiplier" and d.estimator != "callaway_santanna":
            raise SpecError("bootstrap: multiplier is the Callaway-Sant'Anna bootstrap; use bootstrap: wild for "
                            f"{d.estimator}", file=file, key="design.options.bootstrap")
        if o.bootstrap == "wild" and d.estimator == "callaway_santanna":
            raise SpecError("bootstrap: wild applies to 2x2 and twfe; callaway_santanna uses bootstrap: multiplier",
                            file=file, key="design.options.bootstrap")
        if o.bootstrap == "wild":
            import importlib.util

            if importlib.util.find_spec("causalcli.inference.wild") is None:
                raise SpecError("bootstrap: wild (wild cluster bootstrap) is not built yet; remove it",
                                file=file, key="design.options.bootstrap")
        if study.segments:
            raise SpecError("segments are not built yet for the did design; remove 'segments'", file=file,
                            key="segments")
        if study.categorical:
            raise SpecError("categorical covariates are not built yet for the did design; encode them as 0/1 "
                            "columns", file=file, key="categorical")

    def validate(self, study: "Study", table: "Table", spec: "LoadedSpec") -> None:
        from causalcli.designs.did.panel import check_absorbing, check_cohort, check_constant_within_unit

        d = study.design
        roles: dict[str, tuple[str, str]] = {d.unit: ("design.unit", "any"), d.time: ("design.time", "time"),
                                             study.outcome: ("outcome", "numeric")}
        if study.treatment:
            roles.setdefault(study.treatment, ("treatment", "binary"))
        if d.cohort:
            roles.setdefault(d.cohort, ("design.cohort", "any"))
        if d.cluster:
            roles.setdefault(d.cluster, ("design.cluster", "any"))
        if study.weights:
            roles.setdefault(study.weights, ("weights", "numeric"))
        for i, c in enumerate(study.covariates):
            roles.setdefault(c, (f"covariates[{i}]", "numeric"))
        require_columns(table, roles, d.treated_value, spec.study.data.timezone)
        if d.cohort:  # in the time column's type: read as the same period numbers
            from causalcli.data.types import cohort_column

            cohort_column(table, d.cohort, d.time, timezone=spec.study.data.timezone)
        self._columns(study, table)  # unit x time uniqueness, in numpy on the rows prepare will use
        if d.cohort:
            check_cohort(table, d.unit, d.time, d.cohort, study.treatment)
        absorbing = d.estimator != "twfe" or d.event_study is not None
        if study.treatment and absorbing:
            check_absorbing(table, d.unit, d.time, study.treatment)
        if d.cluster:
            check_constant_within_unit(table, d.unit, d.cluster, "design.cluster", "cluster")
        if study.weights:
            from causalcli.designs.did.panel import T, q

            neg = table.sql(f"SELECT count(*) FROM {T} WHERE {q(study.weights)} < 0")[0][0]
            if neg:
                raise DataError(f"weights {study.weights!r} has {neg} negative values", file=table.file,
                                key="weights", column=study.weights)
            if d.estimator == "callaway_santanna":
                check_constant_within_unit(table, d.unit, study.weights, "weights", "weight")

    # ------------------------------------------------------------ arrays

    def _columns(self, study: "Study", table: "Table") -> dict:
        """The rows and codes of the panel, fetched once for validate and prepare."""
        from causalcli.models.fixed_effects import codes_of

        cached = getattr(self, "_cache", None)
        if cached is not None and cached[0] is table:
            return cached[1]
        d = study.design
        covs = list(dict.fromkeys(study.covariates))
        cols = [d.unit, d.time, study.outcome, *covs]
        for extra in (study.treatment, d.cohort, d.cluster, study.weights):
            if extra:
                cols.append(extra)
        arr, dropped = table.arrays(cols)
        from causalcli.data.table import dropped_missing

        roles = [(study.treatment, "treatment", "treatment"), (study.outcome, "outcome", "outcome"),
                 *[(c, "covariates", "covariate") for c in covs], (d.unit, "unit", "unit"), (d.time, "time", "time"),
                 (d.cohort, "cohort", "cohort"), (d.cluster, "cluster", "cluster"), (study.weights, "weights", "weights")]
        missing = dropped_missing(table, [r for r in roles if r[0]], dropped)
        if len(arr[d.unit]) == 0:
            raise DataError("no complete rows: every row misses a value in the columns used", file=table.file)
        unit_raw = np.asarray(arr[d.unit])
        time_raw = np.asarray(arr[d.time], dtype=np.float64)
        tcode, n_times, times = codes_of(time_raw, labels=True)
        ucode, n_units, unit_labels = codes_of(unit_raw, labels=True)
        key = ucode * n_times + tcode
        counts = np.bincount(key, minlength=n_units * n_times)
        if counts.max() > 1:
            k = int(np.flatnonzero(counts > 1)[0])
            u, t = unit_labels[k // n_times], times[k % n_times]
            from causalcli.designs.did.panel import _show

            raise DataError(f"the panel is not unique on unit x time: unit {_show(u)} has {int(counts[k])} rows in "
                            f"period {period_text(float(t), table.period_labels.get(d.time))} (columns {d.unit!r}, "
                            f"{d.time!r}); aggregate or deduplicate "
                            "first", file=table.file, key="design.unit", column=d.unit)
        out = {"arr": arr, "dropped": dropped, "missing": missing, "unit_raw": unit_raw, "time_raw": time_raw, "times": times,
               "tcode": tcode, "ucode": ucode, "n_units": n_units, "unit_labels": unit_labels}
        self._cache = (table, out)
        return out

    def prepare(self, study: "Study", table: "Table", identification: "Identification", spec: "LoadedSpec") -> PanelData:
        from causalcli.models.fixed_effects import codes_of

        d = study.design
        covs = list(dict.fromkeys(study.covariates))
        c = self._columns(study, table)
        self._cache = None
        arr, dropped, unit_raw, time_raw = c["arr"], c["dropped"], c["unit_raw"], c["time_raw"]
        times, tcode, ucode, n_units, unit_labels = c["times"], c["tcode"], c["ucode"], c["n_units"], c["unit_labels"]
        warnings: list[str] = list(c["missing"].warnings)
        absorbing = d.estimator != "twfe" or d.event_study is not None
        row_d = None
        if d.cohort:
            gval = np.asarray(arr[d.cohort], dtype=np.float64)
            g_unit_val = np.zeros(n_units)
            g_unit_val[ucode] = gval
        else:
            dd = np.asarray(arr[study.treatment], dtype=np.float64)
            # first treated period of each unit (absorbing treatment)
            first = np.full(n_units, np.inf)
            np.minimum.at(first, ucode[dd > 0], time_raw[dd > 0])
            g_unit_val = np.where(np.isfinite(first), first, 0.0)
            gr = np.where(np.isfinite(first), first, np.inf)[ucode]
            if not absorbing and not np.array_equal(dd > 0, time_raw >= gr):
                row_d = dd  # on/off treatment: used as it is
        labels = table.period_labels.get(d.time)
        late = (g_unit_val > times[-1])
        if late.any():
            warnings.append(f"{int(late.sum())} units are first treated after the last period "
                            f"({period_text(times[-1], labels)}); they count as never treated in this panel")
            g_unit_val = np.where(late, 0.0, g_unit_val)
        g_idx = np.where(g_unit_val > 0, np.searchsorted(times, g_unit_val, side="left"), -1).astype(np.int64)
        # Units treated from the first period on have no pre-period. Plain TWFE keeps them, as the standard
        # two-way fixed-effects regression does (their unit effect absorbs their treatment; they still inform the
        # period effects and the covariates). The other estimators cannot use them and drop them, saying why.
        first_treated = g_idx == 0
        n_always = int(first_treated.sum())
        keeps_always_treated = d.estimator == "twfe" and d.event_study is None
        n_first = 0 if keeps_always_treated else n_always
        keep_rows = None
        first_period = float(times[0])
        if n_first:
            why = {"2x2": "the 2x2 compares treated units before and after the start",
                   "callaway_santanna": "no group-time effect can be formed for them, as in R's did"}.get(
                d.estimator, "their event time is not known (treated at or before the panel's start), so no "
                             "relative-period dummy can place them against the reference period -1, as in Sun and "
                             "Abraham (2021); plain twfe without event_study keeps them")
            warnings.append(f"{n_first} units treated in the first period ({period_text(times[0], labels)}) have "
                            "no pre-treatment "
                            f"period and were dropped: {why}")
            keep_rows = ~first_treated[ucode]
        if keep_rows is not None:
            arr = {k: np.asarray(v)[keep_rows] for k, v in arr.items()}
            unit_raw = unit_raw[keep_rows]
            if row_d is not None:
                row_d = row_d[keep_rows]
            old_codes = ucode[keep_rows]
            kept_units = np.flatnonzero(~first_treated)
            remap = np.full(n_units, -1, dtype=np.int64)
            remap[kept_units] = np.arange(kept_units.size)
            ucode = remap[old_codes]
            g_unit_val = g_unit_val[kept_units]
            unit_labels = unit_labels[kept_units]
            n_units = int(kept_units.size)
            time_raw = time_raw[keep_rows]
            tcode, _, times = codes_of(time_raw, labels=True)
            g_idx = np.where(g_unit_val > 0, np.searchsorted(times, g_unit_val, side="left"), -1).astype(np.int64)
        tcode = tcode.astype(np.int64)
        if n_units < 2:
            raise DataError("fewer than two units remain", file=table.file, key="design.unit")
        if not (g_idx >= 0).any():
            msg = ("no unit is ever treated in the panel" if not n_first else
                   f"the {n_first} units treated in the first period ({period_text(first_period, labels)}) were "
                   "dropped (no "
                   "pre-treatment period) and no treated unit remains")
            raise DataError(msg, file=table.file, key="design.cohort" if d.cohort else "treatment")
        if keeps_always_treated and n_always:
            row_treat = row_d if row_d is not None else (g_idx[ucode] >= 0) & (time_raw >= times[np.maximum(
                g_idx[ucode], 0)])
            lo = np.ones(n_units, dtype=bool)
            hi = np.zeros(n_units, dtype=bool)
            np.logical_and.at(lo, ucode, row_treat > 0)
            np.logical_or.at(hi, ucode, row_treat > 0)
            if not (hi & ~lo).any():
                raise DataError(
                    f"no unit changes treatment within the panel: the {n_always} treated units are treated in every "
                    f"period from the first ({period_text(first_period, labels)}) on, so the unit fixed effects absorb "
                    "the treatment; "
                    "twfe needs units observed both before and after their treatment starts",
                    file=table.file, key="design.cohort" if d.cohort else "treatment")
        if not (g_idx < 0).any() and d.estimator == "2x2":
            raise DataError("2x2 needs never-treated units as controls; none found", file=table.file,
                            key="design.cohort" if d.cohort else "treatment")
        y = np.asarray(arr[study.outcome], dtype=np.float64)
        X = (np.column_stack([np.asarray(arr[c], dtype=np.float64) for c in covs]) if covs
             else np.empty((y.size, 0)))
        w = None
        if study.weights:
            w = np.asarray(arr[study.weights], dtype=np.float64)
            if not (w > 0).any():
                raise DataError("every weight is zero", file=table.file, key="weights")
        if d.cluster:
            cl, G = codes_of(np.asarray(arr[d.cluster]))[:2]
            cname = d.cluster
        else:
            cl, G = ucode, n_units
            cname = d.unit
        counts = np.bincount(ucode, minlength=n_units)
        balanced = bool(np.all(counts == times.size))
        panel = {"units": n_units, "periods": int(times.size), "rows": int(y.size), "balanced": balanced,
                 "missing_unit_periods": int(n_units * times.size - y.size),
                 "first_period": period_json(times[0], labels), "last_period": period_json(times[-1], labels),
                 "cohorts": {period_text(times[k], labels): int((g_idx == k).sum())
                             for k in np.unique(g_idx[g_idx >= 0])},
                 "never_treated_units": int((g_idx < 0).sum()),
                 "always_treated_units": int((g_idx == 0).sum())}
        if not balanced and np.all(counts == 1):  # kielmc: each house sold once, in 1978 or 1981
            warnings.append(f"each unit appears in one period only ({n_units} units, {times.size} periods): "
                            "repeated cross-sections, compared through their groups (design.cohort); no unit is "
                            "followed over time")
        elif not balanced:
            warnings.append(f"unbalanced panel: {panel['missing_unit_periods']} unit-periods are missing "
                            f"({n_units} units x {times.size} periods, {y.size} rows)")
        n = {"rows": table.rows, **c["missing"].n, "units": n_units,
             "treated_units": int((g_idx >= 0).sum()), "control_units": int((g_idx < 0).sum()),
             "units_treated_first_period_dropped": n_first, "units_always_treated_kept": int((g_idx == 0).sum()),
             "periods": int(times.size), "clusters": int(G)}
        es = d.event_study
        return PanelData(
            estimator=d.estimator, unit=ucode, n_units=n_units, time=tcode, times=times, y=y, g=g_idx, d=row_d,
            X=X, xnames=tuple(covs), w=w, cluster=cl, n_clusters=int(G), cluster_name=cname,
            leads=es.leads if es else None, lags=es.lags if es else None, options=d.options, n=n, panel=panel,
            warnings=tuple(warnings), unit_labels=unit_labels, time_labels=tuple(labels) if labels else None,
        )

    # ------------------------------------------------------------ estimation

    def fit(self, prepared: PanelData, study: "Study", seed: int, jobs: int | None = None) -> Fit:
        from causalcli.runtime.threads import single_threaded_blas

        # thin products (rows x a few regressors): a second BLAS thread only spins, and stalls on a busy machine
        with single_threaded_blas():
            return _guard_honest_did(self._fit(prepared, study, seed))

    def _fit(self, prepared: PanelData, study: "Study", seed: int) -> Fit:
        p = prepared
        if p.estimator == "callaway_santanna":
            from causalcli.designs.did.callaway_santanna import fit_cs

            return self._few_units_cs(p, fit_cs(p, study, seed), study, seed)
        if p.estimator == "2x2":
            return self._fit_2x2(p, study, seed)
        if p.leads is not None:
            return self._fit_event_study(p, study, seed)
        return self._fit_twfe(p, study, seed)

    def _regress(self, p: PanelData, X: np.ndarray, names: list[str], fe: bool):
        from causalcli.models.fixed_effects import ols_crv1

        groups = [(p.unit, p.n_units), (p.time, int(p.times.size))] if fe else []
        return ols_crv1(p.y, X, names, (p.cluster, p.n_clusters), groups, p.w, p.options.tolerance)

    def _headline(self, p: PanelData, fit, a: np.ndarray, X: np.ndarray, fe: bool, study: "Study",
                  seed: int) -> tuple[Estimate, dict, Check, list[str]]:
        """The estimate a'b with CRV1 SE and, with few clusters, wild-bootstrap or randomization p and interval
        (``causalcli.designs.did.clusters``); also ``diagnostics.clusters``, the ``clusters`` check and warnings."""
        from causalcli.designs.did.clusters import apply
        from causalcli.inference.estimate import t_estimate

        var = float(a @ fit.vcov @ a)
        se = float(np.sqrt(var)) if np.isfinite(var) and var >= 0 else float("nan")
        est = t_estimate(float(a @ fit.coef), se, fit.df_t, study.conf_level, "crv1_fixest")

        def wild(weights: str) -> dict:
            from causalcli.inference.wild import wild_cluster_bootstrap

            return wild_cluster_bootstrap(p, X, fe, [a], fit.vcov, study.conf_level, p.options.draws, seed,
                                          weights)[0]

        return apply(p, estimate=est, n_obs=fit.n, k=fit.df_k, conf_level=study.conf_level, draws=p.options.draws,
                     seed=seed, wild=wild, point=self.point, analytic_name="crv1_fixest")

    def _few_units_cs(self, p: PanelData, fit: Fit, study: "Study", seed: int) -> Fit:
        """Callaway-Sant'Anna: its SEs are unit-level (influence function); with few units or few treated units
        the p-value and interval come from randomization inference over units (``did_clusters``)."""
        from causalcli.designs.did.clusters import apply

        est, diag, check, warns = apply(p, estimate=fit.estimate, n_obs=None, k=None, conf_level=study.conf_level,
                                        draws=p.options.draws, seed=seed, wild=None, point=self.point,
                                        analytic_name=fit.estimate.inference, unit_level=True)
        fit.diagnostics["clusters"] = diag
        effects, checks, warns = fit.effects, list(fit.checks), list(warns)
        if est.std_error is None:
            effects = [replace(e, std_error=None, ci_lower=None, ci_upper=None, p_value=None, inference="none")
                       for e in effects]
        elif diag.get("method") == "randomization_inference_units":
            # The analytic influence-function p-values of the other aggregations over-reject as the headline's
            # would; randomization inference is run for the headline only, so they carry no p or interval.
            effects = [replace(e, ci_lower=None, ci_upper=None, p_value=None, inference="none") for e in effects]
            warns.append("Callaway-Sant'Anna effects by group, period and event time carry their analytic standard "
                         "errors but no p-value or interval: with this few (treated) units the analytic (influence-function) "
                         "inference cannot be trusted, and randomization inference is run for the headline only")
            for i, c in enumerate(checks):
                if c.name == "pre_trend" and c.passed is not None:
                    if isinstance(fit.diagnostics.get("pre_trend"), dict):
                        fit.diagnostics["pre_trend"]["passed"] = None
                        fit.diagnostics["pre_trend"]["not_judged"] = ("few (treated) units: the analytic Wald "
                                                                      "test cannot be trusted")
                    checks[i] = Check(c.name, None, c.detail + " -- not judged: with this few (treated) units this "
                                      "analytic test over-rejects (see the clusters check); look at the pre-period effects")
            # Honest-DiD sets are built on the same analytic SEs (organ donations: [-0.032, -0.011] at Mbar 0
            # beside a randomization p of 0.148); skipped, as the event study skips them on an unusable SE.
            sensitivity = fit.diagnostics.get("sensitivity")
            if isinstance(sensitivity, dict) and "honest_did" in sensitivity:
                sensitivity["honest_did"] = {"skipped": "its confidence sets rest on the analytic standard errors, "
                                                        "which cannot be trusted with this few (treated) units (see the "
                                                        "clusters check)"}
        return replace(fit, estimate=est, effects=effects, checks=[*checks, check], warnings=[*fit.warnings, *warns])

    def _base_n(self, p: PanelData, used: int) -> dict:
        n = dict(p.n)
        n["used"] = used
        return n

    def _panel_diag(self, p: PanelData, fit) -> dict:
        return {"panel": p.panel,
                "standard_errors": {"type": "CRV1", "cluster": p.cluster_name, "clusters": fit.clusters,
                                    "small_sample": "G/(G-1) * (N-1)/(N-K), fixest ssc(adj=TRUE, "
                                                    "fixef.K='nested', cluster.adj=TRUE)",
                                    "K": fit.df_k, "t_df": fit.df_t, "factor": fit.ssc}}

    def _fit_2x2(self, p: PanelData, study: "Study", seed: int) -> Fit:
        cohorts = np.unique(p.g[p.g >= 0])
        if cohorts.size > 1:
            raise DataError(f"2x2 needs one common treatment start; found {cohorts.size} cohorts "
                            f"({', '.join(period_text(p.times[c], p.time_labels) for c in cohorts)}): use "
                            "estimator twfe or "
                            "callaway_santanna", key="design.estimator")
        start = int(cohorts[0])
        if not ((p.g[p.unit] >= 0) & (p.time < start)).any():
            # 'treated' would equal 'treated x post': say what the 2x2 needs instead of "collinear"
            when = period_text(p.times[start], p.time_labels)
            raise DataError(
                f"2x2: no unit of the treated group is observed before the treatment starts ({when}): every unit "
                "with treatment 1 appears only from then on, so its pre-period rows (treatment 0 for everyone) "
                "cannot be told from the control group's; if the treated group's earlier rows carry other unit ids "
                "(repeated cross-sections), set design.cohort to a column holding the group's first treated period "
                f"({when}) in all its rows, before and after the start, and 0 for the control group",
                key="design.cohort")
        X, names = design_2x2(p, p.g)
        fit = self._regress(p, X, names, fe=False)
        est, cdiag, ccheck, cwarn = self._headline(p, fit, _unit_vector(X.shape[1], 3), X, False, study, seed)
        diag = self._panel_diag(p, fit)
        diag["coefficients"] = {nm: float(b) for nm, b in zip(names, fit.coef)}
        diag["treatment_start"] = period_json(p.times[cohorts[0]], p.time_labels)
        diag["clusters"] = cdiag
        check = self._auxiliary_pre_trend(p, study, diag)
        return Fit("2x2", "att", est, self._base_n(p, fit.n), diagnostics=diag, checks=[check, ccheck],
                   warnings=[*p.warnings, *cwarn])

    def _treatment(self, p: PanelData, g: np.ndarray) -> np.ndarray:
        if p.d is not None and g is p.g:
            return p.d
        gr = g[p.unit]
        return ((gr >= 0) & (p.time >= gr)).astype(np.float64)

    def _fit_twfe(self, p: PanelData, study: "Study", seed: int) -> Fit:
        D = self._treatment(p, p.g)
        X = np.column_stack([D, p.X])
        names = ["treatment", *p.xnames]
        fit = self._regress(p, X, names, fe=True)
        est, cdiag, ccheck, cwarn = self._headline(p, fit, _unit_vector(X.shape[1], 0), X, True, study, seed)
        diag = self._panel_diag(p, fit)
        diag["coefficients"] = {nm: float(b) for nm, b in zip(names, fit.coef)}
        diag["clusters"] = cdiag
        warnings = [*p.warnings, *cwarn]
        checks: list[Check] = [self._auxiliary_pre_trend(p, study, diag), ccheck]
        self._bacon(p, diag, warnings, checks)
        return Fit("twfe", "att", est, self._base_n(p, fit.n), diagnostics=diag, checks=checks, warnings=warnings)

    def _bacon(self, p: PanelData, diag: dict, warnings: list[str], checks: list[Check]) -> None:
        cohorts = np.unique(p.g[p.g >= 0])
        if cohorts.size < 2 or p.d is not None:
            return
        from causalcli.designs.did.bacon import bacon_decomposition

        advice = ("with effects that change over time TWFE is biased: use estimator: callaway_santanna")
        what = f"{cohorts.size} cohorts" + (", one of them the units treated in every period" if cohorts[0] == 0
                                             else "")
        try:
            bacon = bacon_decomposition(p)
        except EstimationError as exc:
            diag["goodman_bacon"] = {"skipped": exc.message}
            # the warning does not depend on the decomposition: TWFE still compares later with earlier cohorts
            warnings.append(
                f"staggered adoption ({what}): TWFE uses already-treated units as controls for "
                f"later cohorts; the share of weight on those comparisons is not computed ({exc.message}); "
                + advice)
            return
        diag["goodman_bacon"] = bacon
        share = bacon["weight_later_vs_earlier_treated"]
        warnings.append(
            f"staggered adoption ({what}): {share:.1%} of the TWFE weight is on comparisons that "
            "use already-treated units as controls (Goodman-Bacon decomposition); " + advice)

    def _auxiliary_pre_trend(self, p: PanelData, study: "Study", diag: dict, lags: int | None = None) -> Check:
        """``pre_trend`` for 2x2, plain TWFE and event studies without leads: an auxiliary event study.

        Unit and period fixed effects, every pre-treatment period as a lead
        (-L..-2, L the longest pre-period of any cohort, so nothing is binned),
        -1 the reference, post periods 0..K (K the longest post-period, or the
        event study's own lags), the same covariates, weights and clusters
        (CRV1). The joint Wald test of the leads is F = W/q against F(q, G-1),
        as fixest's ``wald``. Recorded in ``diagnostics.pre_trend`` with its source.
        """
        from causalcli.inference.estimate import wald_f

        def not_run(reason: str) -> Check:
            diag["pre_trend"] = {"passed": None, "reason": reason}
            return Check("pre_trend", None, f"pre-trend test not run: {reason}")

        if p.d is not None:
            return not_run("the treatment switches off, so units have no single event time to build leads from")
        always = int((p.g == 0).sum())
        if always:
            # units treated in every period have no pre-period: they carry no lead, and their event time is unknown
            p = subset_units(p, np.flatnonzero(p.g != 0), p.g)[0]
        cohorts = p.g[p.g >= 0]
        if cohorts.size == 0:
            return not_run("no treated unit")
        leads = int(cohorts.max())  # periods before the latest first treated period
        if leads < 2:
            return not_run("one pre-treatment period only: the reference period -1, nothing to test against it")
        horizon = int(p.times.size - 1 - cohorts.min())
        k = horizon if lags is None else min(lags, horizon)
        source = (f"auxiliary event study: unit and period fixed effects, leads -{leads}..-2 (every pre-treatment "
                  f"period), reference -1, lags 0..{k}{' (binned)' if k < horizon else ''}, the same covariates, "
                  "weights and clusters (CRV1)"
                  + (f"; the {always} units treated in every period are left out (no pre-period)" if always else ""))
        try:
            T = int(p.times.size)
            if p.w is None and p.y.size == p.n_units * T:
                # balanced, unweighted: the dummies depend on cohort x period only; demeaned on that table
                from types import SimpleNamespace

                from causalcli.models.fixed_effects import ols_crv1_cells

                present = np.unique(p.g)
                cells = np.arange(present.size * T)
                D, _, rel = event_dummies(SimpleNamespace(unit=cells // T, time=cells % T), present, leads, k)
                cell = np.searchsorted(present, p.g)[p.unit] * T + p.time
                fit = ols_crv1_cells(p.y, p.X, list(p.xnames), cell, D, [f"event_{e}" for e in rel],
                                     (p.cluster, p.n_clusters), (p.unit, p.n_units), (p.time, T),
                                     p.options.tolerance)
            else:
                D, _, rel = event_dummies(p, p.g, leads, k)
                X = np.column_stack([D, p.X])
                fit = self._regress(p, X, [f"event_{e}" for e in rel] + list(p.xnames), fe=True)
            pre = [j for j, e in enumerate(rel) if e < 0]
            if not pre:
                return not_run("no unit is observed before its treatment beyond the reference period")
            unusable = _unusable_leads(fit, pre)
            if unusable is not None:
                return not_run(unusable)
            test = wald_f(fit.coef[pre], fit.vcov[np.ix_(pre, pre)], fit.df_t)
        except (EstimationError, np.linalg.LinAlgError) as exc:
            return not_run(f"the auxiliary event study cannot be estimated ({getattr(exc, 'message', exc)})")
        alpha = study.thresholds.alpha
        passed = bool(test["p_value"] > alpha)
        diag["pre_trend"] = {**test, "passed": passed, "leads": [rel[j] for j in pre], "source": source,
                             "coefficients": {f"event_time={rel[j]}": float(fit.coef[j]) for j in pre}}
        return _judge_pre_trend(Check(
            "pre_trend", passed,
            f"joint Wald test of {len(pre)} leads in an auxiliary event study (every pre-period, reference "
            f"-1): F = {test['statistic']:.3g}, p = {test['p_value']:.3g} {'>' if passed else '<='} "
            f"{alpha}; " + ("no evidence against parallel pre-trends" if passed else
                            "pre-treatment effects are jointly non-zero: parallel trends look doubtful")), diag)

    def _fit_event_study(self, p: PanelData, study: "Study", seed: int) -> Fit:
        from causalcli.inference.estimate import t_estimate, wald_f

        D, labels, rel = event_dummies(p, p.g, p.leads, p.lags)
        X = np.column_stack([D, p.X])
        names = [f"event_{e}" for e in rel] + list(p.xnames)
        fit = self._regress(p, X, names, fe=True)
        m = len(rel)
        effects = []
        for j, (e, lab) in enumerate(zip(rel, labels)):
            var = float(fit.vcov[j, j])
            se = float(np.sqrt(var)) if np.isfinite(var) and var >= 0 else float("nan")  # NaN: reported as null
            effects.append(t_estimate(fit.coef[j], se, fit.df_t, study.conf_level, "crv1_fixest", lab))
        post = [j for j, e in enumerate(rel) if e >= 0]
        pre = [j for j, e in enumerate(rel) if e < 0]
        if not post:
            raise EstimationError("the event study has no post-treatment period in the data")
        a = np.zeros(X.shape[1])
        a[post] = 1.0 / len(post)
        est, cdiag, ccheck, cwarn = self._headline(p, fit, a, X, True, study, seed)
        effects = self._few_cluster_effects(p, fit, X, effects, cdiag, cwarn, study, seed)
        diag = self._panel_diag(p, fit)
        diag["clusters"] = cdiag
        wanted = [e for e in range(-p.leads, -1) if p.leads >= 2] + list(range(0, p.lags + 1))
        diag["event_study"] = {"reference_period": -1, "leads": p.leads, "lags": p.lags,
                               "relative_periods": rel,
                               "relative_periods_without_data": [e for e in wanted if e not in rel], "binned": {"first": f"<= {rel[0]}" if rel[0] < 0 else None,
                                                                   "last": f">= {rel[-1]}"},
                               "estimate": f"average of the {len(post)} post-treatment coefficients 0..{rel[post[-1]]}"}
        checks = [ccheck]
        alpha = study.thresholds.alpha
        unusable = _unusable_leads(fit, pre, cdiag) if pre else None
        if pre and unusable is not None:
            diag["pre_trend"] = {"passed": None, "reason": unusable}
            checks.insert(0, Check("pre_trend", None, f"pre-trend test not run: {unusable}"))
            if p.options.honest_did:
                diag.setdefault("sensitivity", {})["honest_did"] = {"skipped": unusable}
        elif pre:
            b = fit.coef[pre]
            V = fit.vcov[np.ix_(pre, pre)]
            test = wald_f(b, V, fit.df_t)
            passed = bool(test["p_value"] > alpha)
            diag["pre_trend"] = {**test, "passed": passed, "leads": [rel[j] for j in pre]}
            checks.insert(0, _judge_pre_trend(Check(
                "pre_trend", passed,
                f"joint Wald test of {len(pre)} leads: F = {test['statistic']:.3g}, "
                f"p = {test['p_value']:.3g} {'>' if passed else '<='} {alpha}; " +
                ("no evidence against parallel pre-trends" if passed else
                 "pre-treatment effects are jointly non-zero: parallel trends look doubtful")), diag))
            if p.options.honest_did:
                from causalcli.designs.did.honest import relative_magnitude_sets

                diag.setdefault("sensitivity", {})["honest_did"] = relative_magnitude_sets(
                    fit.coef[:m], fit.vcov[:m, :m], rel, study.conf_level)
        else:
            checks.insert(0, self._auxiliary_pre_trend(p, study, diag, lags=p.lags))
        warnings = [*p.warnings, *cwarn]
        self._bacon(p, diag, warnings, [])
        return Fit("twfe_event_study", "att", est, self._base_n(p, fit.n), effects=effects, diagnostics=diag,
                   checks=checks, warnings=warnings)

    def _few_cluster_effects(self, p: PanelData, fit, X: np.ndarray, effects: list[Estimate], cdiag: dict,
                             warnings: list[str], study: "Study", seed: int) -> list[Estimate]:
        """Event-time effects under the headline's few-cluster rule: wild bootstrap p and interval per effect when
        the headline uses it; none (with a warning) when it uses randomization inference or has no inference."""
        method = cdiag.get("method", "crv1_fixest")
        if method == "crv1_fixest":
            return effects
        if method.startswith("wild_cluster_bootstrap"):
            from causalcli.inference.wild import wild_cluster_bootstrap

            rows = wild_cluster_bootstrap(p, X, True, [_unit_vector(X.shape[1], j) for j in range(len(effects))],
                                          fit.vcov, study.conf_level, p.options.draws, seed, cdiag["wild"]["weights"])
            return [replace(e, p_value=r["p_value"], ci_lower=r["ci_lower"], ci_upper=r["ci_upper"],
                            inference=method if r["p_value"] is not None else "none") for e, r in zip(effects, rows)]
        if method == "none":
            return [replace(e, std_error=None, p_value=None, ci_lower=None, ci_upper=None, inference="none")
                    for e in effects]
        warnings.append("event-time effects carry their CRV1 standard errors but no p-value or interval: with one "
                        "treated cluster neither CRV1 t nor the wild bootstrap can be trusted, and randomization "
                        "inference is run for the headline average only")
        return [replace(e, p_value=None, ci_lower=None, ci_upper=None, inference="none") for e in effects]

    # ------------------------------------------------------------ refuters

    def point(self, prepared: PanelData, *, treatment=None, extra_covariate=None, rows=None) -> float:
        p = prepared
        g = p.g if treatment is None else treatment
        if rows is not None:
            p, g = subset_units(p, rows, g)
        if extra_covariate is not None:
            p = replace(p, X=np.column_stack([p.X, extra_covariate]), xnames=(*p.xnames, "_random_"))
        if p.estimator == "callaway_santanna":
            from causalcli.designs.did.callaway_santanna import point_cs

            return point_cs(p, g)
        from causalcli.models.fixed_effects import demean

        if p.estimator == "2x2":
            X, _ = design_2x2(p, g)
            j = 3
            groups = []
        elif p.leads is not None:
            D, _, rel = event_dummies(p, g, p.leads, p.lags)
            X = np.column_stack([D, p.X])
            post = [k for k, e in enumerate(rel) if e >= 0]
            j = post
            groups = [(p.unit, p.n_units), (p.time, int(p.times.size))]
        else:
            X = np.column_stack([self._treatment(p, g) if treatment is not None or p.d is None else p.d, p.X])
            j = 0
            groups = [(p.unit, p.n_units), (p.time, int(p.times.size))]
        Z = demean(np.column_stack([p.y, X]), groups, p.w, p.options.tolerance)
        yd, Xd = Z[:, 0], Z[:, 1:]
        Xw = Xd * p.w[:, None] if p.w is not None else Xd
        try:
            coef = np.linalg.solve(Xw.T @ Xd, Xw.T @ yd)
        except np.linalg.LinAlgError:
            raise EstimationError("singular design in a refuter simulation") from None
        return float(np.mean(coef[j]))

    def refute_once(self, prepared: PanelData, name: str, options: Any, rng: np.random.Generator) -> float:
        p = prepared
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

    def treatment_of(self, prepared: PanelData) -> np.ndarray:
        return prepared.g

    def units(self, prepared: PanelData) -> int:
        return prepared.n_units


# ---------------------------------------------------------------- helpers


def _unit_vector(k: int, j: int) -> np.ndarray:
    a = np.zeros(k)
    a[j] = 1.0
    return a


def _judge_pre_trend(check: Check, diag: dict) -> Check:
    """The pre-trend Wald test is a CRV1 test: with one treated cluster it over-rejects as badly as the headline
    t-test would (MacKinnon and Webb 2017), so it is reported but not judged; with few clusters it says so."""
    method = diag.get("clusters", {}).get("method", "crv1_fixest")
    if method == "randomization_inference_units":
        diag["pre_trend"]["passed"] = None
        diag["pre_trend"]["not_judged"] = "one treated cluster: the CRV1 Wald test cannot be trusted"
        return Check(check.name, None, check.detail + " -- not judged: with one treated cluster this CRV1 test "
                     "over-rejects (see the clusters check); look at the leads in diagnostics.pre_trend")
    if method.startswith("wild_cluster_bootstrap"):
        return Check(check.name, check.passed, check.detail + " (a CRV1 test: with few clusters it tends to "
                     "over-reject, see the clusters check)")
    return check


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


def _unusable_leads(fit, pre: list[int], clusters: dict | None = None) -> str | None:
    """Why a Wald test of the leads cannot be trusted to mean anything (no inference, or a zero or near-zero SE)."""
    from causalcli.designs.did.clusters import no_inference_reason
    from causalcli.inference.estimate import unusable_se_reason

    reason = no_inference_reason(fit.clusters, fit.n, fit.df_k)
    if reason is not None:
        return reason
    for j in pre:
        var = float(fit.vcov[j, j])
        why = unusable_se_reason(float(np.sqrt(var)) if np.isfinite(var) and var >= 0 else None, float(fit.coef[j]))
        if why is not None:
            return f"a lead's standard error cannot be used: {why}"
    return None


def design_2x2(p: PanelData, g: np.ndarray) -> tuple[np.ndarray, list[str]]:
    gr = g[p.unit]
    treated = (gr >= 0).astype(np.float64)
    start = int(np.min(g[g >= 0])) if (g >= 0).any() else 0
    post = (p.time >= start).astype(np.float64)
    X = np.column_stack([np.ones_like(treated), treated, post, treated * post, p.X])
    return X, ["(intercept)", "treated", "post", "treated_x_post", *p.xnames]


def event_dummies(p: PanelData, g: np.ndarray, leads: int, lags: int) -> tuple[np.ndarray, list[str], list[int]]:
    """Relative-period dummies -leads..-2, 0..lags (end points binned); -1 and never-treated are 0."""
    gr = g[p.unit]
    treated = gr >= 0
    rel = np.where(treated, p.time - gr, 0)
    lo = -leads
    wanted = [e for e in range(lo, -1) if leads >= 2] + list(range(0, lags + 1))
    cols, labels, kept = [], [], []
    for e in wanted:
        if e == lo and e < -1:
            m = treated & (rel <= e)
        elif e == lags:
            m = treated & (rel >= e)
        else:
            m = treated & (rel == e)
        if not m.any():
            continue
        cols.append(m.astype(np.float64))
        kept.append(e)
        binned = (e == lo and e < -1) or e == lags
        labels.append(f"{'<=' if e == lo and e < -1 else '>=' if e == lags else ''}{e}" if binned else str(e))
    if not cols:
        raise EstimationError("no treated unit has a relative period inside the event window")
    return np.column_stack(cols), [f"event_time={lab}" for lab in labels], kept


def subset_units(p: PanelData, units: np.ndarray, g: np.ndarray) -> tuple[PanelData, np.ndarray]:
    """Keep the rows of the given units (sorted codes); recode units."""
    keep_unit = np.zeros(p.n_units, dtype=bool)
    keep_unit[units] = True
    rows = keep_unit[p.unit]
    remap = np.full(p.n_units, -1, dtype=np.int64)
    remap[units] = np.arange(units.size)
    cl, G = np.unique(p.cluster[rows], return_inverse=True)
    sub = replace(p, unit=remap[p.unit[rows]], n_units=int(units.size), time=p.time[rows], y=p.y[rows],
                  g=g[units], d=None if p.d is None else p.d[rows], X=p.X[rows],
                  w=None if p.w is None else p.w[rows], cluster=G.astype(np.int64), n_clusters=int(cl.size),
                  unit_labels=p.unit_labels[units])
    return sub, g[units]
