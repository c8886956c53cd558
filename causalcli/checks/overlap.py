"""Overlap of the propensity score between the arms: summaries, the histogram, the check, the common-support stop.

Shared by matching and weighting (a score fitted in sample) and dml (a
cross-fitted score). Each caller assembles its own ``diagnostics`` dict from the
pieces here, in the key order its JSON has always had; the check's wording is
the same for all, with the name of the score and the advice as arguments.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np

from causalcli.errors import EstimationError

if TYPE_CHECKING:  # pragma: no cover
    from causalcli.records import Check

__all__ = ["HIST_BINS", "SHARE_KEYS", "arm_ranges", "score_histogram", "overlap_summary", "one_sided_shares",
           "overlap_check",
           "no_propensity_check", "require_common_support"]

HIST_BINS = 20  # bins of width 0.05 on [0, 1]

# Which share of units outside the bounds a check reads, by the arm it is about. The ATT needs comparable controls
# beside every treated unit, which only a treated score near 1 lacks: a treated unit scored near 0 sits among
# controls (NSW-CPS: 9.7% of the trainees below 0.01, beside 15,458 controls under 0.05). The ATC mirrors it.
SHARE_KEYS = {"all": "share_all_outside", "treated": "share_treated_above", "control": "share_control_below"}

TRIM_ADVICE = "those units have few comparable units in the other arm: trim, restrict the sample or add a caliper"


def arm_ranges(p: np.ndarray, t: np.ndarray) -> dict:
    """``propensity_treated`` and ``propensity_control``: min, max and mean of the score in each arm."""
    t = np.asarray(t, dtype=bool)
    return {f"propensity_{arm}": {"min": float(p[m].min()), "max": float(p[m].max()), "mean": float(p[m].mean())}
            for arm, m in (("treated", t), ("control", ~t))}


def score_histogram(p: np.ndarray, t: np.ndarray, *, clip: bool = False) -> dict:
    """Counts of the score per arm in ``HIST_BINS`` equal bins on [0, 1].

    ``clip`` folds scores a learner put a hair outside [0, 1] into the end bins
    (cross-fitted learners need not stay inside; a logit does).
    """
    t = np.asarray(t, dtype=bool)
    edges = np.linspace(0.0, 1.0, HIST_BINS + 1)
    treated, control = (np.clip(p[m], 0, 1) if clip else p[m] for m in (t, ~t))
    return {"edges": edges.tolist(), "treated": np.histogram(treated, bins=edges)[0].tolist(),
            "control": np.histogram(control, bins=edges)[0].tolist()}


def _effective_size(w: np.ndarray) -> float:
    """Kish's effective sample size ``(sum w)^2 / sum w^2`` (0 without weight)."""
    ww = float(np.dot(w, w))
    return float(w.sum() ** 2 / ww) if ww > 0 else 0.0


def overlap_summary(p: np.ndarray, t: np.ndarray, bounds: "tuple[float, float]", weights: np.ndarray,
                    sample_weights: np.ndarray | None = None, **extra) -> dict:
    """Score range by arm, share outside ``bounds``, Kish effective sample sizes under ``weights``, a histogram.

    ``sample_weights``: observation weights, the shares then those of the weighted population (the histogram
    still counts units). ``extra`` entries (a design's own shares: unmatched, trimmed) go after the shares.
    """
    t = np.asarray(t, dtype=bool)
    lo, hi = bounds
    outside = (p < lo) | (p > hi)

    def share(rows: np.ndarray) -> float:
        if sample_weights is None:
            return float(outside[rows].mean())
        return float(sample_weights[rows & outside].sum() / sample_weights[rows].sum())

    return {
        **arm_ranges(p, t),
        "bounds": [lo, hi],
        "share_treated_outside": share(t),
        "share_control_outside": share(~t),
        "share_all_outside": share(np.ones(t.size, dtype=bool)),
        **one_sided_shares(p, t, bounds, sample_weights),
        **extra,
        "effective_sample_size_treated": _effective_size(weights[t]),
        "effective_sample_size_control": _effective_size(weights[~t]),
        "histogram": score_histogram(p, t),
    }


def one_sided_shares(p: np.ndarray, t: np.ndarray, bounds: "tuple[float, float]",
                     sample_weights: np.ndarray | None = None) -> dict:
    """``share_treated_above`` (treated scored above the upper bound: what the ATT's check reads) and
    ``share_control_below`` (controls below the lower one: the ATC's); with observation weights, the shares of
    the weighted population."""
    t = np.asarray(t, dtype=bool)
    if sample_weights is None:
        return {"share_treated_above": float((p[t] > bounds[1]).mean()),
                "share_control_below": float((p[~t] < bounds[0]).mean())}
    s = np.asarray(sample_weights, dtype=np.float64)
    return {"share_treated_above": float(s[t & (p > bounds[1])].sum() / s[t].sum()),
            "share_control_below": float(s[~t & (p < bounds[0])].sum() / s[~t].sum())}


def overlap_check(overlap: dict, max_outside: float, bounds: "tuple[float, float]", arm: str = "all", *,
                  score: str = "propensity score", extreme: int = 0, advice: str = TRIM_ADVICE,
                  narrower: tuple[str, ...] = ()) -> "Check":
    """Check: the share of units with a score outside ``bounds`` (``arm`` all), of treated units above them
    (treated: the ATT) or of controls below them (control: the ATC) is at most ``max_outside``.

    ``overlap`` holds the shares under ``SHARE_KEYS``; ``score`` names the score
    in the detail (``cross-fitted propensity``), ``extreme`` counts units at a
    score of 0 or 1 (said when there are any), ``advice`` follows a failure.
    ``narrower``: the estimands of one arm (att, atc) the design also supports; when the ATE's check fails
    but that arm's units lie within the bounds, the detail names the estimand that would pass.
    """
    from causalcli.records import Check

    share = overlap[SHARE_KEYS[arm]]
    passed = bool(share <= max_outside)
    if arm == "all":
        where = f"units have a {score} outside [{bounds[0]}, {bounds[1]}]"
    else:
        where = f"{arm} units have a {score} {'above' if arm == 'treated' else 'below'} " \
                f"{bounds[1] if arm == 'treated' else bounds[0]}"
    detail = f"{share:.1%} of {where} ({'<=' if passed else '>'} {max_outside:.0%} allowed)"
    other_side = overlap[f"share_{arm}_outside"] - share if arm != "all" else 0.0
    if extreme:
        detail += f"; {extreme} units sit at a propensity of 0 or 1"
    if not passed:
        detail += f"; {advice}"
        # NSW-PSID (jtrain3): 76% of all units outside, 1.6% of the treated: the ATT is estimable, the ATE is not
        for estimand, one_arm in (("att", "treated"), ("atc", "control")):
            inside = overlap.get(SHARE_KEYS[one_arm], 1.0)
            if arm == "all" and estimand in narrower and inside <= max_outside:
                side = f"above {bounds[1]}" if one_arm == "treated" else f"below {bounds[0]}"
                detail += (f"; the {one_arm} units have comparable units in the other arm ({inside:.1%} {side}): "
                           f"design.estimand: {estimand} asks for comparable units for them only")
                break
    if other_side > 0:
        others, estimand = ("controls", "ATT") if arm == "treated" else ("treated units", "ATC")
        detail += (f"; {other_side:.1%} of the {arm} units have a {score} "
                   f"{f'below {bounds[0]}' if arm == 'treated' else f'above {bounds[1]}'}, where {others} are "
                   f"plentiful: fine for the {estimand}, which needs comparable {others} only")
    return Check("overlap", passed, detail)


def no_propensity_check(reason: str) -> "Check":
    """The overlap check where it cannot apply (no propensity score): no verdict, the reason."""
    from causalcli.records import Check

    return Check("overlap", None, reason)


def require_common_support(p: np.ndarray, t: np.ndarray, file: str | None = None) -> None:
    """Exit 4 when the propensity ranges of the two arms do not overlap at all."""
    t = np.asarray(t, dtype=bool)
    lo = max(float(p[t].min()), float(p[~t].min()))
    hi = min(float(p[t].max()), float(p[~t].max()))
    # ranges meeting at one point overlap only if units sit there; one arm of a single score (a lone
    # treated unit, say) inside the other's range does overlap
    single_point = float(p[t].min()) == float(p[t].max()) or float(p[~t].min()) == float(p[~t].max())
    if lo > hi or (lo == hi and not single_point and (p[t] == lo).sum() + (p[~t] == lo).sum() < 2):
        raise EstimationError(
            f"no overlap: the propensity scores of treated ({float(p[t].min()):.3g} to {float(p[t].max()):.3g}) and "
            f"control units ({float(p[~t].min()):.3g} to {float(p[~t].max()):.3g}) do not overlap, so all "
            f"{p.size} units lack common support; drop the covariate that separates the arms or restrict the sample",
            file=file)
