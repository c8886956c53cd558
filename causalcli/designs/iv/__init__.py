"""Instrumental variables: 2SLS and LIML with weak-instrument diagnostics."""

from causalcli.designs.family import Family

FAMILY = Family("iv", "Instrumental variables (2SLS, LIML) with weak-instrument checks", "causalcli.designs.iv.spec:IvDesign",
                design="causalcli.designs.iv.design:IvDesign",
                plots="causalcli.designs.iv.plots:PLOTS", order=60)
