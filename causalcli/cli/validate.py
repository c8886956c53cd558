"""``causalcli validate``: spec and data checks, no estimation."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import List

import typer

from causalcli.cli.common import DEBUG_OPTION, QUIET_OPTION, STATE, guarded
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
    from causalcli.errors import EstimationError
    from causalcli.spec.loading import collect_sources
    from causalcli.spec.overrides import blame_override
    from causalcli.study import load_spec
    from causalcli.study.run import prepare_study

    code = 0
    for arg in specs:
        try:
            sources = collect_sources([arg])
        except CausalcliError as exc:
            typer.echo(f"error: {exc.located()}", err=True)
            code = max(code, exc.exit_code)
            continue
        for source in sources:
            try:
                spec = load_spec(source, set_)
                stdin_bytes = sys.stdin.buffer.read() if spec.study.data.path == "-" and source.path != "-" else None
                prep = prepare_study(spec, stdin_bytes)
                adj = ", ".join(prep.identification.adjustment_set) or "(none)"
                typer.echo(f"ok {source.display}: study '{spec.name}', {spec.study.design.method}, "
                           f"{prep.table.rows:,} rows, adjusting for {adj}")
            except Exception as exc:  # one spec's failure never stops the others
                if STATE.debug:
                    import traceback

                    traceback.print_exception(type(exc), exc, exc.__traceback__)
                if not isinstance(exc, CausalcliError):
                    first = (str(exc).strip().splitlines() or [""])[0]
                    exc = EstimationError(f"internal error: {exc.__class__.__name__}: {first} (run with --debug "
                                          "for a traceback, and please report it)")
                blame_override(exc, set_)
                exc.file = exc.file or source.display
                typer.echo(f"error: {exc.located()}", err=True)
                code = max(code, exc.exit_code)
    raise typer.Exit(code)
