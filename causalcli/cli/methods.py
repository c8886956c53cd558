"""``causalcli methods``: designs, estimators, options and defaults, refuters, thresholds."""

from __future__ import annotations

import json

import typer

from causalcli.cli.common import choices, guarded

MethodsFormat = choices("MethodsFormat", ("text", "json"))


def register(app: typer.Typer) -> None:
    app.command("methods")(methods_command)


@guarded
def methods_command(format: MethodsFormat = typer.Option(MethodsFormat("text"), "--format", "-f")) -> None:
    """List designs, estimators, refuters, their options and defaults."""
    from causalcli.render.methods import render_catalogue
    from causalcli.study.catalogue import catalogue

    cat = catalogue()
    if format.value == "json":
        typer.echo(json.dumps(cat, indent=2, default=str))
        return
    typer.echo(render_catalogue(cat))
