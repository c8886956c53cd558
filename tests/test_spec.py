"""The spec: unknown keys with suggestions, YAML lines, types, overrides, schema."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from causalcli.errors import SpecError
from causalcli.spec.loading import SpecSource, parse_yaml
from causalcli.spec.placeholders import find_todo
from causalcli.study import json_schema, load_spec

BASE = """version: 1
data: {path: d.csv}
treatment: t
outcome: y
covariates: [a, b]
design:
  method: matching
  options: {neighbors: 2}
"""


def load(text: str, overrides=None):
    return load_spec(SpecSource("s.yaml", text, Path(".")), overrides)


def error(text: str, overrides=None) -> SpecError:
    with pytest.raises(SpecError) as info:
        load(text, overrides)
    assert info.value.exit_code == 2
    assert "\n" not in str(info.value)
    return info.value


def test_valid_spec_defaults():
    s = load(BASE)
    assert s.name == "s"
    assert s.study.design.options.neighbors == 2
    assert s.study.thresholds.balance_smd == 0.1
    assert s.study.refute is None


def test_unknown_key_suggests_nearest_and_names_line():
    e = error(BASE.replace("neighbors", "neighbours"))
    assert e.key == "design.options.neighbours" and e.line == 8
    assert "did you mean 'neighbors'" in str(e)
    e = error(BASE.replace("covariates", "covariate"))
    assert e.key == "covariate" and e.line == 5 and "'covariates'" in str(e)
    e = error(BASE + "thresholds: {alpah: 0.1}\n")
    assert e.key == "thresholds.alpah" and "'alpha'" in str(e)


def test_unknown_refuter_and_refuter_option():
    e = error(BASE + "refute:\n  - placebo_treatmen: {simulations: 10}\n")
    assert "did you mean 'placebo_treatment'" in str(e) and e.line == 10
    e = error(BASE + "refute:\n  - data_subset: {fraction: 2}\n")
    assert e.key == "refute[0].data_subset.fraction" and "less than 1" in str(e)


@pytest.mark.parametrize("item", ["data_subset", "data_subset:"])
def test_a_refuter_named_without_options_runs_with_its_defaults(item):
    # pydantic refused it, naming the union's first member: "valid dictionary or instance of PlaceboTreatment"
    alone = load(BASE + f"refute:\n  - placebo_treatment: {{}}\n  - {item}\n")
    spelled = load(BASE + "refute:\n  - placebo_treatment: {}\n  - data_subset: {}\n")
    assert alone.study.refute == spelled.study.refute and len(alone.study.refute) == 2
    e = error(BASE + "refute: [data_subsets]\n")
    assert "unknown refuter 'data_subsets' (did you mean 'data_subset'?)" in str(e) and "PlaceboTreatment" not in str(e)


def test_missing_field_wrong_type_unknown_method():
    e = error(BASE.replace("data: {path: d.csv}\n", ""))
    assert e.key == "data" and "missing" in str(e)
    e = error(BASE.replace("neighbors: 2", "neighbors: two"))
    assert e.key == "design.options.neighbors" and "integer" in str(e) and "'two'" in str(e)
    e = error(BASE.replace("method: matching", "method: matchin"))
    assert e.key == "design" and "matching" in str(e)


def test_yaml_syntax_error_names_line():
    e = error("version: 1\ndata: {path: d.csv\ntreatment: t\n")
    assert e.line is not None and "YAML syntax error" in str(e)


def test_yaml_is_safe_loaded():
    e = error("!!python/object/apply:os.system ['echo hacked']\n")
    assert "YAML" in str(e)


def test_a_key_given_twice_is_refused_with_both_lines():
    # YAML keeps the last of two equal keys in silence: a second `outcome:` pasted below the first
    # would run another study than the one the reader sees first
    e = error(BASE + "outcome: z\n")
    assert e.key == "outcome" and e.line == 9 and "lines 4 and 9" in str(e)
    e = error(BASE.replace("{neighbors: 2}", "{neighbors: 2, neighbors: 3}"))
    assert e.key == "design.options.neighbors" and e.line == 8


def test_aliases_are_walked_once():
    # a recursive alias is a wrong type like any other, not a RecursionError (exit 4)
    e = error(BASE + "name: &a [*a]\n")
    assert e.key == "name"
    # aliases nested to multiply ("billion laughs": 9 ** 5 strings here, 9 ** 9 cost hours): each node
    # is indexed once, so the key lines stay as many as the text has nodes
    bomb = "lol0: &l0 [a, a, a, a, a, a, a, a, a]\n" + "".join(
        f"lol{i}: &l{i} [{', '.join([f'*l{i - 1}'] * 9)}]\n" for i in range(1, 5))
    _, lines = parse_yaml(SpecSource("s.yaml", bomb + BASE, Path(".")))
    assert len(lines) < 80
    assert find_todo(yaml.safe_load(bomb + "x: &x [*x]\n")) is None
    e = error(bomb + BASE)
    assert e.key.startswith("lol")


def test_a_column_listed_twice_or_a_role_among_the_covariates_is_refused():
    # a repeated covariate made a singular propensity model (exit 4, no column named); the outcome among
    # the covariates was estimated in silence, the treatment made "no common support" (exit 4)
    e = error(BASE, ["covariates.1=a"])
    assert e.key == "covariates" and "'a' is listed twice (items 1 and 2)" in str(e)
    e = error(BASE.replace("[a, b]", "[a, y]"))
    assert e.key == "covariates" and e.line == 5 and "'y' is the outcome" in str(e)
    e = error(BASE.replace("[a, b]", "[t, a]"))
    assert e.key == "covariates" and "'t' is the treatment" in str(e)
    e = error(BASE + "segments: [a, a]\n")
    assert e.key == "segments" and "listed twice" in str(e)


def test_overrides_take_schema_types():
    s = load(BASE, ["design.options.caliper=0.25", "name=123", "design.estimand=att", "covariates=[a]",
                    "refute=[]", "thresholds.alpha=0.01"])
    assert s.study.design.options.caliper == 0.25
    assert s.name == "123" and isinstance(s.study.name, str)
    assert s.study.covariates == ["a"] and s.study.refute == []
    assert s.study.thresholds.alpha == 0.01
    e = error(BASE, ["design.options.caliper=abc"])
    assert e.key == "design.options.caliper"
    e = error(BASE, ["nokey"])
    assert "KEY=VALUE" in str(e)


def test_spec_hash_changes_with_overrides():
    assert load(BASE).sha256 == load(BASE).sha256
    assert load(BASE).sha256 != load(BASE, ["seed=3"]).sha256


def test_schema_is_generated_from_models():
    schema = json_schema()
    assert schema["$schema"].endswith("2020-12/schema")
    assert {"data", "design", "treatment", "refute", "thresholds"} <= set(schema["properties"])
    assert schema["additionalProperties"] is False
    assert "MatchingOptions" in schema["$defs"]
    import json

    json.dumps(schema)


def test_bundled_specs_validate_against_the_schema():
    import jsonschema
    import yaml

    schema = json_schema()
    for path in (Path(__file__).resolve().parents[1] / "specs").glob("*.yaml"):
        jsonschema.validate(yaml.safe_load(path.read_text()), schema)


def test_the_schema_admits_a_refuter_named_alone_as_the_loader_does():
    import jsonschema
    import yaml

    schema = json_schema()
    spec = yaml.safe_load("version: 1\nname: s\ndata: {path: d.csv}\ndesign: {method: matching}\n"
                          "refute: [data_subset, {placebo_treatment: {simulations: 5}}]\n")
    jsonschema.validate(spec, schema)
    spec["refute"] = ["no_such_refuter"]
    with pytest.raises(jsonschema.ValidationError):
        jsonschema.validate(spec, schema)


def test_a_spec_not_in_utf8_or_indented_with_tabs_says_where_and_what_to_do(tmp_path):
    """A Latin-1 spec showed Python's UnicodeDecodeError with a byte position; a tab, YAML's bare 'cannot start
    any token' (trial as a CI user)."""
    from causalcli.errors import SpecError
    from causalcli.spec.loading import collect_sources, parse_yaml

    latin = tmp_path / "latin.yaml"
    latin.write_bytes("version: 1\nname: café\n".encode("latin-1"))
    with pytest.raises(SpecError) as bad:
        collect_sources([str(latin)])
    assert bad.value.line == 2 and "is not UTF-8 (byte 0xe9 cannot be read); save the file as UTF-8" in bad.value.message
    tabs = tmp_path / "tabs.yaml"
    tabs.write_text("version: 1\ndesign:\n\tmethod: did\n")
    with pytest.raises(SpecError) as bad:
        parse_yaml(collect_sources([str(tabs)])[0])
    assert bad.value.line == 3 and bad.value.message.endswith("indent with spaces, not tabs")
