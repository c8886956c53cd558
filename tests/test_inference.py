"""causalcli.inference.distributions against scipy.stats on a grid, and the cases callers rely on."""

from __future__ import annotations

import math
from statistics import NormalDist

import numpy as np
import pytest

from causalcli.inference import distributions as dist

DFS = (1, 2, 3, 7.5, 29, 499, 99_999)


def test_t_tails_and_quantiles_equal_scipy_stats():
    from scipy import stats

    for df in DFS:
        for t in (0.0, 0.01, 1.0, 1.96, -2.5, 4.0, 10.0, 40.0):
            assert dist.t_two_sided(t, df) == pytest.approx(2 * stats.t.sf(abs(t), df), rel=1e-14, abs=0)
        for p in (0.6, 0.9, 0.975, 0.995, 0.9995):
            assert dist.t_quantile(p, df) == pytest.approx(stats.t.ppf(p, df), rel=1e-14)


def test_f_and_chi_square_tails_equal_scipy_stats():
    from scipy import stats

    for d2 in DFS:
        for d1 in (1, 2, 5, 12):
            for f in (0.1, 1.0, 3.5, 10.0, 200.0):
                assert dist.f_sf(f, d1, d2) == pytest.approx(stats.f.sf(f, d1, d2), rel=1e-14, abs=0)
    for k in (1, 2, 5, 40, 1000):
        for x in (0.1, 3.0, 7.79, 60.0, 1500.0):
            assert dist.chi2_sf(x, k) == pytest.approx(stats.chi2.sf(x, k), rel=1e-14, abs=0)


def test_normal_tails_and_quantiles_equal_scipy_stats():
    from scipy import stats

    # deep in the tail the relative condition number is about z^2 (900 at z = 30): one rounding of z / sqrt(2)
    # moves the tail by z^2 ulp, so the two libraries agree to 1e-12 there, not to the last digit
    for z in (0.0, 0.3, 1.0, 1.96, -2.5, 5.0, 12.0, 30.0):
        assert dist.normal_two_sided_p(z) == pytest.approx(2 * stats.norm.sf(abs(z)), rel=1e-12, abs=0)
        assert dist.normal_upper_tail(z) == pytest.approx(stats.norm.sf(z), rel=1e-12, abs=0)
    for p in (1e-10, 0.025, 0.25, 0.5, 0.75, 0.9, 0.975, 0.995, 1 - 1e-10):
        assert dist.normal_quantile(p) == pytest.approx(stats.norm.ppf(p), rel=1e-13, abs=1e-15)
    x = np.linspace(-8, 8, 33)
    np.testing.assert_allclose(dist.normal_cdf_array(x), stats.norm.cdf(x), rtol=1e-14, atol=0)
    q = np.linspace(0.001, 0.999, 33)
    np.testing.assert_allclose(dist.normal_quantile_array(q), stats.norm.ppf(q), rtol=1e-14, atol=1e-15)


def test_scalar_normal_is_the_standard_library_so_printed_outputs_do_not_move():
    """The golden outputs were computed with math.erfc and NormalDist; scipy's ndtri differs in the last digit."""
    assert dist.normal_quantile(0.975) == NormalDist().inv_cdf(0.975)
    assert dist.normal_two_sided_p(1.7) == math.erfc(1.7 / math.sqrt(2.0))


def test_a_t_without_degrees_of_freedom_is_the_normal():
    for df in (None, math.inf):
        assert dist.t_two_sided(1.7, df) == dist.normal_two_sided_p(1.7)
        assert dist.t_quantile(0.975, df) == dist.normal_quantile(0.975)


def test_edges():
    assert dist.t_two_sided(math.inf, 5) == 0.0
    assert dist.t_two_sided(-math.inf, None) == 0.0
    assert math.isnan(dist.t_two_sided(math.nan, 5)) and math.isnan(dist.t_two_sided(math.nan, None))
    assert math.isnan(dist.normal_two_sided_p(math.inf))
    assert dist.f_sf(0.0, 3, 10) == 1.0 and dist.f_sf(-1.0, 3, 10) == 1.0
    assert dist.chi2_sf(0.0, 4) == 1.0 and dist.chi2_sf(-2.0, 4) == 1.0
    assert dist.chi2_sf(math.inf, 4) == 0.0
    for value in (dist.t_two_sided(2.0, 10), dist.t_quantile(0.9, 10), dist.f_sf(2.0, 2, 10), dist.chi2_sf(2.0, 3)):
        assert type(value) is float
