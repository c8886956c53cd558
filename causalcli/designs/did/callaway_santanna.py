"""Callaway and Sant'Anna (2021): group-time ATT(g,t), aggregations, pre-test, multiplier bootstrap.

The semantics are those of R's ``did`` (``att_gt`` with ``panel = TRUE`` and a
varying base period, ``aggte``) and of ``DRDID`` for the 2x2 estimators:

* for a cohort g and a period t >= g the comparison is t against g-1 (the last
  period before treatment); for t < g it is t against t-1;
* controls: never-treated units, or also units not yet treated by period t
  (and not in cohort g);
* ``dr``: ``DRDID::drdid_panel``; ``ipw``: ``DRDID::std_ipw_did_panel``;
  ``reg``: ``DRDID::reg_did_panel``; covariates are taken at the base period;
* the influence function of each ATT(g,t) is scaled by n/n_gt and the analytic
  standard error is sqrt(mean(IF^2)/n); aggregations add the estimation of the
  cohort shares (``aggte``'s ``wif``);
* the pre-test is W = n * b' V^-1 b over the pre-treatment ATT(g,t), chi2(q);
* the multiplier bootstrap draws Mammen weights per unit, scales by the
  interquartile range, and takes the (1 - alpha) quantile of the largest
  |t| across event times for the uniform band of the dynamic aggregation.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import numpy as np

from causalcli.errors import EstimationError
from causalcli.records import Check, Estimate

if TYPE_CHECKING:  # pragma: no cover
    from causalcli.designs.did.design import PanelData
    from causalcli.spec.models import Study

PS_TRIM = 0.995  # DRDID's trim.level for control propensity scores
PS_CAP = 1 - 1e-6


@dataclass
class GroupTime:
    group: np.ndarray   # cohort period index per cell
    time: np.ndarray    # period index per cell
    att: np.ndarray
    inf: np.ndarray     # n_units x cells (already scaled by n / n_gt)
    n: int
    w: np.ndarray       # unit weights (mean 1)
    g_unit: np.ndarray  # unit cohort index (-1 never)


def wide(p: "PanelData") -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray, np.ndarray, int]:
    """Balanced wide arrays: Y (N x T), X (N x T x k), unit weights, cohort index, kept unit codes, dropped units."""
    T = int(p.times.size)
    counts = np.bincount(p.unit, minlength=p.n_units)
    keep = counts == T
    dropped = int((~keep).sum())
    Y = np.full((p.n_units, T), np.nan)
    Y[p.unit, p.time] = p.y
    k = p.X.shape[1]
    X = np.zeros((p.n_units, T, k))
    if k:
        X[p.unit, p.time, :] = p.X
    w = np.ones(p.n_units)
    if p.w is not None:
        w[p.unit] = p.w
    units = np.flatnonzero(keep)
    return Y[keep], X[keep], w[keep], p.g[keep], units, dropped


def _expit(eta: np.ndarray) -> np.ndarray:
    """1 / (1 + exp(-eta)) without overflow: a separating logit (one treated unit and a random covariate in a
    refuter) drives eta to +/- hundreds, where exp(-eta) overflows."""
    return np.exp(-np.logaddexp(0.0, -eta))


def _logit(Z: np.ndarray, D: np.ndarray, w: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Weighted logistic regression (as glm with weights); returns fitted p and (Z' diag(w p (1-p)) Z)^-1."""
    k = Z.shape[1]
    beta = np.zeros(k)
    share = float(np.dot(w, D) / w.sum())
    if not 0 < share < 1:
        raise EstimationError("a comparison has only treated or only control units")
    beta[0] = np.log(share / (1 - share))  # exact when Z is the intercept alone
    for _ in range(100):
        eta = Z @ beta
        pr = _expit(eta)
        W = w * pr * (1 - pr)
        H = Z.T @ (Z * W[:, None])
        grad = Z.T @ (w * (D - pr))
        step = np.linalg.solve(H, grad)
        beta = beta + step
        if np.max(np.abs(step)) < 1e-12:
            break
    else:
        raise EstimationError("the propensity-score logit did not converge in a group-time comparison: a covariate "
                              "(nearly) separates a cohort from its controls; use options.method: reg (no propensity "
                              "score) or fewer covariates", key="design.options.method")
    pr = _expit(Z @ beta)
    W = w * pr * (1 - pr)
    return pr, np.linalg.inv(Z.T @ (Z * W[:, None]))


def _wls(Z: np.ndarray, y: np.ndarray, w: np.ndarray) -> np.ndarray:
    Zw = Z * w[:, None]
    return np.linalg.solve(Zw.T @ Z, Zw.T @ y)


def drdid_panel(dy: np.ndarray, D: np.ndarray, Z: np.ndarray, w: np.ndarray, method: str) -> tuple[float, np.ndarray]:
    """ATT and influence function of one 2x2 comparison (DRDID's panel estimators)."""
    n = dy.size
    w = w / w.mean()
    Df = D.astype(np.float64)
    ctrl = ~D
    if method in ("dr", "reg"):
        try:
            if np.linalg.matrix_rank(Z[ctrl]) < Z.shape[1]:  # solve() may not notice a rank-deficient system
                raise np.linalg.LinAlgError
            coef = _wls(Z[ctrl], dy[ctrl], w[ctrl])
        except np.linalg.LinAlgError:
            k, m = Z.shape[1], int(ctrl.sum())
            advice = (f"keep fewer covariates than control units (here {k - 1} covariates for {m} control units)"
                      if k >= m else "a covariate is constant or collinear among them: drop it")
            raise EstimationError(f"the outcome regression of the control units is singular in a group-time "
                                  f"comparison ({k} columns with the intercept, {m} control units): {advice}",
                                  key="covariates") from None
        out = Z @ coef
        wols_x = (w * (1 - Df))[:, None] * Z
        wols_ex = (w * (1 - Df) * (dy - out))[:, None] * Z
        XpX_inv = np.linalg.inv(wols_x.T @ Z / n)
        lin_ols = wols_ex @ XpX_inv
    if method == "reg":
        w_t = w * Df
        att_t = w_t * dy
        att_c = w_t * out
        eta_t = att_t.mean() / w_t.mean()
        eta_c = att_c.mean() / w_t.mean()
        inf_t = (att_t - w_t * eta_t) / w_t.mean()
        M1 = (w_t[:, None] * Z).mean(axis=0)
        inf_c = ((att_c - w_t * eta_c) + lin_ols @ M1) / w_t.mean()
        return float(eta_t - eta_c), inf_t - inf_c
    try:
        ps, Hinv = _logit(Z, Df, w)
    except np.linalg.LinAlgError:
        k, m = Z.shape[1], int(D.sum())
        raise EstimationError(f"the propensity-score logit is singular in a group-time comparison ({k} columns with "
                              f"the intercept, {m} units in the cohort): a covariate separates the cohort from its "
                              "controls or there are too few units for the covariates; use options.method: reg "
                              "(no propensity score) or fewer covariates", key="design.options.method") from None
    ps = np.minimum(ps, PS_CAP)
    trim = np.where(D, True, ps < PS_TRIM)
    w_t = trim * w * Df
    w_c = trim * w * ps * (1 - Df) / (1 - ps)
    lin_ps = ((w * (Df - ps))[:, None] * Z) @ (Hinv * n)
    if method == "ipw":
        att_t = w_t * dy
        att_c = w_c * dy
        eta_t = att_t.mean() / w_t.mean()
        eta_c = att_c.mean() / w_c.mean()
        inf_t = (att_t - w_t * eta_t) / w_t.mean()
        M2 = (w_c * (dy - eta_c))[:, None] * Z
        inf_c = ((att_c - w_c * eta_c) + lin_ps @ M2.mean(axis=0)) / w_c.mean()
        return float(eta_t - eta_c), inf_t - inf_c
    # doubly robust
    r = dy - out
    att_t = w_t * r
    att_c = w_c * r
    eta_t = att_t.mean() / w_t.mean()
    eta_c = att_c.mean() / w_c.mean()
    M1 = (w_t[:, None] * Z).mean(axis=0)
    inf_t = ((att_t - w_t * eta_t) - lin_ols @ M1) / w_t.mean()
    M2 = ((w_c * (r - eta_c))[:, None] * Z).mean(axis=0)
    M3 = (w_c[:, None] * Z).mean(axis=0)
    inf_c = ((att_c - w_c * eta_c) + lin_ps @ M2 - lin_ols @ M3) / w_c.mean()
    return float(eta_t - eta_c), inf_t - inf_c


def group_time(Y: np.ndarray, X: np.ndarray, w: np.ndarray, g: np.ndarray, control: str, method: str,
               closed_form: bool = True, base_period: str = "varying") -> GroupTime:
    """ATT(g,t) and their influence functions (units x cells) for every cohort g and period t.

    Without covariates the three methods coincide: the propensity score is the treated share and the
    outcome regression the controls' mean, so ATT(g,t) is a difference of weighted mean changes and its
    influence function has a closed form; ``closed_form`` computes all cells at once that way (the
    per-cell 2x2 estimators give the same numbers, as a test checks).
    """
    N, T = Y.shape
    cohorts = np.unique(g[g >= 0])
    if control == "not_yet_treated" and not (g < 0).any():
        # as R's did without a never-treated group: periods from the last cohort's start on have no
        # control, and the last cohort serves only as a control
        T = int(cohorts.max())
        cohorts = cohorts[cohorts < T]
        if cohorts.size == 0:
            raise EstimationError("no never-treated units and a single cohort: nothing to compare with")
    gs, ts, atts, infs = [], [], [], []
    wn = w / w.mean()
    cells = []
    universal = base_period == "universal"
    for gi in cohorts:
        for c in range(0 if universal else 1, T):
            if universal and c == gi - 1:
                continue  # the reference period itself: ATT(g, g-1) = 0 by construction
            base = gi - 1 if universal or gi <= c else c - 1
            if control == "never_treated":
                ctrl = g < 0
            else:  # not yet treated in either period compared (R did: G > max(t, base))
                ctrl = (g < 0) | ((g > max(c, base)) & (g != gi))
            if not ctrl.any():
                continue  # R's did skips cells without controls (with a warning); reported below
            cells.append((gi, c, base, ctrl))
    if not cells:
        raise EstimationError("no group-time comparison has control units; try control_group: not_yet_treated")
    if closed_form and X.shape[2] == 0:
        fast = _group_time_means(Y, wn, g, cells)
        if fast is not None:
            atts, inf = fast
            return GroupTime(np.asarray([x[0] for x in cells]), np.asarray([x[1] for x in cells]), atts, inf, N,
                             wn, g)
    for gi, c, base, ctrl in cells:
        treated = g == gi
        sample = treated | ctrl
        dy = Y[sample, c] - Y[sample, base]
        Z = np.column_stack([np.ones(int(sample.sum())), X[sample, base, :]])
        att, inf = drdid_panel(dy, treated[sample], Z, wn[sample], method)
        full = np.zeros(N)
        full[sample] = (N / sample.sum()) * inf
        gs.append(gi)
        ts.append(c)
        atts.append(att)
        infs.append(full)
    return GroupTime(np.asarray(gs), np.asarray(ts), np.asarray(atts), np.column_stack(infs), N, wn, g)


def _group_time_means(Y: np.ndarray, w: np.ndarray, g: np.ndarray, cells: list,
                      chunk: int = 32) -> tuple[np.ndarray, np.ndarray] | None:
    """ATT(g,t) = treated minus control weighted mean change, and the influence functions, for all cells.

    IF_i = N [w_i D_i (dy_i - m_t) / sum(w D) - w_i C_i (dy_i - m_c) / sum(w C)], which is what DRDID's
    panel estimators reduce to with an intercept only (None when a cell's treated share reaches the
    propensity trim, where the 2x2 estimator's trimming applies instead).
    """
    N = Y.shape[0]
    K = len(cells)
    atts = np.empty(K)
    inf = np.empty((N, K))
    for a in range(0, K, chunk):
        part = cells[a:a + chunk]
        dy = Y[:, [c for _, c, _, _ in part]] - Y[:, [b for _, _, b, _ in part]]
        wt = w[:, None] * (g[:, None] == np.array([gi for gi, _, _, _ in part])[None, :])
        wc = w[:, None] * np.column_stack([ctrl for _, _, _, ctrl in part])
        st, sc = wt.sum(axis=0), wc.sum(axis=0)
        if np.any(st / (st + sc) >= min(PS_TRIM, PS_CAP)):
            return None
        mt = (wt * dy).sum(axis=0) / st
        mc = (wc * dy).sum(axis=0) / sc
        atts[a:a + len(part)] = mt - mc
        inf[:, a:a + len(part)] = N * (wt * (dy - mt) / st - wc * (dy - mc) / sc)
    return atts, inf


def se_of(inf: np.ndarray, n: int) -> np.ndarray:
    """sqrt(mean(IF^2)/n) per column; tiny values are undefined, as R's did."""
    se = np.sqrt((inf ** 2).mean(axis=0) / n)
    return np.where(se <= np.sqrt(np.finfo(float).eps) * 10, np.nan, se)


def _wif(keep: np.ndarray, pg: np.ndarray, w: np.ndarray, G: np.ndarray, group: np.ndarray) -> np.ndarray:
    """aggte's influence of estimating the cohort shares (n x len(keep))."""
    spg = pg[keep].sum()
    ind = np.column_stack([w * (G == group[k]) - pg[k] for k in keep])
    if1 = ind / spg
    if2 = ind.sum(axis=1)[:, None] * (pg[keep] / spg ** 2)[None, :]
    return if1 - if2


def _agg(gt: GroupTime, keep: np.ndarray, pg: np.ndarray, with_wif: bool = True) -> tuple[float, np.ndarray]:
    wts = pg[keep] / pg[keep].sum()
    value = float(gt.att[keep] @ wts)
    inf = gt.inf[:, keep] @ wts
    if with_wif:
        inf = inf + _wif(keep, pg, gt.w, gt.g_unit, gt.group) @ gt.att[keep]
    return value, inf


def aggregate(gt: GroupTime, times: np.ndarray, labels: tuple[str, ...] | None = None) -> dict[str, Any]:
    """The four aggregations of ``aggte``: values, labels (ISO days with ``labels``) and influence functions."""
    from causalcli.data.types import period_text

    pg_group = {gi: float(np.mean(gt.w * (gt.g_unit == gi))) for gi in np.unique(gt.group)}
    pg = np.array([pg_group[gi] for gi in gt.group])
    post = np.flatnonzero(gt.group <= gt.time)
    out: dict[str, Any] = {}
    v, inf = _agg(gt, post, pg)
    out["simple"] = {"overall": (v, inf), "elements": []}
    # group
    glist = np.unique(gt.group)
    els, infs_g, vals_g = [], [], []
    for gi in glist:
        keep = np.flatnonzero((gt.group == gi) & (gt.group <= gt.time))
        val = float(gt.att[keep].mean())
        inf_g = gt.inf[:, keep] @ (pg[keep] / pg[keep].sum())
        els.append((f"group={period_text(times[gi], labels)}", val, inf_g))
        infs_g.append(inf_g)
        vals_g.append(val)
    pgg = np.array([pg_group[gi] for gi in glist])
    vals_g = np.asarray(vals_g)
    G_inf = np.column_stack(infs_g)
    value = float(vals_g @ (pgg / pgg.sum()))
    wif = _wif(np.arange(glist.size), pgg, gt.w, gt.g_unit, glist)
    inf = G_inf @ (pgg / pgg.sum()) + wif @ vals_g
    out["group"] = {"overall": (value, inf), "elements": els}
    # dynamic
    e_all = times[gt.time] - times[gt.group]
    els, infs_e, vals_e, es = [], [], [], []
    for e in np.unique(e_all):
        keep = np.flatnonzero(e_all == e)
        val, inf_e = _agg(gt, keep, pg)
        els.append((f"event_time={e:g}", val, inf_e))
        infs_e.append(inf_e)
        vals_e.append(val)
        es.append(float(e))
    es_arr = np.asarray(es)
    pos = es_arr >= 0
    E = np.column_stack(infs_e)
    value = float(np.mean(np.asarray(vals_e)[pos]))
    inf = E[:, pos].mean(axis=1)
    out["dynamic"] = {"overall": (value, inf), "elements": els, "event_times": es}
    # calendar
    tlist = np.unique(gt.time)
    tlist = tlist[tlist >= gt.group.min()]
    els, vals_t, infs_t = [], [], []
    for t in tlist:
        keep = np.flatnonzero((gt.time == t) & (gt.group <= gt.time))
        val, inf_t = _agg(gt, keep, pg)
        els.append((f"time={period_text(times[t], labels)}", val, inf_t))
        vals_t.append(val)
        infs_t.append(inf_t)
    value = float(np.mean(vals_t))
    inf = np.column_stack(infs_t).mean(axis=1)
    out["calendar"] = {"overall": (value, inf), "elements": els}
    return out


def pretest(gt: GroupTime) -> dict[str, Any] | None:
    """R did's Wald pre-test: W = n b' V^-1 b on the pre-treatment ATT(g,t), V = IF'IF/n, chi2(q)."""
    from causalcli.inference.distributions import chi2_sf

    pre = np.flatnonzero(gt.group > gt.time)
    if pre.size == 0:
        return None
    V = gt.inf[:, pre].T @ gt.inf[:, pre] / gt.n
    b = gt.att[pre]
    if np.linalg.cond(V) > 1 / np.finfo(float).eps:
        rank = int(np.linalg.matrix_rank(V))
        return {"statistic": None, "df": int(pre.size), "p_value": None,
                "reason": f"the covariance of the {pre.size} pre-treatment ATT(g,t) is singular (rank {rank}): too "
                          "few units behind them for a joint test of every one; look at the pre-treatment effects "
                          "one by one, or test fewer pre-periods (e.g. data.filter on the time column)"}
    W = float(gt.n * b @ np.linalg.solve(V, b))
    return {"statistic": W, "df": int(pre.size), "p_value": chi2_sf(W, pre.size),
            "distribution": f"chi2({pre.size})", "test": "Wald on the pre-treatment ATT(g,t), as R did::att_gt"}


def multiplier_bootstrap(inf: np.ndarray, draws: int, rng: np.random.Generator, block: int = 256) -> np.ndarray:
    """sqrt(n) * mean(v * IF) for Mammen weights v, draws x columns.

    The draws x n by n x columns product runs in single precision (twice as fast as double; its rounding,
    about 1e-6 relative, is far below the Monte Carlo error of 999 draws, about 2%). Drawing the weights
    costs more than the product, so they come from raw 32-bit draws compared with the Mammen probability
    (exact to 2^-32), and the product uses v = lo + (hi - lo) * 1[v = hi]: a 0/1 matrix instead of a
    select, which numpy builds ten times faster.
    """
    n = inf.shape[0]
    kappa = (np.sqrt(5) + 1) / 2
    p_low = kappa / np.sqrt(5)
    threshold = np.uint32(round(p_low * 2.0**32))
    lo_v, hi_v = 1 - kappa, kappa
    A = np.asfortranarray(inf, dtype=np.float32)
    base = lo_v * inf.sum(axis=0)  # lo * 1'IF, in double
    from causalcli.runtime import progress

    from causalcli.runtime.threads import all_cores_blas

    out = np.empty((draws, inf.shape[1]))
    with progress.task("did: multiplier bootstrap", draws) as advance, all_cores_blas():
        for a in range(0, draws, block):
            b = min(draws, a + block)
            bits = rng.bit_generator.random_raw(((b - a) * n + 1) // 2).view(np.uint32)[:(b - a) * n]
            high = (bits >= threshold).reshape(b - a, n).astype(np.float32)
            out[a:b] = (base + (hi_v - lo_v) * (high @ A).astype(np.float64)) / np.sqrt(n)
            advance(b - a)
    return out


def boot_se(bres: np.ndarray, n: int) -> np.ndarray:
    """IQR-based bootstrap SE (R did's mboot): (q75 - q25) / (z75 - z25) / sqrt(n)."""
    from causalcli.inference.estimate import normal_quantile

    q75 = np.quantile(bres, 0.75, axis=0, method="inverted_cdf")
    q25 = np.quantile(bres, 0.25, axis=0, method="inverted_cdf")
    return (q75 - q25) / (normal_quantile(0.75) - normal_quantile(0.25)) / np.sqrt(n)


def run_cs(p: "PanelData", g: np.ndarray | None = None):
    from dataclasses import replace

    if g is not None and g is not p.g:
        p = replace(p, g=g)
    Y, X, w, gu, units, dropped = wide(p)
    if Y.shape[0] < 2:
        raise EstimationError("no unit is observed in every period; Callaway-Sant'Anna (panel) needs a balanced panel")
    gt = group_time(Y, X, w, gu, p.options.control_group, p.options.method, base_period=p.options.base_period)
    return gt, dropped


def point_cs(p: "PanelData", g: np.ndarray) -> float:
    gt, _ = run_cs(p, g)
    agg = aggregate(gt, p.times, p.time_labels)
    return agg[p.options.aggregation]["overall"][0]


def fit_cs(p: "PanelData", study: "Study", seed: int):
    """The full Callaway-Sant'Anna fit (``DidDesign.fit`` runs it with BLAS on one thread)."""
    from causalcli.designs.base import Fit
    from causalcli.inference.estimate import normal_estimate, normal_quantile

    o = p.options
    gt, dropped = run_cs(p)
    warnings = list(p.warnings)
    if dropped:
        warnings.append(f"{dropped} units not observed in every period were dropped (the panel estimator needs a "
                        "balanced panel, as R did::att_gt with panel = TRUE)")
    agg = aggregate(gt, p.times, p.time_labels)
    n = gt.n
    conf = study.conf_level
    z = normal_quantile(0.5 + conf / 2)
    gt_se = se_of(gt.inf, n)
    boot = None
    inference = "cs_analytic"
    crit = None
    if o.bootstrap == "multiplier":
        inference = "cs_multiplier_bootstrap"
        cols = [gt.inf]
        names = ["gt"] * gt.inf.shape[1]
        for kind in ("simple", "group", "dynamic", "calendar"):
            cols.append(agg[kind]["overall"][1][:, None])
            names.append(f"{kind}:overall")
            for lab, _, inf in agg[kind]["elements"]:
                cols.append(inf[:, None])
                names.append(f"{kind}:{lab}")
        M = np.column_stack(cols)
        bres = multiplier_bootstrap(M, o.draws, np.random.default_rng(seed))
        bse = boot_se(bres, n)
        boot = dict(zip(range(len(names)), bse))
        gt_se = bse[: gt.att.size]
        dyn_idx = [i for i, nm in enumerate(names) if nm.startswith("dynamic:event_time")]
        sig = bse[dyn_idx] * np.sqrt(n)
        ok = sig > 0
        bT = np.max(np.abs(bres[:, dyn_idx][:, ok] / sig[ok]), axis=1)
        crit = float(np.quantile(bT, conf, method="inverted_cdf"))
        se_lookup = {nm: float(s) for nm, s in zip(names, bse)}
    else:
        se_lookup = {}

    def se_for(kind: str, label: str, inf: np.ndarray) -> float:
        if se_lookup:
            return se_lookup[f"{kind}:{label}"]
        return float(se_of(inf[:, None], n)[0])

    aggregations: dict[str, Any] = {}
    for kind in ("simple", "group", "dynamic", "calendar"):
        val, inf = agg[kind]["overall"]
        se = se_for(kind, "overall", inf)
        entry = {"att": val, "std_error": se, "elements": []}
        for lab, v, inf_e in agg[kind]["elements"]:
            entry["elements"].append({"label": lab, "att": v, "std_error": se_for(kind, lab, inf_e)})
        aggregations[kind] = entry
    hv, hinf = agg[o.aggregation]["overall"]
    estimate = normal_estimate(hv, se_for(o.aggregation, "overall", hinf), conf, inference)
    effects = []
    for el in aggregations["dynamic"]["elements"]:
        e = normal_estimate(el["att"], el["std_error"], conf, inference, el["label"])
        if crit is not None and e.std_error:
            e = Estimate(e.value, e.std_error, e.value - crit * e.std_error, e.value + crit * e.std_error, conf,
                         e.p_value, "cs_multiplier_bootstrap_uniform_band", e.label)
        effects.append(e)
    from causalcli.data.types import period_json

    group_time_rows = [{"group": period_json(p.times[a], p.time_labels),
                        "time": period_json(p.times[b], p.time_labels), "att": float(v),
                        "std_error": float(s) if np.isfinite(s) else None}
                       for a, b, v, s in zip(gt.group, gt.time, gt.att, gt_se)]
    diagnostics: dict[str, Any] = {
        "panel": p.panel,
        "callaway_santanna": {"control_group": o.control_group, "method": o.method, "base_period": o.base_period,
                              "aggregation": o.aggregation, "covariates": list(p.xnames),
                              "standard_errors": ("multiplier bootstrap (Mammen weights, IQR scale), "
                                                  f"{o.draws} draws" if crit is not None else
                                                  "analytic, from the influence function: sqrt(mean(IF^2)/n)"),
                              "uniform_band_critical_value": crit},
        "group_time": group_time_rows,
        "aggregations": aggregations,
    }
    checks = []
    pt = pretest(gt)
    alpha = study.thresholds.alpha
    if pt is None or pt["p_value"] is None:
        checks.append(Check("pre_trend", None, "no pre-treatment ATT(g,t) to test" if pt is None else pt["reason"]))
    else:
        passed = bool(pt["p_value"] > alpha)
        pt["passed"] = passed
        checks.append(Check("pre_trend", passed,
                            f"Wald pre-test of {pt['df']} pre-treatment ATT(g,t): W = {pt['statistic']:.3g}, "
                            f"p = {pt['p_value']:.3g} {'>' if passed else '<='} {alpha}; " +
                            ("no evidence against parallel trends" if passed else
                             "pre-treatment effects are jointly non-zero: parallel trends look doubtful")))
    if pt is not None:
        diagnostics["pre_trend"] = pt
    if o.honest_did:
        from causalcli.designs.did.honest import relative_magnitude_sets

        es = agg["dynamic"]["event_times"]
        E = np.column_stack([inf for _, _, inf in agg["dynamic"]["elements"]])
        b = np.array([v for _, v, _ in agg["dynamic"]["elements"]])
        V = E.T @ E / n ** 2
        rel = [int(round(e)) for e in es]
        if any(r <= -1 for r in rel) and any(r >= 0 for r in rel):
            # varying base: pre-period effects are one-period changes; universal: levels against g-1
            diagnostics.setdefault("sensitivity", {})["honest_did"] = relative_magnitude_sets(
                b, V, rel, conf, reference_included=o.base_period == "varying",
                inputs=None if o.base_period == "varying" else
                "Callaway-Sant'Anna dynamic effects, universal base period: levels relative to event time -1")
            honest = diagnostics["sensitivity"]["honest_did"]
            if o.base_period == "varying" and np.unique(gt.group).size > 1 and "skipped" not in honest:
                honest["caveat"] = ("several cohorts with a varying base period: the pre-period changes are cumulated "
                                  "into levels, an approximation; options.base_period: universal gives the levels "
                                  "HonestDiD assumes")
    used = int(gt.n)
    nn = dict(p.n)
    nn.update({"used": used, "units_dropped_unbalanced": dropped, "group_time_cells": int(gt.att.size)})
    return Fit("callaway_santanna", "att", estimate, nn, effects=effects, diagnostics=diagnostics, checks=checks,
               warnings=warnings)
