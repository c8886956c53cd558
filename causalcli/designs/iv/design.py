"""Instrumental variables: 2SLS or LIML of the outcome on the treatment (endogenous) and covariates (exogenous).

Pinned to linearmodels' ``IV2SLS``/``IVLIML`` (estimates, and standard errors for every covariance type and
``debiased`` setting). The weak-instrument diagnostics (first-stage F, Montiel Olea-Pflueger effective F,
Anderson-Rubin set) and Sargan's over-identification test are in ``estimator.py``.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from typing import TYPE_CHECKING, Any

import numpy as np

from causalcli.data.missing import study_roles_missing
from causalcli.data.segments import segment_labels
from causalcli.data.table import MissingRows, require_columns, study_arrays
from causalcli.data.weights import positive_weights, zero_weight_warning
from causalcli.designs.base import Design, Fit, require
from causalcli.errors import DataError, SpecError
from causalcli.inference.estimate import normal_estimate, t_estimate
from causalcli.inference.few_clusters import no_inference_reason
from causalcli.records import Check

if TYPE_CHECKING:  # pragma: no cover
    from causalcli.data.missing import Roles
    from causalcli.data.table import Table
    from causalcli.graph import Identification
    from causalcli.spec.loading import LoadedSpec
    from causalcli.spec.models import Study

INSTRUMENT_ROLE = ("instruments", "instrument or cluster")  # n.dropped_missing_instruments; the message's label


@dataclass(frozen=True)
class IvData:
    """The arrays of the complete rows (picklable for the refuters' workers). With observation weights every array
    is multiplied by the square root of the weights (normalised to mean 1, as linearmodels does): least squares and
    every variance on the products are then the weighted ones."""

    y: np.ndarray
    x: np.ndarray  # the treatment: the endogenous regressor
    exog: np.ndarray  # constant first, then the covariates
    instruments: np.ndarray
    exog_names: tuple[str, ...]
    instrument_names: tuple[str, ...]
    clusters: np.ndarray | None
    n_clusters: int
    cov_type: str
    debiased: bool
    liml: bool
    rows: int
    missing: MissingRows
    file: str
    sqrt_weights: np.ndarray | None = None  # the rows' sqrt(w / mean w), when weighted
    zero_weight: int = 0  # rows of weight 0, dropped
    segment_columns: tuple[str, ...] = ()  # the top-level segments
    segment_values: tuple[np.ndarray, ...] = ()  # their values as labels, one array per column

    def raw(self, a: np.ndarray) -> np.ndarray:
        """A weighted array's values as in the data."""
        if self.sqrt_weights is None:
            return a
        return a / (self.sqrt_weights if a.ndim == 1 else self.sqrt_weights[:, None])


def _covariance(d: IvData, rows: np.ndarray | None = None):
    from causalcli.designs.iv.estimator import Covariance

    if d.clusters is None:
        return Covariance(d.cov_type, d.debiased)
    codes = d.clusters if rows is None else np.unique(d.clusters[rows], return_inverse=True)[1].reshape(-1)
    return Covariance(d.cov_type, d.debiased, codes, int(codes.max()) + 1)


def _fit(d: IvData, cov: Any):
    from causalcli.designs.iv.estimator import kclass, liml_kappa

    X = np.column_stack([d.exog, d.x])
    Z = np.column_stack([d.exog, d.instruments])
    kappa = liml_kappa(d.y, d.exog, d.x[:, None], Z) if d.liml else 1.0
    return kclass(d.y, X, Z, kappa, cov), Z


def _overidentification(d: IvData, fit: Any, Z: np.ndarray, diagnostics: dict, alpha: float) -> Check:
    """Sargan's n R^2 (valid under homoskedasticity) and Wooldridge's robust score test, both in
    ``diagnostics.overidentification``; the check uses the one that matches the covariance."""
    from causalcli.designs.iv.estimator import sargan, score_overid
    from causalcli.inference.distributions import chi2_sf

    stat, df = sargan(fit, Z)
    robust, _ = score_overid(fit, d.exog, d.x, d.instruments, _covariance(d))
    diagnostics["overidentification"] = {
        "sargan": stat, "df": df, "p_value": chi2_sf(stat, df), "wooldridge_score": robust,
        "wooldridge_score_p_value": chi2_sf(robust, df),
        "note": "Sargan's n R^2 is valid under homoskedasticity; Wooldridge's score test is robust to "
                "heteroskedasticity (and, with clusters, to correlation within them); the check uses Sargan with "
                "cov_type unadjusted and Wooldridge's test otherwise"}
    name, stat = ("Sargan", stat) if d.cov_type == "unadjusted" else ("Wooldridge's robust score", robust)
    p = chi2_sf(stat, df)
    return Check("overidentification", p >= alpha,
                 f"{name} statistic {stat:.3f} on {df} df, p = {p:.4f}: "
                 + ("the instruments disagree about the effect (one of them may violate the exclusion restriction)"
                    if p < alpha else "no evidence that the instruments disagree"))


class IvDesign(Design[IvData]):
    name = "iv"
    estimators = ("2sls", "liml")
    estimands = ("late",)
    inference = ("iv_robust", "iv_unadjusted", "iv_clustered", "wild_cluster_bootstrap_webb",
                 "wild_cluster_bootstrap_rademacher")
    reference = ("Two-stage least squares and LIML (Anderson and Rubin 1949), effective F of Montiel Olea and "
                 "Pflueger (2013), Anderson-Rubin sets; pinned to linearmodels IV2SLS/IVLIML")
    default_refuters = ("random_common_cause", "data_subset")
    preload_modules = ("scipy.linalg",)
    segments_built = True  # segments.py: the same fit on each segment's rows

    def check_spec(self, study: "Study", spec: "LoadedSpec") -> None:
        require(study, spec, "treatment", "outcome")
        self.estimand(study, spec)
        d = study.design
        roles = {study.treatment: "treatment", study.outcome: "outcome"}
        for i, z in enumerate(d.instruments):
            if z in roles:
                raise SpecError(f"instrument {z!r} is also the {roles[z]}; an instrument must be another column",
                                file=spec.source.display, key=f"design.instruments[{i}]")
            if z in study.covariates:
                raise SpecError(f"instrument {z!r} is also a covariate; a column is either an instrument (excluded "
                                "from the outcome equation) or a covariate, not both",
                                file=spec.source.display, key=f"design.instruments[{i}]")
        for i, column in enumerate(study.segments):
            role = {study.treatment: "the treatment", study.outcome: "the outcome",
                    **{z: "an instrument" for z in d.instruments}}.get(column)
            if role:
                raise SpecError(f"segments[{i}] {column!r} is {role}: within one of its values it would not vary; "
                                "segments are pre-treatment columns (a group, a region) to report the effect by",
                                file=spec.source.display, key=f"segments[{i}]")

    def columns(self, study: "Study") -> list[str]:
        return list(dict.fromkeys([*super().columns(study), *study.design.instruments]))

    def validate(self, study: "Study", table: "Table", spec: "LoadedSpec") -> None:
        roles = {study.treatment: ("treatment", "numeric"), study.outcome: ("outcome", "numeric")}
        for i, c in enumerate(study.covariates):
            roles.setdefault(c, (f"covariates[{i}]", "any" if c in study.categorical else "numeric"))
        for i, z in enumerate(study.design.instruments):
            roles.setdefault(z, (f"design.instruments[{i}]", "numeric"))
        if study.design.cluster:
            roles.setdefault(study.design.cluster, ("design.cluster", "any"))
        for i, c in enumerate(study.segments):
            roles.setdefault(c, (f"segments[{i}]", "any"))
        require_columns(table, roles)  # the weights were checked before (``data.table.check_weights``)
        from causalcli.data.segments import check_segment_levels

        check_segment_levels(study.segments, table)

    def missing_roles(self, study: "Study", identification: "Identification") -> "Roles":
        d = study.design
        roles = study_roles_missing(study.treatment, study.outcome, list(study.covariates),
                                    (*d.instruments, *((d.cluster,) if d.cluster else ())), INSTRUMENT_ROLE)
        from causalcli.data.segments import SEGMENT_ROLE

        taken = {study.treatment, study.outcome, *study.covariates, *d.instruments, d.cluster, study.weights}
        return (roles + ([(study.weights, "weights", "weights")] if study.weights else [])
                + [(c, *SEGMENT_ROLE) for c in study.segments if c not in taken])

    def prepare(self, study: "Study", table: "Table", identification: "Identification",
                spec: "LoadedSpec") -> IvData:
        d = study.design
        cluster = (d.cluster,) if d.cluster else ()
        arrays = study_arrays(table, study.treatment, study.outcome, list(study.covariates), list(study.categorical),
                              extra=(*d.instruments, *cluster), extra_text=cluster,
                              extra_role=INSTRUMENT_ROLE, weights=study.weights, segments=tuple(study.segments))
        cols, X, t = arrays.cols, arrays.X, arrays.t
        sqrt_weights, zero_weight = None, 0
        if study.weights:
            # a row of weight 0 adds nothing to the fit but would count in n (and G) of the small-sample factors;
            # linearmodels refuses such weights, so they are dropped (and counted) here
            positive, zero_weight = positive_weights(cols, study.weights, table.file)
            w = np.asarray(cols[study.weights], dtype=np.float64)
            if zero_weight:
                cols = {k: v[positive] for k, v in cols.items()}
                X, t, w = X[positive], t[positive], w[positive]
            sqrt_weights = np.sqrt(w / w.mean())
        n = t.size
        Zi = np.column_stack([np.asarray(cols[z], dtype=np.float64) for z in d.instruments])
        for j, z in enumerate(d.instruments):
            if np.ptp(Zi[:, j]) == 0:
                raise DataError(f"instrument {z!r} is constant ({Zi[0, j]:g}) in the {n} rows used, so it cannot "
                                "move the treatment; use an instrument that varies", file=table.file,
                                key=f"design.instruments[{j}]", column=z)
        exog = np.column_stack([np.ones(n), X])
        _require_full_rank(np.column_stack([exog, Zi]), ["(intercept)", *arrays.names, *d.instruments], table.file)
        codes, G = None, 0
        if d.cluster:
            codes = np.unique(np.asarray(cols[d.cluster]).astype(str), return_inverse=True)[1].reshape(-1)
            G = int(codes.max()) + 1
            if G < 2:
                raise DataError(f"cluster column {d.cluster!r} has a single value: clustered standard errors need "
                                "at least 2 clusters", file=table.file, key="design.cluster", column=d.cluster)
        y = np.asarray(cols[study.outcome], dtype=np.float64)
        if sqrt_weights is not None:
            y, t, exog, Zi = y * sqrt_weights, t * sqrt_weights, exog * sqrt_weights[:, None], Zi * sqrt_weights[:, None]
        return IvData(y=y, x=t, exog=exog, instruments=Zi,
                      exog_names=("(intercept)", *arrays.names), instrument_names=tuple(d.instruments),
                      clusters=codes, n_clusters=G, cov_type=d.covariance(), debiased=d.options.debiased,
                      liml=d.estimator == "liml", rows=table.rows, missing=arrays.missing or MissingRows({}),
                      file=table.file, sqrt_weights=sqrt_weights, zero_weight=zero_weight,
                      segment_columns=tuple(study.segments),
                      segment_values=tuple(segment_labels(cols[c]) for c in study.segments))

    def fit(self, prepared: IvData, study: "Study", seed: int, jobs: int | None = None) -> Fit:
        from causalcli.runtime.threads import single_threaded_blas

        # thin (n x k) products: BLAS threads only spin; on 2 busy cores (load 7) Card's fit took 2-4 s with
        # them against 0.7-1.3 s without
        with single_threaded_blas():
            return self._fit(prepared, study, seed)

    def _fit(self, prepared: IvData, study: "Study", seed: int) -> Fit:
        from causalcli.designs.iv.estimand import reading
        from causalcli.designs.iv.estimator import anderson_rubin_set, first_stage
        from causalcli.inference.distributions import chi2_quantile, chi2_sf

        d = prepared
        opts = study.design.options
        cov = _covariance(d)
        fit, Z = _fit(d, cov)
        value, se = float(fit.params[-1]), float(np.sqrt(fit.cov[-1, -1]))
        inference = f"iv_{d.cov_type}"
        estimate = (t_estimate(value, se, fit.df_resid, study.conf_level, inference) if d.debiased
                    else normal_estimate(value, se, study.conf_level, inference))
        fs = first_stage(d.x, d.exog, d.instruments, cov)
        q = d.instruments.shape[1]
        critical = chi2_quantile(study.conf_level, q)
        lower, upper, shape = anderson_rubin_set(d.y, d.x, d.exog, d.instruments, cov, critical)
        weak = fs.effective_f < opts.weak_instrument_f
        few = no_inference_reason(d.n_clusters) if d.clusters is not None else None
        checks = [Check("weak_instrument", not weak,
                        f"effective first-stage F {fs.effective_f:.2f} (Montiel Olea-Pflueger; {d.cov_type} "
                        f"covariance) {'below' if weak else 'at or above'} {opts.weak_instrument_f:g}"
                        + (f"; the 2SLS interval cannot be trusted: use the Anderson-Rubin set, "
                           f"{_ar_text(lower, upper, shape, study.conf_level)} (diagnostics.anderson_rubin), which "
                           "stays valid with weak instruments" if weak else "")) if few is None else
                  Check("weak_instrument", None, f"not judged: the effective F rests on the clustered covariance, "
                                                 f"and {few}")]
        # a clustered covariance has rank at most G - 1: below q + 1 clusters the Wald statistic of q instruments
        # inverts a singular matrix (2 regions of Card's data gave F = -5e17)
        wald_defined = d.clusters is None or d.n_clusters - 1 >= q
        diagnostics: dict[str, Any] = {
            "first_stage": {
                "coefficients": dict(zip(d.instrument_names, map(float, fs.coef))),
                "std_errors": dict(zip(d.instrument_names, map(float, np.sqrt(np.diag(fs.cov))))),
                "f": fs.f if wald_defined else None, "wald_chi2": fs.wald if wald_defined else None, "df": q,
                "p_value": chi2_sf(fs.wald, q) if wald_defined else None,
                "effective_f": fs.effective_f, "partial_r2": fs.partial_r2,
                "bins": _bins(d, study),
                "note": f"F = Wald/{q} with the {d.cov_type} covariance (linearmodels' first_stage f.stat is the "
                        "Wald chi-square with a robust or clustered covariance, this F with the unadjusted one); "
                        "the effective F equals F with one instrument",
            },
            "anderson_rubin": {"lower": _finite(lower), "upper": _finite(upper), "shape": shape,
                               "conf_level": study.conf_level,
                               "note": "weak-instrument-robust set {b: AR(b) <= chi2(q) quantile}; shape: interval, "
                                       "unbounded (the whole line), outside (the complement of (lower, upper)), "
                                       "empty, undefined (fewer clusters than instruments plus one)"},
            "coefficients": dict(zip((*d.exog_names, study.treatment), map(float, fit.params))),
            "kappa": fit.kappa,
            "covariance": {"type": d.cov_type, "debiased": d.debiased,
                           **({"clusters": d.n_clusters} if d.clusters is not None else {})},
        }
        warnings = list(d.missing.warnings)
        if d.sqrt_weights is not None:
            diagnostics["weights"] = {
                "column": study.weights, "zero_weight_rows": d.zero_weight,
                "note": "weighted 2SLS/LIML: every column multiplied by sqrt(w / mean w), as linearmodels' weights; "
                        "rows of weight 0 are dropped"}
            warnings += zero_weight_warning(d.zero_weight, study.weights)
        if d.clusters is not None:  # few clusters: the wild bootstrap's p-value and interval (iv/clusters.py)
            from causalcli.designs.iv.clusters import clustered_inference

            estimate, diagnostics["clusters"], check, more = clustered_inference(d, estimate, study.conf_level,
                                                                                opts, seed)
            checks.append(check)
            warnings += more
        if shape != "interval":
            warnings.append(f"the Anderson-Rubin confidence set is {shape}: " + {
                "empty": "no effect agrees with every instrument at this level (see the overidentification check)",
                "undefined": f"with {d.n_clusters} clusters the clustered covariance of the {q} instruments' "
                             f"coefficients has rank at most {d.n_clusters - 1}, fewer than {q}, so the test "
                             "cannot be computed"}.get(shape, "the instruments are too weak to bound the effect"))
        if q > 1:
            checks.append(_overidentification(d, fit, Z, diagnostics, study.thresholds.alpha))
        effects: list = []
        if d.segment_columns:
            from causalcli.designs.iv.segments import segment_effects

            def estimate_of(f: Any) -> Any:
                v, s = float(f.params[-1]), float(np.sqrt(f.cov[-1, -1]))
                return (t_estimate(v, s, f.df_resid, study.conf_level, inference) if d.debiased
                        else normal_estimate(v, s, study.conf_level, inference))

            by_segment = segment_effects(d, study, seed, lambda sub: _fit(sub, _covariance(sub)), estimate_of)
            effects, diagnostics["heterogeneity"] = by_segment.effects, by_segment.heterogeneity
            warnings += by_segment.warnings
        n = {"rows": d.rows, **d.missing.n, **({"dropped_zero_weight": d.zero_weight} if d.zero_weight else {}),
             "used": int(d.y.size)}
        identification = reading(d.raw(d.x), d.raw(d.instruments), study.treatment, d.instrument_names,
                                 d.exog.shape[1] > 1)
        return Fit(study.design.estimator, "late", estimate, n, effects=effects, diagnostics=diagnostics,
                   checks=checks, warnings=warnings, identification=identification)

    # ---------------------------------------------------------------- refuters
    def units(self, prepared: IvData) -> int:
        return int(prepared.y.size)

    def point(self, prepared: IvData, *, treatment=None, extra_covariate=None, rows=None) -> float:
        d = prepared
        if treatment is not None:
            raise self.refuters_not_built("point")
        if extra_covariate is not None:
            extra = extra_covariate if d.sqrt_weights is None else extra_covariate * d.sqrt_weights
            d = replace(d, exog=np.column_stack([d.exog, extra]))
        if rows is not None:
            clusters = d.clusters[rows] if d.clusters is not None else None
            sqrt_weights = d.sqrt_weights[rows] if d.sqrt_weights is not None else None
            d = replace(d, y=d.y[rows], x=d.x[rows], exog=d.exog[rows], instruments=d.instruments[rows],
                        clusters=clusters, sqrt_weights=sqrt_weights)
        fit, _ = _fit(d, _covariance(d, None) if rows is None or d.clusters is None else _covariance(d))
        return float(fit.params[-1])


BINS = 20  # the first-stage plot's bins of the first instrument (fewer when it takes fewer values)


def _bins(d: IvData, study: "Study") -> list[dict[str, Any]]:
    """Means of the instrument, treatment and outcome by bins of the first instrument (its values when it takes
    at most BINS of them, else equal-count bins): the data of the first-stage plot."""
    z = d.raw(d.instruments[:, 0])
    w = np.ones_like(z) if d.sqrt_weights is None else d.sqrt_weights ** 2
    values = np.unique(z)
    if values.size <= BINS:
        codes = np.searchsorted(values, z)
    else:
        edges = np.quantile(z, np.linspace(0, 1, BINS + 1)[1:-1])
        codes = np.searchsorted(edges, z, side="right")
    count = np.bincount(codes)
    keep = count > 0
    total = np.bincount(codes, weights=w)[keep]

    def mean(a: np.ndarray) -> list[float]:  # weighted by the observation weights, when there are any
        return (np.bincount(codes, weights=w * a)[keep] / total).tolist()

    names = {"instrument_name": d.instrument_names[0], "treatment_name": study.treatment,
             "outcome_name": study.outcome}
    return [{"instrument": a, "treatment": b, "outcome": c, "n": int(k), **names}
            for a, b, c, k in zip(mean(z), mean(d.raw(d.x)), mean(d.raw(d.y)), count[keep])]


def _ar_text(lower: float, upper: float, shape: str, level: float) -> str:
    """The Anderson-Rubin set in words, for the weak_instrument check (the table and report show checks, not
    diagnostics: Card's data gave "use the set in diagnostics.anderson_rubin" with no numbers in sight)."""
    pct = f"{round(level * 100)}%"
    return {"interval": f"{pct} [{lower:.4g}, {upper:.4g}]",
            "outside": f"{pct} outside ({lower:.4g}, {upper:.4g}): two rays",
            "unbounded": f"{pct} the whole line: the data cannot bound the effect",
            "undefined": "not computable with fewer clusters than instruments plus one",
            }.get(shape, f"{pct} empty")


def _finite(v: float) -> float | None:
    return float(v) if np.isfinite(v) else None


def _require_full_rank(M: np.ndarray, names: list[str], file: str) -> None:
    """A covariate or instrument that is a linear combination of the others: exit 3, naming it."""
    rank = np.linalg.matrix_rank(M)
    if rank == M.shape[1]:
        return
    for j in range(1, M.shape[1]):
        if np.linalg.matrix_rank(M[:, :j + 1]) <= j:
            raise DataError(f"{names[j]!r} is a linear combination of the constant and the columns before it "
                            f"({', '.join(names[:j])}): perfectly collinear; drop it", file=file, column=names[j])
