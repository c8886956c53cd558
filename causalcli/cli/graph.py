"""``causalcli graph``: the causal graph, the identified estimand and the adjustment set."""

from __future__ import annotations

import json
import sys
from enum import Enum
from pathlib import Path
from typing import Optional

import typer

from causalcli.cli.common import DEBUG_OPTION, QUIET_OPTION, guarded, say
from causalcli.errors import SpecError


class GraphFormat(str, Enum):
    text = "text"
    dot = "dot"
    json = "json"
    png = "png"


def register(app: typer.Typer) -> None:
    app.command("graph")(graph_command)


@guarded
def graph_command(
    spec: str = typer.Argument(..., metavar="SPEC", help="A spec file, or - for stdin."),
    format: GraphFormat = typer.Option(GraphFormat.text, "--format", "-f"),
    output: Optional[Path] = typer.Option(None, "--output", "-o", help="Write here (needed for png on a terminal)."),
    set_: list[str] = typer.Option([], "--set", help="Override a spec key."),
    debug: bool = DEBUG_OPTION,
    quiet: bool = QUIET_OPTION,
) -> None:
    """Show the causal graph, the estimand and the adjustment set."""
    from causalcli.runtime.atomic import write_atomic
    from causalcli.graph import build_graph, check_nodes, identify, to_dot
    from causalcli.data.table import load_table
    from causalcli.spec.loading import collect_sources
    from causalcli.study import load_spec

    loaded = load_spec(collect_sources([spec])[0], set_)
    g = build_graph(loaded)
    if loaded.study.graph is not None:
        table = load_table(loaded)
        check_nodes(g, loaded, table.columns)
    ident = identify(g, loaded)
    fmt = format.value
    if fmt == "png":
        data = _png(g, loaded.study.treatment, loaded.study.outcome, ident.adjustment_set)
        if output is None:
            if sys.stdout.isatty():
                raise SpecError("a PNG is binary: give --output FILE.png or redirect stdout")
            sys.stdout.buffer.write(data)
            return
        write_atomic(output, data)
        say(f"wrote {output}")
        return
    if fmt == "dot":
        text = to_dot(g, ident.adjustment_set)
    elif fmt == "json":
        text = json.dumps({"nodes": sorted(g.nodes), "edges": sorted([list(e) for e in g.edges]),
                           **ident.to_dict()}, indent=2) + "\n"
    else:
        lines = [f"treatment: {loaded.study.treatment or _treatment_by_design(loaded.study.design)}",
                 f"outcome: {loaded.study.outcome or '(each metric)'}",
                 f"edges ({g.number_of_edges()}):"]
        lines += [f"  {a} -> {b}" for a, b in sorted(g.edges)]
        lines += [f"estimand: {ident.estimand}  {ident.expression}",
                  f"adjustment set: {', '.join(ident.adjustment_set) or '(none)'}",
                  f"identified by: {ident.source}"]
        text = "\n".join(lines) + "\n"
    if output is not None:
        write_atomic(output, text)
        say(f"wrote {output}")
    else:
        sys.stdout.write(text)


def _treatment_by_design(design) -> str:
    """Who is treated when the spec has no treatment column (synthetic control; DiD from a cohort column)."""
    if design.method == "synthetic_control":
        return f"{design.unit} = {design.treated_unit} from {design.time} = {design.treatment_start}"
    if getattr(design, "cohort", None):
        return f"{design.time} >= {design.cohort} (the cohort column)"
    return "(none)"


def _png(g, treatment, outcome, adjustment) -> bytes:
    import io

    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    import networkx as nx

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
    buf = io.BytesIO()
    fig.tight_layout()
    fig.savefig(buf, format="png", metadata={"Software": None})
    plt.close(fig)
    return buf.getvalue()
