"""The command-line interface: thin commands that parse, call, render.

Only this package imports Typer. Heavy libraries are imported inside the
functions that need them, so ``--help`` and ``validate`` stay fast.
"""

from __future__ import annotations

import os

# pydantic scans every installed package's entry points for plugins the first time a model is built
# (15-50 ms of start-up); the command's spec models use none. A user's own setting wins.
os.environ.setdefault("PYDANTIC_DISABLE_PLUGINS", "__all__")

import typer  # noqa: E402 - after the setting above

from causalcli import __version__
from causalcli.cli.common import STATE

app = typer.Typer(
    name="causalcli",
    help="Causal inference from YAML study specs: effects with honest uncertainty, checks and refutations.",
    add_completion=False,
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    context_settings={"help_option_names": ["-h", "--help"]},
)


def _version(value: bool) -> None:
    if value:
        typer.echo(f"causalcli {__version__}")
        raise typer.Exit()


@app.callback()
def main_options(
    version: bool = typer.Option(False, "--version", callback=_version, is_eager=True, help="Print the version and exit."),
    debug: bool = typer.Option(False, "--debug", help="Show Python tracebacks for errors."),
    quiet: bool = typer.Option(False, "--quiet", "-q", help="Print nothing to stderr but errors."),
) -> None:
    """causalcli: estimate, check and refute causal effects from a YAML spec."""
    STATE.debug = STATE.debug or debug
    STATE.quiet = STATE.quiet or quiet


from causalcli.cli import estimate, graph, init, methods, plan, schema, validate  # noqa: E402  (registers commands)

for module in (estimate, validate, plan, graph, methods, init, schema):
    module.register(app)


def main() -> None:
    """Console entry point."""
    STATE.reset()
    app()
