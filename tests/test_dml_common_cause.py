"""dml's random_common_cause by warm start (causalcli/designs/dml/common_cause.py) against the full
refit it replaces, and the refuters' smaller causal forests against full-size ones.

The full refit (every nuisance model refitted through EconML with the noise column, on the same
folds) is kept as ``refit_common_cause_point`` so that these tests can compare the two.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from causalcli.designs import get_design
from causalcli.designs.dml.common_cause import (FULL_REFIT_TRAINING_ROWS, common_cause_point, refit_common_cause_point,
                                                refits_in_full, warm_common_cause_point)
from causalcli.study.run import as_loaded, prepare_study, run_study
from tests.reference.dml.simulate import dml_spec, simulate_dml


def fitted(path: Path, **options):
    """The fit of a dml spec on ``path`` and the data its refuters get (``Fit.refute_on``)."""
    loaded = as_loaded(dml_spec(path, **options))
    prep = prepare_study(loaded)
    design = get_design("dml")
    data = design.prepare(loaded.study, prep.table, prep.identification, loaded)
    fit = design.fit(data, loaded.study, 0)
    return fit, fit.refute_on


@pytest.mark.parametrize("segments", [[], ["seg"]])
def test_warm_start_equals_the_full_refit_for_least_squares_learners(tmp_path, segments):
    """Frisch-Waugh: least squares of y on [1, W, U] is least squares on [1, W] plus least squares of
    its residual on [1, W, U], so with ``learner: linear`` and a continuous treatment (both nuisances
    least squares) the warm start is the full refit, up to rounding."""
    df, _ = simulate_dml(1200, seed=5, binary=False)
    df.to_csv(tmp_path / "d.csv", index=False)
    _, d = fitted(tmp_path / "d.csv", learner="linear", _study={"segments": segments})
    for draw in range(3):
        u = np.random.default_rng(draw).standard_normal(len(df))
        warm = warm_common_cause_point(d, d.cross_fit, u)
        assert warm == pytest.approx(refit_common_cause_point(d, d.cross_fit, u), abs=1e-8, rel=0)


@pytest.mark.parametrize("learner", ["gbm", "forest"])
def test_tree_learners_on_small_data_are_refitted_in_full(tmp_path, learner):
    """Up to FULL_REFIT_TRAINING_ROWS training rows per fold, the tree learners' random_common_cause is
    the full refit through EconML (the same clones on the same folds), to rounding; a linear learner
    keeps its (exact) continuation."""
    df, _ = simulate_dml(600, seed=11, nonlinear=True)
    df.to_csv(tmp_path / "d.csv", index=False)
    _, d = fitted(tmp_path / "d.csv", learner=learner)
    assert refits_in_full(d, d.cross_fit)
    u = np.random.default_rng(4).standard_normal(len(df))
    assert common_cause_point(d, d.cross_fit, u) == pytest.approx(refit_common_cause_point(d, d.cross_fit, u),
                                                                 abs=1e-10, rel=0)
    _, linear = fitted(tmp_path / "d.csv", learner="linear")
    assert not refits_in_full(linear, linear.cross_fit)


@pytest.mark.slow
def test_warm_start_mean_equals_the_full_refits_mean_within_monte_carlo_error(tmp_path):
    """gbm learners, binary treatment, known effect 2, on 20,000 rows (16,000 training rows per fold:
    above FULL_REFIT_TRAINING_ROWS, so the refuter warm-starts, and scikit-learn's boosting stops
    early): over the same 8 noise columns, the mean of the warm-started estimates and the mean of
    full refits differ by less than three Monte Carlo standard errors of that difference (the SD of
    the 8 paired differences over sqrt(8)): the two means estimate the same expected
    random_common_cause value, and a paired difference of eight simulations cannot be compared more
    finely than its own Monte Carlo error. Both means also stay within the estimate's standard error
    of the estimate, which is what the refuter judges."""
    df, _ = simulate_dml(20_000, seed=7, nonlinear=True)
    df.to_csv(tmp_path / "d.csv", index=False)
    fit, d = fitted(tmp_path / "d.csv", learner="gbm")
    assert not refits_in_full(d, d.cross_fit) and 4 * 20_000 // 5 > FULL_REFIT_TRAINING_ROWS
    assert abs(fit.estimate.value - 2.0) < 3 * fit.estimate.std_error
    draws = [np.random.default_rng(100 + k).standard_normal(len(df)) for k in range(8)]
    warm = np.array([common_cause_point(d, d.cross_fit, u) for u in draws])
    full = np.array([refit_common_cause_point(d, d.cross_fit, u) for u in draws])
    difference = warm - full
    monte_carlo_se = difference.std(ddof=1) / np.sqrt(difference.size)
    assert abs(difference.mean()) < 3 * monte_carlo_se
    se = fit.estimate.std_error
    assert abs(warm.mean() - fit.estimate.value) < se and abs(full.mean() - fit.estimate.value) < se


def test_common_cause_values_are_fixed_by_the_seed(tmp_path, monkeypatch):
    """Same seed, same noise columns, same continuations: the same random_common_cause value, in
    this process or in forked workers (the warm start, whose fold cache the workers inherit: the
    full-refit threshold is lowered so that 900 rows take it)."""
    monkeypatch.setattr("causalcli.designs.dml.common_cause.FULL_REFIT_TRAINING_ROWS", 0)
    df, _ = simulate_dml(900, seed=9)
    df.to_csv(tmp_path / "d.csv", index=False)
    spec = dml_spec(tmp_path / "d.csv", learner="gbm")
    spec["refute"] = [{"random_common_cause": {"simulations": 3}}]
    values = [run_study(spec, jobs=jobs).refutations[0].new_effect for jobs in (1, 2, 1)]
    assert values[0] == values[1] == values[2]
    other = run_study({**spec, "seed": 1}, jobs=1).refutations[0].new_effect
    assert other != values[0]


@pytest.mark.parametrize("learner", ["lasso", "forest", "gbm"])
def test_warm_start_moves_the_estimate_little_for_every_learner(tmp_path, learner):
    """An added noise column moves the warm-started estimate by a small fraction of its standard error."""
    df, _ = simulate_dml(800, seed=13)
    df.to_csv(tmp_path / "d.csv", index=False)
    fit, d = fitted(tmp_path / "d.csv", learner=learner)
    u = np.random.default_rng(0).standard_normal(len(df))
    assert abs(warm_common_cause_point(d, d.cross_fit, u) - fit.estimate.value) < 0.5 * fit.estimate.std_error


def test_boosting_shortcuts_change_no_number(tmp_path):
    """The fold models predict from their own bins and the continuations take cached bins of W:
    both give exactly what scikit-learn's plain predict and fit give."""
    from causalcli.designs.dml.common_cause import _predict

    df, _ = simulate_dml(1200, seed=17, nonlinear=True)
    df.to_csv(tmp_path / "d.csv", index=False)
    _, d = fitted(tmp_path / "d.csv", learner="gbm", _study={"segments": ["seg"]})
    cf = d.cross_fit
    W = d.W
    for models, classifier in ((cf.models_y, False), (cf.models_t, True)):
        for model in models:
            Z = np.column_stack([d.S, W])
            assert np.array_equal(_predict(model, Z, classifier, boosting=True), _predict(model, Z, classifier))
    u = np.random.default_rng(3).standard_normal(len(df))
    assert warm_common_cause_point(d, cf, u) == warm_common_cause_point(d, cf, u, prebinned=False)
