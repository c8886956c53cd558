"""``causalcli graph``: the causal graph, the identified estimand and the adjustment set."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Optional

import typer

from causalcli.cli.common import DEBUG_OPTION, QUIET_OPTION, choices, guarded, is_terminal, say
from causalcli.errors import SpecError
from causalcli.render.graph import GRAPH_FORMATS

GraphFormat = choices("GraphFormat", GRAPH_FORMATS)


def register(app: typer.Typer) -> None:
    app.command("graph")(graph_command)


@guarded
def graph_command(
    spec: str = typer.Argument(..., metavar="SPEC", help="A spec file, or - for stdin."),
    format: GraphFormat = typer.Option(GraphFormat("text"), "--format", "-f"),
    output: Optional[Path] = typer.Option(None, "--output", "-o", help="Write here (needed for png on a terminal)."),
    set_: list[str] = typer.Option([], "--set", help="Override a spec key."),
    debug: bool = DEBUG_OPTION,
    quiet: bool = QUIET_OPTION,
) -> None:
    """Show the causal graph, the estimand and the adjustment set."""
    from causalcli.render.graph import render_graph
    from causalcli.runtime.atomic import write_atomic
    from causalcli.spec.loading import collect_sources
    from causalcli.study import load_spec, study_graph

    loaded = load_spec(collect_sources([spec])[0], set_)
    graph, identification = study_graph(loaded)
    if format.value == "png" and output is None and is_terminal(sys.stdout):
        raise SpecError("a PNG is binary: give --output FILE.png or redirect stdout")
    rendered = render_graph(graph, identification, loaded.study, format.value)
    if output is not None:
        write_atomic(output, rendered)
        say(f"wrote {output}")
    elif isinstance(rendered, bytes):
        sys.stdout.buffer.write(rendered)
    else:
        sys.stdout.write(rendered)
