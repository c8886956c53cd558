"""The study spec: pydantic models, YAML loading with line numbers, overrides.

Every key is declared here, so ``causalcli schema`` can print a JSON Schema that
editors use to complete and check spec files. Unknown keys are refused with the
nearest valid key suggested; every error names the file, the key path and, where
known, the YAML line. Only ``yaml.safe_load``/``yaml.compose`` with the safe
loader ever read a spec.
"""

from __future__ import annotations

import difflib
import hashlib
import json
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Annotated, Any, Literal, Union

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from causalcli.errors import SpecError

METHODS = ("matching", "weighting", "did", "synthetic_control", "dml", "experiment")


from causalcli.design_specs.base import DesignBase, FreeOptions, Strict as _Strict  # noqa: E402,F401


# ---------------------------------------------------------------- data, graph


class DataSpec(_Strict):
    """Where the data is and which rows and columns to use."""

    path: str = Field(description='Data file, relative to the spec file; "-" reads CSV from stdin.')
    format: Literal["auto", "csv", "parquet"] = Field(
        "auto", description="auto chooses by extension (.csv, .parquet/.pq)."
    )
    filter: str | None = Field(
        None,
        description="SQL boolean expression over the columns (DuckDB dialect). It can read "
        "only this data: external access is off while it runs.",
    )
    columns: dict[str, str] = Field(default_factory=dict, description="Renames {old: new}.")
    delimiter: str | None = Field(
        None, min_length=1, max_length=1, pattern=r"^[^\"'\r\n]$",
        description="CSV field delimiter, one character (e.g. ';' or a tab, written \"\\t\" in YAML); default: "
        "tab for .tsv files, else the one of , ; tab | found most often in the header line.",
    )
    timezone: str = Field(
        "UTC", description="IANA time zone (e.g. Europe/Berlin) in which timestamps of a time column are cut to "
        "days; naive timestamps are read as UTC.",
    )

    @field_validator("timezone")
    @classmethod
    def _known_zone(cls, v: str) -> str:
        import zoneinfo

        try:
            zoneinfo.ZoneInfo(v)
        except (zoneinfo.ZoneInfoNotFoundError, ValueError):
            raise ValueError(f"unknown time zone {v!r}; use an IANA name such as UTC or Europe/Berlin") from None
        return v


class GraphSpec(_Strict):
    """A causal graph; give exactly one of ``edges``, ``dot`` or ``file``."""

    edges: list[tuple[str, str]] | None = Field(None, description="Directed edges [from, to].")
    dot: str | None = Field(None, description='A DOT digraph, e.g. "digraph {a -> t; a -> y; t -> y}".')
    file: str | None = Field(None, description="A .dot or .gml file, relative to the spec file.")

    @model_validator(mode="after")
    def _exactly_one(self) -> "GraphSpec":
        given = [k for k in ("edges", "dot", "file") if getattr(self, k) is not None]
        if len(given) != 1:
            raise ValueError(
                "give exactly one of 'edges', 'dot' or 'file'"
                + (f" (got {', '.join(given)})" if given else "")
            )
        return self


# ---------------------------------------------------------------- designs
# Each design family keeps its `design:` block model in causalcli/design_specs/<family>.py.

from causalcli.design_specs.did import DidDesign  # noqa: E402
from causalcli.design_specs.dml import DmlDesign  # noqa: E402
from causalcli.design_specs.experiment import ExperimentDesign  # noqa: E402
from causalcli.design_specs.matching import MatchingDesign, MatchingOptions  # noqa: E402,F401
from causalcli.design_specs.synth import SynthDesign  # noqa: E402
from causalcli.design_specs.weighting import WeightingDesign  # noqa: E402

Design = Annotated[
    Union[MatchingDesign, WeightingDesign, DidDesign, SynthDesign, DmlDesign, ExperimentDesign],
    Field(discriminator="method"),
]


# ---------------------------------------------------------------- checks, refuters


class Thresholds(_Strict):
    """What fails a check."""

    alpha: float = Field(0.05, gt=0, lt=1, description="Refutations and pre-trend test.")
    balance_smd: float = Field(0.1, gt=0, description="Max |standardised mean difference| after adjustment.")
    propensity_bounds: tuple[float, float] = Field(
        (0.01, 0.99), description="Overlap: propensity scores outside these bounds count as lacking support."
    )
    max_outside: float = Field(0.05, ge=0, le=1, description="Largest share of units allowed outside the bounds.")
    srm_alpha: float = Field(0.001, gt=0, lt=1, description="Sample-ratio mismatch.")
    pre_fit: float = Field(0.1, gt=0, description="Synthetic control: pre-RMSPE / mean |treated pre outcome|.")

    @field_validator("propensity_bounds")
    @classmethod
    def _ordered(cls, v: tuple[float, float]) -> tuple[float, float]:
        lo, hi = v
        if not 0 <= lo < hi <= 1:
            raise ValueError("needs 0 <= lower < upper <= 1")
        return v


class SimulationOptions(_Strict):
    simulations: int = Field(100, ge=1, le=100_000)


class SubsetOptions(_Strict):
    fraction: float = Field(0.8, gt=0, lt=1)
    simulations: int = Field(100, ge=1, le=100_000)


class PlaceboTreatment(_Strict):
    placebo_treatment: SimulationOptions = Field(default_factory=SimulationOptions)


class RandomCommonCause(_Strict):
    random_common_cause: SimulationOptions = Field(default_factory=SimulationOptions)


class DataSubset(_Strict):
    data_subset: SubsetOptions = Field(default_factory=SubsetOptions)


class PlaceboInTimeOptions(_Strict):
    """Synthetic control: refit with a fake treatment start inside the pre-period."""

    simulations: int = Field(10, ge=1, le=1000, description="Fake starts, drawn at random from the eligible pre-periods; "
                             "when there are no more eligible starts than this, each is run once.")
    min_pre: int = Field(5, ge=2, description="Pre-periods a fake start must leave before it.")


class LeaveOneDonorOutOptions(_Strict):
    """Synthetic control: refit without each weighted donor in turn (one run covers them all)."""

    donors: int = Field(10, ge=1, le=1000, description="Drop each of up to this many largest-weight donors.")

    @property
    def simulations(self) -> int:
        return 1


class PlaceboInTime(_Strict):
    placebo_in_time: PlaceboInTimeOptions = Field(default_factory=PlaceboInTimeOptions)


class LeaveOneDonorOut(_Strict):
    leave_one_donor_out: LeaveOneDonorOutOptions = Field(default_factory=LeaveOneDonorOutOptions)


Refuter = Union[PlaceboTreatment, RandomCommonCause, DataSubset, PlaceboInTime, LeaveOneDonorOut]
REFUTERS = ("placebo_treatment", "random_common_cause", "data_subset", "placebo_in_time", "leave_one_donor_out")
_REFUTER_CLASSES = {"placebo_treatment": PlaceboTreatment, "random_common_cause": RandomCommonCause, "data_subset": DataSubset,
                    "placebo_in_time": PlaceboInTime, "leave_one_donor_out": LeaveOneDonorOut}
REFUTER_MODELS = _REFUTER_CLASSES


def refuter_name(item: BaseModel) -> str:
    return next(iter(type(item).model_fields))


def refuter_options(item: BaseModel) -> BaseModel:
    return getattr(item, refuter_name(item))


# ---------------------------------------------------------------- the study


class Study(_Strict):
    """One causal study: data, roles of columns, design, checks and refutations."""

    model_config = ConfigDict(
        extra="forbid",
        frozen=True,
        json_schema_extra={"title": "causalcli study spec", "$id": "causalcli.spec/v1"},
    )

    version: Literal[1] = 1
    name: str | None = Field(None, description="Default: the file name without extension.")
    description: str | None = None
    data: DataSpec
    treatment: str | None = Field(None, description="Binary 0/1 or boolean treatment column.")
    outcome: str | None = Field(None, description="Numeric outcome column.")
    covariates: list[str] = Field(default_factory=list)
    categorical: list[str] = Field(default_factory=list, description="Covariates to one-hot encode.")
    weights: str | None = Field(None, description="Observation-weight column.")
    graph: GraphSpec | None = None
    design: Design
    segments: list[str] = Field(default_factory=list)
    conf_level: float = Field(0.95, gt=0, lt=1)
    thresholds: Thresholds = Field(default_factory=Thresholds)
    refute: list[Refuter] | None = Field(
        None, description="Refuters to run; default depends on the method; [] runs none."
    )
    seed: int = Field(0, ge=0)

    @model_validator(mode="after")
    def _roles(self) -> "Study":
        unknown_cat = [c for c in self.categorical if c not in self.covariates]
        if unknown_cat:
            raise ValueError(f"categorical columns must also be covariates: {', '.join(unknown_cat)}")
        return self


# ---------------------------------------------------------------- loading


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
        text = p.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise SpecError(f"cannot read spec file ({exc.__class__.__name__}: {exc})", file=str(p)) from exc
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
        raise SpecError(f"YAML syntax error: {problem}", file=source.display, line=line) from None
    if data is None:
        raise SpecError("spec is empty; start from `causalcli init DATA ...`", file=source.display)
    if not isinstance(data, dict):
        raise SpecError("a spec must be a mapping of keys (data, treatment, outcome, design, ...)", file=source.display, line=1)
    lines: dict[tuple, int] = {}
    _index_lines(node, (), lines)
    return data, lines


def _index_lines(node: Any, path: tuple, lines: dict[tuple, int]) -> None:
    if node is None:
        return
    lines.setdefault(path, node.start_mark.line + 1)
    if isinstance(node, yaml.MappingNode):
        for key_node, value_node in node.value:
            key = key_node.value
            lines[path + (key,)] = key_node.start_mark.line + 1
            _index_lines(value_node, path + (key,), lines)
    elif isinstance(node, yaml.SequenceNode):
        for i, item in enumerate(node.value):
            _index_lines(item, path + (i,), lines)


def key_path(loc: tuple) -> str:
    """('refute', 0, 'data_subset', 'fraction') -> 'refute[0].data_subset.fraction'."""
    out = ""
    for part in loc:
        if isinstance(part, int):
            out += f"[{part}]"
        else:
            out += ("." if out else "") + str(part)
    return out


def _clean_loc(loc: tuple, data: dict) -> tuple:
    """Drop pydantic's union tags (design.matching.options -> design.options)."""
    out: list = []
    node: Any = data
    for part in loc:
        if isinstance(node, dict) and isinstance(part, str) and part not in node and part in _UNION_TAGS:
            continue
        out.append(part)
        if isinstance(node, dict):
            node = node.get(part)
        elif isinstance(node, list) and isinstance(part, int) and part < len(node):
            node = node[part]
        else:
            node = None
    return tuple(out)


_UNION_TAGS = set(METHODS) | {
    "PlaceboTreatment", "RandomCommonCause", "DataSubset", "PlaceboInTime", "LeaveOneDonorOut", "list[tuple[str,str]]",
    "tuple[str, str]", "str", "int", "float",
}


def _allowed_keys(loc: tuple, data: dict) -> list[str]:
    """Valid keys of the model that holds the unknown key at ``loc``."""
    model: Any = Study
    node: Any = data
    for part in loc[:-1]:
        if isinstance(node, dict):
            node = node.get(part)
        elif isinstance(node, list) and isinstance(part, int):
            node = node[part] if part < len(node) else None
        if isinstance(part, int):
            continue
        if model == "refuter":
            member = _REFUTER_CLASSES.get(part)
            model = member.model_fields[part].annotation if member else None
            continue
        field = model.model_fields.get(part) if isinstance(model, type) and issubclass(model, BaseModel) else None
        if field is None:
            return []
        model = _model_of(field.annotation, node)
    if isinstance(model, type) and issubclass(model, BaseModel):
        return list(model.model_fields)
    if model == "refuter":
        return list(REFUTERS)
    return []


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


def _describe(err: dict) -> str:
    kind = err["type"]
    if kind == "missing":
        return "required key is missing"
    if kind == "union_tag_invalid":
        ctx = err.get("ctx", {})
        return f"unknown method {ctx.get('tag')!r}; choose one of: {', '.join(METHODS)}"
    if kind == "union_tag_not_found":
        return f"key 'method' is missing; choose one of: {', '.join(METHODS)}"
    msg = err["msg"]
    if msg.startswith("Value error, "):
        msg = msg[len("Value error, "):]
    found = err.get("input")
    if kind not in ("extra_forbidden",) and not isinstance(found, (dict, list)):
        msg += f" (found {found!r})"
    return msg


def _first_error(exc: ValidationError, data: dict, lines: dict[tuple, int]) -> tuple[str, str, int | None]:
    errors = exc.errors()
    # A refuter list item fails against every union member: report the clearest.
    err = errors[0]
    loc = _clean_loc(err["loc"], data)
    if loc and loc[0] == "refute" and len(loc) >= 2:
        item = data.get("refute", [])[loc[1]] if isinstance(data.get("refute"), list) and loc[1] < len(data["refute"]) else None
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
            member = _REFUTER_CLASSES[names[0]].__name__
            for e in errors:
                if len(e["loc"]) >= 3 and e["loc"][2] == member:
                    err, loc = e, _clean_loc(e["loc"], data)
                    break
    if err["type"] == "extra_forbidden":
        allowed = _allowed_keys(loc, data)
        hint = _nearest(str(loc[-1]), allowed)
        msg = f"unknown key{hint}"
        if allowed:
            msg += f"; valid keys here: {', '.join(allowed)}"
        return key_path(loc), msg, _line_for(loc, lines)
    return key_path(loc), _describe(err), _line_for(loc, lines)


def _nearest(word: str, choices: Any) -> str:
    match = difflib.get_close_matches(word, list(choices), n=1, cutoff=0.6)
    return f" (did you mean {match[0]!r}?)" if match else ""


def _line_for(loc: tuple, lines: dict[tuple, int]) -> int | None:
    for cut in range(len(loc), -1, -1):
        if loc[:cut] in lines:
            return lines[loc[:cut]]
    return None


def validate_mapping(data: dict, source: SpecSource, lines: dict[tuple, int] | None = None) -> Study:
    """Validate a parsed mapping against the models, with a one-line error."""
    from causalcli.placeholders import advice, find_todo

    todo = find_todo(data)
    if todo is not None:  # written by `causalcli init` where it could not guess
        where = key_path(todo)
        raise SpecError(f"is still TODO: {advice(where)}", file=source.display, key=where,
                        line=_line_for(todo, lines or {}))
    try:
        return Study.model_validate(data)
    except ValidationError as exc:
        path, msg, line = _first_error(exc, data, lines or {})
        raise SpecError(msg, file=source.display, key=path or None, line=line) from None


def apply_overrides(data: dict, overrides: list[str], source: SpecSource) -> dict:
    """Apply ``--set key.path=value``; values take the type the schema wants.

    The value is read as YAML (numbers, booleans, lists); where that fails the
    schema and the raw text does not, the raw text is kept, so ``--set name=1``
    still gives a string. Errors name the ``--set KEY=VALUE`` they come from.
    """
    import copy

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
        if not isinstance(value, str) and tuple(parts) in _failing_paths(out, len(parts)):
            _set_path(out, parts, raw, item, source)
            if tuple(parts) in _failing_paths(out, len(parts)):  # the text fails too: report the value as typed
                _set_path(out, parts, value, item, source)
    return out


def _override_parts(key: str) -> list[Any]:
    """'refute.0.data_subset' -> ['refute', 0, 'data_subset']."""
    return [int(p) if p.isdigit() else p for p in key.strip().split(".")]


def _key_parts(key: str) -> tuple:
    """An error's key path, 'refute[0].data_subset' -> ('refute', 0, 'data_subset')."""
    return tuple(_override_parts(key.replace("[", ".").replace("]", "")))


def _failing_paths(data: dict, depth: int) -> set[tuple]:
    try:
        Study.model_validate(data)
    except ValidationError as exc:
        return {_clean_loc(e["loc"], data)[:depth] for e in exc.errors()}
    return set()


def _set_path(node: Any, parts: list, value: Any, item: str, source: SpecSource) -> None:
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
    item = _matching_override(getattr(exc, "key", None), overrides or [], under_only=True)
    if item is not None:
        _cite_overrides(exc, [item])


def _matching_override(key: str | None, overrides: list[str], under_only: bool = False) -> str | None:
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


def _cite_overrides(exc: Any, items: list[str]) -> None:
    if exc.message.startswith("--set "):
        return
    exc.message = " ".join(f"--set {i}" for i in items) + f": {exc.message}"
    exc.line = None  # no line of the file holds this value


def load_spec(source: SpecSource, overrides: list[str] | None = None) -> LoadedSpec:
    """Parse, override and validate one spec source."""
    data, lines = parse_yaml(source)
    if overrides:
        patched = apply_overrides(data, overrides, source)
        try:
            study = validate_mapping(patched, source, lines)
        except SpecError as exc:
            _blame_validation(exc, data, overrides, source, lines)
            raise
    else:
        study = validate_mapping(data, source, lines)
    if source.path == "-":
        name = study.name or "stdin"
    else:
        name = study.name or Path(source.path).stem
    canonical = json.dumps(study.model_dump(mode="json"), sort_keys=True, separators=(",", ":"))
    sha = hashlib.sha256(canonical.encode()).hexdigest()
    return LoadedSpec(study=study, source=source, name=name, sha256=sha)


def _blame_validation(exc: SpecError, data: dict, overrides: list[str], source: SpecSource,
                      lines: dict[tuple, int]) -> None:
    """An error the ``--set`` values brought in cites them; the file's own error keeps its line."""
    try:
        validate_mapping(data, source, lines)
    except SpecError as own:
        if (own.key, own.message) == (exc.key, exc.message):
            return
    item = _matching_override(exc.key, overrides)
    _cite_overrides(exc, [item] if item is not None else [o for o in overrides if "=" in o])


def json_schema() -> dict:
    """The JSON Schema of the study spec (``causalcli schema``)."""
    schema = Study.model_json_schema()
    schema["$schema"] = "https://json-schema.org/draft/2020-12/schema"
    return schema
