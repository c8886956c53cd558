"""``causalcli plan``: sample size, minimum detectable effect and days for an experiment spec."""

from __future__ import annotations

from pathlib import Path
from typing import Any, List, Optional

import typer

from causalcli.cli.common import (
    DEBUG_OPTION, QUIET_OPTION, choices, error_object, guarded, trace_on_debug, write_reports,
)
from causalcli.errors import CausalcliError

Format = choices("PlanFormat", ("table", "json"))


def register(app: typer.Typer) -> None:
    app.command("plan")(plan_command)


@guarded
def plan_command(
    specs: List[str] = typer.Argument(..., metavar="SPEC...", help="Experiment specs, folders of *.yaml, or - for stdin."),
    format: Format = typer.Option(Format("table"), "--format", "-f", help="table (for people) or json."),
    output: Optional[Path] = typer.Option(None, "--output", "-o", help="Write the output here (atomically)."),
    set_: List[str] = typer.Option([], "--set", help="Override a spec key (as for estimate)."),
    debug: bool = DEBUG_OPTION,
    quiet: bool = QUIET_OPTION,
) -> None:
    """Size an experiment: units per arm for each metric's mde, the effect the data's size detects, and days."""
    from causalcli.runtime.atomic import check_writable
    from causalcli.study.plan import PLAN_SCHEMA, plan_studies

    if output is not None:
        check_writable(output, "--output")
    code, plans = 0, []
    for display, planned in plan_studies(specs, set_, on_exception=trace_on_debug):
        if isinstance(planned, CausalcliError):
            typer.echo(f"error: {planned.located()}", err=True)
            code = max(code, planned.exit_code)
            plans.append({"schema": PLAN_SCHEMA, "spec_path": display, "error": error_object(planned)})
            continue
        plans.append(planned)
    tables = [p for p in plans if "error" not in p]
    if plans:  # (tables joined by a blank line: each but the last ends with one)
        write_reports(plans, format.value == "json", lambda p: plan_table(p) + ("\n" if p is not tables[-1] else ""),
                      output)
    raise typer.Exit(code)


def plan_table(plan: dict[str, Any]) -> str:
    """The plan for people: one line per metric and arm."""
    alpha = f"alpha {plan['alpha']:g}"
    if plan["alpha_per_test"] != plan["alpha"]:
        alpha += f" ({plan['alpha_per_test']:.4g} per test: Bonferroni over {plan['correction']['tests']} tests)"
    split = ", ".join(f"{arm} {share:.0%}" for arm, share in plan["allocation"].items())
    lines = [f"plan {plan['study']}: {alpha}, power {plan['power']:g}, allocation {split}"]
    head = ("metric", "arm", "kind", "mde", "n control", "n arm", "n total", "days", "MDE at data (rel)")
    rows = [head]
    for m in plan["metrics"]:
        at_data = "-" if m["n_control"] is None else _number(m["mde_relative"], "{:.2%}")
        rows.append((m["name"], m["arm"], m["kind"] + ("+cuped" if m["adjustment"] != "none" else ""),
                     _number(m["mde"], "{:.2%}"), _number(m["sample_size_control"], "{:,}"),
                     _number(m["sample_size_per_arm"], "{:,}"),
                     _number(m["sample_size_total"], "{:,}"), _number(m["days"], "{:,}"), at_data))
    widths = [max(len(r[i]) for r in rows) for i in range(len(head))]
    for r in rows:
        lines.append("  ".join(cell.ljust(w) if i < 3 else cell.rjust(w) for i, (cell, w) in enumerate(zip(r, widths))))
    sequential = plan.get("sequential")
    if sequential is not None:
        lines.append(f"sequential: group_sequential ({sequential['spending']}, {sequential['looks']} looks): sizes are "
                     f"{sequential['inflation']:.3f} x the fixed design's" if sequential["method"] == "group_sequential"
                     else f"sequential: always_valid (tuning {sequential['tuning']:g}): sizes for the confidence "
                          "sequence read at that size")
    data = plan.get("data")
    if data is not None:
        per_day = "" if data["units_per_day"] is None else f", {data['units_per_day']:,.0f} units per day"
        lines.append(f"data: {data['file']}, {data['rows']:,} rows{per_day}")
    lines.extend(f"warning: {w}" for w in plan.get("warnings", ()))
    return "\n".join(lines) + "\n"


def _number(value: Any, form: str) -> str:
    return "-" if value is None else form.format(value)
