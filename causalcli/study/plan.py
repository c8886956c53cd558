"""``plan_study(spec) -> dict``: the plan of an experiment before it runs (``causalcli.plan/v1``)."""

from __future__ import annotations

from pathlib import Path
from typing import Any, Callable, Iterable, Iterator

from causalcli.designs import get_design
from causalcli.errors import CausalcliError
from causalcli.spec.loading import LoadedSpec, SpecSource, collect_sources
from causalcli.study.load import as_loaded, load_spec

PLAN_SCHEMA = "causalcli.plan/v1"


def plan_study(spec: LoadedSpec | str | Path | dict, overrides: list[str] | None = None) -> dict[str, Any]:
    """Sample size per arm, minimum detectable effect and days per metric and arm; a SpecError (exit 2)
    for a design other than an experiment."""
    loaded = as_loaded(spec, overrides)
    try:
        design = get_design(loaded.study.design.method)
    except CausalcliError as exc:
        exc.file = exc.file or loaded.source.display
        raise
    body = design.plan(loaded.study, loaded)
    return {"schema": PLAN_SCHEMA, "study": loaded.name, "spec_path": loaded.path, **body}


def plan_studies(specs: Iterable[str], overrides: list[str] | None = None, *,
                 on_exception: Callable[[BaseException], None] | None = None,
                 ) -> Iterator[tuple[str, dict[str, Any] | CausalcliError]]:
    """Each spec's plan, or its error (one spec's failure never stops the others)."""
    from causalcli.spec.overrides import blame_override
    from causalcli.study.batch import as_error

    overrides = list(overrides or [])
    for display, source in _sources(specs):
        if isinstance(source, CausalcliError):
            yield display, source
            continue
        try:
            yield display, plan_study(load_spec(source, overrides))
        except Exception as exc:  # noqa: BLE001
            if on_exception is not None:
                on_exception(exc)
            error = as_error(exc)
            blame_override(error, overrides)
            error.file = error.file or display
            yield display, error


def _sources(specs: Iterable[str]) -> Iterator[tuple[str, SpecSource | CausalcliError]]:
    """Every spec source the arguments name (files, folders, stdin), or the argument's error."""
    for arg in specs:
        try:
            found = collect_sources([arg])
        except CausalcliError as exc:
            yield arg, exc
        else:
            yield from ((source.display, source) for source in found)
