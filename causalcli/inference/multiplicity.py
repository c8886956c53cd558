"""Multiple-testing corrections of a family of p-values, shared by experiment (metrics, arms, segment values),
weighting, iv, matching, did and rdd (segment values); and what those say of one segment column's effects
(``wald_equal``, the test that they are equal, ``differs_warning``, ``segment_column``)."""

from __future__ import annotations

from dataclasses import replace
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:  # pragma: no cover
    from causalcli.records import Estimate


def adjust(p_values: list[float], method: str) -> list[float]:
    """Holm (step-down) or Benjamini-Hochberg (step-up) adjusted p-values; NaN stays NaN and is not counted."""
    idx = [i for i, p in enumerate(p_values) if p == p]
    out = [float("nan")] * len(p_values)
    m = len(idx)
    if method == "none":
        return list(p_values)
    order = sorted(idx, key=lambda i: (p_values[i], i))
    if method == "holm":
        running = 0.0
        for rank, i in enumerate(order):
            running = max(running, min(1.0, (m - rank) * p_values[i]))
            out[i] = running
    elif method == "bh":
        running = 1.0
        for rank in range(m - 1, -1, -1):
            i = order[rank]
            running = min(running, min(1.0, m / (rank + 1) * p_values[i]))
            out[i] = running
    else:  # pragma: no cover - the spec model forbids others
        raise ValueError(method)
    return out


def corrected_over_values(rows: list["Estimate"], column: str, method: str) -> list["Estimate"]:
    """One segment column's effects with their p-values adjusted over its values, the family named in
    ``inference``."""
    family = f"; p_value_adjusted: {method} over {sum(r.p_value is not None for r in rows)} values of {column}"
    adjusted = adjust([float("nan") if r.p_value is None else r.p_value for r in rows], method)
    return [replace(r, inference=r.inference + family, p_value_adjusted=None if p != p else p)
            for r, p in zip(rows, adjusted)]


def differs_warning(column: str, test: dict[str, Any], alpha: float, columns: int) -> str | None:
    """The warning that a column's heterogeneity test rejects equal effects (None when it does not)."""
    if test["p_value"] is None or test["p_value"] >= alpha:
        return None
    return (f"the effect differs across the values of {column!r} (Wald chi-square = {test['statistic']:.2f} on "
            f"{test['df']} df, p = {test['p_value']:.3g} < thresholds.alpha {alpha}, one of {columns} tests, not "
            "corrected); the headline averages over the segments: read the segment effects")


def segment_column(rows: list["Estimate"], column: str, test: dict[str, Any], alpha: float, columns: int,
                   method: str = "holm") -> tuple[list["Estimate"], dict[str, Any], list[str]]:
    """One segment column's effects corrected over its values, its heterogeneity ``test`` labelled with the column,
    and the warning when that test rejects at ``alpha`` (one of ``columns`` tests)."""
    test = {"segment": column, **test}
    said = differs_warning(column, test, alpha, columns)
    return corrected_over_values(rows, column, method), test, [said] if said else []


def skipped_warning(skipped: list[str]) -> list[str]:
    """The warning naming the segment values with no effect reported (each ``label (why)``), or none."""
    if not skipped:
        return []
    return [f"no effect reported for {len(skipped)} segment value(s): {'; '.join(skipped[:5])}"
            + (f" and {len(skipped) - 5} more" if len(skipped) > 5 else "")]


def wald_equal(values: Any, covariance: Any) -> dict[str, Any]:
    """The Wald chi-square that k effects are equal: the k - 1 contrasts with the first, ``d' (C V C')^-1 d``
    (with a diagonal ``V``, independent effects, it is Cochran's Q: sum of ((b_j - b_w) / se_j)^2 about the
    inverse-variance mean b_w); fewer than 2 effects or a singular contrast covariance: no statistic."""
    import numpy as np

    b, V = np.asarray(values, dtype=np.float64), np.asarray(covariance, dtype=np.float64)
    k = b.size
    if k < 2:
        return {"statistic": None, "df": 0, "p_value": None, "values_compared": k}
    C = np.column_stack([-np.ones(k - 1), np.eye(k - 1)])
    diff = C @ b
    try:
        stat = float(diff @ np.linalg.solve(C @ V @ C.T, diff))
    except np.linalg.LinAlgError:
        return {"statistic": None, "df": k - 1, "p_value": None, "values_compared": k}
    from causalcli.inference.distributions import chi2_sf

    return {"statistic": stat, "df": k - 1, "p_value": chi2_sf(stat, k - 1), "values_compared": k}


def wald_independent(effects: list["Estimate"]) -> dict[str, Any]:
    """``wald_equal`` over the effects with a positive standard error, taken as independent (diagonal covariance:
    segments of disjoint rows or units)."""
    import numpy as np

    usable = [e for e in effects if e.std_error is not None and e.std_error > 0]
    return wald_equal([e.value for e in usable], np.diag([e.std_error ** 2 for e in usable]))
