"""Planning an experiment (``causalcli plan``): sample size per arm, minimum detectable effect, days.

Per metric and treatment arm, a two-sided z test at level alpha with power ``1 - beta``. The
power of a test of an effect ``k`` standard errors away from zero is
``Phi(k - z) + Phi(-k - z)`` with ``z = z_(1-alpha/2)`` (both tails, as statsmodels'
``NormalIndPower`` and tea-tasting's power with ``use_t=False`` count them). ``k`` is solved
once, to machine precision, and then, with ``w`` the arms' shares of the allocation:

    MDE at n_control, n_arm   = k * sqrt(var / n_control + var / n_arm)
    units needed, all arms    N = k**2 * var * (1 / w_control + 1 / w_arm) / delta**2,  n_arm = N * w_arm

``var`` is one per-unit variance for both arms (the null hypothesis's), as statsmodels (one
effect size in standard deviations) and tea-tasting (one sample variance) assume: the spec's
``sd``, else the data's control arm (all rows when the data have no variant column, as
pre-period data do). A mean metric uses the sample variance (n - 1); a proportion (a 0/1
column) ``p(1 - p)`` at the baseline rate ``p``, the variance statsmodels' ``NormalIndPower``
sees with effect size ``delta / sqrt(p(1 - p))`` (not Cohen's arcsine ``h`` of
``proportion_effectsize``); a ratio metric the delta method's variance of
``(num - R den) / mean(den)`` per unit; CUPED and regression adjustment multiply by
``1 - R**2``, the share of variance the covariates leave (``rho**2`` for one covariate), in
the same rows. With a correction (holm or bh) each test is planned at ``alpha / m`` over the
``m`` metric x arm tests: Bonferroni's level, the one Holm's first step and BH's smallest
p-value use, so the plan is conservative for both.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Callable

from causalcli.data.table import TABLE, quote_identifier
from causalcli.errors import DataError, SpecError
from causalcli.inference.distributions import normal_cdf, normal_density, normal_quantile

if TYPE_CHECKING:  # pragma: no cover
    from causalcli.data.table import Table
    from causalcli.designs.experiment.analysis import MetricShape
    from causalcli.designs.experiment.stats import Moments
    from causalcli.spec.loading import LoadedSpec
    from causalcli.spec.models import Study

# (the spec's value, the data's arm values, their labels) -> the arm value it names, or None
ArmFinder = Callable[[Any, list[Any], dict[Any, str]], Any]

METHOD = ("two-sided z test; power = Phi(k - z) + Phi(-k - z) with both tails; MDE = k x standard error; one "
          "per-unit variance for both arms (the control arm's, or all rows without a variant column); "
          "proportions p(1-p) at the baseline; ratios by the delta method; CUPED x (1 - rho^2)")


# ---------------------------------------------------------------- the formulas

ZERO_BASELINE = 1e-9  # a data mean below this many sds is 0 for a relative mde (rounding noise of a centred column)


def power_at(k: float, alpha: float) -> float:
    """Power of a two-sided level-alpha z test of an effect ``k`` standard errors from zero (both tails)."""
    z = normal_quantile(1 - alpha / 2)
    return normal_cdf(k - z) + normal_cdf(-k - z)


def detectable_multiplier(alpha: float, power: float) -> float:
    """The effect, in standard errors, that a two-sided level-alpha z test detects with this power.

    Newton's method from ``z_(1-alpha/2) + z_power`` (the answer when the far tail is left out);
    power rises with ``k``, so it converges in a few steps to the last bit.
    """
    if not alpha < power < 1:
        raise ValueError("power must lie between alpha and 1")
    z = normal_quantile(1 - alpha / 2)
    k = z + normal_quantile(power)
    for _ in range(50):
        step = (power_at(k, alpha) - power) / (normal_density(k - z) - normal_density(-k - z))
        k -= step
        if abs(step) <= 1e-15 * k:
            break
    return k


def units_needed(variance: float, delta: float, k: float, share_control: float, share_arm: float) -> float:
    """Units over all arms (before rounding up) for the arm to detect ``delta`` against control."""
    return k * k * variance * (1 / share_control + 1 / share_arm) / (delta * delta)


def detectable_effect(variance: float, n_control: float, n_arm: float, k: float) -> float:
    """The absolute effect detectable with ``n_control`` and ``n_arm`` units."""
    return k * math.sqrt(variance / n_control + variance / n_arm)


def _ceil(x: float) -> int:
    """Units to recruit: rounded up, but not past a float's last-bit excess over a whole number."""
    return math.ceil(x * (1 - 4e-16))


# ---------------------------------------------------------------- the data


@dataclass(frozen=True)
class DataBasis:
    """What the data say: per arm label, per metric, the moments of its complete rows; rows; days."""

    file: str
    rows: int
    arms: dict[str, dict[str, "Moments"]]  # arm label (or "" without a variant column) -> metric -> moments
    arm_rows: dict[str, int]                # arm label (or "") -> rows
    binary: dict[str, bool]                 # metric -> a 0/1 column in every row read
    control: str | None                     # the control's label; None without a variant column
    days: int | None
    shapes: tuple["MetricShape", ...] | None = None  # design.unit: the metrics as ratios of unit sums


def _metric_columns(shape: "MetricShape") -> tuple[str, ...]:
    cols = [shape.num, shape.den, *[c for pair in shape.covariates for c in pair]]
    return tuple(dict.fromkeys(c for c in cols if c is not None))


def read_basis(study: "Study", spec: "LoadedSpec", shapes: list["MetricShape"], wanted: list[int],
               find_arm: ArmFinder) -> DataBasis:
    """The design's exact pass (``stats.compute_statistics``) over the data for the metrics ``wanted``
    (indices): per arm, counts, means and covariances, the same digits on every rerun."""
    from causalcli.data.table import load_table
    from causalcli.data.types import numeric_column, period_column
    from causalcli.designs.experiment.stats import compute_statistics, moments

    table = load_table(spec, lazy=True)
    for i in wanted:
        for col in _metric_columns(shapes[i]):
            if col not in table.types:
                raise SpecError(f"metric {shapes[i].name!r}: column {col!r} is not in the data ({table.file}); plan "
                                f"reads its variance there: give design.metrics[{i}].mean and .sd to plan without "
                                "it", file=spec.source.display, key=f"design.metrics[{i}]")
            numeric_column(table, col, f"design.metrics[{i}]")
    has_arms = bool(study.treatment) and study.treatment in table.types
    variant = study.treatment if has_arms else _one_arm(table)
    time = study.design.time
    if time is not None:
        if time not in table.types:
            raise DataError(f"time column {time!r} not found: plan counts the days of the data in it",
                            file=table.file, key="design.time", column=time)
        period_column(table, time, "design.time", study.data.timezone)
    unit = None
    if study.design.unit is not None:  # the rows summed to units, as estimate does: variances of unit-level ratios
        from causalcli.designs.experiment.units import check_unit_column, group_by_unit

        check_unit_column(study, table)
        unit, grouped = group_by_unit(study.model_copy(update={"treatment": variant, "segments": []}), table,
                                      [shapes[i] for i in wanted])
        shapes = list(shapes)
        for i, shape in zip(wanted, grouped):
            shapes[i] = shape
    columns = {shapes[i].name: _metric_columns(shapes[i]) for i in wanted}
    pairs = {name: tuple((a, b) for j, a in enumerate(cols) for b in cols[j:]) for name, cols in columns.items()}
    floating = {c for cols in columns.values() for c in cols if table.types[c].upper() in ("DOUBLE", "FLOAT", "REAL")}
    stats = compute_statistics(table, variant, columns, pairs, floating, None, set(), grouped=unit is not None,
                               head=(unit.centres, unit.second) if unit is not None else None)
    labels = _labels(study, list(stats.arm_counts), table.file) if has_arms else {v: "" for v in stats.arm_counts}
    arms: dict[str, dict[str, "Moments"]] = {}
    for value, label in labels.items():
        arms[label] = {}
        for name in columns:
            sums = stats.groups[name if stats.complete_cases_by_metric else None].get(value)
            if sums is not None:
                arms[label][name] = moments([sums], stats.centres, pairs[name])
    control = labels[_control(study, labels, find_arm, table.file)] if has_arms else None
    days = None
    if time is not None:  # with design.unit, the days of the units' first exposures
        q = quote_identifier(time)
        days = int(table.sql(f"SELECT count(DISTINCT {q}) FROM {TABLE} WHERE {q} IS NOT NULL")[0][0]) or None
    arm_rows = {labels[v]: int(n) for v, n in stats.arm_counts.items()}
    return DataBasis(table.file, sum(arm_rows.values()), arms, arm_rows, _binary(table, shapes, wanted), control, days,
                     tuple(shapes) if unit is not None else None)


def _one_arm(table: "Table") -> str:
    """Pre-period data have no variant column: a constant one puts every row in one arm for the pass."""
    from causalcli.data.types import add_column

    name = "causalcli_plan_arm"
    add_column(table, name, "0")
    return name


def _binary(table: "Table", shapes: list["MetricShape"], wanted: list[int]) -> dict[str, bool]:
    """Which mean metrics hold only 0 and 1 (proportions), in their complete rows."""
    means = [i for i in wanted if shapes[i].den is None]
    counts = []
    for i in means:
        ok = " AND ".join(_present(table, c) for c in _metric_columns(shapes[i]))
        counts.append(f"count(*) FILTER (WHERE {ok} AND {_double(shapes[i].num)} NOT IN (0, 1))")
    found = table.sql(f"SELECT {', '.join(counts)} FROM {TABLE}")[0] if counts else ()
    return {shapes[i].name: int(k) == 0 for i, k in zip(means, found)}


def _double(column: str) -> str:
    return f"CAST({quote_identifier(column)} AS DOUBLE)"


def _present(table: "Table", column: str) -> str:
    q = quote_identifier(column)
    nan = f" AND NOT isnan({_double(column)})" if table.types[column].upper() in ("DOUBLE", "FLOAT", "REAL") else ""
    return f"({q} IS NOT NULL{nan})"


def _labels(study: "Study", values: list[Any], file: str) -> dict[Any, str]:
    from causalcli.designs.experiment.spec import arm_label

    labels = {v: arm_label(v) for v in values}
    if len(set(labels.values())) < len(labels):
        raise DataError(f"variant values of {study.treatment!r} collide when written as text", file=file,
                        key="treatment", column=study.treatment)
    return labels


def _control(study: "Study", labels: dict[Any, str], find_arm: ArmFinder, file: str) -> Any:
    control = find_arm(study.design.control, list(labels), labels)
    if control is None:
        found = ", ".join(sorted(map(repr, labels.values()))[:10])
        raise DataError(f"control arm {study.design.control!r} not found in {study.treatment!r}; its values: "
                        f"{found}", file=file, key="design.control", column=study.treatment)
    return control


# ---------------------------------------------------------------- the plan


def plan_experiment(study: "Study", spec: "LoadedSpec", metrics: list[Any], shapes: list["MetricShape"],
                    find_arm: ArmFinder) -> dict[str, Any]:
    """The plan's body (``causalcli.plan/v1`` without its schema and study name), for the design's
    ``metrics`` and their ``shapes``; ``find_arm`` finds the data's control value as ``estimate`` does."""
    file = spec.source.display
    design = study.design
    wanted = [i for i, m in enumerate(metrics) if m.mean is None or m.sd is None]
    for i, m in enumerate(metrics):
        if (m.mean is None) != (m.sd is None):
            raise SpecError(f"metric {m.name!r}: give both mean and sd (or neither, to read them from the data)",
                            file=file, key=f"design.metrics[{i}]")
    basis = read_basis(study, spec, shapes, wanted, find_arm) if wanted else None
    if basis is not None and basis.shapes is not None:  # design.unit: metrics of unit sums
        shapes = list(basis.shapes)
    control, shares = _allocation(study, basis)
    arms = [a for a in shares if a != control]
    alpha = design.options.alpha
    power = design.power if design.power is not None else design.options.power
    tests = len(metrics) * len(arms)
    per_test = alpha / tests if design.correction != "none" else alpha
    if not per_test < power:
        raise SpecError(f"power {power:g} must exceed the level of each test ({per_test:g})", file=file,
                        key="design.power")
    k = detectable_multiplier(per_test, power)
    from causalcli.designs.experiment.sequential_fit import sequential_sizing

    sizing = sequential_sizing(study, per_test, power, k)  # None without design.sequential
    units_per_day = basis.rows / basis.days if basis is not None and basis.days else None
    rows = []
    for i, (m, shape) in enumerate(zip(metrics, shapes)):
        baseline, variance, kind, source, reduction = _variance(i, m, shape, basis, file)
        if m.mde is None and basis is None:
            raise SpecError(f"metric {m.name!r}: give design.metrics[{i}].mde (the relative effect to detect)",
                            file=file, key=f"design.metrics[{i}].mde")
        # from data, a mean within rounding noise of 0 (a centred column) is 0: its relative mde would ask for
        # 1e18 or more units
        noise = m.sd is None and abs(baseline) <= ZERO_BASELINE * math.sqrt(variance)
        if m.mde is not None and (baseline == 0 or noise):
            if m.sd is not None:  # the spec's own mean: that is the value to change
                raise SpecError(f"metric {m.name!r}: design.metrics[{i}].mean is 0, so a relative mde (a share of "
                                "the control mean) has no size; give the control mean you expect (not 0)",
                                file=file, key=f"design.metrics[{i}].mean")
            zero = "0" if baseline == 0 else f"0 up to rounding ({baseline:.3g}, under {ZERO_BASELINE:g} sd)"
            raise DataError(f"metric {m.name!r}: the control mean in the data is {zero}, so a relative mde (a share "
                            f"of the control mean) has no size; give design.metrics[{i}].mean and .sd (a baseline "
                            "that is not 0) to plan without the data", file=basis.file if basis else file,
                            key=f"design.metrics[{i}]")
        for arm in arms:
            row = _row(m, arm, kind, shape, baseline, variance, source, reduction, k, shares, control, sizing)
            n_c, n_a = _data_sizes(basis, m.name, control, arm, shares)
            if n_c is not None:
                mde_abs = detectable_effect(variance, n_c, n_a, k if sizing is None else sizing.multiplier(n_c + n_a))
                row.update(n_control=n_c, n_arm=n_a, mde_absolute=mde_abs, mde_relative=mde_abs / abs(baseline)
                           if baseline else None)
            total = row["sample_size_total"]
            row["days"] = _ceil(total / units_per_day) if total is not None and units_per_day else None
            rows.append(row)
    correction = {"method": design.correction, "tests": tests,
                  "planned_as": ("none" if design.correction == "none" else
                                 f"Bonferroni: each test at alpha / {tests}, the level of "
                                 f"{design.correction}'s smallest p-value (conservative)")}
    data = None
    if basis is not None:
        data = {"file": basis.file, "rows": basis.rows, "days": basis.days, "units_per_day": units_per_day,
                "variant_column": basis.control is not None}
        if basis.shapes is not None:  # rows counts units of design.unit: each metric a ratio of unit sums
            data["unit"] = study.design.unit
    out = {"alpha": alpha, "alpha_per_test": per_test, "power": power, "multiplier": k, "correction": correction,
           "allocation": {a: shares[a] for a in shares}, "control": control, "data": data, "method": METHOD,
           "metrics": rows, "warnings": _look_warnings(study, rows, units_per_day)}
    if sizing is not None:
        out["sequential"] = sizing.describe()
    return out


def _look_warnings(study: "Study", rows: list[dict[str, Any]], units_per_day: float | None) -> list[str]:
    """group_sequential takes one look per period of design.time and refuses more periods than looks: a plan
    longer than its looks could not be analysed as planned."""
    seq = study.design.sequential
    days = [r["days"] for r in rows if r["days"] is not None]
    if seq is None or seq.method != "group_sequential" or not days or max(days) <= seq.looks:
        return []
    return [f"the plan takes up to {max(days):,} days at {units_per_day:,.0f} units per day, but "
            f"design.sequential.looks is {seq.looks}: estimate takes one look per period of {study.design.time!r} "
            f"and refuses more periods than looks (exit 3); set looks to at least {max(days)} and plan again "
            "(more looks cost a few more units)"]


def _allocation(study: "Study", basis: DataBasis | None) -> tuple[str, dict[str, float]]:
    """The control's label and every arm's share, control first: expected_split, else equal shares of the
    data's arms, else control and one treatment arm."""
    from causalcli.designs.experiment.spec import arm_label

    design = study.design
    control = basis.control if basis is not None and basis.control is not None else arm_label(design.control)
    if design.expected_split is not None:
        split = dict(design.expected_split)
        if control not in split:
            raise SpecError(f"design.expected_split gives no share to the control arm {control!r}",
                            key="design.expected_split")
    elif basis is not None and basis.control is not None:
        split = {a: 1.0 for a in sorted(basis.arm_rows)}
    else:
        split = {control: 1.0, "treatment": 1.0}
    total = sum(split.values())
    order = [control, *(a for a in split if a != control)]
    return control, {a: split[a] / total for a in order}


def _variance(i: int, m: Any, shape: "MetricShape", basis: DataBasis | None,
              file: str) -> tuple[float, float, str, str, float | None]:
    """(baseline mean, per-unit variance, kind, where the variance comes from, share of variance CUPED removes)."""
    from causalcli.designs.experiment.analysis import compare

    binary = basis is not None and basis.binary.get(m.name, False)
    kind = "ratio" if shape.den is not None else ("proportion" if binary else "mean")
    if m.sd is not None:
        return m.mean, m.sd * m.sd, kind, "spec: mean and sd", None
    assert basis is not None  # a metric without mean and sd is read from the data
    where = "the control arm" if basis.control is not None else "the data"
    moments = basis.arms.get(basis.control if basis.control is not None else "", {}).get(m.name)
    if moments is None or moments.n < 2:
        raise DataError(f"metric {m.name!r}: {where} has {0 if moments is None else moments.n} complete unit(s); "
                        "a variance needs two", file=basis.file, key=f"design.metrics[{i}]")
    if shape.den is not None and moments.mean[shape.den] == 0:
        raise DataError(f"ratio metric {m.name!r}: denominator {shape.den!r} totals zero in {where}",
                        file=basis.file, key=f"design.metrics[{i}].denominator", column=shape.den)
    c = compare(shape, moments, moments, moments, "plan", basis.file)
    raw_variance = c.var_control_unadjusted
    if not raw_variance > 0:
        raise DataError(f"metric {m.name!r} has zero variance in {where}: no sample size follows from it; give "
                        f"design.metrics[{i}].mean and .sd", file=basis.file, key=f"design.metrics[{i}]")
    explained = 1 - c.var_control / raw_variance if shape.covariates else None
    p = c.raw_mean_control
    base = p * (1 - p) if kind == "proportion" else raw_variance
    source = f"data: {where}" + (" (Bernoulli p(1-p))" if kind == "proportion" else "")
    return p, base * (1 - (explained or 0.0)), kind, source, explained


def _row(m: Any, arm: str, kind: str, shape: "MetricShape", baseline: float, variance: float, source: str,
         explained: float | None, k: float, shares: dict[str, float], control: str,
         sizing: Any = None) -> dict[str, Any]:
    row: dict[str, Any] = {
        "name": m.name, "arm": arm, "kind": kind, "adjustment": shape.adjustment, "baseline": baseline,
        "sd": math.sqrt(variance), "variance_from": source, "variance_reduction": explained, "mde": m.mde,
        "sample_size_per_arm": None, "sample_size_control": None, "sample_size_total": None,
        "mde_absolute": None, "mde_relative": None, "n_control": None, "n_arm": None, "days": None,
    }
    if m.mde is not None:
        delta = m.mde * abs(baseline)
        total = units_needed(variance, delta, k, shares[control], shares[arm])
        if sizing is not None:  # a sequential design: more units for the same power
            total = sizing.units(total, shares[control] + shares[arm])
        row.update(sample_size_per_arm=_ceil(total * shares[arm]), sample_size_control=_ceil(total * shares[control]),
                   sample_size_total=sum(_ceil(total * w) for w in shares.values()),
                   mde_absolute=delta, mde_relative=m.mde)
    return row


def _data_sizes(basis: DataBasis | None, name: str, control: str, arm: str,
                shares: dict[str, float]) -> tuple[float | None, float | None]:
    """Units of control and arm in the data (the metric's complete rows), or the data's rows at the allocation."""
    if basis is None:
        return None, None
    if basis.control is None:
        moments = basis.arms[""].get(name)
        rows = moments.n if moments is not None else basis.rows
        return rows * shares[control], rows * shares[arm]
    if arm not in basis.arm_rows:
        return None, None
    sizes = []
    for label in (control, arm):
        moments = basis.arms[label].get(name)
        sizes.append(moments.n if moments is not None else basis.arm_rows[label])
    return sizes[0], sizes[1]
