"""Local-polynomial RD estimates: conventional, bias-corrected, and the robust bias-corrected variance.

Calonico, Cattaneo and Titiunik (2014): the order-p fit at bandwidth h on each side, its bias estimated with an
order-q fit at bandwidth b, and a variance that accounts for the bias estimate ("robust"). Sharp designs give
the jump in the outcome; fuzzy designs the ratio of the outcome's jump to the treatment's, linearised for the
variance. Pinned to rdrobust (Python package) for every kernel, selector, p, fuzzy design and cluster.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from causalcli.designs.rdd.local_poly import (RowResiduals, Side, ValueResiduals, distinct, fuzzy_gradient, inverse,
                                              powers, residuals)


class TooFewValues(ValueError):
    """A bandwidth window holds fewer distinct values of the running variable than the polynomial needs."""

    def __init__(self, side: str, found: int, needed: int, bandwidth: float) -> None:
        super().__init__(side)
        self.side, self.found, self.needed, self.bandwidth = side, found, needed, bandwidth


@dataclass(frozen=True)
class SideFit:
    """One side's fits and what its variances need."""

    beta_p: np.ndarray  # (p+1, k): the order-p fit at h (intercept first)
    beta_bc: np.ndarray  # (p+1, k): the bias-corrected fit
    invG_p: np.ndarray
    invG_q: np.ndarray
    RW_p: np.ndarray  # R_p * W_h on the rows used
    Q: np.ndarray  # the bias-corrected design (rdrobust's Q_q)
    RW_q_h: np.ndarray | None  # R_q * W_h, for clustered variance when h == b
    res_h: RowResiduals | ValueResiduals
    res_b: RowResiduals | ValueResiduals
    clustered: bool
    n_h: int  # rows with a positive weight at h
    same_bandwidths: bool
    part: slice  # the side's rows (values) the fits use: a positive weight at h or b
    R_q: np.ndarray  # 1, x, ..., x^q on those rows
    RW_q: np.ndarray  # R_q * W_b

    def variance_weights(self) -> np.ndarray:
        """The weights a_i with robust variance factor * sum over clusters (sum a_i r_i)^2, r the order-q fit's
        residuals: the bias-corrected intercept's own weights, or with clusters and h == b the order-q intercept's
        (rdrobust's choice; the two coincide when h == b)."""
        if self.clustered and self.same_bandwidths:
            return self.RW_q_h @ self.invG_q[0]
        return self.Q @ self.invG_p[0]

    def variances(self, s: np.ndarray, p: int, q: int) -> tuple[float, float]:
        """(conventional, robust) variance of the intercept of s'(outcome, treatment) fits."""
        conventional = (self.invG_p @ self.res_h.meat(self.RW_p, s, p + 1) @ self.invG_p)[0, 0]
        if self.clustered and self.same_bandwidths:
            robust = (self.invG_q @ self.res_b.meat(self.RW_q_h, s, q + 1) @ self.invG_q)[0, 0]
        else:
            robust = (self.invG_p @ self.res_b.meat(self.Q, s, q + 1) @ self.invG_p)[0, 0]
        return float(conventional), float(robust)


def fit_side(side: Side, name: str, h: float, b: float, p: int, q: int, kernel: str, matches: int) -> SideFit:
    """The order-p fit at h and order-q fit at b on one side (rows within the larger bandwidth)."""
    part, _ = side.window(max(h, b), kernel)
    x, D = side.x[part], side.fit_D(part)  # with weights collapsed, their weighted sums (``Side.fit_D``)
    W_h, W_b = side.kernel(part, h, kernel), side.kernel(part, b, kernel)  # times the rows' weights
    for bandwidth, W, needed in ((h, W_h, p + 1), (b, W_b, q + 1)):
        found = distinct(x[W > 0])
        if found < needed:
            raise TooFewValues(name, found, needed, bandwidth)
    R_q = powers(x, q)
    R_p = R_q[:, :p + 1]
    RW_p = R_p * W_h[:, None]
    RW_q = R_q * W_b[:, None]
    invG_p = inverse(side.gram(part, RW_p, R_p))
    invG_q = inverse(side.gram(part, RW_q, R_q))
    L = side.gram(part, RW_p, (x / h) ** (p + 1))
    m = (R_q @ invG_q[p + 1, :]) * W_b
    Q = RW_p - h ** (p + 1) * m[:, None] * L[None, :]
    beta_p = invG_p @ (RW_p.T @ D)
    beta_bc = invG_p @ (Q.T @ D)
    clustered = side.clusters is not None
    if not clustered:
        res_h = res_b = residuals(side, part, None, matches)
    else:
        res_h = residuals(side, part, R_p @ beta_p, matches)  # rows: D is the rows' own outcome
        res_b = residuals(side, part, R_q @ (invG_q @ (RW_q.T @ D)), matches)
    inside = W_h > 0
    n_h = int(np.count_nonzero(inside)) if side.counts is None else int(side.counts[part][inside].sum())
    same = h == b
    return SideFit(beta_p, beta_bc, invG_p, invG_q, RW_p, Q, R_q * W_h[:, None] if same else None, res_h, res_b,
                   clustered, n_h, same, part, R_q, RW_q)


@dataclass(frozen=True)
class RdEstimate:
    conventional: float
    bias_corrected: float
    se_conventional: float
    se_robust: float
    n_left: int  # rows within h on each side
    n_right: int
    left_intercepts: tuple[float, ...]  # (outcome[, treatment]) limits at the cutoff from below
    right_intercepts: tuple[float, ...]
    first_stage: tuple[float, float, float] | None  # fuzzy: the treatment's jump, its conventional and robust SE
    left_coefficients: tuple[float, ...]  # the outcome's order-p polynomial on each side (for the plot)
    right_coefficients: tuple[float, ...]


def estimate(left: Side, right: Side, h_l: float, h_r: float, b_l: float, b_r: float, *, p: int, q: int,
             kernel: str, matches: int = 3) -> RdEstimate:
    """The RD estimate at the given bandwidths (rdrobust's point estimates and standard errors)."""
    fl = fit_side(left, "left", h_l, b_l, p, q, kernel, matches)
    fr = fit_side(right, "right", h_r, b_r, p, q, kernel, matches)
    jump_p = fr.beta_p[0] - fl.beta_p[0]
    jump_bc = fr.beta_bc[0] - fl.beta_bc[0]
    fuzzy = left.D.shape[1] > 1
    if fuzzy:
        tau_y, tau_t = float(jump_p[0]), float(jump_p[1])
        s = fuzzy_gradient(tau_y, tau_t)
        conventional = tau_y / tau_t
        bias_corrected = conventional - float(s @ (jump_p - jump_bc))
    else:
        s = np.ones(1)
        conventional, bias_corrected = float(jump_p[0]), float(jump_bc[0])
    (cl_l, rb_l), (cl_r, rb_r) = fl.variances(s, p, q), fr.variances(s, p, q)
    first_stage = None
    if fuzzy:
        t_s = np.array([0.0, 1.0])
        (tl, tlr), (tr, trr) = fl.variances(t_s, p, q), fr.variances(t_s, p, q)
        first_stage = (float(jump_p[1]), math.sqrt(tl + tr), math.sqrt(tlr + trr))
    return RdEstimate(conventional, bias_corrected, math.sqrt(cl_l + cl_r), math.sqrt(rb_l + rb_r), fl.n_h, fr.n_h,
                      tuple(map(float, fl.beta_p[0])), tuple(map(float, fr.beta_p[0])), first_stage,
                      tuple(map(float, fl.beta_p[:, 0])), tuple(map(float, fr.beta_p[:, 0])))
