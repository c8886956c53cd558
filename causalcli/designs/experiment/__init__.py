"""Experiments: A/B/n tests from sufficient statistics computed in one pass of the engine."""

from causalcli.designs.family import Family

FAMILY = Family("experiment", 'A/B/n experiments from sufficient statistics', "causalcli.designs.experiment.spec:ExperimentDesign",
                design="causalcli.designs.experiment.design:ExperimentDesign", plots="causalcli.designs.experiment.plots:PLOTS",
                order=60)
