"""Synthetic difference-in-differences in did's comparison view (``estimator: all``), for few treated units.

The panel becomes a units x periods matrix, never-treated units first (in the unit column's order), then the
treated ones by adoption period; each adoption cohort gets its own synthetic DiD on the never-treated units
and the cohorts' estimates are aggregated by their treated unit-periods (Arkhangelsky, Athey, Hirshberg,
Imbens and Wager 2021, and its appendix for staggered adoption); with one cohort that is synthdid's estimate
itself. The numerics are the shared ones (``causalcli.models.synthdid_weights``,
``causalcli.inference.synthdid_staggered``) that ``method: synthetic_control`` with ``estimator:
synthetic_did`` runs, so the numbers are that family's on the same data.

The standard error is the placebo one (Algorithm 4, ``REPLICATIONS`` draws): the paper's choice with few
treated units, where the bootstrap and jackknife are unreliable or undefined. It is run only with few treated
units (``MAX_TREATED``): there unit weights are what synthetic DiD adds over DiD, and the placebo needs more
never-treated units than treated ones; with many, the other estimators of the comparison are the usual tools.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import numpy as np

if TYPE_CHECKING:  # pragma: no cover
    from causalcli.designs.base import Fit
    from causalcli.designs.did.panel import PanelData
    from causalcli.spec.models import Study

MAX_TREATED = 10  # at most this many treated units: synthetic DiD joins the comparison
REPLICATIONS = 200  # placebo draws, synthdid's default
MIN_PRE_PERIODS = 2  # the noise level and the time weights need two pre-periods


def synthetic_did_reason(p: "PanelData", study: "Study") -> str | None:
    """Why synthetic DiD is left out of the comparison on this panel, or None."""
    from causalcli.data.types import period_text

    treated, never = int((p.g >= 0).sum()), int((p.g < 0).sum())
    if never == 0:
        return "synthetic DiD weighs never-treated units as the treated units' controls, and there are none"
    if treated > MAX_TREATED:
        return (f"{treated} treated units: synthetic DiD joins the comparison with few treated units (at most "
                f"{MAX_TREATED}), where its unit weights matter and its placebo standard error applies")
    if never <= treated:
        return (f"its placebo standard error needs more never-treated units ({never}) than treated units "
                f"({treated})")
    if p.X.shape[1]:
        return "covariates are not built for synthetic DiD"
    if p.w is not None:
        return "weights are not built for synthetic DiD"
    if not p.panel["balanced"]:
        return "synthetic DiD needs a balanced panel (every unit observed in every period)"
    first = int(p.g[p.g >= 0].min())
    if first < MIN_PRE_PERIODS:
        return (f"the cohort adopting in {period_text(p.times[first], p.time_labels)} has {first} pre-period(s); "
                f"synthetic DiD needs at least {MIN_PRE_PERIODS}")
    return None


def matrix(p: "PanelData") -> tuple[np.ndarray, int, np.ndarray, np.ndarray]:
    """Units x periods (never-treated first, then the treated by adoption period), N0, each treated row's
    pre-period count, and the unit codes in row order."""
    Y = np.empty((p.n_units, p.times.size))
    Y[p.unit, p.time] = p.y  # balanced: every cell is filled
    treated = np.flatnonzero(p.g >= 0)
    treated = treated[np.argsort(p.g[treated], kind="stable")]
    rows = np.concatenate([np.flatnonzero(p.g < 0), treated])
    return Y[rows], int((p.g < 0).sum()), p.g[treated], rows


def fit_synthetic_did(p: "PanelData", study: "Study", seed: int, jobs: int) -> "Fit":
    from causalcli.designs.base import Fit
    from causalcli.inference.estimate import normal_estimate
    from causalcli.inference.synthdid_staggered import estimate, replicates, standard_errors

    Y, N0, t0s, rows = matrix(p)
    T = Y.shape[1]
    horizon = int(T - t0s.min())
    base = estimate(Y, N0, t0s, "sdid", horizon)
    reps, draws = replicates(Y, N0, t0s, base, "placebo", REPLICATIONS, seed, "sdid", jobs)
    ses = standard_errors(reps, "placebo")

    def se(k: int) -> float | None:
        return float(ses[k]) if np.isfinite(ses[k]) else None

    cohorts = base.starts.size
    inference = "synthetic_did_placebo_se_normal" if cohorts == 1 else "synthetic_did_staggered_placebo_se_normal"
    conf = study.conf_level
    value = normal_estimate(base.estimate, se(0), conf, inference)
    effects = [normal_estimate(float(v), se(1 + cohorts + e), conf, inference, f"event_time={e}")
               for e, v in enumerate(base.event_effects)]
    donors = [str(u) for u in p.unit_labels[rows[:N0]]]
    weights = {u: float(sum(w * f.omega[j] for w, f in zip(base.weights, base.fits))) for j, u in enumerate(donors)}
    diagnostics: dict[str, Any] = {"synthetic_did": {
        "cohorts": int(cohorts), "treated_units": int(Y.shape[0] - N0), "never_treated_units": N0,
        "aggregation": "cohort estimates weighted by their treated unit-periods N1_a * T1_a; event times by the "
                       "units of the cohorts observed there (Arkhangelsky et al. 2021, appendix)",
        "standard_error": {"method": "placebo", "replications": REPLICATIONS, "draws": draws,
                           "note": "never-treated units permuted into the treated units' places (Algorithm 4); "
                                   "design.cluster is not used"},
        "weights": {u: w for u, w in weights.items() if w > 0},
    }}
    n = dict(p.n)
    n["used"] = int(Y.size)
    return Fit("synthetic_did", "att", value, n, effects=effects, diagnostics=diagnostics, warnings=list(p.warnings))
