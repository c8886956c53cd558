"""The design section of a starter spec, one builder per kind of design: cross-section (matching,
weighting, dml), difference-in-differences, synthetic control, experiment.

Each builder fills ``spec`` and its ``design`` mapping ``d`` in place and records in ``st`` what
it guessed, left out or could not tell.
"""

from __future__ import annotations

from typing import Any

from causalcli.data.table import quote_identifier as q
from causalcli.spec.placeholders import TODO
from causalcli.starter.columns import WEIGHT_NAME, screen_columns
from causalcli.starter.profile import DataProfile, norm, plain, show, sql_literal
from causalcli.starter.series import (guess_seasonality, month_dummies, note_gaps, one_row_per_period, screen_controls,
                                      series_dates)
from causalcli.starter.roles import (
    CLUSTER_NAMES, CONTROL_NAMES, guess_cohort, guess_panel, id_like, needs_treated_value, time_like, treated_expr,
    several_rows_per_cell, treated_of, year_and_period,
)
from causalcli.starter.estimand import choose_estimand
from causalcli.starter.text import Starter

UNIT_CODE_ENDINGS = ("code", "no", "num", "nr", "number", "fip", "fips", "id", "idx", "index")


def build_cross_section(data: DataProfile, spec: dict, d: dict, st: Starter, treatment: str | None, outcome: str) -> None:
    candidates = [c for c in data.types if c not in (treatment, outcome)]
    covariates, categorical = screen_columns(data, candidates, treatment, outcome, st.left_out)
    spec["covariates"] = covariates
    spec["categorical"] = categorical
    note = _incomplete_rows(data, [c for c in (treatment, outcome) if c], covariates)
    if note:
        st.notes.append(note)
    for note in (_maybe_codes(data, covariates, categorical), weights_note(covariates)):
        if note:
            st.notes.append(note)
    if treatment and d["estimand"] == "ate":
        choose_estimand(data, d, st, treatment, covariates, categorical)


CODE_LEVELS = (3, 10)  # a whole-number covariate with this many distinct values may be a category's codes


def _maybe_codes(data: DataProfile, covariates: list[str], categorical: list[str]) -> str | None:
    """Numeric covariates of a few whole numbers, which may code categories (NHEFS education 1-5, exercise 0-2):
    init cannot tell codes from amounts (children 0-4), so it names them rather than choosing."""
    lo, hi = CODE_LEVELS
    codes = [(c, data.distinct[c]) for c in covariates
             if c not in categorical and data.kind(c) == "integer" and lo <= data.distinct[c] <= hi]
    if not codes:
        return None
    listed = ", ".join(f"{c} ({k} values)" for c, k in codes)
    return (f"{listed} hold{'s' * (len(codes) == 1)} a few whole numbers, read as amounts (one slope each); "
            "if they code categories (levels of education, regions), list them under categorical: each level "
            "then gets its own coefficient")


def weights_note(covariates: list[str]) -> str | None:
    """A covariate named like an observation weight (Card's NLS sampling ``weight``): say where it would go."""
    named = [c for c in covariates if WEIGHT_NAME.fullmatch(norm(c))]
    if not named:
        return None
    return (f"{named[0]} is named like an observation weight: if it is one (sampling or frequency weights), move it "
            f"from covariates to the top-level key weights: {named[0]}; if it is a measurement (a body weight), keep it")


def _incomplete_rows(data: DataProfile, roles: list[str], covariates: list[str]) -> str | None:
    """How many rows estimate will drop for a missing value in the kept columns, and the covariates that cost
    most: each column may miss under half of the rows, and together they can still drop many (card.csv: 47%)."""
    def missing(c: str) -> str:
        return f"{q(c)} IS NULL" + (f" OR isnan({q(c)})" if c in data.nan else "")

    columns = [*roles, *covariates]
    complete = data.sql(f"SELECT count(*) FROM d WHERE NOT ({' OR '.join(missing(c) for c in columns)})")[0][0]
    if complete == data.rows:
        return None
    worst = sorted(((data.rows - data.present[c] + data.nan.get(c, 0), c) for c in covariates), reverse=True)
    named = ", ".join(f"{c} {k:,}" for k, c in worst[:4] if k)
    return (f"estimate will use the {complete:,} of {data.rows:,} rows complete in the treatment, the outcome and "
            f"these covariates, and drop the others" + (f" (rows missing, by covariate: {named})" if named else ""))


def _panel_keys(data: DataProfile, d: dict, st: Starter, treatment: str | None, outcome: str) -> tuple:
    """design.unit and design.time of a panel design, guessed from the data (TODO where they cannot be)."""
    unit, time, why = guess_panel(data, {c for c in (treatment, outcome) if c})
    d["unit"] = unit or TODO
    d["time"] = time or TODO
    if unit and time:
        st.guessed.append(f"design.unit: {unit}, design.time: {time} ({why})")
    return unit, time


def _build_cross_sections(data: DataProfile, spec: dict, d: dict, st: Starter, treatment: str | None,
                          time: str) -> None:
    """Repeated cross-sections (kielmc: each house sold once, in 1978 or 1981): the 2x2 without a unit, the group
    a 0/1 column whose rows are treated from the first treated period on, exactly as the treatment says."""
    del d["unit"]
    d["estimator"] = "2x2"
    d["group"] = TODO
    spec["covariates"] = []
    st.notes.append("no unit: each row is read as a different person or firm seen once (repeated cross-sections), "
                    "compared through design.group; for a panel, set design.unit and remove design.group")
    if treatment:
        found = _group_of(data, spec, treatment, time)
        if found:
            d["group"] = found[0]
            st.guessed.append(f"design.group: {found[0]} (0/1, and {treatment} = 1 exactly in its rows from {time} "
                              f"{show(found[1])} on)")
        return
    # No --treatment: a pair of 0/1 columns, the treated-period indicator and its group (kielmc's y81nrinc =
    # nearinc x y81), taken only when exactly one pair fits
    binary = [c for c in _binary_columns(data, spec, time)][:MAX_PAIR_SEARCH]
    pairs = [(t, found) for t in binary if (found := _group_of(data, spec, t, time, binary))]
    if len(pairs) == 1:
        t, (g, start) = pairs[0]
        spec.update({k: v for k, v in [("treatment", t), *((k, spec.pop(k)) for k in list(spec)
                                                          if k not in ("version", "name", "data"))]})
        d["group"] = g
        st.guessed.append(f"treatment: {t} and design.group: {g} ({t} = 1 exactly in the rows of {g} = 1 from "
                          f"{time} {show(start)} on: the treated group after the change)")


MAX_PAIR_SEARCH = 40  # 0/1 columns tried as the treatment when none is given (a query per pair)


def _binary_columns(data: DataProfile, spec: dict, time: str) -> list[str]:
    """The integer or boolean columns holding exactly the values 0 and 1, outcome and time aside."""
    return [c for c in data.types if c not in (spec["outcome"], time) and data.kind(c) in ("integer", "boolean")
            and data.sql(f"SELECT count(*) = count(*) FILTER (WHERE CAST({q(c)} AS DOUBLE) IN (0, 1)) AND "
                         f"count(DISTINCT {q(c)}) = 2 FROM d")[0][0]]


def _group_of(data: DataProfile, spec: dict, treatment: str, time: str,
              binary: list[str] | None = None) -> tuple[str, Any] | None:
    """The 0/1 column whose rows are treated from the first treated period on, exactly as ``treatment`` says (and
    that has untreated rows before it), with that period; or None."""
    treated = treated_expr(data, treatment)
    if treated is None:
        return None
    start = data.sql(f"SELECT min({q(time)}) FROM d WHERE {treated}")[0][0]
    if start is None:
        return None
    for c in (binary if binary is not None else _binary_columns(data, spec, time)):
        if c == treatment:
            continue
        g = f"CAST({q(c)} AS DOUBLE) = 1"
        if data.sql(f"SELECT count(*) FILTER (WHERE coalesce({treated}, false) <> ({g} AND {q(time)} >= "
                    f"{sql_literal(start)})) = 0 AND count(*) FILTER (WHERE {g} AND {q(time)} < "
                    f"{sql_literal(start)}) > 0 FROM d")[0][0]:
            return c, start
    return None


def build_did(data: DataProfile, spec: dict, d: dict, st: Starter, treatment: str | None, outcome: str) -> None:
    unit, time = _panel_keys(data, d, st, treatment, outcome)
    taken = {c for c in (treatment, outcome) if c}
    if time and not unit:
        st.guessed.append(f"design.time: {time} (named like a period); no column is unique per unit x {time}")
        _build_cross_sections(data, spec, d, st, treatment, time)
        cells = several_rows_per_cell(data, time, taken)
        if cells:
            st.notes.append(cells)
        return
    if not (unit or time):
        st.notes.append("if each row is a different person or firm seen once (repeated cross-sections), remove "
                        "design.unit and design.cohort and set estimator: 2x2, design.time (the before/after "
                        "column) and design.group (the 0/1 column of the treated group)")
    roles = {c for c in (unit, time) if c}
    cohort = guess_cohort(data, unit, time, taken | roles) if unit and time else None
    if cohort:
        roles.add(cohort)
    treated = treated_expr(data, treatment) if treatment else None
    time_varying = bool(treatment and unit and not data.constant_within(treatment, unit))
    if treatment and unit and not time_varying:
        del spec["treatment"]
        st.notes.append(f"treatment {treatment!r} is constant within each {unit}: an ever-treated indicator, not "
                        "the treated-period indicator DiD needs, so it is left out and the cohort defines treatment")
        roles.add(treatment)
    if treatment is None or not time_varying:
        d["cohort"] = cohort or TODO
        if cohort:
            st.guessed.append(f"design.cohort: {cohort} (named like a first treated period, constant within {unit})")
    elif cohort:
        st.left_out[cohort] = "the cohort (first treated period): the treatment defines timing, so it is no covariate"
    if not (unit and time):
        spec["covariates"] = []
        return
    for c in data.types:
        if (c not in taken | roles and norm(c) in CLUSTER_NAMES and 2 <= data.distinct[c] < data.distinct[unit]
                and data.constant_within(c, unit)):
            d["cluster"] = c
            roles.add(c)
            st.guessed.append(f"design.cluster: {c} (named like a cluster, constant within {unit}, "
                              f"{data.distinct[c]} values)")
            break
    # Staggered adoption (several first-treated periods, treatment never switching off): Callaway-Sant'Anna,
    # since TWFE then compares later- with earlier-treated units (Goodman-Bacon 2021).
    cohorts, never, absorbing, smallest = None, None, False, None
    if d.get("cohort") not in (None, TODO):
        g = f"coalesce(CAST({q(cohort)} AS DOUBLE), 0)"
        cohorts, never = data.sql(f"SELECT count(DISTINCT {g}) FILTER (WHERE {g} > 0), "
                                  f"count(DISTINCT {q(unit)}) FILTER (WHERE {g} = 0) FROM d")[0]
        smallest = data.sql(f"SELECT min(n) FROM (SELECT {g} AS g_, count(DISTINCT {q(unit)}) AS n FROM d "
                            f"WHERE {g} > 0 GROUP BY g_)")[0][0]
        absorbing = True
    elif treated is not None and time_varying:
        cohorts, never = data.sql(
            f"SELECT count(DISTINCT first) FILTER (WHERE first IS NOT NULL), count(*) FILTER (WHERE first IS NULL) "
            f"FROM (SELECT min({q(time)}) FILTER (WHERE {treated}) AS first FROM d GROUP BY {q(unit)})")[0]
        smallest = data.sql(f"SELECT min(n) FROM (SELECT first, count(*) AS n FROM (SELECT min({q(time)}) FILTER "
                            f"(WHERE {treated}) AS first FROM d GROUP BY {q(unit)}) WHERE first IS NOT NULL "
                            "GROUP BY first)")[0][0]
        absorbing = not data.sql(
            f"SELECT 1 FROM (SELECT {treated} AS on_, bool_or({treated}) OVER (PARTITION BY {q(unit)} ORDER BY "
            f"{q(time)} ROWS BETWEEN UNBOUNDED PRECEDING AND 1 PRECEDING) AS before FROM d) "
            "WHERE before AND NOT on_ LIMIT 1")
    if absorbing and cohorts and cohorts >= 2:
        d["estimator"] = "callaway_santanna"
        st.guessed.append(f"design.estimator: callaway_santanna ({cohorts} treatment cohorts: staggered adoption, "
                          "where TWFE compares later- with earlier-treated units)")
        if not never:
            d["options"] = {"control_group": "not_yet_treated"}
            st.guessed.append("design.options.control_group: not_yet_treated (no unit is never treated)")
    else:
        d["estimator"] = "twfe"
    candidates = [c for c in data.types if c not in taken | roles and c not in st.left_out]
    if d["estimator"] == "twfe":
        # A column constant within each unit (or period) is absorbed by the unit (period) fixed effects.
        for c in list(candidates):
            if data.distinct[c] <= 1:
                continue
            for within, effects in ((unit, "unit"), (time, "period")):
                if data.constant_within(c, within):
                    st.left_out[c] = f"constant within each {within} (absorbed by the {effects} fixed effects)"
                    candidates.remove(c)
                    break
    else:
        candidates = _drop_unit_codes(data, unit, candidates, st.left_out)
    for c in list(candidates):
        # jtrain: clemploy, clsales (changes from the year before) are empty in 1987; keeping them drops that
        # year from the panel (with the other gaps, 82 of 471 rows were left)
        empty = data.sql(f"SELECT {q(time)} FROM d WHERE {q(time)} IS NOT NULL AND {q(unit)} IS NOT NULL "
                         f"GROUP BY {q(time)} HAVING count({q(c)}) = 0 ORDER BY 1 LIMIT 1")
        if empty and data.present[c] > 0:
            st.left_out[c] = (f"empty in every row of {time} {show(empty[0][0])} (a change or lag from the period "
                              "before?): that period would be dropped from the panel")
            candidates.remove(c)
    arm_treatment = treatment if time_varying else None
    covariates, _ = screen_columns(data, candidates, arm_treatment, outcome, st.left_out, allow_text=False)
    if d.get("cohort") not in (None, TODO):
        covariates = _without_ever_treated(data, covariates, d["cohort"], st)
    if d["estimator"] == "callaway_santanna" and never and len(covariates) + 2 > never:
        # Callaway-Sant'Anna regresses on the covariates over the never-treated units of each group-time
        # cell: with as many covariates as those units it is singular (castle: 124 columns, 29 units).
        shown = ", ".join(covariates[:10]) + (f" and {len(covariates) - 10} more" if len(covariates) > 10 else "")
        st.notes.append(f"covariates: none kept of {len(covariates)} candidates ({shown}): callaway_santanna "
                        f"regresses on them across the {never} never-treated units, which needs fewer covariates "
                        f"than units; add the few confounders measured before treatment that parallel trends need")
        covariates = []
    if d["estimator"] == "callaway_santanna" and covariates and smallest and smallest <= len(covariates) + 1:
        # the doubly robust default fits a propensity logit per cohort; a cohort of one unit (castle: 2006
        # and 2010) is separated by its covariates, and estimate stopped at "the propensity-score logit is
        # singular"; the outcome regression needs no propensity
        d.setdefault("options", {})["method"] = "reg"
        st.guessed.append(f"design.options.method: reg (the smallest cohort has {smallest} unit"
                          f"{'s' * (smallest != 1)}, too few for a propensity model on {len(covariates)} "
                          "covariate" + "s" * (len(covariates) != 1) + ")")
    # after the Callaway-Sant'Anna rule, which may keep none: castle's note named robbery_gun_r's missing rows
    for note in (_incomplete_rows(data, [c for c in (treatment, outcome) if c], covariates), weights_note(covariates)):
        if note:
            st.notes.append(note)
    spec["covariates"] = covariates


def _without_ever_treated(data: DataProfile, covariates: list[str], cohort: str, st: Starter) -> list[str]:
    """A 0/1 column equal to "the cohort is set" on every row (mpdta's treat) is the treated-group indicator the
    cohort already defines: as a covariate it is collinear with the groups (estimate stopped at "the outcome
    regression of the control units is singular")."""
    g = f"coalesce(CAST({q(cohort)} AS DOUBLE), 0) > 0"
    kept = []
    for c in covariates:
        if data.distinct[c] == 2 and not data.sql(
                f"SELECT count(*) FROM d WHERE CAST({q(c)} AS DOUBLE) IS DISTINCT FROM "
                f"CASE WHEN {g} THEN 1.0 ELSE 0.0 END")[0][0]:
            st.left_out[c] = f"1 exactly where {cohort} is set: the treated-group indicator the cohort defines"
            continue
        kept.append(c)
    return kept


def build_synthetic_control(data: DataProfile, spec: dict, d: dict, st: Starter, treatment: str | None, outcome: str) -> None:
    unit, time = _panel_keys(data, d, st, treatment, outcome)
    taken = {c for c in (treatment, outcome) if c}
    treated_unit, start = TODO, TODO
    if treatment:
        del spec["treatment"]
        expr = treated_expr(data, treatment)
        if expr and unit and time:
            units = data.sql(f"SELECT DISTINCT {q(unit)} FROM d WHERE {expr} ORDER BY 1 LIMIT 3")
            if len(units) == 1:
                u = units[0][0]
                first, lo = data.sql(f"SELECT min({q(time)}) FILTER (WHERE {expr}), min({q(time)}) FROM d "
                                     f"WHERE {q(unit)} = {sql_literal(u)}")[0]
                treated_unit = plain(u)
                st.guessed.append(f"design.treated_unit: {show(u)} (the one unit with {treatment} on)")
                if first is not None and first > lo:
                    start = plain(first)
                    st.guessed.append(f"design.treatment_start: {show(first)} (its first period with {treatment} on)")
                else:
                    st.notes.append(f"{show(u)} is treated from its first period: there is no pre-period to fit")
            elif units:
                from causalcli.starter.treated_units import several_treated

                treated_unit, start = several_treated(data, st, treatment, expr, unit, time, taken | {unit, time})
        st.notes.append(f"treatment {treatment!r} is not a key of synthetic_control: treated_unit and "
                        "treatment_start define who is treated and when")
    cohort = guess_cohort(data, unit, time, taken) if unit and time and treated_unit == TODO else None
    several = False
    if cohort:
        treated_unit, start, several = _adoption(data, unit, cohort, st)
    d["treated_unit"] = treated_unit
    d["treatment_start"] = start
    roles = taken | {c for c in (unit, time, cohort) if c}
    if several or isinstance(treated_unit, list):  # the partially pooled fit takes no predictors
        return
    candidates = [c for c in data.types if c not in roles]
    if unit:
        candidates = _drop_unit_codes(data, unit, candidates, st.left_out)
    # Predictors are pre-period averages: missing years are skipped, so no missing-share rule here;
    # neither treatment-arm nor rank rules apply (V weights them, one treated unit).
    predictors, _ = screen_columns(data, candidates, None, outcome, st.left_out, allow_text=False,
                                   rank_check=False, arm_check=False, missing_check=False)
    d["predictors"] = predictors
    if not predictors:  # validate refuses a fit with nothing to match donors on (organ_donations: State, quarter, Rate)
        del d["predictors"]
        d["special_predictors"] = [[outcome, TODO]]
        st.notes.append(f"no other column to match donors on: set design.special_predictors to {outcome} in "
                        f"pre-treatment periods, one [{outcome}, period] pair each (or estimator: synthetic_did, "
                        "which needs none)")


def _adoption(data: DataProfile, unit: str, cohort: str, st: Starter) -> tuple[Any, Any, bool]:
    """treated_unit and treatment_start from a column of adoption periods (empty or 0: never treated):
    one adopting unit takes its period, several take the column (staggered adoption)."""
    adopted = (f"{q(cohort)} IS NOT NULL" if data.kind(cohort) == "time"
               else f"coalesce(CAST({q(cohort)} AS DOUBLE), 0) > 0")
    rows = data.sql(f"SELECT {q(unit)}, min({q(cohort)}) FROM d WHERE {adopted} GROUP BY 1 ORDER BY 1")
    st.left_out[cohort] = "the adoption period (treatment_start), not a predictor"
    if not rows:
        st.notes.append(f"{cohort} names no adopting unit: set design.treated_unit")
        return TODO, TODO, False
    if len(rows) == 1:
        st.guessed.append(f"design.treated_unit: {show(rows[0][0])}, design.treatment_start: {show(rows[0][1])} "
                          f"(the one unit with {cohort} set)")
        return plain(rows[0][0]), plain(rows[0][1]), False
    st.guessed.append(f"design.treated_unit: the {len(rows)} units with {cohort} set, design.treatment_start: "
                      f"{cohort} (staggered adoption: the partially pooled synthetic control, which takes no "
                      "predictors; estimator: synthetic_did is the other choice)")
    return [plain(u) for u, _ in rows], cohort, True


def _drop_unit_codes(data: DataProfile, unit: str, candidates: list[str], left_out: dict[str, str]) -> list[str]:
    """Candidates without another numbering of the units (basque's regionno beside regionname: consecutive
    integers, one per unit, constant within it): a label, which would match donors or units by their number."""
    n_units = data.distinct.exact_count(unit)
    kept = []
    for c in candidates:
        if (data.kind(c) == "integer" and data.distinct[c] >= 2 and data.distinct.exact_count(c) == n_units
                and data.constant_within(c, unit)):
            lo, hi = data.sql(f"SELECT min({q(c)}), max({q(c)}) FROM d")[0]
            if hi - lo + 1 == n_units or id_like(c) or norm(c).endswith(UNIT_CODE_ENDINGS):
                left_out[c] = f"numbers the units (one value per {unit}, {lo:g} to {hi:g}): a label, not a measurement"
                continue
        kept.append(c)
    return kept


def build_experiment(data: DataProfile, spec: dict, d: dict, st: Starter, treatment: str | None, outcome: str) -> None:
    del d["estimand"]  # one estimand (ate); the design's default
    levels = [r[0] for r in data.sql(f"SELECT DISTINCT {q(treatment)} FROM d WHERE {q(treatment)} IS NOT NULL "
                                     "ORDER BY 1 LIMIT 101")]
    control = TODO
    for wanted in CONTROL_NAMES:
        match = [v for v in levels if str(plain(v)).strip().lower() == wanted]
        if match:
            control = plain(match[0])
            st.guessed.append(f"design.control: {show(control)} (a level of {treatment} named like a control arm)")
            break
    if control == TODO:
        st.notes.append(f"no level of {treatment} is named like a control arm (levels: "
                        f"{', '.join(show(v) for v in levels[:10])}); set design.control")
    d["control"] = control
    unassigned = data.rows - data.present[treatment]
    if unassigned:  # thornton_hiv: 1,919 of 4,820 people were never assigned an incentive
        st.notes.append(f"{unassigned:,} of {data.rows:,} rows have no value of {treatment}: estimate drops them "
                        f"(data.filter: '{q(treatment)} IS NOT NULL' says so in the spec)")
    metric: dict[str, Any] = {"name": outcome, "outcome": outcome}
    stem = norm(outcome)
    for c in data.types:
        if c not in (treatment, outcome) and data.kind(c) in ("integer", "numeric") and norm(c) in (
                f"pre_{stem}", f"{stem}_pre", f"baseline_{stem}", f"{stem}_baseline", f"lag_{stem}", f"{stem}_lag",
                f"{stem}_covariate", f"{stem}_pre_period", f"pre_period_{stem}"):
            metric["covariate"] = c
            st.guessed.append(f"design.metrics[0].covariate: {c} (named like the pre-experiment {outcome}: CUPED)")
            break
    d["metrics"] = [metric]
    spec.pop("outcome", None)
    _experiment_unit(data, d, st, treatment, {treatment, outcome, metric.get("covariate")})
    dates = [c for c in data.types if c not in (treatment, outcome) and data.kind(c) == "time" and data.distinct[c] >= 2]
    if dates:
        st.notes.append(f"{dates[0]} holds dates: design.time: {dates[0]} gives the cumulative effect by day, if it "
                        "is the day each unit entered the experiment")
    others = [c for c in data.types if c not in (treatment, outcome, metric.get("covariate")) and not id_like(c)
              and c not in UNIT_NAMES
              and data.kind(c) in ("integer", "numeric") and data.distinct[c] > 1 and data.distinct[c] < data.rows]
    if others:
        st.notes.append(f"other numeric columns, possible further metrics: {', '.join(others)}")
    st.notes.append("add design.expected_split with the planned allocation for the sample-ratio check")


# column names of the units an experiment randomises (beside names like *_id)
UNIT_NAMES = ("user", "users", "customer", "customers", "account", "member", "visitor", "client", "device",
              "cookie", "merchant", "seller", "buyer", "store", "shop", "household", "player", "driver", "rider")


def _experiment_unit(data: DataProfile, d: dict, st: Starter, treatment: str, taken: set) -> None:
    """design.unit: a column named like a user (or an identifier) that repeats over the rows, with the treatment
    constant within it: the rows (sessions, orders) are finer than the unit randomised, and a row-level analysis
    would understate every standard error."""
    for c in data.types:
        if (c in taken or data.kind(c) not in ("integer", "text") or not (norm(c) in UNIT_NAMES or id_like(c))
                or data.missing_share(c) > 0):
            continue
        units = data.distinct.exact_count(c)
        if not 2 <= units < data.rows:
            continue  # one row per unit (or a constant): the rows are the units
        if not data.constant_within(treatment, c):
            st.notes.append(f"rows repeat {c} ({units:,} values in {data.rows:,} rows) but {treatment} varies within "
                            f"it, so {c} is not the randomised unit; if it was, the assignment is broken")
            return
        d["unit"] = c
        st.guessed.append(f"design.unit: {c} ({data.rows:,} rows of {units:,} units, each in one arm: rows are "
                          f"summed per unit, with standard errors clustered on it)")
        return


# column names that suggest an instrument: a randomised assignment, invitation, offer or eligibility
INSTRUMENT_WORDS = ("assign", "instrument", "invit", "offer", "eligib", "lottery", "encourag", "nudge")


def build_iv(data: DataProfile, spec: dict, d: dict, st: Starter, treatment: str | None, outcome: str) -> None:
    """The covariates as for a cross-section, and design.instruments: those of ``init --instrument``, else a column
    named like a randomised assignment, else TODO; taken out of the covariates."""
    given = d.pop("instruments", None)  # init --instrument
    build_cross_section(data, spec, d, st, treatment, outcome)
    del d["estimand"]  # one estimand (late); the design's default
    covariates = spec.get("covariates") or []
    named = [c for c in data.types if c not in (treatment, outcome) and any(w in norm(c) for w in INSTRUMENT_WORDS)]
    if given:
        d["instruments"] = given
        for z in given:  # the user's instruments: never listed as columns left out of the covariates
            st.left_out.pop(z, None)
    elif named:
        d["instruments"] = named[:1]
        st.guessed.append(f"design.instruments: [{named[0]}] (named like an assignment or offer)")
    else:
        d["instruments"] = [TODO]
        binary = [c for c in covariates if data.distinct[c] == 2]
        st.notes.append("set design.instruments: the column(s) that move the treatment and reach the outcome only "
                        "through it, e.g. the randomised assignment when uptake is partial"
                        + (f" (two-valued columns here: {', '.join(binary[:8])})" if binary else "")
                        + "; remove them from covariates")
    codes_note = _maybe_codes(data, covariates, spec.get("categorical") or [])
    spec["covariates"] = [c for c in covariates if c not in d["instruments"]]
    spec["categorical"] = [c for c in spec.get("categorical") or [] if c not in d["instruments"]]
    if codes_note in st.notes:  # said of the covariates before the instruments left them (mroz: fatheduc, motheduc)
        st.notes.remove(codes_note)
        note = _maybe_codes(data, spec["covariates"], spec["categorical"])
        if note:
            st.notes.append(note)


def build_time_series(data: DataProfile, spec: dict, d: dict, st: Starter, treatment: str | None,
                      outcome: str) -> None:
    """design.time (a date column, or one named like a time), intervention TODO with the series' range, and the
    other numeric columns as candidate control series."""
    del d["estimand"]  # the effect on the affected series after the intervention; the design's own
    spec.pop("treatment", None)  # a time series has no treatment column: the intervention date says who is treated
    times = [c for c in data.types if c != outcome and data.kind(c) == "time"]
    dated = None if times else year_and_period(data, (outcome,))
    times += [c for c in data.types if c not in (outcome, *times) and time_like(c)]
    time = one_row_per_period(data, times)
    if dated:  # a year repeats over its quarters or months: their first days are the periods
        year, sub, months = dated
        time = next(n for n in ("date", "period_start", "period_date") if n not in data.types)
        month = f"CAST({q(sub)} AS INTEGER)" if months == 1 else f"CAST({q(sub)} AS INTEGER) * 3 - 2"
        expr = f"make_date(CAST({q(year)} AS INTEGER), {month}, 1)"
        spec["data"]["derive"] = {time: expr}
        period = "quarter" if months == 3 else "month"
        st.guessed.append(f"data.derive.{time}: the first day of each {period}, from {year} and {sub} ({year} alone "
                          "repeats, so it cannot be the series' period)")
    d["time"] = time or TODO
    if time:
        at = expr if dated else q(time)
        first, last = data.sql(f"SELECT min({at}), max({at}) FROM d")[0]
        why = ("derived above" if dated else f"one row each, where {times[0]} repeats" if time != times[0]
               else "a date column, or named like a time")
        st.guessed.append(f"design.time: {time} ({why})")
        st.notes.append(f"set design.intervention: the first affected period, a value of {time} between "
                        f"{show(plain(first))} and {show(plain(last))}")
    else:
        st.notes.append("set design.time (the date column) and design.intervention (the first affected period)")
    d["intervention"] = TODO
    days = None if dated or not time else series_dates(data, time)
    if dated:
        season = 12 // months
        if data.sql("SELECT count(*) FROM d")[0][0] >= 4 * season:
            d["seasonality"] = season
            st.guessed.append(f"design.seasonality: {season} ({period}ly dates: a year's cycle; remove it if the "
                              "outcome has none)")
    elif time and days:
        guess_seasonality(data, days, d, st)
    controls = [c for c in data.types if c not in (outcome, time, treatment, *(dated or ())[:2])
                and data.kind(c) in ("integer", "numeric") and data.distinct[c] > 1]
    months = month_dummies(data, controls)
    if months and "seasonality" not in d and data.rows >= 48:
        d["seasonality"] = 12
        st.guessed.append(f"design.seasonality: 12 (month dummies {months[0]}..{months[-1]}; remove it if the outcome "
                          "has no season)")
    left = {c: "a month dummy: design.seasonality models the months" for c in months}
    if time and not dated and data.distinct.exact_count(time) == data.rows:
        left.update(screen_controls(data, time, outcome, [c for c in controls if c not in left], times))
    left.update(_outcome_transforms(data, outcome, [c for c in controls if c not in left]))
    for c, why in left.items():
        st.left_out[c] = why
        controls.remove(c)
    if controls:
        d["controls"] = controls
        st.guessed.append(f"design.controls: {', '.join(controls)} (the other numeric columns)")
        st.notes.append("keep as controls only series the intervention cannot have moved (the `controls` check "
                        "tests each for a break at the intervention)")
    if days and time:
        note_gaps(data, time, days, [outcome, *controls], d, st)


def _outcome_transforms(data: DataProfile, outcome: str, columns: list[str]) -> dict[str, str]:
    """Columns that are a monotone function of the outcome (a copy, its log, a rescaling): as a control such a
    series carries the effect itself, and the counterfactual would follow the observed series."""
    import numpy as np

    frame = data.sample([outcome, *columns])
    out = {}
    for c in columns:
        pair = frame[[outcome, c]].dropna().astype(float).to_numpy()
        if np.unique(pair[:, 0]).size <= 2:
            continue
        pair = pair[np.argsort(pair[:, 0], kind="stable")]
        step_y, step_c = np.diff(pair[:, 0]), np.diff(pair[:, 1])
        if np.all(step_c[step_y == 0] == 0) and (np.all(step_c[step_y > 0] > 0) or np.all(step_c[step_y > 0] < 0)):
            out[c] = (f"a monotone function of the outcome {outcome!r} (a copy, its log, a rescaling?): it would "
                      "carry the effect")
    return out


def build_rdd(data: DataProfile, spec: dict, d: dict, st: Starter, treatment: str | None, outcome: str) -> None:
    from causalcli.starter.rdd import build_rdd as build

    build(data, spec, d, st, treatment, outcome)


BUILDERS = {"did": build_did, "synthetic_control": build_synthetic_control, "experiment": build_experiment,
            "iv": build_iv, "time_series": build_time_series, "rdd": build_rdd}


def build_design(design: str, data: DataProfile, spec: dict, d: dict, st: Starter, treatment: str | None,
                 outcome: str) -> None:
    """The section of ``design``: its own builder, else the cross-section one (matching, weighting, dml)."""
    BUILDERS.get(design, build_cross_section)(data, spec, d, st, treatment, outcome)


def build_treated_value(data: DataProfile, d: dict, st: Starter, treatment: str) -> None:
    """design.treated_value for a two-valued text treatment the data layer cannot code by itself."""
    if not needs_treated_value(data, treatment):
        return
    levels = sorted(r[0] for r in data.sql(f"SELECT DISTINCT {q(treatment)} FROM d WHERE {q(treatment)} "
                                           "IS NOT NULL"))
    on = treated_of(levels)
    d["treated_value"] = on[0] if on is not None else TODO
    if on is not None:
        st.guessed.append(f"design.treated_value: {on[0]} (of {treatment}'s values {levels[0]!r} and "
                          f"{levels[1]!r}: {on[1]})")
    else:
        st.notes.append(f"{treatment} holds {levels[0]!r} and {levels[1]!r}: set design.treated_value to the "
                        "treated one")
