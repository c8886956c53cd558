"""``Family``: what a design family declares in its package's ``__init__.py``.

A family is a folder ``causalcli/designs/<name>/`` whose ``__init__`` holds ``FAMILY``.
The registry (``causalcli.designs``) finds the folders; the spec union, ``causalcli
methods``, the JSON Schema, the plot list and ``estimate`` all read it from there.
The spec model, the design and its plots are named as ``"module:attribute"`` and imported
when a study uses them: a spec loads only its own family's model (building every family's
pydantic models costs 50-60 ms of start-up), and ``causalcli --help`` never loads a numerical
library.
"""

from __future__ import annotations

import importlib
import importlib.util
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Callable

from causalcli.errors import SpecError

if TYPE_CHECKING:  # pragma: no cover
    from causalcli.designs.base import Design
    from causalcli.result import Result


@dataclass(frozen=True)
class Family:
    """One design family: ``method`` in specs, its `design:` model, its Design and its plots."""

    name: str  # the value of design.method
    summary: str  # one line for `causalcli methods`
    spec: type | str  # the pydantic model of the `design:` block (its `method` is Literal[name]), or "module:Class"
    design: str | type  # "module:Class" (imported on use) or the class itself
    plots: str | None = None  # "module:PLOTS", a dict {name: fn(Result) -> PNG bytes or None}
    order: int = 100  # position in listings (`methods`, "choose one of"); ties by name
    planned: str = ""  # what is planned, shown when the design module is not there yet
    docs: str = ""  # the user page, from the repository root; default docs/designs/<name>.md

    def __post_init__(self) -> None:
        if not self.docs:
            object.__setattr__(self, "docs", f"docs/designs/{self.name}.md")

    @property
    def spec_model(self) -> type:
        """The `design:` model itself (imported on first use)."""
        return _resolve(self.spec)

    @property
    def built(self) -> bool:
        if not isinstance(self.design, str):
            return True
        return importlib.util.find_spec(self.design.split(":")[0]) is not None

    def load(self, built_names: list[str]) -> "Design":
        if not self.built:
            raise SpecError(
                f"design '{self.name}' is not built yet in this version of causalcli ({self.planned}); "
                f"built designs: {', '.join(built_names)}",
                key="design.method",
            )
        return _resolve(self.design)()

    def plot_functions(self) -> "dict[str, Callable[[Result], bytes | None]]":
        return dict(_resolve(self.plots)) if self.plots else {}


def _resolve(target: Any) -> Any:
    if not isinstance(target, str):
        return target
    module, attribute = target.split(":")
    return getattr(importlib.import_module(module), attribute)
