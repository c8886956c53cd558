"""Group sequential boundaries over many looks (`design.sequential.method: group_sequential`): the banded lattice
recursion (causalcli/designs/experiment/recursion.py) against the dense recursion it replaced
(tests/reference/experiment/dense_recursion.py), and the null's crossing probability at 365 looks.

Tolerances:
* Against the dense recursion: 1e-6 in z. Both are Simpson's rule at 12 points per sd of the increment, on
  different grids (each region's own step there, one lattice and a quintic end piece here); each is within
  1.5e-7 of the same recursion on a grid 4 times finer (K = 3-50, alpha 0.05; measured when this was written),
  so they differ by at most about 3e-7. The largest difference seen at K = 2-20 was 4e-8.
* Crossing probability under the null at 365 looks, recomputed forward with the found boundaries on a grid twice
  as fine: the total within 1e-6 of alpha, each look within 1e-8 of its spending. The found boundaries spend each
  look's alpha to 1e-13 on their own grid; the finer grid differs from it by the quadrature error (measured:
  1e-8 in total, 7e-11 a look), so 1e-6 and 1e-8 leave a factor 100.
* Quadrature: exact for cubics to 1e-12 (double-precision sums of a few thousand terms); on a normal density,
  Simpson's error bound. The convolution against the sum over every pair: 1e-12 of the largest value (the kernel
  is cut where it is below 3e-18 of its peak).
"""

from __future__ import annotations

import math

import numpy as np
import pytest

from causalcli.designs.experiment import recursion
from causalcli.designs.experiment import sequential as seq
from tests.reference.experiment import dense_recursion as dense

AGAINST_DENSE = 1e-6


def _spent(spending: str):
    return lambda t, alpha: seq.spent(t, alpha, spending)


@pytest.mark.parametrize("spending", ["obrien_fleming", "pocock"])
def test_boundaries_equal_the_dense_recursion_for_2_to_20_looks(spending):
    for alpha in (0.01, 0.025, 0.05, 0.1, 0.2):
        for looks in range(2, 21):
            fractions = seq.equally_spaced(looks)
            ours = seq.spending_boundaries(fractions, alpha, spending)
            theirs = dense.spending_boundaries(fractions, alpha, _spent(spending))
            assert ours == pytest.approx(theirs, abs=AGAINST_DENSE), (alpha, looks)


def test_irregular_looks_with_a_short_increment_equal_the_dense_recursion():
    """Looks as the data give them (units by day, a quiet day among them): the looks around the short increment take
    their own grid step, the others the shared lattice; a power-family spending as spotify-confidence's."""
    rng = np.random.default_rng(3)
    days = rng.uniform(0.6, 1.4, 30)
    days[11] = 0.02  # a quiet day: below 1/4 of the median increment
    fractions = list(np.cumsum(days) / days.sum())
    steps = recursion.grid_steps(fractions)
    assert len(set(steps)) > 1 and steps.count(max(steps)) > 20  # both paths are taken
    for spending in ("obrien_fleming", "pocock", lambda t, a: a * t ** 2):
        spent = spending if callable(spending) else _spent(spending)
        ours = seq.spending_boundaries(fractions, 0.05, spending)
        assert ours == pytest.approx(dense.spending_boundaries(fractions, 0.05, spent), abs=AGAINST_DENSE)


@pytest.mark.parametrize("spending", ["obrien_fleming", "pocock"])
def test_365_looks_spend_alpha_under_the_null_on_a_finer_grid(spending):
    fractions = seq.equally_spaced(365)
    bounds = seq.spending_boundaries(fractions, 0.05, spending)
    crossing = seq.exit_probabilities(bounds, fractions, 0.0, steps_per_sd=2 * recursion.STEPS_PER_SD)
    assert sum(crossing) == pytest.approx(0.05, abs=1e-6)
    spending_by_look = np.diff([0.0] + [seq.spent(t, 0.05, spending) for t in fractions])
    assert np.abs(np.array(crossing) - spending_by_look).max() < 1e-8
    # the boundaries fall towards the fixed-horizon 1.96 and stay above it
    assert all(b > 1.959963984540054 for b in bounds) and bounds[-1] < bounds[len(bounds) // 2]


def test_365_looks_drift_and_repeated_p_value():
    fractions = seq.equally_spaced(365)
    bounds = seq.spending_boundaries(fractions, 0.05, "obrien_fleming")
    drift = seq.drift_for_power(bounds, fractions, 0.8)
    fine = seq.exit_probabilities(bounds, fractions, drift, steps_per_sd=2 * recursion.STEPS_PER_SD)
    assert sum(fine) == pytest.approx(0.8, abs=1e-6)
    assert sum(seq.exit_probabilities(bounds, fractions, drift)) == pytest.approx(0.8, abs=1e-9)
    for z in (2.3, 3.0, 4.5):
        p = seq.repeated_p_value(z, fractions, "obrien_fleming")
        assert seq.spending_boundaries(fractions, p, "obrien_fleming")[-1] == pytest.approx(z, abs=1e-6)


@pytest.mark.parametrize("spending", ["obrien_fleming", "pocock"])
def test_a_365_look_plan_sizes_by_the_drift_of_its_boundaries(tmp_path, spending):
    from causalcli.designs.experiment.plan import detectable_multiplier
    from tests.test_experiment_sequential import _plan

    about = _plan(tmp_path, {"method": "group_sequential", "looks": 365, "spending": spending})["sequential"]
    fractions = seq.equally_spaced(365)
    bounds = seq.spending_boundaries(fractions, 0.05, spending)
    fine = seq.exit_probabilities(bounds, fractions, about["drift"], steps_per_sd=2 * recursion.STEPS_PER_SD)
    assert sum(fine) == pytest.approx(0.8, abs=1e-6)
    assert about["inflation"] == pytest.approx((about["drift"] / detectable_multiplier(0.05, 0.8)) ** 2, rel=1e-12)
    # more looks cost more units, and Pocock-type spending more than O'Brien-Fleming-type
    fewer = _plan(tmp_path, {"method": "group_sequential", "looks": 14, "spending": spending})["sequential"]
    assert about["inflation"] > fewer["inflation"]
    assert (1.03 < about["inflation"] < 1.08) if spending == "obrien_fleming" else (1.25 < about["inflation"] < 1.40)


# ---------------------------------------------------------------- the pieces


@pytest.mark.parametrize("low,high,step", [(-1.3, 2.17, 0.01), (-1.0, 1.0, 0.0123), (0.0, 3.0, 0.03),
                                           (-2.0, 2.0, 1e-3), (0.0, 0.5, 0.01)])
def test_the_quadrature_integrates_cubics_exactly_and_a_normal_density_within_simpsons_bound(low, high, step):
    _, points, weights, lattice = recursion._quadrature(low, high, step)
    assert points[0] == low and points[-1] == pytest.approx(high, abs=1e-15) and lattice <= len(points)
    for degree in range(4):  # Simpson's rule's exactness (the end piece is exact to degree 5)
        assert weights @ points ** degree == pytest.approx((high ** (degree + 1) - low ** (degree + 1)) /
                                                          (degree + 1), rel=1e-12, abs=1e-14)
    from scipy.special import ndtr

    sd = 0.4
    normal = np.exp(-0.5 * ((points - 0.3) / sd) ** 2) / (sd * math.sqrt(2 * math.pi))
    exact = ndtr((high - 0.3) / sd) - ndtr((low - 0.3) / sd)
    # Simpson's error bound (b - a) h^4 max|f''''| / 180, the normal density's f'''' at most 3 / (sd^5 sqrt(2 pi));
    # the end piece's error is O(h^6), below it
    width = (high - low) / max(recursion.MIN_POINTS - 1, 2 * math.floor((high - low) / step / 2))
    bound = (high - low) * max(step, width) ** 4 * 3 / (sd ** 5 * math.sqrt(2 * math.pi)) / 180
    assert abs(weights @ normal - exact) <= bound


@pytest.mark.parametrize("offset", [0.0, 0.37, -5.2, 3.1])
def test_the_convolution_between_lattices_equals_the_dense_sum(offset):
    """The carried density by one kernel vector (lattices with the same step) and by the band (different steps)
    equal the sum over every pair, including new points beyond the old lattice and old points beyond reach."""
    rng = np.random.default_rng(1)
    step, sd = 0.01, 0.05
    old = rng.uniform(0, 1, 400)
    old_points = -1.0 + step * np.arange(len(old))
    new_points = -1.0 + offset + step * np.arange(300)
    z = (new_points[:, None] - old_points[None, :]) / sd
    every_pair = np.exp(-0.5 * z * z) @ old
    convolved = recursion._convolved(old, offset, step, len(new_points), sd)
    banded = recursion._banded(old, -1.0, step, new_points, sd)
    scale = every_pair.max() if every_pair.max() > 0 else 1.0
    assert np.abs(convolved - every_pair).max() <= 1e-12 * scale + 1e-300
    assert np.abs(banded - every_pair).max() <= 1e-12 * scale + 1e-300


def test_repeated_p_values_sharing_known_boundaries_equal_fresh_ones_with_fewer_recursions(monkeypatch):
    """An analysis' effects share the last boundaries computed so far (`SequentialAnalysis.last_boundaries`): each
    p-value then starts from them. Same p-values (to 1e-9 relative, the fit test's tolerance: both end on a secant
    step below 1e-7 in the critical value q, after which q's error is about 1e-7 times the previous error, and p's
    relative error about q times q's; measured 3e-12), fewer boundary recursions."""
    rng = np.random.default_rng(5)
    fractions = list(np.cumsum(rng.uniform(0.5, 1.5, 60)) / 60)
    fractions = [f / fractions[-1] for f in fractions]
    sizes = (2.1, 2.5, 3.5, 1.7, 4.0, 2.6, 3.1, 2.2)
    fresh = [seq.repeated_p_value(z, fractions, "pocock") for z in sizes]
    recursions = []
    counted = seq.spending_boundaries
    monkeypatch.setattr(seq, "spending_boundaries", lambda *a, **k: recursions.append(1) or counted(*a, **k))
    known: dict[float, float] = {}
    shared = [seq.repeated_p_value(z, fractions, "pocock", known) for z in sizes]
    assert shared == pytest.approx(fresh, rel=1e-9)
    assert len(known) == len(recursions)
    alone = len(recursions)
    recursions.clear()
    for z in sizes:
        seq.repeated_p_value(z, fractions, "pocock")
    assert alone <= len(recursions) - (len(sizes) - 1)  # at least one recursion fewer an effect after the first
