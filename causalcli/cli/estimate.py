"""``causalcli estimate``: run studies, render results, exit with the highest code."""

from __future__ import annotations

import sys
from enum import Enum
from pathlib import Path
from typing import List, Optional

import typer

from causalcli.cli.common import DEBUG_OPTION, QUIET_OPTION, STATE, guarded, say, stdout_is_terminal
from causalcli.errors import CausalcliError, SpecError


class Format(str, Enum):
    auto = "auto"
    table = "table"
    json = "json"
    jsonl = "jsonl"
    markdown = "markdown"
    csv = "csv"


class FailOn(str, Enum):
    all = "all"
    checks = "checks"
    refutations = "refutations"
    none = "none"


def register(app: typer.Typer) -> None:
    app.command("estimate")(estimate_command)


@guarded
def estimate_command(
    specs: List[str] = typer.Argument(..., metavar="SPEC...", help="Spec files, folders of *.yaml, or - for stdin."),
    format: Format = typer.Option(Format.auto, "--format", "-f",
                                  help="auto = table on a terminal, json when piped."),
    output: Optional[Path] = typer.Option(None, "--output", "-o", help="Write the output here (atomically)."),
    set_: List[str] = typer.Option([], "--set", help="Override a spec key: --set design.estimand=att (repeatable)."),
    seed: Optional[int] = typer.Option(None, "--seed", help="Override the spec's seed."),
    jobs: int = typer.Option(0, "--jobs", "-j", help="Parallel workers for refuters; 0 = all cores."),
    report: Optional[Path] = typer.Option(None, "--report", help="Write a self-contained HTML report here."),
    plots: Optional[Path] = typer.Option(None, "--plots", help="Write each study's plots as PNG files here."),
    no_refute: bool = typer.Option(False, "--no-refute", help="Skip refutations."),
    fail_on: FailOn = typer.Option(FailOn.all, "--fail-on", help="What turns exit 0 into 1."),
    debug: bool = DEBUG_OPTION,
    quiet: bool = QUIET_OPTION,
) -> None:
    """Estimate the effect of each study, with checks and refutations."""
    from causalcli.render import render
    from causalcli.spec import collect_sources, load_spec
    from causalcli.study import failure, run_study

    if specs.count("-") > 1:
        raise SpecError("'-' (spec on stdin) can be given once")
    from causalcli import progress

    if not STATE.quiet and _stderr_is_terminal():
        progress.set_reporter(progress.RichReporter())
    fmt = format.value
    if fmt == "auto":
        fmt = "table" if stdout_is_terminal() and output is None else "json"

    items = []
    for arg in specs:
        try:
            sources = collect_sources([arg])
        except CausalcliError as exc:
            items.append(failure(arg, Path(arg).stem or arg, exc))
            continue
        for source in sources:
            name = "stdin" if source.path == "-" else Path(source.path).stem
            try:
                spec = load_spec(source, set_)
                name = spec.name
                stdin_bytes = None
                if spec.study.data.path == "-":
                    if "-" in specs:
                        raise SpecError("data.path '-' reads stdin, which already carries the spec",
                                        file=source.display, key="data.path")
                    stdin_bytes = sys.stdin.buffer.read()
                result = run_study(spec, seed=seed, jobs=jobs, refute=not no_refute, fail_on=fail_on.value,
                                   stdin_bytes=stdin_bytes)
                items.append(result)
            except CausalcliError as exc:
                if STATE.debug:
                    import traceback

                    traceback.print_exc()
                exc.file = exc.file or source.display
                items.append(failure(source.path, name, exc))

    from causalcli.result import Result

    if plots is not None:
        from causalcli.render.plots import write_plots

        for item in items:
            if isinstance(item, Result):
                for path in write_plots(item, plots):
                    say(f"wrote {path}")

    if report is not None and any(isinstance(i, Result) for i in items):
        from causalcli.atomic import write_atomic
        from causalcli.render.html import render_html

        write_atomic(report, render_html(items))
        say(f"wrote {report}")

    _emit(items, fmt, output)
    code = max((item.exit_code for item in items), default=0)
    raise typer.Exit(code)


def _stderr_is_terminal() -> bool:
    try:
        return sys.stderr.isatty()
    except (AttributeError, ValueError):
        return False


def _emit(items: list, fmt: str, output: Optional[Path]) -> None:
    from causalcli.atomic import write_atomic
    from causalcli.render import render
    from causalcli.result import Result

    estimated = any(isinstance(i, Result) for i in items)
    for item in items:
        if not isinstance(item, Result):
            typer.echo(f"error: {_located(item)}", err=True)
    if output is not None:
        if estimated:
            write_atomic(output, render(items, fmt))
            say(f"wrote {output}")
        _summary(items)
        return
    if fmt == "table":
        from causalcli.render.table import print_table
        from rich.console import Console

        print_table(items, Console(highlight=False))
        return
    sys.stdout.write(render(items, fmt))
    sys.stdout.flush()
    _summary(items)


def _located(item) -> str:
    where = item.file or item.spec_path
    if item.line:
        where += f":{item.line}"
    key = f": key '{item.key}'" if item.key else (f": column '{item.column}'" if item.column else "")
    return f"{where}{key}: {item.message}"


def _summary(items: list) -> None:
    """One human line per estimated study on stderr, beside a machine format."""
    from causalcli.render.fmt import num, pval
    from causalcli.result import Result

    for item in items:
        if isinstance(item, Result):
            e = item.estimate
            failed = [c.name for c in item.checks if c.passed is False] + \
                     [r.name for r in item.refutations if r.passed is False]
            status = "passed" if item.passed else "FAILED"
            extra = f" (failed: {', '.join(failed)})" if failed else ""
            say(f"{item.study}: {item.estimand} {num(e.value)} (SE {num(e.std_error)}, p {pval(e.p_value)}, "
                f"{e.inference}) {status}{extra}")
