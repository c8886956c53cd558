"""Weighting: inverse-probability (IPW) and doubly robust (AIPW) estimators with cross-fitting."""

from causalcli.designs.family import Family

FAMILY = Family("weighting", 'Inverse-probability and doubly robust weighting', "causalcli.designs.weighting.spec:WeightingDesign",
                design="causalcli.designs.weighting.design:WeightingDesign", plots="causalcli.designs.weighting.plots:PLOTS",
                order=20)
