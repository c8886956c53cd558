"""``causalcli validate``: spec and data checks, no estimation; the rows the study will use."""

from __future__ import annotations

from pathlib import Path
from typing import Any, List, Optional

import typer

from causalcli.cli.common import (
    DEBUG_OPTION, QUIET_OPTION, choices, error_object, guarded, trace_on_debug, write_reports,
)
from causalcli.errors import CausalcliError

Format = choices("ValidateFormat", ("text", "json"))


def register(app: typer.Typer) -> None:
    app.command("validate")(validate_command)


@guarded
def validate_command(
    specs: List[str] = typer.Argument(..., metavar="SPEC...", help="Spec files, folders of *.yaml, or - for stdin."),
    format: Format = typer.Option(Format("text"), "--format", "-f", help="text (for people) or json."),
    output: Optional[Path] = typer.Option(None, "--output", "-o", help="Write the output here (atomically)."),
    set_: List[str] = typer.Option([], "--set", help="Override a spec key (as for estimate)."),
    debug: bool = DEBUG_OPTION,
    quiet: bool = QUIET_OPTION,
) -> None:
    """Check specs and their data (columns, types, graph) without estimating; count the rows used and dropped."""
    from causalcli.designs.base import unread_settings
    from causalcli.runtime.atomic import check_writable
    from causalcli.study import check_studies
    from causalcli.study.rows import row_counts

    if output is not None:
        check_writable(output, "--output")
    code = 0
    reports = []
    for display, checked in check_studies(specs, set_, on_exception=trace_on_debug):
        if isinstance(checked, CausalcliError):
            typer.echo(f"error: {checked.located(display)}", err=True)
            code = max(code, checked.exit_code)
            reports.append({"spec": display, "error": error_object(checked)})
            continue
        study = checked.spec.study
        data = study.data
        try:
            counts = row_counts(checked)
        except CausalcliError as exc:
            trace_on_debug(exc)
            typer.echo(f"error: {exc.located(display)}", err=True)
            code = max(code, exc.exit_code)
            reports.append({"spec": display, "error": error_object(exc)})
            continue
        reports.append({"spec": display, "study": checked.spec.name, "design": study.design.method,
                        "backend": data.backend, "data": data.table or data.path,
                        "adjusting_for": study.design.adjusts_for(list(study.covariates),
                                                                  list(checked.identification.adjustment_set)),
                        "weights": study.weights, "segments": list(study.segments),
                        # the new columns with the types the engine gives them
                        "derived": {name: checked.table.types.get(name) for name in data.derive},
                        **counts.to_dict()})
        # settings the study will not read (a shared thresholds block, say): estimate warns of them too
        reports[-1]["warnings"] = [*unread_settings(checked.design, study), *reports[-1]["warnings"]]
    if reports:
        write_reports(reports, format.value == "json", validate_text, output)
    raise typer.Exit(code)


def validate_text(report: dict[str, Any]) -> str:
    """One study for people: the ok line, what the rows come to, and the warnings."""
    n = report["n"]
    # on an engine, validate reads the table's columns and types, never its rows
    rows = (f"{n['rows']:,} rows" if report["backend"] == "duckdb" else
            f"{report['data']} on {report['backend']} (its columns; rows are read by estimate)")
    lines = [f"ok {report['spec']}: study '{report['study']}', {report['design']}, {rows}, "
             f"adjusting for {report['adjusting_for']}"]
    if report.get("weights") or report.get("segments"):  # what the study reads beyond the adjustment
        said = [f"weighted by {report['weights']}"] if report.get("weights") else []
        said += [f"effects by segment: {', '.join(report['segments'])}"] if report.get("segments") else []
        lines.append(f"  {'; '.join(said)}")
    if report["derived"]:
        lines.append(f"  derived: {', '.join(f'{name} {kind or chr(63)}' for name, kind in report['derived'].items())}")
    if report["not_counted"]:
        lines.append(f"  rows: {report['not_counted']}")
    else:
        total = f"{n['rows']:,} after data.filter ({n['filtered_out']:,} filtered out)" if "filtered_out" in n \
            else f"{n['rows']:,}"
        parts = [f"{key[len('dropped_missing_'):]} {k:,}" for key, k in n.items() if key.startswith("dropped_missing_")]
        if n["dropped_missing"]:
            lines.append(f"  rows: {total}; the study uses {n['complete']:,} complete rows; {n['dropped_missing']:,} "
                         f"{'is' if n['dropped_missing'] == 1 else 'are'} dropped for a missing value "
                         f"({', '.join(parts)})")
        else:
            lines.append(f"  rows: {total}, all complete in the columns the study uses")
    lines.extend(f"warning: {w}" for w in report["warnings"])
    return "\n".join(lines) + "\n"
