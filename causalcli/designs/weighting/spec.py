"""`design:` keys of `method: weighting`."""

from __future__ import annotations

from typing import Literal

from pydantic import Field

from causalcli.spec.base import Strict, TreatedDesignBase, off_default


class WeightingOptions(Strict):
    """Inverse-probability (IPW) and doubly robust (AIPW) weighting."""

    estimator: Literal["ipw", "aipw"] = Field(
        "ipw", description="ipw: normalised (Hajek) inverse-probability weights; aipw: augmented IPW (doubly robust)."
    )
    trim: float | None = Field(
        None, ge=0, lt=0.5,
        description="Drop units with a propensity score below trim or above 1 - trim (Crump et al. 2009); not refitted.",
    )
    overlap: bool = Field(
        False, description="Overlap weights (Li, Morgan and Zaslavsky 2018): the estimand becomes the ATO (ipw only)."
    )
    propensity_model: Literal["logistic", "gbm"] = Field(
        "logistic", description="logistic: unpenalised logistic regression; gbm: gradient boosting, cross-fitted."
    )
    outcome_model: Literal["linear", "gbm"] = Field(
        "linear", description="aipw: outcome model per arm; linear: OLS; gbm: gradient boosting, cross-fitted."
    )
    folds: int = Field(5, ge=2, le=20, description="Cross-fitting folds for gbm models.")


class WeightingDesign(TreatedDesignBase):
    method: Literal["weighting"]
    options: WeightingOptions = Field(default_factory=WeightingOptions)

    def unread_keys(self) -> dict[str, str]:
        o, out = self.options, {}
        if o.estimator == "ipw" and off_default(o, "outcome_model"):
            out["design.options.outcome_model"] = ("estimator ipw fits no outcome model; remove it, or set "
                                                   "design.options.estimator: aipw")
        if "gbm" not in (o.propensity_model, o.outcome_model if o.estimator == "aipw" else None) and \
                off_default(o, "folds"):
            out["design.options.folds"] = ("it sets the cross-fitting of gbm models, and this study fits none "
                                           "(logistic propensity, linear or no outcome model); remove it, or choose "
                                           "a gbm model")
        return out
