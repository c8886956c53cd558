"""A toy design family declared from outside the package, as a new family would be.

``tests/test_family_registry.py`` registers ``FAMILY`` with ``causalcli.designs.register`` and
checks that it reaches ``schema``, ``methods`` and ``estimate`` (with ``--plots``) without any
other change: its spec model, its ``Design`` and its plots are all here.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Callable, Literal

import numpy as np

from causalcli.designs.base import Design, Fit, require
from causalcli.designs.family import Family
from causalcli.errors import DataError, EstimationError
from causalcli.inference.estimate import normal_estimate
from causalcli.spec.base import DesignBase

if TYPE_CHECKING:
    from causalcli.result import Result

INFERENCE = "normal_unpooled"


class ToyDesignSpec(DesignBase):
    """`design:` of the toy family: nothing but its method (and `estimand`, from the base)."""

    method: Literal["toy"]


@dataclass(frozen=True)
class ToyData:
    y: np.ndarray
    t: np.ndarray
    rows: int
    dropped: int
    conf_level: float


def difference_in_means(y: np.ndarray, t: np.ndarray) -> tuple[float, float]:
    """Treated minus control mean, with the unpooled (Welch) standard error."""
    treated, control = y[t == 1], y[t == 0]
    if treated.size < 2 or control.size < 2:
        raise EstimationError("each arm needs at least two rows")
    value = float(treated.mean() - control.mean())
    se = math.sqrt(treated.var(ddof=1) / treated.size + control.var(ddof=1) / control.size)
    return value, se


class ToyDesign(Design[ToyData]):
    name = "toy"
    estimators = ("difference_in_means",)
    estimands = ("ate",)
    inference = (INFERENCE,)
    default_refuters = ("placebo_treatment",)
    reference = "the test suite"

    def check_spec(self, study, spec) -> None:
        require(study, spec, "treatment", "outcome")

    def validate(self, study, table, spec) -> None:
        for column in (study.treatment, study.outcome):
            if column not in table.columns:
                raise DataError(f"column {column!r} is not in the data", file=spec.source.display, column=column)

    def prepare(self, study, table, identification, spec) -> ToyData:
        self.estimand(study, spec)
        arrays, dropped = table.arrays([study.treatment, study.outcome])
        return ToyData(y=np.asarray(arrays[study.outcome], dtype=np.float64),
                       t=np.asarray(arrays[study.treatment], dtype=np.int64),
                       rows=table.rows, dropped=dropped, conf_level=study.conf_level)

    def fit(self, prepared: ToyData, study, seed: int, jobs: int | None = None) -> Fit:
        value, se = difference_in_means(prepared.y, prepared.t)
        estimate = normal_estimate(value, se, prepared.conf_level, INFERENCE)
        means = {"treated": float(prepared.y[prepared.t == 1].mean()),
                 "control": float(prepared.y[prepared.t == 0].mean())}
        n = {"rows": prepared.rows, "dropped_missing": prepared.dropped,
             "treated": int(prepared.t.sum()), "control": int((prepared.t == 0).sum())}
        return Fit("difference_in_means", "ate", estimate, n, diagnostics={"means": means})

    def point(self, prepared: ToyData, *, treatment=None, extra_covariate=None, rows=None) -> float:
        t = prepared.t if treatment is None else treatment
        y = prepared.y
        if rows is not None:
            y, t = y[rows], t[rows]
        return difference_in_means(y, t)[0]

    def treatment_of(self, prepared: ToyData) -> np.ndarray:
        return prepared.t

    def units(self, prepared: ToyData) -> int:
        return int(prepared.t.size)


def means_plot(result: "Result") -> bytes | None:
    """The two arms' means as bars."""
    from causalcli.charts import figure, png

    means: dict[str, Any] = result.diagnostics.get("means") or {}
    if not means:
        return None
    plt = figure()
    fig, ax = plt.subplots(figsize=(4, 3), dpi=80)
    ax.bar(list(means), list(means.values()), color="#1f4e79")
    ax.set_title(f"{result.study}: mean outcome by arm")
    return png(fig, plt)


PLOTS: dict[str, Callable[["Result"], bytes | None]] = {"means": means_plot}

FAMILY = Family("toy", "Toy difference in means (registered by the test suite)", ToyDesignSpec,
                design="tests.toy_family:ToyDesign", plots="tests.toy_family:PLOTS", order=999,
                docs="tests/toy_family.py")
