"""`design:` keys of `method: rdd` (regression discontinuity)."""

from __future__ import annotations

from typing import Literal

from pydantic import Field

from causalcli.spec.base import DesignBase, WildBootstrapOptions


class RddOptions(WildBootstrapOptions):
    """Local-polynomial settings (rdrobust's conventions and defaults), and the wild cluster bootstrap's with few
    clusters."""

    kernel: Literal["triangular", "uniform", "epanechnikov"] = Field(
        "triangular", description="Kernel of the local fits (rdrobust's default: triangular).")
    bandwidth: Literal["mserd", "msetwo", "cerrd", "certwo"] | float = Field(
        "mserd", description="Bandwidth selector: mserd (one MSE-optimal bandwidth, the default), msetwo (one each "
                             "side), cerrd / certwo (coverage-error-optimal); or a number: h on both sides, b = h.")
    p: int = Field(1, ge=0, le=4, description="Order of the local polynomial (1: local linear); the bias "
                                               "correction uses order p+1.")
    placebo_cutoffs: list[float] | None = Field(
        None, description="Cutoffs where nothing happens, for the placebo_cutoffs check (each fitted on its own side "
                          "of the real cutoff); default: the medians of the running variable on each side.")


class RddDesign(DesignBase):
    method: Literal["rdd"]
    running: str = Field(description="The running variable (score): treated at or above the cutoff.")
    cutoff: float = Field(description="The threshold of the running variable.")
    fuzzy: str | None = Field(None, description="Take-up column (fuzzy design): the effect of taking the treatment "
                                                "up, the ratio of the outcome's jump to its jump at the cutoff.")
    cluster: str | None = Field(None, description="Cluster column: cluster-robust (CR1) standard errors, and the "
                                                  "clusters check (at least 42 clusters within the bandwidth, 6 on "
                                                  "each side; with fewer, the p-value and interval come from the "
                                                  "wild cluster bootstrap).")
    options: RddOptions = Field(default_factory=RddOptions)

    def treated_rule(self) -> str | None:
        rule = f"{self.running} >= {self.cutoff:g}"
        return f"{self.fuzzy} (instrumented by {rule})" if self.fuzzy else rule

    def adjusts_for(self, covariates: list[str], adjustment_set: list[str]) -> str:
        said = super().adjusts_for(covariates, adjustment_set)  # covariates: each its own RD (balance), not adjusted for
        return f"{said}; covariates checked for balance at the cutoff: {', '.join(covariates)}" if covariates else said
