"""CRV1: the cluster-robust variance of least squares with absorbed fixed effects.

The fit itself (demeaning, coefficients, bread, cluster score sums) is
``causalcli.models.fixed_effects``; this module adds the covariance with the
small-sample corrections of R ``fixest`` (``ssc(adj = TRUE, fixef.K = "nested",
cluster.adj = TRUE)``, the default of ``fixest`` and ``pyfixest``):

    V = G/(G-1) * (N-1)/(N-K) * (X'WX)^-1 (sum_g s_g s_g') (X'WX)^-1,  s_g = sum_{i in g} w_i x_i e_i

where K counts the regressors plus the fixed effects that are not nested in
the clusters (``fixest``: one level per fixed effect beyond the first is
redundant; a fixed effect fully nested in the clusters counts one), and
t statistics are referred to t(G-1).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from causalcli.models.fixed_effects import WithinFit, within_ols, within_ols_cells

CRV1 = "CRV1"  # the name every fit of this module carries as its ``vcov_type``


@dataclass(frozen=True)
class OlsFit:
    coef: np.ndarray
    vcov: np.ndarray
    resid: np.ndarray
    n: int
    clusters: int
    df_k: int
    df_t: int  # t(G-1)
    ssc: float
    vcov_type: str = CRV1


def nested_in(fe_codes: np.ndarray, fe_levels: int, cl_codes: np.ndarray) -> bool:
    """Is every level of the fixed effect inside a single cluster?"""
    first = np.full(fe_levels, -1, dtype=np.int64)
    first[fe_codes] = cl_codes  # any row's cluster per level
    return bool(np.all(first[fe_codes] == cl_codes))


def crv1_df_k(k: int, cluster: tuple[np.ndarray, int], fixed_effects: list[tuple[np.ndarray, int]]) -> int:
    """fixest's K: the regressors plus the fixed-effect levels not nested in the clusters."""
    cl, _ = cluster
    k_fe = sum(L for _, L in fixed_effects)
    n_fe = len(fixed_effects)
    nested = [(c, L) for c, L in fixed_effects if nested_in(c, L, cl)]
    k_fe_adj = k_fe - (n_fe - 1) if n_fe > 1 else k_fe
    return int(k + k_fe_adj - sum(L for _, L in nested) + len(nested) if n_fe else k)


def crv1_ssc(n: int, df_k: int, clusters: int) -> float:
    """The small-sample factor G/(G-1) * (N-1)/(N-K)."""
    return (clusters / (clusters - 1)) * ((n - 1) / (n - df_k))


def crv1(fit: WithinFit, cluster: tuple[np.ndarray, int], fixed_effects: list[tuple[np.ndarray, int]]) -> OlsFit:
    """CRV1 with fixest's small-sample corrections; ``fit``'s scores must be summed within ``cluster``."""
    _, G = cluster
    coef, bread, S, n = fit.coef, fit.bread, fit.scores, fit.n
    k = coef.size
    meat = S.T @ S
    df_k = crv1_df_k(k, cluster, fixed_effects)
    if G < 2 or n - df_k <= 0:
        # no residual degrees of freedom (or one cluster): the covariance does not exist; callers report
        # null standard errors with the reason (``no_inference_reason`` of the did family)
        nan = np.full((k, k), np.nan)
        return OlsFit(coef, nan, fit.resid, n, G, df_k, G - 1, float("nan"))
    ssc = crv1_ssc(n, df_k, G)
    vcov = ssc * bread @ meat @ bread
    return OlsFit(coef, vcov, fit.resid, n, G, df_k, G - 1, float(ssc))


def ols_crv1(y: np.ndarray, X: np.ndarray, names: list[str], cluster: tuple[np.ndarray, int],
             fixed_effects: list[tuple[np.ndarray, int]], w: np.ndarray | None = None,
             tol: float = 1e-10) -> OlsFit:
    """OLS (WLS with ``w``) of y on X absorbing ``fixed_effects``; CRV1 on ``cluster`` with fixest's corrections."""
    return crv1(within_ols(y, X, names, cluster, fixed_effects, w, tol), cluster, fixed_effects)


def ols_crv1_cells(y: np.ndarray, X: np.ndarray, names: list[str], cell: np.ndarray, table: np.ndarray,
                   table_names: list[str], cluster: tuple[np.ndarray, int], unit: tuple[np.ndarray, int],
                   time: tuple[np.ndarray, int], tol: float = 1e-10) -> OlsFit:
    """``ols_crv1`` of y on [table[cell], X] with unit and period fixed effects, balanced panel, no weights
    (``causalcli.models.fixed_effects.within_ols_cells``: same result as ``ols_crv1`` on the expanded design)."""
    fit = within_ols_cells(y, X, names, cell, table, table_names, cluster, unit, time, tol)
    return crv1(fit, cluster, [unit, time])
