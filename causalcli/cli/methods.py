"""``causalcli methods``: designs, estimators, options and defaults, refuters, thresholds."""

from __future__ import annotations

import json
import typer

from causalcli.cli.common import choices, guarded

MethodsFormat = choices("MethodsFormat", ("text", "json"))


def register(app: typer.Typer) -> None:
    app.command("methods")(methods_command)


def catalogue() -> dict:
    """Everything ``methods`` lists, from the registry and the spec models (no heavy imports)."""
    from causalcli.checks.refutation import RULES, TESTED
    from causalcli.designs import families, get_design
    from causalcli.spec.models import Thresholds, refuter_options

    designs = []
    for name, entry in families().items():
        d = {"name": name, "built": entry.built, "summary": entry.summary}
        if entry.built:
            design = get_design(name)
            d.update(estimators=list(design.estimators), estimands=list(design.estimands),
                     inference=list(design.inference), default_refuters=list(design.default_refuters),
                     default_simulations=dict(design.default_simulations),
                     reference=design.reference)
            options_field = entry.spec.model_fields.get("options")
            factory = options_field.default_factory if options_field is not None else None
            if factory is not None and getattr(factory, "model_fields", None):
                model = factory()
                d["options"] = {k: {"default": getattr(model, k), "help": f.description or ""}
                                for k, f in type(model).model_fields.items()}
        else:
            d["planned"] = entry.planned
        designs.append(d)
    from causalcli.spec.models import REFUTER_MODELS
    tested = TESTED
    refuters = []
    for name, model in REFUTER_MODELS.items():
        refuters.append({"name": name, "defaults": refuter_options(model()).model_dump(), "tests": tested.get(name, "")})
    thresholds = {k: {"default": v, "help": Thresholds.model_fields[k].description}
                  for k, v in Thresholds().model_dump().items()}
    return {"designs": designs, "refuters": refuters, "thresholds": thresholds,
            "refutation_rules": dict(RULES)}


@guarded
def methods_command(format: MethodsFormat = typer.Option(MethodsFormat("text"), "--format", "-f")) -> None:
    """List designs, estimators, refuters, their options and defaults."""
    cat = catalogue()
    if format.value == "json":
        typer.echo(json.dumps(cat, indent=2, default=str))
        return
    lines = ["designs (design.method):"]
    for d in cat["designs"]:
        if not d["built"]:
            lines.append(f"  {d['name']:<18} not built yet ({d['planned']})")
            continue
        lines.append(f"  {d['name']:<18} {d['summary']}")
        lines.append(f"      estimators: {', '.join(d['estimators'])}; estimands: {', '.join(d['estimands'])}; "
                     f"inference: {', '.join(d['inference'])}")
        sims = d.get("default_simulations", {})
        refs = ", ".join(n + (f" x {sims[n]}" if n in sims else "") for n in d["default_refuters"])
        lines.append(f"      default refuters: {refs or 'none (randomised: nothing to refute)'}")
        for k, o in d.get("options", {}).items():
            lines.append(f"      options.{k} = {o['default']!r}: {o['help']}")
    lines.append("refuters (refute: [...]):")
    for r in cat["refuters"]:
        opts = ", ".join(f"{k}: {v}" for k, v in r["defaults"].items())
        lines.append(f"  {r['name']:<20} {{{opts}}}")
        lines.append(f"      {r['tests']}")
        lines.append(f"      rule: {cat['refutation_rules'][r['name']]}")
    lines.append("thresholds (what fails a check):")
    for k, t in cat["thresholds"].items():
        lines.append(f"  {k:<18} {t['default']!s:<14} {t['help']}")
    typer.echo("\n".join(lines))
