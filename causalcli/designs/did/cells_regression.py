"""2x2, TWFE, the event study and Sun-Abraham from the engine's cohort x period cells (``cells``): no panel rows.

On a balanced panel without covariates or weights, clustered by unit, every regressor of these regressions
depends on a row only through its cohort and period, so the fit runs on the cohort x period table:

* the point: with unit and period fixed effects, the within transformation of a balanced panel is exact on
  the table (value - unit mean - period mean + grand mean, periods weighted by cohort sizes), and the normal
  equations read cohort sizes and per-period sums only; the 2x2 (no fixed effects) reads the same;
* the CRV1 meat: unit i of cohort c has the score s_i = A_c' y_i + b_c, with A_c the cohort's (demeaned)
  regressors over its periods and b_c = A_c'(centre - period means) - A_c'A_c b (the unit mean drops out, as
  the demeaned regressors sum to zero over periods). So sum_i s_i s_i' is a quadratic form in the cohort's
  Gram matrix of (1, y_i1..y_iT), reproduced exactly by its stand-in rows (``cells.gram_factor``);
* fixest's small-sample factor with clusters = units: K = regressors + periods with fixed effects (the unit
  effects are nested in the clusters and count one), else K = regressors.

``cells.cell_panel`` is a ``PanelData`` whose "units" are the cohorts and whose rows are the cells (``cells`` set:
``regression.regress``, ``clusters.cluster_counts``, the Goodman-Bacon decomposition and Sun-Abraham's
treated-row counts read the cohort sizes from it), so ``fit_twfe``, ``fit_event_study``, ``fit_2x2`` and
``fit_sun_abraham`` run unchanged, with the auxiliary pre-trend event study, the Goodman-Bacon decomposition
and the honest-DiD sets. The few-cluster inference (wild
bootstrap, randomization inference) needs units: ``cells.prepare_cells`` sends such panels to the rows.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np

if TYPE_CHECKING:  # pragma: no cover
    from causalcli.designs.did.panel import PanelData
    from causalcli.inference.cluster_robust import OlsFit


@dataclass(frozen=True)
class CellRegression:
    """What the regressions read besides the cell table: cohort sizes, period centres, Gram factors."""

    counts: np.ndarray          # units per cohort (the cell panel's "units")
    centres: np.ndarray         # T: the centres of the engine's sums
    factors: tuple[np.ndarray, ...]  # per cohort: rows F with F'F = [[n, S'], [S, Q]] (centred outcomes)
    treated_units: int

    def ols(self, y: np.ndarray, X: np.ndarray, names: list[str], fe: bool, tol: float) -> "OlsFit":
        """``ols_crv1`` of the unit-level regression, clustered by unit, from the cell table (``X``: one row per
        cohort x period, cohort-major; ``y``: the cell means)."""
        from causalcli.errors import EstimationError
        from causalcli.inference.cluster_robust import CRV1, OlsFit, crv1_ssc
        from causalcli.models.fixed_effects import _solve

        C, T, k = self.counts.size, self.centres.size, X.shape[1]
        n_c = self.counts.astype(np.float64)
        N = float(n_c.sum())
        Xc, yc = X.reshape(C, T, k), y.reshape(C, T)
        if fe:
            Xd = _within(Xc, n_c)
            period_mean = n_c @ yc / N
            offset = self.centres - period_mean
        else:
            Xd, offset = Xc, self.centres
        n = int(N) * T
        raw = np.sqrt(np.einsum("c,ctk->k", n_c, Xc ** 2) / n) + 1e-300
        left = np.sqrt(np.einsum("c,ctk->k", n_c, Xd ** 2) / n)
        for j in range(k):  # as ``within_ols``: a regressor the fixed effects absorb cannot be estimated
            if left[j] <= 1e-9 * max(raw[j], 1.0):
                raise EstimationError(f"regressor {names[j]!r} is absorbed by the fixed effects (constant within "
                                      "units or periods); it cannot be estimated")
        coef, bread = _solve(np.einsum("c,ctj,ctk->jk", n_c, Xd, Xd), np.einsum("c,ctk,ct->k", n_c, Xd, yc),
                             names)
        scores = []
        for c, F in enumerate(self.factors):
            A = Xd[c]                                            # T x k
            b = A.T @ offset - A.T @ (A @ coef)
            scores.append(F @ np.vstack([b[None, :], A]))        # stand-in rows: F (1, y - centre)' -> scores
        S = np.vstack(scores)
        G = int(N)
        df_k = k + T if fe else k
        if G < 2 or n - df_k <= 0:
            return OlsFit(coef, np.full((k, k), np.nan), np.empty(0), n, G, df_k, G - 1, float("nan"), CRV1)
        ssc = crv1_ssc(n, df_k, G)
        return OlsFit(coef, ssc * bread @ (S.T @ S) @ bread, np.empty(0), n, G, df_k, G - 1, float(ssc), CRV1)


def _within(Xc: np.ndarray, n_c: np.ndarray) -> np.ndarray:
    """Two-way demeaned regressors of a balanced panel, on the cohort x period table (cohorts weighted by size)."""
    unit_mean = Xc.mean(axis=1, keepdims=True)
    period_mean = np.einsum("c,ctk->tk", n_c, Xc)[None] / n_c.sum()
    grand = np.einsum("c,ck->k", n_c, unit_mean[:, 0])[None, None] / n_c.sum()
    return Xc - unit_mean - period_mean + grand
