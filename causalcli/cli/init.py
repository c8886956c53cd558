"""``causalcli init``: a starter spec for a data file, written to stdout."""

from __future__ import annotations

from pathlib import Path
from typing import Optional

import typer

from causalcli.cli.common import guarded
from causalcli.errors import DataError

CATEGORICAL_MAX_LEVELS = 50


def register(app: typer.Typer) -> None:
    app.command("init")(init_command)


@guarded
def init_command(
    data: Path = typer.Argument(..., help="CSV or Parquet file."),
    treatment: str = typer.Option(..., "--treatment", "-t", help="Treatment column."),
    outcome: str = typer.Option(..., "--outcome", "-y", help="Outcome column."),
    design: str = typer.Option("matching", "--design", "-d", help="design.method of the spec."),
    name: Optional[str] = typer.Option(None, "--name", help="Study name (default: the data file's stem)."),
) -> None:
    """Write a starter spec for DATA to stdout: every other numeric column becomes a covariate."""
    import duckdb
    import yaml

    from causalcli.designs import DESIGNS

    if design not in DESIGNS:
        from causalcli.errors import SpecError

        raise SpecError(f"unknown design {design!r}; choose one of: {', '.join(DESIGNS)}")
    if not data.is_file():
        raise DataError("data file not found", file=str(data))
    from causalcli.data import read_file

    con = duckdb.connect(":memory:")
    read_file(con, str(data), "parquet" if data.suffix.lower() in (".parquet", ".pq") else "csv", str(data), "d")
    types = dict(con.execute("SELECT column_name, column_type FROM (DESCRIBE d)").fetchall())
    for role, col in (("treatment", treatment), ("outcome", outcome)):
        if col not in types:
            raise DataError(f"{role} column {col!r} not found; columns: {', '.join(types)}", file=str(data), column=col)
    covariates, categorical, skipped = [], [], []
    for col, typ in types.items():
        if col in (treatment, outcome):
            continue
        if typ.upper().startswith(("VARCHAR", "BOOLEAN", "ENUM")):
            levels = con.execute(f'SELECT count(DISTINCT "{col.replace(chr(34), chr(34) * 2)}") FROM d').fetchone()[0]
            if levels <= CATEGORICAL_MAX_LEVELS:
                covariates.append(col)
                categorical.append(col)
            else:
                skipped.append(col)
        elif typ.upper().startswith(("DATE", "TIME", "BLOB", "LIST", "STRUCT", "MAP")):
            skipped.append(col)
        else:
            covariates.append(col)
    spec = {
        "version": 1,
        "name": name or data.stem,
        "data": {"path": str(data)},
        "treatment": treatment,
        "outcome": outcome,
        "covariates": covariates,
        "categorical": categorical,
        "design": {"method": design, "estimand": "att" if design == "matching" else "ate"},
        "seed": 0,
    }
    text = ("# Starter spec written by `causalcli init`; data.path is relative to where you save this file.\n"
            "# Keep only covariates measured before treatment (confounders), then run `causalcli validate`.\n")
    if skipped:
        text += f"# Columns left out (not numeric, or too many levels): {', '.join(skipped)}\n"
    text += yaml.safe_dump(spec, sort_keys=False)
    typer.echo(text, nl=False)
