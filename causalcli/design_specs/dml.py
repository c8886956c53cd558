"""`design:` keys of `method: dml` (not built yet: options are accepted and refused by the design)."""

from __future__ import annotations

from typing import Literal

from pydantic import Field

from causalcli.design_specs.base import DesignBase, FreeOptions


class DmlDesign(DesignBase):
    method: Literal["dml"]
    options: FreeOptions = Field(default_factory=FreeOptions)
