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
MACHINE_FORMATS = ("json", "jsonl", "markdown", "csv")
FORMATS = ("table", *MACHINE_FORMATS)
