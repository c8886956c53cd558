"""Refutation tests: does the estimate survive changes that should (or should not) move it?

What a refuter tests (``TESTED``), its pass rule (``RULES``), how its simulations are
judged (``summarise``). The permutation p-value and the exact placebo list when the data allow few
(``distinct_permutations``) are ``causalcli.inference.permutation``; running the simulations is
``causalcli.study.refute``.

The pass rule of every refuter (synthetic control's included) is stated once, in ``RULES``:
``causalcli methods`` prints it, the docs quote it (a test checks both) and the summaries apply it
through ``permutation_verdict`` and ``stability_verdict``.
"""

from __future__ import annotations

import math

import numpy as np

from causalcli.inference.distributions import normal_two_sided_p
from causalcli.inference.estimate import unusable_se_reason
from causalcli.inference.permutation import permutation_p_value
from causalcli.records import Estimate, Refutation

TESTED = {
    "placebo_treatment": "Shuffles who was treated at random and re-estimates. A real effect should vanish "
                         "under shuffling; if shuffled data often give an effect as large, the estimate may be noise.",
    "random_common_cause": "Adds a made-up confounder of pure noise and re-estimates. A sound estimate should "
                           "not move; if it does, the estimator is fragile to irrelevant covariates.",
    "data_subset": "Re-estimates on random subsets of the rows. A sound estimate stays close; if it moves "
                   "beyond its standard error, it hangs on a few units.",
    "placebo_in_time": "Pretends the treatment started earlier, inside the pre-period, and refits. A real effect "
                       "should appear only at the real start; an effect as large at a fake start means the gap "
                       "may come from a poor fit, not the treatment.",
    "leave_one_donor_out": "Drops each heavily weighted donor in turn and refits. A sound estimate keeps its sign; "
                           "if dropping one donor flips it, the result hangs on that unit.",
}

# A permutation p-value (1 + #extreme) / (1 + k) cannot go below 1 / (1 + k): with too few placebos the rule
# could never pass, so the best possible result is "not judged" rather than a pass or a failure.
_PERMUTATION = ("passes when p <= alpha and fails when p > alpha; when even the smallest possible p, "
                "1 / (1 + {k}), exceeds alpha and no {what} is as large, it is not judged (passed: null): "
                "too few {k} to reach alpha")
_STABILITY = "z = (mean new - estimate) / std_error, two-sided; passes when p > alpha"
RULES = {
    "placebo_treatment": "p = (1 + #|placebo| >= |estimate|) / (1 + simulations); "
                         + _PERMUTATION.format(k="simulations", what="placebo"),
    "random_common_cause": _STABILITY,
    "data_subset": _STABILITY,
    "placebo_in_time": "p = (1 + #|effect at a fake start| >= |estimate|) / (1 + fake starts); "
                       + _PERMUTATION.format(k="fake starts", what="fake start"),
    "leave_one_donor_out": "new_effect = the estimate closest to zero with one top donor left out; "
                           "passes when it keeps the estimate's sign",
}


def permutation_verdict(extreme: int, k: int, alpha: float, what: str) -> tuple[float, bool | None, str]:
    """RULES' permutation rule: p, passed, and the comparison in words (``what``: "simulations", ...)."""
    p = permutation_p_value(extreme, k)
    if p <= alpha:
        return p, True, f"p = {p:.3g} <= {alpha}"
    if extreme == 0:
        need = math.ceil(1 / alpha - 1 - 1e-9)
        return p, None, (f"p = {p:.3g}, the smallest possible with {k} {what}, exceeds alpha = {alpha}: too few "
                         f"{what} to reach alpha, not judged (at least {need} are needed)")
    return p, False, f"p = {p:.3g} > {alpha}"


def stability_verdict(p: float, alpha: float) -> bool:
    """RULES' z rule (random_common_cause, data_subset)."""
    return bool(p > alpha)


def summarise(name: str, sims: np.ndarray, estimate: Estimate, alpha: float) -> Refutation:
    ok = sims[np.isfinite(sims)]
    total = sims.size
    failed = total - ok.size
    failed_note = f" ({failed} of {total} simulations could not be estimated and were left out)" if failed else ""
    if ok.size == 0:
        return Refutation(name, None, None, None, f"no simulation could be estimated{failed_note}", total, TESTED[name])
    new = float(ok.mean())
    est = estimate.value
    if name == "placebo_treatment":
        extreme = int(np.count_nonzero(np.abs(ok) >= abs(est)))
        p, passed, compared = permutation_verdict(extreme, int(ok.size), alpha, "simulations")
        verdict = ("the real effect stands out from what random assignment gives" if passed else
                   "random assignment often gives an effect this large: the estimate may be noise, do not trust it"
                   if passed is False else "run more simulations to test it")
        detail = (f"{extreme} of {ok.size} random re-assignments of the treatment gave an effect as large as "
                  f"{_fmt(est)} ({compared}); {verdict}{failed_note}")
        return Refutation(name, new, p, passed, detail, total, TESTED[name])
    se = estimate.std_error
    unusable = unusable_se_reason(se, est)
    if unusable is not None:
        # a z built on a zero or rounding-noise SE would print shifts of 1e13 standard errors
        return Refutation(name, new, None, None, f"not tested: it needs a standard error of the estimate and "
                          f"{unusable}{failed_note}", total, TESTED[name])
    p = normal_two_sided_p((new - est) / se)
    passed = stability_verdict(p, alpha)
    what = "an added random covariate" if name == "random_common_cause" else "random subsets of the data"
    verdict = ("the estimate does not move" if passed else
               "the estimate moves more than its standard error allows: it is fragile, look at the data before trusting it")
    detail = (f"with {what} the mean effect is {_fmt(new)} against {_fmt(est)} "
              f"(shift {(new - est) / se:+.2f} standard errors, p = {p:.3g} {'>' if passed else '<='} {alpha}); "
              f"{verdict}{failed_note}")
    return Refutation(name, new, p, passed, detail, total, TESTED[name])


def _fmt(x: float) -> str:
    return f"{x:.4g}" if abs(x) < 1000 else f"{x:,.0f}"
