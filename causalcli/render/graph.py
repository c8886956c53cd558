"""The causal graph of a study as ``causalcli graph`` shows it: text, DOT, JSON or a PNG drawing."""

from __future__ import annotations

import json
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:  # pragma: no cover
    import networkx as nx

    from causalcli.graph import Identification

GRAPH_FORMATS = ("text", "dot", "json", "png")


def render_graph(g: "nx.DiGraph", identification: "Identification", study: Any, fmt: str) -> str | bytes:
    """The graph, its estimand and adjustment set in ``fmt`` (bytes for png, text otherwise)."""
    if fmt == "png":
        return graph_png(g, study.treatment, study.outcome, identification.adjustment_set)
    if fmt == "dot":
        return to_dot(g, identification.adjustment_set)
    if fmt == "json":
        return json.dumps({"nodes": sorted(g.nodes), "edges": sorted([list(e) for e in g.edges]),
                           **identification.to_dict()}, indent=2) + "\n"
    if fmt == "text":
        return graph_text(g, identification, study)
    raise ValueError(f"unknown graph format {fmt!r}")


def graph_text(g: "nx.DiGraph", identification: "Identification", study: Any) -> str:
    lines = [f"treatment: {study.treatment or study.design.treated_rule() or '(none)'}",
             f"outcome: {study.outcome or '(each metric)'}",
             f"edges ({g.number_of_edges()}):"]
    lines += [f"  {a} -> {b}" for a, b in sorted(g.edges)]
    lines += [f"estimand: {identification.estimand}  {identification.expression}",
              f"adjustment set: {', '.join(identification.adjustment_set) or '(none)'}",
              f"identified by: {identification.source}"]
    return "\n".join(lines) + "\n"


def to_dot(g: "nx.DiGraph", highlight: tuple[str, ...] = ()) -> str:
    lines = ["digraph causal {"]
    for n in sorted(g.nodes):
        attrs = ' [style=filled, fillcolor="#dde8f5"]' if n in highlight else ""
        lines.append(f'  "{n}"{attrs};')
    for a, b in sorted(g.edges):
        lines.append(f'  "{a}" -> "{b}";')
    lines.append("}")
    return "\n".join(lines) + "\n"


def graph_png(g: "nx.DiGraph", treatment: str | None, outcome: str | None, adjustment: tuple[str, ...]) -> bytes:
    """The graph drawn with graphviz's layout when the binary is there, else layered by topological order."""
    import networkx as nx

    from causalcli.charts import figure, png

    plt = figure()
    fig, ax = plt.subplots(figsize=(7, 5), dpi=110)
    try:
        pos = nx.nx_pydot.graphviz_layout(g, prog="dot")
    except Exception:  # graphviz binary absent: a layered layout by topological generation
        for layer, nodes in enumerate(nx.topological_generations(g)):
            for node in nodes:
                g.nodes[node]["layer"] = layer
        pos = nx.multipartite_layout(g, subset_key="layer", align="horizontal")
        pos = {k: (x, -y) for k, (x, y) in pos.items()}
    colors = ["#f4b183" if n == treatment else "#a9d18e" if n == outcome else
              "#9dc3e6" if n in adjustment else "#e7e6e6" for n in g.nodes]
    nx.draw_networkx(g, pos, ax=ax, node_color=colors, node_size=1400, font_size=9, arrowsize=14)
    ax.set_title("causal graph (orange: treatment, green: outcome, blue: adjustment set)", fontsize=9)
    ax.axis("off")
    return png(fig, plt)
