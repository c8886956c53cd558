"""Proportion metrics (a 0/1 outcome) and the comparison of one metric between control and one arm.

A mean metric without covariate adjustment whose column holds only 0 and 1 (counted in the
grouped pass: ``Statistics.not_binary``) is a proportion. Its effect is the difference in
proportions with the unpooled (Wald) variance ``p (1 - p) / n`` per arm and the normal
distribution: the interval and test of statsmodels' ``confint_proportions_2indep`` and
``test_proportions_2indep`` with ``method="wald"`` (and, with ``relative_ci: log``, the ratio
interval of ``confint_proportions_2indep(compare="ratio", method="log")``). The Welch form would
use the sample variance ``n p (1 - p) / (n - 1)`` and a t quantile with about ``n`` degrees of
freedom: both differ from the Wald form by terms of order ``1/n``, so ``distribution`` does not
matter at experiment sizes, and a proportion always uses the normal.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:  # pragma: no cover
    from causalcli.designs.experiment.analysis import Comparison, MetricShape, Test
    from causalcli.designs.experiment.stats import ArmSums, Statistics

PROPORTION_INFERENCE = "difference_in_proportions_wald"


def proportion_candidates(shapes: list["MetricShape"]) -> tuple[str, ...]:
    """The columns whose 0/1-ness the pass counts: those of mean metrics without covariate adjustment, and the
    uptake columns read per row (diagnostics.compliance says whether uptake is 0/1 or a dose)."""
    means = [s.num for s in shapes if s.den is None and not s.covariates and s.summed]
    return tuple(dict.fromkeys([*means, *(s.uptake for s in shapes if s.uptake is not None and s.unit is None)]))


def is_proportion(shape: "MetricShape", stats: "Statistics") -> bool:
    return shape.den is None and not shape.covariates and stats.not_binary.get(shape.num) == 0


@dataclass(frozen=True)
class ArmTests:
    comparison: "Comparison"
    absolute: "Test"
    relative: "Test"


def arm_tests(shape: "MetricShape", control: "ArmSums", treatment: "ArmSums", stats: "Statistics",
              pairs: tuple, arm: str, file: str, conf: float, opts: Any) -> ArmTests:
    """One metric, control against one arm: the comparison and its absolute and relative tests."""
    from causalcli.designs.experiment.analysis import absolute, compare, relative_delta, relative_log
    from causalcli.designs.experiment.stats import moments

    mc = moments([control], stats.centres, pairs)
    mt = moments([treatment], stats.centres, pairs)
    pooled = moments([control, treatment], stats.centres, pairs)
    c = compare(shape, mc, mt, pooled, arm, file)
    distribution = opts.distribution
    if is_proportion(shape, stats):
        c = wald(c)
        distribution = "normal"
    rel_fn = relative_log if opts.relative_ci == "log" else relative_delta
    return ArmTests(c, absolute(c, conf, distribution), rel_fn(c, conf, distribution))


def wald(c: "Comparison") -> "Comparison":
    """The comparison with each arm's variance p (1 - p) (divisor n) instead of the sample variance (n - 1)."""
    vc = c.var_control * (c.n_control - 1) / c.n_control
    vt = c.var_treatment * (c.n_treatment - 1) / c.n_treatment
    return replace(c, var_control=vc, var_treatment=vt, var_control_unadjusted=vc, var_treatment_unadjusted=vt)
