"""What matching and weighting share as designs: a binary treatment adjusted for covariates through a score.

Both read a 0/1 treatment, an outcome and covariates (the graph's adjustment set), refuse
``weights`` unless the family builds them (both do now), and hand the refuters a prepared object with the treatment ``t`` per row. A
``Design`` subclass cannot live in a shared layer below ``designs`` (those may not import
``designs.base``), so it sits here, beside ``base``; the families import it, not each other.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, ClassVar, Generic, TypeVar

from causalcli.data.missing import study_roles_missing
from causalcli.data.table import require_columns, study_roles
from causalcli.designs.base import Design, require

if TYPE_CHECKING:  # pragma: no cover
    import numpy as np

    from causalcli.data.missing import Roles
    from causalcli.data.table import Table
    from causalcli.graph import Identification
    from causalcli.spec.loading import LoadedSpec
    from causalcli.spec.models import Study

# A prepared object with ``t``: the binary treatment, one entry per row.
Prepared = TypeVar("Prepared")


class BinaryTreatmentDesign(Design[Prepared], Generic[Prepared]):
    """A design on a binary treatment, an outcome and covariates, one unit per row."""

    weights_built: ClassVar[bool] = False
    thresholds_checked: ClassVar[tuple[str, ...]] = ("alpha", "balance_smd", "propensity_bounds", "max_outside")
    uses_adjustment_set: ClassVar[bool] = True  # covariates outside the graph's adjustment set are left out

    def check_spec(self, study: "Study", spec: "LoadedSpec") -> None:
        """Treatment, outcome and covariates given, and a supported estimand; subclasses add their options."""
        require(study, spec, "treatment", "outcome", "covariates")
        self.estimand(study, spec)

    def column_roles(self, study: "Study") -> dict[str, tuple[str, str]]:
        """The columns ``validate`` checks, with their spec key and kind; subclasses add their own."""
        return study_roles(study, "binary")

    def validate(self, study: "Study", table: "Table", spec: "LoadedSpec") -> None:
        require_columns(table, self.column_roles(study), study.design.treated_value)

    def missing_roles(self, study: "Study", identification: "Identification") -> "Roles":
        """Treatment, outcome, then the covariates of the adjustment set (what ``prepare`` reads)."""
        return study_roles_missing(study.treatment, study.outcome, list(identification.adjustment_set))

    def treatment_of(self, prepared: Prepared) -> "np.ndarray":
        return prepared.t  # type: ignore[attr-defined]

    def units(self, prepared: Prepared) -> int:
        return int(prepared.t.size)  # type: ignore[attr-defined]
