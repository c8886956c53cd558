"""Staggered synthetic difference-in-differences on a units x periods matrix: the estimate and its replicates.

Arkhangelsky et al. (2021, appendix; synthdid's vignette on staggered adoption): one synthetic DiD per
adoption cohort a, on the never-treated units plus that cohort over the whole panel (pre-periods: before a),
aggregated as

    tau = sum_a w_a tau_a,   w_a = N1_a * T1_a / sum_b N1_b * T1_b

(the cohort's treated unit-periods); the effect at event time e averages the cohorts' effect curves at e
weighted by their units, N1_a, over the cohorts observed e periods after adopting. With one cohort this is
synthdid's estimate itself (w = 1).

Inference redoes the whole procedure (every cohort's weights re-solved): ``placebo`` (Algorithm 4
generalised: the never-treated units are permuted, the last N1 play the treated units with their cohorts'
adoption periods, the rest the controls), ``bootstrap`` (Algorithm 2) or ``jackknife`` (Algorithm 3: each
unit left out with every cohort's weights kept; a cohort left empty drops out of the aggregate).

Pure numpy on matrices, below the design families: synthetic control's ``treated_unit`` list and
``treatment_start`` column (``designs/synthetic_control/staggered.py``) and did's ``estimator: all``
(``designs/did/synthetic_did.py``) build the matrix and call the same code.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

PARALLEL_FROM = 20  # replicates below this many run in the main process (forking costs more)


@dataclass(frozen=True)
class Staggered:
    """The staggered estimate on a units x periods matrix (controls first, then the treated rows)."""

    estimate: float
    starts: np.ndarray  # T0 of each cohort (sorted)
    sizes: np.ndarray  # treated units of each cohort
    weights: np.ndarray  # w_a
    cohort_estimates: np.ndarray
    event_effects: np.ndarray  # by event time 0..max T1 - 1
    fits: tuple  # SdidFit per cohort


def _event_effects(curves: list[np.ndarray], sizes: np.ndarray, horizon: int) -> np.ndarray:
    out = np.full(horizon, np.nan)
    for e in range(horizon):
        have = [(c[e], n) for c, n in zip(curves, sizes) if c.size > e]
        if have:
            out[e] = sum(v * n for v, n in have) / sum(n for _, n in have)
    return out


def estimate(Y: np.ndarray, N0: int, t0s: np.ndarray, variant: str, horizon: int,
             base: Staggered | None = None, controls: np.ndarray | None = None) -> Staggered:
    """One synthetic DiD per distinct T0 in ``t0s`` (the treated rows' pre-period counts), aggregated.

    A replicate passes the ``base`` estimate and which of its controls are its own (``controls``): each
    cohort's weights are then re-solved with the base's regularisation from its weights, as synthdid's
    placebo and bootstrap refits are.
    """
    from causalcli.models import synthdid_weights as sw

    T = Y.shape[1]
    starts = np.unique(t0s)
    sizes, fits, taus, curves = [], [], [], []
    for T0 in starts:
        rows = N0 + np.flatnonzero(t0s == T0)
        M = np.vstack([Y[:N0], Y[rows]])
        if base is None:
            f = sw.fit(M, N0, int(T0), variant)
        else:
            f0 = base.fits[int(np.searchsorted(base.starts, T0))]
            omega0 = sw.sum_normalize(f0.omega[controls]) if variant != "did" else None
            f = sw.fit(M, N0, int(T0), variant, f0.tuning, omega0, f0.lam if variant == "sdid" else None)
        sizes.append(rows.size)
        fits.append(f)
        taus.append(f.estimate)
        curves.append(sw.effect_path(M, N0, int(T0), f.omega, f.lam))
    n = np.asarray(sizes, dtype=float)
    w = n * (T - starts)
    w = w / w.sum()
    taus_a = np.asarray(taus)
    return Staggered(float(w @ taus_a), starts, n, w, taus_a, _event_effects(curves, n, horizon), tuple(fits))


def _vector(s: Staggered, all_starts: np.ndarray, horizon: int) -> np.ndarray:
    """(aggregate, every cohort's estimate (NaN when absent), every event time's) of one replicate."""
    cohorts = np.full(all_starts.size, np.nan)
    cohorts[np.searchsorted(all_starts, s.starts)] = s.cohort_estimates
    return np.concatenate([[s.estimate], cohorts, s.event_effects[:horizon]])


def replicates(Y: np.ndarray, N0: int, t0s: np.ndarray, base: Staggered, method: str, replications: int,
               seed: int, variant: str, jobs: int = 1) -> tuple[np.ndarray, int]:
    """Rows of (aggregate, cohorts, event times) from the placebo, bootstrap or jackknife; attempts made.

    The draws are made up front from one seeded stream and refitted in order (over ``jobs`` processes
    from PARALLEL_FROM draws on), so the result does not depend on the number of workers.
    """
    from functools import partial

    from causalcli.inference.unit_draws import in_order, unit_draws
    from causalcli.models.synthdid_weights import BATCH_MAX_CONTROLS

    draws, attempts = unit_draws(method, Y.shape[0], N0, replications, seed)
    # placebo draws solved side by side: one batch a worker, as synthdid_se does (a Frank-Wolfe step costs
    # about the same for 25 rows as for 100, so more chunks only repeat the 10,000 steps); others in a few chunks
    side_by_side = method == "placebo" and variant != "did" and N0 <= BATCH_MAX_CONTROLS
    work = partial(_rows, method, Y, N0, t0s, base, variant=variant)
    return np.asarray(in_order(work, draws, jobs, PARALLEL_FROM, 1 if side_by_side else 4)), attempts


def _rows(method: str, Y: np.ndarray, N0: int, t0s: np.ndarray, base: Staggered, draws: list[np.ndarray],
          variant: str) -> list[np.ndarray]:
    """The replicate of every draw: a permutation of the controls, a bootstrap draw or the unit left out."""
    from causalcli.runtime.threads import single_threaded_blas

    from causalcli.models import synthdid_weights as sw

    horizon = base.event_effects.size
    N1 = Y.shape[0] - N0
    rows = []
    with single_threaded_blas():
        if method == "placebo" and variant != "did" and N0 <= sw.BATCH_MAX_CONTROLS:
            return _placebo_side_by_side(Y, N0, t0s, base, draws, variant)
        for draw in draws:
            if method == "jackknife":
                rows.append(_jackknife_one(Y, N0, t0s, base, int(draw[0]), horizon))
                continue
            if method == "placebo":
                controls, treated, t0 = draw[:N0 - N1], draw[N0 - N1:], t0s  # synthdid_se.placebo's split
            else:
                controls, treated = draw[draw < N0], draw[draw >= N0]
                t0 = t0s[treated - N0]
            s = estimate(np.vstack([Y[controls], Y[treated]]), controls.size, t0, variant, horizon, base, controls)
            rows.append(_vector(s, base.starts, horizon))
    return rows


def _placebo_side_by_side(Y: np.ndarray, N0: int, t0s: np.ndarray, base: Staggered, draws: list[np.ndarray],
                          variant: str) -> list[np.ndarray]:
    """The placebo replicates with each cohort's unit weights solved for every draw side by side
    (``placebo_unit_weights``, as ``synthdid_se`` does for one block of treated units): draw r's donors are
    ``draws[r][:N0 - N1]``, its placebo units for a cohort the cohort's positions in ``draws[r][N0 - N1:]``."""
    from causalcli.models import synthdid_weights as sw

    horizon = base.event_effects.size
    n0 = 2 * N0 - Y.shape[0]
    Yc = Y[:N0]
    by_cohort = []
    for T0, f0 in zip(base.starts.tolist(), base.fits):
        positions = np.flatnonzero(t0s == T0)
        perms = [np.concatenate([p[:n0], p[n0:][positions]]) for p in draws]
        starts = [sw.sum_normalize(f0.omega[p[:n0]]) for p in draws]
        omegas, _ = sw.placebo_unit_weights(Yc, T0, perms, positions.size, f0.tuning, starts, variant == "sdid")
        lams = sw.placebo_time_weights(Yc, [p[:n0] for p in perms], T0, f0.tuning, f0.lam)
        fits = []
        for p, omega, lam in zip(perms, omegas, lams):
            M = Yc[p]
            fits.append((sw.weighted_did(M, n0, T0, omega, lam), sw.effect_path(M, n0, T0, omega, lam)))
        by_cohort.append(fits)
    rows = []
    for r in range(len(draws)):
        taus = np.asarray([fits[r][0] for fits in by_cohort])
        events = _event_effects([fits[r][1] for fits in by_cohort], base.sizes, horizon)
        s = Staggered(float(base.weights @ taus), base.starts, base.sizes, base.weights, taus, events, ())
        rows.append(_vector(s, base.starts, horizon))
    return rows


def _jackknife_one(Y: np.ndarray, N0: int, t0s: np.ndarray, base: Staggered, j: int, horizon: int) -> np.ndarray:
    """The aggregate without unit ``j``, every cohort's weights kept (control weights renormalised)."""
    from causalcli.models import synthdid_weights as sw

    T = Y.shape[1]
    taus, sizes, starts, curves = [], [], [], []
    for T0, f in zip(base.starts, base.fits):
        rows = N0 + np.flatnonzero(t0s == T0)
        rows = rows[rows != j]
        if rows.size == 0:
            continue
        keep = np.delete(np.arange(N0), j) if j < N0 else np.arange(N0)
        omega = sw.sum_normalize(np.delete(f.omega, j) if j < N0 else f.omega)
        M = np.vstack([Y[keep], Y[rows]])
        taus.append(sw.weighted_did(M, keep.size, int(T0), omega, f.lam))
        curves.append(sw.effect_path(M, keep.size, int(T0), omega, f.lam))
        sizes.append(rows.size)
        starts.append(T0)
    n, st = np.asarray(sizes, dtype=float), np.asarray(starts)
    w = n * (T - st)
    w = w / w.sum()
    s = Staggered(float(w @ np.asarray(taus)), st, n, w, np.asarray(taus), _event_effects(curves, n, horizon), ())
    return _vector(s, base.starts, horizon)


def standard_errors(reps: np.ndarray, method: str) -> np.ndarray:
    """Per column: sqrt((B-1)/B) sd (placebo, bootstrap) or the jackknife's sqrt((n-1)/n sum (x - mean)^2),
    over the replicates where the quantity exists."""
    out = np.full(reps.shape[1], np.nan)
    for k in range(reps.shape[1]):
        x = reps[:, k][np.isfinite(reps[:, k])]
        B = x.size
        if B < 2:
            continue
        if method == "jackknife":
            out[k] = np.sqrt((B - 1) / B * np.sum((x - x.mean()) ** 2))
        else:
            out[k] = np.sqrt((B - 1) / B) * np.std(x, ddof=1)
    return out
