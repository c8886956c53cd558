"""The Python door: ``causalcli.estimate(spec, data=None, **overrides) -> Result``.

The same run as ``causalcli estimate SPEC``: the spec is read, overridden and validated by
the machinery behind ``--set``, and ``causalcli.study.run_study`` estimates it, so
``estimate(...).to_dict()`` is the command line's JSON. In a notebook the ``Result`` shows
itself as its section of the HTML report (``_repr_html_``), and ``to_frame()`` gives the tidy
rows of the CSV output.

Overrides are spec keys, as ``--set`` takes them: ``seed=3``; nested keys with ``__`` for
the dot (``design__options__caliper=0.1``, ``refute__0__placebo_treatment__simulations=50``)
or as a dict (``**{"design.options.caliper": 0.1}``). Values are Python values.
"""

from __future__ import annotations

import dataclasses
import re
from pathlib import Path
from typing import TYPE_CHECKING, Any, Mapping

from causalcli.errors import CausalcliError, SpecError
from causalcli.records import clean_json
from causalcli.spec.loading import LoadedSpec, SpecSource, collect_sources
from causalcli.spec.overrides import blame_override
from causalcli.study import load_spec, run_study

if TYPE_CHECKING:  # pragma: no cover
    from causalcli.result import Result

__all__ = ["estimate"]

MEMORY_PATH = "<memory>"  # data.path of a spec whose data is handed over in memory and names no file


def estimate(spec: str | Path | Mapping[str, Any], data: Any = None, *, refute: Any = True, jobs: int | None = None,
             fail_on: str = "all", **overrides: Any) -> "Result":
    """Estimate one study and return its ``Result`` (what ``causalcli estimate SPEC --format json`` prints).

    ``spec``: a spec file path, a dict of the spec's keys, or YAML text (a string with a
    line break, or a ``{...}`` flow mapping). A path is read as the command line reads it
    (``data.path`` relative to the spec's folder); a dict or text reads ``data.path`` from
    the current folder.

    ``data``: a pandas or polars DataFrame or a pyarrow Table used in place of ``data.path``
    (which may then be left out): it goes into DuckDB as the study's table, and
    ``data.filter``, ``data.columns`` and the reading of columns by role work exactly as for
    a file. A pandas index comes along as columns when its levels are named (``set_index('unit')``;
    a level that repeats its column, ``drop=False``, once); a column Arrow cannot read (numbers and text
    in one object column) is a ``DataError`` naming it, used by the study or not. ``provenance`` then
    says ``data_source: memory`` with a fingerprint of the table.

    ``refute=False`` skips refutations (``--no-refute``); a list sets the spec's ``refute``
    key instead. ``jobs`` (workers for refuters; None = every core) and ``fail_on`` are the
    command's ``--jobs`` and ``--fail-on``. Every other keyword is a spec key (see the module).

    Raises a ``CausalcliError`` (``SpecError``, ``DataError``, ``EstimationError``) whose text
    is the command line's one-line message and whose ``exit_code`` is its exit code.
    """
    if not isinstance(refute, bool):
        overrides["refute"] = refute
        refute = True
    # each --set item with the keyword it came from, which errors cite instead
    items = {_override_item(key, value): f"{key}={value!r}" for key, value in overrides.items()}
    try:
        loaded = _load(spec, data, items)
    except CausalcliError as exc:
        _as_keywords(exc, items)
        raise
    try:
        return run_study(loaded, jobs=jobs, refute=refute, fail_on=fail_on, frame=data)
    except CausalcliError as exc:  # a data error at an overridden key cites the keyword, as --set does
        blame_override(exc, list(items))
        _as_keywords(exc, items)
        raise


def _override_item(key: str, value: Any) -> str:
    """A keyword as ``--set`` takes it: ``design__options__caliper=0.1`` -> 'design.options.caliper=0.1'.

    The value is written as YAML that reads back as the same Python value.
    """
    import yaml

    text = yaml.safe_dump(clean_json(value), default_flow_style=True, width=1 << 30, allow_unicode=True)
    text = text.removesuffix("\n...\n").strip()  # a scalar's document end marker
    return f"{key.replace('__', '.')}={text}"


def _as_keywords(exc: CausalcliError, items: dict[str, str]) -> None:
    """An error that cites ``--set KEY=VALUE`` cites the keyword it came from instead (none for our own)."""
    for item, keyword in items.items():
        cited = f"--set {item}"
        exc.message = exc.message.replace(cited, keyword) if keyword else re.sub(
            rf"^{re.escape(cited)}(: | )", "", exc.message)


def _load(spec: Any, data: Any, items: dict[str, str]) -> LoadedSpec:
    """The spec validated with the overrides applied, as ``causalcli estimate --set`` loads it."""
    import yaml

    if isinstance(spec, Mapping):
        mapping = clean_json(dict(spec))
        if data is not None and isinstance(mapping.get("data") or {}, dict):  # data.path may be left out
            mapping["data"] = {"path": MEMORY_PATH, **(mapping.get("data") or {})}
        source = SpecSource("<dict>", yaml.safe_dump(mapping, sort_keys=False, allow_unicode=True), Path.cwd())
    elif isinstance(spec, str) and ("\n" in spec or spec.lstrip().startswith("{")):
        source = SpecSource("<text>", spec, Path.cwd())
    elif isinstance(spec, (str, Path)):
        if Path(spec).is_dir():
            raise SpecError("causalcli.estimate takes one spec file; call it for each file of a folder",
                            file=str(spec))
        source = collect_sources([str(spec)])[0]
    else:
        raise SpecError(f"spec must be a path, a dict or YAML text, not {type(spec).__name__}")
    if data is not None and source.path != "<dict>":
        source = _memory_path(source, items)
    try:
        loaded = load_spec(source, list(items))
    except CausalcliError as exc:
        if source.path == "<dict>":
            exc.line = None  # a line of the YAML the dict was written as, which nobody sees
        raise
    if loaded.study.name is None and source.path in ("<dict>", "<text>"):
        loaded = dataclasses.replace(loaded, name="study")
    return loaded


def _memory_path(source: SpecSource, items: dict[str, str]) -> SpecSource:
    """With in-memory data a spec may leave out data.path: give it a placeholder, keeping the spec's lines."""
    import yaml

    try:
        mapping = yaml.safe_load(source.text)
    except yaml.YAMLError:
        return source  # load_spec says where
    if not isinstance(mapping, dict):
        return source
    if "data" not in mapping and not source.text.lstrip().startswith("{"):  # a block mapping: add a last key
        return dataclasses.replace(source, text=f"{source.text.rstrip()}\ndata: {{path: '{MEMORY_PATH}'}}\n")
    if isinstance(mapping.get("data", {}), dict) and "path" not in mapping.get("data", {}):
        # applied first; errors never cite it (the user did not write it)
        items_first = {f"data.path={MEMORY_PATH}": "", **items}
        items.clear()
        items.update(items_first)
    return source
