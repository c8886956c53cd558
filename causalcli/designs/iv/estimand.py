"""What iv's one estimand, ``late``, means for the data at hand: ``diagnostics.identification`` gains it.

The name is the Imbens-Angrist reading, exact for a binary treatment and a binary instrument under monotonicity:
the average effect on those the instrument moves (the compliers). For a treatment of many values 2SLS estimates
the average causal response (Angrist and Imbens 1995): a weighted average, over the steps between adjacent values
of the treatment, of the per-unit effects of the step among those the instrument moves across it, weighted by how
many it moves there; for a continuous treatment, a weighted average of derivatives (Angrist, Graddy and Imbens
2000). A multi-valued instrument, several instruments or covariates weight further. SPEC.md's estimands (ate, att,
atc) name none of these, so the value stays ``late`` and these keys say what it stands for.
"""

from __future__ import annotations

from typing import Any

import numpy as np

BINARY, MULTI_VALUED, CONTINUOUS = "binary", "multi-valued", "continuous"


def support(x: np.ndarray) -> tuple[str, int]:
    """(binary | multi-valued | continuous, distinct values): multi-valued when every value is a whole number."""
    values = np.unique(x)
    if values.size <= 2:
        return BINARY, int(values.size)
    return (MULTI_VALUED if bool(np.all(values == np.round(values))) else CONTINUOUS), int(values.size)


def reading(x: np.ndarray, instruments: np.ndarray, treatment: str, instrument_names: tuple[str, ...],
            covariates: bool) -> dict[str, Any]:
    """``treatment_support``, ``treatment_values``, ``meaning`` (a few words) and ``interpretation`` (the sentence)
    of the 2SLS (or LIML) coefficient of ``treatment``."""
    kind, k = support(x)
    binary_z = instruments.shape[1] == 1 and np.unique(instruments[:, 0]).size == 2
    z = ", ".join(instrument_names)
    if kind == BINARY:
        meaning = "local average treatment effect (compliers)"
        text = (f"{treatment} is binary: under monotonicity (the instrument moves no unit against the others) the "
                f"coefficient is the average effect of {treatment} on the units {z} moves, the compliers (Imbens "
                "and Angrist 1994), not the effect on everyone")
        if not binary_z:
            text += (f"; with {'several instruments' if instruments.shape[1] > 1 else f'{z} taking many values'}, "
                     "a weighted average of the complier effects of each shift of the instrument(s) (through their "
                     "first-stage combination), weighted by how many units each shift moves")
    else:
        lo, hi = float(x.min()), float(x.max())
        if kind == MULTI_VALUED:
            meaning = "average causal response (Angrist and Imbens 1995)"
            text = (f"{treatment} takes {k} values ({lo:g} to {hi:g}), not two, so the estimand is not one "
                    "complier effect: under monotonicity the coefficient is the average causal response (Angrist "
                    f"and Imbens 1995), a weighted average over the steps between adjacent values of {treatment} of "
                    f"the per-unit causal effect of the step (per unit of {treatment}) among the units {z} moves "
                    "across it, weighted by how many it moves there")
        else:
            meaning = "weighted average of causal responses (Angrist, Graddy and Imbens 2000)"
            text = (f"{treatment} is continuous ({k} values, {lo:.4g} to {hi:.4g}): under monotonicity the "
                    "coefficient is a weighted average, along the support of "
                    f"{treatment}, of the per-unit derivatives of the outcome with respect to {treatment} (Angrist, "
                    f"Graddy and Imbens 2000), weighted by how much {z} shifts the treatment at each level")
        text += (f"; not the effect at any one level of {treatment}, nor an average over all units; the "
                 "weights sit where the instrument moves the treatment")
        if not binary_z:
            text += (f", and with {'several instruments' if instruments.shape[1] > 1 else f'{z} taking many values'} "
                     "they are averaged over the shifts between its values as well")
    if covariates:
        text += ("; with covariates, a further weighted average over the covariates' values, whose weights are all "
                 "positive only when the covariates enter saturated (one indicator per combination of values; "
                 "Blandhol, Bonney, Mogstad and Torgovitsky 2022)")
    return {"treatment_support": kind, "treatment_values": k, "meaning": meaning, "interpretation": text}
