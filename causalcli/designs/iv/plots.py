"""IV plots: the first stage and the reduced form, binned by the first instrument."""

from __future__ import annotations

from typing import Callable, TYPE_CHECKING

from causalcli.charts import figure as _figure, png as _png, segment_effects

if TYPE_CHECKING:  # pragma: no cover
    from causalcli.result import Result


def first_stage(result: Result) -> bytes | None:
    """Mean treatment (first stage) and mean outcome (reduced form) by bins (or values) of the first instrument;
    without covariates their slopes' ratio is the Wald estimate."""
    bins = (result.diagnostics.get("first_stage") or {}).get("bins")
    if not bins:
        return None
    from causalcli.designs.iv.design import BINS

    plt = _figure()
    fig, axes = plt.subplots(1, 2, figsize=(9.5, 3.8), dpi=110)
    z = [b["instrument"] for b in bins]
    # fewer bins than BINS: one per value of the instrument (Card's nearc4: 0 and 1), not binned means
    values = len(bins) < BINS
    for ax, key, what in ((axes[0], "treatment", "first stage"), (axes[1], "outcome", "reduced form")):
        ax.plot(z, [b[key] for b in bins], "o-", color="#1f4e79")
        ax.set_xlabel(bins[0]["instrument_name"] + ("" if values else " (binned mean)"))
        ax.set_ylabel(f"mean {bins[0][key + '_name']}")
        ax.set_title(what)
        if values and len(z) <= 5:
            ax.set_xticks(z)
            ax.set_xticklabels([f"{v:g}" for v in z])
    fs = result.diagnostics["first_stage"]
    covariates = len(result.diagnostics.get("coefficients") or {}) - 2  # less the intercept and the treatment
    # the headline and F are net of the covariates, these means are not: say so, or the slopes mislead
    raw = f"; means not adjusted for the {covariates} covariate{'s' * (covariates != 1)}" if covariates > 0 else ""
    fig.suptitle(f"{result.study}: effective F {fs['effective_f']:.1f}{raw}", fontsize=10)
    return _png(fig, plt)


PLOTS: dict[str, Callable[[Result], bytes | None]] = {"first_stage": first_stage, "segments": segment_effects}
