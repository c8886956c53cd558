"""``causalcli init``: a starter spec for a data file, written to stdout."""

from __future__ import annotations

from pathlib import Path
from typing import Optional

import typer

from causalcli.cli.common import guarded


def register(app: typer.Typer) -> None:
    app.command("init")(init_command)


@guarded
def init_command(
    data: Path = typer.Argument(..., help="CSV or Parquet file."),
    treatment: Optional[str] = typer.Option(
        None, "--treatment", "-t",
        help="Treatment column (synthetic_control: optional, it finds the treated unit and start; did: the "
             "treated-period indicator, or an ever-treated one beside a cohort column)."),
    outcome: str = typer.Option(..., "--outcome", "-y", help="Outcome column."),
    design: str = typer.Option("matching", "--design", "-d", help="design.method of the spec."),
    instrument: Optional[list[str]] = typer.Option(
        None, "--instrument", "-z", help="iv: an instrument column, taken out of the covariates (repeat the option "
                                         "for several; default: a column named like an assignment or offer, else "
                                         "TODO)."),
    name: Optional[str] = typer.Option(None, "--name", help="Study name (default: the data file's stem)."),
    output: Optional[Path] = typer.Option(
        None, "--output", "-o", help="Write the spec to this file, with data.path relative to its folder "
                                     "(default: stdout, data.path as given)."),
) -> None:
    """Write a starter spec for DATA to stdout. Guesses unit, time, cohort, control, running variable and
    cutoff from the data where it can, and writes TODO where it cannot (validate names each TODO). Leaves out
    constant, duplicated, collinear and post-treatment-looking columns, and says why in the spec's comments.
    """
    from causalcli.runtime.atomic import check_writable, write_atomic
    from causalcli.starter import starter_spec

    if output is not None:
        check_writable(output, "--output")
    starter = starter_spec(data, treatment, outcome, design, name,
                           spec_dir=output.parent if output is not None else None, instruments=instrument or None)
    if output is None:
        typer.echo(starter.text, nl=False)
    else:
        write_atomic(output, starter.text, "--output")
        typer.echo(f"wrote {output}", err=True)
    typer.echo(starter.summary(), err=True)
