"""Several and staggered treated units under `estimator: synthetic_control`: the partially pooled
synthetic control of Ben-Michael, Feller and Rothstein (2022, JRSS-B; R augsynth's ``multisynth``).

Each treated unit j (adoption period a_j, T0_j pre-periods) gets its own weights on the never-treated
units, chosen together (``causalcli.models.pooled_weights``) to balance both each unit's pre-period path
and, aligned on event time, the average treated unit's, with ``options.nu`` between them (default: the
paper's heuristic) and ``options.weight_penalty`` a ridge on the weights. With ``options.fixed_effects``
every unit's outcome is first centred on its mean over unit j's pre-periods (the intercept-shifted
estimator, sec. 5.1; augsynth's ``fixedeff``).

Effects as augsynth's ``predict(att = TRUE)`` with its default ``n_leads``: unit j's effect at event time
e is Y_j(a_j + e) minus its synthetic control, for e = 0 .. K - 1, K the post-periods of the last
cohort (so every unit is seen at every event time reported). The headline is their mean over units and
event times (augsynth's "Average ATT"); the effect at event time e the mean over units; a cohort's effect
the mean over its units and the K event times (the headline is the cohorts' weighted by their units).

Inference redoes the whole fit (every unit's weights re-solved, nu held at the fitted value) on the
draws of ``options.se``: ``placebo`` (never-treated units permuted, the last N1 playing the treated units
with their adoption periods; Arkhangelsky et al. 2021, Algorithm 4 generalised as for staggered synthetic
DiD), ``bootstrap`` (units resampled) or ``jackknife`` (each unit left out and the weights refitted, as
augsynth's ``jackknife_se_multi``); every cohort and event time takes its SE from the same replicates.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import partial
from typing import TYPE_CHECKING, Any

import numpy as np

from causalcli.errors import EstimationError, SpecError
from causalcli.records import Check

if TYPE_CHECKING:  # pragma: no cover
    from causalcli.designs.base import Fit
    from causalcli.designs.synthetic_control.panel import SynthData
    from causalcli.models.pooled_weights import PooledWeights
    from causalcli.spec.loading import LoadedSpec
    from causalcli.spec.models import Study

POOLED_OPTIONS = ("nu", "weight_penalty", "fixed_effects")
# options of the predictor-based fit and of synthetic DiD that the pooled fit does not read
NOT_READ = ("v", "cross_validation", "starts", "predictors_window", "optimize_window", "ridge_lambda",
            "conformal", "conformal_grid", "variant")
PARALLEL_FROM = 20  # replicates below this many run in the main process
ESTIMATOR = "synthetic_control"


def is_pooled(design: Any) -> bool:
    """Several treated units, or an adoption column, under the predictor-free synthetic control."""
    from causalcli.designs.synthetic_control.staggered import names_column, treated_labels

    return design.estimator == ESTIMATOR and (len(treated_labels(design)) > 1 or names_column(design))


def check_spec(study: "Study", spec: "LoadedSpec") -> None:
    """What the pooled fit refuses before reading data (exit 2)."""
    d = study.design
    for name in NOT_READ:
        if name in d.options.model_fields_set:
            raise SpecError(f"design.options.{name} is not read by the pooled synthetic control of several or "
                            f"staggered treated units (it balances the outcome path; its options: "
                            f"{', '.join(POOLED_OPTIONS)}, se, replications); remove it", file=spec.source.display,
                            key=f"design.options.{name}")


# ------------------------------------------------------------------ estimation


@dataclass(frozen=True)
class Pooled:
    """The pooled estimate on a units x periods matrix (controls first, then the treated rows)."""

    estimate: float
    t0s: np.ndarray  # each treated row's pre-periods
    fit: "PooledWeights"
    separate: "PooledWeights | None"  # the separate fits the heuristic nu read (None: nu given)
    unit_effects: np.ndarray  # treated x event times 0..K-1
    starts: np.ndarray  # the cohorts' pre-periods, sorted
    cohort_estimates: np.ndarray
    event_effects: np.ndarray
    pre_gaps: np.ndarray  # the average treated unit minus its synthetic control by lag (oldest first)
    treated_pre_scale: float  # mean |outcome| of the treated units' pre-periods

    @property
    def omega(self) -> np.ndarray:
        """Each donor's weight in the average synthetic control (what leave_one_donor_out ranks by)."""
        return self.fit.gammas.mean(axis=0)


def estimate(Y: np.ndarray, N0: int, t0s: np.ndarray, nu: float | None, lam: float, fixed_effects: bool,
             horizon: int | None = None) -> Pooled:
    """The pooled fit of the treated rows ``N0..`` with ``t0s`` pre-periods each, effects over event times
    0..horizon-1 (default: up to the end of the panel for the last cohort)."""
    from causalcli.models import pooled_weights as pw

    T = Y.shape[1]
    K = int(T - t0s.max()) if horizon is None else horizon
    panels: dict[int, np.ndarray] = {}
    blocks: dict[int, np.ndarray] = {}
    for T0 in np.unique(t0s).tolist():
        # the intercept shift: every unit centred on its mean over the cohort's pre-periods
        panels[T0] = Y - Y[:, :T0].mean(axis=1, keepdims=True) if fixed_effects else Y
        blocks[T0] = np.ascontiguousarray(panels[T0][:N0, :T0].T)  # one object a cohort: a shared Gram
    t0_list = [int(t) for t in t0s]
    targets = [panels[T0][N0 + j, :T0] for j, T0 in enumerate(t0_list)]
    donors = [blocks[T0] for T0 in t0_list]
    separate = None
    if nu is None:
        separate, fit = pw.fit_default_nu(targets, donors, lam)
    else:
        fit = pw.fit(targets, donors, nu, lam)
    steps = np.arange(K)
    unit_effects = np.empty((len(t0_list), K))
    for j, T0 in enumerate(t0_list):
        P = panels[T0]
        unit_effects[j] = P[N0 + j, T0 + steps] - fit.gammas[j] @ P[:N0, T0 + steps]
    starts = np.unique(t0s)
    cohorts = np.asarray([unit_effects[t0s == a].mean() for a in starts])
    L = int(t0s.max())
    pooled_gap = np.zeros(L)
    for e in fit.imbalances:
        pooled_gap[L - e.size:] += e
    scale = float(np.mean([np.mean(np.abs(Y[N0 + j, :T0])) for j, T0 in enumerate(t0_list)]))
    return Pooled(float(unit_effects.mean()), np.asarray(t0s), fit, separate, unit_effects, starts, cohorts,
                  unit_effects.mean(axis=0), pooled_gap / len(t0_list), scale)


def _vector(p: Pooled, all_starts: np.ndarray) -> np.ndarray:
    """(aggregate, every cohort's estimate (NaN when absent), every event time's) of one replicate."""
    cohorts = np.full(all_starts.size, np.nan)
    cohorts[np.searchsorted(all_starts, p.starts)] = p.cohort_estimates
    return np.concatenate([[p.estimate], cohorts, p.event_effects])


def _rows(method: str, Y: np.ndarray, N0: int, t0s: np.ndarray, base: Pooled, lam: float, fixed_effects: bool,
          draws: list[np.ndarray]) -> list[np.ndarray]:
    """The replicate of every draw: a permutation of the controls, a bootstrap draw or the unit left out."""
    from causalcli.runtime.threads import single_threaded_blas

    N1, K = Y.shape[0] - N0, base.event_effects.size
    rows = []
    with single_threaded_blas():
        for draw in draws:
            if method == "placebo":
                controls, treated, t0 = draw[:N0 - N1], draw[N0 - N1:], t0s
            else:
                kept = draw if method == "bootstrap" else np.delete(np.arange(N0 + N1), int(draw[0]))
                controls, treated = kept[kept < N0], kept[kept >= N0]
                t0 = t0s[treated - N0]
            p = estimate(np.vstack([Y[controls], Y[treated]]), controls.size, t0, base.fit.nu, lam, fixed_effects,
                         K)
            rows.append(_vector(p, base.starts))
    return rows


def replicates(Y: np.ndarray, N0: int, t0s: np.ndarray, base: Pooled, method: str, replications: int, seed: int,
               lam: float, fixed_effects: bool, jobs: int = 1) -> tuple[np.ndarray, int]:
    """Rows of (aggregate, cohorts, event times) from the placebo, bootstrap or jackknife; attempts made."""
    from causalcli.inference.unit_draws import in_order, unit_draws

    draws, attempts = unit_draws(method, Y.shape[0], N0, replications, seed)
    work = partial(_rows, method, Y, N0, t0s, base, lam, fixed_effects)
    return np.asarray(in_order(work, draws, jobs, PARALLEL_FROM)), attempts


def matrix(d: "SynthData") -> tuple[np.ndarray, int, np.ndarray]:
    """Units x periods (never-treated first, then the treated in column order), N0, each treated row's T0."""
    N1 = d.treated
    Y = np.vstack([d.Y[:, N1:].T, d.Y[:, :N1].T])
    adoption = d.adoption or (d.start,) * N1
    return Y, Y.shape[0] - N1, np.asarray([int(np.count_nonzero(d.times < a)) for a in adoption])


def estimate_of(d: "SynthData", start: float | None = None, keep: np.ndarray | None = None,
                drop: int | None = None) -> Pooled:
    """The pooled estimate with the adoptions moved by ``start - d.start`` (placebo in time, on the periods
    kept) or a never-treated unit dropped; cohorts left without a post-period drop out."""
    Y, N0, t0s = matrix(d)
    if start is not None:
        t0s = t0s + int(np.count_nonzero(d.times < start)) - int(np.count_nonzero(d.times < d.start))
    if keep is not None:
        Y = Y[:, keep]
    if drop is not None:
        Y, N0 = np.delete(Y, drop, axis=0), N0 - 1
    ok = (t0s >= 1) & (t0s < Y.shape[1])
    if not ok.any():
        raise EstimationError("no treated unit keeps a pre-period and a post-period")
    rows = np.concatenate([np.arange(N0), N0 + np.flatnonzero(ok)])
    return estimate(Y[rows], N0, t0s[ok], d.nu, d.weight_penalty, d.fixed_effects)


# ------------------------------------------------------------------ the result


def fit(d: "SynthData", study: "Study", seed: int, jobs: int) -> "Fit":
    """The pooled estimate as a ``Fit``: cohorts and event times in ``effects``, their SEs from the same
    replicates as the headline's."""
    from causalcli.data.types import period_json
    from causalcli.designs.base import Fit
    from causalcli.designs.synthetic_control.staggered import headline_and_effects, replicate_ses

    Y, N0, t0s = matrix(d)
    N1, T = Y.shape[0] - N0, Y.shape[1]
    base = estimate(Y, N0, t0s, d.nu, d.weight_penalty, d.fixed_effects)
    K = base.event_effects.size
    ses, attempts, reason = replicate_ses(d.se, N0, N1, 1 + base.starts.size + K, lambda: replicates(
        Y, N0, t0s, base, d.se, d.replications, seed, d.weight_penalty, d.fixed_effects, jobs))
    warnings = list(d.notes) + ([f"no standard error: {reason}"] if reason else [])
    inference = f"pooled_synthetic_control_{d.se}_se_normal"
    labels = d.time_labels
    cohort_times = d.times[base.starts]
    value, effects = headline_and_effects(ses, base, cohort_times, study.conf_level, inference, labels)
    units, f = d.units, base.fit
    donors = units[N1:]
    cohorts = []
    for k, (a, T0) in enumerate(zip(cohort_times, base.starts)):
        members = [units[i] for i in range(N1) if t0s[i] == T0]
        cohorts.append({"adoption": period_json(a, labels), "units": members,
                        "estimate": float(base.cohort_estimates[k]), "aggregation_weight": len(members) / N1,
                        "pre_periods": int(T0), "post_periods": int(T - T0)})
    per_unit = [{"unit": units[j], "adoption": period_json(d.times[t0s[j]], labels), "pre_periods": int(t0s[j]),
                 "estimate": float(base.unit_effects[j].mean()),
                 "pre_rmse": float(np.sqrt(np.mean(f.imbalances[j] ** 2))),
                 "weights": {donors[i]: float(w) for i, w in enumerate(f.gammas[j])}} for j in range(N1)]
    imbalance: dict[str, Any] = {"pooled": f.q_pool, "separate": f.q_sep}
    if base.separate is not None:
        imbalance["separate_fits"] = {"pooled": base.separate.q_pool, "separate": base.separate.q_sep}
    n = {"rows": d.rows, **(d.missing_n or {}), "units": N0 + N1, "treated": N1, "control": N0,
         "cohorts": int(base.starts.size), "periods": T, "event_times": K,
         "donors_weighted": int(np.count_nonzero(base.omega > 1e-6))}
    diagnostics: dict[str, Any] = {
        "weights": {donor: float(w) for donor, w in zip(donors, base.omega)},
        "units": per_unit,
        "cohorts": cohorts,
        "imbalance": imbalance,
        "fit": {"estimator": "partially_pooled_scm", "nu": f.nu,
                "nu_source": "given" if d.nu is not None else
                "heuristic: ||sum_j e_j|| / sum_j ||e_j|| of the separate fits (Ben-Michael et al. 2022; augsynth)",
                "weight_penalty": d.weight_penalty, "fixed_effects": d.fixed_effects, "lags": int(t0s.max()),
                "objective": f.objective, "sweeps": f.sweeps,
                "solver": "block coordinate descent, each unit's weights by an exact active set on the simplex",
                "aggregation": "unit effects at event times 0..K-1 (K: post-periods of the last cohort) averaged "
                               "over units and event times, as augsynth multisynth's average ATT"},
        "standard_error": {"method": d.se, "replications": d.replications if d.se != "jackknife" else N0 + N1,
                           "usable": reason is None, **({"reason": reason} if reason else {}),
                           **({"draws": attempts} if attempts else {}),
                           "procedure": "every unit's weights re-solved on each replicate, nu held"},
    }
    return Fit(ESTIMATOR, "att", value, n, effects=effects, diagnostics=diagnostics, warnings=warnings,
               checks=[_pre_fit(base, study.thresholds.pre_fit, d.fixed_effects)])


def _pre_fit(base: Pooled, limit: float, fixed_effects: bool) -> Check:
    """The family's pre_fit rule on the average treated unit: the RMSE of its pre-period gap by event time
    over the treated units' mean |outcome| before adoption."""
    rmse = float(np.sqrt(np.mean(base.pre_gaps ** 2)))
    scale = base.treated_pre_scale
    ratio = rmse / scale if scale > 0 else float("inf")
    passed = bool(ratio <= limit)
    after = " after each unit's intercept" if fixed_effects else ""
    detail = (f"pooled pre-period RMSE{after} {rmse:.4g} (the average treated unit by event time) is {ratio:.1%} "
              f"of the treated units' mean |outcome| {scale:.4g} ({'<=' if passed else '>'} {limit:.0%} allowed)")
    if not passed:
        detail += "; the synthetic controls do not track the treated units before adoption"
    return Check("pre_fit", passed, detail)
