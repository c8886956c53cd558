"""Time-series counterfactuals: what the series would have done without the intervention.

One treated series, no comparison group but (optionally) control series the intervention did
not reach. ``estimator: structural`` (``structural.py``) forecasts the post-period from a
state-space model fitted on the pre-period (Brodersen et al. 2015, CausalImpact);
``estimator: segmented`` (``segmented.py``) is interrupted time-series regression with a level
and slope change and Newey-West errors. The headline is the average effect per post period;
``effects`` holds the pointwise and cumulative effects by period and the relative effect.
Checks: pre-period fit (MAPE), residual autocorrelation (Ljung-Box), ``controls`` (a break test
on each control). Refuter: placebo in time (fake interventions inside the pre-period).

References
----------
Brodersen, K. H., Gallusser, F., Koehler, J., Remy, N. and Scott, S. L. (2015). Inferring causal
impact using Bayesian structural time-series models. Annals of Applied Statistics 9(1), 247-274.
Harvey, A. C. (1989). Forecasting, Structural Time Series Models and the Kalman Filter. CUP.
Wagner, A. K., Soumerai, S. B., Zhang, F. and Ross-Degnan, D. (2002). Segmented regression analysis
of interrupted time series studies in medication use research. J. Clin. Pharm. Ther. 27, 299-309.
Newey, W. K. and West, K. D. (1987, 1994). Econometrica 55, 703-708; Rev. Econ. Stud. 61, 631-653.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import numpy as np

from causalcli.designs.base import Design, Fit, check_aggregate, require
from causalcli.designs.time_series.report import SEGMENTED_INFERENCE, STRUCTURAL_INFERENCE
from causalcli.errors import EstimationError, SpecError
from causalcli.records import Estimate

VALIDATE_SERIES_ROWS = 10_000_000  # validate reads the series' shape up to this many rows (embedded DuckDB)

if TYPE_CHECKING:  # pragma: no cover
    from causalcli.data.table import Table
    from causalcli.designs.time_series.series import Series
    from causalcli.graph import Identification
    from causalcli.spec.loading import LoadedSpec
    from causalcli.spec.models import Study


@dataclass(frozen=True)
class TimeSeriesData:
    """The series and the estimator's settings; ``params`` (structural) once the fit has run."""

    series: "Series"
    estimator: str
    ar1: bool
    draws: int
    parameter_draws: int
    trend: bool
    hac_lags: int | None
    aggregate: str | None
    params: np.ndarray | None = None
    expected_model_size: float | None = 3.0
    prior_information_weight: float = 0.01

# study keys a single series has no use for, and what to write instead
NOT_TAKEN = (("treatment", "design.intervention says when the series is treated"),
             ("covariates", "list control series under design.controls"),
             ("categorical", "controls are numeric"))


class TimeSeriesDesign(Design):
    name = "time_series"
    estimators = ("structural", "segmented")
    estimands = ("att",)
    inference = (STRUCTURAL_INFERENCE, SEGMENTED_INFERENCE)
    default_refuters = ("placebo_in_time",)
    streams_data = True  # one grouped pass where the data live; only the periods come back
    preload_modules = ("scipy.optimize",)  # BFGS; it loads scipy.linalg (banded Cholesky)
    weights_built = False
    thresholds_checked = ("alpha", "pre_fit")
    graph_unused = "the counterfactual is the series forecast from its pre-period (and the control series)"
    reference = ("Brodersen et al. (2015), CausalImpact; Harvey (1989); Wagner et al. (2002) segmented regression; "
                 "Newey and West (1987, 1994)")

    # ------------------------------------------------------------ spec

    def check_spec(self, study: "Study", spec: "LoadedSpec") -> None:
        require(study, spec, "outcome")
        self.estimand(study, spec)
        file = spec.source.display
        given = [(key, hint) for key, hint in NOT_TAKEN if getattr(study, key) not in (None, [], "")]
        if given:
            key, hint = given[0]
            raise SpecError(f"time_series takes no '{key}' ({hint}); remove it", file=file, key=key)
        if study.data.sample is not None and study.design.unit is None:
            raise SpecError("data.sample would leave gaps in the series, which needs every period; remove it (to "
                            "shorten the series, keep its last periods with data.filter)", file=file, key="data.sample")
        if study.refute:
            from causalcli.spec.models import refuter_name

            for i, item in enumerate(study.refute):
                name = refuter_name(item)
                if name != "placebo_in_time":
                    raise SpecError(f"refuter {name!r} does not apply to a time series (one series, no treatment "
                                    f"column to permute or donors to drop); use placebo_in_time", file=file,
                                    key=f"refute[{i}]")
        d = study.design
        used = {study.outcome: "outcome", **{c: f"design.controls[{i}]" for i, c in enumerate(d.controls)
                                             if not d.unit}}
        check_aggregate(d.aggregate, used, spec)
        if d.estimator == "structural" and d.options.parameter_draws > d.options.draws:
            raise SpecError(f"options.parameter_draws ({d.options.parameter_draws}) cannot exceed options.draws "
                            f"({d.options.draws})", file=file, key="design.options.parameter_draws")

    def columns(self, study: "Study") -> list[str]:
        d = study.design
        return list(dict.fromkeys([d.time, *([d.unit] if d.unit else []), study.outcome,
                                   *([] if d.unit else d.controls)]))

    # ------------------------------------------------------------ data

    def validate(self, study: "Study", table: "Table", spec: "LoadedSpec") -> None:
        """Columns and their types; the series' shape (repeated or missing periods, the intervention) is
        checked by ``prepare``'s one grouped pass, which a billion events should not have to take twice."""
        from causalcli.designs.time_series.series import check_columns

        check_columns(study, table, spec)

    def validate_rows(self, study: "Study", table: "Table", spec: "LoadedSpec") -> None:
        """``causalcli validate`` on embedded DuckDB up to ``VALIDATE_SERIES_ROWS`` rows: the series' shape too
        (repeated or missing periods, the intervention, the pre-periods), by ``prepare``'s grouped pass; validate
        said ok to google_stock's trading days, which estimate then refused. Above that, or on an engine, the
        shape is checked by estimate alone."""
        from causalcli.designs.time_series.series import read_series

        if table.engine is None and table.rows <= VALIDATE_SERIES_ROWS:
            read_series(study, table)

    def prepare(self, study: "Study", table: "Table", identification: "Identification",
                spec: "LoadedSpec") -> TimeSeriesData:
        from causalcli.designs.time_series.series import check_columns, read_series

        check_columns(study, table, spec)
        d = study.design
        o = d.options
        return TimeSeriesData(read_series(study, table), d.estimator, o.ar1, o.draws, o.parameter_draws, o.trend,
                              o.hac_lags, d.aggregate, expected_model_size=o.expected_model_size,
                              prior_information_weight=o.prior_information_weight)

    # ------------------------------------------------------------ estimation

    def fit(self, prepared: TimeSeriesData, study: "Study", seed: int, jobs: int | None = None) -> Fit:
        from causalcli.designs.time_series.report import build_fit

        return build_fit(prepared, study, seed)

    # ------------------------------------------------------------ refuters

    def refute_once(self, prepared: TimeSeriesData, name: str, options: Any, rng: "np.random.Generator") -> float:
        from causalcli.designs.time_series.report import fake_starts, placebo_at

        if name != "placebo_in_time":
            raise self.refuter_does_not_apply(name)
        return placebo_at(prepared, int(rng.choice(fake_starts(prepared, options))))

    def distinct_placebos(self, prepared: TimeSeriesData, name: str, options: Any) -> list | None:
        from causalcli.designs.time_series.report import fake_starts

        if name != "placebo_in_time":
            return None
        try:
            starts = fake_starts(prepared, options)
        except EstimationError:
            return None
        return [int(s) for s in starts] if starts.size <= options.simulations else None

    def refute_placebo(self, prepared: TimeSeriesData, name: str, placebo: Any) -> float:
        from causalcli.designs.time_series.report import placebo_at

        return placebo_at(prepared, int(placebo))

    def summarise_refuter(self, name: str, sims: np.ndarray, estimate: Estimate, alpha: float):
        from causalcli.checks.refutation import placebo_in_time_refutation

        return placebo_in_time_refutation(sims, estimate, alpha)
