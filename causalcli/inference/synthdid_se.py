"""Standard errors of synthetic difference-in-differences (Arkhangelsky et al. 2021, Algorithms 2-4).

* ``placebo`` (Algorithm 4): the treated units are set aside; ``N1`` controls drawn at random play
  the treated, the other controls the donors, and the estimate is redone (weights re-solved with the
  original regularisation, started from the original weights, as synthdid's ``placebo_se``);
  se = sqrt((B - 1) / B) * sd of the B placebo estimates.
* ``bootstrap`` (Algorithm 2): units drawn with replacement, draws with no control or no treated
  unit redrawn (at most 20 B attempts), weights re-solved on each draw; same scaling.
* ``jackknife`` (Algorithm 3): each unit left out in turn with the weights kept (unit weights
  renormalised over the controls left), se = sqrt((n - 1) / n * sum (theta_i - mean)^2).

The paper's conditions: bootstrap and jackknife need several treated units (with one, synthdid
returns NA), placebo needs more controls than treated units. Callers check them and say why
(``unusable_reason``). Draws are made up front from one seeded stream and the refits spread over
processes in order, so the result does not depend on the number of workers.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from causalcli.inference.unit_draws import unit_draws
from causalcli.models import synthdid_weights as sw

METHODS = ("placebo", "bootstrap", "jackknife")
PARALLEL_FROM = 40  # refits below this many run in the main process (forking costs more)


@dataclass(frozen=True)
class Replicates:
    se: float
    estimates: np.ndarray  # the placebo, bootstrap or leave-one-out estimates
    method: str
    attempts: int  # bootstrap draws made (redrawn ones included); otherwise the refits


def unusable_reason(method: str, N0: int, N1: int) -> str | None:
    """Why ``method`` gives no standard error on N0 controls and N1 treated units, or None."""
    return several_treated_reason(method, N1) or (
        f"placebo standard errors need more control units ({N0}) than treated units ({N1})"
        if method == "placebo" and N0 <= N1 else None)


def several_treated_reason(method: str, N1: int) -> str | None:
    """Why ``method`` needs more than ``N1`` treated units, or None."""
    if method in ("bootstrap", "jackknife") and N1 < 2:
        return (f"{method} standard errors need at least two treated units (Arkhangelsky et al. 2021, sec. 5: with "
                "one, leaving it out or resampling it leaves no treated unit to compare; synthdid returns NA)")
    return None


def _placebo_one(Y: np.ndarray, N1: int, perm: np.ndarray, base: sw.SdidFit) -> float:
    n0 = perm.size - N1
    omega0 = sw.sum_normalize(base.omega[perm[:n0]]) if base.tuning.variant != "did" else None
    lam0 = base.lam if base.tuning.variant == "sdid" else None
    return sw.fit(Y[perm], n0, base.lam.size, base.tuning.variant, base.tuning, omega0, lam0).estimate


def _placebo_batch(Y_controls: np.ndarray, N1: int, perms: list[np.ndarray], base: sw.SdidFit) -> list[float]:
    """The placebo estimates of ``perms``, their unit weights solved side by side (``placebo_unit_weights``)."""
    tuning, T0 = base.tuning, base.lam.size
    n0 = Y_controls.shape[0] - N1
    if tuning.variant == "did" or Y_controls.shape[0] > sw.BATCH_MAX_CONTROLS:
        return [_placebo_one(Y_controls, N1, p, base) for p in perms]
    starts = [sw.sum_normalize(base.omega[p[:n0]]) for p in perms]
    omegas, _ = sw.placebo_unit_weights(Y_controls, T0, perms, N1, tuning, starts, tuning.variant == "sdid")
    lams = sw.placebo_time_weights(Y_controls, [p[:n0] for p in perms], T0, tuning, base.lam)
    return [sw.weighted_did(Y_controls[p], n0, T0, omega, lam) for p, omega, lam in zip(perms, omegas, lams)]


def _bootstrap_one(Y: np.ndarray, N0: int, draw: np.ndarray, base: sw.SdidFit) -> float:
    controls, treated = draw[draw < N0], draw[draw >= N0]
    omega0 = sw.sum_normalize(base.omega[controls]) if base.tuning.variant != "did" else None
    lam0 = base.lam if base.tuning.variant == "sdid" else None
    Yb = Y[np.concatenate([controls, treated])]
    return sw.fit(Yb, controls.size, base.lam.size, base.tuning.variant, base.tuning, omega0, lam0).estimate


def _chunk(kind: str, Y: np.ndarray, N0: int, draws: list[np.ndarray], base: sw.SdidFit) -> list[float]:
    from causalcli.runtime.threads import single_threaded_blas

    N1 = Y.shape[0] - N0
    with single_threaded_blas():
        if kind == "placebo":
            return _placebo_batch(Y[:N0], N1, draws, base)
        return [_bootstrap_one(Y, N0, d, base) for d in draws]


def _refits(kind: str, Y: np.ndarray, N0: int, draws: list[np.ndarray], base: sw.SdidFit, jobs: int) -> np.ndarray:
    if jobs <= 1 or len(draws) < PARALLEL_FROM:
        return np.asarray(_chunk(kind, Y, N0, draws, base))
    from joblib import Parallel, delayed

    # placebo draws are solved side by side: one batch a worker (a step costs about the same for 25 rows as
    # for 100); bootstrap draws one at a time, in a few chunks a worker
    n_chunks = min(len(draws), jobs if kind == "placebo" else 4 * jobs)
    bounds = np.linspace(0, len(draws), n_chunks + 1).astype(int)
    parts = Parallel(n_jobs=jobs, backend="multiprocessing")(
        delayed(_chunk)(kind, Y, N0, draws[a:b], base) for a, b in zip(bounds[:-1], bounds[1:]) if b > a)
    return np.asarray([x for part in parts for x in part])


def _scaled_sd(estimates: np.ndarray) -> float:
    B = estimates.size
    return float(np.sqrt((B - 1) / B) * np.std(estimates, ddof=1)) if B > 1 else float("nan")


def placebo(Y: np.ndarray, N0: int, base: sw.SdidFit, replications: int, seed: int, jobs: int = 1) -> Replicates:
    """Algorithm 4 on ``Y`` (controls first). Permutation r is the r-th ``permutation(N0)`` of the seeded
    generator (the order diff-diff draws them in)."""
    draws, _ = unit_draws("placebo", Y.shape[0], N0, replications, seed)
    est = _refits("placebo", Y, N0, draws, base, jobs)
    return Replicates(_scaled_sd(est), est, "placebo", replications)


def bootstrap(Y: np.ndarray, N0: int, base: sw.SdidFit, replications: int, seed: int, jobs: int = 1) -> Replicates:
    """Algorithm 2 on ``Y`` (controls first): draws lacking controls or treated units are redrawn."""
    draws, attempts = unit_draws("bootstrap", Y.shape[0], N0, replications, seed)
    est = _refits("bootstrap", Y, N0, draws, base, jobs)
    return Replicates(_scaled_sd(est), est, "bootstrap", attempts)


def jackknife(Y: np.ndarray, N0: int, base: sw.SdidFit) -> Replicates:
    """Algorithm 3: leave-one-unit-out with the weights fixed (no refit), as synthdid's jackknife_se."""
    N, T0 = Y.shape[0], base.lam.size
    est = np.empty(N)
    for j in range(N):
        keep = np.delete(np.arange(N), j)
        n0 = N0 - (j < N0)
        omega = sw.sum_normalize(np.delete(base.omega, j) if j < N0 else base.omega)
        est[j] = sw.weighted_did(Y[keep], n0, T0, omega, base.lam)
    se = float(np.sqrt((N - 1) / N * np.sum((est - est.mean()) ** 2)))
    return Replicates(se, est, "jackknife", N)
