"""Wild cluster bootstrap (restricted, WCR) for one coefficient or a linear combination a'b.

Cameron, Gelbach and Miller (2008); the fast algebra of Roodman, MacKinnon,
Nielsen and Webb (2019, "Fast and wild", Stata Journal 19(1)): after the fixed
effects are partialled out, each draw only needs cluster-level sums.

Under H0: a'b = 0 the restricted fit gives residuals u_r; a draw flips the
sign of whole clusters' residuals with Rademacher weights v_g, refits, and
computes the CRV1 t statistic. p = share of draws with |t*| >= |t|.

Weights: Rademacher (+/-1), or Webb's six-point distribution (+/-sqrt(1/2),
+/-1, +/-sqrt(3/2), each 1/6; Webb 2023, "Reworking wild bootstrap-based
inference for clustered errors", Canadian Journal of Economics), which
MacKinnon and Webb (2017) advise below about 12 clusters, where Rademacher
weights give only 2^G distinct draws. Enumeration (the exact bootstrap
distribution, no Monte Carlo error): Rademacher when 2^G <= draws, as
wildboottest does; Webb when G <= 6 (6^6 = 46,656 draws, a fraction of a
second with the cluster-level algebra), whatever ``draws`` is. The interval is
the estimate +/- the (conf_level) quantile of |t*| times the CRV1 standard
error (a bootstrap-t critical value).
"""

from __future__ import annotations

from typing import Any

import numpy as np

from causalcli.models.fixed_effects import demean

WEBB_POINTS = np.array([-np.sqrt(1.5), -1.0, -np.sqrt(0.5), np.sqrt(0.5), 1.0, np.sqrt(1.5)])
WEBB_ENUMERATE_MAX_CLUSTERS = 6  # 6^6 = 46,656 weight vectors


def bootstrap_weights(G: int, draws: int, rng: np.random.Generator, kind: str = "rademacher") -> tuple[np.ndarray, bool]:
    """(draws x G) weight vectors and whether they enumerate the whole distribution (each vector once)."""
    if kind == "webb":
        if G <= WEBB_ENUMERATE_MAX_CLUSTERS:
            idx = (np.arange(6 ** G)[:, None] // (6 ** np.arange(G))[None, :]) % 6
            return WEBB_POINTS[idx], True
        return rng.choice(WEBB_POINTS, size=(draws, G)), False
    if G <= 20 and 2 ** G <= draws:
        grid = ((np.arange(2 ** G)[:, None] >> np.arange(G)[None, :]) & 1).astype(np.float64)
        return 2 * grid - 1, True
    return rng.choice(np.array([-1.0, 1.0]), size=(draws, G)), False


def wcr_test(y: np.ndarray, X: np.ndarray, a: np.ndarray, cluster: np.ndarray, G: int,
             groups: list, w: np.ndarray | None, draws: int, seed: int, tol: float = 1e-10,
             weights: str = "rademacher", V: np.ndarray | None = None) -> dict[str, Any]:
    """WCR test of a'b = 0; ``V`` (draws x G) replaces the drawn weights (to reuse a peer's draws in tests)."""
    yd, Xd, project, scale = _partial_out(y, X, groups, w, tol, G)
    return wcr_demeaned(yd, Xd, a, cluster, G, draws, seed, weights, V, project, scale)


def _partial_out(y: np.ndarray, X: np.ndarray, groups: list, w: np.ndarray | None, tol: float, G: int):
    """(y, X) freed of the fixed effects and scaled by sqrt(w), the projection for the draws, and the scale."""
    Z = demean(np.column_stack([y, X]), groups, w, tol)
    yd, Xd = Z[:, 0], Z[:, 1:]
    scale = None
    if w is not None:
        scale = np.sqrt(w)
        yd, Xd = yd * scale, Xd * scale[:, None]
    return yd, Xd, _fe_projection(groups, w, tol, G), scale


REPROJECT_MAX_CLUSTERS = 400  # the per-draw correction is G x G (G demeanings to build, G^2 per draw to apply)


def _fe_projection(groups: list, w: np.ndarray | None, tol: float, G: int = 0):
    """The projection on the fixed effects (x minus its demeaned self), or None without fixed effects or with more
    than ``REPROJECT_MAX_CLUSTERS`` clusters, where the fixed effects are partialled out once: the period means
    of v * u_r that the re-projection removes shrink like 1/sqrt(G) there."""
    if not groups or G > REPROJECT_MAX_CLUSTERS:
        return None
    return lambda M: M - demean(M, groups, w, tol)


def wcr_demeaned(yd: np.ndarray, Xd: np.ndarray, a: np.ndarray, cluster: np.ndarray, G: int, draws: int, seed: int,
                 weights: str = "rademacher", V: np.ndarray | None = None, project=None,
                 scale: np.ndarray | None = None) -> dict[str, Any]:
    """``wcr_test`` on data already freed of the fixed effects (and scaled by ``scale`` = sqrt(w)).

    ``project`` (columns -> their projection on the fixed effects, unscaled) makes each draw the full
    regression with the fixed effects re-estimated, as a bootstrap with the fixed-effect dummies does: the draw
    v * u_r is not orthogonal to fixed effects that are not nested in the clusters (the period effects), so
    its bootstrap residuals lose their projection on them, P(v * u_r) = sum_h v_h P(u_r 1[cluster h]), a
    G x G correction to the cluster scores. Without it (fixed effects partialled out once) the t* would
    differ from the standard WCR.
    """
    k = Xd.shape[1]
    A = np.linalg.inv(Xd.T @ Xd)
    beta = A @ (Xd.T @ yd)
    c = A @ a
    theta = float(a @ beta)
    beta_r = beta - c * (theta / float(a @ c))
    u_r = yd - Xd @ beta_r
    u = yd - Xd @ beta
    S = np.column_stack([np.bincount(cluster, weights=Xd[:, j] * u_r, minlength=G) for j in range(k)])
    S_hat = np.column_stack([np.bincount(cluster, weights=Xd[:, j] * u, minlength=G) for j in range(k)])
    # H_g c = sum_{i in g} x_i (x_i' c)
    xc = Xd @ c
    Hc = np.column_stack([np.bincount(cluster, weights=Xd[:, j] * xc, minlength=G) for j in range(k)])
    se_hat = float(np.sqrt(np.sum((S_hat @ c) ** 2)))  # the ssc factor cancels in t and t*
    Cc = None
    if project is not None:
        s = np.ones_like(yd) if scale is None else scale
        ur = np.divide(u_r, s, out=np.zeros_like(u_r), where=s > 0)  # unscaled restricted residuals
        xcs = (Xd @ c) * s
        rows = np.arange(yd.size)
        # Cc[g, h] = sum_{i in g} (x_i'c) s_i P(u_r 1[cluster h])_i: cluster g's score change per unit weight on
        # cluster h; built a block of clusters at a time (n x 64 at most in memory)
        Cc = np.zeros((G, G))
        for lo in range(0, G, 64):
            hs = np.arange(lo, min(G, lo + 64))
            cols = np.zeros((yd.size, hs.size))
            inside = (cluster >= lo) & (cluster < lo + hs.size)
            cols[rows[inside], cluster[inside] - lo] = ur[inside]
            P = project(cols)
            for j, h in enumerate(hs):
                Cc[:, h] = np.bincount(cluster, weights=xcs * P[:, j], minlength=G)
    t_hat = theta / se_hat if se_hat > 0 else float("nan")
    Sc = S @ c
    if V is None:
        V, enumerated = bootstrap_weights(G, draws, np.random.default_rng(seed), weights)
    else:
        enumerated = False
    tstar = np.empty(V.shape[0])
    for lo in range(0, V.shape[0], 256):
        Vb = V[lo:lo + 256].T  # G x b
        num = Sc @ Vb
        delta = A @ (S.T @ Vb)  # k x b
        z = Vb * Sc[:, None] - Hc @ delta
        if Cc is not None:
            z -= Cc @ Vb
        # a draw whose bootstrap SE is zero gives no t* (NaN): left out below
        with np.errstate(invalid="ignore", divide="ignore"):
            tstar[lo:lo + 256] = num / np.sqrt(np.sum(z ** 2, axis=0))
    # ties count as extreme: the draws v = 1 and v = -1 reproduce |t| exactly (up to rounding), and, as the
    # observed assignment in a permutation test, belong to the distribution (wildboottest's strict |t*| > |t|
    # counts them or not as rounding falls)
    ok = np.isfinite(tstar)
    p = float(np.mean(np.abs(tstar[ok]) >= abs(t_hat) * (1 - 1e-9))) if ok.any() and np.isfinite(t_hat) else None
    return {"theta": theta, "t": t_hat, "tstar": tstar[ok], "p_value": p,
            "draws": int(V.shape[0]), "enumerated": enumerated, "weights": weights}


def wild_cluster_bootstrap(y: np.ndarray, X: np.ndarray, cluster: tuple[np.ndarray, int],
                           fixed_effects: list[tuple[np.ndarray, int]], w: np.ndarray | None,
                           contrasts: list[np.ndarray], vcov: np.ndarray, conf_level: float, draws: int, seed: int,
                           weights: str, tol: float = 1e-10) -> list[dict[str, Any]]:
    """WCR p-value and bootstrap-t interval of each contrast a'b of the regression of y on X absorbing
    ``fixed_effects`` (swept out once), clustered on ``cluster`` (codes, count).

    Each entry: ``p_value``, ``ci_lower``, ``ci_upper`` (estimate +/- the conf_level quantile of |t*| times the
    CRV1 SE from ``vcov``), ``critical_value``, ``draws``, ``enumerated``, ``weights``; the p-value and interval
    are None when no draw gives a t statistic.
    """
    codes, G = cluster
    yd, Xd, project, scale = _partial_out(y, X, fixed_effects, w, tol, G)
    out = []
    for a in contrasts:
        res = wcr_demeaned(yd, Xd, a, codes, G, draws, seed, weights, None, project, scale)
        se = float(np.sqrt(a @ vcov @ a))
        entry = {"p_value": res["p_value"], "ci_lower": None, "ci_upper": None, "critical_value": None,
                 "weights": weights, "draws": res["draws"], "enumerated": res["enumerated"],
                 "fixed_effects": ("none" if not fixed_effects else "re-estimated in every draw" if project is not None
                                   else f"partialled out once ({G} clusters > {REPROJECT_MAX_CLUSTERS})")}
        if res["p_value"] is not None and res["tstar"].size and np.isfinite(se):
            crit = float(np.quantile(np.abs(res["tstar"]), conf_level, method="inverted_cdf"))
            entry.update(critical_value=crit, ci_lower=res["theta"] - crit * se, ci_upper=res["theta"] + crit * se)
        out.append(entry)
    return out
