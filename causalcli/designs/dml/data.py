"""The values dml passes between its steps: the arrays ``prepare`` reads (``DmlData``) and
what ``fit`` learns that the refuters reuse (``CrossFit``). Both are frozen and picklable
(the refuters run in forked workers); neither is changed once built."""

from __future__ import annotations

import uuid
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from causalcli.data.table import MissingRows


@dataclass(frozen=True)
class CrossFit:
    """The cross-fitting of one ``fit``: folds, out-of-fold residuals, the fitted nuisance model of
    each fold (random_common_cause continues them) and, for ``model: forest``, the final forest
    unfitted with the fitted one's parameters (refuters refit only that)."""

    seed: int
    ids: np.ndarray  # fold of each row
    y_res: np.ndarray  # outcome minus its out-of-fold prediction
    t_res: np.ndarray  # treatment minus its out-of-fold prediction (propensity when binary)
    final: Any = None
    models_y: tuple = ()  # fitted outcome model of each fold (EconML's models_y)
    models_t: tuple = ()  # fitted treatment model of each fold (a classifier when binary)
    # names this fit across pickled copies (forked refuter workers), for the fold predictions memo
    token: str = field(default_factory=lambda: uuid.uuid4().hex)


@dataclass(frozen=True)
class DmlData:
    """Arrays the estimator and the refuters share.

    ``cross_fit`` is None as ``prepare`` builds it; ``fit`` returns a copy carrying its
    ``CrossFit`` in ``Fit.refute_on``, so the placebo and subset refuters reuse the residuals.
    """

    W: np.ndarray  # covariates (controls), float
    covariates: tuple[str, ...]
    t: np.ndarray  # float; 0/1 when binary
    y: np.ndarray
    binary: bool
    S: np.ndarray  # segment dummies (first level of each column dropped); (n, 0) without segments
    segment_dummies: tuple[str, ...]
    segment_columns: tuple[str, ...]
    segment_values: tuple[np.ndarray, ...]  # text labels, one array per segment column
    model: str
    learner: str
    folds: int
    trees: int
    min_leaf: int
    estimand: str
    treatment: str
    rows: int
    dropped_missing: int
    file: str
    missing: MissingRows | None = None  # rows dropped for a missing value, by role
    cross_fit: CrossFit | None = None
    # the top-level weights (probability weights; rows of weight 0 dropped), or None
    sample_weights: np.ndarray | None = None
    weights_column: str | None = None
    zero_weight: int = 0  # rows of weight 0, dropped


def effect_modifiers(d: DmlData) -> np.ndarray | None:
    """X of EconML: the segment dummies (linear) or the covariates and segment dummies (forest)."""
    if d.model == "linear":
        return d.S if d.S.shape[1] else None
    return np.column_stack([d.W, d.S]) if d.S.shape[1] else d.W


def effect_modifier_names(d: DmlData) -> list[str]:
    if d.model == "linear":
        return list(d.segment_dummies)
    return [*d.covariates, *d.segment_dummies]


def nuisance_inputs(d: DmlData) -> np.ndarray:
    """What EconML's nuisance models see: [X, W] as its ``_combine`` stacks them (linear: segment
    dummies then covariates; forest: the effect modifiers, no W)."""
    X = effect_modifiers(d)
    if d.model == "forest":
        return X
    return d.W if X is None else np.column_stack([X, d.W])


def final_features(d: DmlData) -> np.ndarray:
    """What the final stage models the effect on: [1, segment dummies] (linear) or X (forest)."""
    if d.model == "linear":
        return np.column_stack([np.ones(d.t.size), d.S])
    return effect_modifiers(d)
