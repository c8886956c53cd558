"""Study specs read against the registry's study model (every family's `design:` block)."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

from causalcli.designs import study_schema
from causalcli.spec.loading import LoadedSpec, SpecSource, collect_sources


def load_spec(source: SpecSource, overrides: list[str] | None = None) -> LoadedSpec:
    """Parse, override and validate one spec source."""
    return study_schema().load(source, overrides)


def validate_mapping(data: dict, source: SpecSource, lines: dict[tuple, int] | None = None):
    """Validate a parsed mapping, with a one-line error naming the key."""
    return study_schema().validate_mapping(data, source, lines)


def json_schema() -> dict:
    """The JSON Schema of the study spec (``causalcli schema``)."""
    return study_schema().json_schema()


def as_loaded(spec: LoadedSpec | str | Path | dict, overrides: list[str] | None = None) -> LoadedSpec:
    """Accept a LoadedSpec, a spec file path or an already parsed mapping."""
    if isinstance(spec, LoadedSpec):
        return spec
    if isinstance(spec, dict):
        import yaml

        # the same loading (and so the same spec_sha256) as a file holding this mapping
        loaded = load_spec(SpecSource("<dict>", yaml.safe_dump(spec), Path.cwd()), overrides)
        return replace(loaded, name=loaded.study.name or "study")
    return load_spec(collect_sources([str(spec)])[0], overrides)
