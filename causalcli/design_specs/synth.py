"""`design:` keys of `method: synthetic_control` (not built yet: options are accepted and refused by the design)."""

from __future__ import annotations

from typing import Any, Literal

from pydantic import Field

from causalcli.design_specs.base import DesignBase, FreeOptions


class SynthDesign(DesignBase):
    method: Literal["synthetic_control"]
    unit: str
    time: str
    treated_unit: str | int
    treatment_start: int | float | str
    predictors: list[str] = Field(default_factory=list)
    special_predictors: list[tuple[str, Any]] = Field(default_factory=list)
    options: FreeOptions = Field(default_factory=FreeOptions)
