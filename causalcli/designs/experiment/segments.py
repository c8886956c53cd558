"""Experiment effects by segment (the top-level ``segments`` key), their correction and heterogeneity test.

The grouped pass (``causalcli.designs.experiment.stats``) also groups by the values of the
segment columns and returns, for each column and each of its values, the exact sums of every
arm over that value's rows; nothing else reads the data. Each column is analysed on its own
(one-way segments): the effect of a metric for an arm within ``country=DE`` uses every row
with that country, whatever its platform. Labels are ``metric/arm/abs/column=value`` and
``metric/arm/rel/column=value``. A segment's analysis is the overall one on its rows: CUPED
and regression coefficients are re-estimated within the segment, a proportion stays a
proportion.

Correction: the family is the values of one segment column for one metric and arm (absolute
and relative effects corrected separately), with ``design.correction``; the overall effects
keep their own family (metrics x arms), so adding segments does not move them.

Heterogeneity: Cochran's Q (Cochran 1954, Biometrics 10, 101-129) on the absolute effects of
one column's values, ``Q = sum w_i (e_i - e_w)^2`` with ``w_i = 1 / se_i^2`` and ``e_w`` the
inverse-variance weighted mean, chi-square with ``k - 1`` degrees of freedom. The values of
one column are disjoint sets of units, so their estimates are independent, as Q assumes.
"""

from __future__ import annotations

import math
from typing import TYPE_CHECKING, Any, Callable

from causalcli.errors import DataError, SpecError

if TYPE_CHECKING:  # pragma: no cover
    from causalcli.data.table import Table
    from causalcli.designs.experiment.design import ExperimentData
    from causalcli.designs.experiment.stats import Statistics
    from causalcli.records import Estimate
    from causalcli.spec.models import Study

MAX_SEGMENT_VALUES = 50    # as dml: more values is an id or a fine category, not a segment to read
MAX_SEGMENT_CELLS = 10_000  # combinations of the columns' values the pass groups by (times arms and periods)
LISTED = 5                 # segment labels named in one warning


def check_segments(study: "Study", file: str) -> None:
    for i, column in enumerate(study.segments):
        if column == study.treatment:
            raise SpecError(f"segments[{i}] is the variant column {column!r}; segments are other columns (country, "
                            "platform)", file=file, key=f"segments[{i}]")
        if column == study.design.time:
            raise SpecError(f"segments[{i}] is design.time {column!r}; the effect by date is diagnostics.cumulative",
                            file=file, key=f"segments[{i}]")
        if column in study.segments[:i]:
            raise SpecError(f"segments lists {column!r} twice", file=file, key=f"segments[{i}]")


def validate_segments(study: "Study", table: "Table") -> None:
    """Every segment column exists and has at most MAX_SEGMENT_VALUES values.

    In a file, the first rows tell a column of ids or fine categories at the cost of reading
    them (a count over the whole file would be one more pass, a quarter of the study's time at
    10^8 rows); the exact counts come from the grouped pass (``check_segment_values``). An
    engine has no first rows: one query counts the values of every column.
    """
    from causalcli.data.table import TABLE, _suggest, quote_identifier
    from causalcli.designs.experiment.stats import HEAD_ROWS

    if not study.segments:
        return
    for i, column in enumerate(study.segments):
        if column not in table.types:
            raise DataError(f"segment column {column!r} not found{_suggest(column, table.types)}", file=table.file,
                            key=f"segments[{i}]", column=column)

    def counts(source: str) -> list[int]:
        parts = ", ".join(f"count(DISTINCT {quote_identifier(c)})" for c in study.segments)
        return [int(k) for k in table.sql(f"SELECT {parts} FROM {source}")[0]]

    found = counts(f"(SELECT * FROM {TABLE} LIMIT {HEAD_ROWS})" if table.engine is None else TABLE)
    if table.engine is None and max(found) > MAX_SEGMENT_VALUES:
        found = counts(TABLE)  # the message says the whole column's number
    _refuse_too_many(study, dict(zip(study.segments, found)), table.file, exact=table.engine is not None)


def check_segment_values(study: "Study", stats: "Statistics", file: str) -> None:
    """The limits on the values the grouped pass found (exact, NULL and NaN aside)."""
    _refuse_too_many(study, {c: len(stats.segments.get(c, {})) for c in study.segments}, file, exact=True)


def _refuse_too_many(study: "Study", counts: dict[str, int], file: str, exact: bool) -> None:
    for i, (column, k) in enumerate(counts.items()):
        if k > MAX_SEGMENT_VALUES:
            raise DataError(f"segment column {column!r} has {k:,} distinct values (at most {MAX_SEGMENT_VALUES}); "
                            "coarsen it into fewer groups (a column of its own: top countries and 'other', say)",
                            file=file, key=f"segments[{i}]", column=column)
    cells = math.prod(max(k, 1) for k in counts.values())
    if exact and cells > MAX_SEGMENT_CELLS:
        sizes = " x ".join(f"{c} {k}" for c, k in counts.items())
        raise DataError(f"segments {sizes} make {cells:,} combinations (at most {MAX_SEGMENT_CELLS:,}); list fewer "
                        "segment columns or coarsen one", file=file, key="segments")


def value_label(value: Any) -> str:
    from causalcli.designs.experiment.spec import arm_label

    return arm_label(value)


def segment_effects(d: "ExperimentData", study: "Study", inference: Callable, estimate: Callable,
                    seq: Any = None, few: Any = None) -> tuple[list["Estimate"], dict[str, Any], list[str]]:
    """The segment effects (after the overall ones in ``effects``), ``diagnostics.segments`` and warnings.

    ``inference(shape, "abs" | "rel", options, stats)`` names an effect's inference and
    ``estimate(label, test, conf, inference, p_adjusted)`` makes its record, as for the overall effects.
    With ``seq`` (design.sequential's analysis) a segment's interval and p-value are sequential, at the
    segment's own units (always_valid) or at the overall boundary of the latest look (group_sequential).
    With ``few`` (few units: ``few_units.FewUnitInference``) a segment value's p-values and intervals come from
    the wild cluster bootstrap or randomization inference over its own units, as the overall ones do.
    """
    from causalcli.designs.experiment.few_units import named

    from causalcli.inference.multiplicity import adjust

    stats, opts, conf = d.stats, study.design.options, study.conf_level
    method = study.design.correction
    effects: list["Estimate"] = []
    heterogeneity, warnings, no_se = [], [], []
    tests = len(d.shapes) * len(d.arms) * len(study.segments)
    values_of = {c: sorted(stats.segments.get(c, {}), key=lambda v: (type(v).__name__, v)) for c in study.segments}
    for shape in d.shapes:
        group_key = shape.name if stats.complete_cases_by_metric else None
        for arm in d.arms:
            for column in study.segments:
                rows = []
                for value in values_of[column]:
                    cell = stats.segments[column][value].get(group_key, {})
                    label = f"{shape.name}/{d.labels[arm]}/{{}}/{column}={value_label(value)}"
                    how = None
                    if shape.kind == "quantile":  # order statistics of the segment value's rows
                        from causalcli.designs.experiment.quantile import cell_tests

                        ta, tr = cell_tests(d.quantiles, shape.name, (column, value), d.control, arm, conf, opts)
                    else:
                        ta, tr = _cell_tests(d, shape, cell, arm, conf, opts, seq)
                        if few is not None and ta.value == ta.value:
                            ta, tr, how = few.tests(shape, d.control, arm, ta, tr, label.format("abs"), (column, value))
                    if not ta.std_error > 0:
                        no_se.append(label.format("abs"))
                    rows.append((label, ta, tr, how))
                p_abs, p_rel = [ta.p_value for _, ta, _, _ in rows], [tr.p_value for _, _, tr, _ in rows]
                fam_abs, fam_rel = (_family(study, column, p) for p in (p_abs, p_rel))
                for (label, ta, tr, how), pa, pr in zip(rows, adjust(p_abs, method), adjust(p_rel, method)):
                    effects.append(estimate(label.format("abs"), ta, conf,
                                            named(inference(shape, "abs", opts, stats), how) + fam_abs, pa))
                    effects.append(estimate(label.format("rel"), tr, conf,
                                            named(inference(shape, "rel", opts, stats), how) + fam_rel, pr))
                test = cochran_q([(ta.value, ta.std_error) for _, ta, _, _ in rows])
                test = {"metric": shape.name, "arm": d.labels[arm], "segment": column, **test}
                heterogeneity.append(test)
                if test["p_value"] is not None and test["p_value"] < study.thresholds.alpha:
                    warnings.append(f"{shape.name}/{d.labels[arm]}: the absolute effect differs across the values of "
                                    f"{column!r} (Cochran's Q = {test['statistic']:.2f} on {test['df']} df, p = "
                                    f"{test['p_value']:.3g} < thresholds.alpha {study.thresholds.alpha}, one of "
                                    f"{tests} tests, not corrected); the headline averages over the segments: read "
                                    "the segment effects")
    if no_se:
        shown = ", ".join(no_se[:LISTED]) + (f" and {len(no_se) - LISTED} more" if len(no_se) > LISTED else "")
        warnings.append(f"{len(no_se)} segment effect(s) have no standard error: {shown}; an arm with fewer than two "
                        "units in the segment gives nulls, no variation a zero standard error and no p-value; they are "
                        "left out of the correction and of the heterogeneity test")
    for column, k in stats.missing_segment.items():
        if k:
            warnings.append(f"{k} rows have no value in segment column {column!r}: they count in the overall effects "
                            "but in no segment of that column")
    diagnostics = {
        "columns": list(study.segments),
        "values": {c: [value_label(v) for v in values_of[c]] for c in study.segments},
        "units": {c: {value_label(v): {d.labels[a]: _units(stats.segments[c][v], a) for a in (d.control, *d.arms)}
                      for v in values_of[c]} for c in study.segments},
        "rows_without_value": dict(stats.missing_segment),
        "correction": {"method": method, "family": "the values of one segment column, per metric and arm; absolute "
                                                   "and relative effects corrected separately"},
        "heterogeneity": heterogeneity,
        "heterogeneity_test": "Cochran's Q on the absolute effects of one column's values (inverse-variance weights, "
                              "chi-square on k - 1 df); values without a standard error are left out",
    }
    return effects, diagnostics, warnings


def _cell_tests(d: "ExperimentData", shape: Any, cell: dict, arm: Any, conf: float, opts: Any, seq: Any):
    """The absolute and relative tests of one segment value; all NaN when an arm has fewer than two units."""
    from causalcli.designs.experiment.analysis import Test
    from causalcli.designs.experiment.proportions import arm_tests
    from causalcli.errors import EstimationError

    control, treatment = cell.get(d.control), cell.get(arm)
    nan = float("nan")
    empty = Test(nan, nan, nan, nan, nan, None)
    if control is None or treatment is None or control.n < 2 or treatment.n < 2:
        return empty, empty
    try:
        tests = arm_tests(shape, control, treatment, d.stats, d.pairs[shape.name], d.labels[arm], d.file, conf, opts)
    except (ZeroDivisionError, EstimationError):  # a zero denominator or collinear covariates in the segment
        return empty, empty
    return (tests.absolute, tests.relative) if seq is None else seq.tests(tests, opts)


def cochran_q(estimates: list[tuple[float, float]]) -> dict[str, Any]:
    """Cochran's Q test of equal effects, from (estimate, standard error) pairs; I^2 beside it."""
    from causalcli.inference.distributions import chi2_sf

    kept = [(e, se) for e, se in estimates if math.isfinite(e) and math.isfinite(se) and se > 0]
    if len(kept) < 2:
        return {"statistic": None, "df": 0, "p_value": None, "i_squared": None, "values_compared": len(kept)}
    weights = [1 / se ** 2 for _, se in kept]
    pooled = sum(w * e for w, (e, _) in zip(weights, kept)) / sum(weights)
    q = sum(w * (e - pooled) ** 2 for w, (e, _) in zip(weights, kept))
    df = len(kept) - 1
    return {"statistic": q, "df": df, "p_value": chi2_sf(q, df), "i_squared": max(0.0, (q - df) / q) if q > 0 else 0.0,
            "values_compared": len(kept)}


def _units(cell: dict, arm: Any) -> int:
    sums = cell.get(None) or next(iter(cell.values()), {})
    return sums[arm].n if arm in sums else 0


def _family(study: "Study", column: str, p_values: list[float]) -> str:
    """What the adjusted p-value was corrected over: the column's values that have a p-value."""
    method = study.design.correction
    k = sum(p == p for p in p_values)  # a segment without a p-value is not a test
    return "" if method == "none" else f"; p_value_adjusted: {method} over {k} values of {column}"


def forest_rows(effects: list["Estimate"]) -> list[tuple[str, "Estimate", bool]]:
    """The forest plot's rows (text, relative effect, overall?): each metric/arm overall, then its segments;
    none without segment effects."""
    overall = [e for e in effects if (e.label or "").count("/") == 2 and e.label.endswith("/rel")]
    by_head: dict[str, list] = {}
    for e in effects:
        parts = (e.label or "").split("/", 3)  # a segment's value may hold '/'; a metric's name may not
        if len(parts) == 4 and parts[2] == "rel":
            by_head.setdefault(f"{parts[0]}/{parts[1]}", []).append((f"  {parts[3]}", e, False))
    if not by_head:
        return []
    rows = []
    for e in overall:
        head = e.label[: -len("/rel")]
        rows += [(head, e, True), *by_head.get(head, [])]
    return rows
