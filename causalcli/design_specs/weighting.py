"""`design:` keys of `method: weighting` (not built yet: options are accepted and refused by the design)."""

from __future__ import annotations

from typing import Literal

from pydantic import Field

from causalcli.design_specs.base import DesignBase, FreeOptions


class WeightingDesign(DesignBase):
    method: Literal["weighting"]
    options: FreeOptions = Field(default_factory=FreeOptions)
