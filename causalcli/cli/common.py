"""What the commands share: app-wide flags, error handling, consoles."""

from __future__ import annotations

import functools
import os
import sys
import traceback
from dataclasses import dataclass
from enum import Enum
from typing import Any, Callable

import typer

from causalcli.errors import CausalcliError, redact


@dataclass
class State:
    debug: bool = False
    quiet: bool = False

    def reset(self) -> None:
        self.debug = False
        self.quiet = False


STATE = State()

DEBUG_OPTION = typer.Option(False, "--debug", help="Show Python tracebacks for errors.")
QUIET_OPTION = typer.Option(False, "--quiet", "-q", help="Print nothing to stderr but errors.")

# A reader that left early (`| head -1`, a jq that stopped) ends the command quietly with the
# status a shell gives a writer killed by SIGPIPE (128 + 13), as `yes | head -1` does.
PIPE_CLOSED_EXIT = 141


def choices(name: str, values: tuple[str, ...]) -> type[Enum]:
    """An option's choices as the str Enum Typer lists in --help, read from where the values are defined."""
    return Enum(name, {value: value for value in values}, type=str)  # type: ignore[return-value]


def say(message: str) -> None:
    """Human output for stderr (suppressed by --quiet)."""
    if not STATE.quiet:
        typer.echo(message, err=True)


def error_object(exc: CausalcliError) -> dict[str, Any]:
    """A spec's error as ``estimate``'s JSON writes it: exit code, key, message (and line, column, file)."""
    from causalcli.study.batch import failure

    return failure("", "", exc).to_dict()["error"]


def write_reports(reports: list[Any], as_json: bool, text_of: Callable[[Any], str], output: Any) -> None:
    """A command's reports (plan, validate): JSON (one object, or a list of several, a failed spec's entry
    holding its ``error`` object, as estimate's) or text (the failed specs' lines went to stderr), to stdout
    or atomically to ``output`` (said on stderr)."""
    import json

    from causalcli.runtime.atomic import write_atomic

    text = (json.dumps(reports[0] if len(reports) == 1 else reports, indent=2) + "\n" if as_json else
            "".join(text_of(r) for r in reports if "error" not in r))
    if output is None:
        typer.echo(text, nl=False)
    else:
        write_atomic(output, text, "--output")
        say(f"wrote {output}")


def trace_on_debug(exc: BaseException) -> None:
    """The traceback of an exception the command turns into an error line (shown with --debug), with any
    connection read from the environment cut out: a driver's message may quote it."""
    if STATE.debug:
        text = "".join(traceback.format_exception(type(exc), exc, exc.__traceback__))
        sys.stderr.write(redact(text))
        sys.stderr.flush()


def error_line(exc: CausalcliError) -> str:
    return f"error: {exc.located()}"


def guarded(fn: Callable) -> Callable:
    """Run a command: a CausalcliError becomes one line on stderr and its exit code."""

    @functools.wraps(fn)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        if kwargs.pop("debug", False):
            STATE.debug = True
        if kwargs.pop("quiet", False):
            STATE.quiet = True
        from causalcli.runtime import interrupt

        restore_sigint = interrupt.install()
        try:
            return fn(*args, **kwargs)
        except typer.Exit:
            raise
        except CausalcliError as exc:
            trace_on_debug(exc)
            typer.echo(error_line(exc), err=True)
            raise typer.Exit(exc.exit_code) from None
        except BrokenPipeError:
            silence_closed_streams()
            raise typer.Exit(PIPE_CLOSED_EXIT) from None
        except KeyboardInterrupt:
            typer.echo("interrupted", err=True)
            raise typer.Exit(130) from None
        except Exception as exc:  # an internal error: say so plainly, trace on --debug
            trace_on_debug(exc)
            typer.echo(f"internal error: {exc.__class__.__name__}: {redact(str(exc))} (run with --debug for a traceback, "
                       "and please report it)", err=True)
            raise typer.Exit(4) from None
        finally:
            restore_sigint()

    return wrapper


def silence_closed_streams() -> None:
    """Point stdout (and stderr, if its reader left too) at /dev/null.

    What is still buffered then goes nowhere, so the interpreter's last flush does
    not print 'Exception ignored ... BrokenPipeError' on the way out.
    """
    for stream in (sys.stdout, sys.stderr):
        try:
            stream.flush()
            continue  # still open: keep it (stderr carries the errors)
        except BrokenPipeError:
            pass
        except (OSError, ValueError, AttributeError):
            continue
        try:
            devnull = os.open(os.devnull, os.O_WRONLY)
            os.dup2(devnull, stream.fileno())
            os.close(devnull)
        except (OSError, ValueError, AttributeError):
            pass


def is_terminal(stream: Any) -> bool:
    """Whether a standard stream is a terminal (False for a closed or replaced one)."""
    try:
        return stream.isatty()
    except (AttributeError, ValueError):
        return False
