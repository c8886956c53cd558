"""Inference with few randomisation units (``design.unit``; SPEC v1.1, "Inference with few clusters").

The delta method on unit sums is a cluster-robust analysis: below about 42 units, or 6 in an arm, its
t-tests over-reject (MacKinnon and Webb 2017). There, each effect's p-value and interval come from
the units themselves, fetched (a few thousand rows at most) after the grouping:

* the comparison is the regression of the unit's value ``y_u = num_u / den_u`` on (1, treated) over the
  units of the two arms, weighted by ``den_u`` (with CUPED covariates, their unit values as regressors:
  the common-slope adjustment). Without covariates its coefficient is the design's estimate exactly, and
  its CR0 scores are those of the row-level regression clustered on the unit, so the bootstrap below is
  the row-level one;
* the restricted wild cluster bootstrap (``inference.wild``) with each unit its own cluster, Webb's
  six-point weights below 12 units, Rademacher from there on (``options.wild_weights``,
  ``options.draws``; Webb weights are enumerated up to 6 units, Rademacher ones while 2^G <= draws).
  The p-value is the bootstrap's, for the relative effect too (the same null); the interval is the
  estimate plus or minus the bootstrap's critical value of |t| times the design's standard error (a
  bootstrap-t interval), and the relative effect's interval is widened by the same factor on its own
  scale (symmetric, or tea-tasting's log scale);
* no residual degrees of freedom, or an arm without units for the metric: no p-value or interval.

An arm needs at least two units (exit 3 before this), so the one-treated-cluster case of SPEC, where
the wild bootstrap fails and randomization inference takes over, does not arise here (a segment value
with one unit in an arm has no interval at all, as before).

``std_error`` stays the delta method's. Segment effects get the same treatment on the units of the
segment value. Sequential analyses and quantile metrics keep their own inference, and the ``clusters``
check fails for them.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field, replace
from typing import TYPE_CHECKING, Any

import numpy as np

from causalcli.data.sql import TABLE, quote_identifier
from causalcli.inference.few_clusters import no_inference_reason, wild_name, wild_weights

if TYPE_CHECKING:  # pragma: no cover
    from causalcli.data.table import Table
    from causalcli.designs.experiment.analysis import MetricShape, Test
    from causalcli.spec.models import Study

# fetched only when few: the units of a study this small fit in memory many times over; beyond it (one arm of a
# few units beside a large one) the wild bootstrap's draws x units weights would not, and the check fails instead
MAX_UNITS = 20_000
NONE = "none"


@dataclass
class UnitValues:
    """One row per unit and arm (``study_units``), as fetched: the arm, the segment values, the metric columns."""

    arm: list[Any]
    segments: dict[str, list[Any]]
    columns: dict[str, np.ndarray]


def fetch_units(table: "Table", study: "Study", shapes: list["MetricShape"],
                arm_counts: dict[Any, int]) -> UnitValues | None:
    """The units, when they are too few for the delta method (and not too many to hold)."""
    from causalcli.designs.experiment.units import MIN_UNITS, MIN_UNITS_PER_ARM

    total = sum(arm_counts.values())
    if not arm_counts or (total >= MIN_UNITS and min(arm_counts.values()) >= MIN_UNITS_PER_ARM) or total > MAX_UNITS:
        return None
    columns = list(dict.fromkeys(c for s in shapes if s.kind != "quantile"
                                 for c in (s.num, s.den, *[x for pair in s.covariates for x in pair]) if c))
    names = [study.treatment, *study.segments, *columns]
    rows = table.sql(f"SELECT {', '.join(quote_identifier(c) for c in names)} FROM {TABLE}")
    got = list(zip(*rows)) if rows else [() for _ in names]
    k = 1 + len(study.segments)
    return UnitValues(list(got[0]), {c: list(v) for c, v in zip(study.segments, got[1:k])},
                      {c: np.array([np.nan if x is None else float(x) for x in v]) for c, v in zip(columns, got[k:])})


@dataclass
class FewUnitInference:
    """The few-unit p-values and intervals of a fit, and their records for ``diagnostics.clusters``."""

    units: UnitValues
    conf_level: float
    draws: int
    weights_option: str
    relative_ci: str
    seed: int
    records: dict[str, dict[str, Any]] = field(default_factory=dict)

    @classmethod
    def of(cls, units: UnitValues | None, study: "Study", seed: int) -> "FewUnitInference | None":
        if units is None:
            return None
        opts = study.design.options
        return cls(units, study.conf_level, opts.draws, opts.wild_weights, opts.relative_ci, seed)

    def tests(self, shape: "MetricShape", control: Any, arm: Any, ta: "Test", tr: "Test", label: str,
              where: tuple[str, Any] | None = None) -> tuple["Test", "Test", str]:
        """(absolute test, relative test, method) of one comparison, with the few-unit p-values and intervals;
        ``label`` is the absolute effect's (its record's key), ``where`` a segment column and value."""
        y, w, D, Z = self._arrays(shape, control, arm, where)
        G, treated = int(D.size), int(D.sum())
        X = np.column_stack([np.ones(G), D, *Z]) if G else np.empty((0, 2))
        if G and np.linalg.matrix_rank(X) < X.shape[1]:
            X = X[:, :2]  # a covariate constant or collinear in these units: it adjusts nothing here
        record: dict[str, Any] = {"units": G, "treated_units": treated, "covariates": X.shape[1] - 2,
                                  "delta_method_se": ta.std_error if math.isfinite(ta.std_error) else None}
        reason = no_inference_reason(G, G, X.shape[1], "units")
        if reason is None and min(treated, G - treated) == 0:
            reason = "an arm has no unit with this metric's values"
        if reason is None and not (ta.std_error > 0 and math.isfinite(ta.std_error)):
            reason = "the delta method's standard error is zero or undefined"
        self.records[label] = record
        if reason is not None:
            return _without_inference(ta, tr, record, reason)
        from causalcli.inference.wild import wcr_demeaned

        weights = wild_weights(self.weights_option, G)
        sw = np.sqrt(w)
        a = np.zeros(X.shape[1])
        a[1] = 1.0
        res = wcr_demeaned(sw * y, sw[:, None] * X, a, np.arange(G), G, self.draws, self.seed, weights)
        record.update(method=wild_name(weights), weights=weights, draws=res["draws"], enumerated=res["enumerated"],
                      p_value=res["p_value"], critical_value=None, ci_lower=None, ci_upper=None)
        if res["p_value"] is None or not res["tstar"].size:
            return _without_inference(ta, tr, record, "the wild bootstrap gave no usable draw")
        crit = float(np.quantile(np.abs(res["tstar"]), self.conf_level, method="inverted_cdf"))
        abs_t = _widened(ta, crit, self.conf_level, False, res["p_value"])
        rel_t = _widened(tr, crit, self.conf_level, self.relative_ci == "log", res["p_value"])
        record.update(critical_value=crit, ci_lower=abs_t.ci_lower, ci_upper=abs_t.ci_upper)
        return abs_t, rel_t, wild_name(weights)

    def _arrays(self, shape: "MetricShape", control: Any, arm: Any, where: tuple[str, Any] | None):
        u = self.units
        arms = u.arm
        keep = np.array([a == control or a == arm for a in arms], dtype=bool)
        if where is not None:
            keep &= np.array([v == where[1] for v in u.segments[where[0]]], dtype=bool)
        num = u.columns[shape.num]
        den = u.columns[shape.den] if shape.den else np.ones(num.size)
        covs = [u.columns[x] / (u.columns[wc] if wc else 1.0) for x, wc in shape.covariates]
        with np.errstate(invalid="ignore", divide="ignore"):
            keep &= np.isfinite(num) & np.isfinite(den) & (den > 0)
            for z in covs:
                keep &= np.isfinite(z)
        D = np.array([a == arm for a in arms], dtype=float)[keep]
        y = num[keep] / den[keep]
        return y, den[keep], D, [z[keep] for z in covs]


def named(inference: str, method: str | None) -> str:
    """An effect's inference name with its last part (the analytic test) replaced by the few-unit method."""
    return inference if method is None else f"{inference.rsplit('+', 1)[0]}+{method}"


def _without_inference(ta: "Test", tr: "Test", record: dict[str, Any], reason: str) -> tuple["Test", "Test", str]:
    """The tests with no p-value or interval (NaN, shown as null), the reason in the effect's record."""
    nan = float("nan")
    record.update(method=NONE, reason=reason)
    return replace(ta, ci_lower=nan, ci_upper=nan, p_value=nan), replace(tr, ci_lower=nan, ci_upper=nan, p_value=nan), NONE


def _widened(t: "Test", crit: float, conf_level: float, log_scale: bool, p_value: float) -> "Test":
    """``t`` with the bootstrap's p-value and its interval's half-width scaled from the t (or z) quantile to the
    bootstrap's critical value, on the log scale for tea-tasting's log interval."""
    from causalcli.inference.distributions import t_quantile

    q = t_quantile((1 + conf_level) / 2, t.df)
    if not (math.isfinite(t.ci_lower) and math.isfinite(t.ci_upper) and q > 0):
        return replace(t, p_value=p_value)
    factor = crit / q
    if log_scale:
        centre = math.log1p(t.value)
        lo, hi = math.log1p(t.ci_lower), math.log1p(t.ci_upper)
        return replace(t, ci_lower=math.expm1(centre - (centre - lo) * factor),
                       ci_upper=math.expm1(centre + (hi - centre) * factor), p_value=p_value)
    return replace(t, ci_lower=t.value - (t.value - t.ci_lower) * factor,
                   ci_upper=t.value + (t.ci_upper - t.value) * factor, p_value=p_value)
