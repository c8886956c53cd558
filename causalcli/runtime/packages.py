"""Installed package versions for provenance, read from the names of ``<name>-<version>.dist-info`` folders.

``importlib.metadata.version`` finds the same folder but then parses its METADATA file with the
email parser: five lookups cost 40-90 ms of a command's start-up. The folder name of a wheel
install carries the (normalised) version; anything else (an egg-info, an editable install without
a dist-info) falls back to ``importlib.metadata``.
"""

from __future__ import annotations

import os
import re
import sys
from functools import lru_cache

_SEPARATORS = re.compile(r"[-_.]+")


def _normalised(name: str) -> str:
    return _SEPARATORS.sub("_", name).lower()


@lru_cache(maxsize=8)
def installed_versions(names: tuple[str, ...]) -> dict[str, str]:
    """``{name: version}`` for the packages of ``names`` that are installed, first match on ``sys.path`` as
    ``importlib.metadata`` resolves them."""
    wanted = {_normalised(name): name for name in names}
    found: dict[str, str] = {}
    for entry in sys.path:
        try:
            listing = os.listdir(entry or ".")
        except OSError:
            continue
        for item in listing:
            if not item.endswith(".dist-info"):
                continue
            name, _, version = item[: -len(".dist-info")].rpartition("-")
            key = _normalised(name)
            if key in wanted and wanted[key] not in found and version:
                found[wanted[key]] = version
        if len(found) == len(wanted):
            break
    missing = [name for name in names if name not in found]
    if missing:
        from importlib import metadata

        for name in missing:
            try:
                found[name] = metadata.version(name)
            except metadata.PackageNotFoundError:
                pass
    return {name: found[name] for name in names if name in found}
