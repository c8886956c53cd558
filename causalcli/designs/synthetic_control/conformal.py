"""Conformal intervals for synthetic control effects (Chernozhukov, Wuethrich and Zhu 2021).

For a null effect ``theta`` the treated unit's post-period outcome is adjusted
(``Y1t - theta``), the synthetic control is refit on every period used (pre and
post alike, so that the residuals are exchangeable under the null), and the
residuals ``u`` give the statistic ``S(u) = sum_post |u_t| / sqrt(T1)`` (q = 1,
their eq. 2.4). Its p-value is the share of the T moving-block (cyclic)
permutations of ``u`` whose statistic is at least as large (their sec. 2.3);
the interval collects the nulls with p > alpha. The mean post-period effect is
tested as a constant effect over the post-period; each period's effect on the
pre-period plus that single period, as augsynth's ``conformal_inf`` does.

The refit is the synthetic control on outcomes: donor weights on the simplex
that best reproduce the adjusted outcome path (the constrained least squares of
CWZ's sec. 3), or, for ``augmented: ridge``, the ridge-augmented fit with the
same penalty. With the predictor-based (ADH) estimator the interval is thus that
of the outcome-path synthetic control, a close relative; diagnostics say so.
Moving blocks give p-values in steps of 1/T: when 1/T > alpha no interval exists.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache
from typing import TYPE_CHECKING, Any, Callable

import numpy as np

from causalcli.models.synthetic_weights import rows_gram, simplex_ls_rows

if TYPE_CHECKING:  # pragma: no cover
    from causalcli.designs.synthetic_control.panel import SynthData, UnitFit

BISECTION_STEPS = 30
WIDEN_TIMES = 3


@dataclass(frozen=True)
class Conformal:
    average: tuple[float, float] | None
    periods: list[tuple[float, float] | None] | None
    note: str
    refit: str
    interval_fit: str = "outcome_path_simplex"
    estimate_fit: str = "adh_nested"
    permutations: str = "moving block (cyclic shifts)"

    def to_dict(self) -> dict[str, Any]:
        # which fit the interval belongs to: with the ADH estimator it is NOT the fit behind the point estimate
        return {"method": "Chernozhukov, Wuethrich and Zhu (2021) test inversion",
                "interval_fit": self.interval_fit, "estimate_fit": self.estimate_fit,
                "interval_fit_is_estimate_fit": self.interval_fit == INTERVAL_FIT_OF.get(self.estimate_fit),
                "refit": self.refit,
                "statistic": "sum over post-periods of |residual| / sqrt(post-periods)",
                "permutations": self.permutations, "note": self.note,
                "average": list(self.average) if self.average else None}


# the estimator of ``diagnostics.fit.estimator`` -> the refit that is the same estimator on the outcome path
INTERVAL_FIT_OF = {"augmented_ridge": "outcome_path_ridge_augmented"}


def _refitter(d: "SynthData", Y0: np.ndarray | None = None) -> tuple[Callable[[np.ndarray, Any], np.ndarray], str]:
    """A function (y1, lam) -> residuals of the refit of y1 on the donors' outcomes ``Y0`` (those periods).

    Every null refits the same ``Y0`` against another y1, so the simplex fit's Gram matrix is formed once."""
    if d.augmented == "ridge":
        from causalcli.designs.synthetic_control.augmented import fit_ridge_ascm

        def ridge(y1: np.ndarray, lam: float) -> np.ndarray:
            a = fit_ridge_ascm(y1, Y0, lambda_=lam, cv=False)
            return y1 - Y0 @ a.w

        return ridge, "ridge-augmented synthetic control on the outcome path (penalty of the fit)"
    gram = None if Y0 is None else rows_gram(Y0)

    # each null starts from the last null's weights (the grid, then bisection, moves theta a little at a time): a
    # few active-set steps instead of the whole support added one donor at a time. The fitted path is unique, so
    # the residuals are a cold refit's to the solver's tolerance (tests/test_synth_conformal_speed.py)
    last: list = [None]

    def scm(y1: np.ndarray, lam: float) -> np.ndarray:
        f = simplex_ls_rows(Y0, y1, gram, last[0])
        last[0] = f.w
        return y1 - Y0 @ f.w

    return scm, "simplex-weighted synthetic control on the outcome path (CWZ sec. 3)"


@lru_cache(maxsize=8)
def _shift_windows(T: int, n_post: int) -> np.ndarray:
    """Row s: the positions of ``np.roll(u, s)[T - n_post:]`` in u, i.e. (i - s) mod T for the last n_post i."""
    idx = (np.arange(T - n_post, T)[None, :] - np.arange(T)[:, None]) % T
    idx.setflags(write=False)
    return idx


def _pvalue(u: np.ndarray, n_post: int) -> float:
    # every cyclic shift's post-period window at once; a row sums in the order np.sum sums one shift's window
    stats = np.abs(u)[_shift_windows(u.size, n_post)].sum(axis=1)
    return float(np.mean(stats >= stats[0] - 1e-12 * max(1.0, abs(stats[0]))))


def _invert(pfun: Callable[[float], float], center: float, scale: float, alpha: float,
            grid: int) -> tuple[float, float] | None:
    """Hull of {theta : p(theta) > alpha}, from a grid around ``center`` refined by bisection."""
    half = 5.0 * scale
    for _ in range(WIDEN_TIMES + 1):
        thetas = np.linspace(center - half, center + half, grid)
        ok = np.array([pfun(t) > alpha for t in thetas])
        if not ok.any():
            # the accepted set may be narrower than a grid step: look around the best grid point
            half /= 4.0
            continue
        idx = np.flatnonzero(ok)
        if idx[0] == 0 or idx[-1] == grid - 1:
            half *= 4.0
            continue

        def edge(inside: float, outside: float) -> float:
            for _ in range(BISECTION_STEPS):
                mid = 0.5 * (inside + outside)
                if pfun(mid) > alpha:
                    inside = mid
                else:
                    outside = mid
            return inside

        lo = edge(thetas[idx[0]], thetas[idx[0] - 1])
        hi = edge(thetas[idx[-1]], thetas[idx[-1] + 1])
        return float(lo), float(hi)
    return None


def mean_effect_pvalue(d: "SynthData", f: "UnitFit") -> Callable[[float], float]:
    """theta -> conformal p-value of a constant effect theta over the post-period (all periods refit)."""
    pre, post = d.pre, d.post
    T0, T1 = int(pre.sum()), int(post.sum())
    lam = f.extra.get("lambda") if d.augmented else None
    order = np.concatenate([np.flatnonzero(pre), np.flatnonzero(post)])
    y1, Y0o = d.Y[order, 0], d.Y[order, 1:]
    refit, _ = _refitter(d, Y0o)
    shift = np.zeros(T0 + T1)
    shift[T0:] = 1.0

    def p_avg(theta: float) -> float:
        return _pvalue(refit(y1 - theta * shift, lam), T1)

    return p_avg


def period_pvalue(d: "SynthData", f: "UnitFit", k: int) -> Callable[[float], float]:
    """theta -> conformal p-value of effect theta in the k-th post-period (refit on the pre-period and it)."""
    lam = f.extra.get("lambda") if d.augmented else None
    rows = np.append(np.flatnonzero(d.pre), np.flatnonzero(d.post)[k])
    yt, Yt = d.Y[rows, 0], d.Y[rows, 1:]
    refit, _ = _refitter(d, Yt)
    last = np.zeros(rows.size)
    last[-1] = 1.0

    def p_one(theta: float) -> float:
        return _pvalue(refit(yt - theta * last, lam), 1)

    return p_one


def conformal_intervals(d: "SynthData", f: "UnitFit", alpha: float) -> Conformal:
    from causalcli.runtime.threads import single_threaded_blas

    with single_threaded_blas():  # thin products, as in panel.fit_unit
        return _conformal_intervals(d, f, alpha)


def _conformal_intervals(d: "SynthData", f: "UnitFit", alpha: float) -> Conformal:
    pre, post = d.pre, d.post
    T0, T1 = int(pre.sum()), int(post.sum())
    _, what = _refitter(d)
    Y1 = d.Y[:, 0]
    post_gaps = f.gaps[post]
    scale = float(max(np.std(post_gaps), f.pre_rmspe, 1e-8 * max(1.0, float(np.abs(Y1).mean()))))
    notes = []
    average = None
    if (T0 + T1) * alpha < 1:
        notes.append(f"the mean-effect interval needs at least {int(np.ceil(1 / alpha))} periods for level "
                     f"{1 - alpha:g}; the panel has {T0 + T1}")
    else:
        average = _invert(mean_effect_pvalue(d, f), float(post_gaps.mean()), scale, alpha, d.conformal_grid)
        if average is None:
            notes.append("the mean-effect interval is unbounded or empty on the searched range")
    periods: list[tuple[float, float] | None] | None = None
    if (T0 + 1) * alpha < 1:
        notes.append(f"per-period intervals need at least {int(np.ceil(1 / alpha)) - 1} pre-periods for level "
                     f"{1 - alpha:g}; there are {T0}")
    else:
        periods = []
        for k, t in enumerate(np.flatnonzero(post)):
            periods.append(_invert(period_pvalue(d, f, k), float(f.gaps[t]), scale, alpha,
                                   max(20, d.conformal_grid // 2)))
    note = "; ".join(notes) if notes else "computed"
    return Conformal(average, periods, note, what,
                     interval_fit="outcome_path_ridge_augmented" if d.augmented == "ridge" else "outcome_path_simplex",
                     estimate_fit="augmented_ridge" if d.augmented else "adh_nested")
