"""Bases shared by every design's spec models."""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field


class Strict(BaseModel):
    """Base of every spec model: unknown keys are errors, values are frozen."""

    model_config = ConfigDict(extra="forbid", frozen=True)


class FreeOptions(BaseModel):
    """Options of a design that is not built yet: accepted here, refused by the design."""

    model_config = ConfigDict(extra="allow", frozen=True)


class DesignBase(Strict):
    """Keys every `design:` block has besides `method`."""

    estimand: Literal["ate", "att", "atc", "late"] | None = Field(
        None, description="Target estimand; default: the design's first supported estimand (late: iv and a fuzzy "
                          "rdd, the effect on compliers)."
    )

    def treated_rule(self) -> str | None:
        """Who is treated, in words, when the design says it instead of a treatment column (`graph` prints it)."""
        return None

    def adjusts_for(self, covariates: list[str], adjustment_set: list[str]) -> str:
        """What the study adjusts for, in words (`validate` prints it): the graph's adjustment set."""
        return ", ".join(adjustment_set) or "(none)"


class TreatedDesignBase(DesignBase):
    """Keys of designs whose treatment column has a treated and a control value."""

    treated_value: bool | int | float | str | None = Field(
        None, description="The value of `treatment` that marks treated rows, when the column holds two values "
        "other than 0/1, true/false, yes/no or t/f (e.g. treated_value: treated); the other value is control.",
    )
