"""``causalcli validate``: spec and data checks, no estimation."""

from __future__ import annotations

from typing import List

import typer

from causalcli.cli.common import DEBUG_OPTION, QUIET_OPTION, guarded, trace_on_debug
from causalcli.errors import CausalcliError


def register(app: typer.Typer) -> None:
    app.command("validate")(validate_command)


@guarded
def validate_command(
    specs: List[str] = typer.Argument(..., metavar="SPEC...", help="Spec files, folders of *.yaml, or - for stdin."),
    set_: List[str] = typer.Option([], "--set", help="Override a spec key (as for estimate)."),
    debug: bool = DEBUG_OPTION,
    quiet: bool = QUIET_OPTION,
) -> None:
    """Check specs and their data (columns, types, graph) without estimating."""
    from causalcli.study import check_studies

    code = 0
    for display, checked in check_studies(specs, set_, on_exception=trace_on_debug):
        if isinstance(checked, CausalcliError):
            typer.echo(f"error: {checked.located(display)}", err=True)
            code = max(code, checked.exit_code)
            continue
        adjustment = ", ".join(checked.identification.adjustment_set) or "(none)"
        study = checked.spec.study
        if study.design.method == "rdd" and study.covariates:  # not adjusted for: each is its own RD (balance)
            adjustment += f"; covariates checked for balance at the cutoff: {', '.join(study.covariates)}"
        if study.design.method == "experiment":  # no graph: each metric adjusts for its own CUPED columns
            adjustment = _experiment_adjustment(study.design.metrics)
        elif study.design.method == "time_series":  # the counterfactual's regressors
            controls = getattr(study.design, "controls", None) or []
            adjustment = (f"control series {', '.join(controls)}" if controls else
                          "(none: no control series)" if not getattr(study.design, "unit", None) else
                          "the other units' series as controls")
        elif study.design.method == "synthetic_control":  # donors matched on predictors
            d = study.design
            named = [*getattr(d, "predictors", []), *(str(p[0]) for p in getattr(d, "special_predictors", []))]
            adjustment = ("donors matched on " + ", ".join(dict.fromkeys(named)) if named else
                          "donors matched on the outcome's pre-period path")
        data = checked.spec.study.data
        # on an engine, validate reads the table's columns and types, never its rows
        rows = (f"{checked.table.rows:,} rows" if data.backend == "duckdb" else
                f"{data.table or data.path} on {data.backend} (its columns; rows are read by estimate)")
        typer.echo(f"ok {display}: study '{checked.spec.name}', {checked.spec.study.design.method}, "
                   f"{rows}, adjusting for {adjustment}")
    raise typer.Exit(code)


def _experiment_adjustment(metrics) -> str:
    """What an experiment's metrics adjust for: each CUPED or regression column with the metrics that use it."""
    users: dict[str, list[str]] = {}
    for m in metrics:
        for column in ([m.covariate] if m.covariate else []) + list(m.covariates):
            users.setdefault(column, []).append(m.name)
    if not users:
        return "(none: no metric has a covariate)"
    return ", ".join(f"{column} (in {', '.join(names)})" for column, names in users.items())
