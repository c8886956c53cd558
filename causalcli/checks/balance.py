"""Covariate balance between the arms, before and after adjustment (matching, weighting).

The balance table follows MatchIt 4.5's ``summary.matchit`` (functions
``bal1var``, ``wvar``, ``pooled_sd``), so the numbers equal MatchIt's on the same
weights (tests/reference/weighting and tests/reference/matching pin them):

* means are weighted means within each arm;
* a covariate is binary when all its values are 0 or 1; its variance is
  p (1 - p), otherwise the weighted variance with normalised weights
  ``sum w (x - m)^2 / (1 - sum w^2)`` (the usual n - 1 variance unweighted);
* the SMD denominator uses the *unadjusted* sample, the same before and after:
  the treated arm's SD for the ATT, the control arm's for the ATC, and
  ``sqrt((var_t + var_c) / 2)`` for the ATE (and the overlap population);
  a mean difference below sqrt(machine epsilon) is reported as is;
* the variance ratio (treated / control) is not defined for binary covariates.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np

if TYPE_CHECKING:  # pragma: no cover
    from causalcli.records import Check

__all__ = ["balance_matrix", "balance_table", "balance_check"]

_SQRT_EPS = float(np.sqrt(np.finfo(np.float64).eps))


class _Arm:
    """One arm's covariates, shifted by their mean for stable variances, and their squares (computed once)."""

    def __init__(self, X: np.ndarray, binary: np.ndarray) -> None:
        self.shift = X.mean(axis=0)
        self.D = X - self.shift
        self.D2 = self.D * self.D
        self.binary = binary

    def stats(self, w: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Weighted means and MatchIt variances of every column."""
        sw = float(w.sum())
        k = self.D.shape[1]
        if sw <= 0:
            return np.full(k, np.nan), np.full(k, np.nan)
        wn = w / sw
        dm = wn @ self.D
        m = self.shift + dm
        denom = 1.0 - float(np.dot(wn, wn))
        v = (wn @ self.D2 - dm * dm) / denom if denom > 0 else np.full(k, np.nan)
        return m, np.where(self.binary, m * (1.0 - m), v)


def balance_table(X: np.ndarray, t: np.ndarray, names: "list[str] | tuple[str, ...]", weights: np.ndarray,
                  estimand: str, *, sample_weights: np.ndarray | None = None) -> list[dict]:
    """Standardised mean differences and variance ratios before and after adjustment, per covariate.

    ``weights`` are the adjustment weights of every unit (matching: 1 for a
    matched focal unit plus its weight as a match, 0 if unused; weighting:
    the normalised inverse-probability weights, times the observation weights when there are any).
    ``sample_weights``: the observation (sampling) weights, MatchIt's ``s.weights``: the table before
    adjustment, and so the SMD's denominator, is weighted by them. See the comment above for
    the conventions (the module docstring), which are MatchIt's.
    """
    t = np.asarray(t, dtype=bool)
    w = np.asarray(weights, dtype=np.float64)
    s = np.ones(t.size) if sample_weights is None else np.asarray(sample_weights, dtype=np.float64)
    binary = np.all((X == 0) | (X == 1), axis=0)
    from causalcli.runtime.threads import single_threaded_blas

    with single_threaded_blas():  # thin matrix-vector products: threads only spin
        at, ac = _Arm(X[t], binary), _Arm(X[~t], binary)
        mt_b, vt = at.stats(s[t])
        mc_b, vc = ac.stats(s[~t])
        mt_a, vt_a = at.stats(w[t])
        mc_a, vc_a = ac.stats(w[~t])
    pooled = np.sqrt((vt + vc) / 2.0)
    sd = {"att": np.sqrt(vt), "atc": np.sqrt(vc)}.get(estimand, pooled)
    sd = np.where(np.isfinite(sd) & (sd >= _SQRT_EPS), sd, pooled)

    def smd(d: float, s: float) -> float:
        return float(d / s) if abs(d) > _SQRT_EPS and s > 0 else float(d)

    def vratio(a: float, b: float, is_bin: bool) -> float | None:
        return None if is_bin or not (b > 0) else float(a / b)

    rows = []
    for j, name in enumerate(names):
        rows.append({
            "covariate": name,
            "binary": bool(binary[j]),
            "mean_treated_before": float(mt_b[j]),
            "mean_control_before": float(mc_b[j]),
            "mean_treated_after": float(mt_a[j]),
            "mean_control_after": float(mc_a[j]),
            "smd_before": smd(mt_b[j] - mc_b[j], sd[j]),
            "smd_after": smd(mt_a[j] - mc_a[j], sd[j]),
            "variance_ratio_before": vratio(vt[j], vc[j], binary[j]),
            "variance_ratio_after": vratio(vt_a[j], vc_a[j], binary[j]),
        })
    return rows


def balance_check(balance: list[dict], limit: float, what: str) -> "Check":
    """Check: every |SMD| after adjustment at most ``limit`` (``thresholds.balance_smd``)."""
    from causalcli.records import Check

    worst = max(balance, key=lambda r: abs(r["smd_after"]) if np.isfinite(r["smd_after"]) else np.inf)
    value = abs(worst["smd_after"])
    passed = bool(value <= limit)
    if passed:
        return Check("balance", True, f"max |SMD| after {what} {value:.3f} <= {limit} ({worst['covariate']})")
    over = [r["covariate"] for r in balance if not abs(r["smd_after"]) <= limit]
    return Check("balance", False,
                 f"max |SMD| after {what} {value:.3f} > {limit} ({worst['covariate']}); imbalanced: "
                 f"{', '.join(over)}. The adjusted groups still differ on these covariates: add interactions "
                 "or squares to the propensity model, or restrict the sample")


def balance_matrix(arrays: dict, covariates: "list[str]", categorical: "list[str] | tuple[str, ...]"
                   ) -> "tuple[np.ndarray, list[str]]":
    """Covariates for the balance table: numeric columns as they are, every level of a categorical one.

    The model matrix drops a reference level; the balance table shows all of
    them, labelled ``column[level]``, as MatchIt's summary does.
    """
    cols, names = [], []
    for c in covariates:
        v = arrays[c]
        if c in categorical:
            text = v.astype(str)
            for level in np.unique(text):
                cols.append((text == level).astype(np.float64))
                names.append(f"{c}[{level}]")
        else:
            cols.append(np.asarray(v, dtype=np.float64))
            names.append(c)
    return np.column_stack(cols), names
