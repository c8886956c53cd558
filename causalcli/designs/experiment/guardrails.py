"""Guardrail metrics: a non-inferiority check per metric, named ``guardrail:<metric>``.

A guardrail ``{direction, margin}`` says which change of the metric is a harm and the largest
relative harm tolerated (a share of the control mean). The check reads the overall relative
effect ``metric/arm/rel`` of every treatment arm, with the interval reported in ``effects``
(at ``conf_level``; delta-method or log interval per ``options.relative_ci``):

* ``increase_is_bad``: an arm fails when the interval's upper bound exceeds ``+margin``;
* ``decrease_is_bad``: an arm fails when the interval's lower bound is below ``-margin``;

that is, a one-sided non-inferiority test at level ``(1 - conf_level) / 2`` (2.5% for a 95%
interval). The check fails (the study exits 1) when any arm fails, and when the relative
effect is undefined (a zero control mean): a harm then cannot be excluded. The bounds are not
corrected for multiplicity: a launch needs every guardrail to pass, an intersection-union test
whose error rate is at most each test's level (Berger 1982, Technometrics 24, 295-300;
Schultzberg, Ankargren and Franberg 2024, "Risk-aware product decisions in A/B tests with
multiple metrics", arXiv:2402.11609).
"""

from __future__ import annotations

import math
from typing import TYPE_CHECKING, Any

from causalcli.records import Check

if TYPE_CHECKING:  # pragma: no cover
    from causalcli.records import Estimate

RULE = {"increase_is_bad": "upper", "decrease_is_bad": "lower"}


def guardrail_checks(metrics: list[Any], effects: list["Estimate"], arms: list[str],
                     conf: float) -> tuple[list[Check], list[dict[str, Any]]]:
    """One check per guardrail metric, and one diagnostics row per metric and arm."""
    by_label = {e.label: e for e in effects}
    checks, rows = [], []
    level = f"{conf:.0%}"
    for m in metrics:
        g = m.guardrail
        if g is None:
            continue
        parts, passed = [], True
        for arm in arms:
            e = by_label[f"{m.name}/{arm}/rel"]
            row = guardrail_row(m.name, arm, g.direction, g.margin, e)
            rows.append(row)
            passed = passed and row["passed"]
            parts.append(_sentence(row, level))
        side = "upper" if g.direction == "increase_is_bad" else "lower"
        rule = (f"fails when the {level} interval's {side} bound of the relative effect is "
                f"{'above +' if side == 'upper' else 'below -'}{g.margin:.2%} (direction {g.direction}, margin "
                f"{g.margin:g})")
        checks.append(Check(f"guardrail:{m.name}", passed, "; ".join(parts) + f". Rule: {rule}"))
    return checks, rows


def guardrail_row(metric: str, arm: str, direction: str, margin: float, e: "Estimate") -> dict[str, Any]:
    """The bound that matters and how far it is beyond (excess > 0, failing) or within the margin."""
    bound = e.ci_upper if direction == "increase_is_bad" else e.ci_lower
    harm = None
    if bound is not None and math.isfinite(bound):
        harm = bound if direction == "increase_is_bad" else -bound
    excess = None if harm is None else harm - margin
    return {"metric": metric, "arm": arm, "direction": direction, "margin": margin,
            "relative_effect": e.value if math.isfinite(e.value) else None,
            "bound": bound if harm is not None else None, "excess": excess,
            "passed": excess is not None and excess <= 0}


def _sentence(row: dict[str, Any], level: str) -> str:
    arm, margin = row["arm"], row["margin"]
    if row["bound"] is None:
        return (f"{arm}: the relative effect is undefined (zero control mean or no standard error), so a harm larger "
                f"than {margin:.2%} cannot be excluded")
    side = "upper" if row["direction"] == "increase_is_bad" else "lower"
    limit = margin if side == "upper" else -margin
    head = (f"{arm}: relative effect {row['relative_effect']:+.2%}, {level} {side} bound {row['bound']:+.2%} vs "
            f"margin {limit:+.2%}")
    if row["passed"]:
        return f"{head}: harm beyond the margin excluded ({-row['excess'] * 100:.2f} points to spare)"
    return f"{head}: a harm larger than the margin is not excluded (beyond it by {row['excess'] * 100:.2f} points)"
