"""The augmented synthetic control with a ridge outcome model (Ben-Michael, Feller and Rothstein 2021).

As augsynth's ``progfunc = "Ridge", scm = TRUE`` without covariates: donor weights
``w_scm`` on the simplex fit the treated unit's pre-period outcome path; a ridge
regression of the donors' outcomes on their centred pre-period paths then
corrects the remaining imbalance,

    w_aug = w_scm + X_c (X_c' X_c + lambda I)^{-1} (x_1c - X_c' w_scm),

where ``X_c`` (donors x pre-periods) and ``x_1c`` are centred by the donor mean.
The correction sums to zero, so ``w_aug`` sums to one but may be negative
(extrapolation). Without a given penalty, ``lambda`` is chosen on a log grid from
``sigma_max^2`` down to ``1e-8 sigma_max^2`` (20 values) by forward validation
over the pre-period (fit on periods before t, predict t) with the one-standard-
error rule, in the manner of augsynth's ``cv_lambda``.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from causalcli.models.synthetic_weights import simplex_ls_rows

N_LAMBDA = 20
LAMBDA_MIN_RATIO = 1e-8


@dataclass(frozen=True)
class RidgeAscm:
    w: np.ndarray
    w_scm: np.ndarray
    lambda_: float
    lambda_source: str


def _weights(y1: np.ndarray, Y0: np.ndarray, lambdas: np.ndarray) -> tuple[np.ndarray, list[np.ndarray]]:
    """SCM weights and the augmented weights for each penalty (Y0: periods x donors)."""
    w_scm = simplex_ls_rows(Y0, y1).w
    mean = Y0.mean(axis=1)
    Xc = (Y0 - mean[:, None]).T  # donors x periods
    r = (y1 - mean) - Xc.T @ w_scm
    # (Xc'Xc + lam I)^{-1} through the SVD of Xc, for every lam at once
    U, s, Vt = np.linalg.svd(Xc, full_matrices=False)
    rv = Vt @ r
    out = []
    for lam in lambdas:
        out.append(w_scm + U @ (s / (s * s + lam) * rv))
    return w_scm, out


def lambda_grid(Y0: np.ndarray) -> np.ndarray:
    Xc = (Y0 - Y0.mean(axis=1)[:, None]).T
    smax = float(np.linalg.svd(Xc, compute_uv=False)[0]) if Xc.size else 1.0
    top = max(smax * smax, 1e-12)
    return np.exp(np.linspace(np.log(top), np.log(top * LAMBDA_MIN_RATIO), N_LAMBDA))


def fit_ridge_ascm(y1: np.ndarray, Y0: np.ndarray, lambda_: float | None = None, cv: bool = True) -> RidgeAscm:
    """Ridge ASCM on the pre-period outcomes ``y1`` (T0) and ``Y0`` (T0 x donors)."""
    if lambda_ is not None or not cv:
        lam = float(lambda_) if lambda_ is not None else float(lambda_grid(Y0)[N_LAMBDA // 2])
        w_scm, ws = _weights(y1, Y0, np.array([lam]))
        return RidgeAscm(ws[0], w_scm, lam, "given" if lambda_ is not None else "grid midpoint")
    lambdas = lambda_grid(Y0)
    T0 = y1.size
    errors = []
    for t in range(2, T0):
        _, ws = _weights(y1[:t], Y0[:t], lambdas)
        errors.append([(y1[t] - Y0[t] @ w) ** 2 for w in ws])
    if not errors:
        lam = float(lambdas[N_LAMBDA // 2])
        source = "grid midpoint (too few pre-periods to cross-validate)"
    else:
        E = np.asarray(errors)
        mean = E.mean(axis=0)
        se = E.std(axis=0, ddof=1) / np.sqrt(E.shape[0]) if E.shape[0] > 1 else np.zeros_like(mean)
        best = int(np.argmin(mean))
        ok = np.flatnonzero(mean <= mean[best] + se[best])
        lam = float(lambdas[ok].max())
        source = f"forward validation over {E.shape[0]} pre-periods, one-standard-error rule"
    w_scm, ws = _weights(y1, Y0, np.array([lam]))
    return RidgeAscm(ws[0], w_scm, lam, source)
