"""Regression discontinuity: the jump at the cutoff of a local polynomial in the running variable.

Sharp (treated at or above the cutoff) and fuzzy (``fuzzy:``, the take-up column: the ratio of the outcome's jump
to the take-up's) designs, as rdrobust estimates them (Calonico, Cattaneo and Titiunik 2014): ``estimate.value``
is the conventional estimate, its interval the robust bias-corrected one. Numerics in ``estimator.py`` and
``bandwidth.py``; the checks (balance, placebo cutoffs, bandwidth sensitivity, density) in ``checks.py``.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, NamedTuple

import numpy as np

from causalcli.data.table import MissingRows, dropped_missing, require_columns
from causalcli.data.weights import zero_weight_warning
from causalcli.designs.base import Design, Fit, require
from causalcli.errors import DataError, SpecError
from causalcli.records import Estimate

if TYPE_CHECKING:  # pragma: no cover
    from causalcli.data.table import Table
    from causalcli.designs.rdd.by_value import ByValue
    from causalcli.designs.rdd.fitting import RdResult, RdSettings
    from causalcli.designs.rdd.segments import SegmentColumn
    from causalcli.graph import Identification
    from causalcli.spec.loading import LoadedSpec
    from causalcli.spec.models import Study



class Rows(NamedTuple):
    """The complete rows sorted by the running variable: x, D (the outcome, then the take-up), cluster codes and
    observation weights (None when not given; rows of weight 0 are left out); each segment column's labels."""

    x: np.ndarray
    D: np.ndarray
    clusters: np.ndarray | None
    weights: np.ndarray | None
    segments: tuple[np.ndarray, ...] = ()


class RowSource:
    """The complete rows of the outcome's columns, sorted by the running variable, read from the table on first use.

    Without clusters the estimate and its checks need only the rows by value (``ByValue``), so the rows are read
    only when a refuter subsets them (``before_refuters``, in the main process: forked workers inherit them);
    with clusters, at once. Pickling reads them first (the table's connection does not travel)."""

    def __init__(self, table: "Table | None", columns: list[str], as_text: tuple[str, ...], weights: str | None,
                 arrays: Rows | None = None, segments: tuple[str, ...] = ()) -> None:
        self._table, self._columns, self._as_text, self._weights = table, columns, as_text, weights
        self._arrays, self._segments = arrays, segments

    def get(self) -> Rows:
        if self._arrays is None:
            self._arrays = _read_rows(self._table, self._columns, self._as_text, self._weights, self._segments)[0]
            self._table = None
        return self._arrays

    def __getstate__(self) -> dict[str, Any]:
        self.get()
        return {**self.__dict__, "_table": None}


@dataclass(frozen=True)
class RddData:
    """The complete rows by running value, and the rows themselves on demand (picklable for the refuters'
    workers)."""

    by_value: "ByValue"  # the outcome (then the take-up) by distinct running value, x not centred
    row_source: RowSource
    clustered: bool
    covariates: dict[str, "ByValue"]  # name -> the covariate by running value, its own complete rows
    cutoff: float
    running: str
    fuzzy: str | None
    rows: int
    missing: MissingRows
    file: str
    settings: "RdSettings"
    weights: str | None = None  # the observation-weight column
    zero_weight: int = 0  # complete rows of weight 0, left out
    segments: tuple["SegmentColumn", ...] = ()  # the top-level segments (``segments.py``)

    @property
    def used(self) -> int:
        """The complete rows used."""
        return self.by_value.rows


class RddDesign(Design[RddData]):
    name = "rdd"
    estimators = ("local_polynomial",)
    estimands = ("ate", "late")
    inference = ("rd_robust_bias_corrected", "rd_robust_bias_corrected_clustered", "wild_cluster_bootstrap_webb",
                 "wild_cluster_bootstrap_rademacher")
    reference = ("Local-polynomial RD with robust bias-corrected inference (Calonico, Cattaneo and Titiunik 2014), "
                 "MSE/CER-optimal bandwidths (Calonico, Cattaneo and Farrell 2020); pinned to rdrobust")
    views_parquet = True  # reads its columns once (a second time per covariate): no copy of the file
    default_refuters = ("data_subset",)  # the placebo and covariate refuters have no meaning here: checks do it
    graph_unused = "identification comes from continuity at the cutoff"
    weights_built = True  # rdrobust's weights: they multiply the kernel in every fit and bandwidth selector
    segments_built = True  # segments.py: the headline's fit on each segment's rows

    # ---------------------------------------------------------------- spec and data
    def check_spec(self, study: "Study", spec: "LoadedSpec") -> None:
        require(study, spec, "outcome")
        d = study.design
        if study.treatment and d.fuzzy and study.treatment != d.fuzzy:
            raise SpecError(f"treatment {study.treatment!r} and design.fuzzy {d.fuzzy!r} differ: in an RD design the "
                            "treatment is the take-up column; give it once (design.fuzzy), or neither for a sharp "
                            "design", file=spec.source.display, key="design.fuzzy")
        wanted = "late" if _fuzzy(study) else "ate"
        if d.estimand not in (None, wanted):
            raise SpecError(f"estimand {d.estimand!r} is not what this design estimates: a "
                            + ("fuzzy RD gives 'late' (the effect on those the cutoff moves)" if wanted == "late" else
                               "sharp RD gives 'ate' at the cutoff ('late' needs design.fuzzy, the take-up column)")
                            + f"; write estimand: {wanted} or leave it out", file=spec.source.display,
                            key="design.estimand")
        roles = {study.outcome: "outcome", _fuzzy(study): "design.fuzzy"}
        if d.running in roles:
            raise SpecError(f"running variable {d.running!r} is also the {roles[d.running]}; use another column",
                            file=spec.source.display, key="design.running")
        for i, c in enumerate(study.covariates):
            # a covariate is its own RD at the cutoff (covariate_balance): the running variable cannot jump there
            # and take-up must, so either one passes or fails the check by construction
            if c in (d.running, _fuzzy(study)):
                role = "design.running" if c == d.running else "design.fuzzy (the take-up, whose jump is the first stage)"
                raise SpecError(f"covariate {c!r} is {role}; covariates are checked for a jump at the cutoff, which "
                                "says nothing for this column: remove it from covariates",
                                file=spec.source.display, key=f"covariates[{i}]")
        if study.segments:
            from causalcli.designs.rdd.segments import check_segments_spec

            check_segments_spec(study, spec.source.display, {d.running: "design.running (the running variable)",
                                                             _fuzzy(study): "design.fuzzy (the take-up)"})
        if study.categorical:
            raise SpecError("categorical covariates are not used by rdd (covariates are checked for balance at the "
                            "cutoff, each as an outcome); list numeric covariates", file=spec.source.display,
                            key="categorical")

    def columns(self, study: "Study") -> list[str]:
        d = study.design
        names = [d.running, study.outcome, _fuzzy(study), d.cluster, study.weights, *study.covariates,
                 *study.segments]
        return list(dict.fromkeys(n for n in names if n))

    def validate(self, study: "Study", table: "Table", spec: "LoadedSpec") -> None:
        d = study.design
        roles = {d.running: ("design.running", "numeric"), study.outcome: ("outcome", "numeric")}
        if _fuzzy(study):
            roles.setdefault(_fuzzy(study), ("design.fuzzy", "numeric"))
        for i, c in enumerate(study.covariates):
            roles.setdefault(c, (f"covariates[{i}]", "numeric_only"))
        if d.cluster:
            roles.setdefault(d.cluster, ("design.cluster", "any"))
        for i, c in enumerate(study.segments):
            roles.setdefault(c, (f"segments[{i}]", "any"))
        require_columns(table, roles)
        if study.segments:
            from causalcli.data.segments import check_segment_levels

            check_segment_levels(study.segments, table)

    def missing_roles(self, study: "Study", identification: "Identification") -> list[tuple[str, str, str]]:
        """The running variable, the outcome, take-up, cluster, weights and segments (covariates are read apart,
        for their balance checks, and drop no row of the estimate)."""
        from causalcli.data.segments import SEGMENT_ROLE

        d, fuzzy = study.design, _fuzzy(study)
        roles = [(d.running, "running", "running variable"), (study.outcome, "outcome", "outcome")]
        roles += [(fuzzy, "fuzzy", "take-up")] if fuzzy else []
        roles += [(d.cluster, "cluster", "cluster")] if d.cluster else []
        roles += [(study.weights, "weights", "weights")] if study.weights else []
        taken = {c for c, _, _ in roles}
        return roles + [(c, *SEGMENT_ROLE) for c in study.segments if c not in taken]

    def prepare(self, study: "Study", table: "Table", identification: "Identification",
                spec: "LoadedSpec") -> RddData:
        from causalcli.designs.rdd import by_value

        d = study.design
        fuzzy = _fuzzy(study)
        outcomes = [study.outcome, *([fuzzy] if fuzzy else [])]
        main = [d.running, *outcomes, *([d.cluster] if d.cluster else [])]
        text = (d.cluster,) if d.cluster else ()
        weights = study.weights
        segments = tuple(study.segments)  # a row without a segment value is dropped from the study
        if d.cluster:
            # clustered variances need the rows: read them now (sorted by the running variable, so every
            # bandwidth window is a contiguous slice), and the per-value form from them
            arrays, kept, zero_weight = _read_rows(table, main, text, weights, segments)
            values = by_value.from_rows(arrays.x, arrays.D, arrays.weights)
            source = RowSource(None, main, text, weights, arrays, segments)
        else:
            # the per-value sums from the engine; the rows stay there until a refuter asks for them
            values = by_value.from_table(table, d.running, outcomes, weights, segments)
            zero_weight = by_value.zero_weight_rows(table, [*main, *segments], weights) if weights else 0
            kept = values.rows
            source = RowSource(table, main, text, weights, segments=segments)
        if weights and not kept and zero_weight:
            raise DataError(f"every weight in {weights!r} is zero in the complete rows; the study has no row to "
                            "estimate from", file=table.file, key="weights", column=weights)
        missing = dropped_missing(table, self.missing_roles(study, identification), table.rows - kept - zero_weight)
        _require_sides(values, d.cutoff, d.running, d.options.p, table.file)
        if fuzzy:
            _require_jump(values, d.cutoff, fuzzy, table.file)
        covariates = {c: by_value.from_table(table, d.running, [c], weights) for c in study.covariates}
        by_segment: tuple["SegmentColumn", ...] = ()
        if segments:
            from causalcli.designs.rdd.segments import segment_columns

            by_segment, table.provenance["rdd_segments"] = segment_columns(table, study, outcomes, source)
        return RddData(values, source, bool(d.cluster), covariates, d.cutoff, d.running, fuzzy, table.rows, missing,
                       table.file, _settings(study), weights, zero_weight, by_segment)

    # ---------------------------------------------------------------- fit
    def fit(self, prepared: RddData, study: "Study", seed: int, jobs: int | None = None) -> Fit:
        from causalcli.designs.rdd.checks import balance, bandwidth_sensitivity, density, placebo_cutoffs

        d = prepared
        settings = d.settings
        result = _fit_or_explain(d, settings)
        est = result.fit
        lower, upper, p_value = result.robust_interval(settings.conf_level)
        inference = "rd_robust_bias_corrected" + ("_clustered" if d.clustered else "")
        estimate = Estimate(est.conventional, est.se_robust, lower, upper, settings.conf_level, p_value, inference)
        warnings = [*d.missing.warnings, *zero_weight_warning(d.zero_weight, study.weights or "")]
        wild = None
        if d.clustered:
            from causalcli.designs.rdd.clusters import clustered_inference, wild_interval

            estimate, clusters, clusters_check, said = clustered_inference(
                result, settings, study.design.cluster, estimate, study.design.options, seed)
            warnings += said
            if clusters["method"].startswith("wild"):  # the other bandwidths' intervals by the same bootstrap
                def wild(r: "RdResult") -> dict[str, Any]:
                    return clusters["wild"] if r is result else wild_interval(
                        r, settings, study.design.options, seed, settings.conf_level)
        effects, sensitivity = bandwidth_sensitivity(d, settings, result, study.thresholds.alpha, wild)
        checks = [sensitivity]
        diagnostics: dict[str, Any] = {
            "bandwidth": result.bandwidths.as_dict(),
            "conventional": _conventional(est, settings.conf_level),
            "bias_corrected": {"estimate": est.bias_corrected, "robust_std_error": est.se_robust},
            "polynomial": {"p": settings.p, "q": settings.p + 1, "kernel": settings.kernel,
                           "vce": "cr1" if d.clustered else "nn (3 neighbours)"},
            "cutoff": d.cutoff, "running": d.running, "outcome": study.outcome,
            "limits": {"below": est.left_intercepts[0], "above": est.right_intercepts[0]},
            "fit": {"below": list(est.left_coefficients), "above": list(est.right_coefficients),
                    "note": "the outcome's order-p polynomial in (running - cutoff) on each side, within h"},
        }
        if d.weights:
            diagnostics["weights"] = {
                "column": d.weights, "zero_weight_rows": d.zero_weight,
                "note": "observation weights multiply the kernel weights in every local fit, bandwidth selector, "
                        "variance and check (rdrobust's weights); rows of weight 0 are left out. The density test "
                        "and the plot's bins count rows, unweighted (rddensity takes no weights)"}
        if est.first_stage is not None:
            jump, se_cl, se_rb = est.first_stage
            diagnostics["first_stage"] = {"jump": jump, "std_error": se_cl, "robust_std_error": se_rb,
                                          "below": est.left_intercepts[1], "above": est.right_intercepts[1]}
        for check, extra in (balance(d, settings, study.thresholds.alpha), placebo_cutoffs(d, settings, study, result),
                             density(d, study.thresholds.alpha, result)):
            if check is not None:
                checks.append(check)
                diagnostics.update(extra)
        if d.clustered:
            diagnostics["clusters"] = clusters
            checks.append(clusters_check)
        from causalcli.designs.rdd.bins import binned_means_by_value

        diagnostics["bins"], diagnostics["bin_count"] = binned_means_by_value(d.by_value, d.cutoff)
        if d.segments:
            from causalcli.designs.rdd.segments import segment_effects

            by_segment = segment_effects(d, study, seed, warnings)
            effects = [*effects, *by_segment.effects]
            diagnostics["segments"], diagnostics["heterogeneity"] = by_segment.details, by_segment.heterogeneity
            warnings += by_segment.warnings
        n = {"rows": d.rows, **d.missing.n, **({"dropped_zero_weight": d.zero_weight} if d.zero_weight else {}),
             "used": d.used, "below_cutoff": result.n_left,
             "above_cutoff": result.n_right, "within_h_below": est.n_left, "within_h_above": est.n_right}
        return Fit("local_polynomial", "late" if d.fuzzy else "ate", estimate, n, effects=effects,
                   diagnostics=diagnostics, checks=checks, warnings=warnings)

    # ---------------------------------------------------------------- refuters
    def units(self, prepared: RddData) -> int:
        return prepared.used

    def before_refuters(self, prepared: RddData, names: list[str]) -> None:
        prepared.row_source.get()  # in the main process: forked workers inherit the rows

    def point(self, prepared: RddData, *, treatment=None, extra_covariate=None, rows=None) -> float:
        from causalcli.designs.rdd.estimator import TooFewValues
        from causalcli.errors import EstimationError

        if treatment is not None or extra_covariate is not None:
            raise self.refuters_not_built("point")
        try:
            return _rd_fit(prepared, prepared.settings, rows).fit.conventional
        except TooFewValues as e:
            raise EstimationError(f"too few distinct running values on the {e.side} side") from e


def _read_rows(table: "Table", columns: list[str], as_text: tuple[str, ...], weights: str | None,
               segments: tuple[str, ...] = ()) -> tuple[Rows, int, int]:
    """(rows, rows kept, rows of weight 0 left out): the complete rows (a value in every segment column too),
    sorted by their values, the running variable first (``Table.arrays``); D holds the outcome, then the take-up."""
    from causalcli.data.segments import segment_labels
    from causalcli.data.table import refuse_infinite
    from causalcli.data.weights import positive_weights

    cols, _ = table.arrays([*columns, *([weights] if weights else []), *segments], as_text=as_text)
    zero_weight = 0
    if weights:  # a row of weight 0 adds nothing to a fit but would count in n (and in the clusters' counts)
        positive, zero_weight = positive_weights(cols, weights, table.file)
        cols = {k: v[positive] for k, v in cols.items()}
    running, *rest = columns
    # an infinite value is kept as a value: the bandwidth turned it into NaN and a misleading error
    refuse_infinite(cols, [(running, "design.running", "running variable"),
                           *((c, None, "column") for c in rest if c not in as_text)], as_text, table.file)
    outcomes = [c for c in rest if c not in as_text]
    x = np.asarray(cols[running], dtype=np.float64)
    D = np.column_stack([np.asarray(cols[c], dtype=np.float64) for c in outcomes])
    codes = None
    if as_text:
        codes = np.unique(np.asarray(cols[as_text[0]]).astype(str), return_inverse=True)[1].reshape(-1)
    w = np.asarray(cols[weights], dtype=np.float64) if weights else None
    labels = tuple(segment_labels(cols[c]) for c in segments)
    return Rows(x, D, codes, w, labels), int(x.size), zero_weight


def _rd_fit(d: RddData, settings: "RdSettings", rows: np.ndarray | None = None) -> "RdResult":
    """The RD fit of the study's rows: by value without clusters, on the rows with them or for a subset."""
    from causalcli.designs.rdd.fitting import rd_fit

    if rows is None and not d.clustered:
        return rd_fit(None, None, d.cutoff, settings, values=d.by_value.values)
    x, D, clusters, weights, _ = d.row_source.get()
    if rows is not None:
        x, D = x[rows], D[rows]
        clusters = None if clusters is None else clusters[rows]
        weights = None if weights is None else weights[rows]
    return rd_fit(x, D, d.cutoff, settings, clusters, weights=weights)


def _fuzzy(study: "Study") -> str | None:
    return study.design.fuzzy or study.treatment


def _settings(study: "Study") -> "RdSettings":
    from causalcli.designs.rdd.fitting import RdSettings

    o = study.design.options
    return RdSettings(o.p, o.kernel, o.bandwidth, study.conf_level)


def _fit_or_explain(d: RddData, settings: "RdSettings") -> "RdResult":
    from causalcli.designs.rdd.estimator import TooFewValues
    from causalcli.designs.rdd.local_poly import NoJump

    try:
        return _rd_fit(d, settings)
    except NoJump as e:
        raise DataError(f"take-up column {d.fuzzy!r} does not jump at the cutoff {d.cutoff:g} (its fitted jump is 0), "
                        "so the fuzzy effect is not identified; drop design.fuzzy for a sharp design", file=d.file,
                        key="design.fuzzy", column=d.fuzzy) from e
    except TooFewValues as e:
        if not math.isfinite(e.bandwidth):  # the selector's variance had no finite value
            why = ""
            if d.clustered:
                x, clusters = d.row_source.get().x, d.row_source.get().clusters
                above = x >= d.cutoff
                below_n, above_n = (int(np.unique(clusters[side]).size) for side in (~above, above))
                why = (f" (design.cluster: {below_n} cluster(s) below the cutoff and {above_n} at or above it; the "
                       "selector's clustered variance needs at least 2 on each side)")
            raise DataError(f"the bandwidth selector {settings.bandwidth!r} found no finite bandwidth{why}: give "
                            "options.bandwidth as a number", file=d.file, key="design.options.bandwidth") from e
        raise DataError(f"only {e.found} distinct value(s) of {d.running!r} within the bandwidth {e.bandwidth:g} "
                        f"{'below' if e.side == 'left' else 'at or above'} the cutoff {d.cutoff:g}; an order-"
                        f"{e.needed - 1} fit needs {e.needed}: give a larger options.bandwidth or a smaller "
                        "options.p", file=d.file, key="design.options.bandwidth", column=d.running) from e


def _conventional(est: Any, conf_level: float) -> dict[str, float]:
    from causalcli.inference.distributions import normal_quantile, normal_two_sided_p

    z = normal_quantile(0.5 + conf_level / 2)
    return {"estimate": est.conventional, "std_error": est.se_conventional,
            "ci_lower": est.conventional - z * est.se_conventional,
            "ci_upper": est.conventional + z * est.se_conventional,
            "p_value": normal_two_sided_p(est.conventional / est.se_conventional)}


def _require_sides(data: "ByValue", cutoff: float, running: str, p: int, file: str) -> None:
    """The cutoff inside the running variable's range, and enough rows and distinct values on each side."""
    from causalcli.designs.rdd.fitting import MIN_ROWS

    values, counts = data.values.x, data.values.counts
    if values.size == 0:
        raise DataError("no complete rows: every row misses a value in the columns used", file=file)
    lo, hi = float(values[0]), float(values[-1])
    if not lo < cutoff < hi:
        raise DataError(f"cutoff {cutoff:g} is outside the range of running variable {running!r} ({lo:g} to {hi:g}) "
                        "in the rows used, so one side of the cutoff is empty; set design.cutoff inside that range",
                        file=file, key="design.cutoff", column=running)
    k = data.cut(cutoff)
    needed = p + 2  # the bias-correction fit has order p+1
    for side, part in (("below", slice(0, k)), ("at or above", slice(k, None))):
        found, rows = values[part].size, int(counts[part].sum())
        if found < needed:
            raise DataError(f"only {rows} row(s) with {found} distinct value(s) of {running!r} {side} the cutoff "
                            f"{cutoff:g}; the local fits of order p={p} and its bias correction need at least "
                            f"{needed}: move the cutoff or add data", file=file, key="design.cutoff", column=running)
    if data.rows < MIN_ROWS:
        raise DataError(f"only {data.rows} complete rows: bandwidth selection needs at least {MIN_ROWS}", file=file,
                        column=running)


def _require_jump(data: "ByValue", cutoff: float, fuzzy: str, file: str) -> None:
    """A take-up column that does not move at the cutoff identifies nothing (rdrobust's own test)."""
    k = data.cut(cutoff)
    counts, sums = data.values.counts, data.values.D[:, 1]
    low, high = data.low[:, 1], data.high[:, 1]
    constant = all(low[part].min() == high[part].max() for part in (slice(0, k), slice(k, None)))
    below, above = sums[:k].sum() / counts[:k].sum(), sums[k:].sum() / counts[k:].sum()
    if constant and abs(below - above) < 1.5e-8:
        raise DataError(f"take-up column {fuzzy!r} is {low[0]:g} on both sides of the cutoff {cutoff:g}: no jump, "
                        "so the fuzzy effect is not identified; drop design.fuzzy for a sharp design",
                        file=file, key="design.fuzzy", column=fuzzy)
