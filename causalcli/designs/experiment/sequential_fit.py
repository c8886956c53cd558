"""`design.sequential` in the experiment's fit: the final intervals and p-values, and the per-look sequence.

The formulas are in ``causalcli.designs.experiment.sequential``; this module decides what a look is.

Looks. ``always_valid`` needs none: its interval at the current sample size is valid whenever it is
read, so without ``design.time`` it is the interval of the data as they are. ``group_sequential``
needs ``design.time``: look ``k`` is the ``k``-th period of the data (days, with a date column), and
the information at a look is its sample size, the units of every arm up to that period (the first
metric's complete rows, which every metric's rows are in practice). The planned size is the size at
the last planned look: when the data hold all ``looks`` periods, the information fractions are
``n_k / n_looks``; while fewer periods ``d`` are in, ``n_looks`` is projected at the rate so far,
``n_d looks / d``, so the looks so far spend what equally spaced looks would (Lan and DeMets 1983 allow
fractions that are estimated, and they are recomputed as data arrive). More periods than looks are a
data error: the spending is used up at the last planned look.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field, replace
from typing import TYPE_CHECKING, Any, Callable

from causalcli.errors import DataError, SpecError

if TYPE_CHECKING:  # pragma: no cover
    from causalcli.designs.experiment.analysis import Comparison, Test
    from causalcli.designs.experiment.design import ExperimentData
    from causalcli.designs.experiment.proportions import ArmTests
    from causalcli.spec.models import Study


def check_sequential(study: "Study", file: str) -> None:
    """A group sequential design reads its looks from design.time: without it the spec is refused (exit 2)."""
    seq = study.design.sequential
    if seq is not None and seq.method == "group_sequential" and study.design.time is None:
        raise SpecError("design.sequential.method group_sequential needs design.time (each period is a look); add "
                        "design.time, or use method: always_valid, which needs no looks",
                        file=file, key="design.sequential")


@dataclass(frozen=True)
class SequentialAnalysis:
    method: str
    alpha: float
    tuning: float | None
    spending: str | None
    looks: int | None
    fractions: tuple[float, ...] = ()     # group_sequential: information fraction of each period so far
    boundaries: tuple[float, ...] = ()    # group_sequential: z boundary of each period so far
    # group_sequential: the last look's boundary by level (as its fixed-horizon critical value), kept across the
    # repeated p-values of every effect, which then start from the boundaries already computed
    last_boundaries: dict[float, float] = field(default_factory=dict, compare=False, repr=False)

    @property
    def name(self) -> str:
        return "always_valid" if self.method == "always_valid" else f"group_sequential_{self.spending}"

    def critical(self, units: float, look: int | None = None) -> float:
        """The critical |z| at ``units`` units of the two arms (always_valid) or at look ``look`` (1-based)."""
        from causalcli.designs.experiment.sequential import always_valid_multiplier

        if self.method == "always_valid":
            return always_valid_multiplier(units, self.alpha, self.tuning)
        return self.boundaries[(look or len(self.boundaries)) - 1]

    def p_value(self, z: float, units: float) -> float:
        from causalcli.designs.experiment.sequential import always_valid_p, repeated_p_value

        if self.method == "always_valid":
            return always_valid_p(z, units, self.alpha, self.tuning)
        return repeated_p_value(z, _distinct(self.fractions), self.spending, self.last_boundaries)

    def test(self, t: "Test", c: "Comparison", log_scale: bool = False) -> "Test":
        """A fixed-horizon test of one effect with the sequential interval and p-value (normal, no df)."""
        units = c.n_control + c.n_treatment
        if not (math.isfinite(t.value) and math.isfinite(t.std_error) and t.std_error > 0):
            return replace(t, df=None)
        crit = self.critical(units)
        if log_scale:  # relative_ci: log: the sequence on log(ratio), whose standard error is std_error / ratio
            ratio = 1 + t.value
            scale = t.std_error / ratio
            return replace(t, ci_lower=ratio * math.exp(-crit * scale) - 1, ci_upper=ratio * math.exp(crit * scale) - 1,
                           p_value=self.p_value(math.log(ratio) / scale, units), df=None)
        half = crit * t.std_error
        return replace(t, ci_lower=t.value - half, ci_upper=t.value + half,
                       p_value=self.p_value(t.value / t.std_error, units), df=None)

    def tests(self, fixed: "ArmTests", opts: Any) -> tuple["Test", "Test"]:
        """One metric and arm's absolute and relative tests made sequential. Their standard errors are the
        fixed-horizon ones: a proportion's is the unpooled p (1 - p) / n of each arm, as gbstats' proportion
        statistic."""
        c = fixed.comparison
        return self.test(fixed.absolute, c), self.test(fixed.relative, c, log_scale=opts.relative_ci == "log")

    def named(self, fixed: Callable[..., str]) -> Callable[..., str]:
        """A function naming an effect's inference (as ``fixed``) with the sequential method in place of the test."""
        return lambda *args: self.inference(fixed(*args))

    def inference(self, fixed: str) -> str:
        """The effect's inference name with the sequential method in place of the fixed-horizon test."""
        return fixed.rsplit("+", 1)[0] + "+" + self.name if "+" in fixed else self.name

    def extend(self, points: list[dict[str, Any]]) -> None:
        """Add the sequential interval (and boundary) of each look to the cumulative points."""
        for k, p in enumerate(points, start=1):
            units = p["n_control"] + p["n_treatment"]
            crit = self.critical(units, k) if units else None
            p["critical_z"] = crit
            p["sequential_lower"] = p["sequential_upper"] = None
            if crit is not None and p["std_error"] is not None:
                p["sequential_lower"] = p["value"] - crit * p["std_error"]
                p["sequential_upper"] = p["value"] + crit * p["std_error"]
            if self.method == "group_sequential":
                p["information_fraction"] = self.fractions[k - 1]

    def describe(self) -> dict[str, Any]:
        out: dict[str, Any] = {"method": self.method, "alpha": self.alpha}
        if self.method == "always_valid":
            out.update(tuning=self.tuning, interval=(
                "asymptotic confidence sequence (Waudby-Smith et al. 2023, eq. 9; GrowthBook's sequential test) at "
                "the current units of the two arms compared, without intersection over looks; p-value = 1 / "
                "e-value; normal, no degrees of freedom"))
        else:
            out.update(spending=self.spending, looks=self.looks, look=len(self.fractions),
                       information_fractions=list(self.fractions), boundaries=list(self.boundaries), interval=(
                           "repeated confidence interval estimate +- boundary x std_error at the latest look, "
                           "p-value the repeated p-value; Lan-DeMets alpha spending, boundaries by the recursive "
                           "integration of Armitage, McPherson and Rowe (1969); information = units so far over "
                           "the units at the last planned look (projected at the rate so far while looks remain)"))
        return out


def _distinct(fractions: tuple[float, ...]) -> list[float]:
    """Looks that add information (a period with no new units spends nothing and repeats the boundary)."""
    out: list[float] = []
    for f in fractions:
        if not out or f > out[-1]:
            out.append(f)
    return out


def sequential_analysis(d: "ExperimentData", study: "Study") -> SequentialAnalysis | None:
    """The sequential analysis of the spec for these data; None without design.sequential."""
    from causalcli.designs.experiment.sequential import spending_boundaries
    from causalcli.inference.distributions import normal_quantile

    seq = study.design.sequential
    if seq is None:
        return None
    alpha = round(1 - study.conf_level, 12)  # 0.05, not 1 - 0.95's 0.050000000000000044
    if seq.method == "always_valid":
        return SequentialAnalysis("always_valid", alpha, seq.tuning, None, None)
    units = _units_by_period(d)
    periods = len(units)
    if periods > seq.looks:
        raise DataError(f"time column {d.time!r} has {periods} periods but design.sequential.looks is {seq.looks}: "
                        "the alpha is spent by the last planned look; raise looks to the periods planned, or filter "
                        "the data to them with data.filter", file=d.file, key="design.sequential.looks",
                        column=d.time)
    planned = units[-1] if periods == seq.looks else units[-1] * seq.looks / periods
    fractions = tuple(min(1.0, n / planned) for n in units)
    if not fractions or fractions[0] <= 0:
        raise DataError(f"the first period of {d.time!r} has no units of the arms compared", file=d.file,
                        key="design.time", column=d.time)
    distinct = _distinct(fractions)
    bounds = spending_boundaries(distinct, alpha, seq.spending)
    at = {f: b for f, b in zip(distinct, bounds)}
    return SequentialAnalysis("group_sequential", alpha, None, seq.spending, seq.looks, fractions,
                              tuple(at[f] for f in fractions), {-normal_quantile(alpha / 2): bounds[-1]})


def _units_by_period(d: "ExperimentData") -> list[int]:
    """Cumulative units of every arm compared, by period (the first metric's complete rows)."""
    stats = d.stats
    group = d.shapes[0].name if stats.complete_cases_by_metric else None
    arms = (d.control, *d.arms)
    total, out = 0, []
    for groups in stats.periods.values():
        sums = groups.get(group, {})
        total += sum(sums[a].n for a in arms if a in sums)
        out.append(total)
    return out


SEQUENTIAL_NOTE = ("each point is the estimate on all data up to and including that period; ci_lower/ci_upper are "
                   "fixed-horizon (valid for one look decided in advance), sequential_lower/sequential_upper the "
                   "sequential ones, valid for stopping at any look (critical_z is the boundary on |z|). Covariate "
                   "adjustment is re-estimated on the data so far")


# ---------------------------------------------------------------- planning (`causalcli plan`)


@dataclass(frozen=True)
class SequentialSizing:
    """How a sequential design changes the plan: more units for the same power, a larger detectable effect.

    group_sequential: the maximum size is ``R`` times the fixed design's, ``R = (drift / k)**2`` with ``drift``
    the expected z at the last of ``looks`` equally spaced looks that gives the power against the spending
    boundaries (Jennison and Turnbull 2000, section 2.5 and ch. 7). always_valid: the size at which the
    sequence, read at that size, rejects with the power (the effect is ``k_cs(N) se(N)`` with ``k_cs`` the
    fixed design's multiplier for critical value ``m(N)``): a bound on the size needed, since a sequence read
    every day can also stop earlier.
    """

    method: str
    alpha: float
    power: float
    k_fixed: float

    tuning: float | None = None  # always_valid

    drift: float | None = None   # group_sequential
    spending: str | None = None
    looks: int | None = None

    def units(self, fixed_total: float, pair_share: float) -> float:
        """Units over all arms for the arm's power, from the fixed design's; ``pair_share`` is the share of
        the two arms compared (the sequence's sample size is theirs)."""
        from causalcli.designs.experiment.sequential import always_valid_units

        if self.method == "group_sequential":
            return fixed_total * (self.drift / self.k_fixed) ** 2
        pair = always_valid_units(fixed_total * pair_share, self.alpha, self.power, self.tuning, self.k_fixed)
        return pair / pair_share

    def multiplier(self, pair_units: float) -> float:
        """The detectable effect in standard errors at ``pair_units`` units of the two arms (the final look)."""
        from causalcli.designs.experiment.sequential import always_valid_multiplier, power_multiplier

        if self.method == "group_sequential":
            return self.drift
        return power_multiplier(always_valid_multiplier(pair_units, self.alpha, self.tuning), self.power)

    def describe(self) -> dict[str, Any]:
        if self.method == "group_sequential":
            return {"method": self.method, "spending": self.spending, "looks": self.looks, "drift": self.drift,
                    "inflation": (self.drift / self.k_fixed) ** 2,
                    "sizing": "maximum units (the last look) = inflation x the fixed design's; equally spaced looks"}
        return {"method": self.method, "tuning": self.tuning,
                "sizing": "units at which the confidence sequence, read at that size, has the power (a bound: it "
                          "may stop earlier); the MDE at the data's size uses the sequence's width there"}


def sequential_sizing(study: "Study", alpha: float, power: float, k_fixed: float) -> SequentialSizing | None:
    from causalcli.designs.experiment.sequential import drift_for_power, equally_spaced, spending_boundaries

    seq = study.design.sequential
    if seq is None:
        return None
    if seq.method == "always_valid":
        return SequentialSizing("always_valid", alpha, power, k_fixed, tuning=seq.tuning)
    fractions = equally_spaced(seq.looks)
    drift = drift_for_power(spending_boundaries(fractions, alpha, seq.spending), fractions, power)
    return SequentialSizing("group_sequential", alpha, power, k_fixed, drift=drift, spending=seq.spending,
                            looks=seq.looks)
