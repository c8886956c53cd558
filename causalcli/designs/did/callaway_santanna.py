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
* the multiplier bootstrap (``causalcli.inference.bootstrap``) draws Mammen
  weights per unit, scales by the interquartile range, and takes the
  (1 - alpha) quantile of the largest |t| across event times for the uniform
  band of the dynamic aggregation;
* with few units or few treated units the headline's p-value and interval
  come from randomization inference over units (``with_few_units``).
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from typing import TYPE_CHECKING, Any

import numpy as np

from causalcli.errors import EstimationError
from causalcli.records import Check

if TYPE_CHECKING:  # pragma: no cover
    from causalcli.designs.base import Fit
    from causalcli.designs.did.panel import PanelData
    from causalcli.spec.models import Study

PS_TRIM = 0.995  # DRDID's trim.level for control propensity scores
PS_CAP = 1 - 1e-6


@dataclass
class GroupTime:
    group: np.ndarray   # cohort period index per cell
    time: np.ndarray    # period index per cell
    att: np.ndarray
    inf: np.ndarray | None  # n_units x cells (already scaled by n / n_gt); None: the values alone (refuters)
    n: int
    w: np.ndarray       # unit weights (mean 1)
    g_unit: np.ndarray  # unit cohort index (-1 never)
    # From cohort x period cells (``cells``): the rows of ``inf`` are not units but a factor of each cohort's
    # Gram matrix of (1, y_i1..y_iT); ``one`` is each such row's "1" coordinate, ``shares`` the cohort shares
    one: np.ndarray | None = None
    shares: dict | None = None


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
        if not np.all(np.isfinite(beta)):  # a numerically singular H under separation: solve() did not notice
            raise np.linalg.LinAlgError
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


def comparisons(g: np.ndarray, T: int, control: str, base_period: str) -> list[tuple[int, int, int, np.ndarray]]:
    """(cohort, period, base period, control units) of every ATT(g,t) with controls (``g``: unit cohorts)."""
    cohorts = np.unique(g[g >= 0])
    if control == "not_yet_treated" and not (g < 0).any():
        # as R's did without a never-treated group: periods from the last cohort's start on have no
        # control, and the last cohort serves only as a control
        T = int(cohorts.max())
        cohorts = cohorts[cohorts < T]
        if cohorts.size == 0:
            raise EstimationError("no never-treated units and a single cohort: nothing to compare with")
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
    return cells


def group_time(Y: np.ndarray, X: np.ndarray, w: np.ndarray, g: np.ndarray, control: str, method: str,
               closed_form: bool = True, base_period: str = "varying", with_inf: bool = True) -> GroupTime:
    """ATT(g,t) and their influence functions (units x cells) for every cohort g and period t.

    Without covariates the three methods coincide: the propensity score is the treated share and the
    outcome regression the controls' mean, so ATT(g,t) is a difference of weighted mean changes and its
    influence function has a closed form; ``closed_form`` computes all cells at once that way (the
    per-cell 2x2 estimators give the same numbers, as a test checks).
    """
    N = Y.shape[0]
    gs, ts, atts, infs = [], [], [], []
    wn = w / w.mean()
    cells = comparisons(g, Y.shape[1], control, base_period)
    if closed_form and X.shape[2] == 0:
        fast = _group_time_means(Y, wn, g, cells, with_inf=with_inf)
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
                      chunk: int = 32, with_inf: bool = True) -> tuple[np.ndarray, np.ndarray | None] | None:
    """ATT(g,t) = treated minus control weighted mean change, and the influence functions, for all cells.

    IF_i = N [w_i D_i (dy_i - m_t) / sum(w D) - w_i C_i (dy_i - m_c) / sum(w C)], which is what DRDID's
    panel estimators reduce to with an intercept only (None when a cell's treated share reaches the
    propensity trim, where the 2x2 estimator's trimming applies instead).
    """
    N = Y.shape[0]
    K = len(cells)
    atts = np.empty(K)
    inf = np.empty((N, K)) if with_inf else None
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
        if with_inf:  # a refuter's point estimate needs the ATT(g,t) alone
            inf[:, a:a + len(part)] = N * (wt * (dy - mt) / st - wc * (dy - mc) / sc)
    return atts, inf


def se_of(inf: np.ndarray, n: int) -> np.ndarray:
    """sqrt(mean(IF^2)/n) per column; tiny values are undefined, as R's did."""
    se = np.sqrt((inf ** 2).sum(axis=0) / n / n)  # the mean over the n units (``cells``: fewer rows, same sums)
    return np.where(se <= np.sqrt(np.finfo(float).eps) * 10, np.nan, se)


def _wif(keep: np.ndarray, pg: np.ndarray, w: np.ndarray, G: np.ndarray, group: np.ndarray,
         one: np.ndarray | None = None) -> np.ndarray:
    """aggte's influence of estimating the cohort shares (n x len(keep))."""
    spg = pg[keep].sum()
    ind = np.column_stack([w * (G == group[k]) - (pg[k] if one is None else pg[k] * one) for k in keep])
    if1 = ind / spg
    if2 = ind.sum(axis=1)[:, None] * (pg[keep] / spg ** 2)[None, :]
    return if1 - if2


def _agg(gt: GroupTime, keep: np.ndarray, pg: np.ndarray, with_wif: bool = True) -> tuple[float, np.ndarray]:
    wts = pg[keep] / pg[keep].sum()
    value = float(gt.att[keep] @ wts)
    if gt.inf is None:  # the value alone (refuters)
        return value, None
    inf = gt.inf[:, keep] @ wts
    if with_wif:
        inf = inf + _wif(keep, pg, gt.w, gt.g_unit, gt.group, gt.one) @ gt.att[keep]
    return value, inf


def aggregate(gt: GroupTime, times: np.ndarray, labels: tuple[str, ...] | None = None) -> dict[str, Any]:
    """The four aggregations of ``aggte``: values, labels (ISO days with ``labels``) and influence functions."""
    from causalcli.data.types import period_text

    pg_group = gt.shares or {gi: float(np.mean(gt.w * (gt.g_unit == gi))) for gi in np.unique(gt.group)}
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
        inf_g = None if gt.inf is None else gt.inf[:, keep] @ (pg[keep] / pg[keep].sum())
        els.append((f"group={period_text(times[gi], labels)}", val, inf_g))
        infs_g.append(inf_g)
        vals_g.append(val)
    pgg = np.array([pg_group[gi] for gi in glist])
    vals_g = np.asarray(vals_g)
    value = float(vals_g @ (pgg / pgg.sum()))
    inf = None
    if gt.inf is not None:
        wif = _wif(np.arange(glist.size), pgg, gt.w, gt.g_unit, glist, gt.one)
        inf = np.column_stack(infs_g) @ (pgg / pgg.sum()) + wif @ vals_g
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
    value = float(np.mean(np.asarray(vals_e)[pos]))
    inf = None if gt.inf is None else np.column_stack(infs_e)[:, pos].mean(axis=1)
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
    inf = None if gt.inf is None else np.column_stack(infs_t).mean(axis=1)
    out["calendar"] = {"overall": (value, inf), "elements": els}
    return out


SINGULAR_TOLERANCE = 1e-9  # a pre-test covariance is singular below this share of its largest singular value


def pretest(gt: GroupTime) -> dict[str, Any] | None:
    """R did's Wald pre-test: W = n b' V^-1 b on the pre-treatment ATT(g,t), V = IF'IF/n, chi2(q)."""
    from causalcli.inference.distributions import chi2_sf

    pre = np.flatnonzero(gt.group > gt.time)
    if pre.size == 0:
        return None
    V = gt.inf[:, pre].T @ gt.inf[:, pre] / gt.n
    b = gt.att[pre]
    # Singular, and its rank, relative to the largest singular value with room for rounding (as honest.py): V
    # from an engine's cells carries noise of ~1e-14 of it where the rows' V has ~1e-17, so R did's rule (solve()
    # fails below eps) passed a singular V from the cells to a Wald test of W ~ 1e13, p = 0, and numpy's default
    # rank counted the noise (castle: rank 21 from PostgreSQL, 19 from the file)
    singular_values = np.linalg.svd(V, compute_uv=False)
    rank = int(np.count_nonzero(singular_values > SINGULAR_TOLERANCE * singular_values[0]))
    if rank < pre.size:
        return {"statistic": None, "df": int(pre.size), "p_value": None,
                "reason": f"the covariance of the {pre.size} pre-treatment ATT(g,t) is singular (rank {rank}): too "
                          "few units behind them for a joint test of every one; look at the pre-treatment effects "
                          "one by one, or test fewer pre-periods (e.g. data.filter on the time column)"}
    W = float(gt.n * b @ np.linalg.solve(V, b))
    return {"statistic": W, "df": int(pre.size), "p_value": chi2_sf(W, pre.size),
            "distribution": f"chi2({pre.size})", "test": "Wald on the pre-treatment ATT(g,t), as R did::att_gt"}


def run_cs(p: "PanelData", g: np.ndarray | None = None, with_inf: bool = True):
    if g is not None and g is not p.g:
        p = replace(p, g=g)
    Y, X, w, gu, units, dropped = wide(p)
    if Y.shape[0] < 2:
        raise EstimationError("no unit is observed in every period; Callaway-Sant'Anna (panel) needs a balanced panel")
    gt = group_time(Y, X, w, gu, p.options.control_group, p.options.method, base_period=p.options.base_period,
                    with_inf=with_inf)
    return gt, dropped


def point_cs(p: "PanelData", treatment: np.ndarray) -> float:
    """The headline aggregation with cohorts ``treatment`` (refuters, randomization inference)."""
    gt, _ = run_cs(p, treatment, with_inf=False)
    agg = aggregate(gt, p.times, p.time_labels)
    return agg[p.options.aggregation]["overall"][0]


KINDS = ("simple", "group", "dynamic", "calendar")


@dataclass(frozen=True)
class StandardErrors:
    """Standard errors of every ATT(g,t) and aggregation: analytic, or from the multiplier bootstrap."""

    group_time: np.ndarray
    by_name: dict[str, float]        # "kind:label" -> bootstrap SE (empty: analytic)
    n: int
    inference: str = "cs_analytic"
    band: float | None = None        # critical value of the uniform band of the dynamic effects

    def of(self, kind: str, label: str, inf: np.ndarray) -> float:
        if self.by_name:
            return self.by_name[f"{kind}:{label}"]
        return float(se_of(inf[:, None], self.n)[0])


def standard_errors(gt: GroupTime, agg: dict[str, Any], options: Any, conf_level: float, seed: int) -> StandardErrors:
    """Analytic SEs, or (``bootstrap: multiplier``) bootstrap SEs of every estimate at once and the uniform band."""
    from causalcli.inference.bootstrap import iqr_standard_error, multiplier_bootstrap, uniform_critical_value

    n = gt.n
    if options.bootstrap != "multiplier":
        return StandardErrors(se_of(gt.inf, n), {}, n)
    cols = [gt.inf]
    names = ["gt"] * gt.inf.shape[1]
    for kind in KINDS:
        cols.append(agg[kind]["overall"][1][:, None])
        names.append(f"{kind}:overall")
        for lab, _, inf in agg[kind]["elements"]:
            cols.append(inf[:, None])
            names.append(f"{kind}:{lab}")
    draws = multiplier_bootstrap(np.column_stack(cols), options.draws, np.random.default_rng(seed),
                                 "did: multiplier bootstrap")
    bse = iqr_standard_error(draws, n)
    dynamic = [i for i, nm in enumerate(names) if nm.startswith("dynamic:event_time")]
    return StandardErrors(bse[: gt.att.size], {nm: float(s) for nm, s in zip(names, bse)}, n,
                          "cs_multiplier_bootstrap", uniform_critical_value(draws[:, dynamic], bse[dynamic], n, conf_level))


def pre_trend(gt: GroupTime, alpha: float, diagnostics: dict[str, Any]) -> Check:
    """The ``pre_trend`` check from R did's Wald pre-test (``pretest``), recorded in ``diagnostics.pre_trend``."""
    from causalcli.checks.pretrend import pre_trend_check, pre_trend_not_run

    pt = pretest(gt)
    if pt is None:
        return pre_trend_not_run("no pre-treatment ATT(g,t) to test", prefix="")
    diagnostics["pre_trend"] = pt
    if pt["p_value"] is None:
        return pre_trend_not_run(pt["reason"], prefix="")
    check = pre_trend_check(pt["statistic"], pt["p_value"], alpha,
                            f"Wald pre-test of {pt['df']} pre-treatment ATT(g,t)", symbol="W",
                            reassurance="no evidence against parallel trends")
    pt["passed"] = check.passed
    return check


def honest_did(gt: GroupTime, agg: dict[str, Any], options: Any, conf_level: float) -> dict[str, Any] | None:
    """Honest-DiD sets on the dynamic effects, or None without pre- and post-treatment event times."""
    from causalcli.designs.did.honest import relative_magnitude_sets

    elements = agg["dynamic"]["elements"]
    E = np.column_stack([inf for _, _, inf in elements])
    b = np.array([v for _, v, _ in elements])
    V = E.T @ E / gt.n ** 2
    rel = [int(round(e)) for e in agg["dynamic"]["event_times"]]
    if not (any(r <= -1 for r in rel) and any(r >= 0 for r in rel)):
        return None
    # varying base: pre-period effects are one-period changes; universal: levels against g-1
    varying = options.base_period == "varying"
    honest = relative_magnitude_sets(b, V, rel, conf_level, reference_included=varying, inputs=None if varying else
                                     "Callaway-Sant'Anna dynamic effects, universal base period: levels relative to "
                                     "event time -1")
    if varying and np.unique(gt.group).size > 1 and "skipped" not in honest:
        honest["caveat"] = ("several cohorts with a varying base period: the pre-period changes are cumulated "
                            "into levels, an approximation; options.base_period: universal gives the levels "
                            "HonestDiD assumes")
    return honest


def fit_cs(p: "PanelData", study: "Study", seed: int, computed: tuple[GroupTime, int] | None = None) -> "Fit":
    """The full Callaway-Sant'Anna fit (``DidDesign.fit`` runs it with BLAS on one thread); ``computed``: the
    ATT(g,t) and dropped units already known (from the engine's cells, ``cells``)."""
    from causalcli.data.types import period_json
    from causalcli.designs.base import Fit
    from causalcli.inference.estimate import normal_estimate

    o = p.options
    gt, dropped = run_cs(p) if computed is None else computed
    warnings = list(p.warnings)
    if dropped:
        warnings.append(f"{dropped} units not observed in every period were dropped (the panel estimator needs a "
                        "balanced panel, as R did::att_gt with panel = TRUE)")
    agg = aggregate(gt, p.times, p.time_labels)
    conf = study.conf_level
    ses = standard_errors(gt, agg, o, conf, seed)
    aggregations: dict[str, Any] = {}
    for kind in KINDS:
        val, inf = agg[kind]["overall"]
        entry = {"att": val, "std_error": ses.of(kind, "overall", inf), "elements": []}
        for lab, v, inf_e in agg[kind]["elements"]:
            entry["elements"].append({"label": lab, "att": v, "std_error": ses.of(kind, lab, inf_e)})
        aggregations[kind] = entry
    hv, hinf = agg[o.aggregation]["overall"]
    estimate = normal_estimate(hv, ses.of(o.aggregation, "overall", hinf), conf, ses.inference)
    effects = []
    for el in aggregations["dynamic"]["elements"]:
        e = normal_estimate(el["att"], el["std_error"], conf, ses.inference, el["label"])
        if ses.band is not None and e.std_error:
            e = replace(e, ci_lower=e.value - ses.band * e.std_error, ci_upper=e.value + ses.band * e.std_error,
                        inference="cs_multiplier_bootstrap_uniform_band")
        effects.append(e)
    group_time_rows = [{"group": period_json(p.times[a], p.time_labels),
                        "time": period_json(p.times[b], p.time_labels), "att": float(v),
                        "std_error": float(s) if np.isfinite(s) else None}
                       for a, b, v, s in zip(gt.group, gt.time, gt.att, ses.group_time)]
    diagnostics: dict[str, Any] = {
        "panel": p.panel,
        "callaway_santanna": {"control_group": o.control_group, "method": o.method, "base_period": o.base_period,
                              "aggregation": o.aggregation, "covariates": list(p.xnames),
                              "standard_errors": ("multiplier bootstrap (Mammen weights, IQR scale), "
                                                  f"{o.draws} draws" if ses.band is not None else
                                                  "analytic, from the influence function: sqrt(mean(IF^2)/n)"),
                              "uniform_band_critical_value": ses.band},
        "group_time": group_time_rows,
        "aggregations": aggregations,
    }
    checks = [pre_trend(gt, study.thresholds.alpha, diagnostics)]
    honest = honest_did(gt, agg, o, conf) if o.honest_did else None
    if honest is not None:
        diagnostics.setdefault("sensitivity", {})["honest_did"] = honest
    nn = dict(p.n)
    nn.update({"used": int(gt.n), "units_dropped_unbalanced": dropped, "group_time_cells": int(gt.att.size)})
    return Fit("callaway_santanna", "att", estimate, nn, effects=effects, diagnostics=diagnostics, checks=checks,
               warnings=warnings)


def with_few_units(p: "PanelData", fit: "Fit", study: "Study", seed: int) -> "Fit":
    """Callaway-Sant'Anna's SEs are unit-level (influence function); with few units or few treated units the
    p-value and interval come from randomization inference over units (``causalcli.designs.did.clusters``)."""
    from causalcli.checks.pretrend import not_judged
    from causalcli.designs.did.clusters import apply

    est, diag, check, warns = apply(p, estimate=fit.estimate, n_obs=None, k=None, conf_level=study.conf_level,
                                    draws=p.options.draws, seed=seed, wild=None, point=point_cs,
                                    analytic_name=fit.estimate.inference, unit_level=True)
    fit.diagnostics["clusters"] = diag
    effects, checks, warns = fit.effects, list(fit.checks), list(warns)
    if est.std_error is None:
        effects = [replace(e, std_error=None, ci_lower=None, ci_upper=None, p_value=None, inference="none")
                   for e in effects]
    elif diag.get("method") == "randomization_inference_units":
        # The analytic influence-function p-values of the other aggregations over-reject as the headline's
        # would; randomization inference is run for the headline only, so they carry no p or interval.
        effects = [replace(e, ci_lower=None, ci_upper=None, p_value=None, inference="none") for e in effects]
        warns.append("Callaway-Sant'Anna effects by group, period and event time carry their analytic standard "
                     "errors but no p-value or interval: with this few (treated) units the analytic (influence-function) "
                     "inference cannot be trusted, and randomization inference is run for the headline only")
        for i, c in enumerate(checks):
            if c.name == "pre_trend" and c.passed is not None:
                if isinstance(fit.diagnostics.get("pre_trend"), dict):
                    fit.diagnostics["pre_trend"]["passed"] = None
                    fit.diagnostics["pre_trend"]["not_judged"] = ("few (treated) units: the analytic Wald "
                                                                  "test cannot be trusted")
                checks[i] = not_judged(c, "with this few (treated) units this analytic test over-rejects (see the "
                                          "clusters check); look at the pre-period effects")
        # Honest-DiD sets are built on the same analytic SEs (organ donations: [-0.032, -0.011] at Mbar 0
        # beside a randomization p of 0.148); skipped, as the event study skips them on an unusable SE.
        sensitivity = fit.diagnostics.get("sensitivity")
        if isinstance(sensitivity, dict) and "honest_did" in sensitivity:
            sensitivity["honest_did"] = {"skipped": "its confidence sets rest on the analytic standard errors, "
                                                    "which cannot be trusted with this few (treated) units (see the "
                                                    "clusters check)"}
    return replace(fit, estimate=est, effects=effects, checks=[*checks, check], warnings=[*fit.warnings, *warns])
