"""Renderers: each takes Results (or StudyFailures) and returns text; only this package formats."""

from __future__ import annotations

from causalcli.render.items import FORMATS, MACHINE_FORMATS, Item

__all__ = ["FORMATS", "MACHINE_FORMATS", "Item", "render"]


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
