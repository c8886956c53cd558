"""Bases shared by every design's spec models."""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, model_serializer


class Strict(BaseModel):
    """Base of every spec model: unknown keys are errors, values are frozen."""

    model_config = ConfigDict(extra="forbid", frozen=True)


class WildBootstrapOptions(Strict):
    """The wild cluster bootstrap's settings for designs that use it only with few clusters (iv, rdd, experiment)."""

    wild_weights: Literal["auto", "webb", "rademacher"] = Field(
        "auto", description="With few clusters (under 42, or for experiments with design.unit also under 6 units in "
                            "an arm): the wild cluster bootstrap's weights, auto (Webb's six-point weights below 12 "
                            "clusters, Rademacher from there on), webb or rademacher.")
    draws: int = Field(999, ge=99, le=100_000, description="With few clusters: wild bootstrap draws (enumerated "
                                                           "instead when there are fewer distinct ones).")

    @model_serializer(mode="wrap")
    def _without_default_bootstrap_keys(self, handler: Any) -> dict:
        # at their defaults these keys are left out, so that a spec without them hashes (provenance.spec_sha256)
        # as it did before they existed
        out = handler(self)
        asked = off_default(self, "wild_weights", "draws")
        for key in ("wild_weights", "draws"):
            if key not in asked:
                out.pop(key, None)
        return out


def off_default(options: BaseModel, *names: str) -> list[str]:
    """The options among ``names`` set to a value other than their default: what a spec asks of an estimator.
    An option left at its default asks nothing, so a spec switched between estimators (``--set
    design.estimator=...``) keeps working."""
    fields = type(options).model_fields
    return [n for n in names if getattr(options, n) != fields[n].get_default(call_default_factory=True)]


class FreeOptions(BaseModel):
    """Options of a design that is not built yet: accepted here, refused by the design."""

    model_config = ConfigDict(extra="allow", frozen=True)


class DesignBase(Strict):
    """Keys every `design:` block has besides `method`."""

    estimand: Literal["ate", "att", "atc", "late"] | None = Field(
        None, description="Target estimand; default: the design's first supported estimand (late: iv and a fuzzy "
                          "rdd, the effect on compliers)."
    )

    def unread_keys(self) -> dict[str, str]:
        """Keys of this block set to something that its other keys leave unread (an option of another
        estimator), each with why and what to do: refused (exit 2) by ``designs.base.refuse_unbuilt`` rather than
        ignored. The default: none."""
        return {}

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
