"""Difference-in-differences effects by segment (the top-level ``segments`` key), their correction and
heterogeneity test.

A segment column must be constant within a unit, so its values partition the units (``check_constant``). The
effect within ``column=value`` is the headline's estimator with the same options (aggregation, covariates,
weights, clustering, and the few-cluster inference its rule picks for that segment's clusters) fitted on that
value's units alone: ``subset_units`` of the panel, then the design's own fit. A value without treated units,
without units to compare them with, or whose fit fails, is skipped with a warning naming it.

Correction: Holm over the values of one column (``inference.multiplicity.corrected_over_values``, as iv,
weighting and experiment do); the headline is in no family.

Heterogeneity: per column, the Wald chi-square of equal effects (k - 1 contrasts with the first value). The
segments' units are disjoint, so with clusters nested in the segments (the unit, the default; each row in repeated
cross-sections; a coarser cluster that never holds two values) their estimates are independent and the covariance
is diagonal. Callaway-Sant'Anna's standard errors are per unit whatever ``design.cluster``. When a coarser cluster
holds units of several values the estimates are correlated through it; their covariance would need every
estimator's per-cluster scores, which are not carried out of the fits, so the test is not computed and
``not_computed`` says why.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from typing import TYPE_CHECKING, Any, Callable

import numpy as np

from causalcli.data.table import TABLE, quote_identifier as q
from causalcli.designs.did.panel import PanelData, show, subset_units
from causalcli.errors import DataError, EstimationError, SpecError
from causalcli.inference.multiplicity import corrected_over_values, differs_warning, skipped_warning, wald_independent
from causalcli.numbers import number_shape

if TYPE_CHECKING:  # pragma: no cover
    from causalcli.data.table import Table
    from causalcli.designs.base import Fit
    from causalcli.records import Estimate
    from causalcli.spec.models import Study

CORRECTION = "holm"
HETEROGENEITY_TEST = "Wald chi-square: the column's segment effects are equal (k - 1 contrasts)"
INDEPENDENT = ("the segments' units are disjoint and no cluster holds two of them, so their estimates are independent "
               "(diagonal covariance of the reported standard errors)")


@dataclass(frozen=True)
class SegmentEffects:
    effects: list["Estimate"]
    heterogeneity: list[dict[str, Any]]
    counts: dict[str, dict[str, dict[str, int]]]  # column -> value -> units, treated units
    warnings: list[str]


def check_segments_spec(study: "Study", file: str) -> None:
    """Exit 2: segments with ``estimator: all``, or a segment column that is one of the panel's roles."""
    if not study.segments:
        return
    d = study.design
    if d.estimator == "all":
        raise SpecError("segments are not built for estimator: all (it compares five estimators side by side); "
                        "choose one estimator (e.g. estimator: callaway_santanna) to report its effect by segment, or "
                        "remove 'segments'", file=file, key="segments")
    roles = {study.outcome: "the outcome", study.treatment: "the treatment", d.time: "design.time",
             d.unit: "design.unit", d.cohort: "design.cohort", d.group: "design.group"}
    for i, column in enumerate(study.segments):
        role = roles.get(column)
        if role:
            raise SpecError(f"segments[{i}] {column!r} is {role}: a segment must be a pre-treatment column that "
                            "groups units (a country, a platform), constant within each unit", file=file,
                            key=f"segments[{i}]")


def check_constant(table: "Table", unit: str, segments: list[str]) -> None:
    """Exit 3 when a unit takes two values of a segment column: the segments must partition the units."""
    for i, column in enumerate(segments):
        c = f"CAST({q(column)} AS VARCHAR)"
        row = table.sql(f"SELECT u, lo, hi, count(*) OVER () FROM (SELECT {q(unit)} AS u, count(DISTINCT {c}) AS k, "
                        f"min({c}) AS lo, max({c}) AS hi FROM {TABLE} WHERE {q(unit)} IS NOT NULL GROUP BY "
                        f"{q(unit)}) AS by_unit WHERE k > 1 ORDER BY u LIMIT 1")
        if row:
            u, lo, hi, units = row[0]
            raise DataError(f"segment column {column!r} is not constant within a unit: {units:,} unit"
                            f"{'s take' if units != 1 else ' takes'} more than one value (e.g. unit {show(u)}: "
                            f"{lo!r} and {hi!r}); segments partition the units, so give each unit one value in all "
                            "its rows (e.g. its value before the treatment) or segment by another column",
                            file=table.file, key=f"segments[{i}]", column=column)


def segment_effects(p: PanelData, study: "Study", seed: int, fit_of: Callable[[PanelData], "Fit"],
                    headline_warnings: list[str]) -> SegmentEffects:
    """One effect per value of each segment column (``fit_of``: the design's fit of a panel), Holm-corrected
    within the column, and the column's Wald test of equal effects."""
    # the segment's estimate is the headline's; its honest-DiD sets would only cost time
    options = p.options.model_copy(update={"honest_did": False})
    said_above = {number_shape(w) for w in headline_warnings}  # the headline warned already, maybe with other numbers
    effects: list["Estimate"] = []
    tests, warnings, skipped = [], [], []
    counts: dict[str, dict[str, dict[str, int]]] = {}
    for column, values in zip(p.segment_columns, p.segment_values):
        found: list["Estimate"] = []
        counts[column] = {}
        for level in np.unique(values):
            label = f"{column}={level}"
            units = np.flatnonzero(values == level)
            counts[column][str(level)] = {"units": int(units.size), "treated_units": int((p.g[units] >= 0).sum())}
            why = _why_not_fitted(p, units)
            if why:
                skipped.append(f"{label} ({why})")
                continue
            sub, _ = subset_units(p, units, p.g)
            sub = replace(sub, options=options, segment_columns=(), segment_values=())
            try:
                fit = fit_of(sub)
            except (EstimationError, DataError) as exc:
                skipped.append(f"{label} ({exc.message})")
                continue
            except np.linalg.LinAlgError:
                skipped.append(f"{label} (its design is singular)")
                continue
            found.append(replace(fit.estimate, label=label))
            warnings += [f"segment {label}: {w}" for w in fit.warnings if number_shape(w) not in said_above]
        effects += corrected_over_values(found, column, CORRECTION)
        spanning = _clusters_spanning(p, values)
        test = {"segment": column, **wald_independent(found),
                "test": HETEROGENEITY_TEST + ("" if spanning else f"; {INDEPENDENT}")}
        if spanning:
            test.update(statistic=None, p_value=None, not_computed=spanning)
        elif few := [e.label for e in found if e.inference.split(";")[0] not in _ANALYTIC]:
            test["caveat"] = (f"{', '.join(few)}: p-value and interval from a bootstrap or randomization inference "
                              "(few clusters, or bootstrap: wild); the test reads the analytic standard errors, "
                              "which over-reject with few clusters")
        tests.append(test)
        if said := differs_warning(column, test, study.thresholds.alpha, len(p.segment_columns)):
            warnings.append(said)
    warnings += skipped_warning(skipped)
    return SegmentEffects(effects, tests, counts, warnings)


# the standard errors the estimators report when the clusters are many (their inference names)
_ANALYTIC = ("crv1_fixest", "hc1", "cs_analytic", "cs_multiplier_bootstrap", "imputation_conservative_clustered",
             "imputation_conservative_clustered_overall_att", "sun_abraham_crv1", "sun_abraham_crv1_overall_att")


def _why_not_fitted(p: PanelData, units: np.ndarray) -> str:
    """Why a segment's units cannot give the estimate ("" when they can): fewer than 2 units, no treated units,
    or none to compare them with."""
    g = p.g[units]
    what = "rows" if p.cross_sections and p.unit.size == p.n_units else "units"
    if units.size < 2:
        return f"{units.size} {what[:-1]}"
    if not (g >= 0).any():
        return f"no treated {what}"
    never = (g < 0).any()
    if p.estimator == "2x2" and not never:
        return f"no never-treated (control) {what}"
    if p.estimator == "callaway_santanna" and p.options.control_group == "never_treated" and not never:
        return "no never-treated (control) units (control_group: never_treated)"
    if not never and np.unique(g).size == 1 and p.d is None:
        return f"no control {what}: every one is treated from the same period"
    return ""


def _clusters_spanning(p: PanelData, values: np.ndarray) -> str:
    """Why the test is not computed when design.cluster holds units of several values ("" otherwise)."""
    if p.estimator == "callaway_santanna" or p.n_clusters == p.n_units:
        return ""  # unit-level standard errors (Callaway-Sant'Anna's are per unit whatever design.cluster)
    _, codes = np.unique(values[p.unit], return_inverse=True)
    pairs = np.unique(np.column_stack([p.cluster, codes.reshape(-1)]), axis=0)
    per_cluster = np.bincount(pairs[:, 0], minlength=p.n_clusters)
    shared = int((per_cluster > 1).sum())
    if not shared:
        return ""
    return (f"{shared} of the {p.n_clusters} clusters of {p.cluster_name!r} hold units of several values, so the "
            "segment estimates are correlated through them and their covariance is not carried out of the fits; "
            "each segment's effect and standard error stand (cluster on the unit, or on a column nested in the "
            "segments, for the test)")
