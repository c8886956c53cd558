"""Partially pooled synthetic control weights (Ben-Michael, Feller and Rothstein 2022, JRSS-B, sec. 4).

J treated units, unit j with its own donor matrix ``A_j`` (L_j pre-periods x N0 donors: the donors'
outcomes over unit j's last L_j pre-periods, oldest first) and pre-period path ``x_j`` (L_j). Weights
``gamma_j`` on the simplex leave the imbalance ``e_j = x_j - A_j gamma_j``; aligned on event time (lag 1
= each unit's last pre-period, a unit without a lag contributing zero there), their mean over units is
the pooled imbalance. The weights minimise

    nu q_pool^2 + (1 - nu) q_sep^2 + lambda sum_j ||gamma_j||^2,
    q_pool^2 = (1/L) ||(1/J) sum_j e_j||^2,   q_sep^2 = (1/J) sum_j ||e_j||^2 / L_j,

(the paper's eq. 13, L = max L_j): nu = 0 fits every unit separately, nu = 1 fits their average only.
augsynth's ``multisynth_qp`` weighs the same two terms with sums over units in place of means, which
puts J times more weight on the pooled term for a given nu.

The default nu is the paper's heuristic as augsynth computes it: with the separate fits (nu = 0),
nu = ||sum_j e_j|| / sum_j ||e_j|| (pooled over unit-level imbalance, in [0, 1] by the triangle inequality).

Solver: block coordinate descent. With the other units' weights held, unit j's problem is a least
squares on the simplex, solved exactly by the active set of ``synthetic_weights.simplex_ls``:

    min (a + b) ||x_j + theta r_j - A_j gamma||^2 + lambda ||gamma||^2,
    a = nu / (L J^2),  b = (1 - nu) / (J L_j),  theta = a / (a + b),

with r_j the other units' summed imbalance at unit j's lags. Every step lowers the convex objective, and
the sweeps stop when a sweep lowers it by less than ``REL_TOL`` of its value. With nu = 0 the units
decouple and one sweep is the separate fits, each exactly ``simplex_ls(A_j'A_j, A_j'x_j)``.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from causalcli.models.synthetic_weights import simplex_ls

REL_TOL = 1e-12
MAX_SWEEPS = 2000


@dataclass(frozen=True)
class PooledWeights:
    gammas: np.ndarray  # J x N0, each row on the simplex
    nu: float
    imbalances: tuple[np.ndarray, ...]  # e_j, each over unit j's L_j lags (oldest first)
    q_pool: float
    q_sep: float
    objective: float
    sweeps: int


def _pooled_sum(imbalances: list[np.ndarray], L: int) -> np.ndarray:
    """sum_j e_j aligned on the last pre-period (lag 1 last)."""
    s = np.zeros(L)
    for e in imbalances:
        s[L - e.size:] += e
    return s


def measures(imbalances: list[np.ndarray]) -> tuple[float, float]:
    """(q_pool, q_sep) of the imbalances."""
    J, L = len(imbalances), max(e.size for e in imbalances)
    q_pool = float(np.sqrt(np.sum((_pooled_sum(imbalances, L) / J) ** 2) / L))
    q_sep = float(np.sqrt(sum(float(e @ e) / e.size for e in imbalances) / J))
    return q_pool, q_sep


def heuristic_nu(imbalances: list[np.ndarray]) -> float:
    """||sum_j e_j|| / sum_j ||e_j|| of the separate fits (0 when every unit is fitted exactly)."""
    L = max(e.size for e in imbalances)
    total = sum(float(np.linalg.norm(e)) for e in imbalances)
    return float(np.linalg.norm(_pooled_sum(imbalances, L)) / total) if total > 0 else 0.0


def _objective(imbalances: list[np.ndarray], gammas: np.ndarray, nu: float, lam: float) -> float:
    q_pool, q_sep = measures(imbalances)
    return nu * q_pool ** 2 + (1 - nu) * q_sep ** 2 + lam * float(np.sum(gammas ** 2))


def fit(targets: list[np.ndarray], donors: list[np.ndarray], nu: float, lam: float = 0.0,
        warm: np.ndarray | None = None) -> PooledWeights:
    """The weights for ``nu`` in [0, 1] and ridge ``lam`` >= 0. Units passing the same ``donors`` array
    object (a cohort) share its Gram matrix; ``warm`` (J x N0) starts the sweeps from other weights."""
    J, N0 = len(targets), donors[0].shape[1]
    L = max(x.size for x in targets)
    grams: dict[int, np.ndarray] = {}
    for A in donors:
        if id(A) not in grams:
            G = A.T @ A
            grams[id(A)] = G
    gammas = np.zeros((J, N0)) if warm is None else warm.copy()
    imbalances = [x - A @ g for x, A, g in zip(targets, donors, gammas)]
    coupled = nu > 0 and J > 1
    previous = _objective(imbalances, gammas, nu, lam) if warm is not None else np.inf
    sweeps = 0
    while sweeps < MAX_SWEEPS:
        sweeps += 1
        s = _pooled_sum(imbalances, L)
        for j, (x, A) in enumerate(zip(targets, donors)):
            Lj = x.size
            a, b = nu / (L * J * J), (1 - nu) / (J * Lj)
            theta = a / (a + b)
            target = x
            if coupled:
                r = s[L - Lj:] - imbalances[j]
                target = x + theta * r
            G = grams[id(A)]
            if lam > 0:
                G = G + (lam / (a + b)) * np.eye(N0)
            warm_j = gammas[j] if sweeps > 1 or warm is not None else None
            gammas[j] = simplex_ls(G, A.T @ target, warm=warm_j).w
            e = x - A @ gammas[j]
            if coupled:
                s[L - Lj:] += e - imbalances[j]
            imbalances[j] = e
        if not coupled:
            break
        value = _objective(imbalances, gammas, nu, lam)
        if previous - value <= REL_TOL * max(abs(value), 1e-300):
            previous = value
            break
        previous = value
    q_pool, q_sep = measures(imbalances)
    return PooledWeights(gammas, float(nu), tuple(imbalances), q_pool, q_sep,
                         _objective(imbalances, gammas, nu, lam), sweeps)


def fit_default_nu(targets: list[np.ndarray], donors: list[np.ndarray], lam: float = 0.0
                   ) -> tuple[PooledWeights, PooledWeights]:
    """The separate fits (nu = 0) and the fit at the heuristic nu, started from them."""
    separate = fit(targets, donors, 0.0, lam)
    nu = heuristic_nu(list(separate.imbalances))
    return separate, fit(targets, donors, nu, lam, warm=separate.gammas)
