"""What ``causalcli methods`` lists: designs, estimators, options and defaults, refuters, thresholds.

Read from the registry and the spec models alone, so listing them imports no heavy library.
"""

from __future__ import annotations

from causalcli.checks.refutation import BUDGET, FAILED_SIMULATIONS, RULES, TESTED
from causalcli.designs import families, get_design
from causalcli.spec.models import REFUTER_MODELS, Thresholds, refuter_options


def catalogue() -> dict:
    """Everything ``methods`` lists, as the JSON of ``methods --format json``."""
    designs = []
    for name, entry in families().items():
        d = {"name": name, "built": entry.built, "summary": entry.summary}
        if entry.built:
            design = get_design(name)
            d.update(estimators=list(design.estimators), estimands=list(design.estimands),
                     inference=list(design.inference), default_refuters=list(design.default_refuters),
                     reference=design.reference)
            options_field = entry.spec_model.model_fields.get("options")
            factory = options_field.default_factory if options_field is not None else None
            if factory is not None and getattr(factory, "model_fields", None):
                model = factory()
                d["options"] = {k: {"default": getattr(model, k), "help": f.description or ""}
                                for k, f in type(model).model_fields.items()}
        else:
            d["planned"] = entry.planned
        designs.append(d)
    refuters = []
    for name, model in REFUTER_MODELS.items():
        refuters.append({"name": name, "defaults": refuter_options(model()).model_dump(), "tests": TESTED.get(name, "")})
    thresholds = {k: {"default": v, "help": Thresholds.model_fields[k].description}
                  for k, v in Thresholds().model_dump().items()}
    return {"designs": designs, "refuters": refuters, "thresholds": thresholds,
            "refutation_rules": dict(RULES), "refutation_budget": BUDGET,
            "refutation_failures": FAILED_SIMULATIONS}
