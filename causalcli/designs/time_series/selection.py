"""The spike-and-slab prior on the control coefficients, exact given the variance parameters.

CausalImpact's static regression (bsts with BoomSpikeSlab's ``SpikeSlabPrior``): each control is in
the model with prior probability pi = expected model size / number of controls (CausalImpact sets
the expected model size to 3; capped at 1), independently; the coefficients of the included set S
have the Zellner-type slab b_S ~ N(0, V_S) with precision

    V^-1 = kappa / n [(1 - w) X~'X~ + w diag(X~'X~)],   V_S^-1 its S block,

kappa = ``prior_information_weight`` (0.01: the prior is worth a hundredth of an observation),
w = diagonal shrinkage 0.5 (BoomSpikeSlab's defaults). bsts scales X'X by the residual variance;
here X~ is the controls through the state model's filter, standardised by the innovation sd
(kalman.py), which is that scaling for a model with correlated errors, and with the constant and
seasonal effects (flat prior, as the diffuse states they replace) projected out.

Given the variances, y~ = W~ beta + N(0, I) is a Gaussian linear model, so everything is closed
form (Brown, Vannucci and Fearn 1998; George and McCulloch 1997): with G = X~'X~ and g = X~'y~
after the projection, A_S = G_SS + V_S^-1,

    log p(y | S) = const + 1/2 [log |V_S^-1| - log |A_S| + g_S' A_S^-1 g_S]
    b_S | S, y ~ N(A_S^-1 g_S, A_S^-1)      (jointly with the flat coefficients: ``draw_beta``)

The posterior over subsets is enumerated (2^k closed forms, batched by size) for up to
``ENUMERATE_UP_TO`` controls; above that a seeded Gibbs sampler flips one indicator at a time from
its exact conditional.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from itertools import combinations
from typing import TYPE_CHECKING

import numpy as np

if TYPE_CHECKING:  # pragma: no cover
    from causalcli.designs.time_series.kalman import Filtered

ENUMERATE_UP_TO = 12
GIBBS_BURN = 20  # sweeps before the first kept state, for each parameter draw (warm-started)
GIBBS_SWEEPS = 500  # kept sweeps for the inclusion probabilities reported at the MLE
CAUSALIMPACT_MODEL_SIZE = 3.0
DIAGONAL_SHRINKAGE = 0.5


@dataclass(frozen=True)
class SlabPrior:
    inclusion: float | None  # prior inclusion probability; None: no prior, every control in with a flat prior
    information_weight: float  # kappa
    diagonal_shrinkage: float = DIAGONAL_SHRINKAGE

    @property
    def search(self) -> str:
        return "none" if self.inclusion is None or self.inclusion >= 1 else "enumeration"


def prior_for(k: int, expected_model_size: float | None, information_weight: float) -> SlabPrior:
    if expected_model_size is None or k == 0:
        return SlabPrior(None, information_weight)
    return SlabPrior(min(1.0, expected_model_size / k), information_weight)


@dataclass
class Regression:
    """The sufficient statistics of y~ on W~ = [flat columns (d), controls (k)] at one parameter vector."""

    d: int
    Gfull: np.ndarray
    gfull: np.ndarray
    G: np.ndarray  # controls' Gram after projecting out the flat columns
    g: np.ndarray
    precision: np.ndarray  # the slab's V^-1 (zeros without a prior)
    prior: SlabPrior
    _seen: dict = field(default_factory=dict)  # the Gibbs sampler revisits the same few subsets

    @classmethod
    def of(cls, f: "Filtered", d: int, prior: SlabPrior) -> "Regression":
        Gfull = f.U.T @ f.U
        gfull = f.U.T @ f.u
        G0, Gx0 = Gfull[:d, :d], Gfull[d:, :d]
        proj = np.linalg.solve(G0, Gx0.T).T if d else np.zeros((Gfull.shape[0] - d, 0))
        G = Gfull[d:, d:] - proj @ Gx0.T
        g = gfull[d:] - proj @ gfull[:d]
        if prior.inclusion is None:
            precision = np.zeros_like(G)
        else:
            w = prior.diagonal_shrinkage
            precision = prior.information_weight / f.u.size * ((1 - w) * G + w * np.diag(np.diag(G)))
        return cls(d, Gfull, gfull, G, g, precision, prior)

    @property
    def k(self) -> int:
        return self.G.shape[0]

    def log_posterior(self, subsets: np.ndarray) -> np.ndarray:
        """Unnormalised log p(S | y) for rows of ``subsets`` (bool (M, k)), all of one size."""
        size = int(subsets[0].sum())
        pi = self.prior.inclusion
        base = size * np.log(pi) + (self.k - size) * np.log1p(-pi) if 0 < pi < 1 else 0.0
        if size == 0:
            return np.full(subsets.shape[0], base)
        idx = np.nonzero(subsets)[1].reshape(-1, size)
        Vi = self.precision[idx[:, :, None], idx[:, None, :]]
        A = self.G[idx[:, :, None], idx[:, None, :]] + Vi
        gS = self.g[idx]
        L = np.linalg.cholesky(A)
        z = np.linalg.solve(L, gS[:, :, None])[:, :, 0]
        logdet_A = 2 * np.sum(np.log(np.diagonal(L, axis1=1, axis2=2)), axis=1)
        logdet_V = np.linalg.slogdet(Vi)[1]
        return base + 0.5 * (logdet_V - logdet_A + np.sum(z * z, axis=1))

    def _log_posterior_one(self, subset: np.ndarray) -> float:
        """``log_posterior`` of one subset, without the batching (the Gibbs sampler's inner loop)."""
        key = subset.tobytes()
        if key not in self._seen:
            self._seen[key] = self._log_posterior_uncached(subset)
        return self._seen[key]

    def _log_posterior_uncached(self, subset: np.ndarray) -> float:
        idx = np.flatnonzero(subset)
        size = idx.size
        pi = self.prior.inclusion
        value = size * np.log(pi) + (self.k - size) * np.log1p(-pi)
        if size:
            sub = np.ix_(idx, idx)
            L_V = np.linalg.cholesky(self.precision[sub])
            L = np.linalg.cholesky(self.G[sub] + self.precision[sub])
            z = np.linalg.solve(L, self.g[idx])
            value += float(np.sum(np.log(np.diag(L_V))) - np.sum(np.log(np.diag(L))) + 0.5 * z @ z)
        return float(value)

    def posterior(self, rng: np.random.Generator, sweeps: int, start: np.ndarray | None = None
                  ) -> tuple[np.ndarray, np.ndarray, np.ndarray | None]:
        """(subsets (M, k) bool, their probabilities, the Gibbs chain's last state or None)."""
        k = self.k
        if self.prior.search == "none":
            return np.ones((1, k), dtype=bool), np.ones(1), None
        if k <= ENUMERATE_UP_TO:
            blocks, logs = [], []
            for size in range(k + 1):
                rows = np.zeros((int(_choose(k, size)), k), dtype=bool)
                for r, combo in enumerate(combinations(range(k), size)):
                    rows[r, list(combo)] = True
                blocks.append(rows)
                logs.append(self.log_posterior(rows))
            subsets, log_p = np.vstack(blocks), np.concatenate(logs)
            p = np.exp(log_p - log_p.max())
            return subsets, p / p.sum(), None
        return self._gibbs(rng, sweeps, start)

    def _gibbs(self, rng: np.random.Generator, sweeps: int, start: np.ndarray | None):
        k = self.k
        state = np.ones(k, dtype=bool) if start is None else start.copy()
        kept = np.empty((sweeps, k), dtype=bool)
        current = self._log_posterior_one(state)
        for s in range(GIBBS_BURN + sweeps):
            for j in rng.permutation(k):
                flip = state.copy()
                flip[j] = not flip[j]
                other = self._log_posterior_one(flip)
                if rng.random() < 1.0 / (1.0 + np.exp(min(current - other, 700.0))):
                    state, current = flip, other
            if s >= GIBBS_BURN:
                kept[s - GIBBS_BURN] = state
        unique, counts = np.unique(kept, axis=0, return_counts=True)
        return unique, counts / sweeps, state

    def joint(self, subset: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """(columns, posterior mean, posterior precision) of [flat columns, controls in ``subset``]."""
        idx = np.concatenate([np.arange(self.d), self.d + np.nonzero(subset)[0]])
        A = self.Gfull[np.ix_(idx, idx)].copy()
        sel = np.nonzero(subset)[0]
        A[self.d:, self.d:] += self.precision[np.ix_(sel, sel)]
        return idx, np.linalg.solve(A, self.gfull[idx]), A

    def moments(self, subsets: np.ndarray, probs: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Posterior mean and covariance of the full coefficient vector, mixed over the subsets (those
        holding all but 1e-12 of the probability)."""
        p_total = self.d + self.k
        order = np.argsort(-probs)
        keep = order[:int(np.searchsorted(np.cumsum(probs[order]), 1 - 1e-12)) + 1]
        weights = probs[keep] / probs[keep].sum()
        mean = np.zeros(p_total)
        second = np.zeros((p_total, p_total))
        for w, i in zip(weights, keep):
            idx, m, A = self.joint(subsets[i])
            full = np.zeros(p_total)
            full[idx] = m
            cov = np.zeros((p_total, p_total))
            cov[np.ix_(idx, idx)] = np.linalg.inv(A)
            mean += w * full
            second += w * (cov + np.outer(full, full))
        return mean, second - np.outer(mean, mean)

    def draw_beta(self, subsets: np.ndarray, probs: np.ndarray, reps: int, rng: np.random.Generator
                  ) -> np.ndarray:
        """``reps`` draws of the full coefficient vector: a subset from its posterior, then b | S."""
        which = rng.choice(probs.size, size=reps, p=probs)
        out = np.zeros((reps, self.d + self.k))
        for i in np.unique(which):
            rows = np.nonzero(which == i)[0]
            idx, m, A = self.joint(subsets[i])
            L = np.linalg.cholesky(A)
            z = rng.standard_normal((rows.size, idx.size))
            out[np.ix_(rows, idx)] = m + np.linalg.solve(L.T, z.T).T  # cov A^-1 = L^-T L^-1
        return out


def _choose(n: int, r: int) -> int:
    from math import comb

    return comb(n, r)
