"""``--set key.path=value``: overrides applied to the parsed mapping before validation."""

from __future__ import annotations

import copy
from typing import TYPE_CHECKING, Any

import yaml

from causalcli.errors import SpecError

if TYPE_CHECKING:  # pragma: no cover
    from causalcli.spec.loading import SpecSource, StudySchema

def apply_overrides(data: dict, overrides: list[str], source: "SpecSource", schema: "StudySchema") -> dict:
    """Apply ``--set key.path=value``; values take the type the schema wants.

    The value is read as YAML (numbers, booleans, lists); where that fails the
    schema and the raw text does not, the raw text is kept, so ``--set name=1``
    still gives a string. Errors name the ``--set KEY=VALUE`` they come from.
    """
    out = copy.deepcopy(data)
    for item in overrides:
        if "=" not in item:
            raise SpecError(f"--set needs KEY=VALUE, got {item!r}", file=source.display)
        key, raw = item.split("=", 1)
        parts = _override_parts(key)
        if not parts or any(p == "" for p in parts):
            raise SpecError(f"--set {item}: bad key path {key!r}; use dots, e.g. design.options.caliper=0.1",
                            file=source.display)
        try:
            value = yaml.safe_load(raw) if raw != "" else ""
        except yaml.YAMLError:
            value = raw
        _set_path(out, parts, value, item, source)
        if not isinstance(value, str) and tuple(parts) in _failing_paths(out, len(parts), schema):
            _set_path(out, parts, raw, item, source)
            if tuple(parts) in _failing_paths(out, len(parts), schema):  # the text fails too: report the value as typed
                _set_path(out, parts, value, item, source)
    return out


def _override_parts(key: str) -> list[Any]:
    """'refute.0.data_subset' -> ['refute', 0, 'data_subset']."""
    return [int(p) if p.isdigit() else p for p in key.strip().split(".")]


def _key_parts(key: str) -> tuple:
    """An error's key path, 'refute[0].data_subset' -> ('refute', 0, 'data_subset')."""
    return tuple(_override_parts(key.replace("[", ".").replace("]", "")))


def _failing_paths(data: dict, depth: int, schema: "StudySchema") -> set[tuple]:
    from pydantic import ValidationError

    from causalcli.spec.keys import clean_loc

    try:
        schema.model.model_validate(data)
    except ValidationError as exc:
        return {clean_loc(e["loc"], data, schema.union_tags)[:depth] for e in exc.errors()}
    return set()


def _set_path(node: Any, parts: list, value: Any, item: str, source: "SpecSource") -> None:
    key = item.split("=", 1)[0].strip()
    for i, part in enumerate(parts[:-1]):
        nxt = parts[i + 1]
        if isinstance(node, list):
            if not isinstance(part, int) or part >= len(node):
                raise SpecError(f"--set {item}: index {part} is out of range (the list has {len(node)} items)",
                                file=source.display, key=key)
            node = node[part]
            continue
        if not isinstance(node, dict):
            raise SpecError(f"--set {item}: the parent of this key is not a mapping", file=source.display, key=key)
        if part not in node or node[part] is None:
            node[part] = [] if isinstance(nxt, int) else {}
        node = node[part]
    last = parts[-1]
    if isinstance(node, list):
        if not isinstance(last, int) or last > len(node):
            raise SpecError(f"--set {item}: index {last} is out of range (the list has {len(node)} items)",
                            file=source.display, key=key)
        if last == len(node):
            node.append(value)
        else:
            node[last] = value
    elif isinstance(node, dict):
        node[last] = value
    else:
        raise SpecError(f"--set {item}: the parent of this key is not a mapping", file=source.display, key=key)


def blame_override(exc: SpecError | Any, overrides: list[str] | None) -> None:
    """Name the ``--set KEY=VALUE`` behind an error whose key is that KEY or lies under it.

    The error then cites the ``--set``, not a line of the spec file.
    """
    item = matching_override(getattr(exc, "key", None), overrides or [], under_only=True)
    if item is not None:
        cite_overrides(exc, [item])


def matching_override(key: str | None, overrides: list[str], under_only: bool = False) -> str | None:
    """The last ``--set`` whose key is the error's key or a parent of it (or, unless ``under_only``, a child)."""
    if not key:
        return None
    err = _key_parts(key)
    for item in reversed(overrides):
        if "=" not in item:
            continue
        parts = tuple(_override_parts(item.split("=", 1)[0]))
        if err[: len(parts)] == parts or (not under_only and parts[: len(err)] == err):
            return item
    return None


def cite_overrides(exc: Any, items: list[str]) -> None:
    if exc.message.startswith("--set "):
        return
    # a connection variable's override may hold a URL with a password: cite its key, never its value
    secret = ("connection_env", "catalog")
    shown = [i.split("=", 1)[0] + "=<not shown>" if i.split("=", 1)[0].endswith(secret) else i for i in items]
    exc.message = " ".join(f"--set {i}" for i in shown) + f": {exc.message}"
    exc.line = None  # no line of the file holds this value

