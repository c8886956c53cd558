"""`design:` keys of `method: experiment` (not built yet: options are accepted and refused by the design)."""

from __future__ import annotations

from typing import Literal

from pydantic import Field

from causalcli.design_specs.base import DesignBase, FreeOptions, Strict


class Metric(Strict):
    name: str
    outcome: str | None = None
    covariate: str | None = None
    numerator: str | None = None
    denominator: str | None = None


class ExperimentDesign(DesignBase):
    method: Literal["experiment"]
    control: str | int
    expected_split: dict[str, float] | None = None
    correction: Literal["holm", "bh", "none"] = "holm"
    metrics: list[Metric] = Field(default_factory=list)
    options: FreeOptions = Field(default_factory=FreeOptions)
