"""Which columns a starter spec keeps as covariates (or predictors), and why it leaves out the others.

Rules for covariates (and synthetic-control predictors), applied in column order:

* not usable: dates, lists, text with more than ``CATEGORICAL_MAX_LEVELS`` levels;
* named like a post-treatment or outcome column (``post_``, ``_after``, the outcome's name up to
  transformation words: ``homicide`` beside ``l_homicide``);
* missing in more than half of the rows (every design drops incomplete rows);
* constant; an identifier (unique per row, named like one or consecutive integers); a row index
  pandas saved with the data (``__index_level_0__``, ``Unnamed: 0``);
* the same values as the treatment, the outcome or an earlier column;
* near-determined by a binary treatment: one arm (almost) all at one value that the other arm
  takes far less often, e.g. 401(k) participation beside eligibility (no one ineligible
  participates): a consequence of treatment, or a positivity failure, either way not a confounder;
* a category or a two-valued column with a level only one arm has (on the complete rows): the
  propensity logit separates there (NHEFS hf beside qsmk);
* collinear with the intercept, the treatment and the columns kept before it, found by a
  Gram-Schmidt pass over (a sample of) the standardised design matrix; the later column goes;
* with the kept columns, gives the outcome exactly (a part of it, e.g. wt82 for wt82 - wt71);
* TWFE: constant within unit or period (absorbed by the fixed effects);
* last, named with the outcome's time (the latest number of two or more digits in its name: tax82
  beside wt82_71).
"""

from __future__ import annotations

import math
import re
from typing import Any

from causalcli.data.table import quote_identifier as q
from causalcli.starter.profile import DataProfile, norm, show, sql_literal
from causalcli.starter.roles import id_like, treated_level

CATEGORICAL_MAX_LEVELS = 50
MISSING_MAX_SHARE = 0.5
# Residual share of a standardised column after projecting on the kept ones below which it is
# collinear. The estimators refuse a design whose normalised Gram matrix has a pivot below
# 1e-13 (models.logit._solve_spd); 1e-9 also catches columns that are collinear up to rounding
# of the stored values.
COLLINEAR_RESIDUAL = 1e-9
# Post-treatment rule: one arm has at most 1% of rows off its modal value, the other arm has at
# most 90% of rows at it, and independence would have put at least 10 rows of the first arm off it.
ARM_PURE_SHARE = 0.99
OTHER_ARM_MAX_SHARE = 0.9
EXPECTED_OFF_MIN = 10
# "post" as in after treatment, not post-secondary schooling or a post code (basque's school.post.high)
POST_PATTERN = re.compile(r"(^|_)(post(?!_(high|secondary|sec|graduate|grad|doc|doctoral|code|codes|office|school|"
                          r"college)(_|$))|after)(_|$)")
# castle doctrine's lead1..lead9, lag0..lag5: 0/1 dummies of periods relative to adoption, not confounders
# (kept as covariates, the lags absorb the effect); a many-valued lag1 (a lagged outcome) is not one
EVENT_TIME_DUMMY = re.compile(r"(lead|lag)_?\d+")
# observation (sampling, survey, frequency) weights belong under the top-level `weights:` key, not among the
# confounders; but "weight" is also a body weight, so init names such a column and leaves the choice to the user
WEIGHT_NAME = re.compile(r"((sample|sampling|survey|obs|observation|analytic|freq|frequency|person|household|pop|"
                         r"population)_?)?(weight|weights|wgt|wt)|perwt|hhwt|pweight|fweight|aweight|iweight")
PRE_PATTERN = re.compile(r"(^|_)(pre|lag|lagged|baseline|before|prior)(_|$)")
# A row index that pandas wrote with the data (to_parquet keeps a non-default index as
# __index_level_0__; to_csv writes an unnamed first column that read_csv calls "Unnamed: 0"). After a
# concat it repeats, so the "unique per row" rule misses it, and sorted by arm it acts as a confounder.
# DuckDB names that empty CSV header "column0" (only the first column counts: a headerless file has
# column0..columnN).
PANDAS_INDEX = re.compile(r"__index_level_\d+__|Unnamed: \d+")
TRANSFORM_WORDS = {"l", "ln", "log", "lg", "sq", "sqrt", "std", "z", "d", "diff", "delta", "pct", "share", "rate",
                   "raw", "level", "levels", "abs", "total", "tot", "mean", "avg"}


def screen_columns(data: DataProfile, candidates: list[str], treatment: str | None, outcome: str | None,
                   left_out: dict[str, str], *, allow_text: bool = True, rank_check: bool = True,
                   arm_check: bool = True, missing_check: bool = True) -> tuple[list[str], list[str]]:
    """(covariates, categorical) kept from ``candidates``; every other one goes into ``left_out`` with why."""
    import numpy as np

    kept: list[str] = []
    outcome_stem = norm(outcome) if outcome else ""
    outcome_time = _outcome_time(outcome) if outcome else None
    for c in candidates:
        kind = data.kind(c)
        n = norm(c)
        if kind in ("time", "other"):
            left_out[c] = f"type {data.types[c]} is neither numeric nor categorical"
        elif kind == "text" and (why := _numbers_as_text(data, c)):  # before the text rule: its advice fixes it
            left_out[c] = why
        elif kind == "text" and not allow_text:
            left_out[c] = "text (this design takes numeric columns only; encode levels as 0/1 columns)"
        elif kind == "text" and data.distinct[c] > CATEGORICAL_MAX_LEVELS:
            left_out[c] = f"text with {data.distinct[c]} levels (more than {CATEGORICAL_MAX_LEVELS}; an identifier?)"
        elif PANDAS_INDEX.fullmatch(c) or (c == "column0" and c == next(iter(data.types))
                                           and "column1" not in data.types):
            left_out[c] = "a row index saved by pandas with the data, not a measurement"
        elif POST_PATTERN.search(n):
            left_out[c] = "named like a post-treatment column (post/after)"
        elif EVENT_TIME_DUMMY.fullmatch(n) and data.distinct[c] == 2:
            left_out[c] = "a 0/1 lead or lag of the treatment's start (set by the treatment, not a confounder)"
        elif outcome_stem and _outcome_like(n, outcome_stem) and not PRE_PATTERN.search(n):
            left_out[c] = f"named like the outcome {outcome!r} (a post-treatment measure?)"
        elif missing_check and data.missing_share(c) > MISSING_MAX_SHARE:
            left_out[c] = f"missing in {data.missing_share(c):.0%} of rows (those rows would be dropped)"
        elif data.distinct[c] <= 1:
            value = data.sql(f"SELECT any_value({q(c)}) FROM d")[0][0]
            left_out[c] = "constant (" + ("empty" if value is None else f"every row is {show(value)}") + ")"
        # unique per row: more than rows - 1 values, counted exactly near that bound (DuckDB's HyperLogLog runs
        # 10-16% low on some unique columns: 13,588 ids of causaldata's close_elections_lmb counted 12,200)
        elif (kind in ("integer", "text") and (id_like(c) or kind == "text" or _consecutive(data, c))
              and not data.distinct.at_most(c, data.rows - 1)):
            left_out[c] = "unique per row (an identifier)"
        else:
            kept.append(c)
    if not kept:
        return [], []
    roles = [x for x in (treatment, outcome) if x]
    frame = data.sample([*roles, *kept])
    for c in kept:
        if frame[c].dtype == bool:
            frame[c] = frame[c].astype(float)
    dup = _duplicates(frame, kept, treatment, outcome)
    left_out.update(dup)
    kept = [c for c in kept if c not in dup]
    treated = None
    coding = treated_level(data, treatment) if treatment is not None and arm_check else None
    if coding is not None:
        treated = treated_vector(frame[treatment], coding)
        labels = _arm_labels(data, treatment, coding)
    if treated is not None:
        for c in list(kept):
            why = _arm_determined(frame[c], treated, c, treatment, labels)
            if why:
                left_out[c] = why
                kept.remove(c)
    categorical = [c for c in kept if data.kind(c) == "text"]
    if rank_check and kept:
        collinear = _collinear(frame, kept, categorical, treatment, outcome, np)
        left_out.update(collinear)
        kept = [c for c in kept if c not in collinear]
        categorical = [c for c in categorical if c in kept]
    if treated is not None and kept:
        _one_arm_levels(frame, kept, categorical, treated, treatment, outcome, labels, left_out, np)
        kept = [c for c in kept if c not in left_out]
        categorical = [c for c in categorical if c in kept]
    # last, so that a column the data show to be part of the outcome (wt82 of wt82_71) is named so
    for c in [c for c in kept if outcome_time in re.findall(r"\d+", c) and not PRE_PATTERN.search(norm(c))]:
        left_out[c] = (f"named with {outcome_time}, the time in the outcome's name {outcome!r}: measured "
                       "with the outcome, after treatment?")
        kept.remove(c)
    categorical = [c for c in categorical if c in kept]
    return kept, categorical


def _numbers_as_text(data: DataProfile, c: str) -> str | None:
    """Why a text column that mostly holds numbers (age with a '.' for missing, 6,825.50) is no covariate as it
    stands: as text it would be a category with a level per value; estimate refuses it as a covariate."""
    from causalcli.data.types import number_advice

    v = f"trim({q(c)})"
    # numbers with thousands separators, currency or percent signs count as numbers here (the advice says how)
    bare = f"regexp_replace({v}, '[,$€£%[:space:]]', '', 'g')"
    numbers, present = data.sql(f"SELECT count(TRY_CAST({bare} AS DOUBLE)), count(NULLIF({v}, '')) FROM d")[0]
    if not present or numbers < 0.9 * present:
        return None
    other = [r[0] for r in data.sql(f"SELECT {v} AS x, count(*) FROM d WHERE x <> '' AND TRY_CAST(x AS DOUBLE) IS NULL "
                                    "GROUP BY x ORDER BY 2 DESC, 1 LIMIT 3")]
    if not other:  # every value is a plain number: the data layer reads the column as numbers
        return None
    advice = number_advice(other[0], "covariate").replace("{column}", c.replace('"', '\\"'))
    k = data.sql(f"SELECT count(*) FROM d WHERE {v} <> '' AND TRY_CAST({v} AS DOUBLE) IS NULL")[0][0]
    return (f"numbers written as text, with {', '.join(map(repr, other))} in {k:,} row{'s' * (k != 1)}: {advice}; "
            "then add it back")


def _outcome_time(outcome: str) -> str | None:
    """The latest number of two or more digits in the outcome's name (82 in NHEFS's wt82_71, 78 in re78),
    read as when the outcome was measured: a covariate named with it (smkintensity82_71, tax82, unem78)
    is measured then too, after treatment. One-digit numbers are too often plain labels (y1, x1)."""
    numbers = [t for t in re.findall(r"\d+", outcome) if len(t) >= 2]
    return max(numbers, key=int) if numbers else None


def _unglued(word: str) -> str:
    """'lwage' -> 'wage', 'lnwage' -> 'wage', 'logwage' -> 'wage': a log prefix written without '_'."""
    for prefix in ("log", "ln", "l"):
        if word.startswith(prefix) and len(word) - len(prefix) >= 3:
            return word[len(prefix):]
    return word


def _outcome_like(name: str, stem: str) -> bool:
    """'log_re78' and 're78_log' are like 're78', 'homicide' like 'l_homicide', 'y_log' like 'y', 'wage' like
    'lwage' (card.csv); 're74' and 'yield' are not: the same words once transformation words (log, l, pct, ...)
    and glued log prefixes are set aside."""
    if "_" not in name and "_" not in stem and name != stem and (_unglued(name) == stem or name == _unglued(stem)):
        return True
    words = [w for w in name.split("_") if w not in TRANSFORM_WORDS]
    part = [w for w in stem.split("_") if w not in TRANSFORM_WORDS] or stem.split("_")
    return bool(words) and any(words[i:i + len(part)] == part for i in range(len(words) - len(part) + 1))


def _consecutive(data: DataProfile, c: str) -> bool:
    if data.kind(c) != "integer":
        return False
    lo, hi = data.sql(f"SELECT min({q(c)}), max({q(c)}) FROM d")[0]
    return hi - lo + 1 == data.rows


def treated_vector(values: Any, coding: tuple[str, Any]) -> Any:
    """The sample's treatment as 1.0/0.0, NaN where missing."""
    import numpy as np

    missing = values.isna().to_numpy()
    if coding[0] == "text":
        on = (values == coding[1]).to_numpy()
    else:
        on = values.astype(float).to_numpy() == 1
    return np.where(missing, np.nan, on.astype(float))


def _duplicates(frame: Any, kept: list[str], treatment: str | None, outcome: str | None) -> dict[str, str]:
    """Columns with the same values (numbers compared as floats, missing where missing) as an earlier one."""
    import numpy as np
    import pandas as pd

    def key(name: str) -> bytes:
        values = frame[name]
        if values.dtype.kind in "biuf":
            return b"n" + np.ascontiguousarray(values.astype(float).fillna(np.inf).to_numpy()).tobytes()
        return b"s" + pd.util.hash_pandas_object(values.astype(str).where(values.notna(), None),
                                                 index=False).to_numpy().tobytes()

    roles = {treatment: "the treatment", outcome: "the outcome"}
    first: dict[bytes, str] = {}
    for name in (treatment, outcome):
        if name:
            first.setdefault(key(name), name)
    out: dict[str, str] = {}
    for c in kept:
        k = key(c)
        if k in first:
            other = first[k]
            what = roles.get(other, repr(other))
            out[c] = f"the same values as {what}"
        else:
            first[k] = c
    return out


def _arm_labels(data: DataProfile, treatment: str, coding: tuple[str, Any]) -> tuple[str, str]:
    """How the untreated and treated arms print: '0'/'1', 'false'/'true', or the text levels."""
    if coding[0] == "number":
        return "0", "1"
    if coding[0] == "boolean":
        return "false", "true"
    other = data.sql(f"SELECT DISTINCT {q(treatment)} FROM d WHERE {q(treatment)} IS NOT NULL "
                     f"AND {q(treatment)} <> {sql_literal(coding[1])}")[0][0]
    return repr(other), repr(coding[1])


def _arm_determined(values: Any, treated: Any, column: str, treatment: str, labels: tuple[str, str]) -> str | None:
    """Why ``column`` looks determined by the treatment in one arm, or None."""
    import numpy as np

    ok = ~values.isna().to_numpy() & ~np.isnan(treated.astype(float))
    v = values.to_numpy()[ok]
    t = treated.astype(float)[ok] == 1
    if len(np.unique(v[~t])) == 1 and len(np.unique(v[t])) == 1 and t.any() and (~t).any():
        return (f"a recoding of the treatment: {column} = {show(v[~t][0])} where {treatment} = {labels[0]} "
                f"and {show(v[t][0])} where {treatment} = {labels[1]}")
    for arm, other, label, other_label in ((~t, t, *labels), (t, ~t, *labels[::-1])):
        n_arm, n_other = int(arm.sum()), int(other.sum())
        if n_arm == 0 or n_other == 0:
            continue
        levels, counts = np.unique(v[arm], return_counts=True)
        top = int(np.argmax(counts))
        mode, k = levels[top], int(counts[top])
        share_other = float(np.mean(v[other] == mode))
        if (k >= ARM_PURE_SHARE * n_arm and share_other <= OTHER_ARM_MAX_SHARE
                and n_arm * (1 - share_other) >= EXPECTED_OFF_MIN):
            every = "every row" if k == n_arm else f"{k / n_arm:.1%} of rows"
            return (f"looks post-treatment: with {treatment} = {label}, {every} has {column} = {show(mode)} "
                    f"(against {share_other:.0%} with {treatment} = {other_label}); a column the treatment "
                    "determines is a consequence of it, not a confounder")
    return None


def _one_arm_levels(frame: Any, kept: list[str], categorical: list[str], treated: Any, treatment: str,
                    outcome: str | None, labels: tuple[str, str], left_out: dict[str, str], np: Any) -> None:
    """A categorical or two-valued covariate with a level that only one arm has, on the rows complete in
    the treatment, the outcome and the kept covariates (those the estimators use): those rows have a propensity
    of 0 or 1, the propensity logit separates and no unit of the other arm compares with them (NHEFS: the 2
    complete rows with heart failure are all non-quitters; weighting stopped at 'no common support')."""
    # a level of a numeric column with more values is a point on a line, which a logit does not separate
    use = [c for c in kept if c in categorical or frame[c].nunique(dropna=True) == 2]
    if not use:
        return
    complete = frame[kept + ([outcome] if outcome else [])].notna().all(axis=1).to_numpy() & ~np.isnan(treated)
    on = treated[complete] == 1
    for c in use:
        v = frame[c].to_numpy()[complete]
        for level in np.unique(v):
            at = v == level
            n_on, n_off = int((at & on).sum()), int((at & ~on).sum())
            if min(n_on, n_off) == 0 and max(n_on, n_off) > 0 and at.sum() < len(v):
                arm = labels[1] if n_on else labels[0]
                left_out[c] = (f"{c} = {show(level)} occurs only where {treatment} = {arm} ({max(n_on, n_off)} of the "
                               f"{len(v):,} complete rows): no overlap between the arms there (the propensity "
                               "model separates); coarsen it or restrict the sample")
                break


def _collinear(frame: Any, kept: list[str], categorical: list[str], treatment: str | None, outcome: str | None,
               np: Any) -> dict[str, str]:
    """Columns whose standardised block adds no rank to [1, treatment, columns kept before it], on the rows
    complete in all of them (as the estimators use them); then columns that with the kept ones give the
    outcome exactly (NHEFS: wt82_71 = wt82 - wt71), the later of them each time."""
    use = [treatment, *kept] if treatment else list(kept)
    complete = frame[use + ([outcome] if outcome else [])].notna().all(axis=1).to_numpy()
    sub = frame.loc[complete]
    if len(sub) < 2:
        return {}
    basis: list[Any] = [np.ones(len(sub)) / math.sqrt(len(sub))]
    owners: list[str] = ["(intercept)"]
    columns: list[Any] = []  # the standardised columns behind basis[1:], to name what a new one depends on

    def block(name: str, is_text: bool) -> list[Any]:
        values = sub[name]
        if is_text or (name == treatment and values.dtype == object):
            text = values.astype(str).to_numpy()
            return [(text == level).astype(float) for level in np.unique(text)[1:]]
        return [values.astype(float).to_numpy()]

    def depends_on(v: Any) -> list[str] | None:
        """None when v adds rank to the basis, else the owners of the kept columns it is a combination of."""
        v = v - v.mean()
        norm_v = np.linalg.norm(v)
        if norm_v == 0:
            return []
        v = v / norm_v
        B = np.column_stack(basis)
        r = v - B @ (B.T @ v)
        r = r - B @ (B.T @ r)  # second pass: one Gram-Schmidt pass loses orthogonality on near-collinear columns
        if np.linalg.norm(r) ** 2 >= COLLINEAR_RESIDUAL:
            basis.append(r / np.linalg.norm(r))
            columns.append(v)
            return None
        if not columns:
            return []
        coef = np.linalg.lstsq(np.column_stack(columns), v, rcond=None)[0]
        return [owners[j + 1] for j in np.flatnonzero(np.abs(coef) > 1e-6)]

    def add(name: str, is_text: bool) -> list[str] | None:
        """Add a column's block; None when it adds full rank, else (block taken back) what it depends on."""
        before, depends, full = len(basis), [], True
        for v in block(name, is_text):
            found = depends_on(v)
            if found is None:
                owners.append(name)
            else:
                full = False
                depends += found
        if full:
            return None
        del basis[before:], owners[before:], columns[before - 1:]
        return sorted(set(depends), key=owners.index)  # in column order

    if treatment:
        add(treatment, False)
    out: dict[str, str] = {}
    for c in kept:
        depends = add(c, c in categorical)
        if depends is None:
            continue
        if not depends:
            out[c] = f"constant on the {len(sub):,} rows complete in the treatment and the other covariates"
            continue
        names = ["the treatment" if d == treatment else repr(d) for d in depends]
        out[c] = f"collinear with {', '.join(names)} (a linear combination of the columns kept before it)"
    if outcome and sub[outcome].dtype.kind in "biuf":
        depends = depends_on(sub[outcome].astype(float).to_numpy())
        if depends is None:  # the outcome adds rank, as it should: take it back out of the basis
            basis.pop(), columns.pop()
            return out
        parts = [d for d in depends if d != treatment]
        if parts:
            last, others = parts[-1], ", ".join(repr(d) for d in parts[:-1])
            out[last] = ((f"with {others} it gives" if others else "gives") + f" the outcome {outcome!r} exactly "
                         "(a linear function of them): part of the outcome, measured after treatment")
            keep = [c for c in kept if c not in out]
            return {**out, **_collinear(frame, keep, [c for c in categorical if c in keep], treatment, outcome, np)}
    return out
