"""Several treated units and staggered adoption for `estimator: synthetic_did`.

``treated_unit`` may list several units. With one ``treatment_start`` they form one treated block and
synthetic DiD averages them as R synthdid does (N1 > 1, ``synthdid.fit``). With ``treatment_start``
naming a column (each unit's adoption period; empty or 0: never treated) the estimate is the staggered
synthetic DiD of Arkhangelsky et al. (2021, appendix; synthdid's vignette on staggered adoption): one
synthetic DiD per adoption cohort a, on the never-treated units plus that cohort over the whole panel
(pre-periods: before a), aggregated as

    tau = sum_a w_a tau_a,   w_a = N1_a * T1_a / sum_b N1_b * T1_b

(the cohort's treated unit-periods, so the aggregate is the average effect over every treated unit-period,
as the single-cohort estimate is). The effect at event time e averages the cohorts' effect curves at e
weighted by their units, N1_a, over the cohorts observed e periods after adopting.

Inference redoes the whole procedure (every cohort's weights re-solved), so the aggregation is accounted
for: ``placebo`` (Algorithm 4 generalised: the never-treated units are permuted, the last N1 play the
treated units with their cohorts' adoption periods, the rest the controls), ``bootstrap`` (Algorithm 2:
units resampled; draws without a control or a treated unit redrawn) or ``jackknife`` (Algorithm 3: each
unit left out with every cohort's weights kept; a cohort left empty drops out of the aggregate).
The placebo and bootstrap refits keep each cohort's regularisation and start from its weights, as
synthdid's refits do. The numerics sit below the families, in ``causalcli.inference.synthdid_staggered``
(did's ``estimator: all`` runs them too); this module reads the spec and the data and builds the ``Fit``.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import numpy as np

from causalcli.errors import DataError, EstimationError
from causalcli.inference.synthdid_staggered import Staggered, estimate, replicates, standard_errors
from causalcli.records import Check

if TYPE_CHECKING:  # pragma: no cover
    from causalcli.data.table import Table
    from causalcli.designs.base import Fit
    from causalcli.designs.synthetic_control.panel import SynthData
    from causalcli.models.synthdid_weights import SdidFit
    from causalcli.spec.loading import LoadedSpec
    from causalcli.spec.models import Study

MIN_PRE_PERIODS = 2  # synthetic DiD's noise level and time weights need two pre-periods


def treated_labels(design: Any) -> list[str]:
    """The treated units of the spec as labels of the unit column, in the spec's order."""
    from causalcli.designs.synthetic_control.panel import label

    units = design.treated_unit if isinstance(design.treated_unit, list) else [design.treated_unit]
    return list(dict.fromkeys(label(u) for u in units))


def is_staggered(design: Any) -> bool:
    """treatment_start names a column (staggered adoption: synthetic DiD, or the pooled synthetic control)."""
    return names_column(design)


def names_column(design: Any) -> bool:
    """treatment_start is neither a number nor a date: a column name."""
    from causalcli.data.types import as_day

    start = design.treatment_start
    if not isinstance(start, str) or as_day(start) is not None:
        return False
    try:
        float(start)
    except ValueError:
        return True
    return False


def adoption_periods(study: "Study", table: "Table", spec: "LoadedSpec",
                     times: list[float]) -> dict[str, float | None]:
    """Each unit's adoption period (None: never treated), checked: one per unit, a period of the panel
    with pre-periods before it, for every listed unit (exit 3)."""
    from causalcli.data.table import TABLE, quote_identifier, require_columns
    from causalcli.data.types import period_text
    from causalcli.designs.synthetic_control.panel import label

    d = study.design
    column, key = d.treatment_start, "design.treatment_start"
    if table.period_labels.get(d.time) is not None:
        raise DataError(f"treatment_start {column!r} (staggered adoption) needs a numeric time column; {d.time!r} "
                        "holds dates: give the periods as numbers (e.g. week 1..T)", file=table.file, key=key,
                        column=d.time)
    require_columns(table, {column: (key, "numeric")}, timezone=spec.study.data.timezone)
    u, c = quote_identifier(d.unit), quote_identifier(column)
    rows = table.sql(f"SELECT {u}, min(NULLIF({c}, 0)), max(NULLIF({c}, 0)), count(NULLIF({c}, 0)) FROM {TABLE} "
                     f"WHERE {u} IS NOT NULL GROUP BY ALL ORDER BY ALL")
    out: dict[str, float | None] = {}
    for unit, lo, hi, k in rows:
        name = label(unit)
        if lo is not None and lo != hi:
            raise DataError(f"unit {name!r} has several adoption periods in column {column!r} ({label(lo)} and "
                            f"{label(hi)}); give one per unit", file=table.file, key=key, column=column)
        out[name] = None if lo is None else float(lo)
    first, last = times[0], times[-1]
    what = "synthetic DiD" if d.estimator == "synthetic_did" else "the synthetic control"
    for name in treated_labels(d):
        a = out.get(name)
        if a is None:
            raise DataError(f"treated unit {name!r} has no adoption period in column {column!r} (empty or 0); "
                            "give its first treated period or remove it from treated_unit", file=table.file,
                            key=key, column=column)
        if a not in times:
            raise DataError(f"adoption period {label(a)} of unit {name!r} in column {column!r} is not a period of "
                            f"column {d.time!r} (periods {period_text(first, None)} to {period_text(last, None)})",
                            file=table.file, key=key, column=column)
        pre = sum(t < a for t in times)
        if pre < MIN_PRE_PERIODS:
            raise DataError(f"the cohort adopting at {label(a)} (unit {name!r}) has {pre} pre-period(s) in column "
                            f"{d.time!r}; {what} needs at least {MIN_PRE_PERIODS}: drop the cohort from "
                            "treated_unit", file=table.file, key=key, column=column)
    return out


# ------------------------------------------------------------------ estimation (the numerics:
# ``causalcli.inference.synthdid_staggered``, shared with did's estimator: all)


def replicate_ses(method: str, N0: int, N1: int, size: int, run: Any) -> tuple[np.ndarray, int, str | None]:
    """The SEs of (aggregate, cohorts, event times) from ``run()`` -> (replicate rows, attempts), with the
    attempts; or NaNs, 0 and why ``method`` cannot give them."""
    reason = unusable_reason(method, N0, N1)
    if reason is not None:
        return np.full(size, np.nan), 0, reason
    reps, attempts = run()
    return standard_errors(reps, method), attempts, None


def headline_and_effects(ses: np.ndarray, base: Any, cohort_times: np.ndarray, conf: float, inference: str,
                         labels: Any) -> tuple[Any, list]:
    """The aggregate and the effects ``cohort a`` and ``event time e`` of a staggered fit (``base`` with
    ``estimate``, ``cohort_estimates`` and ``event_effects``), their SEs in the order of ``_vector``."""
    from causalcli.data.types import period_text
    from causalcli.inference.estimate import normal_estimate

    def se(k: int) -> float | None:
        return float(ses[k]) if np.isfinite(ses[k]) else None

    n_cohorts = len(base.cohort_estimates)
    value = normal_estimate(base.estimate, se(0), conf, inference)
    effects = [normal_estimate(float(t), se(1 + k), conf, inference, f"cohort {period_text(a, labels)}")
               for k, (a, t) in enumerate(zip(cohort_times, base.cohort_estimates))]
    effects += [normal_estimate(float(v), se(1 + n_cohorts + e), conf, inference, f"event time {e}")
                for e, v in enumerate(base.event_effects)]
    return value, effects


def unusable_reason(method: str, N0: int, N1: int) -> str | None:
    from causalcli.inference import synthdid_se

    return synthdid_se.unusable_reason(method, N0, N1)


def matrix(d: "SynthData") -> tuple[np.ndarray, int, np.ndarray]:
    """Units x periods (never-treated first, then the treated in column order), N0, each treated row's T0."""
    N1 = d.treated
    Y = np.vstack([d.Y[:, N1:].T, d.Y[:, :N1].T])
    t0s = np.asarray([int(np.count_nonzero(d.times < a)) for a in d.adoption])
    return Y, Y.shape[0] - N1, t0s


def fit(d: "SynthData", study: "Study", seed: int, jobs: int) -> "Fit":
    """The staggered estimate as a ``Fit``: cohorts and event times in ``effects``, their SEs from the same
    replicates as the aggregate's."""
    from causalcli.data.types import period_json, period_text
    from causalcli.designs.base import Fit

    Y, N0, t0s = matrix(d)
    N1, T = Y.shape[0] - N0, Y.shape[1]
    horizon = int(T - t0s.min())
    base = estimate(Y, N0, t0s, d.variant, horizon)
    ses, attempts, reason = replicate_ses(d.se, N0, N1, 1 + base.starts.size + horizon, lambda: replicates(
        Y, N0, t0s, base, d.se, d.replications, seed, d.variant, jobs))
    warnings = list(d.notes) + ([f"no standard error: {reason}"] if reason else [])
    inference = f"synthetic_did_staggered_{d.se}_se_normal"
    conf = study.conf_level
    cohort_times = d.times[base.starts]
    value, effects = headline_and_effects(ses, base, cohort_times, conf, inference, None)
    units = d.units
    cohorts = []
    for k, (a, f) in enumerate(zip(cohort_times, base.fits)):
        members = [units[i] for i in range(N1) if d.adoption[i] == a]
        cohorts.append({"adoption": period_json(a, None), "units": members, "estimate": float(f.estimate),
                        "aggregation_weight": float(base.weights[k]), "pre_periods": int(base.starts[k]),
                        "post_periods": int(T - base.starts[k]),
                        "weights": {units[N1 + j]: float(w) for j, w in enumerate(f.omega)},
                        "time_weights": {period_text(t, None): float(w) for t, w in zip(d.times, f.lam)},
                        "zeta_omega": f.tuning.zeta_omega, "noise_level": f.tuning.noise_level})
    post_unit_periods = int(sum(n * (T - s) for n, s in zip(base.sizes, base.starts)))
    n = {"rows": d.rows, **(d.missing_n or {}), "units": N0 + N1, "treated": N1, "control": N0,
         "cohorts": int(base.starts.size), "periods": T, "treated_unit_periods": post_unit_periods}
    diagnostics: dict[str, Any] = {
        "weights": {units[N1 + j]: float(sum(w * f.omega[j] for w, f in zip(base.weights, base.fits)))
                    for j in range(N0)},
        "cohorts": cohorts,
        "fit": {"estimator": "synthetic_did", "variant": d.variant, "staggered": True,
                "aggregation": "cohort estimates weighted by their treated unit-periods N1_a * T1_a; event times "
                               "by the units of the cohorts observed there (Arkhangelsky et al. 2021, appendix)"},
        "standard_error": {"method": d.se, "replications": d.replications if d.se != "jackknife" else N0 + N1,
                           "usable": reason is None, **({"reason": reason} if reason else {}),
                           **({"draws": attempts} if attempts else {}),
                           "procedure": "the whole staggered procedure redone on each replicate"},
    }
    return Fit("synthetic_did", "att", value, n, effects=effects, diagnostics=diagnostics, warnings=warnings,
               checks=[_worst_pre_fit(Y, N0, t0s, base, study.thresholds.pre_fit,
                                      [period_text(a, None) for a in cohort_times])])


def _worst_pre_fit(Y: np.ndarray, N0: int, t0s: np.ndarray, base: Staggered, limit: float,
                   cohort_names: list[str]) -> Any:
    """The family's pre_fit check on each cohort (pre-period RMSE after SDiD's intercept); the first failing
    one, else the last, named by its adoption period."""

    checks = []
    for T0, f, name in zip(base.starts, base.fits, cohort_names):
        treated = Y[N0 + np.flatnonzero(t0s == T0)].mean(axis=0)[:T0]
        gap = treated - f.omega @ Y[:N0, :T0]
        variant = f.tuning.variant
        offset = float(gap @ f.lam) if variant == "sdid" else float(gap.mean()) if variant == "did" else 0.0
        c = pre_fit_check(float(np.sqrt(np.mean((gap - offset) ** 2))), treated, limit)
        checks.append(Check(c.name, c.passed, f"cohort {name}: {c.detail}"))
    return next((c for c in checks if not c.passed), checks[-1])


def estimate_of(d: "SynthData", start: float | None = None, keep: np.ndarray | None = None,
                drop: int | None = None) -> "SdidFit | Staggered":
    """The staggered estimate with the adoptions moved by ``start - d.start`` (placebo in time, on the
    periods kept) or a never-treated unit dropped."""
    Y, N0, t0s = matrix(d)
    if start is not None:
        shift = int(np.count_nonzero(d.times < start)) - int(np.count_nonzero(d.times < d.start))
        t0s = t0s + shift
    if keep is not None:
        Y = Y[:, keep]
        t0s = np.minimum(t0s, Y.shape[1])
    if drop is not None:
        Y, N0 = np.delete(Y, drop, axis=0), N0 - 1
    t0s_ok = t0s[(t0s >= 1) & (t0s < Y.shape[1])]
    if t0s_ok.size == 0:
        raise EstimationError("no cohort keeps a pre-period and a post-period")
    rows = np.concatenate([np.arange(N0), N0 + np.flatnonzero((t0s >= 1) & (t0s < Y.shape[1]))])
    return estimate(Y[rows], N0, t0s_ok, d.variant, 1)


def pre_fit_check(pre_rmse: float, treated_pre: np.ndarray, limit: float) -> Check:
    """The synthetic control family's pre_fit rule on SDiD's fit: the pre-period RMSE of the treated path
    against the weighted donors shifted by the intercept SDiD allows, over the treated unit's mean |outcome|."""
    scale = float(np.mean(np.abs(treated_pre)))
    ratio = pre_rmse / scale if scale > 0 else float("inf")
    passed = bool(ratio <= limit)
    detail = (f"pre-period RMSE after the intercept {pre_rmse:.4g} is {ratio:.1%} of the treated unit's mean "
              f"|outcome| {scale:.4g} ({'<=' if passed else '>'} {limit:.0%} allowed)")
    if not passed:
        detail += "; the weighted donors do not move with the treated unit before treatment"
    return Check("pre_fit", passed, detail)
