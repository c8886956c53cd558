"""Regression discontinuity: local-polynomial estimates with robust bias-corrected intervals (rdrobust)."""

from causalcli.designs.family import Family

FAMILY = Family("rdd", "Regression discontinuity (sharp, fuzzy): local polynomials, robust bias-corrected intervals",
                "causalcli.designs.rdd.spec:RddDesign", design="causalcli.designs.rdd.design:RddDesign",
                plots="causalcli.designs.rdd.plots:PLOTS", order=65)
