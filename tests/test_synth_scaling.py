"""The inner QP of synthetic control on large donor pools: the factored Gram matrix.

Past ``DENSE_MAX_DONORS`` donors the inner QP works from X0 and V instead of forming
G = X0'VX0 (J x J); it must find the same weights as the dense form, to rounding.
Timings are in bench/ (bench_synth, bench_scaling), never here.
"""

from __future__ import annotations

import numpy as np


def _problem(k: int, J: int, T0: int, seed: int):
    from causalcli.models.synthetic_weights import scale_predictors

    rng = np.random.default_rng(seed)
    X0 = rng.normal(size=(k, J))
    X1 = X0 @ rng.dirichlet(np.full(J, 0.05)) + rng.normal(scale=0.2, size=k)
    Z0 = rng.normal(size=(T0, J))
    Z1 = Z0 @ rng.dirichlet(np.full(J, 0.05)) + rng.normal(scale=0.2, size=T0)
    X1s, X0s, _ = scale_predictors(X1, X0)
    return X1s, X0s, Z1, Z0


def test_the_factored_inner_qp_finds_the_dense_weights():
    from causalcli.models.synthetic_weights import EPS_W, _FactoredGram, _active_set, simplex_ls

    for seed in range(20):
        X1, X0, _, _ = _problem(12, 260, 12, seed)
        v = np.random.default_rng(100 + seed).dirichlet(np.ones(12))
        Xv = X0 * v[:, None]
        c = Xv.T @ X1
        G = X0.T @ Xv + EPS_W * np.eye(X0.shape[1])
        dense = simplex_ls(G, c, float(X1 @ (v * X1)))
        factored = _active_set(_FactoredGram(X0, Xv, EPS_W), c, float(X1 @ (v * X1)), None)
        assert np.array_equal(dense.passive, factored.passive)
        # the KKT block is conditioned no better than scale / EPS_W (about 1e6): rounding of
        # 1e-16 in its entries moves the weights by up to about 1e-10
        np.testing.assert_allclose(factored.w, dense.w, rtol=0, atol=1e-8)
        assert abs(factored.loss - dense.loss) <= 1e-8 * max(1.0, abs(dense.loss))


def test_small_pools_keep_the_dense_gram_digit_for_digit():
    """Below the threshold weights_for_v is the dense QP itself (golden files keep their digits)."""
    from causalcli.models.synthetic_weights import DENSE_MAX_DONORS, EPS_W, simplex_ls, weights_for_v

    X1, X0, _, _ = _problem(9, min(60, DENSE_MAX_DONORS), 10, 7)
    v = np.linspace(1.0, 2.0, 9) / np.linspace(1.0, 2.0, 9).sum()
    Xv = X0 * v[:, None]
    G = X0.T @ Xv
    G.flat[::G.shape[0] + 1] += EPS_W
    want = simplex_ls(G, Xv.T @ X1, float(X1 @ (v * X1)))
    got = weights_for_v(v, X1, X0)
    assert np.array_equal(got.w, want.w) and got.loss == want.loss


def test_a_large_pool_nested_fit_agrees_with_the_dense_one(monkeypatch):
    """The whole nested fit (V and W) on 300 donors, factored against dense: equal to the outer tolerance."""
    from causalcli.models import synthetic_weights as sw

    X1, X0, Z1, Z0 = _problem(12, 300, 12, 3)
    factored = sw.fit_nested(X1, X0, Z1, Z0, starts=3)
    monkeypatch.setattr(sw, "DENSE_MAX_DONORS", 10**9)
    dense = sw.fit_nested(X1, X0, Z1, Z0, starts=3)
    assert factored.start == dense.start
    assert abs(factored.loss_v - dense.loss_v) <= sw.FTOL * dense.loss_v
    np.testing.assert_allclose(factored.w, dense.w, rtol=0, atol=1e-4)


def test_the_outcome_path_fit_on_many_donors_matches_the_dense_one():
    """Conformal refits and augmented SCM weights (``simplex_ls_rows``): factored past the threshold."""
    from causalcli.models.synthetic_weights import DENSE_MAX_DONORS, simplex_ls, simplex_ls_rows

    rng = np.random.default_rng(11)
    for J in (DENSE_MAX_DONORS, DENSE_MAX_DONORS + 50):
        Y0 = rng.normal(size=(20, J))
        y1 = Y0 @ rng.dirichlet(np.full(J, 0.05)) + rng.normal(scale=0.1, size=20)
        dense = simplex_ls(Y0.T @ Y0, Y0.T @ y1)
        got = simplex_ls_rows(Y0, y1)
        assert np.array_equal(got.passive, dense.passive)
        np.testing.assert_allclose(got.w, dense.w, rtol=0, atol=1e-8)
        if J <= DENSE_MAX_DONORS:
            assert np.array_equal(got.w, dense.w)


def test_the_weighted_gram_without_x0v_finds_the_dense_weights():
    """weights_for_v past the threshold (``_WeightedGram``: X0 diag(v) never formed, the squares of X0 reused)."""
    from causalcli.models.synthetic_weights import DENSE_MAX_DONORS, EPS_W, simplex_ls, weights_for_v

    for seed in range(5):
        X1, X0, _, _ = _problem(12, DENSE_MAX_DONORS + 60, 12, 40 + seed)
        v = np.random.default_rng(200 + seed).dirichlet(np.ones(12))
        Xv = X0 * v[:, None]
        G = X0.T @ Xv + EPS_W * np.eye(X0.shape[1])
        dense = simplex_ls(G, Xv.T @ X1, float(X1 @ (v * X1)))
        for warm in (None, dense.w):  # a cold start, and the warm start the outer search gives
            got = weights_for_v(v, X1, X0, warm)
            assert np.array_equal(got.passive, dense.passive)
            np.testing.assert_allclose(got.w, dense.w, rtol=0, atol=1e-8)
            assert abs(got.loss - dense.loss) <= 1e-8 * max(1.0, abs(dense.loss))
