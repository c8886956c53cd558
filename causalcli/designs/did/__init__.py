"""Difference-in-differences: 2x2, two-way fixed effects, event study, Callaway-Sant'Anna.

The family's files: ``spec`` (the `design:` model), ``design`` (the ``Design``), ``plots``
and the estimator modules beside them. ``FAMILY`` registers it (``causalcli.designs``).
"""

from causalcli.designs.family import Family
from causalcli.designs.did.spec import DidDesign

FAMILY = Family(
    name="did",
    summary="Difference-in-differences: 2x2, TWFE, event study, Callaway-Sant'Anna",
    spec=DidDesign,
    design="causalcli.designs.did.design:DidDesign",
    plots="causalcli.designs.did.plots:PLOTS",
    order=30,
)
