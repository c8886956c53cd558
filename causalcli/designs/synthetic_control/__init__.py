"""Synthetic control: Abadie-Diamond-Hainmueller weights, augmented SCM, placebo and conformal inference.

The family's files: ``spec`` (the `design:` model), ``design`` (the ``Design``), ``plots``
and the estimator modules beside them. ``FAMILY`` registers it (``causalcli.designs``).
"""

from causalcli.designs.family import Family
from causalcli.designs.synthetic_control.spec import SynthDesign

FAMILY = Family(
    name="synthetic_control",
    summary='Synthetic control with placebo inference',
    spec=SynthDesign,
    design="causalcli.designs.synthetic_control.design:SynthDesign",
    plots="causalcli.designs.synthetic_control.plots:PLOTS",
    order=40,
)
