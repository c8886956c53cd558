"""Synthetic control.

The estimator of Abadie and Gardeazabal (2003) and Abadie, Diamond and
Hainmueller (2010): donor weights W on the simplex reproduce the treated
unit's predictors under diagonal predictor weights V, and V is chosen (nested)
so that the synthetic unit tracks the treated unit's pre-period outcome
(``causalcli.models.synthetic_weights``). The estimate is the mean post-period gap
(treated - synthetic); ``effects`` hold the gap of every post-period.

Inference is placebo-in-space (Abadie et al. 2010, sec. 4.2): every donor in
turn is treated as if treated, and the p-value is the rank of the treated
unit's post/pre RMSPE ratio among all units. Where it can be computed, a
conformal interval (Chernozhukov, Wuethrich and Zhu 2021) goes with it; there
is no standard error (``std_error`` is null). Refuters: placebo-in-time (a fake
start inside the pre-period) and leave-one-donor-out (Abadie et al. 2015).

References
----------
Abadie, A. and Gardeazabal, J. (2003). The economic costs of conflict: a case study of
the Basque Country. American Economic Review 93(1), 113-132.
Abadie, A., Diamond, A. and Hainmueller, J. (2010). Synthetic control methods for
comparative case studies. Journal of the American Statistical Association 105(490), 493-505.
Abadie, A., Diamond, A. and Hainmueller, J. (2015). Comparative politics and the synthetic
control method. American Journal of Political Science 59(2), 495-510.
Ben-Michael, E., Feller, A. and Rothstein, J. (2021). The augmented synthetic control
method. Journal of the American Statistical Association 116(536), 1789-1803.
Chernozhukov, V., Wuethrich, K. and Zhu, Y. (2021). An exact and robust conformal inference
method for counterfactual and synthetic controls. JASA 116(536), 1849-1864.
"""

from __future__ import annotations

import math
from dataclasses import replace
from typing import TYPE_CHECKING, Any

import numpy as np

from causalcli.data.sql import value_hint
from causalcli.data.table import TABLE, dropped_missing, quote_identifier, require_columns
from causalcli.data.types import period_json, period_text
from causalcli.designs.base import Design, Fit, check_aggregate, require
from causalcli.errors import DataError, EstimationError, SpecError
from causalcli.records import Check, Estimate, Refutation
from causalcli.designs.synthetic_control.panel import label, refuse_infinite  # noqa: F401 (label: staggered)

if TYPE_CHECKING:  # pragma: no cover
    from causalcli.data.table import Table
    from causalcli.graph import Identification
    from causalcli.spec.loading import LoadedSpec
    from causalcli.spec.models import Study
    from causalcli.designs.synthetic_control.panel import Predictor, SynthData

MIN_PRE_PERIODS = 2
MIN_DONORS = 2
GENERIC_REFUTERS = ("placebo_treatment", "random_common_cause", "data_subset")
INFERENCE = "placebo_in_space_rmspe_ratio"


def _start_text(value: Any) -> str:
    """treatment_start as the spec gave it: 2011-07-01, or 1989 for 1989.0."""
    from causalcli.data.types import as_day

    day = None if isinstance(value, (int, float)) else as_day(value)
    return day.isoformat() if day is not None else label(value)


def _periods(value: Any, where: str, spec: "LoadedSpec", to_period: Any = None) -> tuple[float, ...]:
    """A special predictor's periods: a number, a list of numbers, or {from: a, to: b} (marked by a NaN pair).

    Periods may be dates when the time column holds dates; ``to_period`` (given once the data is read)
    turns a value into the period number the design reads time in.
    """
    from causalcli.data.types import as_day

    def num(x: Any) -> float:
        if to_period is not None:
            return to_period(x, where)
        if isinstance(x, bool) or not isinstance(x, (int, float)) and as_day(x) is None:
            raise SpecError(f"periods must be values of the time column (numbers, or dates such as 2011-07-01), "
                            f"found {x!r}", file=spec.source.display, key=where)
        return float(x) if isinstance(x, (int, float)) else 0.0  # a date: checked against the data later

    if isinstance(value, dict):
        if set(value) != {"from", "to"}:
            raise SpecError("a period range is {from: FIRST, to: LAST}", file=spec.source.display, key=where)
        lo, hi = num(value["from"]), num(value["to"])
        if lo > hi:
            raise SpecError("period range needs from <= to", file=spec.source.display, key=where)
        return (math.nan, lo, hi)
    if isinstance(value, (list, tuple)):
        if not value:
            raise SpecError("empty list of periods", file=spec.source.display, key=where)
        return tuple(num(x) for x in value)
    return (num(value),)


def _predictors(plain: list[str], special: list, where: str, times: np.ndarray,
                spec: "LoadedSpec", to_period: Any = None, labels: Any = None) -> list["Predictor"]:
    """Predictor rows: ``plain`` columns averaged over the predictors window, then the special ones."""
    from causalcli.data.types import period_text
    from causalcli.designs.synthetic_control.panel import Predictor

    out = [Predictor(c, c, None, f"design.predictors[{i}]") for i, c in enumerate(plain)]
    for i, (c, periods) in enumerate(special):
        key = f"{where}[{i}]"
        ps = _periods(periods, key, spec, to_period)
        if math.isnan(ps[0]):
            ps = tuple(float(x) for x in times if ps[1] <= x <= ps[2])
        first, last = period_text(ps[0], labels), period_text(ps[-1], labels)
        name = f"{c} ({first})" if len(ps) == 1 else f"{c} ({first} to {last})" if labels else f"{c} ({first}-{last})"
        out.append(Predictor(name, c, ps, key))
    return out


def _missing_predictor_notes(d: "SynthData") -> list[str]:
    """Predictors with missing values in the periods they average, in the units used: averaged over the rest."""
    pre = d.pre
    holes: dict[str, int] = {}
    for p in d.predictors:
        if p.periods is None:
            mask = pre.copy()
            if d.predictors_window is not None:
                mask &= (d.times >= d.predictors_window[0]) & (d.times <= d.predictors_window[1])
        else:
            mask = np.isin(d.times, np.asarray(p.periods, dtype=float)) & pre
        holes[p.column] = max(holes.get(p.column, 0), int(np.isnan(d.panels[p.column][mask]).sum()))
    return [f"predictor {column!r} is missing in {k} unit-periods it is averaged over (units used); its averages "
            "are over the periods observed, as R's Synth does" for column, k in holes.items() if k]


def _require_predictor_data(data: "SynthData", start: float, file: str, which: str = "") -> None:
    """Every predictor has a period in its window and a value there for every unit (else exit 3)."""
    from causalcli.designs.synthetic_control.panel import predictor_matrix

    X, labels = predictor_matrix(data, start)
    for p in data.predictors:
        if p.label not in labels:
            raise DataError(f"{which}predictor {p.label!r} has no period before treatment_start "
                            f"{period_text(start, data.time_labels)} "
                            f"in its window", file=file, key=p.key, column=p.column)
    for r, name in enumerate(labels):
        bad = np.flatnonzero(np.isnan(X[r]))
        if bad.size:
            who = data.units[bad[0]]
            role = "treated unit" if bad[0] == 0 else "donor"
            p = next(q for q in data.predictors if q.label == name)
            raise DataError(f"{which}predictor {name!r} has no value for {role} {who!r} in its pre-period window "
                            f"({bad.size} unit(s) missing it)", file=file, key=p.key, column=p.column)


def _named_weights(w: np.ndarray, units: tuple[str, ...], floor: float = 1e-3) -> dict[str, float]:
    """Donor -> weight for the weights of at least ``floor`` (units[0] is the treated unit)."""
    return {units[j + 1]: round(float(x), 6) for j, x in enumerate(w) if x >= floor}


def _fit_extra(extra: dict[str, Any], units: tuple[str, ...]) -> dict[str, Any]:
    """The fit's extra facts as JSON: every start's local optimum, the training fit of cross-validated V."""
    out: dict[str, Any] = {}
    for k, v in extra.items():
        if k == "scm_weights":
            continue
        if k in ("local_optima", "training_local_optima"):
            # every start's optimum, so that near-ties and published solutions reached from other starts show
            out[k] = [{"start": name, "loss": loss, "weights": _named_weights(w, units)} for name, loss, w in v]
        elif k == "training_weights":
            out[k] = _named_weights(v, units)
        else:
            out[k] = v
    return out


class SynthDesign(Design):
    name = "synthetic_control"
    estimators = ("synthetic_control", "augmented_synthetic_control_ridge", "synthetic_did")
    estimands = ("att",)
    inference = (INFERENCE, "conformal_cwz")
    default_refuters = ("placebo_in_time", "leave_one_donor_out")
    thresholds_checked = ("alpha", "pre_fit")
    graph_unused = "donor weights that reproduce the treated unit's pre-treatment path identify the effect"
    reference = ("Abadie, Diamond and Hainmueller (2010), JASA; Ben-Michael, Feller and Rothstein (2021); "
                 "Chernozhukov, Wuethrich and Zhu (2021)")

    def streams(self, study: "Study") -> bool:
        """With design.aggregate the rows stay where they are (a view): only the unit x period cells come back."""
        return study.design.aggregate is not None

    def missing_roles(self, study: "Study", identification: "Identification") -> list[tuple[str, str, str]]:
        return [(study.design.unit, "unit", "unit"), (study.design.time, "time", "time")]  # a cell's key

    # ------------------------------------------------------------ spec

    def check_spec(self, study: "Study", spec: "LoadedSpec") -> None:
        file = spec.source.display
        require(study, spec, "outcome")
        self.estimand(study, spec)
        d = study.design
        for key, hint in (("treatment", "treated_unit and treatment_start define who is treated and when"),
                          ("covariates", "list them under design.predictors"),
                          ("weights", "observation weights do not apply"),
                          ("categorical", "predictors must be numeric")):
            if getattr(study, key) not in (None, [], ""):
                raise SpecError(f"synthetic_control takes no '{key}' ({hint}); remove it", file=file, key=key)
        if study.refute:
            from causalcli.spec.models import refuter_name

            for i, item in enumerate(study.refute):
                name = refuter_name(item)
                if name in GENERIC_REFUTERS:
                    raise SpecError(
                        f"refuter {name!r} does not apply to synthetic control (one treated unit, no treatment "
                        f"column to permute); use placebo_in_time or leave_one_donor_out (placebo-in-space is "
                        f"the design's own inference)", file=file, key=f"refute[{i}]")
        from causalcli.designs.synthetic_control import synthdid
        from causalcli.designs.synthetic_control.staggered import is_staggered

        (synthdid.check_spec if d.estimator == synthdid.ESTIMATOR else synthdid.check_adh_spec)(study, spec)
        used = {study.outcome: "outcome", **{c: f"design.predictors[{i}]" for i, c in enumerate(d.predictors)}}
        for i, (column, _) in enumerate(d.special_predictors):
            used.setdefault(column, f"design.special_predictors[{i}]")
        cv = d.options.cross_validation
        for i, (column, _) in enumerate((cv.special_predictors or []) if cv else []):
            used.setdefault(column, f"design.options.cross_validation.special_predictors[{i}]")
        check_aggregate(d.aggregate, used, spec)
        start = None if is_staggered(d) else self.start_value(study, spec)
        for i, (column, periods) in enumerate(d.special_predictors):
            _periods(periods, f"design.special_predictors[{i}]", spec)
        cv = d.options.cross_validation
        if cv is not None:
            for i, (column, periods) in enumerate(cv.special_predictors or []):
                _periods(periods, f"design.options.cross_validation.special_predictors[{i}]", spec)
            if cv.special_predictors is not None and len(cv.special_predictors) != len(d.special_predictors):
                # V is chosen on the training predictors and then weights the main ones, entry by entry
                raise SpecError(f"cross_validation.special_predictors must give one entry per "
                                f"design.special_predictors entry ({len(d.special_predictors)}), each the training-"
                                f"period version of the main one in the same order (e.g. invest70 for invest80); "
                                f"found {len(cv.special_predictors)}: the V chosen on them weights the main "
                                f"predictors one to one", file=file,
                                key="design.options.cross_validation.special_predictors")
            if start is not None and isinstance(cv.validate_window[1], (int, float)) and cv.validate_window[1] >= start:
                raise SpecError(f"cross_validation.validate_window must end before treatment_start "
                                f"{label(start)}: the validation fit may use pre-periods only", file=file,
                                key="design.options.cross_validation.validate_window")
        if d.options.augmented == "ridge" and (d.predictors or d.special_predictors):
            raise SpecError("augmented: ridge balances the pre-period outcomes only (as augsynth without "
                            "covariates); predictors with it are not built yet: remove predictors and "
                            "special_predictors", file=file, key="design.options.augmented")
        from causalcli.designs.synthetic_control.pooled import is_pooled

        if (d.estimator == "synthetic_control" and not (d.options.augmented or d.predictors or d.special_predictors)
                and not is_pooled(d)):
            raise SpecError("synthetic control needs design.predictors or design.special_predictors "
                            "(e.g. [[outcome, period], ...])", file=file, key="design.predictors")

    @staticmethod
    def start_value(study: "Study", spec: "LoadedSpec", table: "Table | None" = None) -> float | None:
        """treatment_start as the period number time is read in; None for a date before the data is read."""
        from causalcli.data.types import as_day, period_number

        start = study.design.treatment_start
        if table is not None:
            return period_number(table, study.design.time, start, "design.treatment_start")
        if not isinstance(start, str) or as_day(start) is None:
            try:
                return float(start)
            except (TypeError, ValueError):
                pass
        if as_day(start) is not None:
            return None
        raise SpecError(f"treatment_start must be a value of the time column (a number, or a date such as "
                        f"2011-07-01), found {start!r}", file=spec.source.display, key="design.treatment_start")

    def _to_period(self, study: "Study", table: "Table") -> Any:
        """A function turning a period of the spec into the period number time is read in (dates -> 1..T)."""
        from causalcli.data.types import period_number

        return lambda value, key: period_number(table, study.design.time, value, key)

    # ------------------------------------------------------------ data

    def validate(self, study: "Study", table: "Table", spec: "LoadedSpec") -> None:
        d = study.design
        roles: dict[str, tuple[str, str]] = {d.unit: ("design.unit", "any"), d.time: ("design.time", "time"),
                                             study.outcome: ("outcome", "numeric")}
        for i, c in enumerate(d.predictors):
            roles.setdefault(c, (f"design.predictors[{i}]", "numeric"))
        for i, (c, _) in enumerate(d.special_predictors):
            roles.setdefault(c, (f"design.special_predictors[{i}]", "numeric"))
        if d.options.cross_validation is not None:
            for i, (c, _) in enumerate(d.options.cross_validation.special_predictors or []):
                roles.setdefault(c, (f"design.options.cross_validation.special_predictors[{i}]", "numeric"))
        require_columns(table, roles, timezone=spec.study.data.timezone)
        labels = table.period_labels.get(d.time)
        u, t = quote_identifier(d.unit), quote_identifier(d.time)
        dup = [] if d.aggregate else table.sql(
            f"SELECT {u}, {t}, count(*) AS n FROM {TABLE} WHERE {u} IS NOT NULL AND {t} IS NOT NULL "
            f"GROUP BY ALL HAVING count(*) > 1 ORDER BY ALL LIMIT 1")
        if dup:
            raise DataError(f"panel is not unique on unit x time: unit {label(dup[0][0])!r} has {dup[0][2]} rows "
                            f"in period {period_text(dup[0][1], labels)}; give one row per unit and period, or set "
                            f"design.aggregate (sum, mean or count) to aggregate finer rows", file=table.file,
                            key="design.unit", column=d.unit)
        units = {label(r[0]) for r in table.sql(f"SELECT DISTINCT {u} FROM {TABLE} WHERE {u} IS NOT NULL")}
        from causalcli.designs.synthetic_control.staggered import adoption_periods, is_staggered, treated_labels
        for treated in treated_labels(d):
            if treated not in units:
                raise DataError(f"treated unit {treated!r} not found in column {d.unit!r}{value_hint(treated, units)}",
                                file=table.file, key="design.treated_unit", column=d.unit)
        times = sorted(float(r[0]) for r in table.sql(f"SELECT DISTINCT {t} FROM {TABLE} WHERE {t} IS NOT NULL"))
        if is_staggered(d):
            adoption_periods(study, table, spec, times)
        start = times[-1] if is_staggered(d) else self.start_value(study, spec, table)
        shown = _start_text(d.treatment_start)
        if start not in times:
            raise DataError(f"treatment_start {shown} is not a period of column {d.time!r} (periods "
                            f"{period_text(times[0], labels)} to {period_text(times[-1], labels)})", file=table.file,
                            key="design.treatment_start", column=d.time)
        pre = [x for x in times if x < start]
        if len(pre) < MIN_PRE_PERIODS:
            raise DataError(f"too few pre-periods: {len(pre)} before treatment_start {shown}, at least "
                            f"{MIN_PRE_PERIODS} needed" + (" for synthetic DiD's time weights and noise level"
                                                           if d.estimator == "synthetic_did" else ""), file=table.file, key="design.treatment_start")
        missing = [label(x) for x in (*d.options.donors.include, *d.options.donors.exclude) if label(x) not in units]
        if missing:
            raise DataError(f"donor unit(s) not found in column {d.unit!r}: {', '.join(missing)}"
                            f"{value_hint(missing[0], units)}", file=table.file, key="design.options.donors", column=d.unit)

    def prepare(self, study: "Study", table: "Table", identification: "Identification",
                spec: "LoadedSpec") -> "SynthData":
        from causalcli.designs.synthetic_control.panel import Predictor, SynthData

        d = study.design
        opts = d.options
        from causalcli.designs.synthetic_control.staggered import adoption_periods, is_staggered, treated_labels

        labels = table.period_labels.get(d.time)
        to_period = self._to_period(study, table)

        def window(value: Any, key: str) -> tuple[float, float] | None:
            return None if value is None else (to_period(value[0], key), to_period(value[1], key))

        from causalcli.designs.synthetic_control.cells import pivot, read_cells

        cv = opts.cross_validation
        read = list(dict.fromkeys([study.outcome, *d.predictors, *(c for c, _ in d.special_predictors),
                                   *(c for c, _ in ((cv.special_predictors or []) if cv else []))]))
        cells = read_cells(table, d.unit, d.time, read, d.aggregate)  # one grouped pass: only the cells come back
        missing = dropped_missing(table, self.missing_roles(study, identification), table.rows - cells.rows)
        cell_units, unit_of_cell = np.unique(cells.units, return_inverse=True)
        unit_names = [label(x) for x in cell_units]
        all_units = sorted(set(unit_names))
        times = np.unique(cells.times)
        treated = treated_labels(d)
        adopts = adoption_periods(study, table, spec, list(times)) if is_staggered(d) else {}
        start = min(adopts[u] for u in treated) if adopts else self.start_value(study, spec, table)
        include = [label(x) for x in opts.donors.include]
        # staggered: a unit adopting at some period but not listed is no clean control
        exclude = {label(x) for x in opts.donors.exclude} | {u for u, a in adopts.items() if a is not None}
        donors = sorted(u for u in (include or all_units) if u not in treated and u not in exclude)
        if len(donors) < MIN_DONORS:
            raise DataError(f"the donor pool has {len(donors)} unit(s) ({', '.join(donors) or 'none'}); at least "
                            f"{MIN_DONORS} are needed", file=table.file, key="design.options.donors")
        pool = [*treated, *donors]
        col = {u: i for i, u in enumerate(pool)}
        unit_index = np.array([col.get(name, -1) for name in unit_names], dtype=np.int64)[unit_of_cell]
        time_index = np.searchsorted(times, cells.times)

        def panel(column: str) -> np.ndarray:
            return pivot(cells, column, unit_index, time_index, (times.size, len(pool)))

        Y = panel(study.outcome)
        holes = np.argwhere(np.isnan(Y))
        if holes.size:
            i, j = holes[0]
            role = "treated unit" if j < len(treated) else "donor"
            raise DataError(f"outcome {study.outcome!r} is missing for {role} {pool[j]!r} in period "
                            f"{period_text(times[i], labels)} ({len(holes)} missing unit-periods); the panel must be "
                            "complete "
                            f"or the unit excluded (design.options.donors.exclude)", file=table.file,
                            key="outcome", column=study.outcome)
        predictors = _predictors(d.predictors, d.special_predictors, "design.special_predictors", times, spec,
                                 to_period, labels)
        cv_predictors: list["Predictor"] = []
        if cv is not None:
            special = d.special_predictors if cv.special_predictors is None else cv.special_predictors
            where = ("design.special_predictors" if cv.special_predictors is None
                     else "design.options.cross_validation.special_predictors")
            cv_predictors = _predictors(d.predictors, special, where, times, spec, to_period, labels)
        panels: dict[str, np.ndarray] = {}
        for p in (*predictors, *cv_predictors):
            if p.column not in panels:
                panels[p.column] = Y if p.column == study.outcome else panel(p.column)
        refuse_infinite(study.outcome, {study.outcome: Y, **panels}, pool, len(treated), times, labels, table.file)
        data = SynthData(
            units=tuple(pool), times=times, start=start, Y=Y, panels=panels, predictors=tuple(predictors),
            predictors_window=window(opts.predictors_window, "design.options.predictors_window"),
            optimize_window=window(opts.optimize_window, "design.options.optimize_window"), v=opts.v,
            starts=opts.starts, augmented=opts.augmented, ridge_lambda=opts.ridge_lambda, conformal=opts.conformal,
            conformal_grid=opts.conformal_grid, file=table.file, unit_column=d.unit, time_column=d.time,
            rows=table.rows, cv_predictors=tuple(cv_predictors),
            cv_predictors_window=window(cv.predictors_window, "design.options.cross_validation.predictors_window")
            if cv else None,
            cv_validate_window=window(cv.validate_window, "design.options.cross_validation.validate_window")
            if cv else None, time_labels=tuple(labels) if labels else None,
            missing_n=missing.n, estimator=d.estimator, variant=opts.variant, se=opts.se,
            replications=opts.replications, treated=len(treated), adoption=tuple(adopts[u] for u in treated)
            if adopts else (), nu=opts.nu, weight_penalty=opts.weight_penalty, fixed_effects=opts.fixed_effects,
            placebo_units=opts.placebo_units)
        unlisted = sorted(u for u, a in adopts.items() if a is not None and u not in treated)
        shown_out = ", ".join(unlisted[:5]) + (" ..." if len(unlisted) > 5 else "")
        left_out = [f"{len(unlisted)} unit(s) adopting in column {d.treatment_start!r} but not in treated_unit are "
                    f"left out of the donors: {shown_out}"] if unlisted else []
        data = replace(data, notes=(*missing.warnings, *_missing_predictor_notes(data), *left_out))
        _require_predictor_data(data, start, table.file)
        if cv is not None:
            from causalcli.designs.synthetic_control.panel import optimize_mask, training_problem

            training = training_problem(data, start)
            _require_predictor_data(training, start, table.file, "training ")
            if not optimize_mask(training, start).any():
                raise DataError(f"cross_validation.validate_window {list(cv.validate_window)} holds no period "
                                f"before treatment_start {period_text(start, labels)}", file=table.file,
                                key="design.options.cross_validation.validate_window")
        return data

    # ------------------------------------------------------------ estimation

    def fit(self, prepared: "SynthData", study: "Study", seed: int, jobs: int | None = None) -> Fit:
        from causalcli.runtime.jobs import resolve_jobs
        from causalcli.designs.synthetic_control.panel import fit_unit, misfit_hint
        from causalcli.designs.synthetic_control.space import default_placebo_units, placebo_in_space_test

        d = prepared
        if d.estimator == "synthetic_control" and (d.treated > 1 or d.adoption):
            from causalcli.designs.synthetic_control import pooled

            return pooled.fit(d, study, seed, resolve_jobs(jobs))
        if d.estimator == "synthetic_did":
            from causalcli.designs.synthetic_control import synthdid

            return synthdid.fit(d, study, seed, resolve_jobs(jobs))
        J = len(d.units) - 1
        donors = np.arange(1, J + 1)
        try:
            f = fit_unit(d, 0, donors)
        except np.linalg.LinAlgError as exc:  # pragma: no cover - the solvers fall back to lstsq
            raise EstimationError(f"synthetic control fit failed: {exc}") from None
        pre, post = d.pre, d.post
        post_gaps = f.gaps[post]
        value = float(post_gaps.mean())
        # placebo in space: donors as if treated, the others as their donors (every donor up to the budget)
        budget = d.placebo_units or default_placebo_units(study.thresholds.alpha)
        space = placebo_in_space_test(d, f, budget, seed, resolve_jobs(jobs))
        p_value, rank, period_p = space.p_value, space.rank, space.period_p
        ratio_treated = f.post_rmspe / f.pre_rmspe if f.pre_rmspe > 0 else math.inf

        conf = None
        conformal_note = "not requested (design.options.conformal: false)"
        if d.conformal:
            from causalcli.designs.synthetic_control.conformal import conformal_intervals

            conf = conformal_intervals(d, f, 1 - study.conf_level)
            conformal_note = conf.note
        inference = INFERENCE
        ci_lo = ci_hi = None
        if conf is not None and conf.average is not None:
            ci_lo, ci_hi = conf.average
            inference = f"{INFERENCE}; interval conformal_cwz"
        estimate = Estimate(value, None, ci_lo, ci_hi, study.conf_level, p_value, inference)
        effects = []
        post_times = d.times[post]
        for i, t in enumerate(post_times):
            lo = hi = None
            name = "placebo_in_space_standardised_gap"
            if conf is not None and conf.periods is not None and conf.periods[i] is not None:
                lo, hi = conf.periods[i]
                name += "; interval conformal_cwz"
            effects.append(Estimate(float(post_gaps[i]), None, lo, hi, study.conf_level, float(period_p[i]), name,
                                    period_text(t, d.time_labels)))

        units = d.units
        weights = {units[j]: float(f.w[j - 1]) for j in donors}
        pre_mean_abs = float(np.mean(np.abs(d.Y[pre, 0])))
        fit_ratio = f.pre_rmspe / pre_mean_abs if pre_mean_abs > 0 else math.inf
        limit = study.thresholds.pre_fit
        passed = bool(fit_ratio <= limit)
        detail = (f"pre-period RMSPE {f.pre_rmspe:.4g} is {fit_ratio:.1%} of the treated unit's mean |outcome| "
                  f"{pre_mean_abs:.4g} ({'<=' if passed else '>'} {limit:.0%} allowed)")
        if not passed:
            detail += ("; the synthetic unit does not track the treated unit before treatment, so the gaps "
                       "after it are not credible: " + misfit_hint(d, study.outcome))
        checks = [Check("pre_fit", passed, detail)]
        min_p = 1 / space.units
        if min_p > study.thresholds.alpha:
            who = f"{space.units - 1} placebo units drawn from {J} donors" if space.drawn else f"{J} donors"
            checks.append(Check("placebo_power", None,
                                f"with {who} the smallest attainable placebo p-value is {min_p:.3g} > alpha "
                                f"{study.thresholds.alpha}: the permutation test cannot reject at this level"))
        balance = []
        if f.labels:
            Xs = f.X0 @ f.w
            for r, name in enumerate(f.labels):
                balance.append({"predictor": name, "treated": float(f.X1[r]), "synthetic": float(Xs[r]),
                                "donor_mean": float(f.X0[r].mean()), "v_weight": float(f.v[r])})
        diagnostics: dict[str, Any] = {
            "weights": weights,
            "v_weights": {name: float(f.v[r]) for r, name in enumerate(f.labels)},
            "balance": balance,
            "pre_rmspe": f.pre_rmspe,
            "post_rmspe": f.post_rmspe,
            "post_pre_rmspe_ratio": ratio_treated,
            "pre_fit_ratio": fit_ratio,
            "pre_fit_threshold": limit,
            "fit": {
                "estimator": "augmented_ridge" if d.augmented else "adh_nested",
                "v": d.v if not d.augmented else None,
                "starts": d.starts if not d.augmented else None,
                "start_kept": f.start,
                "loss_v": f.loss_v,
                "optimize_window": ([period_json(x, d.time_labels) for x in d.optimize_window]
                                    if d.optimize_window else None),
                "predictors_window": ([period_json(x, d.time_labels) for x in d.predictors_window]
                                      if d.predictors_window else None),
                **_fit_extra(f.extra, units),
            },
            "placebo_in_space": space.to_dict(units),
            "conformal": conformal_note if conf is None else conf.to_dict(),
            "path": {
                "time": [period_json(t, d.time_labels) for t in d.times],
                "treated": [float(x) for x in d.Y[:, 0]],
                "synthetic": [float(x) for x in f.synthetic],
                "treatment_start": period_json(d.start, d.time_labels),
                "treated_unit": units[0],
                "outcome_column": study.outcome, "time_column": d.time_column,  # the plots' axis names
            },
            "placebo_gaps": {units[j]: [float(x) for x in space.gaps[:, i]] for i, j in enumerate(space.columns)},
        }
        if d.augmented:
            diagnostics["scm_weights"] = {units[j]: float(f.extra["scm_weights"][j - 1]) for j in donors}
        n = {
            "rows": d.rows,
            **(d.missing_n or {}),
            "units": J + 1,
            "treated": 1,
            "control": J,
            "donors_weighted": int(np.count_nonzero(np.abs(f.w) > 1e-6)),
            "periods": int(d.times.size),
            "pre_periods": int(pre.sum()),
            "post_periods": int(post.sum()),
        }
        estimator = "augmented_synthetic_control_ridge" if d.augmented else "synthetic_control"
        warnings = list(d.notes)
        if f.extra.get("weights_solver_capped"):
            from causalcli.models.synthetic_weights import MAX_ACTIVE_SET_ITER

            warnings.append(f"the donor-weight solver stopped at its {MAX_ACTIVE_SET_ITER}-step cap with "
                            f"{n['donors_weighted']} donors weighted: the weights fit, but are not certified as the "
                            "least-norm optimum (many donors fit the treated unit about equally well); with a pool "
                            "this large, fewer, closer donors (data.filter) give a tighter and cheaper fit")
        # a null interval says why, not only in diagnostics.conformal (texas.csv: 16 periods, 8 before)
        no_period = conf is not None and any(e.ci_lower is None for e in effects)
        if d.conformal and (ci_lo is None or no_period):
            what = "the effect" if ci_lo is None else "the per-period effects"
            warnings.append(f"no confidence interval for {what} (p-values are placebo-in-space ones): {conformal_note}")
        return Fit(estimator, "att", estimate, n, effects=effects, diagnostics=diagnostics, checks=checks,
                   warnings=warnings)

    # ------------------------------------------------------------ refuters

    def refute_once(self, prepared: "SynthData", name: str, options: Any, rng: "np.random.Generator") -> float:
        from causalcli.designs.synthetic_control.refute import leave_one_donor_out, placebo_in_time

        if name == "placebo_in_time":
            return placebo_in_time(prepared, options, rng)
        if name == "leave_one_donor_out":
            return leave_one_donor_out(prepared, options)
        raise SpecError(f"refuter {name!r} does not apply to synthetic control; its refuters: "
                        f"{', '.join(self.default_refuters)}", key="refute")

    def distinct_placebos(self, prepared: "SynthData", name: str, options: Any) -> list | None:
        """placebo_in_time with no more eligible fake starts than simulations: each start once, in order."""
        from causalcli.designs.synthetic_control.refute import fake_starts

        if name != "placebo_in_time":
            return None
        try:
            starts = fake_starts(prepared, options)
        except EstimationError:
            return None  # the simulations fail one by one and the summary says why
        return [float(s) for s in starts] if starts.size <= options.simulations else None

    def refute_placebo(self, prepared: "SynthData", name: str, placebo: Any) -> float:
        from causalcli.designs.synthetic_control.refute import placebo_in_time_at

        return placebo_in_time_at(prepared, float(placebo))

    def summarise_refuter(self, name: str, sims: np.ndarray, estimate: Estimate, alpha: float) -> Refutation:
        from causalcli.designs.synthetic_control.refute import summarise

        return summarise(name, sims, estimate, alpha)
