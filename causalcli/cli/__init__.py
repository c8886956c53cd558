"""The command-line interface: thin commands that parse, call, render.

Only this package imports Typer. Heavy libraries are imported inside the
functions that need them, so ``--help`` and ``validate`` stay fast.
"""

from __future__ import annotations

import os
import sys

# pydantic scans every installed package's entry points for plugins the first time a model is built
# (15-50 ms of start-up); the command's spec models use none. A user's own setting wins.
os.environ.setdefault("PYDANTIC_DISABLE_PLUGINS", "__all__")
# OpenMP threads (scikit-learn's gradient boosting in dml and weighting above 20,000 rows) spin while they wait for
# each other; on a busy machine a spinning thread takes the core a working one needs, and a fit on 171,000 rows took
# 3-16 s instead of 0.4-1 s (dml on causaldata's mortgages: 52 s). Waiting threads sleep instead; read by libgomp when
# it loads, so set before any model library is imported. A user's own setting wins.
os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")

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
    try:
        app()
    except SystemExit as exc:
        _exit(exc.code)
    _exit(0)


def _exit(code: object) -> None:
    """End the process, skipping the interpreter's teardown when nothing is left to wait for.

    After a large study the teardown (every module's objects freed, DuckDB's destructors) takes 70-80
    ms, a tenth of a one-second command; the results are written (atomically) by then. Exit handlers
    still run and the streams are flushed. With a thread still alive, or joblib loaded (dml: its workers
    outlive their pool), the ordinary exit joins and shuts them down as usual.
    """
    import atexit
    import threading

    status = 0 if code is None else code if isinstance(code, int) else 1
    # joblib's reusable workers outlive their pool; concurrent.futures' executors keep a non-daemon thread
    # while they live, and multiprocessing's exit handler (run below) joins its children
    pooled = "joblib" in sys.modules
    if pooled or any(t.is_alive() and not t.daemon for t in threading.enumerate() if t is not threading.main_thread()):
        raise SystemExit(code)
    if not isinstance(code, (int, type(None))):
        print(code, file=sys.stderr)
    atexit._run_exitfuncs()
    for stream in (sys.stdout, sys.stderr):
        try:
            stream.flush()
        except (OSError, ValueError):  # a closed pipe (| head): nothing more can be said on it
            pass
    os._exit(status)
