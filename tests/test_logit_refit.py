"""The propensity logit's refits on a shared design (``LogitDesign``, ``refit_logit``): the refuters of
matching and weighting refit the logit on a permuted treatment, a subset of rows or an added covariate
from the full data's design built once; each refit must give ``fit_logit``'s numbers on the same data
bit for bit, so the refuters' results do not change with the shortcut."""

from __future__ import annotations

import pickle

import numpy as np
import pytest

from causalcli.errors import EstimationError
from causalcli.models.logit import LogitDesign, _weighted_gram, fit_logit, refit_logit

ROWS = 30_011  # several blocks of the Hessian (4,096) and of the stacked product (8,192), and a ragged end


@pytest.fixture(scope="module")
def data():
    rng = np.random.default_rng(7)
    X = rng.normal(size=(ROWS, 4)) * [1.0, 3.0, 0.5, 10.0] + [0.0, 5.0, -2.0, 100.0]
    eta = -0.3 + X @ np.array([0.4, -0.2, 0.8, 0.01])
    t = (rng.uniform(size=ROWS) < 1 / (1 + np.exp(-eta))).astype(np.float64)
    full = fit_logit(X, t)
    return X, t, full, (X.mean(axis=0), X.std(axis=0)), rng


def _same(a, b) -> None:
    assert a.iterations == b.iterations
    for name in ("coef", "linear_predictor", "probability"):
        assert np.array_equal(getattr(a, name), getattr(b, name)), name


def test_a_permuted_treatment_refits_as_fit_logit_digit_for_digit(data):
    X, t, full, scaling, rng = data
    placebo = rng.permutation(t)
    start = np.zeros(X.shape[1] + 1)
    start[0] = np.log(placebo.mean() / (1 - placebo.mean()))
    _same(refit_logit(LogitDesign(X, scaling), placebo, start), fit_logit(X, placebo, start=start, scaling=scaling))


def test_a_subset_of_rows_refits_as_fit_logit_on_those_rows_digit_for_digit(data):
    X, t, full, scaling, rng = data
    rows = np.sort(rng.choice(ROWS, size=int(0.8 * ROWS), replace=False))
    _same(refit_logit(LogitDesign(X, scaling).subset(rows), t[rows], full.coef),
          fit_logit(X[rows], t[rows], start=full.coef, scaling=scaling))


def test_an_added_covariate_refits_as_fit_logit_on_the_stacked_matrix_digit_for_digit(data):
    X, t, full, scaling, rng = data
    u = rng.standard_normal(ROWS)
    start = np.append(full.coef, 0.0)
    stacked = fit_logit(np.column_stack([X, u]), t, start=start,
                        scaling=(np.append(scaling[0], 0.0), np.append(scaling[1], 1.0)))
    _same(refit_logit(LogitDesign(X, scaling).with_column(u), t, start), stacked)


def test_a_refit_of_one_arm_is_refused_as_fit_logit_refuses_it(data):
    X, t, full, scaling, _ = data
    with pytest.raises(EstimationError, match="only one treatment arm"):
        refit_logit(LogitDesign(X, scaling), np.zeros(ROWS), full.coef)


def test_the_design_is_pickled_without_its_matrix(data):
    X, t, full, scaling, _ = data
    design = LogitDesign(X, scaling)
    built = design.matrix
    copy = pickle.loads(pickle.dumps(design))
    assert copy._matrix is None
    assert np.array_equal(copy.matrix, built)


def test_the_blocked_hessian_is_the_product_of_the_weighted_design():
    """Weighting each block as it is used gives the Gram matrix of the weighted design written out
    (to rounding: the blocks' sums are added in another order than one product's)."""
    rng = np.random.default_rng(3)
    d = rng.normal(size=(5, 10_000))
    root = rng.uniform(0.1, 0.5, 10_000)
    whole = (d * root) @ (d * root).T
    np.testing.assert_allclose(_weighted_gram(d, root), whole, rtol=1e-12)
    one_block = d[:, :3000] * root[:3000]
    np.testing.assert_array_equal(_weighted_gram(d[:, :3000], root[:3000]), one_block @ one_block.T)
