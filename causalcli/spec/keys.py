"""Key paths of spec errors: ('refute', 0, 'data_subset') <-> 'refute[0].data_subset'."""

from __future__ import annotations

from typing import Any


def key_path(loc: tuple) -> str:
    """('refute', 0, 'data_subset', 'fraction') -> 'refute[0].data_subset.fraction'."""
    out = ""
    for part in loc:
        if isinstance(part, int):
            out += f"[{part}]"
        else:
            out += ("." if out else "") + str(part)
    return out


def clean_loc(loc: tuple, data: dict, tags: set[str]) -> tuple:
    """Drop pydantic's union tags (design.matching.options -> design.options)."""
    out: list = []
    node: Any = data
    for part in loc:
        if isinstance(node, dict) and isinstance(part, str) and part not in node and part in tags:
            continue
        out.append(part)
        if isinstance(node, dict):
            node = node.get(part)
        elif isinstance(node, list) and isinstance(part, int) and part < len(node):
            node = node[part]
        else:
            node = None
    return tuple(out)
