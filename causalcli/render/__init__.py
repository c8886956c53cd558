"""Renderers: each takes Results (or StudyFailures) and returns text; only this package formats."""

from __future__ import annotations

from typing import Callable, TypeVar

from causalcli.errors import redact
from causalcli.records import StudyFailure
from causalcli.render.items import FORMATS, MACHINE_FORMATS, Item

__all__ = ["FORMATS", "MACHINE_FORMATS", "Item", "internal_error", "render", "render_each"]

Rendered = TypeVar("Rendered")


def render(items: list[Item], fmt: str) -> str:
    if fmt == "json":
        from causalcli.render.json import render_json

        return render_json(items)
    if fmt == "jsonl":
        from causalcli.render.json import render_jsonl

        return render_jsonl(items)
    if fmt == "markdown":
        from causalcli.render.markdown import render_markdown

        return render_markdown(items)
    if fmt == "csv":
        from causalcli.render.csv import render_csv

        return render_csv(items)
    if fmt == "table":
        from causalcli.render.table import render_table_text

        return render_table_text(items)
    raise ValueError(f"unknown format {fmt!r}")


def render_each(items: list[Item], renderer: Callable[[list[Item]], Rendered],
                what: str) -> tuple[Rendered, list[tuple[Item, Exception]]]:
    """``renderer(items)``, one output of every study; when it raises, each study is rendered alone and
    those that still raise are shown as an error object naming ``what`` failed, so one study's failing
    renderer costs the others nothing. Returns the output and the (study, exception) pairs left out;
    raises when the output fails as a whole."""
    try:
        return renderer(items), []
    except Exception as whole:  # noqa: BLE001 (which study failed is found below)
        failed: list[tuple[Item, Exception]] = []
        shown: list[Item] = []
        for item in items:
            try:
                renderer([item])
                shown.append(item)
            except Exception as exc:  # noqa: BLE001 (that study is left out, said by the caller)
                failed.append((item, exc))
                shown.append(StudyFailure(item.study, item.spec_path, 4,
                                          f"its {what} could not be written: {internal_error(exc)}"))
        if not failed:
            raise whole
    return renderer(shown), failed


def internal_error(exc: Exception) -> str:
    """An unexpected exception in one line, as the other internal errors read."""
    text = redact(str(exc)).strip().splitlines()
    detail = f"{exc.__class__.__name__}: {text[0]}" if text else exc.__class__.__name__
    return f"internal error: {detail} (run with --debug for a traceback, and please report it)"
