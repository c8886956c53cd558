"""Regression discontinuity: local-polynomial estimates with robust bias-corrected intervals (rdrobust)."""

from causalcli.designs.family import Family
from causalcli.designs.rdd.spec import RddDesign

FAMILY = Family("rdd", "Regression discontinuity (sharp, fuzzy): local polynomials, robust bias-corrected intervals",
                RddDesign, design="causalcli.designs.rdd.design:RddDesign",
                plots="causalcli.designs.rdd.plots:PLOTS", order=65)
