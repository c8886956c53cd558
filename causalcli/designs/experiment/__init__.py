"""Experiments: A/B/n tests from sufficient statistics computed in one pass of the engine.

The family's files: ``spec`` (the `design:` model), ``design`` (the ``Design``), ``plots``
and the estimator modules beside them. ``FAMILY`` registers it (``causalcli.designs``).
"""

from causalcli.designs.family import Family
from causalcli.designs.experiment.spec import ExperimentDesign

FAMILY = Family(
    name="experiment",
    summary='A/B/n experiments from sufficient statistics',
    spec=ExperimentDesign,
    design="causalcli.designs.experiment.design:ExperimentDesign",
    plots="causalcli.designs.experiment.plots:PLOTS",
    order=60,
)
