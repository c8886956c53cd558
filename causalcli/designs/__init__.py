"""The registry of design families: every folder ``causalcli/designs/<name>/`` with a ``FAMILY``.

From the registry come the study model (``study_schema``: the spec union of every family's
`design:` model), ``get_design`` for ``estimate``, the plots of a design and ``causalcli
methods``. ``register`` adds a family from outside the package (the test suite's toy family).
"""

from __future__ import annotations

import importlib
import pkgutil
from functools import lru_cache
from typing import TYPE_CHECKING, Annotated, Union

from causalcli.designs.family import Family

__all__ = ["Family", "families", "get_design", "get_family", "register", "study_schema", "unregister"]
from causalcli.errors import SpecError

if TYPE_CHECKING:  # pragma: no cover
    from causalcli.designs.base import Design
    from causalcli.spec.loading import StudySchema

_REGISTERED: dict[str, Family] = {}


@lru_cache(maxsize=1)
def _discovered() -> tuple[Family, ...]:
    found = []
    for info in pkgutil.iter_modules(__path__):
        if info.ispkg:
            family = getattr(importlib.import_module(f"{__name__}.{info.name}"), "FAMILY", None)
            if isinstance(family, Family):
                found.append(family)
    return tuple(found)


def families() -> dict[str, Family]:
    """Every family by method name, in listing order."""
    every = {f.name: f for f in _discovered()}
    every.update(_REGISTERED)
    return dict(sorted(every.items(), key=lambda kv: (kv[1].order, kv[0])))


def register(family: Family) -> None:
    """Add (or replace) a family; the study model is rebuilt on next use."""
    _REGISTERED[family.name] = family
    study_schema.cache_clear()


def unregister(name: str) -> None:
    _REGISTERED.pop(name, None)
    study_schema.cache_clear()


def get_family(name: str) -> Family:
    family = families().get(name)
    if family is None:
        raise SpecError(f"unknown method {name!r}; choose one of: {', '.join(families())}", key="design.method")
    return family


def get_design(name: str) -> "Design":
    every = families()
    return get_family(name).load([n for n, f in every.items() if f.built])


@lru_cache(maxsize=1)
def study_schema() -> "StudySchema":
    """The concrete study model: ``spec.models.Study`` with `design` the union of every family's model."""
    from pydantic import Field, create_model

    from causalcli.spec.loading import StudySchema
    from causalcli.spec.models import Study

    every = families()
    models = tuple(f.spec for f in every.values())
    union = Annotated[Union[models], Field(discriminator="method")] if len(models) > 1 else models[0]
    model = create_model("Study", __base__=Study, design=(union, ...))
    return StudySchema(model=model, methods=tuple(every))
