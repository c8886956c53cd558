"""Refuters of the synthetic control design: placebo-in-time and leave-one-donor-out.

* ``placebo_in_time`` (Abadie et al. 2015, sec. 4; "backdating"): the data are cut
  at the real start, a fake start is drawn from the pre-periods that leave at least
  ``min_pre`` periods before it (every such start once, in order, when there are no
  more of them than simulations), and the synthetic control is refit; its effect is
  the mean gap between the fake and the real start; the p-value is
  (1 + #|fake| >= |estimate|) / (1 + fake starts), judged by the permutation rule
  of ``causalcli.checks.refutation.RULES`` (not judged when too few fake starts can reach alpha).
* ``leave_one_donor_out`` (Abadie et al. 2015, sec. 4, robustness to the donor
  pool): each of the ``donors`` largest-weight donors is dropped in turn and the
  fit redone; ``new_effect`` is the estimate that moves closest to zero (or past
  it). Passed when it keeps the sign of the estimate (``RULES``). One run covers every donor.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import numpy as np

from causalcli.errors import EstimationError
from causalcli.checks.refutation import TESTED
from causalcli.numbers import num
from causalcli.records import Estimate, Refutation

if TYPE_CHECKING:  # pragma: no cover
    from causalcli.designs.synthetic_control.panel import SynthData



def placebo_in_time(d: "SynthData", options: Any, rng: np.random.Generator) -> float:
    return placebo_in_time_at(d, float(rng.choice(fake_starts(d, options))))


def fake_starts(d: "SynthData", options: Any) -> np.ndarray:
    """The pre-periods a fake start may take (``min_pre`` periods before it, and a validation period)."""
    pre_times = d.times[d.pre]
    eligible = pre_times[options.min_pre:]
    if d.v == "cross_validated" and d.cv_validate_window is not None:
        # cross-validated V needs part of its validation window before the fake start
        eligible = eligible[eligible > d.cv_validate_window[0]]
    if eligible.size == 0:
        raise EstimationError(f"no fake start leaves {options.min_pre} pre-periods before it"
                              + (" and a validation period" if d.v == "cross_validated" else ""))
    return eligible


def placebo_in_time_at(d: "SynthData", fake: float) -> float:
    """The refit with the treatment pretended to start at ``fake``: its mean gap up to the real start."""
    from causalcli.designs.synthetic_control.panel import fit_unit

    if d.estimator == "synthetic_did" or d.treated > 1 or d.adoption:  # synthetic DiD or the pooled fit
        from causalcli.designs.synthetic_control.synthdid import placebo_in_time_at as sdid_placebo_in_time_at

        return sdid_placebo_in_time_at(d, fake)
    keep = d.pre
    f = fit_unit(d, 0, np.arange(1, len(d.units)), start=fake, times_mask=keep)
    window = (d.times >= fake) & keep
    return float(f.gaps[window].mean())


def leave_one_donor_out(d: "SynthData", options: Any) -> float:
    from causalcli.designs.synthetic_control.panel import fit_unit, without_donor

    if d.estimator == "synthetic_did" or d.treated > 1 or d.adoption:  # synthetic DiD or the pooled fit
        from causalcli.designs.synthetic_control.synthdid import leave_one_donor_out as sdid_leave_one_donor_out

        return sdid_leave_one_donor_out(d, options)

    J = len(d.units) - 1
    base = fit_unit(d, 0, np.arange(1, J + 1))
    estimate = float(base.gaps[d.post].mean())
    order = [int(j) for j in np.argsort(-base.w, kind="stable") if base.w[j] > 1e-6][:options.donors]
    if J - 1 < 2 or not order:
        raise EstimationError("too few donors to leave one out")
    effects = []
    for j in order:
        d2 = without_donor(d, j + 1)
        f = fit_unit(d2, 0, np.arange(1, J))
        effects.append(float(f.gaps[d2.post].mean()))
    # the weakest: closest to zero on the estimate's side, or furthest past it
    return min(effects) if estimate > 0 else max(effects)


def summarise(name: str, sims: np.ndarray, estimate: Estimate, alpha: float) -> Refutation:
    from causalcli.checks.refutation import placebo_in_time_refutation, refits

    if name == "placebo_in_time":
        return placebo_in_time_refutation(sims, estimate, alpha)
    ok, total, note, empty = refits(name, sims)
    if empty is not None:
        return empty
    est = estimate.value
    if name == "leave_one_donor_out":
        weakest = float(ok[0])
        passed = bool(np.sign(weakest) == np.sign(est) and weakest != 0)
        detail = (f"dropping the heavily weighted donors one at a time, the estimate closest to zero is "
                  f"{num(weakest)} against {num(est)}; "
                  + ("the sign holds without any single donor" if passed else
                     "one donor alone carries the result: the estimate changes sign without it")
                  + note)
        return Refutation(name, weakest, None, passed, detail, total, TESTED[name])
    raise EstimationError(f"unknown synthetic control refuter {name!r}")
