"""The design section of a regression-discontinuity starter spec: running variable, cutoff, take-up.

Without this builder init wrote `method: rdd` with no `running` and the score among the covariates, and
validate answered "required key is missing" (the U.S. Senate data of rdrobust: `margin`, cutoff 0).
"""

from __future__ import annotations

from causalcli.data.table import quote_identifier as q
from causalcli.spec.placeholders import TODO
from causalcli.starter.columns import screen_columns
from causalcli.starter.profile import DataProfile, norm, plain, show
from causalcli.starter.roles import id_like, treated_expr
from causalcli.starter.text import Starter

# column names that suggest a running variable: a score, a vote margin, a distance to a border or threshold
RUNNING_WORDS = ("running", "forcing", "score", "margin", "distance", "rating")
RUNNING_MIN_VALUES = 20  # a running variable takes many values; a 0/1 flag or a few levels is not one


def build_rdd(data: DataProfile, spec: dict, d: dict, st: Starter, treatment: str | None, outcome: str) -> None:
    """design.running (a numeric column named like a score or margin, else TODO); design.cutoff (0 when the
    running variable takes both signs, as a vote margin or a centred score does, else TODO); --treatment as
    the take-up of a fuzzy design unless it is exactly the running variable's side of the cutoff (sharp);
    the other numeric columns as covariates, each checked for balance at the cutoff."""
    spec.pop("treatment", None)  # an RD design's treatment is the cutoff rule, or the take-up column (fuzzy)
    numeric = [c for c in data.types if c not in (treatment, outcome) and data.kind(c) in ("integer", "numeric")
               and data.distinct[c] >= RUNNING_MIN_VALUES and not id_like(c)]
    named = [c for c in numeric if norm(c).startswith(RUNNING_WORDS) or any(
        w in norm(c).split("_") for w in (*RUNNING_WORDS, "dist", "x"))]
    running = named[0] if named else None
    threshold = None if running or not treatment else _threshold(data, treatment, numeric)
    cutoff = None
    if threshold:
        running, cutoff, below, between = threshold
        side = "<" if below else ">="
        st.guessed.append(f"design.running: {running} (the rows {treatment} treats are exactly those with {running} {side} "
                          f"{cutoff:g})")
        st.guessed.append(f"design.cutoff: {cutoff:g} ({treatment} switches between {between})")
    elif running:
        st.guessed.append(f"design.running: {running} (named like a score or margin, {data.distinct[running]:,} "
                          "values)")
        lo, hi = data.sql(f"SELECT min({q(running)}), max({q(running)}) FROM d")[0]
        if lo < 0 < hi:
            cutoff = 0
            st.guessed.append(f"design.cutoff: 0 ({running} runs from {show(plain(lo))} to {show(plain(hi))}: "
                              "a margin or a centred score)")
        else:
            st.notes.append(f"set design.cutoff: the threshold of {running} (its values run from {show(plain(lo))} "
                            f"to {show(plain(hi))}); rows at or above it are treated")
    else:
        shown = ", ".join(numeric[:8]) + (f" and {len(numeric) - 8} more" if len(numeric) > 8 else "")
        st.notes.append("set design.running (the score whose threshold assigns treatment) and design.cutoff"
                        + (f"; numeric columns with many values here: {shown}" if numeric else "")
                        + ("; then remove the running variable from covariates" if numeric else ""))
    d["running"] = running or TODO
    d["cutoff"] = TODO if cutoff is None else cutoff
    if treatment:
        _take_up(data, d, st, treatment, running, cutoff)
    taken = {c for c in (treatment, outcome, running) if c}
    candidates = [c for c in data.types if c not in taken]
    # each covariate is an outcome of its own RD (balance), never a regressor: no rank, arm or missing-share rule
    covariates, _ = screen_columns(data, candidates, None, outcome, st.left_out, allow_text=False,
                                   rank_check=False, arm_check=False, missing_check=False)
    spec["covariates"] = covariates
    spec["categorical"] = []
    if covariates:
        st.notes.append("covariates are not adjusted for: each is checked for a jump at the cutoff "
                        "(covariate_balance); keep those measured before the running variable")


def _take_up(data: DataProfile, d: dict, st: Starter, treatment: str, running: str | None,
             cutoff: float | None) -> None:
    """--treatment in an RD design: nothing when it equals `running >= cutoff` on every row (sharp), else the
    take-up column of a fuzzy design (estimand late)."""
    on = treated_expr(data, treatment)
    if on is not None and running and cutoff is not None:
        differ = data.sql(f"SELECT count(*) FROM d WHERE {q(running)} IS NOT NULL AND {q(treatment)} IS NOT NULL "
                          f"AND {on} <> ({q(running)} >= {cutoff})")[0][0]
        if differ == 0:
            st.notes.append(f"{treatment} is exactly {running} >= {cutoff:g} on every row: a sharp design, "
                            "so it is not written (the cutoff defines treatment)")
            return
        if differ == data.sql(f"SELECT count(*) FROM d WHERE {q(running)} IS NOT NULL AND {q(treatment)} IS NOT NULL")[0][0]:
            st.notes.append(f"{treatment} is exactly {running} < {cutoff:g}: treated below the cutoff, so it stays as "
                            f"design.fuzzy; its jump of -1 gives the effect of {treatment} its sign (a sharp design "
                            "reports the jump above minus below, the opposite)")
    d["fuzzy"] = treatment
    d["estimand"] = "late"
    st.guessed.append(f"design.fuzzy: {treatment} (the take-up; estimand late, the effect on those the cutoff "
                      "moves)" + ("" if cutoff is not None and running else
                                  f"; if {treatment} is exactly the side of the cutoff, remove design.fuzzy"))


def _threshold(data: DataProfile, treatment: str, numeric: list[str]) -> tuple[str, float, bool, str] | None:
    """(running, cutoff, treated below, the two values it lies between) for the first column whose values the
    binary treatment splits exactly at one point (a vote share and the win), else None; the cutoff is the
    roundest number at or below the side's least value and above the other side's greatest."""
    on = treated_expr(data, treatment)
    if on is None or not numeric:
        return None
    parts = []
    for c in numeric:
        x = q(c)
        parts += [f"max({x}) FILTER (WHERE NOT {on})", f"min({x}) FILTER (WHERE {on})",
                  f"max({x}) FILTER (WHERE {on})", f"min({x}) FILTER (WHERE NOT {on})"]
    row = data.sql(f"SELECT {', '.join(parts)} FROM d WHERE {q(treatment)} IS NOT NULL")[0]
    for i, c in enumerate(numeric):
        off_max, on_min, on_max, off_min = row[4 * i:4 * i + 4]
        if None in (off_max, on_min, on_max, off_min):
            continue
        for below, lo, hi in ((False, off_max, on_min), (True, on_max, off_min)):
            if lo < hi:
                return c, _roundest(float(lo), float(hi)), below, f"{show(plain(lo))} and {show(plain(hi))}"
    return None


def _roundest(lo: float, hi: float) -> float:
    """The number with the fewest decimals in (lo, hi]: 0.5 between 0.499875 and 0.500231."""
    import math

    for places in range(-6, 16):
        step = 10.0 ** -places
        value = round(math.floor(lo / step + 1) * step, max(places, 0))
        if lo < value <= hi:
            return plain(value)
    return plain(hi)
