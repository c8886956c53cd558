"""Placebo-in-space inference (Abadie, Diamond and Hainmueller 2010, sec. 4.2) under a budget of fits.

Each placebo unit is a donor refit as if it were treated, from all the other donors; the
p-value is the rank of the treated unit's post/pre RMSPE ratio among the treated unit and the
placebos. A placebo fit costs about as much as the treated unit's fit (linear in the number of
donors J above ``DENSE_MAX_DONORS``), so placebos over every donor cost O(J^2): 72 s at 625 units
against 0.2 s for the fit itself. Above a budget of B placebo fits, B donors are drawn without
replacement (seeded by the study's seed, so reruns are identical) and the treated unit is ranked
among them: under the permutation null (the treated unit exchangeable with the donors) its rank
among B + 1 units drawn at random is still uniform, so p = rank / (B + 1) is an exact test at any B
(the Monte Carlo permutation test; Phipson and Smyth 2010); B only sets its precision as an
estimate of the p-value over every donor: Monte Carlo standard error sqrt(p (1 - p) / B).

B (``design.options.placebo_units``, default ``default_placebo_units``) is the fewest fits whose
Monte Carlo standard error at p = alpha is at most alpha / 3, rounded up so that B + 1 is a
multiple of 100: 199 at alpha 0.05 (standard error 0.015 at p = 0.05), 99 at 0.10, 899 at 0.01.
A pool of at most B donors is refit in full, as before the budget (every bundled example and
published study has tens of donors), and its p-value is exact.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import numpy as np

if TYPE_CHECKING:  # pragma: no cover
    from causalcli.designs.synthetic_control.panel import SynthData, UnitFit

STATISTIC = ("post/pre RMSPE ratio; p = rank of the treated unit's ratio among all units (ties count against "
             "it) / units")
SE_OF_ALPHA = 1 / 3  # the Monte Carlo standard error of p at p = alpha that the default budget allows, over alpha


def default_placebo_units(alpha: float) -> int:
    """The fewest placebo fits B with sqrt(alpha (1 - alpha) / B) <= alpha / 3, B + 1 a multiple of 100."""
    need = math.ceil((1 - alpha) / (alpha * SE_OF_ALPHA ** 2) - 1e-9)
    return max(100, math.ceil((need + 1) / 100) * 100) - 1


def placebo_columns(donors: int, budget: int, seed: int) -> tuple[np.ndarray, bool]:
    """The donor columns (1..J of Y) refit as placebos, and whether they are a draw (J > budget)."""
    if donors <= budget:
        return np.arange(1, donors + 1), False
    rng = np.random.default_rng(seed)
    return np.sort(rng.choice(donors, size=budget, replace=False)) + 1, True


@dataclass(frozen=True)
class PlaceboInSpace:
    p_value: float
    rank: int
    columns: np.ndarray  # the placebo units' columns of Y
    gaps: np.ndarray  # periods x placebo units
    ratios: np.ndarray
    pre_rmspe: np.ndarray
    period_p: np.ndarray  # per post-period p-value of the standardised gap
    donors: int
    drawn: bool
    seed: int

    @property
    def units(self) -> int:
        """Units ranked: the treated unit and the placebos."""
        return int(self.columns.size) + 1

    @property
    def monte_carlo_se(self) -> float:
        """Monte Carlo standard error of p as an estimate of the p-value over every donor (0: all were refit)."""
        return math.sqrt(self.p_value * (1 - self.p_value) / self.columns.size) if self.drawn else 0.0

    def to_dict(self, names: tuple[str, ...]) -> dict[str, Any]:
        out: dict[str, Any] = {
            "p_value": self.p_value, "rank": self.rank, "units": self.units, "statistic": STATISTIC,
            "ratios": {names[j]: float(r) for j, r in zip(self.columns, self.ratios)},
            "pre_rmspe": {names[j]: float(r) for j, r in zip(self.columns, self.pre_rmspe)},
        }
        if self.drawn:  # only then: a full pool's result reads as it did before the budget
            out.update({
                "donors": self.donors, "placebo_units": int(self.columns.size),
                "placebo_draw": f"{self.columns.size} of {self.donors} donors drawn without replacement (seed "
                                f"{self.seed}); p is an exact permutation p-value among the units drawn and estimates "
                                f"the p-value over every donor with Monte Carlo standard error sqrt(p (1 - p) / "
                                f"{self.columns.size})",
                "monte_carlo_se": self.monte_carlo_se,
            })
        return out


def placebo_in_space_test(d: "SynthData", f: "UnitFit", budget: int, seed: int, jobs: int) -> PlaceboInSpace:
    """Refit the placebo units and rank the treated unit among them (overall and per post-period)."""
    from causalcli.designs.synthetic_control.panel import placebo_in_space, rmspe

    donors = d.Y.shape[1] - 1
    columns, drawn = placebo_columns(donors, budget, seed)
    gaps = placebo_in_space(d, jobs, [int(j) for j in columns])
    pre, post = d.pre, d.post
    pre_r, post_r = rmspe(gaps, pre), rmspe(gaps, post)
    ratio_treated = f.post_rmspe / f.pre_rmspe if f.pre_rmspe > 0 else math.inf
    with np.errstate(divide="ignore", invalid="ignore"):
        ratios = np.where(pre_r > 0, post_r / pre_r, np.inf)
    # rank among the treated unit and the placebos, ties counted against the treated unit
    rank = 1 + int(np.count_nonzero(ratios >= ratio_treated))
    units = columns.size + 1
    # per-period: |gap| scaled by the unit's pre-RMSPE, ranked the same way
    std_treated = np.abs(f.gaps[post]) / max(f.pre_rmspe, 1e-300)
    with np.errstate(divide="ignore", invalid="ignore"):
        std_placebo = np.abs(gaps[post]) / np.where(pre_r > 0, pre_r, np.nan)
    period_p = (1 + np.sum(np.nan_to_num(std_placebo, nan=np.inf) >= std_treated[:, None], axis=1)) / units
    return PlaceboInSpace(rank / units, rank, columns, gaps, ratios, pre_r, period_p, donors, drawn, seed)
