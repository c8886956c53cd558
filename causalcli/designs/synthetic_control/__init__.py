"""Synthetic control: ADH weights, augmented SCM, placebo-in-space and conformal inference."""

from causalcli.designs.family import Family

FAMILY = Family("synthetic_control", 'Synthetic control with placebo inference', "causalcli.designs.synthetic_control.spec:SynthDesign",
                design="causalcli.designs.synthetic_control.design:SynthDesign", plots="causalcli.designs.synthetic_control.plots:PLOTS",
                order=40, docs="docs/designs/synth.md")
