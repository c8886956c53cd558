"""Difference-in-differences: 2x2, two-way fixed effects, event study, Callaway-Sant'Anna, honest bounds."""

from causalcli.designs.family import Family

FAMILY = Family("did", "Difference-in-differences: 2x2, TWFE, event study, Callaway-Sant'Anna", "causalcli.designs.did.spec:DidDesign",
                design="causalcli.designs.did.design:DidDesign", plots="causalcli.designs.did.plots:PLOTS",
                order=30)
