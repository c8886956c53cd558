"""Starter specs for ``causalcli init``: roles guessed from the data, doubtful columns left out.

``starter_spec(path, treatment, outcome, design)`` reads the file with DuckDB and returns the
spec as a mapping and as YAML text whose comments say what was guessed and which columns were
left out, and why. What it cannot guess it writes as the placeholder ``TODO``, which
``validate`` refuses by key (``causalcli.spec.loading``).

The package by concern: ``profile`` reads the file and computes its facts once, ``roles`` guesses
unit, time, cohort and the treated level, ``columns`` keeps or leaves out covariates by the rules
listed there, ``designs`` builds each design's section, ``text`` writes the YAML with its comments.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

from causalcli.errors import SpecError
from causalcli.starter.designs import build_design, build_treated_value
from causalcli.data.table import quote_identifier as q
from causalcli.starter.profile import DataProfile, check_data_file, plain
from causalcli.starter.text import Starter, spec_text

__all__ = ["Starter", "starter_spec"]


def starter_spec(path: Path, treatment: str | None, outcome: str | None, design: str,
                 name: str | None = None, spec_dir: Path | None = None,
                 instruments: list[str] | None = None) -> Starter:
    """A starter spec for ``design`` on the data at ``path``; ``spec_dir``: the folder the spec will be saved in
    (``init -o``), which data.path is written relative to; ``instruments`` (``init --instrument``, iv only): the
    instrument columns, kept out of the covariates."""
    from causalcli.designs import families, get_design

    designs = families()
    if design not in designs:
        raise SpecError(f"--design {design}: unknown design; choose one of: {', '.join(designs)}")
    design_obj = get_design(design)
    check_data_file(path)
    if treatment is None and design in ("matching", "weighting", "dml", "experiment"):
        raise SpecError(f"--treatment is needed: the {design} design compares by a treatment column")
    if outcome is None:
        raise SpecError("--outcome is needed (the outcome column)")
    if instruments and design != "iv":
        raise SpecError(f"--instrument is for the iv design, not {design}")
    data = DataProfile(path)
    data.check_columns({"treatment": treatment, "outcome": outcome})
    for z in instruments or []:
        data.check_columns({"instrument": z})
        if z in (treatment, outcome):
            raise SpecError(f"--instrument {z}: it is the {'treatment' if z == treatment else 'outcome'} column; "
                            "an instrument is a third column that moves the treatment")
    st = Starter(spec={}, text="")
    if treatment and design != "rdd":
        _note_treatment_values(data, st, design, treatment)
    written = str(path) if spec_dir is None else os.path.relpath(path.resolve(), spec_dir.resolve())
    spec: dict[str, Any] = {"version": 1, "name": name or path.stem, "data": {"path": written}}
    if data.na_values:
        spec["data"]["na_values"] = data.na_values
        st.guessed.append(f"data.na_values: [{', '.join(data.na_values)}] (numbers written with "
                          f"{' or '.join(repr(v) for v in data.na_values)} for missing, as R or Stata write them)")
    if treatment:
        spec["treatment"] = treatment
    spec["outcome"] = outcome
    d: dict[str, Any] = {"method": design, "estimand": design_obj.estimands[0]}
    if instruments:
        d["instruments"] = list(dict.fromkeys(instruments))
    build_design(design, data, spec, d, st, treatment, outcome)
    if spec.get("treatment") and design in ("matching", "weighting", "dml", "did"):
        build_treated_value(data, d, st, spec["treatment"])  # (did's cross-sections may have guessed it)
    spec["design"] = d
    spec["seed"] = 0
    st.spec = spec
    st.text = spec_text(st, data, design, spec_dir is not None)
    return st


def _note_treatment_values(data: DataProfile, st: Starter, design: str, treatment: str) -> None:
    """A note when the treatment's values cannot make the design's arms, which the spec would otherwise learn only
    at validate, after the user has edited it: one value, or (matching, weighting) more than two."""
    if data.distinct.at_most(treatment, 1):
        only = data.sql(f"SELECT DISTINCT {q(treatment)} FROM d WHERE {q(treatment)} IS NOT NULL")
        held = f"only the value {plain(only[0][0])!r}" if only else "no value"
        st.notes.append(f"{treatment} holds {held} in the {data.rows:,} rows: there is nothing to compare, and "
                        "estimate refuses it; check the file, the column name or a filter that made it")
    elif design in ("matching", "weighting") and not data.distinct.at_most(treatment, 2):
        # Wooldridge's bwght: cigs, cigarettes a day, 0 to 50
        lowest = data.sql(f"SELECT min({q(treatment)}) FROM d")[0][0] if data.kind(treatment) in (
            "integer", "numeric") else None
        arm = f"{treatment}_any" if lowest == 0 else f"{treatment}_01"
        derive = (f"; or make two arms with data.derive: {{{arm}: \"CAST({treatment} > {plain(lowest)} AS "
                  f"INTEGER)\"}} and treatment: {arm}") if lowest is not None else ""
        st.notes.append(f"{treatment} holds more than two values, and {design} compares two arms (0/1): validate "
                        f"refuses it; --design dml takes a continuous treatment{derive}")
