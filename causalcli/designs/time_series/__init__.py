"""Time-series counterfactuals: a structural model (CausalImpact-style) or segmented regression (ITS)."""

from causalcli.designs.family import Family

FAMILY = Family("time_series", "Time-series counterfactuals: structural model or interrupted time series",
                "causalcli.designs.time_series.spec:TimeSeriesDesign", design="causalcli.designs.time_series.design:TimeSeriesDesign",
                plots="causalcli.designs.time_series.plots:PLOTS", order=80)
