"""``causalcli methods`` as text: the catalogue of designs, refuters and thresholds, one line per fact."""

from __future__ import annotations


def render_catalogue(cat: dict) -> str:
    """The text of ``methods`` for the mapping ``study.catalogue.catalogue()`` returns."""
    lines = ["designs (design.method):"]
    for d in cat["designs"]:
        if not d["built"]:
            lines.append(f"  {d['name']:<18} not built yet ({d['planned']})")
            continue
        lines.append(f"  {d['name']:<18} {d['summary']}")
        lines.append(f"      estimators: {', '.join(d['estimators'])}; estimands: {', '.join(d['estimands'])}; "
                     f"inference: {', '.join(d['inference'])}")
        refs = ", ".join(d["default_refuters"])
        lines.append(f"      default refuters: {refs or 'none (randomised: nothing to refute)'}")
        for k, o in d.get("options", {}).items():
            lines.append(f"      options.{k} = {o['default']!r}: {o['help']}")
    lines.append("refuters (refute: [...]):")
    for r in cat["refuters"]:
        opts = ", ".join(f"{k}: {v}" for k, v in r["defaults"].items())
        lines.append(f"  {r['name']:<20} {{{opts}}}")
        lines.append(f"      {r['tests']}")
        lines.append(f"      rule: {cat['refutation_rules'][r['name']]}")
    lines.append(f"  how many simulations: {cat['refutation_budget']}")
    lines.append(f"  failed simulations: {cat['refutation_failures']}")
    lines.append("thresholds (what fails a check):")
    for k, t in cat["thresholds"].items():
        lines.append(f"  {k:<18} {t['default']!s:<14} {t['help']}")
    return "\n".join(lines)
