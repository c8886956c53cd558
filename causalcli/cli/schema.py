"""``causalcli schema``: the JSON Schema of the study spec."""

from __future__ import annotations

import json

import typer

from causalcli.cli.common import guarded


def register(app: typer.Typer) -> None:
    app.command("schema")(schema_command)


@guarded
def schema_command() -> None:
    """Print the JSON Schema of the study spec (for editors and CI checks)."""
    from causalcli.study import json_schema

    typer.echo(json.dumps(json_schema(), indent=2))
