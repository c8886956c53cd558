"""Regression-discontinuity effects by segment (the top-level ``segments`` key), their correction and
heterogeneity test.

The effect within ``column=value`` is the headline's estimator fitted on that value's rows alone, as rdrobust run
on the subset: sharp or fuzzy, the same kernel, order p and weights, the bandwidths selected again on the
segment's rows by the same selector (a bandwidth given as a number is kept), the same clusters, and the robust
bias-corrected interval; with few clusters in the segment its p-value and interval come from the wild cluster
bootstrap on its rows, as the headline's (``rdd.clusters``). A value with too few rows or distinct running values
on a side, whose take-up does not jump, or whose bandwidth selection fails, is skipped with a warning naming it.

Rows: without clusters each segment column's rows by (segment value, running value) come from one engine
``GROUP BY`` (``by_value.by_segment``); with clusters (whose variances need the rows), from the rows. ``provenance.rdd_segments`` says which.

Correction: Holm over the values of one column (``inference.multiplicity.corrected_over_values``, as iv, did and
weighting do); the headline is in no family.

Heterogeneity: per column, the Wald chi-square of equal effects (k - 1 contrasts with the first value) of the
**bias-corrected** estimates with their **robust** standard errors: at the MSE-optimal bandwidth the conventional
estimate carries a first-order bias the robust standard error accounts for only about the bias-corrected one, so
the test is the one the robust intervals make (Calonico, Cattaneo and Titiunik 2014). The segments' rows are
disjoint, so without clusters (rdrobust's nearest-neighbour variance is within a side of one segment's rows) or
with clusters nested in the segments their estimates are independent and the covariance is diagonal. When a
cluster holds rows of several values the estimates are correlated through it; that covariance is not computed,
and ``not_computed`` says why.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from typing import TYPE_CHECKING, Any

import numpy as np

from causalcli.errors import SpecError
from causalcli.inference.multiplicity import corrected_over_values, differs_warning, skipped_warning, wald_equal
from causalcli.numbers import number_shape
from causalcli.records import Estimate

if TYPE_CHECKING:  # pragma: no cover
    from causalcli.data.table import Table
    from causalcli.designs.rdd.by_value import ByValue
    from causalcli.designs.rdd.design import RddData, RowSource
    from causalcli.designs.rdd.fitting import RdResult
    from causalcli.spec.models import Study

CORRECTION = "holm"
HETEROGENEITY_TEST = ("Wald chi-square: the column's segment effects are equal (k - 1 contrasts), of the "
                      "bias-corrected estimates with their robust standard errors (the robust intervals' test)")
INDEPENDENT = "the segments' rows are disjoint, so their estimates are independent (diagonal covariance)"


@dataclass(frozen=True)
class SegmentColumn:
    """A segment column's values (labels, sorted as text) and, from the engine, each one's rows by running value;
    ``by_value`` None: from the rows (``Rows.segments``, column ``index``)."""

    column: str
    index: int
    labels: tuple[str, ...]
    by_value: tuple["ByValue", ...] | None


@dataclass(frozen=True)
class SegmentEffects:
    effects: list[Estimate]
    heterogeneity: list[dict[str, Any]]
    details: dict[str, dict[str, dict[str, Any]]]  # column -> value -> rows, bandwidths, estimates (or why skipped)
    warnings: list[str]


def check_segments_spec(study: "Study", file: str, roles: dict[str | None, str]) -> None:
    """Exit 2: a segment column that is the treatment, the outcome, the running variable or the take-up."""
    from causalcli.data.segments import check_segment_columns

    check_segment_columns(study, file)
    for i, column in enumerate(study.segments):
        if column in roles:
            raise SpecError(f"segments[{i}] {column!r} is {roles[column]}: within one of its values there is no "
                            "discontinuity to estimate; segments are pre-treatment columns (a region, a group) to "
                            "report the effect by", file=file, key=f"segments[{i}]")


def segment_columns(table: "Table", study: "Study", outcomes: list[str], source: "RowSource"
                    ) -> tuple[tuple[SegmentColumn, ...], dict[str, str]]:
    """Each segment column's values and their rows by running value; and ``provenance.rdd_segments``: where each
    column's rows came from."""
    from causalcli.data.segments import segment_labels
    from causalcli.designs.rdd.by_value import by_segment

    d = study.design
    segments = tuple(study.segments)
    found, said = [], {}
    for i, column in enumerate(segments):
        if d.cluster:
            said[column] = "the rows (design.cluster: clustered variances need them)"
        else:
            parts = by_segment(table, d.running, outcomes, column, study.weights, segments)
            # distinct values have distinct labels (``segment_labels`` reads back exactly), so the engine's groups
            # are the segments the rows path would make
            labels = [str(v) for v in segment_labels(np.array([v for v, _ in parts]))] if parts else []
            order = sorted(range(len(labels)), key=lambda j: labels[j])
            found.append(SegmentColumn(column, i, tuple(labels[j] for j in order), tuple(parts[j][1] for j in order)))
            said[column] = f"the engine: one GROUP BY ({column}, {d.running}), the rows by running value"
            continue
        found.append(SegmentColumn(column, i, tuple(str(v) for v in np.unique(source.get().segments[i])), None))
    return tuple(found), said


def segment_effects(d: "RddData", study: "Study", seed: int, headline_warnings: list[str]) -> SegmentEffects:
    """One effect per value of each segment column, Holm-corrected within the column, and the column's Wald test
    of equal effects."""
    said_above = {number_shape(w) for w in headline_warnings}  # the headline warned already, maybe with other numbers
    effects: list[Estimate] = []
    tests, warnings, skipped = [], [], []
    details: dict[str, dict[str, dict[str, Any]]] = {}
    for column in d.segments:
        found: list[tuple[Estimate, "RdResult"]] = []
        details[column.column] = {}
        for j, value in enumerate(column.labels):
            label = f"{column.column}={value}"
            values, rows = _segment_rows(d, column, j)
            result, why = _fit(d, values, rows)
            if result is None:
                skipped.append(f"{label} ({why})")
                details[column.column][value] = {"rows": values.rows, "skipped": why}
                continue
            estimate, detail, its_warnings = _estimate(d, study, result, seed)
            found.append((replace(estimate, label=label), result))
            details[column.column][value] = {"rows": values.rows, **detail}
            warnings += [f"segment {label}: {w}" for w in its_warnings if number_shape(w) not in said_above]
        effects += corrected_over_values([e for e, _ in found], column.column, CORRECTION)
        test = _heterogeneity(d, column, found)
        tests.append(test)
        if said := differs_warning(column.column, test, study.thresholds.alpha, len(d.segments)):
            warnings.append(said)
    return SegmentEffects(effects, tests, details, warnings + skipped_warning(skipped))


def _segment_rows(d: "RddData", column: SegmentColumn, j: int) -> tuple["ByValue", tuple | None]:
    """The segment's rows by running value, and with clusters (or from rows) the rows: (x, D, clusters, weights)."""
    from causalcli.designs.rdd.by_value import from_rows

    if column.by_value is not None:
        return column.by_value[j], None
    rows = d.row_source.get()
    keep = rows.segments[column.index] == column.labels[j]
    x, D = rows.x[keep], rows.D[keep]
    weights = None if rows.weights is None else rows.weights[keep]
    clusters = None if rows.clusters is None else rows.clusters[keep]
    return from_rows(x, D, weights), (x, D, clusters, weights)


def _fit(d: "RddData", values: "ByValue", rows: tuple | None) -> tuple["RdResult | None", str]:
    """The headline's fit of one segment's rows, or None and why it has none."""
    from causalcli.designs.rdd.estimator import TooFewValues
    from causalcli.designs.rdd.fitting import MIN_ROWS, rd_fit
    from causalcli.designs.rdd.local_poly import NoJump

    settings = d.settings
    k, x = values.cut(d.cutoff), values.values.x
    needed = settings.p + 2  # the bias-correction fit has order p+1
    for side, part in (("below", slice(0, k)), ("at or above", slice(k, None))):
        if x[part].size < needed:
            counts = values.values.counts
            assert counts is not None  # collapsed rows carry their counts
            return None, (f"{int(counts[part].sum())} row(s) with {x[part].size} distinct value(s) of "
                          f"{d.running!r} {side} the cutoff; the order-{settings.p} fit and its bias correction need "
                          f"{needed}")
    if values.rows < MIN_ROWS:
        return None, f"{values.rows} rows: bandwidth selection needs at least {MIN_ROWS}"
    try:
        if rows is not None and d.clustered:
            x_rows, D, clusters, weights = rows
            return rd_fit(x_rows, D, d.cutoff, settings, clusters, weights=weights), ""
        return rd_fit(None, None, d.cutoff, settings, values=values.values), ""
    except NoJump:
        return None, f"the take-up {d.fuzzy!r} does not jump at the cutoff in it"
    except TooFewValues as e:
        if not np.isfinite(e.bandwidth):
            return None, f"the bandwidth selector {settings.bandwidth!r} found no finite bandwidth"
        return None, (f"only {e.found} distinct value(s) of {d.running!r} within the bandwidth {e.bandwidth:g} "
                      f"{'below' if e.side == 'left' else 'at or above'} the cutoff; the fit needs {e.needed}")
    except np.linalg.LinAlgError:
        return None, "its local fits are singular"


def _estimate(d: "RddData", study: "Study", result: "RdResult", seed: int
              ) -> tuple[Estimate, dict[str, Any], list[str]]:
    """The segment's effect as the headline's (the conventional estimate, the robust bias-corrected interval; with
    few clusters the wild bootstrap's), what ``diagnostics.segments`` shows of it, and its warnings."""
    settings, est = d.settings, result.fit
    lower, upper, p_value = result.robust_interval(settings.conf_level)
    inference = "rd_robust_bias_corrected" + ("_clustered" if d.clustered else "")
    estimate = Estimate(est.conventional, est.se_robust, lower, upper, settings.conf_level, p_value, inference)
    detail: dict[str, Any] = {
        "below_cutoff": result.n_left, "above_cutoff": result.n_right,
        "within_h_below": est.n_left, "within_h_above": est.n_right,
        "bandwidth": result.bandwidths.as_dict(),
        "conventional": {"estimate": est.conventional, "std_error": est.se_conventional},
        "bias_corrected": {"estimate": est.bias_corrected, "robust_std_error": est.se_robust},
    }
    if est.first_stage is not None:
        detail["first_stage"] = {"jump": est.first_stage[0], "robust_std_error": est.first_stage[2]}
    said: list[str] = []
    if d.clustered:
        from causalcli.designs.rdd.clusters import clustered_inference

        estimate, clusters, check, said = clustered_inference(result, settings, study.design.cluster, estimate,
                                                              study.design.options, seed)
        detail["clusters"] = {k: clusters[k] for k in ("n_clusters", "clusters_below", "clusters_above", "method")}
        detail["clusters"]["passed"] = check.passed
    return estimate, detail, said


def _heterogeneity(d: "RddData", column: SegmentColumn, found: list[tuple[Estimate, "RdResult"]]) -> dict[str, Any]:
    """The column's Wald test of equal effects: bias-corrected estimates, robust standard errors, independent."""
    usable = [(e, r) for e, r in found if e.std_error is not None and np.isfinite(e.std_error) and e.std_error > 0]
    bc = [r.fit.bias_corrected for _, r in usable]
    test = {"segment": column.column, **wald_equal(bc, np.diag([r.fit.se_robust ** 2 for _, r in usable])),
            "test": HETEROGENEITY_TEST}
    spanning = _clusters_spanning(d, column) if d.clustered else ""
    if spanning:
        test.update(statistic=None, p_value=None, not_computed=spanning)
        return test
    test["test"] += f"; {INDEPENDENT}"
    if few := [str(e.label) for e, _ in usable if "wild" in e.inference]:
        test["caveat"] = (f"{', '.join(few)}: p-value and interval from the wild cluster bootstrap (few clusters); "
                          "the test reads the robust cluster-robust standard errors, which over-reject with few "
                          "clusters")
    return test


def _clusters_spanning(d: "RddData", column: SegmentColumn) -> str:
    """Why the test is not computed when a cluster holds rows of several values of the column ("" otherwise)."""
    rows = d.row_source.get()
    assert rows.clusters is not None
    codes = np.unique(rows.segments[column.index], return_inverse=True)[1].reshape(-1)
    pairs = np.unique(np.column_stack([rows.clusters, codes]), axis=0)
    per_cluster = np.bincount(pairs[:, 0])
    shared, G = int((per_cluster > 1).sum()), int((per_cluster > 0).sum())
    if not shared:
        return ""
    return (f"{shared} of the {G} clusters of design.cluster hold rows of several values of {column.column!r}, so "
            "the segment estimates are correlated through them and their covariance is not computed; each "
            "segment's effect and standard error stand (cluster on a column nested in the segments for the test)")
