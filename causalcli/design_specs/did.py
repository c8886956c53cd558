"""`design:` keys of `method: did` (not built yet: options are accepted and refused by the design)."""

from __future__ import annotations

from typing import Literal

from pydantic import Field

from causalcli.design_specs.base import DesignBase, FreeOptions, Strict


class EventStudy(Strict):
    leads: int = Field(4, ge=0)
    lags: int = Field(4, ge=0)


class DidDesign(DesignBase):
    method: Literal["did"]
    unit: str
    time: str
    estimator: Literal["twfe", "2x2", "callaway_santanna"] = "twfe"
    cohort: str | None = None
    event_study: EventStudy | None = None
    cluster: str | None = None
    options: FreeOptions = Field(default_factory=FreeOptions)
