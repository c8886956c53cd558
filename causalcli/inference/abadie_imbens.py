"""Abadie and Imbens (2016): the variance of matching on an estimated (logit) propensity score.

Matching's usual (Abadie-Imbens 2006) standard error treats the score as known. With a logit
score estimated by maximum likelihood, :func:`ai2016_ate_variance_reduction` gives what the
adjustment subtracts from the ATE variance and :func:`ai2016_att_terms` the pieces of the ATT
adjustment (the ATC is the ATT with the arms swapped). ``causalcli.designs.matching.design`` applies
them; ``docs/designs/matching.md`` says where and how they were checked.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np


def _nearest_in_arm(p: np.ndarray, arm: np.ndarray, L: int) -> np.ndarray:
    """For every unit, the input indices of the L units of ``arm`` nearest on ``p`` (ties by position)."""
    idx = np.flatnonzero(arm)
    order = np.argsort(p[idx], kind="stable")
    sidx, sp = idx[order], p[idx][order]
    n = sp.size
    L = min(L, n)
    # Units visited in score order: the binary searches and the gathers below then walk memory in
    # order (on a million units several times faster than in data order); each row is computed alone.
    by_p = np.argsort(p, kind="stable")
    q = p[by_p]
    pos = np.searchsorted(sp, q)
    win = pos[:, None] + np.arange(-L, L)
    inside = (win >= 0) & (win < n)
    wc = np.clip(win, 0, n - 1)
    d = np.where(inside, np.abs(sp[wc] - q[:, None]), np.inf)
    pick = np.argsort(d, axis=1, kind="stable")[:, :L]
    out = np.empty((p.size, L), dtype=sidx.dtype)
    out[by_p] = sidx[np.take_along_axis(wc, pick, axis=1)]
    return out


def ai2016_ate_variance_reduction(y: np.ndarray, treated: np.ndarray, X: np.ndarray, p: np.ndarray,
                                  L: int = 4, information: np.ndarray | None = None) -> float:
    """``c' I^-1 c / N``: what the Abadie-Imbens (2016) adjustment subtracts from the ATE variance.

    Abadie and Imbens (2016), Econometrica 84(2), Theorem 2 and section 4: with a
    logistic score ``p = F(X'theta)`` estimated by maximum likelihood, matching
    on the estimated score has asymptotic variance ``sigma^2 - c' I^-1 c``, where
    ``I = E[p (1 - p) X X']`` (the logit information, intercept included) and
    ``c = E[(cov(X, mu(1, X) | p) / p + cov(X, mu(0, X) | p) / (1 - p)) p (1 - p)]``.
    The conditional covariances are estimated as the paper proposes, by the
    sample covariance of ``(X, Y)`` over the ``L`` units of each arm nearest on
    the estimated score.
    """
    n = y.size
    c = ai2016_ate_c(y, treated, X, p, L)
    Xi = np.column_stack([np.ones(n), X])
    info = (Xi * (p * (1.0 - p))[:, None]).T @ Xi / n if information is None else information
    return float(c @ np.linalg.solve(info, c)) / n


def ai2016_ate_c(y: np.ndarray, treated: np.ndarray, X: np.ndarray, p: np.ndarray, L: int = 4) -> np.ndarray:
    """The ATE's ``c`` of :func:`ai2016_ate_variance_reduction` (intercept first, its entry 0): the limit
    covariance of the known-score estimator with the logit score, the means taken over the rows given."""
    t = np.asarray(treated, dtype=bool)
    c = np.zeros(X.shape[1] + 1)
    for arm, denom in ((t, p), (~t, 1.0 - p)):
        nb = _nearest_in_arm(p, arm, L)  # n x L
        Xn, yn = X[nb], y[nb]  # n x L x k, n x L
        xd = Xn - Xn.mean(axis=1, keepdims=True)
        yd = yn - yn.mean(axis=1, keepdims=True)
        cov = np.einsum("nlk,nl->nk", xd, yd) / (nb.shape[1] - 1)  # n x k (intercept: 0)
        c[1:] += np.mean(cov * (p * (1.0 - p) / denom)[:, None], axis=0)
    return c


def _mean_neighbour_cov(X: np.ndarray, y: np.ndarray, nb: np.ndarray, ybar: np.ndarray,
                        w: np.ndarray) -> np.ndarray:
    """``mean_i w_i cov_i(X, Y)`` with ``cov_i`` the sample covariance over unit i's neighbours ``nb[i]``.

    ``cov_i = sum_l X_il (y_il - ybar_i) / (L - 1)``, so the weighted mean is ``X' g / n`` with
    ``g_j`` summing ``w_i (y_j - ybar_i) / (L - 1)`` over every ``(i, l)`` with ``nb[i, l] = j``:
    one pass over the covariates instead of an ``n x L x k`` array.
    """
    n, L = nb.shape
    g = np.bincount(nb.ravel(), weights=(w[:, None] * (y[nb] - ybar[:, None])).ravel(), minlength=X.shape[0])
    return X.T @ g / ((L - 1) * n)


@dataclass(frozen=True)
class AI2016Terms:
    """Pieces of the Abadie-Imbens (2016) ATT adjustment (see :func:`ai2016_att_terms`)."""

    adjustment: float  # added to the variance of the estimate: (dtau' I^-1 dtau - c' I^-1 c) / N
    c: np.ndarray  # limit covariance of sqrt(N) (estimate - ATT) with the logit score, intercept first
    dtau: np.ndarray  # derivative of the ATT with respect to the logit coefficients
    information: np.ndarray  # logit information per observation


def ai2016_att_terms(y: np.ndarray, treated: np.ndarray, X: np.ndarray, p: np.ndarray, estimate: float,
                     information: np.ndarray, L: int = 4) -> AI2016Terms:
    """Abadie-Imbens (2016) adjustment of the ATT variance for a logit score estimated by maximum likelihood.

    Abadie and Imbens (2016), Econometrica 84(2), Theorem 2: matching on the
    estimated score ``F(X'theta_hat)`` has asymptotic variance

        sigma_t^2 - c_t' I^-1 c_t + dtau' I^-1 dtau

    with ``sigma_t^2`` the variance when the score is known (Abadie-Imbens 2006),
    ``I`` the logit information, ``f = p (1 - p)`` the logistic density and
    ``E[p]`` the treated share:

    * ``dtau = E[f x (mu(1, X) - mu(0, X) - ATT)] / E[p]``: the ATT moves with the
      assignment model (a different theta treats different units);
    * ``c_t = E[f x (mu1bar(p) - mu0bar(p) - ATT)] / E[p]
      + E[f (cov(X, mu(1, X) | p) + p / (1 - p) cov(X, mu(0, X) | p))] / E[p]``:
      the covariance of the known-score estimator with the logit score
      ``x (W - p)``, where ``muwbar(p) = E[Y | W = w, p]``.

    Both have the term ``E[f x (mu1bar - mu0bar - ATT)]``; ``mu(1, X) - mu(0, X)``
    is not observed, so ``dtau`` is written as that term plus
    ``E[f (cov(X, mu(1, X) | p) - cov(X, mu(0, X) | p))] / E[p]``
    (``E[f x g(X)] = E[f x gbar(p)] + E[f cov(X, g | p)]``). The conditional means
    and covariances given the score are estimated as the paper proposes, from the
    ``L`` units of each arm nearest on the estimated score (sample mean of ``Y``,
    sample covariance of ``(X, Y)``). The adjustment can have either sign.

    For the ATC call it with the arms swapped: ``~treated``, ``1 - p`` and
    ``-estimate`` (the logit of the control probability has coefficients
    ``-theta`` and the same information).
    """
    t = np.asarray(treated, dtype=bool)
    X = np.asarray(X, dtype=np.float64).reshape(t.size, -1)
    n = t.size
    f = p * (1.0 - p)
    share = float(t.mean())
    xi = np.column_stack([np.ones(n), X])
    means, nbs = [], []
    for arm in (t, ~t):
        nb = _nearest_in_arm(p, arm, L)
        nbs.append(nb)
        means.append(y[nb].mean(axis=1))
    common = (xi * (f * (means[0] - means[1] - estimate))[:, None]).mean(axis=0) / share
    cov_c = np.zeros(xi.shape[1])
    cov_d = np.zeros(xi.shape[1])
    cov1 = _mean_neighbour_cov(X, y, nbs[0], means[0], f)
    cov_c[1:] = (cov1 + _mean_neighbour_cov(X, y, nbs[1], means[1], f * p / (1.0 - p))) / share
    cov_d[1:] = (cov1 - _mean_neighbour_cov(X, y, nbs[1], means[1], f)) / share
    c = common + cov_c
    dtau = common + cov_d
    adj = (float(dtau @ np.linalg.solve(information, dtau)) - float(c @ np.linalg.solve(information, c))) / n
    return AI2016Terms(adjustment=adj, c=c, dtau=dtau, information=information)
