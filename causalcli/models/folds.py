"""Cross-fitting folds: which rows each nuisance model is fitted without.

A fold assignment is an integer array, one fold id per row; ``splits`` turns it
into the (train, test) index pairs that scikit-learn, EconML and DoubleML take.
Two ways of drawing it are kept, because published results depend on each:
``fold_ids`` (scikit-learn's shuffled KFold, stratified by a binary treatment;
dml) and ``permuted_fold_ids`` (a seeded permutation cut into near-equal parts;
weighting's cross-fitted boosting).
"""

from __future__ import annotations

import numpy as np


def fold_ids(t: np.ndarray, binary: bool, folds: int, seed: int) -> np.ndarray:
    """Fold of each row: shuffled, stratified by a binary treatment, fixed by the seed."""
    from sklearn.model_selection import KFold, StratifiedKFold

    n = t.size
    splitter = (StratifiedKFold(folds, shuffle=True, random_state=seed) if binary
                else KFold(folds, shuffle=True, random_state=seed))
    ids = np.empty(n, dtype=np.int64)
    for k, (_, test) in enumerate(splitter.split(np.zeros((n, 1)), t.astype(int) if binary else None)):
        ids[test] = k
    return ids


def permuted_fold_ids(n: int, folds: int, seed: int) -> np.ndarray:
    """Fold of each row: a seeded permutation of the rows cut into ``folds`` near-equal parts."""
    perm = np.random.default_rng(seed).permutation(n)
    ids = np.empty(n, dtype=np.int64)
    ids[perm] = np.arange(n) % folds
    return ids


def splits(ids: np.ndarray, folds: int) -> list[tuple[np.ndarray, np.ndarray]]:
    """(train rows, test rows) of each fold, in fold order."""
    return [(np.flatnonzero(ids != k), np.flatnonzero(ids == k)) for k in range(folds)]


def training_fold_means(t: np.ndarray, ids: np.ndarray, folds: int, weights: np.ndarray | None = None) -> np.ndarray:
    """For each row, the mean of ``t`` over the rows outside its fold (a cross-fitted constant model); with
    observation ``weights``, their weighted mean (what a constant model fitted with those weights predicts)."""
    if weights is None:
        total, count = t.sum(), t.size
        sums = np.bincount(ids, weights=t, minlength=folds)
        sizes = np.bincount(ids, minlength=folds)
        return ((total - sums) / (count - sizes))[ids]
    wt = weights * t
    sums = np.bincount(ids, weights=wt, minlength=folds)
    mass = np.bincount(ids, weights=weights, minlength=folds)
    return ((wt.sum() - sums) / (weights.sum() - mass))[ids]
