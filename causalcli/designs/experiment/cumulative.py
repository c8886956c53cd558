"""The cumulative effect by period (``design.time``): the first metric's effect for the headline arm on all
data up to each period, from the running sums of the periods' exact sums (no pass of its own)."""

from __future__ import annotations

import math
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:  # pragma: no cover
    from causalcli.designs.experiment.design import ExperimentData
    from causalcli.designs.experiment.sequential_fit import SequentialAnalysis

FIXED_HORIZON_NOTE = ("each point is the estimate on all data up to and including that period, with the interval of "
                      "a single analysis planned for that day: NOT valid for peeking (stopping when an interval first "
                      "excludes zero inflates false positives); design.sequential gives intervals that are. Covariate "
                      "adjustment is re-estimated on the data so far; null where an arm has fewer than two units so "
                      "far or the interval is undefined")


def cumulative_diagnostics(d: "ExperimentData", conf: float, opts: Any, inference: str,
                           seq: "SequentialAnalysis | None", used: int, warnings: list[str]) -> dict[str, Any]:
    """``diagnostics.cumulative`` (the points) and ``diagnostics.cumulative_method``; with ``seq`` each point
    carries its sequential interval too. ``inference`` names the first metric's fixed-horizon test."""
    stats = d.stats
    points = cumulative_effects(d, conf, opts)
    method = {
        "metric": d.shapes[0].name, "arm": d.labels[d.arms[0]], "effect": "abs", "time": d.time,
        "periods": len(points), "rows_without_time": stats.missing_period, "inference": inference,
        "interval": "fixed-horizon", "note": FIXED_HORIZON_NOTE,
    }
    if stats.missing_period:
        warnings.append(f"{stats.missing_period} of {used} rows have no value in time column {d.time!r}: they count "
                        "in the estimate but in no period of diagnostics.cumulative, so its last point differs from "
                        "the estimate")
    if seq is not None:
        from causalcli.designs.experiment.sequential_fit import SEQUENTIAL_NOTE

        seq.extend(points)
        method.update(interval="fixed-horizon and sequential", note=SEQUENTIAL_NOTE)
    return {"cumulative": points, "cumulative_method": method}


def cumulative_effects(d: "ExperimentData", conf: float, opts: Any) -> list[dict[str, Any]]:
    """The first metric's absolute effect for the headline arm on all data up to each period.

    Running sums of the periods' exact sums are exact, so the last point, when every row has a
    period, is computed from the very sums of the headline and equals it. CUPED and regression
    adjustment re-estimate their coefficient on the data so far, as an analysis on that day would.
    Intervals are fixed-horizon: each one is valid for a single look decided in advance.
    """
    from causalcli.data.types import period_text
    from causalcli.errors import EstimationError
    from causalcli.designs.experiment.proportions import arm_tests
    from causalcli.designs.experiment.stats import add_sums

    stats = d.stats
    shape, arm = d.shapes[0], d.arms[0]
    group = shape.name if stats.complete_cases_by_metric else None
    pairs = d.pairs[shape.name]
    running: dict[Any, Any] = {d.control: None, arm: None}
    points = []
    for period, groups in stats.periods.items():
        sums = groups.get(group, {})
        for a in running:
            if a in sums:
                running[a] = sums[a] if running[a] is None else add_sums(running[a], sums[a])
        rc, rt = running[d.control], running[arm]
        point: dict[str, Any] = {"label": period_text(period, d.period_labels), "value": None, "std_error": None,
                                 "ci_lower": None, "ci_upper": None, "n_control": rc.n if rc else 0,
                                 "n_treatment": rt.n if rt else 0}
        if point["n_control"] >= 2 and point["n_treatment"] >= 2:
            try:
                t = arm_tests(shape, rc, rt, stats, pairs, d.labels[arm], d.file, conf, opts).absolute
            except (ZeroDivisionError, EstimationError):  # a zero denominator or collinear covariates so far
                t = None
            if t is not None and math.isfinite(t.value):
                point["value"] = float(t.value)
                if math.isfinite(t.std_error) and t.std_error > 0 and math.isfinite(t.ci_lower):
                    point.update(std_error=float(t.std_error), ci_lower=float(t.ci_lower),
                                 ci_upper=float(t.ci_upper))
        points.append(point)
    return points
