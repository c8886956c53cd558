"""The causal graph of a study and the identified estimand.

Without a ``graph`` key the graph is the default one (every covariate causes
treatment and outcome), whose backdoor adjustment set is simply the covariates:
that case is answered here without importing DoWhy (about 2 s). A graph the
user gives is identified with DoWhy's functional API (``identify_effect_auto``),
and its backdoor set is what the estimator adjusts for.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from causalcli.errors import SpecError

if TYPE_CHECKING:  # pragma: no cover
    import networkx as nx

    from causalcli.spec.loading import LoadedSpec


@dataclass(frozen=True)
class Identification:
    """What the graph says the estimator must adjust for."""

    estimand: str  # "backdoor", "randomised", "parallel_trends", "synthetic_control"
    adjustment_set: tuple[str, ...]
    source: str  # "default graph" or "dowhy.identify_effect_auto"
    expression: str

    def to_dict(self) -> dict[str, Any]:
        return {
            "estimand": self.estimand,
            "adjustment_set": list(self.adjustment_set),
            "identified_by": self.source,
            "expression": self.expression,
        }


def build_graph(spec: "LoadedSpec") -> "nx.DiGraph":
    """The study's graph as a networkx DiGraph; cycles and malformed input are SpecErrors."""
    import networkx as nx

    study = spec.study
    file = spec.source.display
    g: nx.DiGraph
    if study.graph is None:
        g = nx.DiGraph()
        t, y = study.treatment, study.outcome
        if t and y:
            g.add_edge(t, y)
            for c in study.covariates:
                g.add_edge(c, t)
                g.add_edge(c, y)
        return g
    if study.graph.edges is not None:
        g = nx.DiGraph()
        g.add_edges_from(study.graph.edges)
        key = "graph.edges"
    elif study.graph.dot is not None:
        g = _from_dot(study.graph.dot, file, "graph.dot")
        key = "graph.dot"
    else:
        path = Path(study.graph.file)
        if not path.is_absolute():
            path = spec.source.base_dir / path
        key = "graph.file"
        if not path.exists():
            raise SpecError(f"graph file {study.graph.file!r} not found", file=file, key=key)
        if path.suffix.lower() == ".gml":
            try:
                g = nx.DiGraph(nx.read_gml(path))
            except Exception as exc:  # networkx raises several kinds for bad GML
                raise SpecError(f"cannot read GML graph {study.graph.file!r}: {exc}", file=file, key=key) from None
        elif path.suffix.lower() in (".dot", ".gv"):
            g = _from_dot(path.read_text(encoding="utf-8"), file, key)
        else:
            raise SpecError("graph file must end in .dot, .gv or .gml", file=file, key=key)
    if not nx.is_directed_acyclic_graph(g):
        cycle = nx.find_cycle(g)
        path_txt = " -> ".join([cycle[0][0], *[e[1] for e in cycle]])
        raise SpecError(f"the graph has a cycle ({path_txt}); a causal graph must be acyclic", file=file, key=key)
    return g


def _from_dot(text: str, file: str, key: str) -> "nx.DiGraph":
    import warnings

    import networkx as nx

    try:
        with warnings.catch_warnings():  # pydot's parser emits pyparsing deprecation noise
            warnings.simplefilter("ignore")
            import pydot

            graphs = pydot.graph_from_dot_data(text)
    except Exception as exc:  # pydot raises bare parse errors
        raise SpecError(f"cannot parse DOT: {str(exc).splitlines()[0] if str(exc) else exc}", file=file, key=key) from None
    if not graphs:
        raise SpecError("cannot parse DOT; expected e.g. 'digraph { a -> t; a -> y; t -> y }'", file=file, key=key)
    dot = graphs[0]
    if dot.get_type() != "digraph":
        raise SpecError("the DOT graph must be a digraph (directed edges '->')", file=file, key=key)
    g = nx.DiGraph()
    for node in dot.get_nodes():
        name = node.get_name().strip('"')
        if name not in ("node", "edge", "graph", "\\n"):
            g.add_node(name)
    for edge in dot.get_edges():
        g.add_edge(str(edge.get_source()).strip('"'), str(edge.get_destination()).strip('"'))
    return g


def check_nodes(g: "nx.DiGraph", spec: "LoadedSpec", columns: list[str]) -> None:
    """Every node must be a data column; treatment and outcome must be in the graph."""
    study = spec.study
    key = "graph"
    unknown = sorted(n for n in g.nodes if n not in columns)
    if unknown:
        raise SpecError(
            f"graph node(s) {', '.join(map(repr, unknown))} are not columns of the data; "
            "name only observed columns (after data.columns renames)",
            file=spec.source.display, key=key,
        )
    for role in ("treatment", "outcome"):
        node = getattr(study, role)
        if node and node not in g.nodes:
            raise SpecError(f"{role} {node!r} is not a node of the graph", file=spec.source.display, key=key)


def identify(g: "nx.DiGraph | None", spec: "LoadedSpec") -> Identification:
    """The estimand and the backdoor adjustment set the estimator uses."""
    study = spec.study
    t, y = study.treatment, study.outcome
    if study.design.method == "experiment":  # randomised: no graph, nothing to adjust for
        return Identification("randomised", (), "random assignment of the variant",
                              f"E[metric | {t} = arm] - E[metric | {t} = control]")
    if study.graph is None and study.design.method == "did":  # not backdoor: a comparison of changes
        adj = tuple(study.covariates)
        given = f" given {', '.join(adj)}" if adj else ""
        return Identification("parallel_trends", adj, "design: difference-in-differences (parallel trends"
                              f"{given}, no anticipation)",
                              f"E[{y}(1) - {y}(0) | treated] = change of {y} in the treated - change in the "
                              "comparison units")
    if study.graph is None and study.design.method == "synthetic_control":
        d = study.design
        return Identification("synthetic_control", (), "design: donor weights that reproduce the treated unit's "
                              "pre-treatment path", f"{y}[{d.treated_unit}, t] - sum_j w_j {y}[j, t] for t >= "
                              f"{d.treatment_start}")
    if study.graph is None and study.design.method == "iv":  # not backdoor: the instruments' exclusion
        adj = tuple(study.covariates)
        z = ", ".join(study.design.instruments)
        given = f" given {', '.join(adj)}" if adj else ""
        return Identification("iv", adj, f"design: instruments {z} move {t} and reach {y} only through it{given} "
                              "(relevance, exclusion, independence; monotonicity: the instruments move no unit's "
                              "treatment against the others'; the effect is then an average over the units they "
                              "move, which `estimate` names from the treatment's values: a complier effect when it "
                              "is binary, an average causal response when it takes more than two whole-number "
                              "values, a weighted average of derivatives when it is continuous)",
                              f"Cov({y}, {z}) / Cov({t}, {z}) net of the covariates (Wald ratio; 2SLS with several)")
    if study.design.method == "rdd":  # not backdoor: continuity at the cutoff
        d = study.design
        take_up = d.fuzzy or t
        jump = f"lim E[{{v}} | {d.running} -> {d.cutoff:g} from above] - lim from below"
        return Identification("continuity", (), f"design: the potential outcomes' means are continuous in {d.running} "
                              f"at the cutoff {d.cutoff:g} (no precise sorting around it)" + (
                                  f"; the cutoff moves {take_up} and reaches {y} only through it (monotonicity "
                                  "for the compliers' effect)" if take_up else ""),
                              jump.format(v=y) + (f", divided by the same for {take_up}" if take_up else ""))
    if study.graph is None:
        adj = tuple(study.covariates)
        return Identification("backdoor", adj, "default graph (every covariate -> treatment and outcome)",
                              _expression(t, y, adj))
    from dowhy.causal_identifier import EstimandType, identify_effect_auto

    estimand = identify_effect_auto(g, [t], [y], list(g.nodes), EstimandType.NONPARAMETRIC_ATE)
    backdoor = estimand.get_backdoor_variables()
    if backdoor is None or (not backdoor and _has_open_backdoor(g, t, y)):
        raise SpecError(
            "the effect is not identified by backdoor adjustment in this graph; add the confounders as observed "
            "columns or change the design", file=spec.source.display, key="graph",
        )
    adj = tuple(sorted(backdoor))
    return Identification("backdoor", adj, "dowhy.identify_effect_auto", _expression(t, y, adj))


def _has_open_backdoor(g: "nx.DiGraph", t: str, y: str) -> bool:
    """True when some common ancestor of t and y could confound (empty set would not do)."""
    import networkx as nx

    return bool(nx.ancestors(g, t) & nx.ancestors(g, y))


def _expression(t: str | None, y: str | None, adj: tuple[str, ...]) -> str:
    cond = f" | {', '.join(adj)}" if adj else ""
    return f"d/d[{t}] E[{y}{cond}]"

