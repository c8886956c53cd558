"""`design:` keys of `method: experiment` (randomised A/B/n experiments)."""

from __future__ import annotations

from typing import Any, Literal

from pydantic import Field, field_validator, model_serializer, model_validator

from causalcli.spec.base import DesignBase, Strict, WildBootstrapOptions


def arm_label(value: Any) -> str:
    """An arm value as text, the same for the data and the spec: 1.0 -> '1', True -> 'true'."""
    if hasattr(value, "item"):  # a numpy scalar read from the data (numpy is not imported by spec modules)
        value = value.item()
    if isinstance(value, bool):
        return str(value).lower()
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    return str(value)


PLAN_KEYS = ("mde", "mean", "sd", "power")  # read by `causalcli plan` only
QUANTILE_KEYS = ("quantile",)  # likewise left out of the dump when unset
UPTAKE_KEYS = ("uptake",)  # likewise


def _without_unset_plan_keys(dumped: dict) -> dict:
    """A spec that gives no planning key dumps (and so hashes: provenance.spec_sha256) as it did before them."""
    return {k: v for k, v in dumped.items() if not (k in (*PLAN_KEYS, *QUANTILE_KEYS, *UPTAKE_KEYS, "guardrail") and v is None)}


class Guardrail(Strict):
    """A metric that must not get worse: a non-inferiority check (causalcli.designs.experiment.guardrails)."""

    direction: Literal["increase_is_bad", "decrease_is_bad"] = Field(description="Which change is a harm.")
    margin: float = Field(description="The largest relative harm tolerated, as a share of the control mean "
                                      "(0.01 = 1%); 0 or more.")

    @field_validator("margin")
    @classmethod
    def _not_negative(cls, v: float) -> float:
        if not v >= 0:
            raise ValueError("a guardrail's margin is a relative harm of 0 or more (0.01 = 1% of the control "
                             "mean): give its size, and the harm's sign by 'direction'")
        return v


class Metric(Strict):
    """One metric: a mean (`outcome`) or a ratio of means (`numerator` / `denominator`)."""

    name: str = Field(description="Label of the metric in `effects` (metric/arm/abs|rel).")
    outcome: str | None = Field(None, description="Mean metric: the per-unit value column (Welch).")
    numerator: str | None = Field(None, description="Ratio metric: numerator column, summed per arm (delta method).")
    denominator: str | None = Field(None, description="Ratio metric: denominator column (e.g. sessions).")
    covariate: str | None = Field(
        None, description="CUPED: a pre-experiment value of the metric (for a ratio, the covariate numerator).")
    covariate_denominator: str | None = Field(
        None, description="Ratio metric CUPED: the covariate's denominator (the covariate is then a ratio).")
    covariates: list[str] = Field(
        default_factory=list,
        description="Regression adjustment on several pre-experiment columns (one coefficient vector pooled over "
                    "the two arms compared; with one column this is CUPED). Exclusive with `covariate`.")
    quantile: float | None = Field(
        None, gt=0, lt=1, description="Quantile metric: the difference of this quantile of `outcome` between arms "
                                      "(0.5, 0.9, 0.99...), with an order-statistic interval.")
    uptake: str | None = Field(
        None, description="Partial compliance: the column saying whether (0/1) or how much (a dose) a unit took up "
                          "what its arm offers; adds the complier average effect metric/arm/cace (Wald: the ITT "
                          "over the uptake difference, delta-method interval) and the check uptake:<metric>.")
    mde: float | None = Field(
        None, gt=0, description="For `causalcli plan`: the relative effect to detect (0.02 = 2% of the control mean).")
    mean: float | None = Field(
        None, description="For `causalcli plan` without data: the control mean (baseline rate of a proportion).")
    sd: float | None = Field(
        None, gt=0, description="For `causalcli plan` without data: the per-unit standard deviation (after CUPED); "
                                "for a proportion p, sqrt(p(1-p)). Given with `mean`, it is used instead of the data.")
    guardrail: Guardrail | None = Field(
        None, description="A metric that must not get worse: {direction: increase_is_bad | decrease_is_bad, margin}; "
                          "check guardrail:<metric> fails the study when the relative effect's interval does not "
                          "exclude a harm larger than margin.")

    @model_serializer(mode="wrap")
    def _dump(self, handler: Any) -> dict:
        return _without_unset_plan_keys(handler(self))

    @field_validator("quantile", mode="before")
    @classmethod
    def _level(cls, v: Any) -> Any:
        if isinstance(v, (int, float)) and not isinstance(v, bool) and not 0 < v < 1:
            hint = f" (did you mean {v / 100:g}?)" if 1 < v < 100 else ""
            raise ValueError(f"a quantile lies strictly between 0 and 1, e.g. 0.5 (median) or 0.99{hint}")
        return v

    @model_validator(mode="after")
    def _kind(self) -> "Metric":
        ratio = self.numerator is not None or self.denominator is not None
        if ratio and self.outcome is not None:
            raise ValueError("give either 'outcome' (a mean metric) or 'numerator' and 'denominator' (a ratio), not both")
        if ratio and (self.numerator is None or self.denominator is None):
            raise ValueError("a ratio metric needs both 'numerator' and 'denominator'")
        if not ratio and self.outcome is None:
            raise ValueError("a metric needs 'outcome' (a mean) or 'numerator' and 'denominator' (a ratio)")
        if self.covariate is not None and self.covariates:
            raise ValueError("give 'covariate' (CUPED) or 'covariates' (regression adjustment), not both")
        if self.covariate_denominator is not None and (self.covariate is None or not ratio):
            raise ValueError("'covariate_denominator' needs a ratio metric with 'covariate'")
        if self.quantile is not None and (ratio or self.covariate is not None or self.covariates):
            raise ValueError("a quantile metric takes 'outcome' only: quantiles of ratios and covariate-adjusted "
                             "(CUPED) quantiles are not built; remove 'quantile' or the other keys")
        return self


class ExperimentOptions(WildBootstrapOptions):
    """Tuning of the experiment analysis."""

    distribution: Literal["t", "normal"] = Field(
        "t", description="t: Student t with Welch-Satterthwaite degrees of freedom (as tea-tasting); normal: z.")
    relative_ci: Literal["delta", "log"] = Field(
        "delta", description="Relative effect interval: delta method on the ratio of means (symmetric), or "
                             "tea-tasting's interval on the log ratio of means (asymmetric).")
    cap_quantile: float | None = Field(
        None, gt=0.5, lt=1,
        description="Cap (winsorise) outcome, numerator and covariate columns at this upper quantile of the pooled "
                    "data (exact quantile; one extra pass over the data).")
    alpha: float = Field(0.05, gt=0, lt=1, description="Significance level of the minimum detectable effect (MDE).")
    power: float = Field(0.8, gt=0, lt=1, description="Power of the minimum detectable effect (MDE).")


class Sequential(Strict):
    """Sequential testing: intervals and p-values valid however often the results are read."""

    method: Literal["always_valid", "group_sequential"] = Field(
        description="always_valid: asymptotic confidence sequences (Waudby-Smith et al. 2023, as GrowthBook); "
                    "group_sequential: Lan-DeMets alpha spending over `looks` (needs design.time).")
    tuning: float = Field(
        5000, gt=0, description="always_valid: the total sample size (both arms) at which the sequence is "
                                "narrowest relative to a fixed-horizon interval (GrowthBook's default 5000).")
    looks: int | None = Field(
        None, ge=1, le=1000, description="group_sequential: planned looks, one per period of design.time.")
    spending: Literal["obrien_fleming", "pocock"] = Field(
        "obrien_fleming", description="group_sequential: the Lan-DeMets spending function.")

    @model_validator(mode="after")
    def _keys_of_method(self) -> "Sequential":
        if self.method == "group_sequential" and self.looks is None:
            raise ValueError("group_sequential needs 'looks' (the number of planned looks, one per period of "
                             "design.time)")
        given = self.model_fields_set
        wrong = ["tuning"] if self.method == "group_sequential" and "tuning" in given else \
            [k for k in ("looks", "spending") if self.method == "always_valid" and k in given]
        if wrong:
            raise ValueError(f"'{wrong[0]}' does not apply to method {self.method}; remove it")
        return self


class ExperimentDesign(DesignBase):
    method: Literal["experiment"]
    control: bool | int | float | str = Field(
        description="The value of `treatment` that marks the control arm (0 matches 0.0 in a float column).")
    expected_split: dict[str, float] | None = Field(
        None, description="Planned allocation {arm: share}, for the sample-ratio-mismatch check (not run without "
                          "it; its order also orders the arms). Keys are arm values (numbers match as in `control`).")

    @field_validator("expected_split", mode="before")
    @classmethod
    def _arm_keys(cls, v: Any) -> Any:
        """YAML reads `0: 0.5` with an integer key: arms are matched by their text (arm_label)."""
        if isinstance(v, dict):
            return {arm_label(k): share for k, share in v.items()}
        return v
    unit: str | None = Field(
        None, description="The randomisation unit column when rows are finer (sessions, views): rows are summed to "
                          "units in the engine and analysed with the delta method (clustered on the unit).")
    time: str | None = Field(
        None, description="Exposure or analysis date column: an integer period, a date, a timestamp (cut to the day "
                          "in data.timezone) or an ISO date string. Adds the cumulative effect of the first metric "
                          "by period (diagnostics.cumulative, fixed-horizon intervals) and its plot.")
    sequential: Sequential | None = Field(
        None, description="Sequential testing: the final intervals and p-values are always-valid or group-sequential "
                          "ones, valid when results are read every day.")
    correction: Literal["holm", "bh", "none"] = Field(
        "holm", description="Multiple-testing correction across metrics and arms: holm, bh (Benjamini-Hochberg), none.")
    metrics: list[Metric] = Field(default_factory=list, description="Metrics; the first is primary (`estimate`).")
    power: float | None = Field(
        None, gt=0, lt=1, description="For `causalcli plan`: the power to detect each metric's `mde` (default "
                                      "options.power, 0.8).")
    options: ExperimentOptions = Field(default_factory=ExperimentOptions)

    @model_serializer(mode="wrap")
    def _dump(self, handler: Any) -> dict:
        dumped = _without_unset_plan_keys(handler(self))
        if dumped.get("unit") is None:  # a spec without a unit hashes as it did before the key
            dumped.pop("unit", None)
        return dumped

    @model_validator(mode="after")
    def _unique(self) -> "ExperimentDesign":
        names = [m.name for m in self.metrics]
        dup = sorted({n for n in names if names.count(n) > 1})
        if dup:
            raise ValueError(f"metric names must be unique; repeated: {', '.join(dup)}")
        if any("/" in n for n in names):
            raise ValueError("metric names cannot contain '/' (effects are labelled metric/arm/abs)")
        if self.expected_split is not None:
            if any(v <= 0 for v in self.expected_split.values()):
                raise ValueError("expected_split shares must be positive")
            total = sum(self.expected_split.values())
            if abs(total - 1) > 1e-6 and abs(total - 100) > 1e-6:
                raise ValueError(f"expected_split shares must sum to 1 (or 100); they sum to {total:g}")
        return self

    def adjusts_for(self, covariates: list[str], adjustment_set: list[str]) -> str:
        """No graph: each metric adjusts for its own CUPED or regression columns, named with the metrics."""
        users: dict[str, list[str]] = {}
        for m in self.metrics:
            for column in ([m.covariate] if m.covariate else []) + list(m.covariates):
                users.setdefault(column, []).append(m.name)
        if not users:
            return "(none: no metric has a covariate)"
        return ", ".join(f"{column} (in {', '.join(names)})" for column, names in users.items())
