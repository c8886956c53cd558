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

with r_j the other units' summed imbalance at unit j's lags. Every step lowers the convex objective, but
descent by blocks crawls when the pooled term couples the units strongly (nu near 1): ``SEED_SWEEPS``
sweeps only seed an active set on the whole problem (``_polish``), the KKT system of every unit's
positive weights at once solved exactly, donors added or dropped until every multiplier has its sign,
which ends at the optimum to rounding (should it not settle, the sweeps go on until one lowers the
objective by less than ``SWEEP_TOL`` of it). With nu = 0 the units decouple and one sweep is the
separate fits, each exactly ``simplex_ls(A_j'A_j, A_j'x_j)``.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from causalcli.models.synthetic_weights import simplex_ls

SWEEP_TOL = 1e-12
SEED_SWEEPS = 2  # block sweeps that seed the active set of _polish
MAX_SWEEPS = 5000
MAX_POLISH_STEPS = 500


@dataclass(frozen=True)
class PooledWeights:
    gammas: np.ndarray  # J x N0, each row on the simplex
    nu: float
    imbalances: tuple[np.ndarray, ...]  # e_j, each over unit j's L_j lags (oldest first)
    q_pool: float
    q_sep: float
    objective: float
    sweeps: int


def _pooled_sum(imbalances: list[np.ndarray], L: int, counts: np.ndarray | None = None) -> np.ndarray:
    """sum_j n_j e_j aligned on the last pre-period (lag 1 last); n_j = 1 but for cohorts standing for
    their units (``counts``)."""
    s = np.zeros(L)
    for j, e in enumerate(imbalances):
        s[L - e.size:] += e if counts is None else counts[j] * e
    return s


def measures(imbalances: list[np.ndarray], counts: np.ndarray | None = None) -> tuple[float, float]:
    """(q_pool, q_sep) of the imbalances."""
    n = np.ones(len(imbalances)) if counts is None else counts
    J, L = float(n.sum()), max(e.size for e in imbalances)
    q_pool = float(np.sqrt(np.sum((_pooled_sum(imbalances, L, counts) / J) ** 2) / L))
    q_sep = float(np.sqrt(sum(k * float(e @ e) / e.size for k, e in zip(n, imbalances)) / J))
    return q_pool, q_sep


def heuristic_nu(imbalances: list[np.ndarray]) -> float:
    """||sum_j e_j|| / sum_j ||e_j|| of the separate fits (0 when every unit is fitted exactly)."""
    L = max(e.size for e in imbalances)
    total = sum(float(np.linalg.norm(e)) for e in imbalances)
    return float(np.linalg.norm(_pooled_sum(imbalances, L)) / total) if total > 0 else 0.0


def _objective(imbalances: list[np.ndarray], gammas: np.ndarray, nu: float, lam: float,
               counts: np.ndarray | None = None) -> float:
    q_pool, q_sep = measures(imbalances, counts)
    ridge = np.sum(gammas ** 2, axis=1)
    return nu * q_pool ** 2 + (1 - nu) * q_sep ** 2 + lam * float(ridge.sum() if counts is None else counts @ ridge)


def fit(targets: list[np.ndarray], donors: list[np.ndarray], nu: float, lam: float = 0.0,
        warm: np.ndarray | None = None) -> PooledWeights:
    """The weights for ``nu`` in [0, 1] and ridge ``lam`` >= 0. Units passing the same ``donors`` array
    object (a cohort) share its Gram matrix; ``warm`` (J x N0) starts the sweeps from other weights.

    At nu = 1 a cohort enters only through its mean path: its units get one weight vector, that of the
    cohort's mean path counted n_c times (the optimum when lam > 0, one of the equal optima when lam = 0),
    which shrinks the problem to one block a cohort, and to one exact fit for a single cohort."""
    J = len(targets)
    cohorts = list(dict.fromkeys(id(A) for A in donors))
    if nu >= 1 and len(cohorts) < J:
        members = [[j for j, A in enumerate(donors) if id(A) == key] for key in cohorts]
        counts = np.asarray([len(m) for m in members], dtype=float)
        means = [np.mean([targets[j] for j in m], axis=0) for m in members]
        start = None if warm is None else np.asarray([warm[m].mean(axis=0) for m in members])
        weights, sweeps = _solve(means, [donors[m[0]] for m in members], counts, nu, lam, start)
        gammas = np.empty((J, weights.shape[1]))
        for m, w in zip(members, weights):
            gammas[m] = w
    else:
        gammas, sweeps = _solve(targets, donors, np.ones(J), nu, lam, warm)
    imbalances = [x - A @ g for x, A, g in zip(targets, donors, gammas)]
    q_pool, q_sep = measures(imbalances)
    return PooledWeights(gammas, float(nu), tuple(imbalances), q_pool, q_sep,
                         _objective(imbalances, gammas, nu, lam), sweeps)


def _solve(targets: list[np.ndarray], donors: list[np.ndarray], counts: np.ndarray, nu: float, lam: float,
           warm: np.ndarray | None) -> tuple[np.ndarray, int]:
    """The weights (one row a block, block j standing for ``counts[j]`` units) and the sweeps made."""
    J, N0 = len(targets), donors[0].shape[1]
    grams = {id(A): A.T @ A for A in donors}
    gammas = np.zeros((J, N0)) if warm is None else warm.copy()
    imbalances = [x - A @ g for x, A, g in zip(targets, donors, gammas)]
    state = (targets, donors, counts, grams, gammas, imbalances, nu, lam)
    if nu == 0 or J == 1:  # no coupling: one exact sweep
        return gammas, _sweeps(*state, 1, warm is not None)
    sweeps = _sweeps(*state, SEED_SWEEPS, warm is not None)
    polished = _polish(targets, donors, counts, gammas, nu, lam)
    if polished is not None:
        trial = [x - A @ g for x, A, g in zip(targets, donors, polished)]
        if _objective(trial, polished, nu, lam, counts) <= _objective(imbalances, gammas, nu, lam, counts):
            return polished, sweeps
    # the active set did not settle: descend to convergence instead
    return gammas, sweeps + _sweeps(*state, MAX_SWEEPS, True)


def _sweeps(targets: list[np.ndarray], donors: list[np.ndarray], counts: np.ndarray, grams: dict[int, np.ndarray],
            gammas: np.ndarray, imbalances: list[np.ndarray], nu: float, lam: float, limit: int, warm: bool) -> int:
    """Up to ``limit`` sweeps of exact block steps, ``gammas`` and ``imbalances`` updated in place; stops
    when a sweep lowers the objective by less than ``SWEEP_TOL`` of it. Returns the sweeps made."""
    N0 = gammas.shape[1]
    J, L = float(counts.sum()), max(x.size for x in targets)
    previous = _objective(imbalances, gammas, nu, lam, counts) if warm else np.inf
    for sweep in range(1, limit + 1):
        s = _pooled_sum(imbalances, L, counts)
        for j, (x, A, n) in enumerate(zip(targets, donors, counts)):
            # block j over n: a n ||x + r / n - A g||^2 + b ||x - A g||^2 + lam ||g||^2, r the other blocks' sum
            a, b = nu * n / (L * J * J), (1 - nu) / (J * x.size)
            target = x + (a / (a + b)) * (s[L - x.size:] - n * imbalances[j]) / n if nu > 0 else x
            G = grams[id(A)] + (lam / (a + b)) * np.eye(N0) if lam > 0 else grams[id(A)]
            gammas[j] = simplex_ls(G, A.T @ target, warm=gammas[j] if warm or sweep > 1 else None).w
            e = x - A @ gammas[j]
            s[L - x.size:] += n * (e - imbalances[j])
            imbalances[j] = e
        value = _objective(imbalances, gammas, nu, lam, counts)
        if previous - value <= SWEEP_TOL * max(abs(value), 1e-300):
            return sweep
        previous = value
    return limit


def fit_default_nu(targets: list[np.ndarray], donors: list[np.ndarray], lam: float = 0.0
                   ) -> tuple[PooledWeights, PooledWeights]:
    """The separate fits (nu = 0) and the fit at the heuristic nu, started from them."""
    separate = fit(targets, donors, 0.0, lam)
    nu = heuristic_nu(list(separate.imbalances))
    return separate, fit(targets, donors, nu, lam, warm=separate.gammas)


def _polish(targets: list[np.ndarray], donors: list[np.ndarray], counts: np.ndarray, gammas: np.ndarray, nu: float,
            lam: float) -> np.ndarray | None:
    """The optimum from ``gammas`` by a primal active set on all units' weights at once (None if it fails).

    Half the objective is 0.5 z'Hz - c'z over z = (gamma_1, ..., gamma_J) with, for donor columns
    C_j = A_j placed at unit j's lags (zeros above),
    H_jk = a C_j'C_k + [j = k] (b_j A_j'A_j + lambda I) and c_j = C_j'(a sum_k P_k x_k) + b_j A_j'x_j;
    a block standing for n_j units has C_j scaled by n_j and its b_j and lambda terms by n_j.
    """
    J, N0 = gammas.shape
    total, L = float(counts.sum()), max(x.size for x in targets)
    a = nu / (L * total * total)
    b = [n * (1 - nu) / (total * x.size) for n, x in zip(counts, targets)]
    ridge = lam * counts
    placed = [n * np.vstack([np.zeros((L - A.shape[0], N0)), A]) for n, A in zip(counts, donors)]
    X = _pooled_sum(list(targets), L, counts)
    active = [list(np.flatnonzero(g > 0)) for g in gammas]
    w = gammas.copy()

    def gradient(z: np.ndarray) -> np.ndarray:
        e = [x - A @ g for x, A, g in zip(targets, donors, z)]
        s = _pooled_sum(e, L, counts)
        return np.asarray([-(a * C.T @ s + bj * A.T @ ej) + rj * g
                           for C, A, ej, bj, rj, g in zip(placed, donors, e, b, ridge, z)])

    def kkt(sets: list[list[int]]) -> tuple[np.ndarray, np.ndarray]:
        cols = [C[:, p] for C, p in zip(placed, sets)]
        sizes = [len(p) for p in sets]
        n = sum(sizes)
        M = np.zeros((n + J, n + J))
        rhs = np.zeros(n + J)
        Cp = np.hstack(cols)
        M[:n, :n] = a * (Cp.T @ Cp)
        at = 0
        for j, (p, A) in enumerate(zip(sets, donors)):
            block = slice(at, at + len(p))
            Ap = A[:, p]
            M[block, block] += b[j] * (Ap.T @ Ap) + ridge[j] * np.eye(len(p))
            rhs[block] = a * (cols[j].T @ X) + b[j] * (Ap.T @ targets[j])
            M[block, n + j] = M[n + j, block] = 1.0
            rhs[n + j] = 1.0
            at += len(p)
        scale = max(float(np.max(np.abs(np.diag(M)[:n]))), 1e-300)
        M[np.arange(n), np.arange(n)] += 1e-13 * scale  # a singular block (no ridge, nu = 1): the least-norm side
        try:
            sol = np.linalg.solve(M, rhs)
        except np.linalg.LinAlgError:
            sol = np.linalg.lstsq(M, rhs, rcond=None)[0]
        z = np.zeros((J, N0))
        at = 0
        for j, p in enumerate(sets):
            z[j, p] = sol[at:at + len(p)]
            at += len(p)
        return z, -sol[n:]  # multipliers of the sums, signed as the gradient

    for _ in range(MAX_POLISH_STEPS):
        z, mu = kkt(active)
        mask = np.zeros((J, N0), dtype=bool)
        for j, p in enumerate(active):
            mask[j, p] = True
        if np.any(z[mask] <= 0):  # step back to the boundary and drop the weights reaching zero
            neg = mask & (z <= 0)
            step = float(np.min(w[neg] / (w[neg] - z[neg])))
            w = np.where(mask, w + step * (z - w), 0.0)
            active = [[int(i) for i in p if w[j, i] > 1e-14] for j, p in enumerate(active)]
            if any(not p for p in active):
                return None
            continue
        w = z
        g = gradient(w)
        reduced = g - mu[:, None]
        reduced[mask] = 0.0
        j, i = np.unravel_index(int(np.argmin(reduced)), reduced.shape)
        scale = max(float(np.max(np.abs(g))), 1e-300)
        if reduced[j, i] >= -1e-10 * scale:
            w = np.clip(w, 0.0, None)
            return w / w.sum(axis=1, keepdims=True)
        active[j].append(int(i))
    return None
