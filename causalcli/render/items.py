"""What the renderers take and the formats they write.

Kept apart from the package's ``__init__`` (which dispatches to the renderers) so that a renderer
importing ``Item`` does not import the module that imports it: no cycle inside ``render``.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Union

from causalcli.records import StudyFailure

if TYPE_CHECKING:  # pragma: no cover
    from causalcli.result import Result

Item = Union["Result", StudyFailure]


def output_names(studies: list[str]) -> list[str]:
    """Each study's name as its outputs (plot files, report anchors) use it: a name met again gets -2, -3, ...
    (init names every spec after its data file, so a folder of specs on one file repeats it, and the second
    study's plots overwrote the first's)."""
    seen: dict[str, int] = {}
    names = []
    for study in studies:
        seen[study] = seen.get(study, 0) + 1
        names.append(study if seen[study] == 1 else f"{study}-{seen[study]}")
    return names
MACHINE_FORMATS = ("json", "jsonl", "markdown", "csv")
FORMATS = ("table", *MACHINE_FORMATS)
