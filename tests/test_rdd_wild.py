"""The wild cluster bootstrap of a clustered RD's robust bias-corrected test (``designs/rdd/wild.py``).

Its algebra forms per-cluster sums once and never refits; these tests refit. The data's statistic equals the
headline's t (sharp) or the sharp RD of y - b0 * take-up (fuzzy, the Anderson-Rubin form); every draw's t* equals
rdrobust run on that draw's data with the same bandwidths and clusters (1e-6, as tests/test_rdd.py); and in
simulations with few, unequal clusters, where the CR1 t over-rejects, the bootstrap holds its size.
"""

from __future__ import annotations

import warnings

import numpy as np
import pytest

from causalcli.designs.rdd.fitting import RdSettings, rd_fit
from causalcli.designs.rdd.local_poly import kernel_weights
from causalcli.designs.rdd.wild import RdWildBootstrap
from causalcli.inference.distributions import normal_two_sided_p
from causalcli.inference.few_clusters import wild_weights
from causalcli.inference.wild import bootstrap_weights


def clustered_rd(G: int, seed: int, n: int = 3000, fuzzy: bool = False, spread: float = 1.0):
    """x ~ U(-1, 1) sorted; clusters of lognormal sizes (``spread`` their log-sd) with their own level and jump."""
    rng = np.random.default_rng(seed)
    size = rng.lognormal(0, spread, G)
    cluster = rng.choice(G, n, p=size / size.sum())
    x = np.sort(rng.uniform(-1, 1, n))
    jump = 0.5 + rng.normal(0, 0.3, G)[cluster]
    take_up = None
    if fuzzy:
        take_up = (((x >= 0) & (rng.uniform(size=n) < 0.8)) | (rng.uniform(size=n) < 0.1)).astype(float)
        y = 1 + x + jump * take_up + rng.normal(0, 0.3, G)[cluster] + rng.normal(0, 0.3, n)
        return x, np.column_stack([y, take_up]), cluster
    y = 1 + x + jump * (x >= 0) + rng.normal(0, 0.3, G)[cluster] + rng.normal(0, 0.3, n)
    return x, y[:, None], cluster


def settings(bandwidth="mserd") -> RdSettings:
    return RdSettings(1, "triangular", bandwidth, 0.95)


def bootstrap(result, st, draws=999, seed=0, kind=None) -> RdWildBootstrap:
    boot = RdWildBootstrap(result, st)
    boot.V, _ = bootstrap_weights(boot.G, draws, np.random.default_rng(seed), kind or wild_weights("auto", boot.G))
    return boot


@pytest.mark.parametrize("bandwidth,scale", [("mserd", 1.0), ("msetwo", 1.0), (0.4, 1.0), ("mserd", 1.5)])
def test_the_datas_statistic_is_the_headlines_robust_t(bandwidth, scale):
    # h != b, one per side, h == b (rdrobust's other path), and a refit at 1.5x the bandwidths (sensitivity)
    x, D, cl = clustered_rd(12, seed=1)
    st = settings(bandwidth)
    result = rd_fit(x, D, 0.0, st, cl)
    if scale != 1.0:
        result = rd_fit(x, D, 0.0, st, cl, h_scale=scale, bandwidths=result.bandwidths, split=result.split)
    boot = bootstrap(result, st)
    for b0 in (0.0, 0.3, -1.0):
        t, _ = boot.t_stats(b0)
        np.testing.assert_allclose(t, (result.fit.bias_corrected - b0) / result.fit.se_robust, rtol=1e-10)
    assert abs(boot.tau_fitted).max() < 1e-10  # a polynomial without a jump has no bias-corrected jump


def test_a_fuzzy_designs_statistic_is_the_sharp_rd_of_the_outcome_net_of_b0_take_up():
    x, D, cl = clustered_rd(12, seed=2, fuzzy=True)
    st = settings()
    result = rd_fit(x, D, 0.0, st, cl)
    boot = bootstrap(result, st)
    for b0 in (0.0, 0.5, 2.0):
        u = D[:, 0] - b0 * D[:, 1]
        sharp = rd_fit(x, u[:, None], 0.0, st, cl, bandwidths=result.bandwidths)
        np.testing.assert_allclose(boot.t_stats(b0)[0], sharp.fit.bias_corrected / sharp.fit.se_robust, rtol=1e-9)


def draw_data(result, boot, x, D, cl, b0, k, fuzzy):
    """The k-th draw's outcome, built row by row: the restricted fit (order-q polynomials at b with one intercept)
    plus the cluster's weight times its residual; and the rows either fit uses."""
    bw = result.bandwidths
    left = x < 0
    wb = np.where(left, kernel_weights(x, bw.b_left, "triangular"), kernel_weights(x, bw.b_right, "triangular"))
    wh = np.where(left, kernel_weights(x, bw.h_left, "triangular"), kernel_weights(x, bw.h_right, "triangular"))
    used = (wb > 0) | (wh > 0)
    u = D[:, 0] - b0 * (D[:, 1] if fuzzy else ~left)
    X = np.column_stack([np.ones_like(x), ~left * x, ~left * x ** 2, left * x, left * x ** 2])
    root = np.sqrt(wb[used])
    beta = np.linalg.lstsq(X[used] * root[:, None], u[used] * root, rcond=None)[0]
    fitted = X @ beta
    labels = list(np.unique(cl[used]))
    v = boot.V[k, [labels.index(g) for g in cl[used]]]
    return fitted[used] + v * (u[used] - fitted[used]), used


@pytest.mark.peer
@pytest.mark.parametrize("fuzzy", [False, True])
def test_every_draws_t_equals_rdrobust_on_that_draws_data(fuzzy):
    from rdrobust import rdrobust

    x, D, cl = clustered_rd(10, seed=3, fuzzy=fuzzy)
    st = settings()
    result = rd_fit(x, D, 0.0, st, cl)
    boot = bootstrap(result, st, draws=99, seed=4)
    bw = result.bandwidths
    for b0 in (0.0, 0.4):
        _, tstar = boot.t_stats(b0)
        for k in range(4):
            u, used = draw_data(result, boot, x, D, cl, b0, k, fuzzy)
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")  # rdrobust's few-clusters warning
                r = rdrobust(u, x[used], c=0.0, h=[bw.h_left, bw.h_right], b=[bw.b_left, bw.b_right],
                             cluster=cl[used])
            np.testing.assert_allclose(tstar[k], r.coef.iloc[1, 0] / r.se.iloc[2, 0], rtol=1e-6)


def rejection_rates(G: int, reps: int, spread: float) -> tuple[float, float]:
    """Share of simulated RDs whose true jump (0.5 on average over clusters) is rejected at 5%: CR1, wild."""
    st = settings()
    analytic = wild = 0
    for rep in range(reps):
        x, D, cl = clustered_rd(G, seed=rep, n=2000, spread=spread)
        result = rd_fit(x, D, 0.0, st, cl)
        analytic += normal_two_sided_p((result.fit.bias_corrected - 0.5) / result.fit.se_robust) < 0.05
        p = bootstrap(result, st, draws=199, seed=rep).p_value(0.5)
        wild += p is not None and p < 0.05
    return analytic / reps, wild / reps


@pytest.mark.slow  # a statistical check of size or coverage over many draws (make test-slow)
def test_with_few_unequal_clusters_the_bootstrap_holds_the_size_the_cr1_t_does_not():
    # 12 clusters of lognormal(0, 1.5) sizes: the CR1 robust t rejects a true null 9-10% of the time (2,000 runs in
    # the slow test); 400 runs here, whose Monte Carlo standard error is about 1.1 points at 5%
    analytic, wild = rejection_rates(12, 400, spread=1.5)
    assert analytic > 0.07 and wild < 0.06


@pytest.mark.slow
@pytest.mark.parametrize("G,spread", [(8, 1.5), (12, 1.5), (20, 1.0), (40, 1.0)])
def test_size_over_two_thousand_simulations(G, spread):
    analytic, wild = rejection_rates(G, 2000, spread)
    mc = 3 * np.sqrt(0.05 * 0.95 / 2000)  # three Monte Carlo standard errors: 1.5 points
    assert 0.01 < wild < 0.05 + mc, (analytic, wild)  # Webb weights with 8 unequal clusters are conservative
    if spread > 1:
        assert analytic > 0.05 + mc, (analytic, wild)
