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

from causalcli.inference.distributions import (binomial_cdf, normal_quantile, normal_two_sided_p,
                                                t_quantile_integer_df)
from causalcli.inference.estimate import unusable_se_reason
from causalcli.inference.permutation import permutation_p_value
from causalcli.numbers import num
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


# How many simulations a refuter runs: one rule for every design (``causalcli methods`` prints it).
PLACEBO_REFUTERS = ("placebo_treatment", "placebo_in_time")
STABILITY_REFUTERS = ("random_common_cause", "data_subset")
STABILITY_ROUND = 5  # the fewest that give the spread of the new estimates a usable standard deviation
MONTE_CARLO_LEVEL = 0.95
BUDGET = ("placebo_treatment runs ceil(1/alpha) - 1 simulations unless `simulations` says otherwise (19 at alpha "
          "0.05: the fewest whose p can reach alpha; the permutation test is exact at any number, more simulations "
          "add power and precision); placebo tests (placebo_treatment, placebo_in_time) run in rounds of that size "
          "and stop early only on a settled failure, when the 95% Clopper-Pearson interval of the chance that a "
          "placebo is as large as the estimate lies wholly above alpha (a pass needs every simulation, so stopping "
          "never inflates the false-pass rate). Stability tests (random_common_cause, data_subset) run rounds of "
          "5, at most `simulations`, and stop when the shift in standard errors, plus or minus t(0.975, k-1) Monte "
          "Carlo standard errors (sd of the new estimates / (std_error * sqrt(k))), lies wholly on one side of "
          "z(1 - alpha/2). stop_early: false runs every simulation. Every refutation reports monte_carlo_se: the "
          "Monte Carlo standard error of its p-value (sqrt(p (1 - p) / k) for a placebo test, the delta method "
          "through the shift for a stability test)")

# Simulations that cannot be estimated (an error in the refit) are left out; when they outnumber the estimated
# ones, these are the changes the estimator happens to survive, a selected few rather than a sample of the
# changes the refuter makes (castle doctrine: an added random covariate separates the propensity logit of a
# one-state cohort in most draws, and the refuter passed on the 2 of 5 that did not).
JUDGED_ON_ESTIMATED = ("placebo_treatment", "random_common_cause", "data_subset")
FAILED_SIMULATIONS = ("A simulation that cannot be estimated is left out and counted in the detail with the "
                      "commonest reasons. When more simulations of placebo_treatment, random_common_cause or "
                      "data_subset failed than were estimated, the refuter is not judged (passed: null): the ones "
                      "estimated are those the estimator happens to survive, not a sample of the changes the refuter "
                      "makes. Its rounds go on while the failures are a majority but the 95% Clopper-Pearson "
                      "interval of their share still reaches 1/2. A placebo_treatment without `simulations` replaces "
                      "each simulation that fails by one more, up to 2 * 19 + 1 in all at alpha 0.05 (by then the "
                      "failures are fewer than 19 or a majority), so that its p can still reach alpha")


_CHANGES = {"placebo_treatment": "random re-assignments of the treatment",
            "random_common_cause": "random covariates added", "data_subset": "random subsets of the data"}


def mostly_failed(name: str, sims: np.ndarray) -> bool:
    """``FAILED_SIMULATIONS``: did more simulations fail (NaN) than were estimated?"""
    estimated = int(np.count_nonzero(np.isfinite(sims)))
    return name in JUDGED_ON_ESTIMATED and sims.size - estimated > estimated


def round_size(name: str, alpha: float) -> int:
    """Simulations per round of refuter ``name`` under ``BUDGET``."""
    if name in STABILITY_REFUTERS:
        return STABILITY_ROUND
    return max(1, math.ceil(1 / alpha - 1 - 1e-9))


def settled(name: str, sims: np.ndarray, estimate: Estimate, alpha: float) -> bool:
    """``BUDGET``'s stopping rule: would more simulations be unlikely to change the verdict?"""
    ok = sims[np.isfinite(sims)]
    if mostly_failed(name, sims):  # not judged once the failures' share is surely over one half
        return interval_above(sims.size - ok.size, sims.size, 0.5, MONTE_CARLO_LEVEL)
    if ok.size == 0:
        return False
    if name in PLACEBO_REFUTERS:
        extreme = int(np.count_nonzero(np.abs(ok) >= abs(estimate.value)))
        return interval_above(extreme, int(ok.size), alpha, MONTE_CARLO_LEVEL)
    if name in STABILITY_REFUTERS:
        if ok.size < 2 or unusable_se_reason(estimate.std_error, estimate.value) is not None:
            return ok.size >= 2  # no z to settle: more simulations cannot help
        z, mc = _shift(ok, estimate)
        reach = t_quantile_integer_df(0.5 + MONTE_CARLO_LEVEL / 2, ok.size - 1) * mc
        crit = normal_quantile(1 - alpha / 2)
        return abs(z) + reach < crit or abs(z) - reach > crit
    return False


def interval_above(x: int, k: int, alpha: float, level: float) -> bool:
    """Does the Clopper-Pearson interval (at ``level``) of a binomial probability from x of k lie above alpha?

    By the duality of the exact interval with the binomial tails: its lower end is above alpha when
    P(X >= x | alpha) < (1 - level) / 2.
    """
    return 1.0 - binomial_cdf(x - 1, k, alpha) < (1 - level) / 2


def _shift(ok: np.ndarray, estimate: Estimate) -> tuple[float, float]:
    """The mean shift in standard errors and its Monte Carlo standard error."""
    se = float(estimate.std_error)
    z = (float(ok.mean()) - estimate.value) / se
    mc = float(ok.std(ddof=1)) / (se * math.sqrt(ok.size)) if ok.size > 1 else float("nan")
    return z, mc


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
    if mostly_failed(name, sims):
        return Refutation(name, new, None, None, (
            f"not judged: only {ok.size} of {total} simulations could be estimated, fewer than the {failed} that "
            f"failed; the ones estimated are those the estimator happens to survive, not a sample of the "
            f"{_CHANGES[name]}, so no verdict is drawn from them (their mean effect {num(new)} against {num(est)})"),
            total, TESTED[name])
    if name == "placebo_treatment":
        extreme = int(np.count_nonzero(np.abs(ok) >= abs(est)))
        p, passed, compared = permutation_verdict(extreme, int(ok.size), alpha, "simulations")
        # an estimate whose own interval covers 0 already says no effect is seen: the placebos agree with it
        failed = ("random assignment often gives an effect this large, and the estimate's own interval covers 0: "
                  "no effect can be told from noise" if covers_zero(estimate) else
                  "random assignment often gives an effect this large: the estimate may be noise, do not trust it")
        verdict = ("the real effect stands out from what random assignment gives" if passed else failed
                   if passed is False else "run more simulations to test it")
        mc = placebo_monte_carlo_se(p, int(ok.size))
        detail = (f"{extreme} of {ok.size} random re-assignments of the treatment gave an effect as large as "
                  f"{num(est)} ({compared}, Monte Carlo SE {mc:.2g}); {verdict}{failed_note}")
        return Refutation(name, new, p, passed, detail, total, TESTED[name], mc)
    se = estimate.std_error
    unusable = unusable_se_reason(se, est)
    if unusable is not None:
        # a z built on a zero or rounding-noise SE would print shifts of 1e13 standard errors
        return Refutation(name, new, None, None, f"not tested: it needs a standard error of the estimate and "
                          f"{unusable}{failed_note}", total, TESTED[name])
    z, mc_z = _shift(ok, estimate)
    p = normal_two_sided_p(z)
    # delta method: dp/dz = -2 phi(z)
    mc = 2.0 * math.exp(-0.5 * z * z) / math.sqrt(2.0 * math.pi) * mc_z if math.isfinite(mc_z) else None
    passed = stability_verdict(p, alpha)
    what = "an added random covariate" if name == "random_common_cause" else "random subsets of the data"
    verdict = ("the estimate does not move" if passed else
               "the estimate moves more than its standard error allows: it is fragile, look at the data before trusting it")
    detail = (f"with {what} the mean effect is {num(new)} against {num(est)} "
              f"(shift {z:+.2f} standard errors{_mc_words(mc_z)}, p = {p:.3g} {'>' if passed else '<='} "
              f"{alpha}); {verdict}{failed_note}")
    return Refutation(name, new, p, passed, detail, total, TESTED[name], mc)


def refits(name: str, sims: np.ndarray) -> tuple[np.ndarray, int, str, Refutation | None]:
    """A refitting refuter's finite simulations, their count, the note on failed ones, and the refutation
    to return when none could be estimated (else None)."""
    ok = sims[np.isfinite(sims)]
    total = int(sims.size)
    failed = total - ok.size
    note = f" ({failed} of {total} refits could not be estimated and were left out)" if failed else ""
    if ok.size == 0:
        return ok, total, note, Refutation(name, None, None, None, f"no refit could be estimated{note}", total,
                                           TESTED[name])
    return ok, total, note, None


def placebo_in_time_refutation(sims: np.ndarray, estimate: Estimate, alpha: float) -> Refutation:
    """placebo_in_time (synthetic control, time series): the real effect against the effects at fake starts."""
    name = "placebo_in_time"
    ok, total, note, empty = refits(name, sims)
    if empty is not None:
        return empty
    est = estimate.value
    extreme = int(np.count_nonzero(np.abs(ok) >= abs(est)))
    p, passed, compared = permutation_verdict(extreme, int(ok.size), alpha, "fake starts")
    # an estimate whose own interval covers 0 is not refuted by fake starts as large: both say no effect is seen
    failed = ("the effect does not stand out from the gaps the fit produces without treatment, and its own "
              "interval covers 0: no effect can be told from the model's error" if covers_zero(estimate) else
              "the fit produces gaps this large without treatment: do not trust the estimate")
    detail = (f"{extreme} of {ok.size} fake starts in the pre-period gave an effect as large as {num(est)} "
              f"(largest |fake effect| {num(float(np.abs(ok).max()))}, {compared}); "
              + ("the effect appears only at the real start" if passed else failed
                 if passed is False else "no fake start gave an effect as large, but there are too few of them "
                                         "to test at alpha")
              + note)
    return Refutation(name, float(ok.mean()), p, passed, detail, total, TESTED[name],
                      placebo_monte_carlo_se(p, int(ok.size)))


def covers_zero(estimate: Estimate) -> bool:
    """Does the estimate's own interval cover 0 (no effect seen by the estimate itself)?"""
    return estimate.ci_lower is not None and estimate.ci_upper is not None \
        and estimate.ci_lower <= 0.0 <= estimate.ci_upper


def placebo_monte_carlo_se(p: float, k: int) -> float:
    """The Monte Carlo standard error of a permutation p-value from k simulations."""
    return math.sqrt(p * (1.0 - p) / k)


def _mc_words(mc_z: float) -> str:
    # of the shift, in standard errors; the p-value's own Monte Carlo SE is the refutation's monte_carlo_se
    return f", Monte Carlo SE of the shift {mc_z:.2g}" if math.isfinite(mc_z) else ""
