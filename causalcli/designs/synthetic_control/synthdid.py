"""`estimator: synthetic_did` of the synthetic control family: spec checks, the fit as a `Fit`, refuters.

The weights, the estimate and the standard errors are in the shared layers
(``causalcli.models.synthdid_weights``, ``causalcli.inference.synthdid_se``) so that other families
(the did family's comparison view) can call them on a matrix; this module turns the family's
``SynthData`` into that matrix (controls first, pre-periods first) and the result into JSON.

``options.variant`` picks the row of Arkhangelsky et al. (2021), Table 1: ``sdid`` (unit and time
weights), ``sc`` (synthdid's ``sc_estimate``: unit weights without intercept, no time weights) or
``did`` (uniform weights); ``options.se`` the standard error (Algorithms 2-4).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import numpy as np

from causalcli.data.types import period_json, period_text
from causalcli.designs.base import Fit
from causalcli.errors import EstimationError, SpecError
from causalcli.designs.synthetic_control.staggered import pre_fit_check
from causalcli.records import Estimate

if TYPE_CHECKING:  # pragma: no cover
    from causalcli.designs.synthetic_control.panel import SynthData
    from causalcli.models.synthdid_weights import SdidFit
    from causalcli.spec.loading import LoadedSpec
    from causalcli.spec.models import Study

ESTIMATOR = "synthetic_did"
# options of the predictor-based synthetic control that synthetic DiD does not read
ADH_OPTIONS = ("v", "cross_validation", "starts", "predictors_window", "optimize_window", "augmented",
               "ridge_lambda", "conformal", "conformal_grid")
SDID_OPTIONS = ("variant", "se", "replications")
WEIGHT_FLOOR = 1e-6  # weights below this are reported as zero donors in n.donors_weighted


def check_spec(study: "Study", spec: "LoadedSpec") -> None:
    """What synthetic DiD refuses before reading data (exit 2)."""
    from causalcli.inference.synthdid_se import several_treated_reason

    file, d = spec.source.display, study.design
    if d.predictors or d.special_predictors:
        key = "design.predictors" if d.predictors else "design.special_predictors"
        raise SpecError("estimator: synthetic_did weights units and periods on the outcome path alone (covariate "
                        "adjustment is not built); remove predictors and special_predictors", file=file, key=key)
    from causalcli.designs.synthetic_control.pooled import POOLED_OPTIONS

    for name in (*ADH_OPTIONS, *POOLED_OPTIONS):
        if name in d.options.model_fields_set:
            raise SpecError(f"design.options.{name} belongs to estimator: synthetic_control and is not read by "
                            f"synthetic_did; remove it", file=file, key=f"design.options.{name}")
    from causalcli.designs.synthetic_control.staggered import is_staggered, treated_labels

    treated = treated_labels(d)
    # with an adoption column the count is known from the data: checked at the fit
    reason = None if is_staggered(d) else several_treated_reason(d.options.se, len(treated))
    if reason:
        raise SpecError(f"options.se: {d.options.se} with the one treated unit {treated[0]!r}: {reason}; use "
                        f"se: placebo", file=file, key="design.options.se")


def check_adh_spec(study: "Study", spec: "LoadedSpec") -> None:
    """Options of synthetic DiD given to the predictor-based estimator, several or staggered treated units
    with predictors (exit 2); several or staggered units without them are the pooled fit's (pooled.py)."""
    from causalcli.designs.synthetic_control.pooled import POOLED_OPTIONS, is_pooled
    from causalcli.designs.synthetic_control.staggered import names_column, treated_labels

    d, file = study.design, spec.source.display
    weighted_by = next((k for k in ("predictors", "special_predictors") if getattr(d, k)), None)
    if weighted_by is None and d.options.augmented:
        weighted_by = "options.augmented"
    if is_pooled(d) and weighted_by is None:
        from causalcli.designs.synthetic_control.pooled import check_spec as check_pooled_spec

        return check_pooled_spec(study, spec)
    if names_column(d):
        raise SpecError(f"treatment_start {d.treatment_start!r} names a column (staggered adoption), which only "
                        f"estimator: synthetic_did and the pooled synthetic control (estimator: synthetic_control "
                        f"on the outcome path) read; remove design.{weighted_by} or set design.estimator: "
                        f"synthetic_did", file=file, key="design.treatment_start")
    if len(treated_labels(d)) > 1:
        raise SpecError(f"estimator: synthetic_control takes one treated unit, found {len(treated_labels(d))} "
                        f"in treated_unit, with design.{weighted_by}; the pooled synthetic control of several "
                        f"(or staggered) treated units balances the outcome path alone: remove design.{weighted_by}, "
                        f"or set design.estimator: synthetic_did", file=file, key="design.treated_unit")
    for name in (*SDID_OPTIONS, *POOLED_OPTIONS):
        if name in d.options.model_fields_set:
            owner = ("estimator: synthetic_did; set design.estimator: synthetic_did" if name in SDID_OPTIONS else
                     "the pooled synthetic control of several or staggered treated units; list them in "
                     "treated_unit")
            raise SpecError(f"design.options.{name} is an option of {owner} or remove it", file=file,
                            key=f"design.options.{name}")


def matrix(d: "SynthData", keep: np.ndarray | None = None) -> tuple[np.ndarray, int, int]:
    """Y as units x periods with the donors first and the treated units last; N0, T0."""
    times = d.times if keep is None else d.times[keep]
    Y = d.Y if keep is None else d.Y[keep]
    M = np.vstack([Y[:, d.treated:].T, Y[:, :d.treated].T])
    return M, M.shape[0] - d.treated, int(np.count_nonzero(times < d.start))


def estimate_of(d: "SynthData", start: float | None = None, keep: np.ndarray | None = None,
                drop: int | None = None) -> "SdidFit | Any":
    """The fit of ``d``'s variant, with the start moved (placebo in time), periods kept, or a donor dropped."""
    from causalcli.models import synthdid_weights as sw

    if d.estimator == "synthetic_control":  # several or staggered treated units: the pooled fit
        from causalcli.designs.synthetic_control import pooled

        return pooled.estimate_of(d, start, keep, drop)
    if d.adoption:
        from causalcli.designs.synthetic_control import staggered

        return staggered.estimate_of(d, start, keep, drop)
    if start is not None:
        from dataclasses import replace

        d = replace(d, start=start)
    Y, N0, T0 = matrix(d, keep)
    if drop is not None:
        Y, N0 = np.delete(Y, drop, axis=0), N0 - 1
    if T0 < 1 or T0 >= Y.shape[1]:
        raise EstimationError("no pre-period or no post-period")
    return sw.fit(Y, N0, T0, d.variant)


def fit(d: "SynthData", study: "Study", seed: int, jobs: int) -> Fit:
    from causalcli.inference import synthdid_se
    from causalcli.inference.estimate import normal_estimate
    from causalcli.models import synthdid_weights as sw

    if d.adoption:
        from causalcli.designs.synthetic_control import staggered

        return staggered.fit(d, study, seed, jobs)
    Y, N0, T0 = matrix(d)
    N1, T1 = Y.shape[0] - N0, Y.shape[1] - T0
    base = sw.fit(Y, N0, T0, d.variant)
    reason = synthdid_se.unusable_reason(d.se, N0, N1)
    warnings = list(d.notes)
    reps = None
    if reason is None and d.se == "jackknife" and np.count_nonzero(base.omega > 0) <= 1:
        reason = "jackknife standard errors need more than one control unit with a nonzero weight"
    if reason is None:
        if d.se == "placebo":
            reps = synthdid_se.placebo(Y, N0, base, d.replications, seed, jobs)
        elif d.se == "bootstrap":
            reps = synthdid_se.bootstrap(Y, N0, base, d.replications, seed, jobs)
        else:
            reps = synthdid_se.jackknife(Y, N0, base)
    else:
        warnings.append(f"no standard error: {reason}")
    inference = f"synthetic_did_{d.se}_se_normal"
    estimate = normal_estimate(base.estimate, reps.se if reps else None, study.conf_level, inference)
    post_times = d.times[T0:]
    curve = sw.effect_path(Y, N0, T0, base.omega, base.lam)
    effects = [Estimate(float(v), None, None, None, study.conf_level, None, "synthetic_did_effect_curve",
                        period_text(t, d.time_labels)) for t, v in zip(post_times, curve)]
    units = d.units
    synthetic = base.omega @ Y[:N0]
    treated = Y[N0:].mean(axis=0)
    # the pre-period fit up to the intercept SDiD allows: the lambda-weighted level difference is removed
    offset = float((treated[:T0] - synthetic[:T0]) @ base.lam) if d.variant == "sdid" else 0.0
    if d.variant == "did":
        offset = float(np.mean(treated[:T0] - synthetic[:T0]))
    pre_gap = treated[:T0] - synthetic[:T0] - offset
    pre_rmse = float(np.sqrt(np.mean(pre_gap ** 2)))
    n = {"rows": d.rows, **(d.missing_n or {}), "units": N0 + N1, "treated": N1, "control": N0,
         "donors_weighted": int(np.count_nonzero(base.omega > WEIGHT_FLOOR)), "periods": int(Y.shape[1]),
         "pre_periods": T0, "post_periods": T1}
    diagnostics: dict[str, Any] = {
        "weights": {units[j + N1]: float(w) for j, w in enumerate(base.omega)},
        "time_weights": {period_text(t, d.time_labels): float(w) for t, w in zip(d.times[:T0], base.lam)},
        "fit": {"estimator": ESTIMATOR, "variant": d.variant, "noise_level": base.tuning.noise_level,
                "zeta_omega": base.tuning.zeta_omega, "zeta_lambda": base.tuning.zeta_lambda,
                "min_decrease": base.tuning.min_decrease,
                "iterations": {"unit_weights": base.iterations[0], "time_weights": base.iterations[1]},
                "solver": "Frank-Wolfe as R synthdid (100 iterations, sparsify, up to 10,000)",
                "pre_rmse_after_intercept": pre_rmse},
        "standard_error": {"method": d.se, "replications": d.replications if d.se != "jackknife" else N0 + N1,
                           "usable": reason is None, **({"reason": reason} if reason else {}),
                           **({"draws": reps.attempts, "estimates_sd": float(np.std(reps.estimates, ddof=1))}
                              if reps is not None and reps.estimates.size > 1 else {})},
        "path": {"time": [period_json(t, d.time_labels) for t in d.times],
                 "treated": [float(x) for x in treated], "synthetic": [float(x) for x in synthetic],
                 "synthetic_shifted": [float(x + offset) for x in synthetic],
                 "time_weights": [float(x) for x in base.lam] + [0.0] * T1,
                 "treatment_start": period_json(d.start, d.time_labels),
                 "treated_unit": units[0] if N1 == 1 else list(units[:N1]),
                 "outcome_column": study.outcome, "time_column": d.time_column},  # the plots' axis names
    }
    return Fit(ESTIMATOR, "att", estimate, n, effects=effects, diagnostics=diagnostics,
               checks=[pre_fit_check(pre_rmse, treated[:T0], study.thresholds.pre_fit)], warnings=warnings)


def placebo_in_time_at(d: "SynthData", fake: float) -> float:
    """The estimate on the pre-period alone with the treatment pretended to start at ``fake``."""
    return estimate_of(d, start=fake, keep=d.pre).estimate


def leave_one_donor_out(d: "SynthData", options: Any) -> float:
    """The estimate closest to zero (or furthest past it) with one of the heaviest donors left out."""
    base = estimate_of(d)
    # staggered: the donors' weights averaged over the cohorts as the estimate averages them
    omega = base.omega if hasattr(base, "omega") else sum(w * f.omega for w, f in zip(base.weights, base.fits))
    order = [int(j) for j in np.argsort(-omega, kind="stable") if omega[j] > WEIGHT_FLOOR]
    order = order[:options.donors]
    if omega.size < 3 or not order:
        raise EstimationError("too few donors to leave one out")
    effects = [estimate_of(d, drop=j).estimate for j in order]
    return min(effects) if base.estimate > 0 else max(effects)

