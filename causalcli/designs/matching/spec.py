"""`design:` keys of `method: matching`."""

from __future__ import annotations

from typing import Literal

from pydantic import Field

from causalcli.spec.base import Strict, TreatedDesignBase


class MatchingOptions(Strict):
    """Nearest-neighbour propensity-score matching (estimands att, atc, ate)."""

    neighbors: int = Field(1, ge=1, le=50, description="Matches per treated unit (k); ties are all kept.")
    caliper: float | None = Field(
        None, gt=0, description="Drop treated units with no control within this many SDs of the logit score."
    )
    replace: bool = Field(
        True, description="Match with replacement; false: each unit is a match at most once (greedy, in data order)."
    )
    distance: Literal["propensity", "mahalanobis"] = Field(
        "propensity", description="Distance: logit propensity score, or Mahalanobis on the covariates (no caliper)."
    )
    exact: list[str] = Field(default_factory=list, description="Match only within equal values of these columns.")
    bias_correction: bool = Field(
        False, description="Abadie-Imbens (2011) regression bias correction on the covariates (Match's BiasAdjust)."
    )
    se: Literal["ai2016", "ai2006"] = Field(
        "ai2016", description="SE on the propensity score (headline and segments): ai2016 adjusts for the "
        "estimated score (Abadie-Imbens 2016) where it applies; ai2006 treats the score as known, as R's Match does."
    )
    tolerance: float = Field(
        1e-5, gt=0, description="Scores closer than this (in SDs) count as ties, as R's Matching does."
    )


class MatchingDesign(TreatedDesignBase):
    method: Literal["matching"]
    options: MatchingOptions = Field(default_factory=MatchingOptions)
