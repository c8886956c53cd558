"""MSE- and CER-optimal bandwidths of local-polynomial RD, as rdrobust's ``rdbwselect`` computes them.

Calonico, Cattaneo and Titiunik (2014, Econometrica), Calonico, Cattaneo and Farrell (2020, Econometrics
Journal), and the rdrobust software article (Calonico, Cattaneo, Farrell and Titiunik 2017, Stata Journal):
a rule-of-thumb pilot bandwidth; a pilot fit of order q+1 for the bias of the bias estimator (bandwidth d);
the bias bandwidth b; the main bandwidth h, each (V / (B^2 + R))^(1/(2o+3)) with R the regularisation term
3 BConst^2 Var(B) (scale 1). The running variable and the outcome are divided by their standard deviations
first (rdrobust's ``stdvars``), and bandwidths are capped at the range of the running variable (``bwrestrict``).
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import numpy as np

from causalcli.designs.rdd.local_poly import (PILOT_CONSTANT, RowResiduals, Side, ValueResiduals, distinct,
                                              fuzzy_gradient, inverse, powers, residuals)

SELECTORS = ("mserd", "msetwo", "cerrd", "certwo")
_EDGE = 1 + math.sqrt(np.finfo(np.float64).eps)
MASS_POINT_SHARE = 0.2  # rdrobust: at least this share of repeated values makes the pilot keep 10 distinct values
MASS_POINT_MINIMUM = 10


@dataclass
class _SidePilot:
    """One side's data (standardised) and the pilot fits at the pilot bandwidth, by (order, derivative)."""

    side: Side
    kernel: str
    matches: int
    fuzzy: bool
    pilot: float
    fits: dict[tuple[int, int], tuple[float, float, np.ndarray]] = field(default_factory=dict)
    # by window: the same rows, the same residuals
    nn: dict[tuple[int, int], RowResiduals | ValueResiduals] = field(default_factory=dict)

    def _residuals(self, part: slice, R: np.ndarray, beta: np.ndarray) -> RowResiduals | ValueResiduals:
        if self.side.clusters is not None:
            return residuals(self.side, part, R @ beta, self.matches)
        key = (part.start, part.stop)
        if key not in self.nn:
            self.nn[key] = residuals(self.side, part, None, self.matches)
        return self.nn[key]

    def _variance_fit(self, o: int, nu: int) -> tuple[float, float, np.ndarray]:
        """Var of the nu-th derivative of an order-o fit at the pilot bandwidth, its bias constant, and the
        linear combination s of (outcome, treatment) that the fuzzy ratio's linearisation gives."""
        key = (o, nu)
        if key in self.fits:
            return self.fits[key]
        h = self.pilot
        part, w = self.side.window(h, self.kernel)  # K(x/h)/h times the rows' weights
        x, D = self.side.x[part], self.side.fit_D(part)
        if distinct(x) < o + 1:
            self.fits[key] = (math.nan, math.nan, np.ones(1))
            return self.fits[key]
        R = powers(x, o)
        RW = R * w[:, None]
        invG = inverse(self.side.gram(part, RW, R))
        beta = invG @ (RW.T @ D)
        s = np.ones(1)
        if self.fuzzy:
            tau_y, tau_t = math.factorial(nu) * beta[nu, 0], math.factorial(nu) * beta[nu, 1]
            s = fuzzy_gradient(tau_y, tau_t)
        res = self._residuals(part, R, beta)
        V = (invG @ res.meat(RW, s, o + 1) @ invG)[nu, nu]
        bias_constant = (h ** nu) * (invG @ self.side.gram(part, RW, (x / h) ** (o + 1)))[nu]
        self.fits[key] = (float(V), float(bias_constant), s)
        return self.fits[key]

    def constants(self, o: int, nu: int, o_bias: int, h_bias: float, scale: float
                  ) -> tuple[float, float, float, float]:
        """(V, B, R, rate) of rdrobust's ``rdrobust_bw``: variance and bias of the order-o estimator of the
        nu-th derivative, the bias's leading term from an order-``o_bias`` fit at ``h_bias``, and R, the
        regularisation (the variance of that bias estimate)."""
        rate = 1 / (2 * o + 3)
        V_V, bias_constant, s = self._variance_fit(o, nu)
        if not math.isfinite(V_V) or not (math.isfinite(h_bias) and h_bias > 0):
            return math.nan, math.nan, math.nan, rate
        part, w = self.side.window(h_bias, self.kernel)
        x, D = self.side.x[part], self.side.fit_D(part)
        if distinct(x) < o_bias + 1:
            return math.nan, math.nan, math.nan, rate
        R = powers(x, o_bias)
        RW = R * w[:, None]
        invG = inverse(self.side.gram(part, RW, R))
        beta = invG @ (RW.T @ D)
        regularisation = 0.0
        if scale > 0:
            res = self._residuals(part, R, beta)
            V_B = (invG @ res.meat(RW, s, o_bias + 1) @ invG)[-1, -1]
            regularisation = 3 * bias_constant ** 2 * V_B
        B = math.sqrt(2 * (o + 1 - nu)) * bias_constant * float(s @ beta[-1, :])
        V = (2 * nu + 1) * self.pilot ** (2 * nu + 1) * V_V
        return V, B, scale * 2 * (o + 1 - nu) * regularisation, rate


@dataclass(frozen=True)
class Bandwidths:
    h_left: float
    h_right: float
    b_left: float
    b_right: float
    selector: str

    def as_dict(self) -> dict[str, float | str]:
        return {"h_left": self.h_left, "h_right": self.h_right, "b_left": self.b_left, "b_right": self.b_right,
                "selector": self.selector}


def type2_quantile(x: np.ndarray, ends: np.ndarray | None, prob: float) -> float:
    """Hyndman-Fan type 2 quantile (R's type=2, as rdrobust uses for the interquartile range) of sorted rows;
    or of sorted values with ``ends``, the cumulated counts (row i is at the value whose end passes i)."""
    n = x.size if ends is None else int(ends[-1])
    pos = n * prob
    j = int(math.floor(pos))

    def row(i: int) -> float:
        return x[i] if ends is None else x[int(np.searchsorted(ends, i, side="right"))]

    return float(0.5 * (row(j - 1) + row(j))) if pos == j else float(row(j))


def _spreads(left: Side, right: Side) -> tuple[int, float, float, float, bool]:
    """Rows, the standard deviations of x and of the outcome, x's interquartile range, and whether the take-up
    varies on both sides; from rows, or from values with their counts, sums and scatter."""
    x = np.concatenate([left.x, right.x])  # sorted: left is below the cutoff
    D = np.concatenate([left.D, right.D])
    if left.counts is None:
        N = x.size
        iqr = type2_quantile(x, None, 0.75) - type2_quantile(x, None, 0.25)
        fuzzy = D.shape[1] > 1 and np.var(left.D[:, 1]) > 0 and np.var(right.D[:, 1]) > 0
        return N, float(np.std(x, ddof=1)), float(np.std(D[:, 0], ddof=1)), iqr, fuzzy
    counts = np.concatenate([left.counts, right.counts])
    ends = np.cumsum(counts)
    N = int(ends[-1])
    x_ss = float(counts @ (x - (counts @ x) / N) ** 2)
    y_ss = _sum_of_squares(counts, D[:, 0], np.concatenate([left.scatter, right.scatter])[:, 0, 0])
    iqr = type2_quantile(x, ends, 0.75) - type2_quantile(x, ends, 0.25)
    fuzzy = D.shape[1] > 1 and all(_sum_of_squares(s.counts, s.D[:, 1], s.scatter[:, 1, 1]) > 0
                                    for s in (left, right))
    return N, math.sqrt(x_ss / (N - 1)), math.sqrt(y_ss / (N - 1)), iqr, fuzzy


def _sum_of_squares(counts: np.ndarray, sums: np.ndarray, within: np.ndarray) -> float:
    """Sum over rows of (d - mean)^2 from each value's count, sum and scatter: within plus between values."""
    mean = sums.sum() / counts.sum()
    return float(within.sum() + counts @ (sums / counts - mean) ** 2)


def select(left: Side, right: Side, *, p: int, q: int, kernel: str, selector: str, matches: int = 3,
           n_clusters: int | None = None) -> Bandwidths:
    """The bandwidths (h_left, h_right, b_left, b_right) of ``selector`` in the running variable's units.

    ``left``/``right`` hold x - cutoff (sorted) and the outcome (and treatment, fuzzy), as rows or collapsed;
    ``n_clusters`` is the clusters counted on each side and added (the CER rate's sample size with clusters,
    as rdrobust).
    """
    N, x_sd, y_sd, iqr, fuzzy = _spreads(left, right)
    spread = min(1.0, (iqr / x_sd) / 1.349)
    sl, sr = (side.scaled(x_sd, y_sd, 2 if fuzzy else 1) for side in (left, right))
    distinct_l, distinct_r = distinct(sl.x), distinct(sr.x)
    mass = max(1 - distinct_l / left.rows, 1 - distinct_r / right.rows) >= MASS_POINT_SHARE
    pilot = PILOT_CONSTANT[kernel] * spread * (distinct_l + distinct_r) ** (-1 / 5)
    max_l, max_r = abs(float(sl.x[0])), abs(float(sr.x[-1]))
    pilot = min(pilot, max(max_l, max_r))
    min_l = min_r = 0.0
    if mass:  # at least 10 distinct values of x on each side within the pilot windows
        min_l = abs(float(_values(sl.x)[::-1][min(MASS_POINT_MINIMUM, distinct_l) - 1])) * _EDGE
        min_r = abs(float(_values(sr.x)[min(MASS_POINT_MINIMUM, distinct_r) - 1])) * _EDGE
        pilot = max(pilot, min_l, min_r)
    L = _SidePilot(sl, kernel, matches, fuzzy, pilot)
    Rt = _SidePilot(sr, kernel, matches, fuzzy, pilot)
    d_l = L.constants(q + 1, q + 1, q + 2, max_l * _EDGE, 0)
    d_r = Rt.constants(q + 1, q + 1, q + 2, max_r * _EDGE, 0)
    two = selector in ("msetwo", "certwo")
    if two:
        h_l, b_l = _one_side(L, d_l, p, q, max_l, min_l if mass else None)
        h_r, b_r = _one_side(Rt, d_r, p, q, max_r, min_r if mass else None)
    else:
        bound = max(max_l, max_r)
        d = _combined(d_l, d_r)
        d = min(d, bound)
        if mass:
            d = max(d, min_l, min_r)
        b = min(_combined(L.constants(q, p + 1, q + 1, d, 1), Rt.constants(q, p + 1, q + 1, d, 1)), bound)
        h = min(_combined(L.constants(p, 0, q, b, 1), Rt.constants(p, 0, q, b, 1)), bound)
        h_l = h_r = h
        b_l = b_r = b
    scale = 1.0
    if selector.startswith("cer"):  # Calonico, Cattaneo and Farrell (2020): shrink h to the CER-optimal rate
        size = n_clusters if n_clusters is not None else N
        scale = size ** (-(p / ((3 + p) * (3 + 2 * p))))
    return Bandwidths(x_sd * h_l * scale, x_sd * h_r * scale, x_sd * b_l, x_sd * b_r, selector)


def _values(x_sorted: np.ndarray) -> np.ndarray:
    """The distinct values of a sorted array, ascending."""
    return x_sorted[np.r_[True, x_sorted[1:] != x_sorted[:-1]]]


def _combined(c_l: tuple[float, float, float, float], c_r: tuple[float, float, float, float]) -> float:
    """The common bandwidth for the difference of the two sides' estimates."""
    (V_l, B_l, R_l, rate), (V_r, B_r, R_r, _) = c_l, c_r
    return ((V_l + V_r) / ((B_r - B_l) ** 2 + R_l + R_r)) ** rate


def _one_side(side: _SidePilot, d_const: tuple[float, float, float, float], p: int, q: int, bound: float,
              minimum: float | None) -> tuple[float, float]:
    """One side's own (h, b) (msetwo)."""
    V, B, _, rate = d_const
    d = min((V / B ** 2) ** rate, bound)
    if minimum is not None:
        d = max(d, minimum)
    V, B, R, rate = side.constants(q, p + 1, q + 1, d, 1)
    b = min((V / (B ** 2 + R)) ** rate, bound)
    V, B, R, rate = side.constants(p, 0, q, b, 1)
    h = min((V / (B ** 2 + R)) ** rate, bound)
    return h, b
