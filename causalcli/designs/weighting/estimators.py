"""The weighting estimators on fitted nuisances: Hajek IPW with its influence function (the propensity
score's estimation accounted for through the stacked estimating equations) and AIPW's scores; the
formulas are in ``design.py``'s docstring. ``segments.py`` runs them on a segment's rows."""

from __future__ import annotations

import math
from typing import Any

import numpy as np

from causalcli.errors import EstimationError

__all__ = ["ipw_weights", "ipw", "logistic_residual", "aipw_score", "aipw"]


def ipw_weights(e: np.ndarray, t: np.ndarray, estimand: str) -> tuple[np.ndarray, np.ndarray]:
    """Per-unit weight and its derivative in the logit of ``e`` (``estimand`` ate/att/atc/ato)."""
    odds = e / (1.0 - e)
    if estimand == "ate":
        w = np.where(t, 1.0 / e, 1.0 / (1.0 - e))
        dw = np.where(t, -(1.0 - e) / e, odds)
    elif estimand == "att":
        w = np.where(t, 1.0, odds)
        dw = np.where(t, 0.0, odds)
    elif estimand == "atc":
        w = np.where(t, 1.0 / odds, 1.0)
        dw = np.where(t, -1.0 / odds, 0.0)
    elif estimand == "ato":
        w = np.where(t, 1.0 - e, e)
        dw = np.where(t, -e * (1.0 - e), e * (1.0 - e))
    else:  # pragma: no cover - guarded by the spec
        raise ValueError(estimand)
    return w, dw


def ipw(y: np.ndarray, t: np.ndarray, e: np.ndarray, estimand: str, Z: np.ndarray | None = None,
        keep: np.ndarray | None = None, s: np.ndarray | None = None) -> dict[str, Any]:
    """Hajek IPW effect with its influence-function SE.

    ``Z`` is the logistic design *with* its intercept column: when given, the
    SE accounts for the estimation of the propensity score (stacked estimating
    equations); without it the weights are treated as known. ``keep`` (trim)
    restricts the weighted means to some units while the propensity score
    stays fitted on all of them (a segment's effect is this with ``keep`` its kept rows).
    ``s``: the observation (probability) weights, every estimating equation multiplied by them: the means
    weighted by ``s w``, the logistic score (fitted with them) and its information by ``s``.
    ``influence``: each unit's term of the influence function, scaled so that ``std_error`` is its norm
    (with ``Z``; the weights-known SE adds svyglm's n / (n - 1)): ``influence_known``, zero outside ``keep``,
    plus ``(Z @ correction) * s (t - e)``, the logistic score's term (``correction`` None without ``Z``).
    """
    if keep is None:
        keep = np.ones(t.size, dtype=bool)
    w, dw, tk, ck, s1, s0, mu1, mu0 = _hajek_means(y, t, e, estimand, keep, s)
    r1 = np.where(tk, y - mu1, 0.0)
    r0 = np.where(ck, y - mu0, 0.0)
    phi_known = w * r1 / s1 - w * r0 / s0
    n = int(keep.sum())
    se_known = math.sqrt(n / (n - 1) * float(np.dot(phi_known, phi_known)))  # svyglm's sandwich
    se, phi, a = se_known, phi_known, None
    if Z is not None:
        from causalcli.runtime.threads import single_threaded_blas

        with single_threaded_blas():  # thin (n x k) products: threads only spin
            v = e * (1.0 - e) if s is None else s * e * (1.0 - e)
            Zw = Z * np.sqrt(v)[:, None]
            info = Zw.T @ Zw
            h = Z.T @ (dw * (r1 / s1 - r0 / s0))
            a = np.linalg.solve(info, h)
            phi = phi_known + (Z @ a) * logistic_residual(t, e, s)
        se = math.sqrt(float(np.dot(phi, phi)))
    weights = np.where(t, w / s1, w / s0)[keep]
    return {"value": mu1 - mu0, "std_error": se, "std_error_weights_known": se_known, "mean_treated": mu1,
            "mean_control": mu0, "weights": weights, "influence": phi,
            "influence_known": phi_known, "correction": a}


def logistic_residual(t: np.ndarray, e: np.ndarray, s: np.ndarray | None) -> np.ndarray:
    """Each unit's factor of the logistic score ``Z s (t - e)`` (``s`` None: unit weights)."""
    return t - e if s is None else s * (t - e)


def _hajek_means(y: np.ndarray, t: np.ndarray, e: np.ndarray, estimand: str, keep: np.ndarray,
                 s: np.ndarray | None = None) -> tuple:
    """Weights (times the observation weights ``s``), their derivatives, the kept arms, the weight sums and the
    weighted means of each arm."""
    w, dw = ipw_weights(e, t, estimand)
    if s is not None:
        w, dw = s * w, s * dw
    w, dw = np.where(keep, w, 0.0), np.where(keep, dw, 0.0)
    tk, ck = t & keep, ~t & keep
    s1, s0 = float(w[tk].sum()), float(w[ck].sum())
    # pairwise sums, not BLAS dot products (see ``aipw``): the same digits in the main process and in a worker
    return w, dw, tk, ck, s1, s0, float(np.sum(w[tk] * y[tk]) / s1), float(np.sum(w[ck] * y[ck]) / s0)


def aipw_score(y: np.ndarray, t: np.ndarray, e: np.ndarray, m0: np.ndarray, m1: np.ndarray,
               estimand: str) -> tuple[np.ndarray, np.ndarray | None]:
    """Each unit's AIPW score and the indicator of the arm the estimand averages over (None: every unit).

    The effect over a set of units is the sum of their scores over the sum of their indicators.
    """
    tf = t.astype(np.float64)
    if estimand == "ate":
        return m1 - m0 + tf * (y - m1) / e - (1.0 - tf) * (y - m0) / (1.0 - e), None
    if estimand == "att":
        return tf * (y - m0) - (1.0 - tf) * e * (y - m0) / (1.0 - e), tf
    if estimand == "atc":
        return (1.0 - tf) * (m1 - y) + tf * (1.0 - e) * (y - m1) / e, 1.0 - tf
    raise EstimationError(f"aipw does not estimate {estimand!r}")


def aipw(y: np.ndarray, t: np.ndarray, e: np.ndarray, m0: np.ndarray, m1: np.ndarray,
         estimand: str, s: np.ndarray | None = None) -> dict[str, Any]:
    """AIPW (doubly robust) effect with its influence-function SE; ``s``: observation weights (the effect the
    ``s``-weighted mean of the scores over the estimand's units, its influence terms times ``s``)."""
    tf = t.astype(np.float64)
    score, arm = aipw_score(y, t, e, m0, m1, estimand)
    s = np.ones(y.size) if s is None else s
    count = s if arm is None else s * arm  # each unit's share of the effect's denominator
    total = float(count.sum())
    # numpy's pairwise sums, not BLAS dot products: a threaded BLAS splits a long dot product by thread, so the
    # same refit gave another last digit in the main process than in a refuter's single-threaded worker
    value = float(np.sum(s * score)) / total
    psi = (s * score - count * value) / total
    se = math.sqrt(float(np.sum(psi * psi)))
    if estimand == "ate":
        mu0 = float(np.sum(s * (m0 + (1.0 - tf) * (y - m0) / (1.0 - e)))) / total
    elif estimand == "att":
        mu0 = float(np.sum(count * y)) / total - value
    else:
        mu0 = float(np.sum(count * y)) / total
    return {"value": value, "std_error": se, "mean_control": mu0}
