"""The human table (rich): headline, checks, refutations, warnings; and the one-line forms for stderr."""

from __future__ import annotations

import io
from typing import Any, TYPE_CHECKING

from causalcli.records import StudyFailure
from causalcli.render.items import Item
from causalcli.render.fmt import (corrections, estimand_reading, heterogeneity_readings, num, pval, verdict,
                                   weights_reading)

if TYPE_CHECKING:  # pragma: no cover
    from causalcli.result import Result

TABLE_EFFECTS = 30  # effects the terminal table shows: the first and last 15 of a longer list
LABEL_WIDTH = 24  # effect labels no longer than this are never wrapped


def build(items: list[Item]) -> list[Any]:
    from rich.markup import escape
    from rich.panel import Panel
    from rich.table import Table
    from rich.text import Text

    out: list[Any] = []
    for item in items:
        if isinstance(item, StudyFailure):
            out.append(Panel(Text(f"error (exit {item.exit_code}): {item.message}", style="red"),
                             title=escape(f"{item.study}"), title_align="left", border_style="red"))
            continue
        e = item.estimate
        head = Table.grid(padding=(0, 2))
        head.add_column(style="bold")
        head.add_column()
        # text from the data or the spec (a segment value '[/old]', a count 'missing_in_metric[got]') is not
        # rich markup: escaped, or given as Text, so rich neither drops it nor stops on it
        head.add_row("design", Text(f"{item.design} / {item.estimator}"))
        # what a design says its estimand means for these data (iv: a complier effect or an average causal response)
        meaning, _ = estimand_reading(item.diagnostics)
        head.add_row("estimand", Text(item.estimand.upper() + (f": {meaning}" if meaning else "")))
        ci = f"[{num(e.ci_lower)}, {num(e.ci_upper)}]" if e.ci_lower is not None else "-"
        head.add_row("effect", f"[bold]{num(e.value)}[/bold]  SE {num(e.std_error)}  {int(e.conf_level * 100)}% CI {ci}"
                     f"  p {pval(e.p_value)}")
        # a long name (a clustered interval with its bootstrap) folds rather than ending in an ellipsis
        head.add_row("inference", Text(e.inference, overflow="fold"))
        head.add_row("n", Text("  ".join(f"{k} {v:,}" for k, v in item.n.items())))
        weights = weights_reading(item.diagnostics)
        if weights:  # a weighted study says so where its effect is read (the trial found it said so nowhere)
            head.add_row("weights", Text(weights))
        parts: list[Any] = [head]
        if item.effects:
            eff = Table(title="effects", title_justify="left", expand=False)
            # the label wraps rather than ending in an ellipsis: its end (abs/rel, the segment) tells the rows apart
            # labels up to LABEL_WIDTH long are kept whole (the interval wraps instead), so a time series'
            # 'cumulative/2015-08-12' is not cut inside its date
            # (never narrower than its header: years as labels folded it to 'labe' over 'l')
            longest = max((len(r.label or "") for r in item.effects), default=0)
            eff.add_column("label", overflow="fold",
                           width=max(longest, len("label")) if 0 < longest <= LABEL_WIDTH else None)
            families = corrections(item.effects)  # segment effects' Holm (or BH) p-values, and over what
            for c in ("value", "SE", "CI", "p", *(["p adj"] if families else [])):
                eff.add_column(c, justify="right")
            shown = item.effects
            if len(shown) > TABLE_EFFECTS:  # a long path (144 periods of a time series) would bury the checks
                half = TABLE_EFFECTS // 2
                shown = [*shown[:half], None, *shown[-half:]]
            for r in shown:
                if r is None:
                    eff.add_row(f"... {len(item.effects) - 2 * half} more (all in --format json or csv, "
                                "and --report)", "", "", "", "", *([""] if families else []))
                    continue
                eff.add_row(Text(r.label or ""), num(r.value), num(r.std_error),  # no interval: "-", not "[-, -]"
                            "-" if r.ci_lower is None else f"[{num(r.ci_lower)}, {num(r.ci_upper)}]", pval(r.p_value),
                            *([pval(r.p_value_adjusted)] if families else []))
            parts.append(eff)
            if families:
                parts.append(Text(f"p adj: {'; '.join(families)}", style="dim"))
        for line in heterogeneity_readings(item.diagnostics):
            parts.append(Text(line))
        if item.checks or item.refutations:
            t = Table(title="checks and refutations", title_justify="left", expand=False, show_lines=False)
            t.add_column("name")
            t.add_column("result")
            t.add_column("detail", overflow="fold", max_width=90)
            for c in item.checks:
                t.add_row(Text(c.name), _styled(c.passed), Text(c.detail or ""))
            for r in item.refutations:
                t.add_row(Text(r.name), _styled(r.passed), Text(r.detail or ""))
            parts.append(t)
        for w in item.warnings:
            parts.append(Text(f"warning: {w}", style="yellow"))
        from rich.console import Group

        status = "[green]passed[/green]" if item.passed else "[red]FAILED[/red]"
        out.append(Panel(Group(*parts), title=f"{escape(item.study)}  {status}", title_align="left",
                         border_style="green" if item.passed else "red"))
    return out


def _styled(passed: bool | None) -> str:
    v = verdict(passed)
    return {"pass": "[green]pass[/green]", "FAIL": "[red]FAIL[/red]"}.get(v, "[dim]n/a[/dim]")


def print_table(items: list[Item], console: Any) -> None:
    for renderable in build(items):
        console.print(renderable)


def render_table_text(items: list[Item], width: int = 110) -> str:
    from rich.console import Console

    buf = io.StringIO()
    console = Console(file=buf, width=width, force_terminal=False, color_system=None)
    print_table(items, console)
    return buf.getvalue()


def summary_line(item: "Result") -> str:
    """One human line for an estimated study, printed on stderr beside a machine format."""
    e = item.estimate
    failed = [c.name for c in item.checks if c.passed is False] + [r.name for r in item.refutations if r.passed is False]
    status = "passed" if item.passed else "FAILED"
    extra = f" (failed: {', '.join(failed)})" if failed else ""
    return (f"{item.study}: {item.estimand} {num(e.value)} (SE {num(e.std_error)}, p {pval(e.p_value)}, "
            f"{e.inference}) {status}{extra}")


def failure_line(item: StudyFailure) -> str:
    """Where a study failed and why, as ``file:line: key 'k': message`` (the form of every error line)."""
    spec = "<stdin>" if item.spec_path == "-" else item.spec_path
    where = item.file or spec
    if item.file and spec and item.file != spec:  # the data file: say which spec read it (a batch shares files)
        where = f"{spec}: {item.file}"
    if item.line:
        where += f":{item.line}"
    key = f": key '{item.key}'" if item.key else (f": column '{item.column}'" if item.column else "")
    return f"{where}{key}: {item.message}"
