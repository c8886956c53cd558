"""JSON and JSON Lines: the ``causalcli.result/v1`` contract."""

from __future__ import annotations

import json
import math
from json.encoder import encode_basestring
from typing import Any

from causalcli.render.items import Item


def render_json(items: list[Item]) -> str:
    payload = items[0].to_dict() if len(items) == 1 else [i.to_dict() for i in items]
    return dumps_indented(payload) + "\n"


def render_jsonl(items: list[Item]) -> str:
    return "".join(json.dumps(i.to_dict(), ensure_ascii=False, allow_nan=False, separators=(",", ":")) + "\n"
                   for i in items)


def dumps_indented(payload: Any) -> str:
    """``json.dumps(payload, indent=2, ensure_ascii=False, allow_nan=False)``, byte for byte, faster.

    The standard library writes indented JSON in pure Python, a generator per container: 0.2 s for the
    11,379 plot bins of a million-row RD. This writer appends the same pieces to one list, and writes a list
    of flat objects with the same keys (bins, tables) through one template. Whatever it does not handle
    itself (non-finite floats, keys that are not strings, subclasses and types JSON has no form for, cycles)
    is left to ``json.dumps``, whose output or error is then the answer."""
    out: list[str] = []
    try:
        _write(payload, "\n", out)
    except (_Unusual, RecursionError):
        return json.dumps(payload, indent=2, ensure_ascii=False, allow_nan=False)
    return "".join(out)


class _Unusual(Exception):
    """A value the writer leaves to ``json.dumps``."""


_float_repr, _int_repr = float.__repr__, int.__repr__


def _scalar(value: Any) -> str | None:
    """The JSON of a str, int, finite float (exactly those types), None, True or False; None otherwise."""
    kind = type(value)
    if kind is float:
        if value - value != 0.0:  # inf or nan: json.dumps raises
            raise _Unusual()
        return _float_repr(value)
    if kind is str:
        return encode_basestring(value)
    if kind is int:
        return _int_repr(value)
    if value is None:
        return "null"
    if value is True:
        return "true"
    if value is False:
        return "false"
    if isinstance(value, float):  # numpy.float64 and other subclasses: json.dumps writes float.__repr__
        if value - value != 0.0:
            raise _Unusual()
        return _float_repr(value)
    if isinstance(value, str):
        return encode_basestring(value)
    return None


def _write(value: Any, newline: str, out: list[str]) -> None:
    """Append ``value``'s JSON; ``newline`` is a line break and the indent of the line ``value`` starts on."""
    text = _scalar(value)
    if text is not None:
        out.append(text)
    elif isinstance(value, (list, tuple)):
        if not value:
            out.append("[]")
        elif not (_write_flat(value, newline, out) or _write_records(value, newline, out)):
            inner = newline + "  "
            separator = "[" + inner
            for item in value:
                out.append(separator)
                _write(item, inner, out)
                separator = "," + inner
            out.append(newline + "]")
    elif isinstance(value, dict):
        if not value:
            out.append("{}")
            return
        inner = newline + "  "
        separator = "{" + inner
        for key, item in value.items():
            if type(key) is not str:
                raise _Unusual()
            out.append(separator + encode_basestring(key) + ": ")
            _write(item, inner, out)
            separator = "," + inner
        out.append(newline + "}")
    else:
        raise _Unusual()


def _write_flat(items: list | tuple, newline: str, out: list[str]) -> bool:
    """A list of strings, or of ints and finite floats (exactly those types), as a column of RD plot bins: one
    join; False (and nothing written) when the list is not that."""
    kinds = set(map(type, items))
    if kinds == {str}:
        texts = map(encode_basestring, items)
    elif kinds <= {int, float} and (float not in kinds or all(map(math.isfinite, items))):
        texts = map(repr, items)
    else:
        return False
    inner = newline + "  "
    out.append("[" + inner + ("," + inner).join(texts) + newline + "]")
    return True


def _write_records(items: list | tuple, newline: str, out: list[str]) -> bool:
    """A list of flat objects with the same keys in the same order, written through one template; False (and
    nothing written) when the list is not that."""
    first = items[0]
    if type(first) is not dict or not first or any(type(key) is not str for key in first):
        return False
    keys = list(first)
    inner, field = newline + "  ", newline + "    "
    template = "".join(("{" if i == 0 else ",") + field + encode_basestring(key).replace("%", "%%") + ": %s"
                       for i, key in enumerate(keys)) + inner + "}"
    records = []
    for item in items:
        if type(item) is not dict or len(item) != len(keys) or list(item) != keys:
            return False
        texts = tuple(_scalar(v) for v in item.values())
        if None in texts:  # a nested value: the general writer
            return False
        records.append(template % texts)
    out.append("[" + inner + ("," + inner).join(records) + newline + "]")
    return True
