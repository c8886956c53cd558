"""The conformal test inversion's shortcuts give the plain computation's numbers, bit for bit or to the solver's
tolerance.

The moving-block statistic of every cyclic shift is gathered in one indexed sum instead of one
``np.roll`` per shift, the outcome path's Gram matrix is formed once per inversion instead of once
per null, and each null's refit starts from the last null's weights. The first two may not change a
digit (the golden files and seed-determinism rest on them); the warm start reaches the cold refit to the
solver's tolerance. Timings are in bench/ and docs/performance.md, never here.
"""

from __future__ import annotations

import numpy as np
import pytest


def _pvalue_by_rolling(u: np.ndarray, n_post: int) -> float:
    """The statistic as CWZ write it: roll the residuals by s, sum |u| over the post window."""
    T = u.size
    stats = np.empty(T)
    for s in range(T):
        stats[s] = np.sum(np.abs(np.roll(u, s)[T - n_post:]))
    return float(np.mean(stats >= stats[0] - 1e-12 * max(1.0, abs(stats[0]))))


def test_the_moving_block_pvalue_equals_the_shift_by_shift_one_bit_for_bit():
    """Windows of 1 to 300 periods (numpy sums 8 at a time below 128 and pairwise above, on both paths),
    residuals over six orders of magnitude, and a residual equal to the observed statistic (a tie)."""
    from causalcli.designs.synthetic_control.conformal import _pvalue

    rng = np.random.default_rng(3)
    for T in (20, 39, 301, 365):
        for n_post in (1, 2, 7, 8, 9, 65, 129, 300):
            if n_post >= T:
                continue
            for _ in range(5):
                u = rng.standard_normal(T) * 10 ** rng.uniform(-3, 3, T)
                assert _pvalue(u, n_post) == _pvalue_by_rolling(u, n_post)
            u[0] = u[-1]  # a tied window at n_post = 1
            assert _pvalue(u, n_post) == _pvalue_by_rolling(u, n_post)


@pytest.mark.parametrize("donors", [40, 260])  # the dense Gram matrix, and the factored one past DENSE_MAX_DONORS
def test_a_gram_formed_once_refits_every_null_as_a_fresh_one(donors):
    from causalcli.models.synthetic_weights import DENSE_MAX_DONORS, rows_gram, simplex_ls_rows

    assert (donors > DENSE_MAX_DONORS) is (donors == 260)
    rng = np.random.default_rng(donors)
    A = rng.normal(size=(31, donors)) + 5.0
    b = A @ rng.dirichlet(np.full(donors, 0.1)) + rng.normal(scale=0.3, size=31)
    gram = rows_gram(A)
    for theta in np.linspace(-3.0, 3.0, 7):
        bt = b.copy()
        bt[-1] -= theta
        fresh, reused = simplex_ls_rows(A, bt), simplex_ls_rows(A, bt, gram)
        assert np.array_equal(fresh.w, reused.w) and fresh.loss == reused.loss


@pytest.mark.parametrize("donors", [40, 260])
def test_each_null_warm_started_from_the_last_reaches_the_cold_refit(donors):
    """The refit of a null starts from the previous null's weights (the grid, then bisection, moves theta a
    little at a time). The fitted outcome path of a simplex least squares is unique, so the residuals are the
    cold refit's to the active set's tolerance, and the moving-block p-values are the same; an endpoint can
    move only when a bisection midpoint lies within that rounding of a jump of p, by one bisection step."""
    from types import SimpleNamespace

    from causalcli.designs.synthetic_control.conformal import _pvalue, _refitter
    from causalcli.models.synthetic_weights import simplex_ls_rows

    rng = np.random.default_rng(donors + 1)
    T = 41
    A = rng.normal(size=(T, donors)) + np.linspace(0, 4, T)[:, None]
    b = A @ rng.dirichlet(np.full(donors, 0.1)) + rng.normal(scale=0.3, size=T)
    last = np.zeros(T)
    last[-1] = 1.0
    refit, _ = _refitter(SimpleNamespace(augmented=None), A)
    for theta in (*np.linspace(-4.0, 4.0, 9), 0.5, 0.75, 0.625, 0.6875):
        y = b - theta * last
        warm = refit(y, None)
        cold = y - A @ simplex_ls_rows(A, y).w
        np.testing.assert_allclose(warm, cold, rtol=0, atol=1e-8)
        assert _pvalue(warm, 1) == _pvalue(cold, 1)
