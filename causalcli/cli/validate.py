"""``causalcli validate``: spec and data checks, no estimation."""

from __future__ import annotations

from typing import List

import typer

from causalcli.cli.common import DEBUG_OPTION, QUIET_OPTION, guarded, trace_on_debug
from causalcli.errors import CausalcliError


def register(app: typer.Typer) -> None:
    app.command("validate")(validate_command)


@guarded
def validate_command(
    specs: List[str] = typer.Argument(..., metavar="SPEC...", help="Spec files, folders of *.yaml, or - for stdin."),
    set_: List[str] = typer.Option([], "--set", help="Override a spec key (as for estimate)."),
    debug: bool = DEBUG_OPTION,
    quiet: bool = QUIET_OPTION,
) -> None:
    """Check specs and their data (columns, types, graph) without estimating."""
    from causalcli.study import check_studies

    code = 0
    for display, checked in check_studies(specs, set_, on_exception=trace_on_debug):
        if isinstance(checked, CausalcliError):
            typer.echo(f"error: {checked.located(display)}", err=True)
            code = max(code, checked.exit_code)
            continue
        study = checked.spec.study
        adjustment = study.design.adjusts_for(list(study.covariates), list(checked.identification.adjustment_set))
        data = checked.spec.study.data
        # on an engine, validate reads the table's columns and types, never its rows
        rows = (f"{checked.table.rows:,} rows" if data.backend == "duckdb" else
                f"{data.table or data.path} on {data.backend} (its columns; rows are read by estimate)")
        typer.echo(f"ok {display}: study '{checked.spec.name}', {checked.spec.study.design.method}, "
                   f"{rows}, adjusting for {adjustment}")
        if data.derive:  # the new columns with the types the engine gives them
            types = checked.table.types
            typer.echo(f"  derived: {', '.join(f'{name} {types.get(name, chr(63))}' for name in data.derive)}")
    raise typer.Exit(code)

