"""Matching: nearest-neighbour matching on the propensity score or Mahalanobis distance, Abadie-Imbens SEs."""

from causalcli.designs.family import Family

FAMILY = Family("matching", 'Nearest-neighbour matching (ATT, ATC, ATE; score or Mahalanobis), Abadie-Imbens standard errors', "causalcli.designs.matching.spec:MatchingDesign",
                design="causalcli.designs.matching.design:MatchingDesign", plots="causalcli.designs.matching.plots:PLOTS",
                order=10)
