"""`design:` keys of `method: synthetic_control`."""

from __future__ import annotations

import datetime as dt
from typing import Any, Literal

from pydantic import Field, field_validator, model_serializer, model_validator

from causalcli.spec.base import DesignBase, Strict, off_default

# a value of the time column: a number, or a date (a YAML date or an ISO string) when time holds dates
Period = int | float | dt.date | str


# keys added with synthetic DiD (v1.1): a spec that leaves them at their defaults dumps (and so hashes:
# provenance.spec_sha256) as it did before them
_SDID_OPTION_DEFAULTS = {"variant": "sdid", "se": "placebo", "replications": 200}
# and with the partially pooled synthetic control (several or staggered treated units, pooled.py)
_POOLED_OPTION_DEFAULTS = {"nu": None, "weight_penalty": 0.0, "fixed_effects": False}
# and with the placebo budget and the engine's aggregation (issues 15 and 16)
_BUDGET_OPTION_DEFAULTS = {"placebo_units": None}
_SDID_DESIGN_DEFAULTS = {"estimator": "synthetic_control", "aggregate": None}


def _without_defaults(out: dict, defaults: dict[str, Any]) -> dict:
    for key, default in defaults.items():
        if out.get(key, default) == default:
            out.pop(key, None)
    return out


def _reversed(a: Any, b: Any) -> bool:
    """first > last, for two numbers or two dates (YAML dates or ISO strings, compared as ISO text)."""
    if all(isinstance(x, (int, float)) for x in (a, b)):
        return a > b
    if all(isinstance(x, (dt.date, str)) for x in (a, b)):
        return str(a)[:10] > str(b)[:10]
    return False  # mixed: the design says the period is not of the time column's type


class DonorOptions(Strict):
    """Which units may enter the synthetic control (default: every unit but the treated one)."""

    include: list[str | int] = Field(
        default_factory=list, description="Only these units are donors (empty: every unit but the treated one)."
    )
    exclude: list[str | int] = Field(default_factory=list, description="Units never used as donors.")


class CrossValidation(Strict):
    """Cross-validated V (Abadie, Diamond and Hainmueller 2015, sec. 3): a training fit on earlier
    predictors picks the V whose synthetic control best predicts the outcome over a validation window;
    the donor weights then come from the main predictors with that V."""

    predictors_window: tuple[Period, Period] = Field(
        description="[first, last] period over which `predictors` are averaged in the training fit."
    )
    validate_window: tuple[Period, Period] = Field(
        description="[first, last] pre-period whose outcome fit chooses V (after the training window)."
    )
    special_predictors: list[tuple[str, Any]] | None = Field(
        None, description="Special predictors of the training fit, as design.special_predictors "
        "(default: the design's own)."
    )

    @field_validator("predictors_window", "validate_window")
    @classmethod
    def _ordered(cls, v: tuple[Period, Period]) -> tuple[Period, Period]:
        if _reversed(v[0], v[1]):
            raise ValueError("needs [first, last] with first <= last")
        return v


class SynthOptions(Strict):
    """Synthetic control (Abadie, Diamond and Hainmueller 2010)."""

    v: Literal["nested", "equal", "regression", "cross_validated"] = Field(
        "nested",
        description="Predictor weights V: nested (optimised for the pre-period outcome fit, as R Synth), "
        "equal, regression (R Synth's regression-based V, not optimised), or cross_validated (chosen on a "
        "training/validation split, as Abadie, Diamond and Hainmueller 2015; needs options.cross_validation).",
    )
    cross_validation: CrossValidation | None = Field(
        None, description="Training and validation windows of v: cross_validated."
    )
    starts: int = Field(
        8, ge=1, le=64,
        description="Deterministic starts of the nested V search (equal, regression, then fixed Dirichlet "
        "draws); the lowest pre-period outcome loss is kept.",
    )
    donors: DonorOptions = Field(default_factory=DonorOptions, description="Donor pool: include / exclude units.")
    predictors_window: tuple[Period, Period] | None = Field(
        None, description="[first, last] period over which `predictors` are averaged (default: every pre-period)."
    )
    optimize_window: tuple[Period, Period] | None = Field(
        None, description="[first, last] pre-period whose outcome fit V minimises (default: every pre-period)."
    )
    augmented: Literal["ridge"] | None = Field(
        None, description="ridge: the augmented synthetic control of Ben-Michael, Feller and Rothstein (2021) "
        "on the pre-period outcomes, instead of the predictor-based fit."
    )
    ridge_lambda: float | None = Field(
        None, gt=0, description="Ridge penalty of the augmented estimator (default: forward validation over "
        "the pre-period on a 20-value log grid, one-standard-error rule, in the manner of augsynth)."
    )
    conformal: bool = Field(
        True, description="Conformal interval of the mean post-period effect and per-period intervals "
        "(Chernozhukov, Wuethrich and Zhu 2021, moving-block permutations)."
    )
    conformal_grid: int = Field(
        100, ge=10, le=2000, description="Candidate effects tried when inverting the conformal test."
    )
    variant: Literal["sdid", "sc", "did"] = Field(
        "sdid", description="estimator: synthetic_did only. sdid: unit and time weights (Arkhangelsky et al. 2021); "
        "sc: synthdid's sc_estimate (unit weights without intercept, no time weights); did: uniform weights.",
    )
    se: Literal["placebo", "bootstrap", "jackknife"] = Field(
        "placebo", description="estimator: synthetic_did, and the pooled synthetic control of several or "
        "staggered treated units. Standard error: placebo (Algorithm 4), bootstrap (Algorithm 2) or jackknife "
        "(Algorithm 3); the last two need several treated units.",
    )
    replications: int = Field(
        200, ge=2, le=100_000, description="estimator: synthetic_did, and the pooled synthetic control. Placebo or "
        "bootstrap replications.",
    )
    nu: float | None = Field(
        None, ge=0, le=1, description="Several or staggered treated units under estimator: synthetic_control "
        "(the partially pooled synthetic control of Ben-Michael, Feller and Rothstein 2022): the weight of the "
        "pooled imbalance against the units' own (0: a separate fit per unit; 1: the average unit alone). "
        "Default: the paper's heuristic, the ratio of pooled to unit-level imbalance of the separate fits.",
    )
    weight_penalty: float = Field(
        0.0, ge=0, description="Partially pooled synthetic control: ridge penalty lambda on the weights "
        "(augsynth multisynth's lambda; 0: none).",
    )
    fixed_effects: bool = Field(
        False, description="Partially pooled synthetic control: each unit's pre-period mean taken out before "
        "the fit (the intercept-shifted estimator; augsynth multisynth's fixedeff).",
    )

    placebo_units: int | None = Field(
        None, ge=19, description="Placebo-in-space fits at most: with more donors than this, this many are drawn "
        "(seeded) and the p-value reports its Monte Carlo standard error. Default: the fewest whose Monte Carlo "
        "standard error at p = alpha is at most alpha / 3, rounded so that fits + 1 is a multiple of 100 (199 at "
        "alpha 0.05); every donor below it, as before.",
    )

    @field_validator("predictors_window", "optimize_window")
    @classmethod
    def _ordered(cls, v: tuple[Period, Period] | None) -> tuple[Period, Period] | None:
        if v is not None and _reversed(v[0], v[1]):
            raise ValueError("needs [first, last] with first <= last")
        return v

    @model_serializer(mode="wrap")
    def _dump(self, handler: Any) -> dict:
        return _without_defaults(handler(self), {**_SDID_OPTION_DEFAULTS, **_POOLED_OPTION_DEFAULTS,
                                                 **_BUDGET_OPTION_DEFAULTS})

    @model_validator(mode="after")
    def _cross_validation_pairs(self) -> "SynthOptions":
        if self.v == "cross_validated" and self.cross_validation is None:
            raise ValueError("v: cross_validated needs cross_validation: {predictors_window: [a, b], "
                             "validate_window: [c, d]}")
        if self.cross_validation is not None and self.v != "cross_validated":
            raise ValueError("cross_validation is used only with v: cross_validated")
        if self.cross_validation is not None and self.augmented:
            raise ValueError("augmented: ridge fits the outcome path and takes no V: drop cross_validation")
        return self


class SynthDesign(DesignBase):
    method: Literal["synthetic_control"]
    unit: str = Field(description="Unit column (state, region, market).")
    time: str = Field(description="Period column: numbers (year, week number), dates, timestamps (cut to days in "
                                  "data.timezone) or ISO date strings; results are labelled by date.")
    estimator: Literal["synthetic_control", "synthetic_did"] = Field(
        "synthetic_control", description="synthetic_control: donor weights on predictors (Abadie et al. 2010); "
        "synthetic_did: unit and time weights on the outcome path (Arkhangelsky et al. 2021).",
    )
    treated_unit: str | int | list[str | int] = Field(
        description="The treated unit, a value of the unit column; a list of them for several treated units "
                    "(estimator: synthetic_did, or synthetic_control without predictors: partially pooled).")
    treatment_start: int | float | dt.date | str = Field(
        description="First treated period, a value of the time column (a date such as 2011-07-01 when it holds "
                    "dates), or a column holding each unit's adoption period "
                    "(staggered adoption; empty or 0: never treated).")
    predictors: list[str] = Field(
        default_factory=list, description="Columns averaged over the pre-period (or options.predictors_window)."
    )
    special_predictors: list[tuple[str, Any]] = Field(
        default_factory=list,
        description="[column, period], [column, [periods...]] (averaged) or [column, {from: a, to: b}].",
    )
    aggregate: Literal["sum", "mean", "count"] | dict[str, Literal["sum", "mean", "count"]] | None = Field(
        None, description="Finer-than-panel input (e.g. one row per user and day): sum, mean or count of the rows of "
        "each unit and period, computed in the engine (as time_series' aggregate), one word for every column or "
        "per column ({sales: sum, price: mean}); without it a repeated unit and period is a data error.")
    options: SynthOptions = Field(default_factory=SynthOptions)

    @field_validator("treated_unit")
    @classmethod
    def _some_unit(cls, v: Any) -> Any:
        if isinstance(v, list) and not v:
            raise ValueError("needs at least one unit")
        return v

    @model_serializer(mode="wrap")
    def _dump(self, handler: Any) -> dict:
        return _without_defaults(handler(self), _SDID_DESIGN_DEFAULTS)

    def unread_keys(self) -> dict[str, str]:
        # synthetic_did refuses every option of this estimator in its own words (synthdid.py)
        o, out = self.options, {}
        if self.estimator == "synthetic_control" and not o.conformal and off_default(o, "conformal_grid"):
            out["design.options.conformal_grid"] = ("it sets the conformal interval's grid, and conformal is false; "
                                                    "remove it, or set design.options.conformal: true")
        if self.estimator == "synthetic_control" and not o.augmented and o.ridge_lambda is not None:
            out["design.options.ridge_lambda"] = ("it is the ridge penalty of augmented: ridge, which is not set; "
                                                  "remove it, or set design.options.augmented: ridge")
        return out

    def adjusts_for(self, covariates: list[str], adjustment_set: list[str]) -> str:
        """What the donors are matched on: the predictors, else the outcome's pre-period path."""
        named = [*self.predictors, *(str(p[0]) for p in self.special_predictors)]
        return ("donors matched on " + ", ".join(dict.fromkeys(named)) if named else
                "donors matched on the outcome's pre-period path")

    def treated_rule(self) -> str | None:
        if not isinstance(self.treated_unit, list):
            return f"{self.unit} = {self.treated_unit} from {self.time} = {self.treatment_start}"
        who = f"{self.unit} in ({', '.join(str(u) for u in self.treated_unit)})"
        from causalcli.designs.synthetic_control.staggered import is_staggered

        if is_staggered(self):
            return f"{who}, each from its {self.treatment_start}"
        return f"{who} from {self.time} = {self.treatment_start}"
