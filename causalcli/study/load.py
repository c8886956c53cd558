"""Study specs read against the registry's study model (every family's `design:` block)."""

from __future__ import annotations

import hashlib
import json
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

        source = SpecSource("<dict>", yaml.safe_dump(spec), Path.cwd())
        study = validate_mapping(spec, source)
        sha = hashlib.sha256(json.dumps(study.model_dump(mode="json"), sort_keys=True).encode()).hexdigest()
        return LoadedSpec(study, source, study.name or "study", sha)
    return load_spec(collect_sources([str(spec)])[0], overrides)
