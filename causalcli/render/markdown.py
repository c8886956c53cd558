"""Markdown for pull-request comments: a summary table, checks as pass/fail, details collapsed."""

from __future__ import annotations

from typing import TYPE_CHECKING

from causalcli.records import StudyFailure
from causalcli.render.items import Item
from causalcli.render.fmt import (corrections, estimand_reading, heterogeneity_readings, num, pval, verdict,
                                   weights_reading)

if TYPE_CHECKING:  # pragma: no cover
    from causalcli.result import Result


def render_markdown(items: list[Item]) -> str:
    lines = ["| study | design | estimand | effect | SE | CI | p | inference | result |",
             "| --- | --- | --- | ---: | ---: | --- | ---: | --- | --- |"]
    for it in items:
        if isinstance(it, StudyFailure):
            lines.append(f"| {it.study} | | | | | | | | error (exit {it.exit_code}): {_esc(it.message)} |")
            continue
        e = it.estimate
        ci = f"[{num(e.ci_lower)}, {num(e.ci_upper)}]" if e.ci_lower is not None else "-"
        lines.append(f"| {it.study} | {it.design} | {it.estimand} | {num(e.value)} | {num(e.std_error)} | {ci} | "
                     f"{pval(e.p_value)} | {e.inference} | {'pass' if it.passed else '**FAIL**'} |")
    for it in items:
        if isinstance(it, StudyFailure):
            continue
        lines += ["", f"### {it.study}", ""]
        meaning, interpretation = estimand_reading(it.diagnostics)  # iv: what late stands for with these data
        if meaning or interpretation:
            lines += [f"estimand {it.estimand.upper()}" + (f": {meaning}" if meaning else "")
                      + (f". {_esc(interpretation)}" if interpretation else ""), ""]
        if it.checks or it.refutations:
            lines += ["| check | result | detail |", "| --- | --- | --- |"]
            for c in it.checks:
                lines.append(f"| {c.name} | {verdict(c.passed)} | {_esc(c.detail)} |")
            for r in it.refutations:
                lines.append(f"| {r.name} | {verdict(r.passed)} | {_esc(r.detail)} |")
        for w in it.warnings:
            lines.append(f"\n> warning: {w}")
        lines += ["", "<details><summary>details</summary>", ""]
        lines.append("n: " + ", ".join(f"{k} {v:,}" for k, v in it.n.items()))
        weights = weights_reading(it.diagnostics)
        if weights:
            lines += ["", f"weights: {_esc(weights)}"]
        if it.effects:
            families = corrections(it.effects)  # the segment effects' corrected p-values, when there are any
            adj = (" p adj |", " ---: |") if families else ("", "")
            lines += ["", "| label | value | SE | CI | p |" + adj[0], "| --- | ---: | ---: | --- | ---: |" + adj[1]]
            for r in it.effects:
                ci = "-" if r.ci_lower is None else f"[{num(r.ci_lower)}, {num(r.ci_upper)}]"
                lines.append(f"| {_esc(r.label or '')} | {num(r.value)} | {num(r.std_error)} | {ci} | "
                             f"{pval(r.p_value)} |" + (f" {pval(r.p_value_adjusted)} |" if families else ""))
            if families:
                lines += ["", f"p adj: {_esc('; '.join(families))}"]
        tests = heterogeneity_readings(it.diagnostics)
        if tests:
            lines += [""] + [f"- {_esc(t)}" for t in tests]
        bal = it.diagnostics.get("balance")
        # matching's and weighting's SMD records only: rdd's balance maps covariates to RD fits and synthetic
        # control's lists predictors, and their report sections show them
        if bal and isinstance(bal, list) and all("smd_before" in b for b in bal):
            lines += ["", "| covariate | SMD before | SMD after |", "| --- | ---: | ---: |"]
            for b in bal:
                lines.append(f"| {b['covariate']} | {num(b['smd_before'], 3)} | {num(b['smd_after'], 3)} |")
        lines += ["", "</details>"]
    return "\n".join(lines) + "\n"


def _esc(text: str) -> str:
    return text.replace("|", "\\|").replace("\n", " ")
