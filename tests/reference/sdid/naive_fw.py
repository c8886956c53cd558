"""synthdid's sc.weight.fw written as plainly as its definition, to hold the fast solver of
causalcli.models.synthdid_weights to: same iterates, same stopping rule, products recomputed each step."""

from __future__ import annotations

import numpy as np


def naive_frank_wolfe(M, zeta, intercept, start, min_decrease, max_iter):
    if intercept:
        M = M - M.mean(axis=0)
    n, k = M.shape[0], M.shape[1] - 1
    A, b = M[:, :k], M[:, k]
    x = np.full(k, 1.0 / k) if start is None else np.array(start, dtype=float)
    eta = n * zeta**2
    vals = []
    while len(vals) < max_iter and (len(vals) < 2 or vals[-2] - vals[-1] > min_decrease**2):
        Ax = A @ x
        half_grad = A.T @ (Ax - b) + eta * x
        i = int(np.argmin(half_grad))
        d = -x.copy()
        d[i] += 1.0
        if np.any(d != 0):
            d_err = A[:, i] - Ax
            step = -(half_grad @ d) / (d_err @ d_err + eta * (d @ d))
            x = x + min(1.0, max(0.0, step)) * d
        err = A @ x - b
        vals.append(zeta**2 * (x @ x) + err @ err / n)
    return x, len(vals)
