"""Running a study from Python: ``run_study(spec) -> Result``.

The CLI is a thin layer over these functions; they know nothing of terminals.
"""

from __future__ import annotations

import platform
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from causalcli import __version__
from causalcli.data.table import Table, load_table, require_present
from causalcli.data.weights import check_weights
from causalcli.designs import get_design
from causalcli.designs.base import refuse_unbuilt, unread_settings
from causalcli.errors import CausalcliError
from causalcli.graph import build_graph, check_nodes, identify
from causalcli.result import Result
from causalcli.runtime.packages import installed_versions
from causalcli.runtime.preload import preload
from causalcli.spec.loading import LoadedSpec
from causalcli.study.load import as_loaded

PROVENANCE_PACKAGES = ("numpy", "pandas", "scipy", "duckdb", "pydantic")


@dataclass
class Prepared:
    """A study checked against its data, ready to estimate."""

    spec: LoadedSpec
    design: Any
    table: Table
    identification: Any


def prepare_study(spec: LoadedSpec, stdin_bytes: bytes | None = None, frame: Any = None,
                  warm: bool = False) -> Prepared:
    """Everything ``validate`` checks: spec, design keys, data, graph."""
    study = spec.study
    try:
        design = get_design(study.design.method)
    except CausalcliError as exc:
        exc.file = exc.file or spec.source.display
        raise
    refuse_unbuilt(design, study, spec)
    design.check_spec(study, spec)
    if warm:  # estimate, not validate: the fit's heavy imports run while the data load
        preload(design.preload_modules)
    graph = build_graph(spec) if study.graph is not None else None  # the default graph needs neither networkx nor DoWhy
    columns = [*design.columns(study), *(sorted(graph.nodes) if graph is not None else [])]
    # validate on an engine other than DuckDB reads the table's schema, not its rows
    schema_only = not warm and frame is None and study.data.backend != "duckdb"
    unit = getattr(study.design, "unit", None)  # a panel's units: data.sample keeps whole ones
    table = load_table(spec, stdin_bytes, lazy=design.streams(study), frame=frame,
                       view_parquet=design.views_parquet, columns=columns,
                       schema_only=schema_only, unit=unit if isinstance(unit, str) else None,
                       settings=design.duckdb_settings(study))
    if graph is not None:
        check_nodes(graph, spec, table.columns)
    if schema_only:
        require_present(table, columns)
        return Prepared(spec, design, table, identify(graph, spec))
    if study.weights:
        check_weights(table, study.weights)
    design.validate(study, table, spec)
    if not warm:  # validate: the checks that estimate's prepare makes in its own pass over the rows
        design.validate_rows(study, table, spec)
    ident = identify(graph, spec)
    return Prepared(spec, design, table, ident)


def study_graph(spec: LoadedSpec) -> tuple[Any, Any]:
    """(graph, identification) of a study; a graph the spec draws is checked against the data's columns."""
    graph = build_graph(spec)
    if spec.study.graph is not None:
        check_nodes(graph, spec, load_table(spec, schema_only=True).columns)
    return graph, identify(graph, spec)


def run_study(
    spec: LoadedSpec | str | Path | dict,
    *,
    seed: int | None = None,
    jobs: int | None = None,
    refute: bool = True,
    fail_on: str = "all",
    stdin_bytes: bytes | None = None,
    frame: Any = None,
) -> Result:
    """Estimate one study; raises a ``CausalcliError`` (with exit code) when it cannot.

    ``frame``: an in-memory pandas/polars DataFrame or Arrow table read in place of ``data.path``.
    """
    from causalcli.study.refute import run_refuters

    loaded = as_loaded(spec)
    study = loaded.study
    seed = study.seed if seed is None else seed
    timing: dict[str, float] = {}
    t0 = time.perf_counter()
    prep = prepare_study(loaded, stdin_bytes, frame, warm=True)
    design = prep.design
    data = design.prepare(study, prep.table, prep.identification, loaded)
    timing["load"] = time.perf_counter() - t0
    t1 = time.perf_counter()
    fit = design.fit(data, study, seed, jobs)
    timing["estimate"] = time.perf_counter() - t1
    t2 = time.perf_counter()
    refute_on = data if fit.refute_on is None else fit.refute_on  # what fit learnt that refuters reuse
    refutations = run_refuters(design, refute_on, study, fit.estimate, seed, jobs) if refute else []
    timing["refute"] = time.perf_counter() - t2
    timing["total"] = time.perf_counter() - t0
    diagnostics = {"identification": {**prep.identification.to_dict(), **fit.identification}, **fit.diagnostics}
    if prep.table.engine is not None:  # aggregates computed in the engine: what came back, over every query
        prep.table.provenance["fetched_rows"] = prep.table.engine.fetched
    provenance = {
        **prep.table.provenance,
        **({"derive": dict(study.data.derive)} if study.data.derive else {}),  # the new columns' SQL, as written
        "spec_sha256": loaded.sha256,
        "seed": seed,
        "refuted": refute,
        "versions": versions(design.provenance_packages),
    }
    return Result(
        study=loaded.name,
        spec_path=loaded.path,
        design=study.design.method,
        estimator=fit.estimator,
        estimand=fit.estimand,
        estimate=fit.estimate,
        n=_with_filtered(fit.n, prep.table),
        effects=fit.effects,
        diagnostics=diagnostics,
        checks=fit.checks,
        refutations=refutations,
        warnings=[*unused_covariates(study, design, prep.identification), *unread_settings(design, study), *fit.warnings],
        fail_on=fail_on,
        provenance=provenance,
        timing_s=timing,
    )


def _with_filtered(n: dict[str, int], table: Table) -> dict[str, int]:
    """``n`` with ``filtered_out`` (rows data.filter removed) after ``rows``, when a filter was given."""
    if table.filtered_out is None:
        return n
    out: dict[str, int] = {}
    for key, value in n.items():
        out[key] = value
        if key == "rows":
            out["filtered_out"] = table.filtered_out
    out.setdefault("filtered_out", table.filtered_out)
    return out


def unused_covariates(study: Any, design: Any, identification: Any) -> list[str]:
    """A warning naming the covariates the graph's adjustment set leaves out (they are not used)."""
    if study.graph is None or identification.estimand != "backdoor":
        return []
    if not design.uses_adjustment_set:
        return [f"the {design.name} design does not use the graph's adjustment set; it adjusts for the covariates "
                "as listed (the graph only documents the assumptions)"]
    left_out = [c for c in study.covariates if c not in identification.adjustment_set]
    if not left_out:
        return []
    kept = ", ".join(identification.adjustment_set) or "nothing"
    return [f"covariate(s) {', '.join(map(repr, left_out))} are not in the graph's adjustment set ({kept}) and are "
            "not used; add the edges that make them confounders to the graph, or remove them from covariates"]


def versions(extra: tuple[str, ...] = ()) -> dict[str, str]:
    """Versions read from package metadata (no imports): the shared numeric libraries and a design's own."""
    return {"causalcli": __version__, "python": platform.python_version(),
            **installed_versions((*PROVENANCE_PACKAGES, *extra))}

