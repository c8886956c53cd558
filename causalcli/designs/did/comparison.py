"""``estimator: all``: the did estimators on one panel, side by side.

The recent literature (Roth, Sant'Anna, Bilinski and Poe 2023, Section 3.4; Baker, Larcker and Wang 2022)
recommends reporting the heterogeneity-robust estimators beside two-way fixed effects: where they agree, the
choice of estimator does not drive the result; where TWFE stands apart, its forbidden comparisons may. Each
estimator is the one ``estimator: <name>`` runs, called on the same ``PanelData`` (the data are read once),
with the options that apply to it (``options_for``), so every number equals that of the single run:

* ``twfe``: the static coefficient (``twfe/att``) and the event study (``twfe/event_time=e``), whose window is
  ``design.event_study`` or, by default, every relative period of the panel (up to 50 each side);
* ``callaway_santanna``: its headline aggregation (``options.aggregation``) and its dynamic effects;
* ``imputation``, ``sun_abraham``: their overall effects and event-time effects;
* ``synthetic_did``: with few treated units (``did/synthetic_did.py``).

The panel is built as for the staggered estimators: units treated from the first period on are dropped for
every estimator, TWFE included (it would keep them alone). An estimator that cannot run on the data is left
out with its reason (``diagnostics.comparison.left_out`` and a warning); the others still report.

The headline is one estimator's overall effect: ``options.headline``, by default Callaway-Sant'Anna's, or the
next of ``HEADLINE_ORDER`` that ran; its checks, diagnostics and refuters are the headline's, as in its single
run. Honest-DiD sets are computed for the headline only (they take a second or so each).
"""

from __future__ import annotations

from dataclasses import replace
from typing import TYPE_CHECKING, Any, Callable

import numpy as np

from causalcli.errors import DataError, EstimationError

if TYPE_CHECKING:  # pragma: no cover
    from causalcli.designs.base import Fit
    from causalcli.designs.did.panel import PanelData
    from causalcli.records import Estimate
    from causalcli.spec.models import Study

COMPARED = ("twfe", "callaway_santanna", "imputation", "sun_abraham", "synthetic_did")
HEADLINE_ORDER = ("callaway_santanna", "imputation", "sun_abraham", "twfe")
MAX_WINDOW = 50  # event_study's own limit on leads and lags

# what each estimator's overall effect is, in the comparison's diagnostics
OVERALL = {
    "twfe": "coefficient of the treatment with unit and period fixed effects (static TWFE)",
    "callaway_santanna": "{aggregation} aggregation of the group-time ATT(g,t) (R did::aggte)",
    "imputation": "every imputable treated row weighted alike (diff-diff ImputationDiD.overall_att)",
    "sun_abraham": "post-treatment event-time effects weighted by their treated rows (diff-diff "
                   "SunAbraham.overall_att)",
    "synthetic_did": "cohort estimates weighted by their treated unit-periods (Arkhangelsky et al. 2021)",
}


def options_for(name: str, options: Any) -> Any:
    """The options of the single run of ``name``: those it refuses reset to their defaults."""
    reset: dict[str, Any] = {"headline": None}
    if name == "twfe" and options.bootstrap == "multiplier":
        reset["bootstrap"] = "none"
    if name == "callaway_santanna" and options.bootstrap == "wild":
        reset["bootstrap"] = "none"
    if name in ("imputation", "sun_abraham"):
        reset.update(control_group="never_treated", aggregation="simple", bootstrap="none")
    return options.model_copy(update=reset)


def event_window(p: "PanelData", event_study: Any) -> tuple[int, int]:
    """TWFE's leads and lags: the spec's, else every relative period of the panel (capped at ``MAX_WINDOW``)."""
    if event_study is not None:
        return event_study.leads, event_study.lags
    g = p.g[p.g >= 0]
    last = int(p.times.size) - 1
    return min(int(g.max()), MAX_WINDOW), min(last - int(g.min()), MAX_WINDOW)


def _cannot_run(p: "PanelData", study: "Study", name: str) -> str | None:
    """Why ``name`` cannot run on this spec and panel, known before trying, or None."""
    if p.w is not None and name in ("imputation", "sun_abraham"):
        return f"weights are not built yet for estimator: {name}"
    if p.w is not None and name == "callaway_santanna":
        first = np.full(p.n_units, np.nan)
        first[p.unit] = p.w
        if not np.array_equal(first[p.unit], p.w):
            return f"weights {study.weights!r} vary within a unit; callaway_santanna needs one weight per unit"
    return None


def _run(p: "PanelData", study: "Study", name: str, fit_one: Callable[["PanelData"], "Fit"],
         honest: bool, window: tuple[int, int]) -> tuple["Fit", "Fit | str | None"]:
    """The single run of ``name`` (TWFE: the static fit and the event study, or why the latter failed)."""
    options = options_for(name, p.options)
    if not honest:
        options = options.model_copy(update={"honest_did": False})
    q = replace(p, estimator=name, options=options, leads=None, lags=None)
    if name != "twfe":
        return fit_one(q), None
    static = fit_one(q)
    try:
        return static, fit_one(replace(q, leads=window[0], lags=window[1]))
    except (DataError, EstimationError) as exc:  # the static coefficient still reports
        return static, exc.message
    except np.linalg.LinAlgError as exc:
        return static, f"a linear system of the event study is singular ({exc})"


def fit_all(p: "PanelData", study: "Study", seed: int, jobs: int, fit_one: Callable[["PanelData"], "Fit"]) -> "Fit":
    from causalcli.designs.base import Fit
    from causalcli.designs.did.synthetic_did import fit_synthetic_did, synthetic_did_reason

    wanted = p.options.headline or HEADLINE_ORDER[0]
    window = event_window(p, study.design.event_study)
    fits: dict[str, Fit] = {}
    event_studies: dict[str, Fit | str | None] = {}
    left_out: dict[str, str] = {}
    for name in COMPARED:
        reason = synthetic_did_reason(p, study) if name == "synthetic_did" else _cannot_run(p, study, name)
        if reason is not None:
            left_out[name] = reason
            continue
        try:
            if name == "synthetic_did":
                fits[name] = fit_synthetic_did(p, study, seed, jobs)
            else:
                fits[name], event_studies[name] = _run(p, study, name, fit_one, name == wanted, window)
        except (DataError, EstimationError) as exc:
            left_out[name] = exc.message
        except np.linalg.LinAlgError as exc:
            left_out[name] = f"a linear system of the estimator is singular ({exc})"
    headline = next((h for h in (wanted, *HEADLINE_ORDER) if h in fits), None)
    if headline is None:
        raise EstimationError("no estimator of estimator: all can run on this panel: " +
                              "; ".join(f"{k}: {v}" for k, v in left_out.items()))
    if headline != wanted and p.options.honest_did:  # the fallback ran without its honest-DiD sets: rerun
        fits[headline], event_studies[headline] = _run(p, study, headline, fit_one, True, window)
    main = fits[headline]
    effects: list[Estimate] = []
    for name, f in fits.items():
        effects.append(replace(f.estimate, label=f"{name}/att"))
        dynamic = event_studies.get(name)
        if isinstance(dynamic, str):
            left_out[f"{name}/event_time"] = dynamic
            continue
        effects += [replace(e, label=f"{name}/{e.label}") for e in (dynamic or f).effects
                    if (e.label or "").startswith("event_time=")]
    diagnostics = dict(main.diagnostics)
    diagnostics["comparison"] = _summary(p, study, fits, left_out, headline, wanted, window)
    warnings = list(main.warnings)
    if headline != wanted:
        warnings.append(f"the headline is {headline}'s overall effect: {wanted} cannot run ({left_out[wanted]})")
    for name, reason in left_out.items():
        warnings.append(f"{name} is left out of the comparison: {reason}")
    for name, f in fits.items():
        warnings += [f"{name}: {w}" for w in f.warnings if name != headline and w not in main.warnings]
    refute_on = replace(p, estimator=headline, options=options_for(headline, p.options), leads=None, lags=None)
    return Fit("all", "att", main.estimate, main.n, effects=effects, diagnostics=diagnostics, checks=main.checks,
               warnings=list(dict.fromkeys(warnings)), refute_on=refute_on)


def _summary(p: "PanelData", study: "Study", fits: dict[str, "Fit"], left_out: dict[str, str], headline: str,
             wanted: str, window: tuple[int, int]) -> dict[str, Any]:
    """``diagnostics.comparison``: each estimator's overall effect and pre-trend p-value, what was left out and
    why, and how far apart the overall effects are."""
    estimators: dict[str, Any] = {}
    for name, f in fits.items():
        e = f.estimate
        pre = f.diagnostics.get("pre_trend") or {}
        estimators[name] = {"estimate": e.value, "std_error": e.std_error, "ci_lower": e.ci_lower,
                            "ci_upper": e.ci_upper, "inference": e.inference,
                            "overall": OVERALL[name].format(aggregation=p.options.aggregation),
                            "pre_trend_p_value": pre.get("p_value"), "rows_used": f.n.get("used")}
    values = {k: v["estimate"] for k, v in estimators.items()}
    low, high = min(values, key=values.__getitem__), max(values, key=values.__getitem__)
    se = fits[headline].estimate.std_error
    spread = {"lowest": low, "highest": high, "range": values[high] - values[low],
              "range_in_headline_standard_errors": (values[high] - values[low]) / se if se else None,
              "note": "descriptive: the estimators share the data, so their differences are not independent draws"}
    return {"headline": headline, "headline_requested": wanted,
            "headline_rule": "options.headline, else callaway_santanna; when it cannot run, the first of "
                             f"{', '.join(HEADLINE_ORDER)} that does",
            "estimators": estimators, "left_out": left_out, "spread": spread,
            "twfe_event_window": {"leads": window[0], "lags": window[1],
                                  "source": "design.event_study" if study.design.event_study else
                                            "every relative period of the panel"},
            "same_panel": "every estimator on the same units and rows (units treated from the first period "
                          "dropped); each number equals that of its single run (estimator: <name>)"}
