"""`design:` keys of `method: iv` (instrumental variables)."""

from __future__ import annotations

from typing import Literal

from pydantic import Field, model_validator

from causalcli.spec.base import DesignBase, WildBootstrapOptions
from causalcli.inference.weak_instruments import MOP_CRITICAL_10PCT


class IvOptions(WildBootstrapOptions):
    """Covariance and weak-instrument settings (linearmodels' IV2SLS/IVLIML conventions)."""

    cov_type: Literal["robust", "unadjusted", "clustered"] | None = Field(
        None, description="robust (heteroskedasticity-robust, the default), unadjusted (homoskedastic) or clustered "
                          "(the default when design.cluster is given).")
    debiased: bool = Field(
        False, description="Small-sample factors (n/(n-k); clustered: (n-1)/(n-k) G/(G-1)) and t intervals with "
                           "n-k degrees of freedom, as linearmodels' debiased=True; default off, as linearmodels.")
    weak_instrument_f: float = Field(
        MOP_CRITICAL_10PCT, gt=0,
        description="The weak_instrument check fails below this effective F (Montiel Olea-Pflueger; default "
                    "23.109: worst-case 2SLS bias at most 10% of OLS's, tested at 5%).")


class IvDesign(DesignBase):
    method: Literal["iv"]
    instruments: list[str] = Field(
        min_length=1, description="Instrument columns (e.g. the randomised assignment when uptake is partial); "
                                  "the treatment column is the endogenous regressor.")
    estimator: Literal["2sls", "liml"] = Field("2sls", description="Two-stage least squares, or LIML.")
    cluster: str | None = Field(None, description="Cluster column: clustered standard errors.")
    options: IvOptions = Field(default_factory=IvOptions)

    @model_validator(mode="after")
    def _consistent(self) -> "IvDesign":
        if len(set(self.instruments)) != len(self.instruments):
            raise ValueError("instruments are listed twice")
        if self.options.cov_type == "clustered" and self.cluster is None:
            raise ValueError("options.cov_type: clustered needs design.cluster (the cluster column)")
        if self.cluster is not None and self.options.cov_type in ("robust", "unadjusted"):
            raise ValueError(f"design.cluster is given but options.cov_type is {self.options.cov_type}; "
                             "remove one of them")
        return self

    def covariance(self) -> str:
        return self.options.cov_type or ("clustered" if self.cluster else "robust")
