"""Double machine learning through EconML: LinearDML and CausalForestDML with cross-fitted nuisances."""

from causalcli.designs.family import Family

FAMILY = Family("dml", 'Double machine learning through EconML', "causalcli.designs.dml.spec:DmlDesign",
                design="causalcli.designs.dml.design:DmlDesign", plots="causalcli.designs.dml.plots:PLOTS",
                order=50)
