"""Wild cluster bootstrap of a clustered RD's robust bias-corrected test (SPEC v1.1 "Inference with few clusters").

rdrobust has no few-cluster correction; this is the restricted wild cluster bootstrap (Cameron, Gelbach and Miller
2008) applied to the robust bias-corrected t statistic of Calonico, Cattaneo and Titiunik (2014), as the wild
bootstrap of that statistic without clusters (Bartalotti, Calhoun and He 2017; He and Bartalotti 2020 for fuzzy
designs). For a null effect b0, with u = y - b0 s (s = 1 at or above the cutoff in a sharp design, the take-up in a
fuzzy one), the null says u does not jump at the cutoff:

* t(b0) = tau_bc(u) / se_rb(u): the bias-corrected jump of u over its clustered robust standard error. Sharp:
  exactly (tau_bc - b0) / se_rb, the headline's own t. Fuzzy: the Anderson-Rubin form of the test (Feir, Lemieux
  and Marmer 2016), which stays valid when the take-up barely jumps;
* restricted fit: the order-q polynomials of u on each side at bandwidth b (the bias correction's fits), with one
  intercept for both sides (no jump); residuals e~;
* a draw: u* = fitted + v_g e~, one weight v_g per cluster on both sides (a cluster with rows on both sides keeps
  one weight); t* = tau_bc(u*) / se_rb(u*) with the draw's own order-q residuals;
* p(b0) = share of draws with |t*| >= |t(b0)|; the interval inverts the test (``inference.inversion``).

tau_bc is linear in u (weights w_i), and its robust variance is factor * sum over clusters (sum a_i r_i)^2 with
r the order-q fit's residuals, also linear in u; both u and e~ are linear in b0. So the per-cluster sums of a few
row vectors, for y and s apart, are formed once, and a null costs O(G) per draw. The restricted fitted values are
polynomials without a jump, which tau_bc maps to zero and the order-q fit leaves no residual of; both are kept in
the sums rather than assumed, so rounding is all that separates them from zero.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import numpy as np

from causalcli.designs.rdd.estimator import fit_side
from causalcli.inference.inversion import invert_test, symmetric_p

if TYPE_CHECKING:  # pragma: no cover
    from causalcli.designs.rdd.fitting import RdResult, RdSettings


def _cluster_sums(idx: np.ndarray, M: np.ndarray, G: int) -> np.ndarray:
    """Column sums of the rows of M by cluster: (G, *M.shape[1:])."""
    out = np.zeros((G, *M.shape[1:]))
    np.add.at(out, idx, M)
    return out


class RdWildBootstrap:
    """The restricted wild cluster bootstrap test of effect = b0 for a clustered RD fit (rows with clusters)."""

    def __init__(self, result: "RdResult", settings: "RdSettings", matches: int = 3):
        assert result.split.rows is not None
        left, right = result.split.rows
        assert left.clusters is not None and right.clusters is not None
        bw = result.bandwidths
        p, q = settings.p, settings.p + 1
        fuzzy = left.D.shape[1] > 1
        fits = (fit_side(left, "left", bw.h_left, bw.b_left, p, q, settings.kernel, matches),
                fit_side(right, "right", bw.h_right, bw.b_right, p, q, settings.kernel, matches))
        codes = [side.clusters[f.part] for side, f in zip((left, right), fits)]
        labels = np.unique(np.concatenate(codes))
        self.G = G = labels.size  # the clusters of the rows either fit uses: one weight each per draw
        self.V: np.ndarray = np.ones((1, G))  # (draws, G) weights: set by the caller once G is known
        self.sides_clusters = tuple(int(np.unique(c).size) for c in codes)
        # the restricted design: one intercept, then x..x^q of the right side and x..x^q of the left side
        rows = []
        for sign, side, f in ((-1.0, left, fits[0]), (1.0, right, fits[1])):
            D = side.D[f.part]
            Z = np.column_stack([D[:, 0], D[:, 1] if fuzzy else np.full(D.shape[0], 0.5 + sign / 2)])
            X = np.zeros((Z.shape[0], 1 + 2 * q))
            X[:, 0] = 1.0
            first = 1 if sign > 0 else 1 + q
            X[:, first:first + q] = f.R_q[:, 1:]
            rows.append((sign, f, Z, X, f.RW_q[:, 0]))  # R_q's first column is 1: RW_q's is the weight at b
        gram = sum(X.T @ (X * w[:, None]) for _, _, _, X, w in rows)
        beta = np.linalg.solve(gram, sum(X.T @ (Z * w[:, None]) for _, _, Z, X, w in rows))  # (1 + 2q, 2)
        self.tau = np.zeros(2)         # tau_bc of y and of s
        self.tau_fitted = np.zeros(2)  # tau_bc of the restricted fitted values (zero up to rounding)
        self.d = np.zeros((G, 2))      # per cluster: sum w_i e~_i, the draw's shift of tau_bc per unit weight
        self.per_side = []
        for (sign, f, Z, X, _), idx in zip(rows, (np.searchsorted(labels, c) for c in codes)):
            w = sign * (f.Q @ f.invG_p[0])  # tau_bc's weights (minus on the left: the jump is right - left)
            a = f.variance_weights()
            H = f.invG_q @ f.RW_q.T  # the order-q fit's coefficients per unit of the outcome, (q+1, n)
            fitted = X @ beta
            restricted = Z - fitted

            def order_q_residuals(M: np.ndarray, R=f.R_q, H=H) -> np.ndarray:
                return M - R @ (H @ M)

            self.tau += w @ Z
            self.tau_fitted += w @ fitted
            self.d += _cluster_sums(idx, w[:, None] * restricted, G)
            n, G_side = Z.shape[0], int(np.unique(idx).size)
            factor = (n - 1) / (n - (q + 1)) * G_side / (G_side - 1) if G_side > 1 else np.nan
            self.per_side.append({
                "factor": factor,
                "observed": _cluster_sums(idx, a[:, None] * order_q_residuals(Z), G),          # (G, 2)
                "fitted": _cluster_sums(idx, a[:, None] * order_q_residuals(fitted), G),       # (G, 2)
                "own": _cluster_sums(idx, a[:, None] * restricted, G),                         # (G, 2)
                "coef": _cluster_sums(idx, H.T[:, :, None] * restricted[:, None, :], G),       # (G, q+1, 2)
                "design": _cluster_sums(idx, a[:, None] * f.R_q, G),                           # (G, q+1)
            })

    def t_stats(self, b0: float) -> tuple[float, np.ndarray]:
        """t(b0) of the data and t* of every draw."""
        c = np.array([1.0, -b0])
        variance = sum(s["factor"] * np.sum((s["observed"] @ c) ** 2) for s in self.per_side)
        t = float((self.tau @ c) / np.sqrt(variance)) if variance > 0 else np.nan
        V = self.V
        num = self.tau_fitted @ c + V @ (self.d @ c)
        den2 = np.zeros(V.shape[0])
        for s in self.per_side:
            # the draw's per-cluster sums of a_i r*_i: r* = M (fitted + v e~), M the order-q fit's residual maker
            C = (s["fitted"] @ c)[None, :] + V * (s["own"] @ c)[None, :] - (V @ (s["coef"] @ c)) @ s["design"].T
            den2 += s["factor"] * np.einsum("bg,bg->b", C, C)
        with np.errstate(divide="ignore", invalid="ignore"):
            return t, num / np.sqrt(den2)

    def p_value(self, b0: float) -> float | None:
        return symmetric_p(*self.t_stats(b0))

    def interval(self, estimate: float, se: float, conf_level: float) -> dict[str, Any]:
        return invert_test(self.p_value, estimate, se, conf_level,
                           "unbounded: the bootstrap test accepts effects arbitrarily far from the estimate (in a "
                           "fuzzy design, a take-up that barely jumps at the cutoff); read diagnostics.first_stage")
