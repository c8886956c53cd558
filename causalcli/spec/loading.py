"""Reading a spec: sources, YAML with line numbers, one-line errors, and the ``StudySchema``.

``StudySchema`` holds the concrete study model (the registry of ``causalcli.designs``
builds it from every family's `design:` model) and validates, loads and prints the JSON
Schema against it. Only ``yaml.safe_load``/``yaml.compose`` with the safe loader ever
read a spec. Unknown keys are refused with the nearest valid key suggested; every error
names the file, the key path and, where known, the YAML line.
"""

from __future__ import annotations

import difflib
import hashlib
import json
import sys
from dataclasses import dataclass
from functools import cached_property
from pathlib import Path
from typing import Annotated, Any, Callable, Union

import yaml
from pydantic import BaseModel, ValidationError

from causalcli.errors import SpecError
from causalcli.spec.keys import clean_loc, key_path
from causalcli.spec.models import REFUTER_MODELS, REFUTERS, Refuter, Study
from causalcli.spec.overrides import apply_overrides, matching_override, cite_overrides



@dataclass(frozen=True)
class SpecSource:
    """Where a spec came from: its path (or "-"), text, directory for relative paths."""

    path: str
    text: str
    base_dir: Path

    @property
    def display(self) -> str:
        return "<stdin>" if self.path == "-" else self.path


@dataclass(frozen=True)
class LoadedSpec:
    """A validated study, with what provenance and relative paths need."""

    study: Study
    source: SpecSource
    name: str
    sha256: str

    @property
    def path(self) -> str:
        return self.source.path


def collect_sources(specs: list[str], stdin_text: str | None = None) -> list[SpecSource]:
    """Expand the command's SPEC arguments: files, folders (every *.yaml/*.yml) or "-"."""
    sources: list[SpecSource] = []
    for arg in specs:
        if arg == "-":
            text = stdin_text if stdin_text is not None else sys.stdin.read()
            sources.append(SpecSource("-", text, Path.cwd()))
            continue
        p = Path(arg)
        if p.is_dir():
            files = sorted([*p.glob("*.yaml"), *p.glob("*.yml")])
            if not files:
                raise SpecError("folder holds no *.yaml spec files", file=arg)
            sources.extend(_read_source(f) for f in files)
        else:
            sources.append(_read_source(p))
    return sources


def _read_source(p: Path) -> SpecSource:
    if not p.exists():
        raise SpecError("spec file not found; check the path", file=str(p))
    try:
        raw = p.read_bytes()
    except OSError as exc:
        raise SpecError(f"cannot read spec file ({exc.__class__.__name__}: {exc})", file=str(p)) from exc
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as exc:  # Latin-1 or UTF-16 from an editor: say where, and what to do
        line = raw[:exc.start].count(b"\n") + 1
        raise SpecError(f"is not UTF-8 (byte 0x{raw[exc.start]:02x} cannot be read); save the file as UTF-8",
                        file=str(p), line=line) from None
    return SpecSource(str(p), text, p.resolve().parent)


def parse_yaml(source: SpecSource) -> tuple[dict, dict[tuple, int]]:
    """Safe-load the YAML and map each key path to its 1-based line."""
    try:
        data = yaml.safe_load(source.text)
        node = yaml.compose(source.text, Loader=yaml.SafeLoader)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        line = mark.line + 1 if mark is not None else None
        problem = getattr(exc, "problem", None) or str(exc).splitlines()[0]
        if "'\\t'" in problem:  # YAML allows no tab in indentation
            problem += ": indent with spaces, not tabs"
        raise SpecError(f"YAML syntax error: {problem}", file=source.display, line=line) from None
    if data is None:
        raise SpecError("spec is empty; start from `causalcli init DATA ...`", file=source.display)
    if not isinstance(data, dict):
        raise SpecError("a spec must be a mapping of keys (data, treatment, outcome, design, ...)", file=source.display, line=1)
    lines: dict[tuple, int] = {}
    _index_lines(node, (), lines, source.display)
    return data, lines


def _index_lines(node: Any, path: tuple, lines: dict[tuple, int], display: str = "",
                 seen: set[int] | None = None) -> None:
    """Each key path's line, refusing a key given twice in one mapping (YAML keeps the last in silence).

    A node is walked once: an alias (``*a``) points at a node already indexed, so a recursive
    alias or nested aliases that multiply (a "billion laughs" spec) cost one pass over the text.
    """
    if node is None:
        return
    seen = set() if seen is None else seen
    if id(node) in seen:
        return
    seen.add(id(node))
    lines.setdefault(path, node.start_mark.line + 1)
    if isinstance(node, yaml.MappingNode):
        first: dict[tuple, int] = {}
        for key_node, value_node in node.value:
            key = key_node.value
            line = key_node.start_mark.line + 1
            same = (key_node.tag, key)  # `1:` and `'1':` are two keys; a merge (`<<`) is not a key
            if isinstance(key_node, yaml.ScalarNode) and key_node.tag != "tag:yaml.org,2002:merge":
                if same in first:
                    raise SpecError(f"given twice, on lines {first[same]} and {line} (YAML would keep the last "
                                    "in silence); keep one", file=display, key=key_path(path + (key,)), line=line)
                first[same] = line
            lines[path + (key,)] = line
            _index_lines(value_node, path + (key,), lines, display, seen)
    elif isinstance(node, yaml.SequenceNode):
        for i, item in enumerate(node.value):
            _index_lines(item, path + (i,), lines, display, seen)


_OTHER_TAGS = {
    "PlaceboTreatment", "RandomCommonCause", "DataSubset", "PlaceboInTime", "LeaveOneDonorOut", "list[tuple[str,str]]",
    "tuple[str, str]", "str", "int", "float",
}


def _allowed_keys(loc: tuple, data: dict, model: Any) -> list[str]:
    """Valid keys of the model that holds the unknown key at ``loc``."""
    model = _model_at(loc, data, model)
    if isinstance(model, type) and issubclass(model, BaseModel):
        return list(model.model_fields)
    if model == "refuter":
        return list(REFUTERS)
    return []


def _nested_home(loc: tuple, data: dict, model: Any) -> str | None:
    """``'options'`` when the unknown key at ``loc`` is a key of the model's ``options`` one level down
    (weighting's ``design.estimator`` is ``design.options.estimator``, time_series' is ``design.estimator``)."""
    holder = _model_at(loc, data, model)
    if not (isinstance(holder, type) and issubclass(holder, BaseModel)):
        return None
    for name, field in holder.model_fields.items():
        inner = _model_of(field.annotation, None)
        if isinstance(inner, type) and issubclass(inner, BaseModel) and loc[-1] in inner.model_fields:
            return name
    return None


def _model_at(loc: tuple, data: dict, model: Any) -> Any:
    """The model (or ``'refuter'``) that holds the key at ``loc``; None when the path leaves the models."""
    node: Any = data
    for part in loc[:-1]:
        if isinstance(node, dict):
            node = node.get(part)
        elif isinstance(node, list) and isinstance(part, int):
            node = node[part] if part < len(node) else None
        if isinstance(part, int):
            continue
        if model == "refuter":
            member = REFUTER_MODELS.get(part)
            model = member.model_fields[part].annotation if member else None
            continue
        field = model.model_fields.get(part) if isinstance(model, type) and issubclass(model, BaseModel) else None
        if field is None:
            return None
        model = _model_of(field.annotation, node)
    return model


def _model_of(annotation: Any, node: Any) -> Any:
    import typing

    origin = typing.get_origin(annotation)
    args = typing.get_args(annotation)
    if origin is Annotated:
        return _model_of(args[0], node)
    if origin in (Union, getattr(__import__("types"), "UnionType", Union)):
        if annotation is Refuter or set(args) == set(typing.get_args(Refuter)):
            return "refuter"
        models = [a for a in args if isinstance(a, type) and issubclass(a, BaseModel)]
        if len(models) > 1 and isinstance(node, dict) and "method" in node:
            for m in models:
                if "method" in m.model_fields and node["method"] in typing.get_args(m.model_fields["method"].annotation):
                    return m
        if len(models) == 1:
            return models[0]
        if args and all(a is type(None) or a in models for a in args) and models:
            return models[0]
        for a in args:
            inner = _model_of(a, node)
            if isinstance(inner, type) and issubclass(inner, BaseModel) or inner == "refuter":
                return inner
        return None
    if origin is list and args:
        inner = _model_of(args[0], None)
        return inner
    return annotation


def _describe(err: dict, methods: tuple[str, ...]) -> str:
    kind = err["type"]
    if kind == "missing":
        return "required key is missing"
    if kind == "union_tag_invalid":
        ctx = err.get("ctx", {})
        return f"unknown method {ctx.get('tag')!r}; choose one of: {', '.join(methods)}"
    if kind == "union_tag_not_found":
        return f"key 'method' is missing; choose one of: {', '.join(methods)}"
    msg = err["msg"]
    if msg.startswith("Value error, "):
        msg = msg[len("Value error, "):]
    found = err.get("input")
    secret = any(part in ("connection_env", "catalog") for part in err.get("loc", ()))  # may hold a URL, a password
    if kind not in ("extra_forbidden",) and not isinstance(found, (dict, list)) and not secret:
        msg += f" (found {found!r})"
    if kind == "list_type" and isinstance(found, str):  # covariates: sex
        msg += f"; write a list: [{found}]"
    return msg


def _first_error(exc: ValidationError, data: dict, lines: dict[tuple, int],
                 schema: "StudySchema") -> tuple[str, str, int | None]:
    errors = exc.errors()
    # A refuter list item fails against every union member: report the clearest.
    err = errors[0]
    loc = clean_loc(err["loc"], data, schema.union_tags)
    if loc and loc[0] == "refute" and len(loc) >= 2:
        item = data.get("refute", [])[loc[1]] if isinstance(data.get("refute"), list) and loc[1] < len(data["refute"]) else None
        if isinstance(item, str) or (isinstance(item, dict) and len(item) == 1 and item.get(next(iter(item))) is None):
            # a name alone runs with its defaults (``Study._named_alone``), so only an unknown one reaches here;
            # pydantic would name the union's first member (PlaceboTreatment)
            name = item if isinstance(item, str) else next(iter(item))
            path = ("refute", loc[1])
            if name not in REFUTERS:
                return key_path(path), (f"unknown refuter {name!r}{_nearest(str(name), REFUTERS)}; choose from "
                                        f"{', '.join(REFUTERS)}"), _line_for(path, lines)
        if isinstance(item, dict):
            names = list(item)
            bad = [n for n in names if n not in REFUTERS]
            if bad or len(names) != 1:
                path = ("refute", loc[1]) + ((bad[0],) if bad else ())
                hint = _nearest(bad[0], REFUTERS) if bad else ""
                msg = (
                    f"unknown refuter {bad[0]!r}{hint}; choose from {', '.join(REFUTERS)}"
                    if bad
                    else "each refute item names one refuter, e.g. '- placebo_treatment: {simulations: 100}'"
                )
                return key_path(path), msg, _line_for(path, lines)
            # the item's own options failed: keep the union member of its name
            member = REFUTER_MODELS[names[0]].__name__
            for e in errors:
                if len(e["loc"]) >= 3 and e["loc"][2] == member:
                    err, loc = e, clean_loc(e["loc"], data, schema.union_tags)
                    break
    if err["type"] == "extra_forbidden":
        allowed = _allowed_keys(loc, data, schema.model)
        home = _nested_home(loc, data, schema.model)
        if home is not None:  # an exact key one level down beats a near one here
            hint = f" here: it belongs under {key_path(loc[:-1] + (home,))!r} ({key_path(loc[:-1] + (home, loc[-1]))})"
        else:
            hint = _nearest(str(loc[-1]), allowed)
        msg = f"unknown key{hint}"
        if allowed:
            msg += f"; valid keys here: {', '.join(allowed)}"
        return key_path(loc), msg, _line_for(loc, lines)
    return key_path(loc), _describe(err, schema.methods), _line_for(loc, lines)


def _nearest(word: str, choices: Any) -> str:
    match = difflib.get_close_matches(word, list(choices), n=1, cutoff=0.6)
    return f" (did you mean {match[0]!r}?)" if match else ""


def _line_for(loc: tuple, lines: dict[tuple, int]) -> int | None:
    for cut in range(len(loc), -1, -1):
        if loc[:cut] in lines:
            return lines[loc[:cut]]
    return None


@dataclass(frozen=True)
class StudySchema:
    """The concrete study model (``Study`` with every family's `design:` model joined by `method`).

    ``build(None)`` makes that model, ``build(method)`` the same with one family's `design:` model: a spec
    naming a known method is validated against the latter, so a command builds only its own family's models.
    A spec that fails it is validated again against the whole union, so every error reads as it always has.
    """

    build: Callable[[str | None], type[Study]]
    methods: tuple[str, ...]

    @cached_property
    def model(self) -> type[Study]:
        return self.build(None)

    def _model_for(self, data: dict) -> type[Study] | None:
        design = data.get("design")
        method = design.get("method") if isinstance(design, dict) else None
        return self.build(method) if isinstance(method, str) and method in self.methods else None

    @property
    def union_tags(self) -> set[str]:
        """Union member names pydantic puts in error locations, dropped from key paths."""
        return set(self.methods) | _OTHER_TAGS

    def validate_mapping(self, data: dict, source: SpecSource, lines: dict[tuple, int] | None = None) -> Study:
        """Validate a parsed mapping against the models, with a one-line error."""
        from causalcli.spec.placeholders import advice, find_todos

        todos = find_todos(data)
        if todos:  # written by `causalcli init` where it could not guess: the first, and how many more
            where = key_path(todos[0])
            more = [key_path(t) for t in todos[1:]]
            also = f"; also TODO: {', '.join(more)}" if more else ""
            raise SpecError(f"is still TODO: {advice(where)}{also}", file=source.display, key=where,
                            line=_line_for(todos[0], lines or {}))
        narrow = self._model_for(data)
        if narrow is not None:
            try:
                return narrow.model_validate(data)
            except ValidationError:
                pass  # reported below, against the whole union, as always
        try:
            return self.model.model_validate(data)
        except ValidationError as exc:
            path, msg, line = _first_error(exc, data, lines or {}, self)
            raise SpecError(msg, file=source.display, key=path or None, line=line) from None

    def load(self, source: SpecSource, overrides: list[str] | None = None) -> LoadedSpec:
        """Parse, override and validate one spec source."""
        data, lines = parse_yaml(source)
        if overrides:
            patched = apply_overrides(data, overrides, source, self)
            try:
                study = self.validate_mapping(patched, source, lines)
            except SpecError as exc:
                self._blame_validation(exc, data, overrides, source, lines)
                raise
        else:
            study = self.validate_mapping(data, source, lines)
        if source.path == "-":
            name = study.name or "stdin"
        else:
            name = study.name or Path(source.path).stem
        canonical = json.dumps(study.model_dump(mode="json"), sort_keys=True, separators=(",", ":"))
        sha = hashlib.sha256(canonical.encode()).hexdigest()
        return LoadedSpec(study=study, source=source, name=name, sha256=sha)

    def _blame_validation(self, exc: SpecError, data: dict, overrides: list[str], source: SpecSource,
                          lines: dict[tuple, int]) -> None:
        """An error the ``--set`` values brought in cites them; the file's own error keeps its line."""
        try:
            self.validate_mapping(data, source, lines)
        except SpecError as own:
            if (own.key, own.message) == (exc.key, exc.message):
                return
        item = matching_override(exc.key, overrides)
        cite_overrides(exc, [item] if item is not None else [o for o in overrides if "=" in o])

    def json_schema(self) -> dict:
        """The JSON Schema of the study spec (``causalcli schema``)."""
        schema = self.model.model_json_schema()
        schema["$schema"] = "https://json-schema.org/draft/2020-12/schema"
        return schema
