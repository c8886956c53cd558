"""``causalcli estimate``: run studies, render results, exit with the highest code."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import List, Optional

import typer

from causalcli.cli.common import (
    DEBUG_OPTION, PIPE_CLOSED_EXIT, QUIET_OPTION, STATE, choices, guarded, is_terminal, say,
    silence_closed_streams, trace_on_debug,
)
from causalcli.errors import CausalcliError, SpecError
from causalcli.render.items import FORMATS
from causalcli.runtime.atomic import write_atomic

Format = choices("Format", ("auto", *FORMATS))
FailOn = choices("FailOn", ("all", "checks", "refutations", "none"))  # Result.passed reads them


def register(app: typer.Typer) -> None:
    app.command("estimate")(estimate_command)


@guarded
def estimate_command(
    specs: List[str] = typer.Argument(..., metavar="SPEC...", help="Spec files, folders of *.yaml, or - for stdin."),
    format: Format = typer.Option(Format("auto"), "--format", "-f",
                                  help="auto = table on a terminal, json when piped."),
    output: Optional[Path] = typer.Option(None, "--output", "-o", help="Write the output here (atomically)."),
    set_: List[str] = typer.Option([], "--set", help="Override a spec key: --set design.estimand=att (repeatable)."),
    seed: Optional[int] = typer.Option(None, "--seed", help="Override the spec's seed."),
    jobs: int = typer.Option(0, "--jobs", "-j", help="Parallel workers for refuters; 0 = all cores."),
    report: Optional[Path] = typer.Option(None, "--report", help="Write a self-contained HTML report here."),
    plots: Optional[Path] = typer.Option(None, "--plots", help="Write each study's plots as PNG files here."),
    no_refute: bool = typer.Option(False, "--no-refute", help="Skip refutations."),
    fail_on: FailOn = typer.Option(FailOn("all"), "--fail-on", help="What turns exit 0 into 1."),
    debug: bool = DEBUG_OPTION,
    quiet: bool = QUIET_OPTION,
) -> None:
    """Estimate the effect of each study, with checks and refutations."""
    from causalcli.render.table import failure_line
    from causalcli.result import Result
    from causalcli.runtime.atomic import check_writable
    from causalcli.study import run_studies

    if specs.count("-") > 1:
        raise SpecError("'-' (spec on stdin) can be given once")
    # Before any work: a target that cannot be written would lose every estimate at the last step.
    if output is not None:
        check_writable(output, "--output")
    if report is not None:
        check_writable(report, "--report")
    if plots is not None:
        check_writable(plots, "--plots", folder=True)
    from causalcli.runtime import progress

    if not STATE.quiet and is_terminal(sys.stderr):
        progress.set_reporter(progress.RichReporter())
    fmt = format.value
    if fmt == "auto":
        fmt = "table" if is_terminal(sys.stdout) and output is None else "json"

    # jsonl on stdout is written study by study: a long batch shows (and keeps) each result as it
    # comes, and a reader that left early is noticed at once.
    stream = fmt == "jsonl" and output is None
    stdout = _Stdout()
    items = []
    code = 0
    batch = run_studies(specs, set_, seed=seed, jobs=jobs, refute=not no_refute, fail_on=fail_on.value,
                        on_exception=trace_on_debug)
    for item in batch:
        items.append(item)
        if not isinstance(item, Result):
            typer.echo(f"error: {failure_line(item)}", err=True)
        if stream:
            code = max(code, _emit([item], fmt, None, stdout))
            if stdout.closed and report is None and plots is None:
                break  # nobody reads the rest and nothing else is written: stop, as SIGPIPE would
    code = max([code, *(item.exit_code for item in items)])
    _say_repeated_names(items, report is not None or plots is not None)
    estimated = [item for item in items if isinstance(item, Result)]

    # Each output on its own: a renderer or a plot that fails costs that output (or that study's part
    # of it) only, said in one line (exit 4: a bug), and the others are still written.
    if not stream:
        code = max(code, _emit(items, fmt, output, stdout))
    if report is not None and estimated:
        code = max(code, _write_report(items, report))
    if plots is not None:
        code = max(code, _write_plots(items, plots))
    if not (output is None and fmt == "table"):
        _summary(items)
    if stdout.closed:
        silence_closed_streams()
        raise typer.Exit(PIPE_CLOSED_EXIT)
    raise typer.Exit(code)


class _Stdout:
    """stdout that notes a reader who left (broken pipe) instead of failing the batch."""

    def __init__(self) -> None:
        self.closed = False

    def write(self, text: str) -> None:
        if self.closed:
            return
        try:
            sys.stdout.write(text)
            sys.stdout.flush()
        except BrokenPipeError:
            self.closed = True
            silence_closed_streams()

    def print_table(self, renderables: list) -> None:
        """The table's pieces (``render.table.build``), printed one by one."""
        from rich.console import Console

        class _PipeConsole(Console):
            def on_broken_pipe(self) -> None:  # rich would exit 1 here; the batch decides the code
                self.quiet = True
                raise BrokenPipeError

        console = _PipeConsole(highlight=False)
        try:
            for renderable in renderables:
                console.print(renderable)
            sys.stdout.flush()
        except BrokenPipeError:
            self.closed = True
            silence_closed_streams()


def _rendered(items: list, fmt: str) -> tuple[str, list]:
    from causalcli.render import render, render_each

    return render_each(items, lambda shown: render(shown, fmt), f"{fmt} output")


def _emit(items: list, fmt: str, output: Optional[Path], stdout: _Stdout) -> int:
    """Write the chosen format to ``--output`` or stdout; returns an exit code (0, or that of a failure)."""
    from causalcli.render.table import build
    from causalcli.result import Result

    option, target = ("--output", output) if output is not None else ("--format", fmt)
    if output is not None and not any(isinstance(i, Result) for i in items):
        return 0  # nothing estimated: an existing file is left as it is
    try:
        if output is None and fmt == "table":
            from causalcli.render import render_each

            renderables, failed = render_each(items, build, "table")
        else:
            text, failed = _rendered(items, fmt)
    except Exception as exc:  # noqa: BLE001 (the report and the plots are written all the same)
        return _output_error(exc, option, target, items[0].study if len(items) == 1 else None)
    code = _report_unrendered(failed, option, target)
    if output is not None:
        try:
            write_atomic(output, text, "--output")
        except CausalcliError as exc:
            return max(code, _output_error(exc, option, target))
        say(f"wrote {output}")
    elif fmt == "table":
        stdout.print_table(renderables)
    else:
        stdout.write(text)
    return code


def _report_unrendered(failed: list, option: str, target: object) -> int:
    """One line per study left out of an output because its renderer raised."""
    code = 0
    for item, exc in failed:
        code = max(code, _output_error(exc, option, target, item.study))
    return code


def _write_report(items: list, report: Path) -> int:
    from causalcli.render import render_each
    from causalcli.render.html import render_html

    failed_plots: dict = {}
    try:
        page, failed = render_each(items, lambda shown: render_html(shown, failed_plots), "report")
        code = _report_unrendered(failed, "--report", report)
        for (study, name), exc in failed_plots.items():
            code = max(code, _output_error(exc, "--report", report, f"{study}, plot {name}"))
        write_atomic(report, page, "--report")
    except Exception as exc:  # noqa: BLE001 (the other outputs are written all the same)
        return _output_error(exc, "--report", report)
    say(f"wrote {report}")
    return code


def _say_repeated_names(items: list, files: bool) -> None:
    """A warning when studies share a name (specs that init named after one data file): outputs list them
    alike, and the report's anchors and the plot files tell them apart only by -2, -3."""
    by_name: dict[str, list[str]] = {}
    for item in items:
        by_name.setdefault(item.study, []).append(str(item.spec_path))
    for study, paths in by_name.items():
        if len(paths) > 1:
            apart = " (the report and --plots call them " + ", ".join(
                [study, *(f"{study}-{k}" for k in range(2, len(paths) + 1))]) + ")" if files else ""
            say(f"warning: {len(paths)} studies are named {study!r}: {', '.join(paths)}{apart}; set name: in each "
                "spec to tell them apart")


def _write_plots(items: list, directory: Path) -> int:
    from causalcli.render.items import output_names
    from causalcli.render.plots import plot_path, plots_for, write_plots
    from causalcli.result import Result

    code = 0
    for item, label in zip(items, output_names([item.study for item in items])):
        if not isinstance(item, Result):
            continue
        failed: dict = {}
        try:
            written = write_plots(item, directory, failed, label)
        except Exception as exc:  # noqa: BLE001 (one study's plots do not stop the others')
            code = max(code, _output_error(exc, "--plots", directory, item.study))
            continue
        for path in written:
            say(f"wrote {path}")
        for name, exc in failed.items():  # each plot on its own: the others are written
            code = max(code, _output_error(exc, "--plots", plot_path(item, directory, name, label), item.study))
        if not written and not failed:  # say so, rather than leave the folder without this study's plots silently
            names = ", ".join(plots_for(item.design)) or "none"
            say(f"{item.study}: nothing to plot for {item.design} / {item.estimator} "
                f"(the plots of {item.design}: {names}; each needs results this study does not have)")
    return code


def _output_error(exc: Exception, option: str, target: object, study: Optional[str] = None) -> int:
    """One line naming the output (and the study) that failed; its code: the error's own (2, a file that
    cannot be written), or 4 for anything else (a bug in a renderer or a plot)."""
    from causalcli.render import internal_error

    trace_on_debug(exc)
    of = f" (study {study})" if study else ""
    if isinstance(exc, CausalcliError):
        typer.echo(f"error: {exc.located()}{of}", err=True)
        return exc.exit_code
    typer.echo(f"error: {option} {target}{of}: {internal_error(exc)}", err=True)
    return 4


def _summary(items: list) -> None:
    """One human line per estimated study on stderr, beside a machine format."""
    from causalcli.render.table import summary_line
    from causalcli.result import Result

    for item in items:
        if isinstance(item, Result):
            say(summary_line(item))
