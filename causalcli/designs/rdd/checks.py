"""The checks of an RD design, each able to fail the study.

- ``bandwidth_sensitivity``: the estimate at 0.5x to 2x the selected bandwidths (h and b scaled together), in
  ``effects``; fails when the headline estimate lies outside one of their robust intervals (with few clusters,
  the wild cluster bootstrap's, as the headline's).
- ``covariate_balance``: each covariate as the outcome of the same RD (its own bandwidths), as Cattaneo, Idrobo
  and Titiunik (2020, section 5.1) recommend; fails when one jumps (robust p below alpha / covariates).
- ``manipulation``: the density test of Cattaneo, Jansson and Ma (2020) (``density.py``); fails when the running
  variable's density jumps at the cutoff (p below alpha).
- ``placebo_cutoffs``: the outcome's RD at cutoffs where nothing happens, each fitted on the rows of its own side
  of the real cutoff only (so the real jump cannot leak in); fails when one jumps (p below alpha / cutoffs).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, Callable

import numpy as np

from causalcli.designs.rdd.estimator import TooFewValues
from causalcli.designs.rdd.fitting import RdResult, RdSettings, rd_fit
from causalcli.inference.few_clusters import wild_name
from causalcli.records import Check, Estimate

if TYPE_CHECKING:  # pragma: no cover
    from causalcli.designs.rdd.by_value import ByValue
    from causalcli.designs.rdd.design import RddData
    from causalcli.spec.models import Study

BANDWIDTH_MULTIPLES = (0.5, 0.75, 1.0, 1.5, 2.0)


def _summary(result: RdResult, conf_level: float) -> dict[str, float]:
    lower, upper, p = result.robust_interval(conf_level)
    return {"estimate": result.fit.conventional, "ci_lower": lower, "ci_upper": upper, "p_value": p,
            "h_left": result.bandwidths.h_left, "h_right": result.bandwidths.h_right}


def bandwidth_sensitivity(d: "RddData", settings: RdSettings, result: RdResult, alpha: float,
                          wild: Callable[[RdResult], dict[str, Any]] | None = None) -> tuple[list[Estimate], Check]:
    """The estimate at each multiple of the bandwidths with its robust interval; ``wild``: with few clusters, the
    wild cluster bootstrap's p-value and interval of a fit (``clusters.wild_interval``), which replace CR1's."""
    effects, outside, skipped = [], [], []
    bw = result.bandwidths
    headline = result.fit.conventional
    for m in BANDWIDTH_MULTIPLES:
        try:
            r = result if m == 1.0 else rd_fit(None, None, d.cutoff, settings, h_scale=m, bandwidths=bw,
                                               split=result.split)  # the same sides, refitted
        except TooFewValues:
            skipped.append(f"{m:g}x")
            continue
        lower, upper, p = r.robust_interval(settings.conf_level)
        inference = "rd_robust_bias_corrected" + ("_clustered" if d.clustered else "")
        if wild is not None:
            drawn = wild(r)
            lower, upper, p = drawn["ci_lower"], drawn["ci_upper"], drawn["p_value"]
            inference += f"+{wild_name(drawn['weights'])}"
        label = f"bandwidth {m:g}x (h = {bw.h_left * m:.6g}" + (
            f", {bw.h_right * m:.6g})" if bw.h_right != bw.h_left else ")")
        effects.append(Estimate(r.fit.conventional, r.fit.se_robust, lower, upper, settings.conf_level, p, inference,
                                label))
        if lower is not None and not lower <= headline <= upper:  # no interval: unbounded, or no usable draw
            outside.append(f"{m:g}x")
    detail = (f"the estimate {headline:.4g} lies outside the robust interval at {', '.join(outside)} the bandwidth: "
              "the effect depends on the bandwidth" if outside else
              f"the estimate {headline:.4g} lies inside the robust interval at every bandwidth from 0.5x to 2x")
    if skipped:
        detail += f" ({', '.join(skipped)} not estimable: too few distinct running values within it)"
    return effects, Check("bandwidth_sensitivity", not outside, detail)


def balance(d: "RddData", settings: RdSettings, alpha: float) -> tuple[Check | None, dict[str, Any]]:
    if not d.covariates:
        return None, {}
    table, skipped = {}, []
    for name, values in d.covariates.items():
        constant = _constant_sides(values, d.cutoff)
        if constant:
            skipped.append(f"{name} ({constant})")
            continue
        try:
            # a degenerate covariate's bandwidth constants are 0/0: numpy's warning would reach the user's terminal
            with np.errstate(invalid="ignore", divide="ignore"):
                r = rd_fit(None, None, d.cutoff, settings, values=values.values)
        except (TooFewValues, ValueError, ZeroDivisionError, np.linalg.LinAlgError):
            skipped.append(name)
            continue
        table[name] = _summary(r, settings.conf_level)
    k = max(len(table), 1)  # Bonferroni over the covariates tested: one not estimable is no test
    failed = [name for name, row in table.items() if row["p_value"] < alpha / k]
    detail = (f"{', '.join(failed)} jump{'s' if len(failed) == 1 else ''} at the cutoff (robust p below "
              f"{alpha:g}/{k}): units on either side differ in more than the treatment" if failed else
              f"no covariate jumps at the cutoff (robust p at or above {alpha:g}/{k} for each)")
    if skipped:
        detail += f"; not estimable: {', '.join(skipped)}"
    return Check("covariate_balance", not failed if table else None, detail), {"balance": table}


def _constant_sides(values: "ByValue", cutoff: float) -> str | None:
    """Why a covariate constant on each side of the cutoff has no RD of its own, or None when it varies.

    One value below and another above is the cutoff's side itself (close_elections_lmb's `democrat`, a win):
    the treatment, not a covariate measured before it."""
    k = values.cut(cutoff)
    sides = []
    for part in (slice(0, k), slice(k, None)):
        low, high = values.low[part, 0], values.high[part, 0]
        if low.size == 0 or low.min() != high.max():
            return None
        sides.append(float(low.min()))
    below, above = sides
    if below == above:
        return f"{below:g} on every row"
    return (f"{below:g} on every row below the cutoff and {above:g} above it: the side of the cutoff itself, the "
            "treatment rather than a covariate measured before it; remove it from covariates")


def _default_placebos(data: "ByValue", cutoff: float) -> list[float]:
    """The median of the running variable on each side (R's type 2 quantile at 1/2 is the median)."""
    from causalcli.designs.rdd.bandwidth import type2_quantile

    k = data.cut(cutoff)
    v = data.values
    return [type2_quantile(v.x[part], np.cumsum(v.counts[part]), 0.5) if v.x[part].size else float("nan")
            for part in (slice(0, k), slice(k, None))]


def placebo_cutoffs(d: "RddData", settings: RdSettings, study: "Study", result: RdResult
                    ) -> tuple[Check | None, dict[str, Any]]:
    alpha = study.thresholds.alpha
    given = study.design.options.placebo_cutoffs
    placebos = [c for c in (given if given is not None else _default_placebos(d.by_value, d.cutoff))
                if c != d.cutoff]
    table, skipped = {}, []
    values = d.by_value.values
    k = d.by_value.cut(d.cutoff)
    if d.clustered:  # the rows, with their clusters, split at the cutoff as the values are
        x, D, clusters, weights, _ = d.row_source.get()
        k_rows = int(np.searchsorted(x, d.cutoff, side="left"))
    for c in placebos:
        part = slice(0, k) if c < d.cutoff else slice(k, None)  # each placebo's side is a slice of the values
        side = values.part(part, columns=1)
        try:
            if not side.x.size or not side.x[0] < c < side.x[-1]:
                raise TooFewValues("", 0, 0, 0)
            if d.clustered:  # the rows of that side
                rows = slice(0, k_rows) if c < d.cutoff else slice(k_rows, None)
                r = rd_fit(x[rows], D[rows, :1], c, settings, clusters[rows],
                           weights=None if weights is None else weights[rows])
            else:
                r = rd_fit(None, None, c, settings, values=side)  # the outcome alone (sharp)
        except (TooFewValues, ValueError, ZeroDivisionError, np.linalg.LinAlgError):
            skipped.append(f"{c:g}")
            continue
        table[f"{c:g}"] = _summary(r, settings.conf_level)
    if not table and not skipped:
        return None, {}
    k = max(len(table), 1)  # Bonferroni over the cutoffs tested: one with too few rows is no test
    failed = [c for c, row in table.items() if row["p_value"] < alpha / k]
    detail = (f"the outcome jumps at placebo cutoff(s) {', '.join(failed)} (robust p below {alpha:g}/{k}): the "
              "running variable moves the outcome by itself, so the jump at the cutoff may not be the treatment's"
              if failed else f"no jump at the placebo cutoffs {', '.join(table)} (robust p at or above {alpha:g}/{k})")
    if skipped:
        detail += f"; not estimable (too few rows on that side): {', '.join(skipped)}"
    return Check("placebo_cutoffs", not failed if table else None, detail), {"placebo_cutoffs": table}


def density(d: "RddData", alpha: float, result: RdResult) -> tuple[Check | None, dict[str, Any]]:
    """The manipulation test (Cattaneo, Jansson and Ma 2020), as rddensity computes it with its defaults."""
    from causalcli.designs.rdd.density import density_test

    values = d.by_value.values  # the test runs on the counts by value
    try:
        t = density_test(values.x, d.cutoff, (values.x, values.counts))
    except (ValueError, ZeroDivisionError, np.linalg.LinAlgError) as e:
        return Check("manipulation", None, f"the density test could not be computed ({e})"), {}
    if not np.isfinite(t.p_value):
        return Check("manipulation", None, "the density test's jackknife variance is not positive"), {}
    jumps = t.p_value < alpha
    detail = (f"the running variable's density jumps at the cutoff ({t.f_left:.4g} below, {t.f_right:.4g} above; "
              f"p = {t.p_value:.4f}): units may sort themselves around the cutoff" if jumps else
              f"no jump in the running variable's density at the cutoff ({t.f_left:.4g} below, {t.f_right:.4g} "
              f"above; p = {t.p_value:.4f})")
    if d.weights:
        detail += (f"; unweighted: the density of the rows used, not weighted by {d.weights!r} (rddensity takes "
                   "no weights)")
    info = {"f_left": t.f_left, "f_right": t.f_right, "statistic": t.statistic, "p_value": t.p_value,
            "h_left": t.h_left, "h_right": t.h_right, "n_left": t.n_left, "n_right": t.n_right,
            "note": "Cattaneo-Jansson-Ma local polynomial density test (rddensity defaults: p = 2, triangular, "
                    "jackknife variance, comb bandwidths)" + ("; rows counted unweighted: rddensity takes no "
                                                               "weights" if d.weights else "")}
    return Check("manipulation", not jumps, detail), {"density": info}
