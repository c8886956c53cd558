"""The registry of design families.

Entries name their module, imported only when a study uses the design, so
``causalcli --help`` and ``validate`` stay light.
"""

from __future__ import annotations

import importlib
import importlib.util
from dataclasses import dataclass
from typing import TYPE_CHECKING

from causalcli.errors import SpecError

if TYPE_CHECKING:  # pragma: no cover
    from causalcli.designs.base import Design


@dataclass(frozen=True)
class DesignEntry:
    """A design family; ``target`` ("module:Class") is built once its module exists."""

    name: str
    summary: str
    target: str
    planned: str = ""

    @property
    def built(self) -> bool:
        return importlib.util.find_spec(self.target.split(":")[0]) is not None

    def load(self) -> "Design":
        module, cls = self.target.split(":")
        if not self.built:
            raise SpecError(
                f"design '{self.name}' is not built yet in this version of causalcli ({self.planned}); "
                f"built designs: {', '.join(n for n, e in DESIGNS.items() if e.built)}",
                key="design.method",
            )
        return getattr(importlib.import_module(module), cls)()


DESIGNS: dict[str, DesignEntry] = {
    "matching": DesignEntry(
        "matching", "Nearest-neighbour matching (ATT, ATC, ATE; score or Mahalanobis), Abadie-Imbens standard errors",
        "causalcli.designs.matching:MatchingDesign",
    ),
    "weighting": DesignEntry("weighting", "Inverse-probability and doubly robust weighting",
                             "causalcli.designs.weighting:WeightingDesign", "planned: IPW and AIPW"),
    "did": DesignEntry("did", "Difference-in-differences: 2x2, TWFE, event study, Callaway-Sant'Anna",
                       "causalcli.designs.did:DidDesign", "planned: 2x2, TWFE, event study, Callaway-Sant'Anna"),
    "synthetic_control": DesignEntry("synthetic_control", "Synthetic control with placebo inference",
                                     "causalcli.designs.synth:SynthDesign",
                                     "planned: Abadie-Diamond-Hainmueller with placebo inference"),
    "dml": DesignEntry("dml", "Double machine learning through EconML", "causalcli.designs.dml:DmlDesign",
                       "planned: LinearDML and CausalForestDML"),
    "experiment": DesignEntry("experiment", "A/B/n experiments from sufficient statistics",
                              "causalcli.designs.experiment:ExperimentDesign",
                              "planned: Welch, delta method, CUPED, SRM"),
}


def get_design(name: str) -> "Design":
    entry = DESIGNS.get(name)
    if entry is None:
        raise SpecError(f"unknown method {name!r}; choose one of: {', '.join(DESIGNS)}", key="design.method")
    return entry.load()
