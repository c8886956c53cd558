"""Randomised A/B/n experiments from sufficient statistics.

Per metric and treatment arm: the absolute effect (difference of means) with a
Welch t interval, the relative effect (ratio of means minus one) by the delta
method (or tea-tasting's log-scale interval), ratio metrics analysed per
randomisation unit with the delta method, CUPED or regression adjustment with a
coefficient pooled over the two arms compared, optional capping, a
multiple-testing correction across metrics and arms, a sample-ratio-mismatch
check and the minimum detectable effect. Every number comes from per-arm counts,
sums and cross-products that DuckDB computes in one pass over the data
(``causalcli.designs.experiment.stats``); the formulas are in
``causalcli.designs.experiment.analysis``. With ``design.time`` the same pass groups by
arm and period, and the first metric's effect on all data up to each period
(the cumulative effect) is computed from the running sums of the periods. With
``design.sequential`` the intervals and p-values are always-valid or group-sequential ones
(``causalcli.designs.experiment.sequential_fit``, formulas in ``...sequential``).

References
----------
Welch, B. L. (1947). The generalization of Student's problem when several different
population variances are involved. Biometrika 34, 28-35.
Deng, A., Xu, Y., Kohavi, R. and Walker, T. (2013). Improving the sensitivity of online
controlled experiments by utilizing pre-experiment data (CUPED). WSDM.
Deng, A., Knoblich, U. and Lu, J. (2018). Applying the delta method in metric analytics. KDD.
Fabijan, A. et al. (2019). Diagnosing sample ratio mismatch in online controlled experiments. KDD.
Holm, S. (1979). Scand. J. Statist. 6, 65-70; Benjamini, Y. and Hochberg, Y. (1995). JRSS B 57, 289-300.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, replace
from typing import TYPE_CHECKING, Any

from causalcli.designs.base import Design, Fit
from causalcli.errors import DataError, SpecError
from causalcli.records import Estimate

if TYPE_CHECKING:  # pragma: no cover
    from causalcli.data.table import Table
    from causalcli.designs.experiment.analysis import MetricShape
    from causalcli.designs.experiment.stats import Statistics
    from causalcli.graph import Identification
    from causalcli.spec.loading import LoadedSpec
    from causalcli.spec.models import Study


MAX_PERIODS = 1000  # a cumulative point per period: more than this is a timestamp or an id, not a day


@dataclass(frozen=True)
class ExperimentData:
    """The sufficient statistics and what the analysis needs to read them (picklable, no rows)."""

    stats: "Statistics"
    shapes: tuple["MetricShape", ...]
    pairs: dict[str, tuple[tuple[str, str], ...]]
    control: Any
    arms: tuple[Any, ...]  # treatment arms, in order
    labels: dict[Any, str]
    expected_split: dict[str, float]
    split_given: bool
    rows: int
    file: str
    time: str | None = None
    period_labels: tuple[str, ...] | None = None  # ISO dates of periods 1..T when time is a date
    unit: Any = None  # units.UnitSummary with design.unit
    quantiles: Any = None  # quantile.QuantileData when a metric is a quantile metric
    few_units: Any = None  # few_units.UnitValues with design.unit and too few units for the delta method


def metric_shapes(study: "Study") -> list["MetricShape"]:
    from causalcli.designs.experiment.analysis import MetricShape

    shapes = []
    for m in metrics_of(study):
        if m.outcome is not None:
            num, den, kind = m.outcome, None, "quantile" if getattr(m, "quantile", None) is not None else "mean"
        else:
            num, den, kind = m.numerator, m.denominator, "ratio"
        if m.covariate is not None:
            covs, adj = ((m.covariate, m.covariate_denominator),), "cuped"
        else:
            covs = tuple((c, None) for c in m.covariates)
            adj = "regression" if len(covs) > 1 else ("cuped" if covs else "none")
        shapes.append(MetricShape(m.name, num, den, covs, kind, adj, uptake=m.uptake))
    return shapes


def metrics_of(study: "Study") -> list[Any]:
    """The spec's metrics; a bare `outcome` (no metrics listed) is one mean metric."""
    from causalcli.designs.experiment.spec import Metric

    if study.design.metrics:
        return list(study.design.metrics)
    return [Metric(name=study.outcome, outcome=study.outcome)]


def _columns(shape: "MetricShape") -> tuple[str, ...]:
    """The columns whose sums the statistics pass computes for the metric (none unless ``shape.summed``)."""
    if not shape.summed:
        return ()
    cols = [shape.num, shape.den, *[c for pair in shape.covariates for c in pair], shape.uptake]
    return tuple(dict.fromkeys(c for c in cols if c is not None))


class ExperimentDesign(Design):
    name = "experiment"
    preload_modules = ("scipy.special",)  # Welch t and chi-square (SRM) tails
    estimators = ("difference_in_means",)
    estimands = ("ate",)
    inference = ("welch_t", "delta_method", "cuped", "regression_adjusted", "log_ratio",
                 "difference_in_proportions_wald", "clustered_by_unit", "quantile_order_statistics",
                 "always_valid", "group_sequential_obrien_fleming", "group_sequential_pocock",  # design.sequential
                 "cace_wald",  # uptake: the complier effect
                 "wild_cluster_bootstrap_webb", "wild_cluster_bootstrap_rademacher")  # design.unit, few units
    default_refuters = ()
    segments_built = True
    graph_unused = "the variant is randomised, so nothing confounds it"
    thresholds_checked = ("srm_alpha", "alpha")  # alpha: the test of effects differing across segments

    def thresholds_read(self, study: "Study") -> tuple[str, ...]:
        return self.thresholds_checked if study.segments else ("srm_alpha",)
    streams_data = True  # study_data is a view over the file: aggregates only, never a copy in memory
    reference = ("Deng et al. (2013, 2018); tea-tasting 1.14 (formulas and CUPED convention); sequential: "
                 "Waudby-Smith et al. (2023) as gbstats 0.8, Lan and DeMets (1983)")

    # ------------------------------------------------------------ spec and data

    def check_spec(self, study: "Study", spec: "LoadedSpec") -> None:
        from causalcli.designs.experiment.quantile import check_quantile_spec
        from causalcli.designs.experiment.segments import check_segments

        file = spec.source.display
        self.estimand(study, spec)
        if not study.treatment:
            raise SpecError("the experiment design needs 'treatment' (the variant column)", file=file, key="treatment")
        if not study.design.metrics and not study.outcome:
            raise SpecError("list the metrics under design.metrics (or give 'outcome' for one mean metric)",
                            file=file, key="design.metrics")
        if study.design.metrics and study.outcome:
            raise SpecError(f"'outcome' names the one mean metric of an experiment without design.metrics; with "
                            f"metrics each names its own outcome: remove 'outcome', or add {study.outcome!r} as a "
                            "metric", file=file, key="outcome")
        for key in ("covariates", "categorical"):
            if getattr(study, key):
                raise SpecError(f"'{key}' is not used by the experiment design; put pre-experiment columns on a "
                                "metric (covariate: or covariates:)", file=file, key=key)
        check_segments(study, file)
        if study.weights:
            raise SpecError("observation weights are not built yet for experiments; remove 'weights'",
                            file=file, key="weights")
        if study.refute:
            raise SpecError("refuters do not apply to randomised experiments (the SRM check guards the "
                            "randomisation); remove 'refute'", file=file, key="refute")
        from causalcli.designs.experiment.units import check_unit_spec

        check_unit_spec(study, spec)
        check_quantile_spec(study, metrics_of(study), spec)
        from causalcli.designs.experiment.compliance import check_uptake_spec

        check_uptake_spec(study, metrics_of(study), file)

    def duckdb_settings(self, study: "Study") -> dict[str, Any]:
        from causalcli.designs.experiment.unit_scan import duckdb_settings

        return duckdb_settings(study.design.unit)

    def columns(self, study: "Study") -> list[str]:
        names = [study.treatment, study.design.time, study.design.unit, *study.segments]
        for m in metrics_of(study):
            names += [m.outcome, m.numerator, m.denominator, m.covariate, m.covariate_denominator, *m.covariates,
                      m.uptake]
        return list(dict.fromkeys(n for n in names if isinstance(n, str)))

    def missing_roles(self, study: "Study", identification: "Identification") -> list[tuple[str, str, str]] | None:
        # rows without a variant; each metric then uses its complete rows (n.missing_in_metric, counted by the
        # statistics pass); with design.unit the rows are grouped first, which validate does not do
        return None if study.design.unit else [(study.treatment, "treatment", "variant column")]

    def validate(self, study: "Study", table: "Table", spec: "LoadedSpec") -> None:
        from causalcli.data.table import _suggest
        from causalcli.data.types import numeric_column
        from causalcli.designs.experiment.segments import validate_segments
        from causalcli.designs.experiment.sequential_fit import check_sequential

        check_sequential(study, spec.source.display)  # here, not in check_spec: `plan` plans looks without time
        if study.treatment not in table.types:
            raise DataError(f"variant column {study.treatment!r} not found{_suggest(study.treatment, table.types)}",
                            file=table.file, key="treatment", column=study.treatment)
        for i, m in enumerate(metrics_of(study)):
            for field in ("outcome", "numerator", "denominator", "covariate", "covariate_denominator", "covariates",
                          "uptake"):
                value = getattr(m, field)
                for j, col in enumerate(value if isinstance(value, list) else [value]):
                    if col is None:
                        continue
                    key = f"design.metrics[{i}].{field}" + (f"[{j}]" if isinstance(value, list) else "")
                    if col not in table.types:
                        raise DataError(f"column {col!r} not found{_suggest(col, table.types)}", file=table.file,
                                        key=key, column=col)
                    numeric_column(table, col, key)  # numbers written as text are read; else row and advice
        time = study.design.time
        if time is not None:
            from causalcli.data.types import period_column

            if time not in table.types:
                raise DataError(f"time column {time!r} not found{_suggest(time, table.types)}", file=table.file,
                                key="design.time", column=time)
            if time == study.treatment:
                raise SpecError("design.time cannot be the variant column", file=spec.source.display,
                                key="design.time")
            # integers stay; dates, timestamps (cut to days in data.timezone) and ISO strings become 1..T
            period_column(table, time, "design.time", study.data.timezone)
        validate_segments(study, table)
        from causalcli.designs.experiment.units import check_unit_column

        check_unit_column(study, table)

    def validate_rows(self, study: "Study", table: "Table", spec: "LoadedSpec") -> None:
        """On embedded DuckDB, the arms estimate's statistics pass reads: the control among them, two or more
        (validate said ok to a one-arm file that estimate refused)."""
        if table.engine is None:
            from causalcli.data.table import TABLE, quote_identifier

            q = quote_identifier(study.treatment)
            values = [v for (v,) in table.sql(f"SELECT DISTINCT {q} FROM {TABLE} WHERE {q} IS NOT NULL") if v == v]
            _control_arm(study, values, table.file)

    def prepare(self, study: "Study", table: "Table", identification: "Identification",
                spec: "LoadedSpec") -> ExperimentData:
        from causalcli.designs.experiment.proportions import proportion_candidates
        from causalcli.designs.experiment.quantile import arm_quantiles
        from causalcli.designs.experiment.quantile_pass import first_histogram
        from causalcli.designs.experiment.segments import check_segment_values
        from causalcli.designs.experiment.stats import INTEGER_TYPES, compute_statistics

        shapes = metric_shapes(study)
        opts = study.design.options
        unit = None
        if study.design.unit is not None:  # study_data becomes one row per unit and arm, metrics ratios of its sums
            from causalcli.designs.experiment.units import group_by_unit

            unit, shapes = group_by_unit(study, table, shapes)
        metric_columns = {s.name: _columns(s) for s in shapes}
        pairs = {name: tuple((a, b) for i, a in enumerate(cols) for b in cols[i:]) for name, cols in metric_columns.items()}
        float_cols = {c for cols in metric_columns.values() for c in cols
                      if table.types[c].upper() in ("DOUBLE", "FLOAT", "REAL")}
        capped = {c for s in shapes if s.kind != "quantile"  # a capped column would bias a high quantile
                  for c in (s.num, *[x for x, _ in s.covariates])} if opts.cap_quantile else set()
        int_cols = {c for cols in metric_columns.values() for c in cols
                    if table.types[c].upper() in INTEGER_TYPES}
        time = study.design.time
        first = first_histogram(table, shapes, tuple(study.segments), unit, metrics_of(study), study.conf_level,
                                study.treatment)  # quantiles: what the statistics pass computes for them
        stats = compute_statistics(table, study.treatment, metric_columns, pairs, float_cols,
                                   opts.cap_quantile, capped, int_cols, period=time,
                                   parquet=_file_as_read(study, table, spec) if unit is None else None,
                                   segments=tuple(study.segments), binary=proportion_candidates(shapes),
                                   grouped=unit is not None, head=(unit.centres, unit.second) if unit else None,
                                   histogram=first)
        if unit is not None:  # rows without a variant are dropped before the grouping: count them as rows
            stats.missing_variant = unit.rows_without_variant
            stats.passes += 1  # the pass that checked the units and sized the exact sums
        check_segment_values(study, stats, table.file)
        if time is not None and len(stats.periods) > MAX_PERIODS:
            raise DataError(f"time column {time!r} has {len(stats.periods):,} distinct periods; the cumulative effect "
                            f"is reported per period (at most {MAX_PERIODS:,}): give a date or a day number, not a "
                            "timestamp read as a number or an id", file=table.file, key="design.time", column=time)
        control, arms, labels, split = _arms(study, stats, table.file)
        split_given = split is not None
        if split_given:
            expected = dict(split)
            unknown = [labels[a] for a in stats.arm_counts if labels[a] not in expected]
            if unknown:
                raise DataError(f"variant value(s) {', '.join(map(repr, unknown))} are not in design.expected_split "
                                f"({', '.join(expected)})", file=table.file, key="design.expected_split",
                                column=study.treatment)
            missing = [a for a in expected if a not in labels.values()]
            if missing:
                raise DataError(f"arm(s) {', '.join(map(repr, missing))} of design.expected_split have no rows",
                                file=table.file, key="design.expected_split", column=study.treatment)
        else:
            expected = {labels[a]: 1.0 for a in (control, *arms)}
        _check_metric_data(stats, shapes, control, arms, labels, table.file)
        period_labels = table.period_labels.get(time) if time is not None else None
        quantiles = arm_quantiles(table, study.treatment, metrics_of(study), [control, *arms], labels,
                                  study.conf_level, stats, first, tuple(study.segments), {s.name: s.num for s in shapes})
        _check_metric_data(stats, shapes, control, arms, labels, table.file, quantiles)
        from causalcli.designs.experiment.few_units import fetch_units

        few = None if unit is None else fetch_units(table, study, shapes, stats.arm_counts)
        return ExperimentData(stats, tuple(shapes), pairs, control, tuple(arms), labels, expected, split_given,
                              table.rows, table.file, time, tuple(period_labels) if period_labels else None, unit,
                              quantiles, few)

    # ------------------------------------------------------------ estimation

    def fit(self, prepared: ExperimentData, study: "Study", seed: int, jobs: int | None = None) -> Fit:
        from causalcli.designs.experiment.analysis import mde, srm_check
        from causalcli.inference.multiplicity import adjust
        from causalcli.designs.experiment.proportions import arm_tests
        from causalcli.designs.experiment.quantile import quantile_diagnostics, quantile_tests
        from causalcli.designs.experiment.sequential_fit import sequential_analysis

        from causalcli.designs.experiment.few_units import FewUnitInference, named

        d = prepared
        seq = sequential_analysis(d, study)  # None without design.sequential
        few = FewUnitInference.of(d.few_units, study, seed) if seq is None else None
        inference = _inference if seq is None else seq.named(_inference)
        opts = study.design.options
        conf = study.conf_level
        stats = d.stats
        rows_abs: list[tuple[str, Any, Any]] = []
        rows_rel: list[tuple[str, Any, Any]] = []
        per_metric = []
        notes: list[str] = []
        for s in d.shapes:
            group = stats.groups[s.name if stats.complete_cases_by_metric else None]
            for arm in d.arms:
                extra: dict[str, Any] = {}  # a quantile metric's order statistics
                if s.kind == "quantile":
                    c, ta, tr, extra = quantile_tests(d.quantiles, s.name, d.control, arm, d.labels[arm], notes,
                                                      conf, opts)
                else:
                    tests = arm_tests(s, group[d.control], group[arm], stats, d.pairs[s.name], d.labels[arm],
                                      d.file, conf, opts)
                    c, ta, tr = tests.comparison, tests.absolute, tests.relative
                label, how = f"{s.name}/{d.labels[arm]}", None
                if seq is not None:
                    ta, tr = seq.tests(tests, opts)
                elif few is not None and s.kind != "quantile":  # few units: wild bootstrap or randomization
                    ta, tr, how = few.tests(s, d.control, arm, ta, tr, label + "/abs")
                rows_abs.append((label + "/abs", ta, named(inference(s, "abs", opts, stats), how)))
                rows_rel.append((label + "/rel", tr, named(inference(s, "rel", opts, stats), how)))
                unadj = (c.var_treatment_unadjusted / c.n_treatment + c.var_control_unadjusted / c.n_control)
                reduction = 1 - ta.std_error ** 2 / unadj if s.covariates and unadj > 0 else None
                if s.covariates and not any(c.theta):
                    notes.append(f"{label}: the covariate is constant in the arms compared, so CUPED adjusts nothing")
                m_abs = mde(ta.std_error, opts.alpha, opts.power)
                per_metric.append({
                    "metric": s.name, "arm": d.labels[arm], "kind": s.kind, "adjustment": s.adjustment,
                    "n_control": c.n_control, "n_treatment": c.n_treatment,
                    "mean_control": c.mean_control, "mean_treatment": c.mean_treatment,
                    "raw_mean_control": c.raw_mean_control, "raw_mean_treatment": c.raw_mean_treatment,
                    "theta": list(c.theta) if s.covariates else None,
                    "variance_reduction": reduction,
                    "df": ta.df, "df_relative": tr.df,
                    "mde_abs": m_abs,
                    "mde_rel": m_abs / abs(c.mean_control) if c.mean_control else None, **extra,
                })
        method = study.design.correction
        adj_abs = adjust([t.p_value for _, t, _ in rows_abs], method)
        adj_rel = adjust([t.p_value for _, t, _ in rows_rel], method)
        family = len(rows_abs)
        suffix = "" if method == "none" else f"; p_value_adjusted: {method} over {family} test{'s' if family > 1 else ''}"
        effects = []
        for (label, t, inf), pa, (label_r, tr, inf_r), pr in zip(rows_abs, adj_abs, rows_rel, adj_rel):
            effects.append(_estimate(label, t, conf, inf + suffix, pa))
            effects.append(_estimate(label_r, tr, conf, inf_r + suffix, pr))
        first = effects[0]
        estimate = replace(first, label=None)  # the headline: the first metric's absolute effect, first arm

        observed = {d.labels[a]: stats.arm_counts[a] for a in (d.control, *d.arms)}
        s, check = srm_check(observed, d.expected_split if d.split_given else None, study.thresholds.srm_alpha)
        checks = [check]
        warnings = list(stats.notes) + notes
        if stats.missing_variant:
            warnings.append(f"{stats.missing_variant:,} of {d.rows:,} rows were dropped for a missing value: variant "
                            f"column {study.treatment!r} in {stats.missing_variant:,}; fill them, or filter them out "
                            "with data.filter to make the choice explicit")
        used = sum(observed.values())
        metric_missing = {}
        for s_ in d.shapes:  # rows of the arms compared that a metric leaves out (a missing value in its columns)
            counts = _complete_counts(s_, stats, d.quantiles)
            left_out = used - sum(counts.get(a, 0) for a in (d.control, *d.arms))
            if left_out:
                metric_missing[s_.name] = left_out
                warnings.append(f"metric {s_.name!r} leaves out {left_out:,} of {used:,} {'units' if d.unit else 'rows'} "
                                "with a missing value in "
                                f"its columns ({', '.join(_columns(s_) if s_.summed else (s_.num,))}); it uses its "
                                "complete rows")
        if metric_missing:  # the per-metric lines say it with the counts
            from causalcli.designs.experiment.stats import MISSING_METRIC_NOTE

            warnings = [w for w in warnings if w != MISSING_METRIC_NOTE]
        for e in effects:
            if e.value != e.value:
                warnings.append(f"{e.label}: the relative effect is undefined (control mean is zero"
                                f"{' or a mean is not positive, needed by relative_ci: log' if opts.relative_ci == 'log' else ''})")
        n = {"rows": d.rows, "used": sum(observed.values()), "control": observed[d.labels[d.control]],
             "treatment": sum(observed.values()) - observed[d.labels[d.control]],
             "dropped_missing": stats.missing_variant}
        if stats.missing_variant:
            n["dropped_missing_treatment"] = stats.missing_variant
        n.update({f"missing_in_metric[{name}]": k for name, k in metric_missing.items()})
        if d.time is not None:  # the first metric's effect by period (with design.sequential, its sequence too)
            from causalcli.designs.experiment.cumulative import cumulative_diagnostics

            cumulative = cumulative_diagnostics(d, conf, opts, _inference(d.shapes[0], "abs", opts, stats), seq,
                                                used, warnings)
        diagnostics = {
            "srm": s,
            "arms": {"control": d.labels[d.control], "treatment": [d.labels[a] for a in d.arms], "units": observed},
            "metrics": per_metric,
            "mde": {"alpha": opts.alpha, "power": opts.power,
                    "method": "two-sided z approximation: (z_(1-alpha/2) + z_power) x std_error of the absolute effect "
                              "(after CUPED), at the achieved sample sizes; mde_rel divides by the control mean"},
            "correction": {"method": method, "tests": family,
                           "family": "metrics x treatment arms; absolute and relative effects corrected separately"},
            "caps": stats.caps or None,
            "sufficient_statistics": {
                "passes": stats.passes + (1 if stats.caps else 0),
                "summation": stats.summation,
                "complete_cases_by_metric": stats.complete_cases_by_metric,
                "centres": stats.centres,
            },
        }
        diagnostics.update(quantile_diagnostics(d.quantiles))
        if d.time is not None:
            diagnostics.update(cumulative)
        if seq is not None:
            diagnostics["sequential"] = seq.describe()
        from causalcli.designs.experiment.compliance import complier_effects

        complier_effects(d, study, effects, checks, warnings, diagnostics, inference)  # with uptake: metric/arm/cace
        _segments_and_guardrails(d, study, effects, checks, warnings, diagnostics, seq, inference, few)
        if d.unit is not None:
            from causalcli.designs.experiment.units import annotate

            annotate(d.unit, diagnostics, n, checks, warnings, d.rows, few, seq is not None,
                     [e.label for e in effects if e.label and e.label.endswith("/cace")])
        return Fit("difference_in_means", "ate", estimate, n, effects=effects,
                   diagnostics=diagnostics, checks=checks, warnings=warnings)

    def plan(self, study: "Study", spec: "LoadedSpec") -> dict[str, Any]:
        from causalcli.designs.experiment.plan import plan_experiment
        from causalcli.designs.experiment.quantile import refuse_in_plan

        self.check_spec(study, spec)
        refuse_in_plan(metrics_of(study), spec)
        return plan_experiment(study, spec, metrics_of(study), metric_shapes(study), _arm_value)

    def point(self, prepared: Any, **_: Any) -> float:  # pragma: no cover - no refuters apply
        raise SpecError("refuters do not apply to randomised experiments", key="refute")


def _segments_and_guardrails(d: ExperimentData, study: "Study", effects: list, checks: list, warnings: list,
                             diagnostics: dict, seq: Any, inference: Any, few: Any) -> None:
    """Effects by segment after the overall ones (sequential with design.sequential), and the guardrail checks
    (only with those keys)."""
    from causalcli.designs.experiment.guardrails import guardrail_checks
    from causalcli.designs.experiment.segments import segment_effects

    if study.segments:
        more, diagnostics["segments"], notes = segment_effects(d, study, inference, _estimate, seq, few)
        effects.extend(more)
        warnings.extend(notes)
    found, rows = guardrail_checks(metrics_of(study), effects, [d.labels[a] for a in d.arms], study.conf_level)
    if found:
        checks.extend(found)
        diagnostics["guardrails"] = rows


def _file_as_read(study: "Study", table: "Table", spec: "LoadedSpec") -> str | None:
    """The data file when the study's rows are its rows as they are (no filter, renames or derived columns), else
    None."""
    from causalcli.data.load import resolve_path

    data = study.data
    if data.filter is not None or data.columns or data.derive or table.engine is not None or \
            {"data_source", "table_format"} & set(table.provenance):
        return None  # filtered, renamed, stdin, an in-memory table, a Delta or Iceberg table's files, another engine
    path = resolve_path(spec)
    return None if path == "-" else path


def _arms(study: "Study", stats: "Statistics", file: str) -> tuple[Any, list[Any], dict[Any, str], dict | None]:
    """The control value, the treatment arms in order, every arm's label and the planned split (by label)."""
    values = list(stats.arm_counts)
    control, labels = _control_arm(study, values, file)
    want = labels[control]
    split = None
    if study.design.expected_split is not None:  # keys as the data's labels ('no' -> 'false' on a boolean)
        split = {}
        for key, share in study.design.expected_split.items():
            hit = _arm_value(key, values, labels)
            split[labels[hit] if hit is not None else key] = share
    # the order of expected_split when given, else the order in which arms first appear in the data
    order = list(split or {})
    rank = {name: i for i, name in enumerate(order)}
    seen = {v: i for i, v in enumerate(stats.arm_order)}
    arms = sorted((v for v in values if v is not control and labels[v] != want),
                  key=lambda v: (rank.get(labels[v], len(rank)), seen.get(v, len(seen)), labels[v]))
    for v in (control, *arms):
        if stats.arm_counts[v] < 2:
            raise DataError(f"arm {labels[v]!r} has {stats.arm_counts[v]} unit(s); every arm needs at least two",
                            file=file, key="treatment", column=study.treatment)
    return control, arms, labels, split


def _control_arm(study: "Study", values: list[Any], file: str) -> tuple[Any, dict[Any, str]]:
    """The control arm among the variant ``values`` and every value's label; exit 3 when the labels collide,
    the control is not among them or it is the only arm."""
    from causalcli.designs.experiment.spec import arm_label

    labels = {v: arm_label(v) for v in values}
    if len(set(labels.values())) < len(labels):
        raise DataError(f"variant values of {study.treatment!r} collide when written as text", file=file,
                        key="treatment", column=study.treatment)
    control = _arm_value(study.design.control, values, labels)
    if control is None:
        found = ", ".join(sorted(map(repr, labels.values()))[:10])
        raise DataError(f"control arm {study.design.control!r} not found in {study.treatment!r}; its values: "
                        f"{found}", file=file, key="design.control", column=study.treatment)
    if len(values) < 2:
        raise DataError(f"variant column {study.treatment!r} has only the control arm; an experiment needs "
                        "two or more arms", file=file, key="treatment", column=study.treatment)
    return control, labels


def _complete_counts(shape: "MetricShape", stats: "Statistics", quantiles: Any) -> dict[Any, int]:
    """Each arm's complete units (rows) of a metric: the pass's counts, or a quantile of rows' own counts."""
    if shape.summed:
        group = stats.groups[shape.name if stats.complete_cases_by_metric else None]
        return {arm: sums.n for arm, sums in group.items()}
    found = quantiles.arms.get(shape.name, {}) if quantiles is not None else {}
    return {arm: q.n for arm, q in found.items()}


def _check_metric_data(stats: "Statistics", shapes: list["MetricShape"], control: Any, arms: list[Any],
                       labels: dict[Any, str], file: str, quantiles: Any = None) -> None:
    """Every arm has two complete units per metric, and no ratio metric's denominator totals zero. Without
    ``quantiles`` (before the quantile passes), the metrics the pass sums; with them, the quantiles of rows (too few
    values for the interval is the quantile passes' own error; none at all leaves the arm out of their groups)."""
    for i, s in enumerate(shapes):
        if s.summed == (quantiles is not None):
            continue
        counts = _complete_counts(s, stats, quantiles)
        for v in (control, *arms):
            n = counts.get(v, 0)
            if n < 2:
                raise DataError(f"metric {s.name!r}: arm {labels[v]!r} has {n} complete unit(s); at least two "
                                "are needed", file=file, key=f"design.metrics[{i}]")
            if s.den is not None and s.summed:
                sums = stats.groups[s.name if stats.complete_cases_by_metric else None][v]
                # exact sums of centred values: a mean within rounding of zero is a zero total
                mean = stats.centres[s.den] + sums.s[s.den] / n
                scale = abs(stats.centres[s.den]) + math.sqrt(max(sums.ss[(s.den, s.den)], 0.0) / n)
                if abs(mean) <= 1e-12 * scale:
                    raise DataError(f"ratio metric {s.name!r}: denominator {s.den!r} totals zero in arm "
                                    f"{labels[v]!r}", file=file, key=f"design.metrics[{i}].denominator",
                                    column=s.den)


def _arm_value(wanted: Any, values: list[Any], labels: dict[Any, str]) -> Any:
    """The data's arm that a spec value names: the same text (0 matches 0.0), else the one arm equal as a word.

    YAML reads an unquoted `no` as false and DuckDB reads a yes/no column as BOOLEAN, so a quoted
    "no" must find false, and an unquoted no must find a text arm 'no'.
    """
    from causalcli.designs.experiment.spec import arm_label
    from causalcli.data.types import _matches

    want = arm_label(wanted)
    exact = next((v for v in values if labels[v] == want), None)
    if exact is not None:
        return exact
    hits = [v for v in values if isinstance(v, bool) or isinstance(wanted, bool)]
    hits = [v for v in hits if _matches(v, wanted)]
    return hits[0] if len(hits) == 1 else None


def _inference(shape: "MetricShape", which: str, opts: Any, stats: "Statistics") -> str:
    from causalcli.designs.experiment.proportions import PROPORTION_INFERENCE, is_proportion

    base = "welch_t" if opts.distribution == "t" else "welch_z"
    if is_proportion(shape, stats) and shape.kind != "quantile":
        base = PROPORTION_INFERENCE
    parts = []
    if shape.adjustment == "cuped":
        parts.append("cuped")
    elif shape.adjustment == "regression":
        parts.append("regression_adjusted")
    if shape.kind == "ratio" or (shape.unit is not None and shape.kind != "quantile"):  # a quantile: of unit sums
        parts.append("delta_method")
    if shape.unit is not None:
        parts.append("clustered_by_unit")
    if shape.kind == "quantile":
        parts.append("quantile_order_statistics")
    if which == "rel":
        parts.append("log_ratio" if opts.relative_ci == "log" else "delta_method_relative")
    return "+".join([*dict.fromkeys(parts), base])


def _estimate(label: str, t: Any, conf: float, inference: str, p_adj: float) -> Estimate:
    return Estimate(float(t.value), float(t.std_error), float(t.ci_lower), float(t.ci_upper), conf, float(t.p_value),
                    inference, label, float(p_adj))
