"""`design:` keys of `method: time_series`."""

from __future__ import annotations

import datetime as dt
from typing import Literal

from pydantic import Field, model_validator

from causalcli.spec.base import DesignBase, Strict, off_default

ESTIMATOR_OPTIONS = {"structural": ("ar1", "draws", "parameter_draws", "expected_model_size", "prior_information_weight"),
                     "segmented": ("trend", "hac_lags")}  # the options each estimator alone reads


class TimeSeriesOptions(Strict):
    """Tuning of the two estimators."""

    ar1: bool = Field(
        True, description="structural: add an AR(1) state to the local level (false: CausalImpact's own default, "
        "local level only; with autocorrelated noise the local level alone under-covers).")
    draws: int = Field(
        1000, ge=100, le=100000, description="structural: simulated post-period paths (parameter draws from the "
        "MLE's asymptotic normal, each filtered and simulated forward), seeded by the study's seed.")
    parameter_draws: int = Field(
        50, ge=10, le=10000, description="structural: how many parameter vectors the draws are spread over "
        "(each filtered once; draws / parameter_draws paths each).")
    expected_model_size: float | None = Field(
        3.0, gt=0, description="structural: spike-and-slab prior on the controls: how many are expected to matter "
        "(each control is in with prior probability min(1, size / controls); 3 is CausalImpact's); null: no "
        "sparsity prior, every control in with a flat prior.")
    prior_information_weight: float = Field(
        0.01, gt=0, description="structural: the slab's weight in observations (BoomSpikeSlab's default 0.01: "
        "a Zellner prior worth a hundredth of an observation).")
    trend: bool = Field(True, description="segmented: a linear time trend (and its change at the intervention).")
    hac_lags: int | None = Field(
        None, ge=0, description="segmented: Newey-West lags (default max(floor(4 (T/100)^(2/9)), post periods // 4)).")


class TimeSeriesDesign(DesignBase):
    method: Literal["time_series"]
    time: str = Field(description="Date column (a date, a timestamp cut to the period in data.timezone, an ISO date "
                                  "string) or integer period column.")
    intervention: int | float | dt.date | str = Field(
        description="First treated period: a date (the period holding it is the first treated one) or a number.")
    controls: list[str] = Field(
        default_factory=list, description="Series not affected by the intervention, used as regressors: columns of "
        "a long table, or units of a panel (default with unit: every other unit).")
    estimator: Literal["structural", "segmented"] = Field(
        "structural", description="structural (local level + AR(1) + seasonal + regression, Kalman filter, MLE "
        "with parameter uncertainty simulated) or segmented (interrupted time series regression, HAC errors).")
    seasonality: int | None = Field(None, ge=2, description="Season length in periods (7: weekly in daily data).")
    aggregate: Literal["sum", "mean", "count"] | dict[str, Literal["sum", "mean", "count"]] | None = Field(
        None, description="Event-level input: sum, mean or count of rows per period, computed in the engine, one "
        "word for every column or per column ({sales: sum, price: mean}); without it a repeated period is a data "
        "error.")
    period: Literal["day", "trading_day", "week", "month", "quarter", "year"] | None = Field(
        None, description="Period dates are truncated to (ISO weeks start on Monday; months, quarters and years "
        "to their first day); trading_day: each day with a row is one period and days without one (weekends, "
        "holidays) are not periods (stock prices); default: day with aggregate, else read from the spacing of "
        "the dates.")
    unit: str | None = Field(None, description="Panel input: the unit column; the other units become controls.")
    treated_unit: str | int | None = Field(None, description="Panel input: the affected unit.")
    options: TimeSeriesOptions = Field(default_factory=TimeSeriesOptions)

    def unread_keys(self) -> dict[str, str]:
        other = "segmented" if self.estimator == "structural" else "structural"
        return {f"design.options.{name}": f"it is an option of estimator: {other}, not read by {self.estimator}; "
                f"remove it, or set design.estimator: {other}"
                for name in off_default(self.options, *ESTIMATOR_OPTIONS[other])}

    @model_validator(mode="after")
    def _panel_pair(self) -> "TimeSeriesDesign":
        if (self.unit is None) != (self.treated_unit is None):
            raise ValueError("a panel needs both unit and treated_unit (a long table needs neither)")
        return self

    def treated_rule(self) -> str | None:
        who = f"{self.unit} = {self.treated_unit}" if self.unit else "the outcome series"
        return f"{who} from {self.time} = {self.intervention}"

    def adjusts_for(self, covariates: list[str], adjustment_set: list[str]) -> str:
        """The counterfactual's regressors: the control series."""
        if self.unit:
            return "the other units' series as controls"
        return f"control series {', '.join(self.controls)}" if self.controls else "(none: no control series)"
