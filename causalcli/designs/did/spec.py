"""`design:` keys of `method: did` (difference-in-differences)."""

from __future__ import annotations

from typing import Any, Literal

from pydantic import Field, model_serializer

from causalcli.spec.base import Strict, TreatedDesignBase, off_default


def _without_unset(out: dict, key: str) -> dict:
    """A dump without a key added later when it is unset, so older specs dump (and hash: provenance.spec_sha256)
    as before."""
    if out.get(key) is None:
        out.pop(key, None)
    return out


class EventStudy(Strict):
    """Relative periods -leads..-2 and 0..lags around the first treated period; -1 is the reference."""

    leads: int = Field(4, ge=0, le=50, description="Pre periods shown: -leads..-2 (period -leads bins every earlier one).")
    lags: int = Field(4, ge=0, le=50, description="Post periods shown: 0..lags (period lags bins every later one).")


CS_ONLY = ("control_group", "method", "base_period", "aggregation")  # read by callaway_santanna alone


class DidOptions(Strict):
    """Tuning knobs of difference-in-differences."""

    control_group: Literal["never_treated", "not_yet_treated"] = Field(
        "never_treated", description="Callaway-Sant'Anna comparison units: never treated, or also those not yet treated.")
    method: Literal["dr", "ipw", "reg"] = Field(
        "dr", description="Callaway-Sant'Anna ATT(g,t): doubly robust, inverse probability weighting, outcome regression.")
    base_period: Literal["varying", "universal"] = Field(
        "varying", description="Callaway-Sant'Anna pre-treatment ATT(g,t): varying (period t against t-1, R did's "
        "default) or universal (every period against g-1, so pre-period effects are levels, as an event study's; "
        "the input HonestDiD asks for).")
    aggregation: Literal["simple", "dynamic", "group", "calendar"] = Field(
        "simple", description="Callaway-Sant'Anna headline estimate: which aggregation of ATT(g,t) it reports.")
    bootstrap: Literal["none", "multiplier", "wild"] = Field(
        "none", description="none: analytic SEs, except with few clusters (fewer than 42, or fewer than 6 treated), "
                            "where the p-value and interval come from the wild cluster bootstrap or, with one "
                            "treated cluster, randomization inference over units; multiplier: Callaway-Sant'Anna "
                            "multiplier bootstrap with uniform bands; wild: wild cluster bootstrap (null imposed) "
                            "for 2x2/TWFE whatever the number of clusters.")
    wild_weights: Literal["auto", "webb", "rademacher"] = Field(
        "auto", description="Wild cluster bootstrap weights: auto (Webb's six-point weights below 12 clusters, "
                            "Rademacher from 12), webb or rademacher.")
    draws: int = Field(999, ge=99, le=100_000, description="Bootstrap draws.")
    honest_did: bool = Field(True, description="Event study and Callaway-Sant'Anna: Rambachan-Roth "
                                               "relative-magnitude confidence sets (C-LF) and breakdown value.")
    tolerance: float = Field(1e-10, gt=0, le=1e-4,
                             description="Convergence of the fixed-effect demeaning (alternating projections).")
    headline: Literal["callaway_santanna", "imputation", "sun_abraham", "twfe"] | None = Field(
        None, description="estimator: all only. The estimator whose overall effect is the headline estimate "
                          "(default callaway_santanna; the next that runs when it cannot: imputation, sun_abraham, "
                          "twfe).")

    @model_serializer(mode="wrap")
    def _dump(self, handler: Any) -> dict:
        return _without_unset(handler(self), "headline")  # added with estimator: all


class DidDesign(TreatedDesignBase):
    method: Literal["did"]
    unit: str | None = Field(None, description="Unit identifier column (panel). Left out: repeated cross-sections "
                             "(each row a different person or house, seen once), estimator 2x2 with design.group "
                             "or design.cohort.")
    time: str = Field(description="Time period column: numbers (e.g. years), dates, timestamps (cut to days in "
                                  "data.timezone) or ISO date strings; results are labelled by date.")
    estimator: Literal["twfe", "2x2", "callaway_santanna", "imputation", "sun_abraham", "all"] = Field(
        "twfe", description="twfe: unit and time fixed effects; 2x2: treated x post; callaway_santanna: staggered "
                            "adoption; imputation: Borusyak, Jaravel and Spiess (2024); sun_abraham: Sun and Abraham "
                            "(2021) interaction-weighted event study; all: twfe, callaway_santanna, imputation, "
                            "sun_abraham and (few treated units) synthetic DiD on the same panel, side by side.")
    cohort: str | None = Field(None, description="Column: first treated period of each unit, in the time column's "
                                                "type (a date when time is a date); 0 or empty = never treated.")
    group: str | None = Field(None, description="The 0/1 column marking the treated group's rows, before and after "
                                                "the start (repeated cross-sections: kielmc's nearinc); the start "
                                                "is the first period in which 'treatment' is 1.")
    event_study: EventStudy | None = Field(None, description="TWFE event study with binned end points (with "
                                                              "estimator: all, the window of TWFE's event study).")
    cluster: str | None = Field(None, description="Cluster column for CRV1 standard errors (default: the unit).")
    options: DidOptions = Field(default_factory=DidOptions)

    @model_serializer(mode="wrap")
    def _dump(self, handler: Any) -> dict:
        return _without_unset(handler(self), "group")  # added with repeated cross-sections

    def treated_rule(self) -> str | None:
        return f"{self.time} >= {self.cohort} (the cohort column)" if self.cohort else None

    def unread_keys(self) -> dict[str, str]:
        # estimator: all hands each option to the estimators that read it; imputation and sun_abraham refuse
        # control_group and aggregation in their own words (staggered.py)
        if self.estimator in ("callaway_santanna", "all"):
            return {}
        names = ("method", "base_period") if self.estimator in ("imputation", "sun_abraham") else CS_ONLY
        return {f"design.options.{name}": "it is a Callaway-Sant'Anna option, not read by estimator: "
                f"{self.estimator}; remove it, or set design.estimator: callaway_santanna"
                for name in off_default(self.options, *names)}
