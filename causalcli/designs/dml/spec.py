"""`design:` keys of `method: dml` (double machine learning through EconML).

Effects by segment use the study's top-level ``segments`` key; observation weights its ``weights`` key.
"""

from __future__ import annotations

from typing import Literal

from pydantic import Field, field_validator

from causalcli.spec.base import Strict, TreatedDesignBase, off_default


class DmlOptions(Strict):
    """Double machine learning: the final model, the nuisance learners and cross-fitting."""

    model: Literal["linear", "forest"] = Field(
        "linear",
        description="Final stage: linear (EconML LinearDML: a constant effect, or one per segment) or forest "
        "(EconML CausalForestDML: heterogeneous effects over the covariates).",
    )
    learner: Literal["gbm", "lasso", "forest", "linear"] = Field(
        "gbm",
        description="Nuisance models E[Y|X] and E[T|X]: gbm (histogram gradient boosting), lasso (LassoCV / "
        "L1 LogisticRegressionCV on standardised covariates), forest (random forest), linear (OLS / logistic).",
    )
    folds: int = Field(5, ge=2, le=20, description="Cross-fitting folds (stratified by treatment when binary).")
    treatment_type: Literal["auto", "binary", "continuous"] = Field(
        "auto", description="auto: binary when the treatment only takes 0 and 1, else continuous."
    )
    trees: int = Field(200, ge=4, le=5000, description="model: forest: trees in the causal forest (a multiple of 4).")
    min_leaf: int = Field(5, ge=1, description="model: forest: minimum units per leaf of the causal forest.")

    @field_validator("trees")
    @classmethod
    def _multiple_of_four(cls, v: int) -> int:
        if v % 4:
            raise ValueError("must be a multiple of 4 (EconML grows the forest in sub-forests of 4 trees)")
        return v


class DmlDesign(TreatedDesignBase):
    method: Literal["dml"]
    options: DmlOptions = Field(default_factory=DmlOptions)

    def unread_keys(self) -> dict[str, str]:
        if self.options.model == "forest":
            return {}
        return {f"design.options.{name}": "it sizes the causal forest of model: forest, and model is linear; "
                "remove it, or set design.options.model: forest"
                for name in off_default(self.options, "trees", "min_leaf")}
