"""Synthetic control problems built from a panel: predictors, outcome paths, one fit, placebo fits.

``SynthData`` holds the panel as (period x unit) matrices, the treated unit in
column 0 and the donors after it; everything a fit, a placebo-in-space refit, a
placebo-in-time refit or a leave-one-donor-out refit needs is recomputed from
it, so refuters and joblib workers receive one picklable object.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from typing import Any

import numpy as np

from causalcli.models.synthetic_weights import fit_nested, scale_predictors, weights_for_v

PARALLEL_FROM = 12  # placebo refits run in parallel from this many donors on (forking costs more below)



def label(value: Any) -> str:
    """A unit or period as text: 3.0 -> '3', 'Utah' -> 'Utah'."""
    if isinstance(value, np.generic):  # a numpy scalar read from the data: its Python value
        value = value.item()
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    return str(value)

@dataclass(frozen=True)
class Predictor:
    """One row of X: ``column`` averaged over ``periods`` (None: the predictors window)."""

    label: str
    column: str
    periods: tuple[float, ...] | None
    key: str  # spec key path, for error messages


@dataclass(frozen=True)
class SynthData:
    units: tuple[str, ...]  # treated unit(s) first, then donors
    times: np.ndarray  # sorted periods
    start: float
    Y: np.ndarray  # outcome, periods x units
    panels: dict[str, np.ndarray]  # predictor columns, periods x units (NaN = missing)
    predictors: tuple[Predictor, ...]
    predictors_window: tuple[float, float] | None
    optimize_window: tuple[float, float] | None
    v: str = "nested"
    starts: int = 8
    augmented: str | None = None
    ridge_lambda: float | None = None
    conformal: bool = True
    conformal_grid: int = 100
    file: str = ""
    unit_column: str = "unit"
    time_column: str = "time"
    rows: int = 0
    # v: cross_validated (Abadie, Diamond and Hainmueller 2015): V is chosen on a training fit whose
    # predictors come from an earlier window and whose outcome fit is judged on the validation window
    cv_predictors: tuple[Predictor, ...] = ()
    cv_predictors_window: tuple[float, float] | None = None
    cv_validate_window: tuple[float, float] | None = None
    missing_n: dict | None = None  # rows dropped for a missing unit or time (n entries)
    notes: tuple[str, ...] = ()  # warnings about dropped rows and missing predictor values
    time_labels: tuple[str, ...] | None = None  # ISO day of each period number when time holds dates
    estimator: str = "synthetic_control"  # or synthetic_did (synthdid.py), with the three options below
    variant: str = "sdid"
    se: str = "placebo"
    replications: int = 200
    placebo_units: int | None = None  # placebo-in-space fits at most (None: space.default_placebo_units)
    treated: int = 1  # synthetic DiD: the first ``treated`` columns are treated units (staggered.py)
    adoption: tuple[float, ...] = ()  # staggered adoption: each treated column's first treated period
    # several or staggered treated units under estimator: synthetic_control (pooled.py)
    nu: float | None = None
    weight_penalty: float = 0.0
    fixed_effects: bool = False

    @property
    def pre(self) -> np.ndarray:
        return self.times < self.start

    @property
    def post(self) -> np.ndarray:
        return self.times >= self.start


def misfit_hint(d: SynthData, outcome: str) -> str:
    """What to try when the pre-period fit fails. Predictors without the outcome's own pre-period values rarely
    reproduce its path (causaldata's texas, init's predictors alone: RMSPE 39% of the level; with four years of
    the outcome, as the Mixtape, 5%), so the first advice names them."""
    if d.augmented:
        return "add donors, or add pre-periods"
    if any(p.column == outcome and p.periods is not None for p in d.predictors):
        return "add predictors or donors, or remove predictors and use augmented: ridge"
    from causalcli.data.types import period_text

    last = period_text(float(d.times[d.pre][-1]), d.time_labels)
    return (f"add the outcome's pre-period values as special_predictors (e.g. [{outcome}, {last}] and a few "
            "earlier periods), or remove predictors and use augmented: ridge (the pre-period outcome path alone)")


def predictor_matrix(d: SynthData, start: float) -> tuple[np.ndarray, list[str]]:
    """Predictors (k x units) averaged over their periods before ``start``; rows without data dropped."""
    rows, labels = [], []
    pre = d.times < start
    for p in d.predictors:
        if p.periods is None:
            mask = pre.copy()
            if d.predictors_window is not None:
                lo, hi = d.predictors_window
                mask &= (d.times >= lo) & (d.times <= hi)
        else:
            mask = np.isin(d.times, np.asarray(p.periods, dtype=float)) & pre
        if not mask.any():
            continue
        block = d.panels[p.column][mask]
        with np.errstate(all="ignore"):
            counts = np.sum(~np.isnan(block), axis=0)
            means = np.where(counts > 0, np.nansum(block, axis=0) / np.maximum(counts, 1), np.nan)
        rows.append(means)
        labels.append(p.label)
    return (np.vstack(rows) if rows else np.empty((0, d.Y.shape[1]))), labels


def training_problem(d: SynthData, start: float) -> SynthData:
    """The training fit of cross-validated V: the training predictors and window, the validation window
    as the periods whose outcome fit V minimises."""
    return replace(d, predictors=d.cv_predictors, predictors_window=d.cv_predictors_window,
                   optimize_window=d.cv_validate_window, v="nested")


def optimize_mask(d: SynthData, start: float) -> np.ndarray:
    mask = d.times < start
    if d.optimize_window is not None:
        lo, hi = d.optimize_window
        mask &= (d.times >= lo) & (d.times <= hi)
    return mask


@dataclass(frozen=True)
class UnitFit:
    """The synthetic control of one (real or placebo) treated unit."""

    w: np.ndarray  # over the donors given
    v: np.ndarray
    gaps: np.ndarray  # treated - synthetic, every period
    synthetic: np.ndarray
    pre_rmspe: float
    post_rmspe: float
    loss_v: float
    start: str
    labels: tuple[str, ...]
    X1: np.ndarray  # raw predictors of the treated
    X0: np.ndarray  # raw predictors of the donors
    extra: dict[str, Any] = field(default_factory=dict)


def fit_unit(d: SynthData, treated: int, donors: np.ndarray, start: float | None = None,
             times_mask: np.ndarray | None = None) -> UnitFit:
    """Fit unit ``treated`` (a column of Y) from the ``donors`` columns, treatment at ``start``.

    ``times_mask`` restricts the periods used at all (placebo-in-time drops the real post-period).
    BLAS runs on one thread: every product here has k or T0 rows, and past about 230 donors
    OpenBLAS splits them over threads that only spin (on a busy machine, 20-50 times the CPU
    of one thread per product) and, through another summation order, move the last digits.
    """
    from causalcli.runtime.threads import single_threaded_blas

    with single_threaded_blas():
        return _fit_unit(d, treated, donors, start, times_mask)


def _fit_unit(d: SynthData, treated: int, donors: np.ndarray, start: float | None,
              times_mask: np.ndarray | None) -> UnitFit:
    start = d.start if start is None else start
    keep = np.ones(d.times.size, dtype=bool) if times_mask is None else times_mask
    Xall, labels = predictor_matrix(d, start)
    if start != d.start:  # a fake start (placebo in time): predictors without data before it drop out
        complete = ~np.isnan(Xall).any(axis=1)
        Xall, labels = Xall[complete], [x for x, c in zip(labels, complete) if c]
        if not labels and d.augmented is None:
            from causalcli.errors import EstimationError

            raise EstimationError(f"no predictor has data before the fake start {start:g}")
    pre = (d.times < start) & keep
    post = (d.times >= start) & keep
    opt = optimize_mask(d, start) & keep
    Y1, Y0 = d.Y[:, treated], d.Y[:, donors]
    extra: dict[str, Any] = {}
    if d.augmented == "ridge":
        from causalcli.designs.synthetic_control.augmented import fit_ridge_ascm

        a = fit_ridge_ascm(Y1[pre], Y0[pre], lambda_=d.ridge_lambda)
        w, v, loss_v, start_name = a.w, np.zeros(0), float(np.mean((Y1[pre] - Y0[pre] @ a.w) ** 2)), "ridge_ascm"
        labels = []
        X1 = np.zeros(0)
        X0 = np.zeros((0, donors.size))
        extra = {"lambda": a.lambda_, "lambda_source": a.lambda_source, "scm_weights": a.w_scm}
    elif d.v == "cross_validated":
        X1, X0 = Xall[:, treated], Xall[:, donors]
        X1s, X0s, _ = scale_predictors(X1, X0)
        train = _training_fit(d, treated, donors, start, keep)
        w = weights_for_v(train.v, X1s, X0s).w  # ADH (2015): V from the training fit, W from the main predictors
        v, start_name = train.v, f"cross_validated ({train.start})"
        e = Y1[opt] - Y0[opt] @ w
        loss_v = float(e @ e) / max(e.size, 1)
        extra = {"validation_loss": train.loss_v, "training_weights": train.w,
                 "training_local_optima": train.local_optima}
    else:
        X1, X0 = Xall[:, treated], Xall[:, donors]
        X1s, X0s, _ = scale_predictors(X1, X0)
        f = fit_nested(X1s, X0s, Y1[opt], Y0[opt], v_method=d.v, starts=d.starts)
        w, v, loss_v, start_name = f.w, f.v, f.loss_v, f.start
        extra = {"lowest_loss_any_start": f.lowest_loss, "predictor_loss": f.loss_w, "local_optima": f.local_optima}
        if f.capped:
            extra["weights_solver_capped"] = True
    synthetic = Y0 @ w
    gaps = Y1 - synthetic
    pre_rmspe = float(np.sqrt(np.mean(gaps[pre] ** 2)))
    post_rmspe = float(np.sqrt(np.mean(gaps[post] ** 2))) if post.any() else float("nan")
    return UnitFit(w, v, gaps, synthetic, pre_rmspe, post_rmspe, loss_v, start_name, tuple(labels), X1, X0, extra)


def _training_fit(d: SynthData, treated: int, donors: np.ndarray, start: float, keep: np.ndarray):
    """The nested fit on the training predictors, judged on the validation window before ``start``."""
    from causalcli.errors import EstimationError

    t = training_problem(d, start)
    X, labels = predictor_matrix(t, start)
    complete = ~np.isnan(X).any(axis=1)
    X = X[complete]
    val = optimize_mask(t, start) & keep
    if not val.any() or X.shape[0] == 0:
        what = "validation window" if not val.any() else "training predictor"
        raise EstimationError(f"cross-validated V: no {what} period lies before {start:g} "
                              "(design.options.cross_validation)")
    X1s, X0s, _ = scale_predictors(X[:, treated], X[:, donors])
    return fit_nested(X1s, X0s, d.Y[val, treated], d.Y[val][:, donors], v_method="nested", starts=d.starts)


def _placebo_gaps(d: SynthData, js: list[int]) -> list[np.ndarray]:
    donors_all = np.arange(1, d.Y.shape[1])
    out = []
    for j in js:
        f = fit_unit(d, j, donors_all[donors_all != j])
        out.append(f.gaps)
    return out


def placebo_in_space(d: SynthData, jobs: int = 1, js: list[int] | None = None) -> np.ndarray:
    """Gaps (periods x placebo units) with each donor of ``js`` (columns of Y; default every donor) in turn
    as the treated unit, all the other donors as its donors.

    The real treated unit never serves as a donor of a placebo (Abadie et al. 2010, sec. 4.2).
    Fits are deterministic, so any number of workers gives the same numbers.
    """
    from causalcli.runtime import progress

    js = list(range(1, d.Y.shape[1])) if js is None else js
    gaps: list[np.ndarray] = []
    with progress.task("synthetic control: placebo fits", len(js)) as advance:
        if jobs <= 1 or len(js) < PARALLEL_FROM:
            for j in js:
                gaps.extend(_placebo_gaps(d, [j]))
                advance(1)
        else:
            from joblib import Parallel, delayed

            # a few chunks per worker, run in rounds, so the progress bar moves
            n_chunks = min(len(js), 4 * jobs)
            bounds = np.linspace(0, len(js), n_chunks + 1).astype(int)
            chunks = [js[a:b] for a, b in zip(bounds[:-1], bounds[1:]) if b > a]
            with Parallel(n_jobs=jobs, backend="multiprocessing") as parallel:
                for start in range(0, len(chunks), jobs):
                    for part in parallel(delayed(_placebo_gaps)(d, c) for c in chunks[start:start + jobs]):
                        gaps.extend(part)
                        advance(len(part))
    return np.column_stack(gaps)


def rmspe(gaps: np.ndarray, mask: np.ndarray) -> np.ndarray:
    return np.sqrt(np.mean(gaps[mask] ** 2, axis=0))


def without_donor(d: SynthData, donor: int) -> SynthData:
    """The same problem with one donor column removed (leave-one-donor-out)."""
    keep = [i for i in range(d.Y.shape[1]) if i != donor]
    return replace(d, units=tuple(d.units[i] for i in keep), Y=d.Y[:, keep],
                   panels={k: v[:, keep] for k, v in d.panels.items()})


def refuse_infinite(outcome: str, panels: dict[str, np.ndarray], pool: list, treated: int, times: np.ndarray,
                    labels: Any, file: str | None) -> None:
    """An infinite outcome or predictor value is kept as a value, and the fit's SVD failed (exit 4, LAPACK lines
    on stderr): exit 3 naming the column, the unit and the period."""
    from causalcli.data.types import period_text
    from causalcli.errors import DataError

    for column, values in panels.items():
        infinite = np.argwhere(np.isinf(values))
        if infinite.size:
            i, j = infinite[0]
            raise DataError(f"{'outcome' if column == outcome else 'predictor'} {column!r} is infinite for unit "
                            f"{pool[j]!r} in period {period_text(times[i], labels)} ({len(infinite)} unit-period(s)); "
                            "fix the source" + ("" if j < treated else
                                                ", or exclude the donor (design.options.donors.exclude)"),
                            file=file, key="outcome" if column == outcome else "design.predictors", column=column)
