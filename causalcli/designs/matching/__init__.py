"""Matching: nearest-neighbour matching on the propensity score or Mahalanobis distance.

The family's files: ``spec`` (the `design:` model), ``design`` (the ``Design``), ``plots``
and the estimator modules beside them. ``FAMILY`` registers it (``causalcli.designs``).
"""

from causalcli.designs.family import Family
from causalcli.designs.matching.spec import MatchingDesign

FAMILY = Family(
    name="matching",
    summary='Nearest-neighbour matching (ATT, ATC, ATE; score or Mahalanobis), Abadie-Imbens standard errors',
    spec=MatchingDesign,
    design="causalcli.designs.matching.design:MatchingDesign",
    plots="causalcli.designs.matching.plots:PLOTS",
    order=10,
)
