"""JSON and JSON Lines: the ``causalcli.result/v1`` contract."""

from __future__ import annotations

import json

from causalcli.render.items import Item


def render_json(items: list[Item]) -> str:
    payload = items[0].to_dict() if len(items) == 1 else [i.to_dict() for i in items]
    return json.dumps(payload, indent=2, ensure_ascii=False, allow_nan=False) + "\n"


def render_jsonl(items: list[Item]) -> str:
    return "".join(json.dumps(i.to_dict(), ensure_ascii=False, allow_nan=False, separators=(",", ":")) + "\n"
                   for i in items)
