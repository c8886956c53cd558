"""Weighting: inverse-probability (IPW) and doubly robust (AIPW) estimators.

The family's files: ``spec`` (the `design:` model), ``design`` (the ``Design``), ``plots``
and the estimator modules beside them. ``FAMILY`` registers it (``causalcli.designs``).
"""

from causalcli.designs.family import Family
from causalcli.designs.weighting.spec import WeightingDesign

FAMILY = Family(
    name="weighting",
    summary='Inverse-probability and doubly robust weighting',
    spec=WeightingDesign,
    design="causalcli.designs.weighting.design:WeightingDesign",
    plots="causalcli.designs.weighting.plots:PLOTS",
    order=20,
)
