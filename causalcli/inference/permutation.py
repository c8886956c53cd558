"""Permutation inference: the p-value of a statistic among its placebo values, and the exact placebo list.

With k placebo statistics of which ``extreme`` are at least as far from zero as the actual one, the p-value
is (1 + extreme) / (1 + k) (the actual assignment counted once among the k + 1; Phipson and Smyth 2010 for
sampled permutations). When the k assignments are every possible one, the actual included, it is
extreme / k. Either way it cannot go below ``smallest_permutation_p``.
"""

from __future__ import annotations

import math

import numpy as np


def permutation_p_value(extreme, k: int, actual_included: bool = False):
    """The permutation p-value of ``extreme`` (an int or an array of counts) among ``k`` placebos;
    ``actual_included``: the k assignments are all of them, the actual one among them."""
    return extreme / k if actual_included else (1 + extreme) / (1 + k)


def smallest_permutation_p(k: int, actual_included: bool = False) -> float:
    """The smallest p-value ``permutation_p_value`` can give with ``k`` placebos."""
    return 1 / k if actual_included else 1 / (1 + k)


def distinct_permutations(values: np.ndarray, limit: int) -> list[np.ndarray] | None:
    """Every distinct rearrangement of ``values`` except ``values`` itself, when there are at most ``limit``
    (in lexicographic order of the sorted levels, so the list is deterministic); None when there are more.

    With them all, the permutation p-value (1 + #extreme) / (1 + k) is the exact randomisation p-value.
    """
    values = np.asarray(values)
    n = values.size
    levels, codes = np.unique(values, return_inverse=True)
    codes = codes.reshape(-1)
    if levels.size < 2 or n - 1 > limit:  # two levels give at least n arrangements
        return None
    count, left = 1, n
    for k in np.bincount(codes):
        count *= math.comb(left, int(k))
        left -= int(k)
        if count - 1 > limit:
            return None
    out = []
    perm = np.sort(codes)
    while True:
        if not np.array_equal(perm, codes):
            out.append(levels[perm])
        # next lexicographic permutation of a multiset (Knuth, TAOCP 7.2.1.2, algorithm L)
        i = n - 2
        while i >= 0 and perm[i] >= perm[i + 1]:
            i -= 1
        if i < 0:
            return out
        j = n - 1
        while perm[j] <= perm[i]:
            j -= 1
        perm[i], perm[j] = perm[j], perm[i]
        perm[i + 1:] = perm[i + 1:][::-1].copy()
