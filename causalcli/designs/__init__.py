"""The registry of design families.

Entries name their module, imported only when a study uses the design, so
``causalcli --help`` and ``validate`` stay light.
"""

from __future__ import annotations

import importlib
from dataclasses import dataclass
from typing import TYPE_CHECKING

from causalcli.errors import SpecError

if TYPE_CHECKING:  # pragma: no cover
    from causalcli.designs.base import Design


@dataclass(frozen=True)
class DesignEntry:
    name: str
    summary: str
    target: str | None  # "module:Class", or None while not built
    planned: str = ""

    @property
    def built(self) -> bool:
        return self.target is not None

    def load(self) -> "Design":
        if self.target is None:
            raise SpecError(
                f"design '{self.name}' is not built yet in this version of causalcli ({self.planned}); "
                f"built designs: {', '.join(n for n, e in DESIGNS.items() if e.built)}",
                key="design.method",
            )
        module, cls = self.target.split(":")
        return getattr(importlib.import_module(module), cls)()


DESIGNS: dict[str, DesignEntry] = {
    "matching": DesignEntry(
        "matching", "Nearest-neighbour propensity-score matching (ATT), Abadie-Imbens standard errors",
        "causalcli.designs.matching:MatchingDesign",
    ),
    "weighting": DesignEntry("weighting", "Inverse-probability and doubly robust weighting", None, "planned: IPW and AIPW"),
    "did": DesignEntry("did", "Difference-in-differences: 2x2, TWFE, event study, Callaway-Sant'Anna", None,
                       "planned: 2x2, TWFE, event study, Callaway-Sant'Anna"),
    "synthetic_control": DesignEntry("synthetic_control", "Synthetic control with placebo inference", None,
                                     "planned: Abadie-Diamond-Hainmueller with placebo inference"),
    "dml": DesignEntry("dml", "Double machine learning through EconML", None, "planned: LinearDML and CausalForestDML"),
    "experiment": DesignEntry("experiment", "A/B/n experiments from sufficient statistics", None,
                              "planned: Welch, delta method, CUPED, SRM"),
}


def get_design(name: str) -> "Design":
    entry = DESIGNS.get(name)
    if entry is None:
        raise SpecError(f"unknown method {name!r}; choose one of: {', '.join(DESIGNS)}", key="design.method")
    return entry.load()
