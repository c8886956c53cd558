"""Double machine learning through EconML: LinearDML and CausalForestDML.

The family's files: ``spec`` (the `design:` model), ``design`` (the ``Design``), ``plots``
and the estimator modules beside them. ``FAMILY`` registers it (``causalcli.designs``).
"""

from causalcli.designs.family import Family
from causalcli.designs.dml.spec import DmlDesign

FAMILY = Family(
    name="dml",
    summary='Double machine learning through EconML',
    spec=DmlDesign,
    design="causalcli.designs.dml.design:DmlDesign",
    plots="causalcli.designs.dml.plots:PLOTS",
    order=50,
)
